#!/usr/bin/env python
"""A bare-library accuracy baseline for surv_fight: optical-flow statistics of each clip and a random forest.

No detector, no tracker, no CNN: each clip's kept frames (TARGET_FPS) are shrunk to 240 px wide, OpenCV's
Farneback flow is computed between consecutive ones, and 21 numbers a frame (flow speed in frame widths per
second: mean, spread, percentiles, the share of moving pixels; the direction histogram's entropy; the change of
speed from one frame to the next, as "violent flows" uses it; a 4 x 4 grid's busiest cell; the grey-level
difference) are summarized over the clip (mean, spread, maximum, mean change): 84 numbers a clip. A scikit-learn
random forest reads them. It answers two questions for the ``>= 85 %`` target of issue 12: how far plain motion
statistics go when folds never share a recording, and whether they add to the tool's own models.

Folds are grouped by source recording, over the source split's train + val videos (192), as
``benchmarks/surv_fight.py --tune 5`` uses them:

    python benchmarks/surv_fight_flow.py                       # StratifiedGroupKFold at seeds 42, 7, 123
    python benchmarks/surv_fight_flow.py --cv-dir W/person/tune/<run>/model/cv [...]

With ``--cv-dir`` (a ``train_mobilenet_lstm.py --cv`` output folder, one or more), the forest is cross-validated on
that run's own folds (``folds.csv``) and also fused with it: the mean of the forest's fight probability and the
run's held-out one (each person's mean over their windows, the most fighting person's for the clip, as MIL pooling
``max`` reads a clip). Runs made on the same folds (the same ``--seed``, e.g. a per-person and a whole-frame run) are
also fused all together, each run and the forest weighted alike.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedGroupKFold
from tqdm import tqdm

import config
from behavior import cli
from behavior.data.splits import read_groups_file, read_split_file
from behavior.errors import InputError
from behavior.io.clips import VideoJob, find_videos
from behavior.io.video import FrameReader
from behavior.report import format_table
from behavior.runtime import environment

ROOT = Path(__file__).resolve().parents[1]


DATASET = ROOT.parent / "shared" / "assets" / "datasets" / "surv_fight"
SPLIT = Path(__file__).resolve().parent / "surv_fight_source_split.csv"
WIDTH = 240  # pixels the flow is computed at: enough for limbs of 320 px clips, cheap for 1080p ones
GRID = 4
SPEED_CHANGE_BINS = [0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, np.inf]  # frame widths per second


def frame_stats(previous: np.ndarray, current: np.ndarray, previous_speed: np.ndarray | None,
                seconds: float) -> tuple[list[float], np.ndarray]:
    """The 21 numbers of one pair of kept frames, and this pair's flow speed image for the next pair."""
    flow = cv2.calcOpticalFlowFarneback(previous, current, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    magnitude, angle = cv2.cartToPolar(flow[..., 0], flow[..., 1])
    speed = magnitude / current.shape[1] / seconds  # frame widths per second: the same at any size and frame rate
    values = speed.ravel()
    directions, _ = np.histogram(angle.ravel(), bins=8, range=(0, 2 * np.pi), weights=values)
    directions = directions / (directions.sum() + 1e-9)
    change = np.abs(speed - previous_speed) if previous_speed is not None else np.zeros_like(speed)
    change_hist = np.histogram(change, bins=SPEED_CHANGE_BINS)[0] / change.size
    h, w = speed.shape[0] // GRID, speed.shape[1] // GRID
    cells = np.array([speed[a * h:(a + 1) * h, b * w:(b + 1) * w].mean() for a in range(GRID) for b in range(GRID)])
    grey = np.abs(current.astype(np.float32) - previous.astype(np.float32)).mean() / 255
    stats = [values.mean(), values.std(), *np.percentile(values, [50, 90, 99]), (values > 0.5).mean(),
             (values > 1.0).mean(), -(directions * np.log(directions + 1e-9)).sum(), change.mean(), cells.max(),
             cells.std(), cells.max() / (cells.mean() + 1e-6), grey, *change_hist]
    return stats, speed


def clip_features(path: Path) -> np.ndarray:
    """One clip's 84 numbers: its frames' statistics summarized over time."""
    reader = FrameReader(path, target_fps=config.TARGET_FPS)
    rows, previous, previous_time, previous_speed = [], None, 0.0, None
    for frame in reader:
        height, width = frame.image.shape[:2]
        small = cv2.resize(frame.image, (WIDTH, max(1, round(height * WIDTH / width))), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        if previous is not None:
            stats, previous_speed = frame_stats(previous, grey, previous_speed, frame.time_s - previous_time)
            rows.append(stats)
        previous, previous_time = grey, frame.time_s
    if len(rows) < 2:
        raise InputError(f"{path}: fewer than 3 frames")
    per_frame = np.nan_to_num(np.array(rows))
    return np.concatenate([per_frame.mean(0), per_frame.std(0), per_frame.max(0),
                           np.abs(np.diff(per_frame, axis=0)).mean(0)])


def dataset_videos(clips_dir: Path) -> tuple[list[VideoJob], np.ndarray, np.ndarray]:
    """The train + val videos of the source split, their fight labels and their source recordings."""
    jobs = find_videos(clips_dir)
    split_of = read_split_file(SPLIT, [job.key for job in jobs])
    jobs = [job for job in jobs if split_of.get(job.key, "test") != "test"]
    group_of = read_groups_file(clips_dir / "sources.csv", [job.key for job in jobs])
    return jobs, np.array([job.label == "fight" for job in jobs], int), np.array([group_of[job.key] for job in jobs])


def out_of_fold(features: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each video's fight probability from a forest trained on the other folds."""
    probability = np.zeros(len(labels))
    for fold in np.unique(folds):
        held_out = folds == fold
        forest = RandomForestClassifier(500, min_samples_leaf=3, random_state=0, n_jobs=2)
        forest.fit(features[~held_out], labels[~held_out])
        probability[held_out] = forest.predict_proba(features[held_out])[:, 1]
    return probability


def run_folds(cv_dir: Path, videos: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A CV run's fold of each video and its held-out fight probability (a person: mean of windows; a clip: max)."""
    with open(cv_dir / "folds.csv", newline="", encoding="utf-8") as f:
        fold_of = {r["video"]: int(r["fold"]) for r in csv.DictReader(f)}
    people: dict[tuple[str, str], list[float]] = defaultdict(list)
    for predictions in sorted(cv_dir.glob("fold_*/predictions.csv")):
        with open(predictions, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                parts = r["sequence_id"].split("/")
                people["/".join(parts[:2]), parts[2]].append(float(r["p_fight"]))
    clip: dict[str, float] = {}
    for (video, _), windows in people.items():
        clip[video] = max(clip.get(video, 0.0), float(np.mean(windows)))
    absent = [v for v in videos if v not in fold_of or v not in clip]
    if absent:
        raise InputError(f"{cv_dir}: no fold or prediction for {len(absent)} videos, e.g. {absent[0]}")
    return np.array([fold_of[v] for v in videos]), np.array([clip[v] for v in videos])


def source_folds(labels: np.ndarray, sources: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Each video's fold (1..k) of a StratifiedGroupKFold by source recording."""
    folds = np.zeros(len(labels), int)
    splitter = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels, sources), 1):
        folds[held_out] = fold
    return folds


def print_runs(baseline: str, rows: list[list[str]], cv_dirs: list[Path]) -> None:
    """The table of a baseline against (and fused with) each CV run, and which run is which."""
    print(format_table(["folds", baseline, "the run", "mean of both"], rows))
    for number, cv_dir in enumerate(cv_dirs, 1):
        print(f"run {number}: {cv_dir}")


def run_row(name: str, baseline: np.ndarray, model: np.ndarray, labels: np.ndarray) -> list[str]:
    """A row of ``print_runs``: the baseline's accuracy, the run's, and that of their mean."""
    return [name, f"{accuracy(baseline, labels):.3f}", f"{accuracy(model, labels):.3f}",
            f"{accuracy((baseline + model) / 2, labels):.3f}"]


def accuracy(probability: np.ndarray, labels: np.ndarray) -> float:
    """Share of videos whose fight probability falls on the right side of one half."""
    return float(((probability > 0.5) == labels).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips-dir", type=Path, default=DATASET, help="the dataset, <class>/<clip>.mp4")
    parser.add_argument("--cv-dir", type=Path, nargs="*", default=[], help="CV runs to compare with and fuse")
    parser.add_argument("--seeds", type=int, nargs="*", default=[42, 7, 123], help="fold seeds without --cv-dir")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args(argv)
    cli.setup_logging("INFO")
    if not (args.clips_dir / "sources.csv").is_file():
        raise InputError(f"dataset not found: {args.clips_dir} (it needs sources.csv)")
    for cv_dir in args.cv_dir:
        if not (cv_dir / "folds.csv").is_file():
            raise InputError(f"not a CV output folder (no folds.csv): {cv_dir}")
    jobs, labels, sources = dataset_videos(args.clips_dir)
    videos = [job.key for job in jobs]
    started = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        paths = [job.path for job in jobs]
        features = np.array(list(tqdm(pool.map(clip_features, paths), total=len(paths), desc="flow", unit="clip")))
    seconds = time.perf_counter() - started
    rows = []
    for seed in [] if args.cv_dir else args.seeds:
        folds = source_folds(labels, sources, args.folds, seed)
        rows.append([f"seed {seed}", f"{accuracy(out_of_fold(features, labels, folds), labels):.3f}", "", ""])
    runs = [run_folds(cv_dir, videos) for cv_dir in args.cv_dir]
    forests: dict[bytes, np.ndarray] = {}  # the forest's held-out probabilities, once for each set of folds
    for number, (folds, model) in enumerate(runs, 1):
        if folds.tobytes() not in forests:
            forests[folds.tobytes()] = out_of_fold(features, labels, folds)
        forest = forests[folds.tobytes()]
        rows.append(run_row(f"run {number}", forest, model, labels))
    if len(runs) > 1 and all(np.array_equal(folds, runs[0][0]) for folds, _ in runs):
        models = np.mean([model for _, model in runs], axis=0)
        forest = forests[runs[0][0].tobytes()]
        rows.append([f"runs 1-{len(runs)}", f"{accuracy(forest, labels):.3f}", f"{accuracy(models, labels):.3f}",
                     f"{accuracy((forest + len(runs) * models) / (len(runs) + 1), labels):.3f}"])
    print()
    print_runs("flow forest", rows, args.cv_dir)
    print(f"\n{len(videos)} videos, {args.folds}-fold CV grouped by source; flow features in {seconds:.0f} s "
          f"({1000 * seconds / len(videos):.0f} ms a clip, 2 processes)")
    return 0


if __name__ == "__main__":
    environment.setup()  # offline Ultralytics, the torchvision fix
    sys.exit(cli.run(main))
