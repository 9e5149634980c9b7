"""Multiple-instance learning: a clip's label says that at least one of its people does the behavior.

Users label clips, not people: in ``fighting/clip.mp4`` two people fight and three walk past. A clip
is therefore a *bag* whose instances are its people (a person's class probabilities are the mean over
their sequences), and a *pooling* turns the people's probabilities into the clip's:

- ``max``: the most telling person carries the clip's label;
- ``mean`` (a video label rule): everyone counts alike (weighted by their sequences), what per-sequence training
  assumes;
- ``mean_min`` (a video label rule, not a training pooling): the mean, with the background's dual the minimum.

With a background class (``BACKGROUND_CLASS``: "noFight", "normal", ...) a clip is background only
when everyone in it is, so its background score pools the people's background probabilities with
the *dual* pooling (the minimum): one fighter makes a fight
clip and the bystanders may stay background. The clip's scores are then normalized to sum to one.
Training minimizes the cross-entropy of these clip probabilities (``MIL_POOLING``), and prediction's
video label pools its tracks the same way, so both give a clip the same label.

The people's own labels can also be read from the clip's geometry (``roles``, MIL_POOLING "roles"): the clip's
main people carry its label and those seen little are bystanders (background). Where the user names the classes
that one person does to another (``ACTOR_CLASSES``: kick, punch, push), only the main person whose wrists and
ankles reach out towards another carries it, and the one it is done to gets the action's *received* class
("kick_received"). Training is then per person. The video label folds each received class into its action
(the one kicked also says "kick") and pools the people by ``mean``, the background by its minimum: a clip is
background only when everyone is (video label rule ``mean_min``).

Example:
    >>> import torch
    >>> people = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.2, 0.8]])  # fight, noFight: one fighter, two bystanders
    >>> [round(float(p), 2) for p in bag_probs(people, "max", background=1)]
    [0.9, 0.1]
    >>> [round(float(p), 2) for p in bag_probs(people, "mean")]
    [0.4, 0.6]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from behavior.io.sequence_file import SequenceTable
from behavior.settings import MIL_POOLINGS

EPS = 1e-6  # keeps the log of a clip probability finite
MAIN_PERSON_SHARE = 0.5  # "roles": people seen less than this share of the clip's most seen one are bystanders
ROLES = "roles"  # the MIL_POOLING that labels each person from the clip's geometry (``roles``) and trains per person
RECEIVED_SUFFIX = "_received"  # ACTOR_CLASSES: "kick" + this is the class of the one kicked
__all__ = ["MAIN_PERSON_SHARE", "MIL_POOLINGS", "RECEIVED_SUFFIX", "ROLES", "Bag",
           "PersonStats", "bag_loss", "bag_probs", "clip_probs", "fold_received", "label_rule", "make_bags",
           "people_probs", "person_index", "pool", "pool_people", "received", "received_classes", "roles",
           "trains_bags"]


@dataclass(frozen=True)
class Bag:
    """One video's sequences, grouped by person: the unit a clip label speaks about."""

    video: str  # group/class/video
    label: int
    rows: tuple[int, ...]  # rows of the sequences table
    person: tuple[int, ...]  # for each row, its person's position in ``persons``
    persons: tuple[str, ...]  # person folder names ("person_1", ...; "person_0" is the whole frame)

    def sequences_of(self) -> list[int]:
        """How many sequences each person has, in ``persons`` order (their weights under "mean")."""
        return [self.person.count(k) for k in range(len(self.persons))]


@dataclass(frozen=True)
class PersonStats:
    """What tells who does a clip's action, for one person of the clip (``ACTOR_CLASSES``)."""

    presence: float  # the person's box heights summed over their frames, in pixels: how much of the clip they are
    reach: float  # how far their limbs reach out towards the nearest other person, summed over their frames
    # (people.limb_extension, body heights)


def received(action: str) -> str:
    """The class of the person an action of ACTOR_CLASSES is done to: in the clip, but not doing it.

    Example:
        >>> received("kick")
        'kick_received'
    """
    return action + RECEIVED_SUFFIX


def received_classes(actor_classes: Sequence[str]) -> set[str]:
    """The received classes of ``actor_classes``: classes of people only, never of a clip or a video.

    Example:
        >>> sorted(received_classes(["kick", "push"]))
        ['kick_received', 'push_received']
    """
    return {received(c) for c in actor_classes}


def roles(people: dict[str, PersonStats], action: str, actor_classes: Sequence[str], background: str,
          ) -> dict[str, str]:
    """Each person's own label in a clip labeled ``action``, from its geometry: the main people (seen at least
    MAIN_PERSON_SHARE as much as the most seen one) carry the action, the others pass by (``background``). In a
    clip of ``actor_classes`` only the main person whose limbs reach out towards another the most does it; the
    other main people receive it.

    Example:
        >>> people = {"person_1": PersonStats(900, 2.0), "person_2": PersonStats(800, 7.5),
        ...           "person_3": PersonStats(90, 9.0)}  # the one kicked, a kicker, a passer-by
        >>> roles(people, "kick", ["kick"], "none")
        {'person_1': 'kick_received', 'person_2': 'kick', 'person_3': 'none'}
        >>> roles(people, "hug", ["kick"], "none")
        {'person_1': 'hug', 'person_2': 'hug', 'person_3': 'none'}
    """
    if not people:
        return {}
    top = max(p.presence for p in people.values())
    main = sorted(k for k, p in people.items() if p.presence >= MAIN_PERSON_SHARE * top)
    actor = max(main, key=lambda k: people[k].reach) if action in actor_classes else None
    return {k: background if k not in main else action if actor in (None, k) else received(action)
            for k in sorted(people)}


def fold_received(people: torch.Tensor, classes: Sequence[str], actor_classes: Sequence[str]) -> torch.Tensor:
    """People's probabilities (P, C) with each received class's share moved to its action: the one kicked says
    as much as the kicker that the clip is a kick. Without received classes, ``people`` unchanged.

    Example:
        >>> people = torch.tensor([[0.7, 0.1, 0.2], [0.1, 0.8, 0.1]])  # kicker, kicked
        >>> folded = fold_received(people, ["kick", "kick_received", "none"], ["kick"])
        >>> [[round(v, 2) for v in person] for person in folded.tolist()]
        [[0.8, 0.0, 0.2], [0.9, 0.0, 0.1]]
    """
    folded = people.clone()
    for action in actor_classes:
        if received(action) in classes:
            r, a = classes.index(received(action)), classes.index(action)
            folded[:, a] += folded[:, r]
            folded[:, r] = 0
    return folded


def person_of(frame_path: str) -> str:
    """The person folder name of a crop path ``<video>/person_<k>/frame_<n>.jpg``.

    Example:
        >>> person_of("fight/clip1/person_2/frame_000012.jpg")
        'person_2'
    """
    return frame_path.rsplit("/", 2)[1]


def make_bags(videos: Sequence[str], labels: Sequence[int], first_frames: Sequence[str],
              rows: Sequence[int]) -> list[Bag]:
    """The bags of the given table rows: one per video, each row in exactly one bag, in video order.

    ``videos``, ``labels`` and ``first_frames`` (each sequence's first crop path) are the columns of
    the sequences table, indexed by row.
    """
    by_video: dict[str, list[int]] = {}
    for i in rows:
        by_video.setdefault(videos[i], []).append(i)
    bags = []
    for video in sorted(by_video):
        members = by_video[video]
        names = sorted({person_of(first_frames[i]) for i in members}, key=lambda p: int(p.split("_")[1]))
        position = {p: k for k, p in enumerate(names)}
        bags.append(Bag(video, labels[members[0]], tuple(members),
                        tuple(position[person_of(first_frames[i])] for i in members), tuple(names)))
    return bags


def person_index(bags: Sequence[Bag]) -> tuple[torch.Tensor, torch.Tensor]:
    """For the bags' rows in order: each row's person number across all the bags, and each person's bag."""
    owner, bag_of, offset = [], [], 0
    for b, bag in enumerate(bags):
        owner += [offset + k for k in bag.person]
        bag_of += [b] * len(bag.persons)
        offset += len(bag.persons)
    return torch.tensor(owner, dtype=torch.long), torch.tensor(bag_of, dtype=torch.long)


def pool(x: torch.Tensor, pooling: str, dual: bool = False, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Pool the people's probabilities of one class (P,) into one score; ``dual`` pools towards the minimum.

    Example:
        >>> x = torch.tensor([0.9, 0.2, 0.1])
        >>> [round(float(pool(x, p)), 3) for p in ("max", "mean")]
        [0.9, 0.4]
        >>> round(float(pool(x, "max", dual=True)), 3), round(float(pool(x, "mean_min", dual=True)), 3)
        (0.1, 0.1)
    """
    if pooling == "mean_min":  # the mean, and towards the minimum: the mean's own dual would be itself
        pooling, dual = ("max", True) if dual else ("mean", False)
    if dual:
        return -pool(-x, pooling, weights=weights)
    if pooling == "max":
        return x.max()
    if pooling == "mean":
        w = torch.ones_like(x) if weights is None else weights.to(x)
        return (w * x).sum() / w.sum()
    raise ValueError(f"unknown pooling {pooling!r}: max, mean or mean_min")


def label_rule(mil_pooling: str, actor_classes: Sequence[str] = ()) -> str:
    """How a model trained with ``mil_pooling`` pools a video's people into its label: per-sequence training
    ("none") averages them; where each person learned their own role ("roles", or "none" with ``actor_classes``
    in checkpoints made before it), the background pools by its minimum ("mean_min"): only a clip where everyone
    is background is background, as the model learned it.

    Measured on UT-Interaction by grouped CV (docs/RESULTS.md): with who acts learned, "mean_min" beat the max
    and the mean (where passers-by outvote the two who act).

    Example:
        >>> label_rule("none"), label_rule("max"), label_rule("roles")
        ('mean', 'max', 'mean_min')
    """
    if mil_pooling == ROLES or (mil_pooling == "none" and actor_classes):  # "none": checkpoints before "roles"
        return "mean_min"
    return "mean" if mil_pooling == "none" else mil_pooling


def trains_bags(mil_pooling: str) -> bool:
    """Whether training with ``mil_pooling`` batches whole clips and pools their people, or trains each sequence
    with its own label (its clip's, or its person's role).

    Example:
        >>> trains_bags("max"), trains_bags("none"), trains_bags("roles")
        (True, False, False)
    """
    return mil_pooling not in ("none", ROLES)


def bag_probs(people: torch.Tensor, pooling: str, background: int | None = None,
              weights: torch.Tensor | None = None) -> torch.Tensor:
    """A clip's class probabilities (C,) from its people's (P, C), pooled per class and normalized.

    With ``background``, that class pools with the dual pooling: the clip is background only when
    everyone is. ``weights`` (P,) weigh the people under "mean" (their sequences or labeled frames).
    """
    pooling = label_rule(pooling)
    scores = torch.stack([pool(people[:, c], pooling, dual=(c == background), weights=weights)
                          for c in range(people.shape[1])])
    return scores / scores.sum().clamp_min(EPS)


def people_probs(probs: torch.Tensor, bags: Sequence[Bag]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each person's mean probabilities over their sequences (P, C), their sequence counts (P,) and bags (P,).

    ``probs`` (N, C) are the sequences' probabilities, rows in the order of the bags' rows.
    """
    owner, bag_of = person_index(bags)
    counts = torch.bincount(owner, minlength=len(bag_of)).to(probs.dtype)
    sums = torch.zeros(len(bag_of), probs.shape[1], dtype=probs.dtype, device=probs.device)
    sums = sums.index_add(0, owner.to(probs.device), probs)
    return sums / counts.to(probs.device)[:, None].clamp_min(1), counts, bag_of


def clip_probs(probs: torch.Tensor, bags: Sequence[Bag], pooling: str, background: int | None = None,
               ) -> torch.Tensor:
    """Every bag's pooled class probabilities (B, C) from its sequences' probabilities (N, C), in bag order."""
    return pool_people(*people_probs(probs, bags), pooling, background)


def pool_people(people: torch.Tensor, counts: torch.Tensor, bag_of: torch.Tensor, pooling: str,
                background: int | None = None) -> torch.Tensor:
    """Every bag's pooled class probabilities (B, C) from ``people_probs``' output (people, counts, bags)."""
    return torch.stack([bag_probs(people[bag_of == b], pooling, background, counts[bag_of == b])
                        for b in range(int(bag_of.max()) + 1)])


def bag_loss(probs: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, gamma: float = 0.0) -> torch.Tensor:
    """Class-weighted negative log-likelihood of the clips' labels under their pooled probabilities (B, C); with
    ``gamma`` > 0, focal (clips already scored right count less), as ``FOCAL_GAMMA`` does per sequence."""
    p_true = probs.gather(1, target[:, None]).squeeze(1).clamp_min(EPS)
    nll = -torch.log(p_true)
    if gamma > 0:
        nll = (1 - p_true).clamp_min(0).pow(gamma) * nll
    w = weights[target]
    return (w * nll).sum() / w.sum()


def table_bags(table: SequenceTable, rows: list[int], people_apart: bool = False) -> list[Bag]:
    """The given rows grouped into one bag per video (multiple-instance training), people numbered in each, labeled
    with the clip's label. ``people_apart`` (training): the sequences of a person the user labeled form bags of
    their own, one per label, so that their label is theirs, not the clip's."""
    def own_bag(i: int) -> bool:
        return people_apart and table.is_person_labeled(i)

    keys = list(table.videos)
    for i in rows:
        if own_bag(i):
            keys[i] = f"{table.videos[i]}#{person_of(table.frames[i][0])}#{table.labels[i]}"
    label_of: dict[str, int] = {}  # a person's own bag: their label; a clip: its clip-labeled sequences'
    for i in rows:
        if own_bag(i) or not table.is_person_labeled(i):
            label_of.setdefault(keys[i], table.labels[i])
    labels = list(table.labels)
    for i in rows:
        labels[i] = label_of.get(keys[i], table.clip_label(i))  # a clip whose every person is labeled: its folder's
    return make_bags(keys, labels, [f[0] for f in table.frames], rows)


def with_person_labels(table: SequenceTable, rows: list[int], people: dict[str, PersonStats],
                       actor_classes: Sequence[str], background: int) -> SequenceTable:
    """The table with the sequences of ``rows`` labeled per person (ACTOR_CLASSES, ``roles``): a bystander
    becomes ``background``, the one receiving a kick "kick_received" (a class of the table).

    ``people`` holds ``person_stats`` by person folder; rows outside ``rows`` keep their clip's label, and people
    the user labeled (ANNOTATIONS_DIR) their own: they count among the clip's people (a track fragment beside them is
    a bystander) but keep their label.
    """
    folder_of = {i: table.frames[i][0].rsplit("/", 1)[0] for i in rows}
    clips: dict[str, dict[str, PersonStats]] = defaultdict(dict)
    for i, folder in folder_of.items():
        clips[table.videos[i]][folder] = people.get(folder, PersonStats(0.0, 0.0))
    label_of = {table.videos[i]: table.clip_label(i) for i in rows}
    role = {video: roles(stats, table.classes[label_of[video]], actor_classes, table.classes[background])
            for video, stats in clips.items()}
    labels = list(table.labels)
    for i, folder in folder_of.items():
        if not table.is_person_labeled(i):
            labels[i] = table.classes.index(role[table.videos[i]][folder])
    return replace(table, labels=labels)
