#!/usr/bin/env python
"""Stage 4 speed: predict.py end to end against the bare detector + tracker loop, per frame.

For generated 1280x720 videos with 1, 2 and 5 people (15 fps, so every frame is kept), both run
in this one process, alternating pass by pass: the bare loop is ``cv2.VideoCapture`` +
``YOLO.track(persist=True)``; prediction adds the crops, MobileNetV2, the LSTM, drawing and
writing annotated.mp4, tracks.csv and summary.json. Prints the median ms/frame of each, the
ratio and the classification overhead (ratio - 1; target <= 0.5 with 2 people on the 2-core CPU).

Without --checkpoint (or a model in MODEL_DIR) the LSTM is untrained: speed does not depend on
the weights.

    python benchmarks/predict_speed.py [--checkpoint models/lstm_mn/best_mobilenet_lstm.pth] [--passes 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


from bare import bare_track_pass  # noqa: E402

import config  # noqa: E402
from behavior import cli, runtime  # noqa: E402
from behavior.model import BehaviorNet, ModelConfig  # noqa: E402
from behavior.prediction import Predictor, PredictSettings  # noqa: E402
from behavior.report import format_table  # noqa: E402
from behavior.synthetic import ClipSpec, write_clip  # noqa: E402
from behavior.training import BEST, save_checkpoint  # noqa: E402
from behavior.weights import load_yolo  # noqa: E402


def untrained_checkpoint(path: Path, cpu_precision: str) -> Path:
    """A checkpoint with the default model config and random LSTM weights, for timing only."""
    from torchvision.models import mobilenet_v2

    mc = ModelConfig(num_classes=2, cpu_precision=cpu_precision)
    net = BehaviorNet(mc, mobilenet_v2().features)
    save_checkpoint(path, {"model": net.state_dict(), "classes": ["a", "b"], "model_config": mc.to_dict(),
                           "train_config": {}, "metrics": {}, "epoch": 0, "versions": runtime.versions()})
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--people", type=int, nargs="+", default=[1, 2, 5])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    cli.setup_logging("WARNING")
    cfg = cli.config_constants(config)
    settings = PredictSettings.from_config(cfg)

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or Path(cfg["MODEL_DIR"]) / BEST
        trained = checkpoint.is_file()
        if not trained:
            checkpoint = untrained_checkpoint(Path(tmp) / "untrained.pth", runtime.cpu_precision(cfg["CNN_PRECISION"]))
        predictor = Predictor(checkpoint, settings)
        bare = load_yolo(settings.detector.weights)  # the same checked file the pipeline loads
        rows = []
        for people in args.people:
            video = write_clip(Path(tmp) / f"p{people}.mp4", ClipSpec(motion="walking", persons=people, width=1280,
                                                                     height=720, fps=15.0, seconds=args.seconds,
                                                                     seed=40 + people))
            bare_track_pass(bare, [video], settings.detector)  # warm-up
            runtime.set_threads(settings.detector.threads)  # Ultralytics lowers it on first use
            ms: dict[str, list[float]] = {"bare": [], "predict": []}
            stages = None
            for n in range(args.passes):
                start = time.perf_counter()
                frames = bare_track_pass(bare, [video], settings.detector)
                ms["bare"].append((time.perf_counter() - start) * 1000 / frames)
                start = time.perf_counter()
                summary = predictor.run(video, Path(tmp) / f"out{people}_{n}", progress=False)
                ms["predict"].append((time.perf_counter() - start) * 1000 / summary["frames_kept"])
                stages = summary["timing_ms_per_frame"]
            bare_ms, pred_ms = statistics.median(ms["bare"]), statistics.median(ms["predict"])
            rows.append([people, len(summary["tracks"]), bare_ms, pred_ms, pred_ms / bare_ms, pred_ms / bare_ms - 1,
                         " ".join(f"{k}={v:.0f}" for k, v in stages.items() if k != "total")])

    print(f"device: {predictor.device}; threads: {runtime.set_threads(settings.detector.threads)}; "
          f"CNN on the CPU in {predictor.mc.cpu_precision}; 1280x720, "
          f"{args.seconds:g} s at 15 fps; passes: {args.passes}; model: {'trained' if trained else 'untrained'}")
    print(format_table(["people", "tracks", "bare ms/frame", "predict ms/frame", "ratio", "overhead",
                        "predict stages (ms/frame)"], rows))
    two = [r for r in rows if r[0] == 2]
    if two:
        print(f"classification overhead with 2 people: {two[0][5]:.2f}   target <= 0.5 on CPU: "
              f"{'met' if two[0][5] <= 0.5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
