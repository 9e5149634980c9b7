"""Training data: the sequences CSV, box motion from tracks.csv, and the two kinds of dataset.

``CachedSequenceDataset`` gathers cached CNN features (frozen backbone: no image is decoded
while training). ``ImageSequenceDataset`` loads the crops themselves, with one random flip,
crop and color jitter per clip, for fine-tuning the backbone.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from behavior.errors import InputError
from behavior.features import FeatureStore, crops_to_tensor, read_crop
from behavior.model import MOTION_DIM
from behavior.sequences import SEQUENCES_HEADER

MOTION_CLIP = 5.0  # motion values are clipped to +-5 (body heights per second, log-scale per second)


@dataclass(frozen=True)
class SequenceTable:
    """The rows of a sequences CSV for training: one entry per sequence."""

    ids: list[str]
    splits: list[str]
    labels: list[int]
    videos: list[str]  # video key: group/class/video
    frames: list[list[str]]  # crop paths relative to FRAMES_DIR
    classes: list[str]

    def select(self, split: str) -> list[int]:
        """Row numbers of one split."""
        return [i for i, s in enumerate(self.splits) if s == split]

    @property
    def sequence_length(self) -> int:
        return len(self.frames[0])

    def subset(self, rows: list[int]) -> SequenceTable:
        """Only the given rows (same classes): what a run that must not read the others works on."""
        return SequenceTable(*([column[i] for i in rows] for column in
                               (self.ids, self.splits, self.labels, self.videos, self.frames)), self.classes)

    def person_dirs(self, rows: list[int] | None = None) -> list[str]:
        """The person folders the given rows (all by default) read crops from."""
        rows = range(len(self.ids)) if rows is None else rows
        return sorted({p.rsplit("/", 1)[0] for i in rows for p in self.frames[i]})


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
    ids, splits, labels, videos, frames = [], [], [], [], []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or list(reader.fieldnames) != list(SEQUENCES_HEADER):
            raise InputError(f"{path} is not a sequences file (expected columns {','.join(SEQUENCES_HEADER)})")
        for row in reader:
            if row["label"] not in class_index:
                raise InputError(f"{path}: label {row['label']!r} is not in {classes_path}")
            ids.append(row["sequence_id"])
            splits.append(row["split"])
            labels.append(class_index[row["label"]])
            videos.append("/".join(p for p in (row["group"], row["label"], row["video"]) if p))
            frames.append(row["frames"].split("|"))
    if not ids:
        raise InputError(f"{path} holds no sequences")
    if len({len(f) for f in frames}) != 1:
        raise InputError(f"{path}: sequences differ in length; regenerate it with group_sequences.py")
    return SequenceTable(ids, splits, labels, videos, frames, list(classes))


def check_crops_exist(frames_dir: Path, table: SequenceTable) -> None:
    """Raise one clear error naming the first missing crop file, if any."""
    frames_dir = Path(frames_dir)
    listings: dict[str, set[str]] = {}
    for i, paths in enumerate(table.frames):
        for p in paths:
            folder, name = p.rsplit("/", 1)
            if folder not in listings:
                full = frames_dir / folder
                listings[folder] = set(os.listdir(full)) if full.is_dir() else set()
            if name not in listings[folder]:
                raise InputError(f"crop file missing: {frames_dir / p} (sequence {table.ids[i]}); "
                                 "was FRAMES_DIR changed? rerun extract_frames.py and group_sequences.py")


MotionState = tuple[float, float, float, float]  # time, centre x, centre y, height of the previous box


def motion_step(
    box: tuple[float, float, float, float], t: float, prev: MotionState | None
) -> tuple[np.ndarray, MotionState]:
    """One box's motion features relative to the same person's previous box, and the new state.

    Centre velocity (x, y) in body heights per second, log scale change per second, aspect ratio.
    Training (from tracks.csv) and prediction (live) both call this.
    """
    x1, y1, x2, y2 = box
    w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    vec = np.zeros(MOTION_DIM, np.float32)
    vec[3] = w / h
    if prev is not None and t > prev[0]:
        dt = t - prev[0]
        vec[0] = (cx - prev[1]) / prev[3] / dt
        vec[1] = (cy - prev[2]) / prev[3] / dt
        vec[2] = math.log(h / prev[3]) / dt
    return np.clip(vec, -MOTION_CLIP, MOTION_CLIP), (t, cx, cy, h)


def _motion_rows(rows: list[dict[str, str]]) -> dict[int, np.ndarray]:
    """Motion features of every frame of one person's tracks.csv rows."""
    out: dict[int, np.ndarray] = {}
    prev = None
    for row in sorted(rows, key=lambda r: int(r["frame"])):
        box = tuple(float(row[k]) for k in ("x1", "y1", "x2", "y2"))
        out[int(row["frame"])], prev = motion_step(box, float(row["time_s"]), prev)
    return out


def load_motion(frames_dir: Path, person_dirs: list[str]) -> dict[str, np.ndarray]:
    """Motion features keyed by crop path, read once per video from its tracks.csv."""
    by_video: dict[str, set[int]] = defaultdict(set)
    for d in person_dirs:
        video, person = d.rsplit("/", 1)
        by_video[video].add(int(person.split("_")[1]))
    motion: dict[str, np.ndarray] = {}
    for video, persons in by_video.items():
        path = Path(frames_dir) / video / "tracks.csv"
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except OSError:
            raise InputError(f"tracks.csv missing: {path}; set USE_MOTION_FEATURES = False or re-extract") from None
        per_person: dict[int, list[dict[str, str]]] = defaultdict(list)
        for row in rows:
            if int(row["person"]) in persons:
                per_person[int(row["person"])].append(row)
        for person, person_rows in per_person.items():
            for frame, vec in _motion_rows(person_rows).items():
                motion[f"{video}/person_{person}/frame_{frame:06d}.jpg"] = vec
    return motion


def motion_tensor(table: SequenceTable, rows: list[int], motion: dict[str, np.ndarray] | None) -> torch.Tensor:
    """(len(rows), T, 4) motion features of the given sequences (zeros without motion)."""
    out = np.zeros((len(rows), table.sequence_length, MOTION_DIM), np.float32)
    if motion:
        for n, i in enumerate(rows):
            for t, p in enumerate(table.frames[i]):
                vec = motion.get(p)
                if vec is not None:
                    out[n, t] = vec
    return torch.from_numpy(out)


def flip_motion(motion: torch.Tensor) -> torch.Tensor:
    """The motion of the mirrored clip: horizontal velocity changes sign."""
    flipped = motion.clone()
    flipped[..., 0] = -flipped[..., 0]
    return flipped


class CachedSequenceDataset(Dataset):
    """Sequences as gathered cached features: (features (T, 1280), motion (T, 4), label)."""

    def __init__(self, table: SequenceTable, rows: list[int], store: FeatureStore,
                 motion: dict[str, np.ndarray] | None, augment: bool) -> None:
        self.rows = rows
        self.labels = torch.tensor([table.labels[i] for i in rows], dtype=torch.long)
        self.index = torch.tensor([[store.index[p] for p in table.frames[i]] for i in rows], dtype=torch.long)
        self.motion = motion_tensor(table, rows, motion)
        self.store = store
        self.augment = augment

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.augment and torch.rand(()) < 0.5:
            return self.store.flipped[self.index[n]], flip_motion(self.motion[n]), self.labels[n]
        return self.store.plain[self.index[n]], self.motion[n], self.labels[n]


class ImageSequenceDataset(Dataset):
    """Sequences as crops (T, 3, H, W) in [0, 1] with per-clip augmentation, for fine-tuning."""

    def __init__(self, table: SequenceTable, rows: list[int], frames_dir: Path, size: tuple[int, int],
                 motion: dict[str, np.ndarray] | None, augment: bool) -> None:
        self.table, self.rows, self.frames_dir, self.size = table, rows, Path(frames_dir), size
        self.labels = torch.tensor([table.labels[i] for i in rows], dtype=torch.long)
        self.motion = motion_tensor(table, rows, motion)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        paths = self.table.frames[self.rows[n]]
        frames = crops_to_tensor([read_crop(self.frames_dir / p, self.size) for p in paths])
        motion = self.motion[n]
        if self.augment:
            frames, flipped = augment_clip(frames)
            if flipped:
                motion = flip_motion(motion)
        return frames, motion, self.labels[n]


def augment_clip(frames: torch.Tensor, rng: random.Random | None = None) -> tuple[torch.Tensor, bool]:
    """One random flip, resized crop and color jitter, applied alike to every frame of a clip."""
    from torchvision.transforms.v2 import functional as F

    rng = rng or random.Random(int(torch.randint(0, 2**31 - 1, ()).item()))
    _, _, h, w = frames.shape
    flipped = rng.random() < 0.5
    if flipped:
        frames = frames.flip(-1)
    scale = rng.uniform(0.8, 1.0)
    ch, cw = max(int(h * scale), 1), max(int(w * scale), 1)
    top, left = rng.randint(0, h - ch), rng.randint(0, w - cw)
    frames = F.resized_crop(frames, top, left, ch, cw, [h, w], antialias=True)
    frames = F.adjust_brightness(frames, rng.uniform(0.8, 1.2))
    frames = F.adjust_contrast(frames, rng.uniform(0.8, 1.2))
    frames = F.adjust_saturation(frames, rng.uniform(0.8, 1.2))
    return frames.clamp_(0, 1), flipped
