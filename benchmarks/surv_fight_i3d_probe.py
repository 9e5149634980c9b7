#!/usr/bin/env python
"""The bare I3D probe on surv_fight: each clip's whole-frame I3D features, averaged, and a logistic regression.

No tracker, no LSTM: the features are those the tool's ``scene_video`` stream caches (I3D ``Mixed_5c`` of each
clip of VIDEO_CLIP_LENGTH scene images at VIDEO_SIZE, averaged), averaged again over the video's kept frames; a
scikit-learn logistic regression on standardized features (C = 0.01) reads them. This is the probe that issue 35
opened with (0.831 by source); the tool's streams should beat it on the same folds.

Folds are grouped by source recording, over the source split's train + val videos (192), as
``benchmarks/surv_fight.py --tune 5`` uses them. The scene features are read from the tool's cache (a ``--tune``
run with ``scene_video`` in INPUTS fills it) and computed where missing, on ``--backend``:

    python benchmarks/surv_fight_i3d_probe.py --frames-dir W/person/frames --features-dir W/person/features
    python benchmarks/surv_fight_i3d_probe.py ... --cv-dir W/person/tune/<run>/model/cv   # its folds; fused with it
    python benchmarks/surv_fight_i3d_probe.py ... --video-clip-length 8 --backend openvino --precision bfloat16
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from surv_fight_flow import (
    DATASET,
    accuracy,
    dataset_videos,
    print_runs,
    run_folds,
    run_row,
    source_folds,
)

import config
from behavior import cli, settings
from behavior.features.video_backbone import VideoBackbone, VideoFeatureCache
from behavior.io.frames import SCENE_DIR
from behavior.runtime import backends, environment

ROOT = Path(__file__).resolve().parents[1]




def video_features(frames_dir: Path, features_dir: Path, videos: list[str], backbone: VideoBackbone) -> np.ndarray:
    """Each video's ``scene_video`` features (from the tool's cache, computed where missing) averaged over its kept
    frames (video, 1024)."""
    folders = [f"{video}/{SCENE_DIR}" for video in videos]
    store = VideoFeatureCache(features_dir, backbone.key).load(frames_dir, folders, backbone)
    rows: dict[str, list[int]] = {}
    for name, row in store.index.items():
        rows.setdefault(name.rsplit("/", 2)[0], []).append(row)
    return np.stack([store.plain[rows[video]].float().mean(0).numpy() for video in videos])


def out_of_fold(features: np.ndarray, labels: np.ndarray, folds: np.ndarray, c: float) -> np.ndarray:
    """Each video's fight probability from a logistic regression trained on the other folds."""
    probability = np.zeros(len(labels))
    for fold in np.unique(folds):
        held_out = folds == fold
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
        probe.fit(features[~held_out], labels[~held_out])
        probability[held_out] = probe.predict_proba(features[held_out])[:, 1]
    return probability


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips-dir", type=Path, default=DATASET, help="the dataset, <class>/<clip>.mp4")
    parser.add_argument("--frames-dir", type=Path, required=True, help="stage 1's output, with scene images")
    parser.add_argument("--features-dir", type=Path, required=True, help="where the tool cached the I3D features")
    parser.add_argument("--video-clip-length", type=int, default=16)
    parser.add_argument("--video-size", type=int, default=config.VIDEO_SIZE)
    parser.add_argument("--backend", default="torch", choices=["torch", *backends.RUNTIME_PACKAGES],
                        help="where I3D computes features missing from the cache (its key names the runtime)")
    parser.add_argument("--precision", default="float32", choices=settings.INFERENCE_PRECISIONS, help="OpenVINO's")
    parser.add_argument("--c", type=float, default=0.01, help="the logistic regression's inverse regularization")
    parser.add_argument("--cv-dir", type=Path, nargs="*", default=[], help="CV runs to compare with and fuse")
    parser.add_argument("--seeds", type=int, nargs="*", default=[42, 7, 123], help="fold seeds without --cv-dir")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args(argv)
    cli.setup_logging("WARNING")
    jobs, labels, sources = dataset_videos(args.clips_dir)
    videos = [job.key for job in jobs]
    backbone = VideoBackbone.load(config.I3D_WEIGHTS, args.video_clip_length, args.video_size, "cpu", args.backend,
                                  args.precision)
    features = video_features(args.frames_dir, args.features_dir, videos, backbone)
    rows = []
    for seed in [] if args.cv_dir else args.seeds:
        folds = source_folds(labels, sources, args.folds, seed)
        rows.append([f"seed {seed}", f"{accuracy(out_of_fold(features, labels, folds, args.c), labels):.3f}", "", ""])
    for number, cv_dir in enumerate(args.cv_dir, 1):
        folds, model = run_folds(cv_dir, videos)
        rows.append(run_row(f"run {number}", out_of_fold(features, labels, folds, args.c), model, labels))
    print_runs("I3D probe", rows, args.cv_dir)
    print(f"\n{len(videos)} videos, {args.folds}-fold CV grouped by source; scene I3D features of clips of "
          f"{args.video_clip_length} at {args.video_size} px ({backbone.backend}, {backbone.precision}), "
          f"logistic regression C = {args.c}")
    return 0


if __name__ == "__main__":
    environment.setup()  # offline Ultralytics, the torchvision fix
    sys.exit(cli.run(main))
