#!/usr/bin/env python
"""Stage 3's caches: crops per second through MobileNetV2, YOLOv8-pose and I3D on each inference backend.

The feature cache runs every crop through MobileNetV2 twice (as saved and mirrored,
``features.embed_images``) in batches of FEATURE_BATCH_SIZE; the keypoint cache runs YOLOv8-pose on
each crop (``pose.PoseEstimator.estimate``) in batches of 32. Both are timed here on the same real
person crops (cut by the project's own ``crop_person`` from surv_fight frames), every backend in
this one process, alternating pass by pass. Prints the median crops/s of each and the ratio to torch.
The I3D cache (INPUTS "scene_video") is timed at each ``--video-sizes`` on the same images as one folder
(``video_features.folder_features``: one clip every VIDEO_CLIP_LENGTH images, plain and mirrored) on each
backend (OpenVINO in float32 and in bfloat16), against that runtime's bare network on the same clips.

    python benchmarks/cache_speed.py                          # 256 crops, 5 passes
    python benchmarks/cache_speed.py --crops 512 --backends torch openvino --video-sizes 224
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

import config
from behavior import cli
from behavior.detect.crops import crop_person
from behavior.detect.pose import PoseEstimator, PoseSettings
from behavior.detect.tracking import PersonTracker
from behavior.features.appearance import embed_images
from behavior.features.video_backbone import CLIP_BATCH, VideoBackbone, clip_positions, fit_size, folder_features
from behavior.io.weights import resolve_weights
from behavior.model.i3d import to_clip
from behavior.model.network import BehaviorNet, ModelConfig, load_backbone
from behavior.report import format_table
from behavior.runtime import backends, environment, hardware
from behavior.settings import DetectorSettings, TrainConfig

ROOT = Path(__file__).resolve().parents[1]



CLIP_LENGTH = ModelConfig.video_clip_length  # images per I3D clip

DEFAULT_CLIPS = ROOT.parent / "shared" / "assets" / "datasets" / "surv_fight"


def person_crops(clips_dir: Path, count: int, size: tuple[int, int]) -> np.ndarray:
    """``count`` RGB crops of the people the detector finds in the clips' frames."""
    tracker = PersonTracker(DetectorSettings(weights=config.YOLO_WEIGHTS, backend="torch"))
    crops: list[np.ndarray] = []
    for clip in sorted(clips_dir.rglob("*.mp4")):
        cap = cv2.VideoCapture(str(clip))
        for i in range(60):
            ok, frame = cap.read()
            if not ok:
                break
            if i % 10 == 0:
                for box in tracker.detect(frame).xyxy:
                    crop = crop_person(frame, tuple(float(v) for v in box), size, config.CROP_MARGIN)
                    crops.append(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        cap.release()
        if len(crops) >= count:
            return np.stack(crops[:count])
    raise SystemExit(f"found only {len(crops)} person crops in {clips_dir}")


def i3d_runs(crops: np.ndarray, size: int, length: int, runtimes: list[str]) -> dict[str, Callable[[], object]]:
    """Filling the I3D cache for ``crops`` as one folder on each runtime ("openvino bfloat16": OpenVINO in that
    precision), and each runtime's bare network on the same clips."""
    images = [fit_size(c, size) for c in crops]
    clips = torch.stack([to_clip(np.stack([images[p] for p in clip_positions(e, length)]))
                         for e in range(0, len(images), length)])
    runs: dict[str, Callable[[], object]] = {}
    for name in runtimes:
        backend, _, precision = name.partition(" ")
        backbone = VideoBackbone.load(config.I3D_WEIGHTS, length, size, "cpu", backend, precision or "float32")
        forward = backbone.compiled or (lambda x, net=backbone.net: net.features(x).mean(dim=(2, 3, 4)))

        def bare(forward: Callable = forward, numpy: bool = backbone.compiled is not None) -> None:
            with torch.inference_mode():
                for i in range(0, len(clips), CLIP_BATCH):
                    for x in (clips[i:i + CLIP_BATCH], clips[i:i + CLIP_BATCH].flip(-1)):
                        forward(x.numpy() if numpy else x)

        runs[f"bare {name}"] = bare
        runs[name] = lambda backbone=backbone: folder_features(images, backbone)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips-dir", type=Path, default=DEFAULT_CLIPS)
    parser.add_argument("--crops", type=int, default=256)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--backends", nargs="+", default=["torch", "openvino", "onnxruntime"])
    parser.add_argument("--video-sizes", nargs="*", type=int, default=[112, 160, 224], help="I3D input sizes")
    args = parser.parse_args()
    cli.setup_logging("WARNING")
    size = (config.FRAME_WIDTH, config.FRAME_HEIGHT)
    crops = person_crops(args.clips_dir, args.crops, size)
    backbone = load_backbone(resolve_weights(config.BACKBONE_WEIGHTS))
    precision = hardware.cpu_precision(config.INFERENCE_PRECISION)
    nets = {b: BehaviorNet(ModelConfig(cpu_precision=precision, cnn_backend=b), backbone) for b in args.backends}
    poses = {b: PoseEstimator(PoseSettings(config.POSE_WEIGHTS, backend=b)) for b in args.backends}
    boxes = [(0.0, 0.0, float(size[0]), float(size[1]))] * len(crops)  # where each crop's person is expected

    def features(backend: str) -> None:
        for i in range(0, len(crops), TrainConfig.feature_batch_size):
            embed_images(nets[backend], crops[i:i + TrainConfig.feature_batch_size], "cpu")

    def keypoints(backend: str) -> None:
        for i in range(0, len(crops), 32):
            poses[backend].estimate(crops[i:i + 32], boxes[i:i + 32])

    for backend in args.backends:  # warm-up: exports, compilation, first-run allocations
        backends.compiled_backbone(nets[backend])
        features(backend)
        keypoints(backend)
    threads = hardware.set_threads(config.TORCH_THREADS)
    rates: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.passes):
        for cache, run in (("features (MobileNetV2, plain + mirror)", features),
                           ("keypoints (YOLOv8-pose)", keypoints)):
            for backend in args.backends:
                start = time.perf_counter()
                run(backend)
                rates.setdefault((cache, backend), []).append(len(crops) / (time.perf_counter() - start))

    for size_px in args.video_sizes:
        runtimes = [*args.backends, *(["openvino bfloat16"] if "openvino" in args.backends else [])]
        for name, run in i3d_runs(crops, size_px, CLIP_LENGTH, runtimes).items():
            run()  # warm-up
            for _ in range(args.passes):
                start = time.perf_counter()
                run()
                rates.setdefault((f"I3D {size_px}px, clips of {CLIP_LENGTH}", name), []).append(
                    len(crops) / (time.perf_counter() - start))

    rows = []
    for (cache, backend), r in rates.items():
        torch_rate = statistics.median(rates.get((cache, "torch"), r))
        bare = rates.get((cache, f"bare {backend}"))
        rows.append([cache, backend, statistics.median(r), min(r), max(r), statistics.median(r) / torch_rate,
                     statistics.median(r) / statistics.median(bare) if bare else ""])
    print(f"{len(crops)} person crops {size[0]}x{size[1]} from {args.clips_dir}; threads: {threads}; "
          f"MobileNetV2 in {precision}; passes: {args.passes}; openvino {backends.runtime_version('openvino')}, "
          f"onnxruntime {backends.runtime_version('onnxruntime')}")
    print(format_table(["cache", "backend", "median crops/s", "min", "max", "x torch", "x bare"], rows))
    return 0


if __name__ == "__main__":
    environment.setup()  # offline Ultralytics, the torchvision fix
    raise SystemExit(main())
