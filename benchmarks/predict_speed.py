#!/usr/bin/env python
"""Stage 4 speed: predict.py end to end against the bare detector + tracker loop, per frame.

For generated 1280x720 videos with 1, 2 and 5 people (15 fps, so every frame is kept), both run
in this one process, alternating pass by pass: the bare loop is ``cv2.VideoCapture`` +
``YOLO.track(persist=True)``; prediction adds the crops, MobileNetV2, the LSTM, drawing and
writing annotated.mp4, tracks.csv and summary.json. Prints the median ms/frame of each, the
ratio and the classification overhead (ratio - 1; target <= 0.5 with 2 people on the 2-core CPU).

Without --checkpoint (or a model in MODEL_DIR) untrained models are timed, one per set of streams in
``--inputs`` (speed does not depend on the weights): by default the appearance + motion model, the
same with pose and interaction (YOLOv8-pose on every crop), and the streams alone without a CNN.
The pose overhead is each model's time over the first one's. Every model runs on each of
``--backends`` (INFERENCE_BACKEND[:INFERENCE_PRECISION[:DETECT_BATCH]]; an untrained model's MobileNetV2
too, a trained one's as it was trained). Target: >= 15 processed frames/s (<= 66.7 ms a frame) with 5 people.

    python benchmarks/predict_speed.py [--checkpoint models/lstm_mn/best_mobilenet_lstm.pth] [--passes 3]
    python benchmarks/predict_speed.py --inputs appearance+motion pose --backends torch openvino:bfloat16
    python benchmarks/predict_speed.py --backends openvino:float32:1 openvino:float32:4   # DETECT_BATCH
    python benchmarks/predict_speed.py --inputs motion+pose+interaction --ensemble-sizes 1 5   # ENSEMBLE_SIZE
    python benchmarks/predict_speed.py --inputs motion+pose+interaction scene_video+motion+pose+interaction
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from bare import Run, bare_track_pass

import config
from behavior import cli
from behavior.detect.pose import PoseSettings
from behavior.io.checkpoint import BEST, save_checkpoint
from behavior.io.files import file_sha256
from behavior.io.weights import load_yolo, resolve_weights
from behavior.model.network import BehaviorNet, ModelConfig
from behavior.predict.session import Predictor
from behavior.report import format_table
from behavior.runtime import environment, hardware
from behavior.settings import PredictSettings
from tools.synthetic import ClipSpec, write_clip

ROOT = Path(__file__).resolve().parents[1]





def untrained_checkpoint(path: Path, cpu_precision: str, inputs: tuple[str, ...], backend: str,
                         ensemble_size: int) -> Path:
    """A checkpoint with the default model config, the given streams and random weights, for timing only."""
    from torchvision.models import mobilenet_v2

    model_config = ModelConfig(num_classes=2, cpu_precision=cpu_precision, inputs=inputs, cnn_backend=backend,
                     ensemble_size=ensemble_size,
                     video_size=config.VIDEO_SIZE)
    if model_config.i3d:
        model_config = dataclasses.replace(model_config,
                                           video_sha256=file_sha256(str(resolve_weights(config.I3D_WEIGHTS))))
    if model_config.needs_keypoints:
        model_config = dataclasses.replace(model_config, pose_sha256=PoseSettings(config.POSE_WEIGHTS).sha256())
    net = BehaviorNet(model_config, mobilenet_v2().features if model_config.appearance else None)
    save_checkpoint(path, {"model": net.state_dict(), "classes": ["a", "b"], "model_config": model_config.to_dict(),
                           "train_config": {}, "metrics": {}, "epoch": 0, "versions": hardware.versions()})
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--people", type=int, nargs="+", default=[1, 2, 5])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--inputs", nargs="+", default=["appearance+motion", "appearance+motion+pose+interaction",
                                                        "motion+pose+interaction"],
                        help="without --checkpoint: the models to time, each a +-joined set of INPUTS streams")
    parser.add_argument("--backends", nargs="+", default=["torch", "openvino:float32", "openvino:bfloat16"],
                        metavar="BACKEND[:PRECISION[:BATCH]]",
                        help="INFERENCE_BACKEND (and INFERENCE_PRECISION, DETECT_BATCH: config's by default) per run")
    parser.add_argument("--ensemble-sizes", type=int, nargs="+", default=[config.ENSEMBLE_SIZE],
                        help="without --checkpoint: ENSEMBLE_SIZE of the untrained models (config's by default)")
    args = parser.parse_args()
    cli.setup_logging("WARNING")
    cfg = cli.config_constants(config)
    base = PredictSettings.from_config(cfg)

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or Path(cfg["MODEL_DIR"]) / BEST
        trained = checkpoint.is_file()
        predictors = {}
        for run in (Run.parse(text, batch=base.detector.batch) for text in args.backends):
            detector = dataclasses.replace(base.detector, backend=run.backend, precision=run.precision, batch=run.batch)
            settings = dataclasses.replace(base, detector=detector)
            if trained:
                predictor = Predictor(checkpoint, settings)
                predictors[f"{run} {'+'.join(predictor.model_config.inputs)}"] = predictor
                continue
            for name in args.inputs:
                for size in args.ensemble_sizes:
                    label = f"{name} x{size}" if len(args.ensemble_sizes) > 1 else name
                    path = untrained_checkpoint(Path(tmp) / f"{name}_{size}_{run.backend}.pth", hardware.cpu_precision(
                        cfg["INFERENCE_PRECISION"]), tuple(name.split("+")), run.backend, size)
                    predictors[f"{run} {label}"] = Predictor(path, settings)
        bare = load_yolo(base.detector.weights)  # the same checked file the pipeline loads
        rows = []
        for people in args.people:
            video = write_clip(Path(tmp) / f"p{people}.mp4", ClipSpec(motion="walking", persons=people, width=1280,
                                                                     height=720, fps=15.0, seconds=args.seconds,
                                                                     seed=40 + people))
            bare_track_pass(bare, [video], base.detector)  # warm-up
            hardware.set_threads(base.detector.threads)  # Ultralytics lowers it on first use
            ms: dict[str, list[float]] = {"bare": [], **{name: [] for name in predictors}}
            summaries = {}
            for n in range(args.passes):
                start = time.perf_counter()
                frames = bare_track_pass(bare, [video], base.detector)
                ms["bare"].append((time.perf_counter() - start) * 1000 / frames)
                for name, predictor in predictors.items():
                    start = time.perf_counter()
                    summary = predictor.run(video, Path(tmp) / f"out{people}_{n}_{name}", progress=False)
                    ms[name].append((time.perf_counter() - start) * 1000 / summary["frames_kept"])
                    summaries[name] = summary
            bare_ms = statistics.median(ms["bare"])
            first = statistics.median(ms[next(iter(predictors))])
            for name, summary in summaries.items():
                pred_ms = statistics.median(ms[name])
                stages = summary["timing_ms_per_frame"]
                rows.append([people, name, len(summary["tracks"]), bare_ms, pred_ms, 1000 / pred_ms, pred_ms / bare_ms,
                             pred_ms / bare_ms - 1, pred_ms / first,
                             " ".join(f"{k}={v:.0f}" for k, v in stages.items() if k != "total")])

    predictor = next(iter(predictors.values()))
    print(f"device: {predictor.device}; threads: {hardware.set_threads(base.detector.threads)}; "
          f"CNN on the CPU in {predictor.model_config.cpu_precision}; 1280x720, "
          f"{args.seconds:g} s at 15 fps; passes: {args.passes}; model: {'trained' if trained else 'untrained'}")
    print(format_table(["people", "backend inputs", "tracks", "bare ms/frame", "predict ms/frame", "predict fps",
                        "ratio", "overhead", "x first model", "predict stages (ms/frame)"], rows))
    for row in rows:
        if row[0] == max(args.people):
            print(f"{row[1]} with {row[0]} people: {row[5]:.1f} processed frames/s (target >= 15: "
                  f"{'met' if row[5] >= 15 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    environment.setup()  # offline Ultralytics, the torchvision fix
    raise SystemExit(main())
