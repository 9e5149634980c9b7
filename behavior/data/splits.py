"""Train/val/test splits and cross-validation folds made by video, never by sequence.

With recording groups (GROUPS_FILE or GROUP_PATTERN: which recording, scene or people a video comes
from), every video of a group lands on the same side, so no test scene is seen in training.

Example:
    >>> split_counts(10, (0.7, 0.15, 0.15))
    [7, 2, 1]
    >>> assign_splits({"fight": ["fight/a", "fight/b", "fight/c"]}, (0.7, 0.15, 0.15), seed=0)
    {'fight/c': 'train', 'fight/b': 'val', 'fight/a': 'test'}
    >>> assign_groups({"cam1": {"fight": 2}, "cam2": {"fight": 1}, "cam3": {"fight": 1}}, (0.5, 0.5), seed=0)
    {'cam1': 0, 'cam2': 1, 'cam3': 1}
"""

from __future__ import annotations

import csv
import logging
import math
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from behavior import settings
from behavior.errors import InputError
from behavior.settings import compile_group_pattern

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def validate_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Check SPLIT_FRACTIONS by the rules of ``behavior.settings``: three numbers summing to 1, train and val > 0."""
    settings.validate({"SPLIT_FRACTIONS": tuple(fractions)})
    return (float(fractions[0]), float(fractions[1]), float(fractions[2]))


def split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """How many of ``n`` videos go to train, val and test.

    Largest remainders first; then every split with a positive fraction gets at least one video,
    taken from the largest split, as long as that split keeps one.
    """
    raw = [n * f for f in fractions]
    counts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    for i, f in enumerate(fractions):
        if f > 0 and counts[i] == 0:
            donor = max(range(len(counts)), key=lambda j: (counts[j], -j))
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[i] += 1
    return counts


def assign_groups(counts: Mapping[str, Mapping[str, int]], weights: Sequence[float], seed: int) -> dict[str, int]:
    """Deal whole groups (``group -> class -> videos``) into bins of the given weights, stratified by class.

    Largest groups first (ties in an order shuffled by ``seed``), each into the bin whose per-class
    shortfall it fills best; then every bin of positive weight gets a group while another bin can spare one.
    Used for train/val/test splits (weights = fractions) and for K folds (K equal weights).
    """
    names = sorted(counts)
    rng = np.random.default_rng(seed)
    names = [names[i] for i in rng.permutation(len(names))]
    names.sort(key=lambda g: -sum(counts[g].values()))  # stable: equal sizes keep the shuffled order
    classes = sorted({c for g in names for c in counts[g]})
    vectors = {g: np.array([counts[g].get(c, 0) for c in classes], float) for g in names}
    w = np.asarray(weights, float) / sum(weights)
    totals = sum(vectors.values(), np.zeros(len(classes)))
    target = np.outer(w, totals)
    scale = 1.0 / np.maximum(totals, 1)
    have = np.zeros_like(target)
    bin_of: dict[str, int] = {}
    for g in names:
        before = (((have - target) * scale) ** 2).sum(1)
        after = (((have + vectors[g] - target) * scale) ** 2).sum(1)
        shortfall = (target - have).sum(1)
        b = min((i for i in range(len(w)) if w[i] > 0), key=lambda i: (after[i] - before[i], -shortfall[i], i))
        have[b] += vectors[g]
        bin_of[g] = b
    for b in (i for i in range(len(w)) if w[i] > 0):  # a bin left empty takes the smallest group of the fullest
        members = {i: [g for g in names if bin_of[g] == i] for i in range(len(w))}
        donor = max(members, key=lambda i: (len(members[i]), -i))
        if not members[b] and len(members[donor]) > 1:
            bin_of[members[donor][-1]] = b
    return dict(sorted(bin_of.items()))


def assign_splits(videos_by_class: dict[str, list[str]], fractions: Sequence[float], seed: int,
                  group_of: Mapping[str, str] | None = None) -> dict[str, str]:
    """Map every video key to a split, stratified by class and deterministic by ``seed``.

    Each class is shuffled with its own generator (seeded by ``seed`` and the class name), so
    adding a class does not reshuffle the others. With ``group_of`` (video key -> recording group),
    whole groups are dealt instead (``assign_groups``). Warns for a class missing from a split.
    """
    fractions = validate_fractions(fractions)
    if group_of is not None:
        return _assign_group_splits(videos_by_class, fractions, seed, group_of)
    split_of: dict[str, str] = {}
    for label in sorted(videos_by_class):
        keys = sorted(videos_by_class[label])
        rng = np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))])
        shuffled = [keys[i] for i in rng.permutation(len(keys))]
        counts = split_counts(len(keys), fractions)
        start = 0
        for split, count in zip(SPLITS, counts, strict=True):
            for key in shuffled[start : start + count]:
                split_of[key] = split
            start += count
            if count == 0 and fractions[SPLITS.index(split)] > 0:
                log.warning("class %s has too few videos (%d) to reach every split: none in %s",
                            label, len(keys), split)
    return split_of


def group_counts(videos_by_class: Mapping[str, Sequence[str]], group_of: Mapping[str, str]
                 ) -> dict[str, dict[str, int]]:
    """``group -> class -> number of videos``: what ``assign_groups`` deals."""
    counts: dict[str, dict[str, int]] = {}
    for label, keys in videos_by_class.items():
        for key in keys:
            per_class = counts.setdefault(group_of[key], {})
            per_class[label] = per_class.get(label, 0) + 1
    return counts


def _assign_group_splits(videos_by_class: Mapping[str, Sequence[str]], fractions: Sequence[float], seed: int,
                         group_of: Mapping[str, str]) -> dict[str, str]:
    """``assign_splits`` by whole groups; warns for a class that no group brings into a split."""
    bin_of = assign_groups(group_counts(videos_by_class, group_of), fractions, seed)
    split_of = {key: SPLITS[bin_of[group_of[key]]] for keys in videos_by_class.values() for key in keys}
    for label in sorted(videos_by_class):
        keys = videos_by_class[label]
        for split, fraction in zip(SPLITS, fractions, strict=True):
            if fraction > 0 and not any(split_of[k] == split for k in keys):
                log.warning("class %s has no video in %s: its %d videos come from %d group(s), all placed elsewhere",
                            label, split, len(keys), len({group_of[k] for k in keys}))
    return split_of


def assign_folds(videos_by_class: Mapping[str, Sequence[str]], folds: int, seed: int,
                 group_of: Mapping[str, str] | None = None) -> dict[str, int]:
    """Map every video key to one of ``folds`` folds (0-based), whole groups at a time, stratified by class.

    Without ``group_of`` each video is its own group.
    """
    group_of = group_of or {k: k for keys in videos_by_class.values() for k in keys}
    counts = group_counts(videos_by_class, group_of)
    if folds > len(counts):
        raise InputError(f"{folds} folds need at least {folds} groups of videos; there are {len(counts)}")
    bin_of = assign_groups(counts, [1.0] * folds, seed)
    return {key: bin_of[group_of[key]] for keys in videos_by_class.values() for key in keys}


class VideoIndex:
    """Finds a video key by what a user's CSV names it: the key, the video's name, or its file name."""

    def __init__(self, video_keys: Sequence[str]) -> None:
        self.known = set(video_keys)
        self.by_name: dict[str, list[str]] = {}
        for key in video_keys:
            self.by_name.setdefault(key.rsplit("/", 1)[-1], []).append(key)

    def find(self, video: str, where: str) -> str | None:
        """The one key ``video`` names (None when it names none); InputError, citing ``where``, when several."""
        if video in self.known:
            return video
        keys = self.by_name.get(video) or self.by_name.get(Path(video).stem) or []
        if len(keys) > 1:
            raise InputError(f"{where}: {video!r} names several videos ({', '.join(keys)}); use class/video")
        return keys[0] if keys else None


def _csv_rows(path: Path, needed: Sequence[str], what: str, alias: Mapping[str, str] | None = None
              ) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line, row)`` of a user's CSV with the ``needed`` columns (``alias``: column -> accepted stand-in)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    alias = alias or {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = {c.strip() for c in reader.fieldnames or ()}
        rename = {name: name if name in columns else alias.get(name, name) for name in needed}
        if not set(rename.values()) <= columns:
            raise InputError(f"{what} {path} needs a header with the columns {','.join(needed)}")
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            yield line, {name: row.get(column, "") for name, column in rename.items()}


def read_groups_file(path: Path, video_keys: Sequence[str]) -> dict[str, str]:
    """Read a ``video,group`` CSV (``source`` may stand for ``group``): every video key -> its recording group.

    Videos are named as in a split file. A video of ``video_keys`` that the file does not list is
    an error that names it: a silent default would let one recording reach two splits.
    """
    index = VideoIndex(video_keys)
    group_of: dict[str, str] = {}
    for line, row in _csv_rows(path, ("video", "group"), "groups file", alias={"group": "source"}):
        where = f"{path}:{line}"
        key = index.find(row["video"], where)
        if key is None:
            continue  # a video without sequences here
        if not row["group"]:
            raise InputError(f"{where}: {row['video']!r} has an empty group")
        if group_of.get(key, row["group"]) != row["group"]:
            raise InputError(f"{where}: {row['video']!r} is listed in two groups ({group_of[key]}, {row['group']})")
        group_of[key] = row["group"]
    missing = [k for k in video_keys if k not in group_of]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InputError(f"groups file {path} gives no group for video {missing[0]}{more}: add it")
    return group_of


def groups_from_pattern(pattern: str, video_keys: Sequence[str]) -> dict[str, str]:
    r"""Every video key -> the first capture group of ``pattern`` searched in the video's name.

    Example:
        >>> groups_from_pattern(r"^\d+_(\d+)_", ["kick/1_12_3", "hug/4_12_1"])
        {'kick/1_12_3': '12', 'hug/4_12_1': '12'}
    """
    regex = compile_group_pattern(pattern)
    group_of = {}
    for key in video_keys:
        name = key.rsplit("/", 1)[-1]
        m = regex.search(name)
        if m is None or m.group(1) is None:
            raise InputError(f"GROUP_PATTERN {pattern!r} does not match video {key} (searched in {name!r})")
        group_of[key] = m.group(1)
    return group_of


def video_groups(video_keys: Sequence[str], groups_file: str | Path | None = None, pattern: str = ""
                 ) -> dict[str, str] | None:
    """Recording group of every video from GROUPS_FILE or GROUP_PATTERN; None when neither is set."""
    if groups_file and pattern:
        raise InputError("give GROUPS_FILE (--groups-file) or GROUP_PATTERN (--group-pattern), not both")
    if groups_file:
        return read_groups_file(Path(groups_file), video_keys)
    if pattern:
        return groups_from_pattern(pattern, video_keys)
    return None


def read_split_file(path: Path, video_keys: Sequence[str]) -> dict[str, str]:
    """Read a ``video,split`` CSV (a published or earlier split) and map it onto ``video_keys``.

    A row's video may be the key (``class/video`` or ``group/class/video``), the video's name, or
    its file name with extension. Videos the file does not list are left out, with a warning.
    """
    index = VideoIndex(video_keys)
    split_of: dict[str, str] = {}
    unmatched = []
    for line, row in _csv_rows(path, ("video", "split"), "split file"):
        video, split = row["video"], row["split"].lower()
        if split not in SPLITS:
            raise InputError(f"{path}:{line}: split must be one of {', '.join(SPLITS)}, got {split!r}")
        key = index.find(video, f"{path}:{line}")
        if key is None:
            unmatched.append(video)
            continue
        if key in split_of and split_of[key] != split:
            raise InputError(f"{path}:{line}: {video!r} is listed in two splits")
        split_of[key] = split
    if unmatched:
        log.warning("%d video(s) of the split file have no sequences here, e.g. %s", len(unmatched), unmatched[0])
    missing = [k for k in video_keys if k not in split_of]
    if missing:
        log.warning("%d video(s) are not in the split file and are left out, e.g. %s", len(missing), missing[0])
    return split_of
