#!/usr/bin/env python
"""Where each tracked person's keypoints come from: the pose model on their crop, or on the whole frame.

On real clips (surv_fight by default), every kept frame is tracked once (YOLOv8 + ByteTrack, as
stage 1), then both ways run on the same frame, alternating:

    crop         YOLOv8-pose on each tracked person's crop (the pipeline's ``person_features.training_crop``),
                 batched over the frame's people, at POSE_IMGSZ; the pose best overlapping the tracked box
    whole frame  YOLOv8-pose once on the frame at YOLO_IMGSZ; each tracked box takes the pose that overlaps
                 it best (IoU >= pose.MIN_MATCH_IOU), each pose at most once

Prints, per way, the median ms per frame and per person, and the share of tracked people that got
keypoints (coverage). The pipeline uses the crop way (see docs/ARCHITECTURE.md for why).

    python benchmarks/pose_source.py [--videos 12]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

import config
from behavior import cli
from behavior.detect.pose import MIN_MATCH_IOU, POSE_CONF, CropGeometry, PoseEstimator, PoseSettings, box_iou
from behavior.detect.tracking import PersonTracker
from behavior.io.clips import find_videos
from behavior.io.video import FrameReader
from behavior.model.network import ModelConfig
from behavior.predict.person_features import training_crop
from behavior.report import format_table
from behavior.runtime import environment, hardware
from behavior.settings import DetectorSettings

ROOT = Path(__file__).resolve().parents[1]


DEFAULT_CLIPS = ROOT.parent / "shared" / "assets" / "datasets" / "surv_fight"


def whole_frame(estimator: PoseEstimator, frame: np.ndarray, boxes: list, imgsz: int) -> list[bool]:
    """Pose on the whole frame, matched to the tracked boxes greedily by IoU; which boxes got keypoints."""
    result = estimator.model.predict(frame, imgsz=imgsz, conf=POSE_CONF, device=estimator.device, verbose=False)[0]
    poses = result.boxes.xyxy.cpu().numpy() if result.boxes is not None else np.zeros((0, 4))
    pairs = sorted(((box_iou(p, b), i, j) for i, b in enumerate(boxes) for j, p in enumerate(poses)), reverse=True)
    taken_box, taken_pose = set(), set()
    for iou, i, j in pairs:
        if iou >= MIN_MATCH_IOU and i not in taken_box and j not in taken_pose:
            taken_box.add(i)
            taken_pose.add(j)
    return [i in taken_box for i in range(len(boxes))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips-dir", type=Path, default=DEFAULT_CLIPS)
    parser.add_argument("--videos", type=int, default=12, help="how many clips (spread over the classes)")
    args = parser.parse_args()
    cli.setup_logging("WARNING")
    jobs = find_videos(args.clips_dir)
    jobs = jobs[:: max(1, len(jobs) // args.videos)][: args.videos]
    detector = DetectorSettings.from_config(cli.config_constants(config))
    tracker = PersonTracker(detector)
    estimator = PoseEstimator(PoseSettings(config.POSE_WEIGHTS, device=detector.device))
    model_config = ModelConfig()
    threads = hardware.set_threads(detector.threads)
    ms = {"crop": [], "whole frame": []}
    found = {"crop": 0, "whole frame": 0}
    people = frames = 0
    for job in jobs:
        reader = FrameReader(job.path, config.TARGET_FPS)
        tracker.reset(fps=min(reader.fps, config.TARGET_FPS))
        for frame in reader:
            dets = tracker.update(frame.image)
            if not dets:
                continue
            boxes = [d.box for d in dets]
            start = time.perf_counter()
            crops = [training_crop(frame.image, d, model_config) for d in dets]
            geometry = [CropGeometry.of(b, model_config.crop_margin, (model_config.frame_width,
                                                                      model_config.frame_height)) for b in boxes]
            points = estimator.estimate_source(crops, boxes, geometry)
            ms["crop"].append((time.perf_counter() - start) * 1000)
            found["crop"] += sum(bool(np.isfinite(p[:, 2]).any()) for p in points)
            start = time.perf_counter()
            matched = whole_frame(estimator, frame.image, boxes, detector.imgsz)
            ms["whole frame"].append((time.perf_counter() - start) * 1000)
            found["whole frame"] += sum(matched)
            people += len(dets)
            frames += 1
    per_person = people / max(frames, 1)
    rows = [[way, statistics.median(t), statistics.mean(t) / per_person, found[way] / max(people, 1)]
            for way, t in ms.items()]
    print(f"clips: {len(jobs)} from {args.clips_dir}; {frames} frames with people, {people} tracked people "
          f"({per_person:.1f} a frame); device: {estimator.device}; threads: {threads}; pose imgsz: crop "
          f"{PoseSettings.imgsz}, whole frame {detector.imgsz}")
    print(format_table(["keypoints from", "median ms/frame", "mean ms/person", "coverage"], rows))
    return 0


if __name__ == "__main__":
    environment.setup()  # offline Ultralytics, the torchvision fix
    raise SystemExit(main())
