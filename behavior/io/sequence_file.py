"""The sequences file that stage 2 writes and stage 3 reads: one row per window of a person; groups.csv beside it."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from behavior.errors import InputError
from behavior.io.frames import SCENE_DIR

SEQUENCES_HEADER = ("sequence_id", "split", "label", "group", "video", "person", "start_frame", "end_frame",
                    "n_real_frames", "padding", "frames", "label_source")
OLD_HEADER = SEQUENCES_HEADER[:-1]  # before per-person labels: every label was the clip's
LABEL_FROM_CLIP, LABEL_FROM_TRACK = "clip", "track"  # label_source: the video's class folder, or the user's label
GROUPS_NAME = "groups.csv"  # beside SEQUENCES_FILE: each video's recording group, for cross-validation
GROUPS_HEADER = ("video", "group")


@dataclass(frozen=True)
class SequenceTable:
    """The rows of a sequences CSV for training: one entry per sequence."""

    ids: list[str]
    splits: list[str]
    labels: list[int]
    videos: list[str]  # video key: group/class/video
    frames: list[list[str]]  # crop paths relative to FRAMES_DIR
    classes: list[str]
    person_labeled: list[bool] = field(default_factory=list)  # the user labeled this person (ANNOTATIONS_DIR)

    def select(self, split: str) -> list[int]:
        """Row numbers of one split."""
        return [i for i, s in enumerate(self.splits) if s == split]

    @property
    def sequence_length(self) -> int:
        return len(self.frames[0])

    def subset(self, rows: list[int]) -> SequenceTable:
        """Only the given rows (same classes): what a run that must not read the others works on."""
        ids, splits, labels, videos, frames = ([column[i] for i in rows] for column in
                                               (self.ids, self.splits, self.labels, self.videos, self.frames))
        return SequenceTable(ids, splits, labels, videos, frames, self.classes,
                             [self.person_labeled[i] for i in rows] if self.person_labeled else [])

    def clip_label(self, row: int) -> int:
        """The class of the row's video folder (its clip's label), or the row's label when the folder is no class."""
        folder = self.videos[row].rsplit("/", 2)[-2]
        return self.classes.index(folder) if folder in self.classes else self.labels[row]

    def is_person_labeled(self, row: int) -> bool:
        """True when the user labeled this sequence's person, so that training takes the label as it is."""
        return bool(self.person_labeled) and self.person_labeled[row]

    def person_dirs(self, rows: list[int] | None = None) -> list[str]:
        """The person folders the given rows (all by default) read crops from."""
        rows = range(len(self.ids)) if rows is None else rows
        return sorted({p.rsplit("/", 1)[0] for i in rows for p in self.frames[i]})

    def scene_dirs(self, rows: list[int] | None = None) -> list[str]:
        """The scene folders (every kept frame whole, INPUTS "scene_video") of the videos the given rows come from."""
        return sorted({f"{d.rsplit('/', 1)[0]}/{SCENE_DIR}" for d in self.person_dirs(rows)})


def read_sequences(path: Path) -> SequenceTable:
    """Read SEQUENCES_FILE and classes.json beside it; raise InputError when unusable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"sequences file not found: {path} (run group_sequences.py first)")
    classes_path = path.with_name("classes.json")
    try:
        classes = json.loads(classes_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InputError(f"cannot read {classes_path}: run group_sequences.py again") from None
    class_index = {c: i for i, c in enumerate(classes)}
    ids, splits, labels, videos, frames, person_labeled = [], [], [], [], [], []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or tuple(reader.fieldnames) not in (SEQUENCES_HEADER, OLD_HEADER):
            raise InputError(f"{path} is not a sequences file (expected columns {','.join(SEQUENCES_HEADER)})")
        for row in reader:
            if row["label"] not in class_index:
                raise InputError(f"{path}: label {row['label']!r} is not in {classes_path}")
            ids.append(row["sequence_id"])
            splits.append(row["split"])
            labels.append(class_index[row["label"]])
            frames.append(row["frames"].split("|"))
            videos.append(frames[-1][0].rsplit("/", 2)[0])  # group/class/video, whoever the person's label says
            person_labeled.append(row.get("label_source") == LABEL_FROM_TRACK)
    if not ids:
        raise InputError(f"{path} holds no sequences")
    if len({len(f) for f in frames}) != 1:
        raise InputError(f"{path}: sequences differ in length; regenerate it with group_sequences.py")
    return SequenceTable(ids, splits, labels, videos, frames, list(classes), person_labeled)


def refuse_foreign_sequences_file(path: Path) -> None:
    """InputError when SEQUENCES_FILE is a file stage 2 did not write (another CSV of the user's, a notebook): it is
    never replaced, even with --overwrite."""
    path = Path(path)
    if not path.is_file():
        return
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        first = next(csv.reader(f), [])
    if tuple(first) not in (SEQUENCES_HEADER, OLD_HEADER):
        raise InputError(f"SEQUENCES_FILE {path} is not a sequences file (its first line is not stage 2's header): "
                         "nothing was changed; choose another --sequences-file")
