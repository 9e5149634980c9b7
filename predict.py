#!/usr/bin/env python
"""Stage 4: label what every tracked person does in a video, a folder of videos, or a live stream.

    python predict.py --video clip.mp4                  # outputs/clip/: annotated.mp4, tracks.csv, summary.json
    python predict.py --source 0                        # a camera; or --source rtsp://...; Ctrl-C stops cleanly
    python predict.py --videos-dir DIR --evaluate       # DIR/<class>/*.mp4: video-level metrics

The model, and the crop size, margin, frame rate and sequence length it was trained with, come
from the checkpoint (default: MODEL_DIR/best_mobilenet_lstm.pth).

Exit codes: 0 done, 1 some videos of a batch failed, 2 bad arguments, input or checkpoint,
130 interrupted.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import config
from behavior import cli, metrics
from behavior.errors import InputError
from behavior.prediction import Predictor, PredictSettings, evaluate_batch, predict_folder
from behavior.report import format_table
from behavior.training import BEST


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.build_parser(__doc__, config)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--video", type=Path, help="a video file")
    what.add_argument("--source", help="a camera index (0) or a stream URL (rtsp://...)")
    what.add_argument("--videos-dir", type=Path, help="a folder of videos, as <class>/*.mp4 or flat")
    parser.add_argument("--evaluate", action="store_true", help="with --videos-dir: score against the class folders")
    parser.add_argument("--show", action="store_true", help="display the annotated video while it runs")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier outputs")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    cfg = cli.settings_from_args(args, config)
    cli.setup_logging(cfg["LOG_LEVEL"])
    if args.evaluate and not args.videos_dir:
        raise InputError("--evaluate needs --videos-dir")
    checkpoint = Path(cfg["CHECKPOINT"] or Path(cfg["MODEL_DIR"]) / BEST)
    predictor = Predictor(checkpoint, PredictSettings.from_config(cfg))
    progress = not args.no_progress

    if args.videos_dir:
        out = Path(cfg["OUTPUT_DIR"] or Path("outputs") / (args.videos_dir.resolve().name + "_predictions"))
        items = predict_folder(predictor, args.videos_dir, out, args.overwrite, progress)
        rows = [[it.path.name, it.label, it.predicted or "-", it.error[:60]] for it in items]
        print(format_table(["video", "class", "predicted", "error"], rows))
        if args.evaluate:
            report = evaluate_batch(items, predictor.classes, out)
            print()
            print(metrics.classification_report_text(report, f"Video level over {report['n']} videos"))
            print(f"accuracy {report['accuracy']:.4f} | macro-F1 {report['macro_f1']:.4f} | failed {report['failed']}"
                  f" | no prediction {report['no_prediction']} | unknown class {report['unknown_class']}")
        print(f"\noutputs: {out}")
        return cli.EXIT_FAILED if any(it.error for it in items) else cli.EXIT_OK

    if args.video:
        source, name = args.video, args.video.stem
    else:
        source, name = args.source, "stream_" + time.strftime("%Y%m%d_%H%M%S")
    out = Path(cfg["OUTPUT_DIR"] or Path("outputs") / name)
    summary = predictor.run(source, out, show=args.show, progress=progress, overwrite=args.overwrite)
    rows = [[t["track_id"], t["first_frame"], t["last_frame"], t["frames"], t["majority_label"] or "...",
             t["mean_confidence"] if t["mean_confidence"] is not None else "-",
             " > ".join(s["label"] for s in t["segments"][:4]) + (" ..." if len(t["segments"]) > 4 else "")]
            for t in summary["tracks"]]
    print(format_table(["person", "first", "last", "frames", "majority", "confidence", "timeline"], rows))
    label = summary["video_label"]
    if label["label"] is None:
        print("\nnobody was tracked long enough to be labeled")
    else:
        scores = ", ".join(f"{c} {v:.2f}" for c, v in label["scores"].items())
        print(f"\nvideo: {label['label']} ({label['rule']} over tracks: {scores})")
    timing = summary["timing_ms_per_frame"]
    print("ms/frame: " + ", ".join(f"{k} {v:.1f}" for k, v in timing.items()))
    print(f"outputs: {out} (annotated.mp4, tracks.csv, summary.json)")
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(cli.run(main))
