#!/usr/bin/env python
"""Stage 4: label what every tracked person does in a video, a folder of videos, or a live stream.

    python predict.py --video clip.mp4                  # outputs/clip/: annotated.mp4, tracks.csv, summary.json
    python predict.py --source 0                        # a camera; or --source rtsp://...; Ctrl-C stops cleanly
    python predict.py --videos-dir DIR --evaluate       # DIR/<class>/*.mp4: video-level metrics

The model, and the crop size, margin, frame rate and sequence length it was trained with, come
from the checkpoint (default: MODEL_DIR/best_mobilenet_lstm.pth); their flags are ignored here.
Earlier outputs are replaced only with --overwrite, and only the files a prediction writes.

Exit codes: 0 done, 1 some videos of a batch failed, 2 bad arguments, input or checkpoint,
130 interrupted (the frames seen are kept, marked "interrupted"; a rerun redoes that video).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import config
from behavior import cli, settings
from behavior.errors import InputError
from behavior.report import format_table
from behavior.settings import PredictSettings

if TYPE_CHECKING:
    from behavior.predict.session import Predictor

log = logging.getLogger("predict")

FLAGS = (("Paths (the model's own settings come from its checkpoint)", ("MODEL_DIR",)),
         settings.PredictSettings, settings.DetectorSettings, ("Weights", ("POSE_WEIGHTS", "I3D_WEIGHTS")),
         settings.Runtime)


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.build_parser(__doc__, config, FLAGS,
                              usage="%(prog)s (--video FILE | --source CAMERA_OR_URL | --videos-dir DIR) [flags]")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--video", type=Path, help="a video file")
    what.add_argument("--source", help="a camera index (0) or a stream URL (rtsp://...)")
    what.add_argument("--videos-dir", type=Path, help="a folder of videos, as <class>/*.mp4 or <group>/<class>/*.mp4")
    parser.add_argument("--evaluate", action="store_true", help="with --videos-dir: score against the class folders")
    parser.add_argument("--show", action="store_true", help="show the annotated video while it runs (needs a screen)")
    parser.add_argument("--checkpoint", type=Path, help="the model (default: MODEL_DIR/best_mobilenet_lstm.pth)")
    parser.add_argument("--output-dir", type=Path, help="where the outputs go (default: outputs/<video name>, or "
                                                        "outputs/<folder>_predictions for --videos-dir)")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier predictions (only our own files)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = cli.parse(parser, argv)
    from behavior.io.checkpoint import BEST  # the stage after the arguments: --help answers before torch loads
    from behavior.predict.session import Predictor

    cfg = cli.settings_from_args(args, config)
    cli.setup_logging(args.log_level)
    if args.evaluate and not args.videos_dir:
        raise InputError("--evaluate needs --videos-dir")
    predictor = Predictor(args.checkpoint or Path(cfg["MODEL_DIR"]) / BEST, PredictSettings.from_config(cfg))
    if args.videos_dir:
        return predict_videos_dir(predictor, args)
    return predict_one(predictor, args)


def predict_videos_dir(predictor: Predictor, args: argparse.Namespace) -> int:
    """--videos-dir: every video into its own folder, a table of their labels, and with --evaluate the metrics."""
    from behavior import metrics
    from behavior.predict.batch import (
        check_evaluation_classes,
        evaluate_batch,
        evaluation_headline,
        predict_folder,
        write_index,
    )

    if args.evaluate:
        check_evaluation_classes(args.videos_dir, predictor.classes)
    out = args.output_dir or Path("outputs") / (args.videos_dir.resolve().name + "_predictions")
    items = predict_folder(predictor, args.videos_dir, out, args.overwrite, not args.no_progress)
    rows = [[it.path.name, it.label, it.predicted or ("-" if it.error else "(nobody labeled)"),
             "interrupted" if it.interrupted else it.error[:60]] for it in items]
    print(format_table(["video", "class", "predicted", "error"], rows))
    if items and items[-1].interrupted:
        print(f"\ninterrupted: {len(items) - 1} videos done, outputs in {out}; run the same command to go on")
        return cli.EXIT_INTERRUPTED
    report = evaluate_batch(items, predictor.classes, out) if args.evaluate else None
    if report is not None:
        print()
        print(metrics.classification_report_text(report, f"Video level over all {report['n']} videos"))
        print(evaluation_headline(report))
    print(f"\noutputs: {out}\nreport: {write_index(out, items, report)}")
    return cli.EXIT_FAILED if any(it.error for it in items) else cli.EXIT_OK


def predict_one(predictor: Predictor, args: argparse.Namespace) -> int:
    """--video or --source: the annotated video, tracks.csv and summary.json, and each person's timeline printed."""
    if args.video:
        source, name = args.video, args.video.stem
    else:
        source, name = args.source, "stream_" + time.strftime("%Y%m%d_%H%M%S")
    out = args.output_dir or Path("outputs") / name
    summary = predictor.run(source, out, show=args.show, progress=not args.no_progress, overwrite=args.overwrite)
    print(people_table(summary["tracks"]))
    label = summary["video_label"]
    if label["label"] is None:
        print(f"\nvideo: no label ({label['why']})")
    else:
        scores = ", ".join(f"{c} {v:.2f}" for c, v in label["scores"].items())
        print(f"\nvideo: {label['label']} ({label['rule']} over tracks: {scores})")
    timing = summary["timing_ms_per_frame"]
    print("ms/frame: " + ", ".join(f"{k} {v:.1f}" for k, v in timing.items()))
    print(f"outputs: {out} (annotated.mp4, tracks.csv, summary.json, annotations.json, labels.csv, timeline.png)")
    print(f"report: {out / 'report.html'}")
    if summary["interrupted"]:
        redo = "" if args.source else "; a rerun redoes the video"
        print(f"interrupted after {summary['frames_kept']} frames: the outputs cover those frames and are marked "
              f"\"interrupted\"{redo}")
        return cli.EXIT_INTERRUPTED
    return cli.EXIT_OK


def people_table(tracks: list[dict]) -> str:
    """The labeled people, each with their label timeline in seconds; the tracks never labeled (shorter than a
    window) counted in one line."""
    def span(s: dict) -> str:
        return f"{s['label']} {s['start_s']:.1f}-{s['end_s']:.1f} s" if s["start_s"] is not None else s["label"]

    labeled = [t for t in tracks if t["labeled_frames"]]
    rows = [[f"person_{t['person']}", t["track_id"], t["frames"], t["majority_label"], t["mean_confidence"],
             " > ".join(span(s) for s in t["segments"][:3]) + (" ..." if len(t["segments"]) > 3 else "")]
            for t in labeled]
    text = format_table(["person", "track", "frames", "majority", "confidence", "timeline"], rows)
    short = len(tracks) - len(labeled)
    return text + (f"\n{short} more track(s) too short for a label (fewer kept frames than MIN_SEQUENCE_FRAMES), "
                   "in tracks.csv and summary.json" if short else "")


def run() -> int:
    """The console command: ``main`` with one-line errors and exit codes."""
    return cli.run(main)


if __name__ == "__main__":
    sys.exit(run())
