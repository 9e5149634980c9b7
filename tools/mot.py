"""Tracking quality on MOTChallenge-format sequences (MOTA, IDF1, ...), scored by py-motmetrics.

A sequence folder holds ``img1/*.jpg``, ``gt/gt.txt`` (frame, id, x, y, w, h, flag, class,
visibility) and ``seqinfo.ini``. The project's own ``PersonTracker`` runs on the images, with the
detector settings of config.py. As in the MOTChallenge devkit, only pedestrians (class 1) with
flag 1 are ground truth, and tracker boxes that overlap a distractor (person on vehicle, static
person, distractor, reflection) are removed before scoring instead of counting as false positives.

Example:
    >>> summary = evaluate_sequences([Path("MOT17-02-FRCNN")], tracker)  # doctest: +SKIP
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from behavior.detect.tracking import PersonTracker
from behavior.errors import InputError

PEDESTRIAN = 1
DISTRACTORS = (2, 7, 8, 12)  # person on vehicle, static person, distractor, reflection
METRICS = ("num_frames", "mota", "motp", "idf1", "idp", "idr", "precision", "recall", "num_false_positives",
           "num_misses", "num_switches", "mostly_tracked", "mostly_lost", "num_unique_objects")


@dataclass(frozen=True)
class Sequence:
    """One MOTChallenge sequence as it is on disk."""

    name: str
    images: list[Path]  # sorted; only the frames present are used (the mini set holds a few)
    fps: float
    gt: np.ndarray  # (N, 9) rows of gt.txt


def find_sequences(root: Path) -> list[Path]:
    """Sequence folders under ``root`` (itself, or ``root/train/*``, or ``root/*``)."""
    root = Path(root)
    if (root / "img1").is_dir():
        return [root]
    folders = sorted(p.parent for p in root.glob("**/img1") if p.is_dir())
    if not folders:
        raise InputError(f"no MOTChallenge sequence (a folder with img1/) under {root}")
    return folders


def load_sequence(folder: Path) -> Sequence:
    """Read a sequence's frame list, frame rate and ground truth."""
    folder = Path(folder)
    info = configparser.ConfigParser()
    info.read(folder / "seqinfo.ini")
    fps = float(info.get("Sequence", "frameRate", fallback="30"))
    images = sorted((folder / "img1").glob("*.jpg"))
    gt_path = folder / "gt" / "gt.txt"
    if not images or not gt_path.is_file():
        raise InputError(f"{folder} needs img1/*.jpg and gt/gt.txt")
    gt = np.loadtxt(gt_path, delimiter=",", ndmin=2)
    return Sequence(folder.name, images, fps, gt)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between boxes ``x, y, w, h`` (N, 4) and (M, 4)."""
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    w = (np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0])).clip(min=0)
    h = (np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1])).clip(min=0)
    inter = w * h
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _drop_distractor_matches(hyp: np.ndarray, distractors: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Remove tracker rows (id, x, y, w, h) matched (Hungarian, IoU >= threshold) to distractor boxes (x, y, w, h)."""
    from scipy.optimize import linear_sum_assignment

    if len(hyp) == 0 or len(distractors) == 0:
        return hyp
    iou = _iou(distractors, hyp[:, 1:5])
    rows, cols = linear_sum_assignment(-iou)
    drop = {c for r, c in zip(rows, cols, strict=True) if iou[r, c] >= threshold}
    return hyp[[i for i in range(len(hyp)) if i not in drop]]


def track_sequence(seq: Sequence, tracker: PersonTracker) -> dict[int, np.ndarray]:
    """Run the tracker over the sequence; per frame number, rows of ``id, x, y, w, h``."""
    tracker.reset(fps=seq.fps)
    out = {}
    for path in seq.images:
        frame = cv2.imread(str(path))
        dets = tracker.update(frame)
        out[int(path.stem)] = np.array([[d.track_id, d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1]]
                                        for d in dets]).reshape(-1, 5)
    return out


def score_sequence(seq: Sequence, tracks: dict[int, np.ndarray], name: str | None = None) -> Any:
    """A py-motmetrics accumulator for one sequence (IoU >= 0.5 matches)."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=False)
    for frame, hyp in sorted(tracks.items()):
        rows = seq.gt[seq.gt[:, 0] == frame]
        gt = rows[(rows[:, 7] == PEDESTRIAN) & (rows[:, 6] == 1)]
        hyp = _drop_distractor_matches(hyp, rows[np.isin(rows[:, 7], DISTRACTORS)][:, 2:6])
        hyp_boxes = hyp[:, 1:5] if len(hyp) else np.zeros((0, 4))
        distances = 1.0 - _iou(gt[:, 2:6], hyp_boxes)  # as mm.distances.iou_matrix, which needs NumPy < 2
        distances[distances > 0.5] = np.nan
        acc.update(gt[:, 1].astype(int).tolist(), hyp[:, 0].astype(int).tolist(), distances, frameid=frame)
    return acc


def evaluate_sequences(folders: list[Path], tracker: PersonTracker) -> Any:
    """Track and score every sequence; returns a pandas table, one row per sequence plus OVERALL."""
    import motmetrics as mm

    accumulators, names = [], []
    for folder in folders:
        seq = load_sequence(folder)
        accumulators.append(score_sequence(seq, track_sequence(seq, tracker)))
        names.append(seq.name)
    metrics = mm.metrics.create()
    return metrics.compute_many(accumulators, names=names, metrics=list(METRICS), generate_overall=True)
