#!/usr/bin/env python
"""Tracking quality of the project's detector + ByteTrack on MOTChallenge-format sequences.

Runs ``PersonTracker`` with the detector settings of config.py (YOLO_WEIGHTS, YOLO_CONF_THRESHOLD,
YOLO_IOU_THRESHOLD, YOLO_IMGSZ, TRACKER_CONFIG) and scores it with py-motmetrics: MOTA, MOTP,
IDF1, precision/recall, false positives, misses, id switches. (py-motmetrics has no HOTA.)

    python benchmarks/track_eval.py                                   # ../shared/assets/mot/MOT17-mini
    python benchmarks/track_eval.py --sequences /data/MOT17/train --yolo-imgsz 1280
    python benchmarks/track_eval.py --inference-backend openvino --inference-precision bfloat16

MOT17-mini holds only 4 to 8 frames per sequence: a smoke test of the evaluation, not a benchmark.
"""

from __future__ import annotations

import sys
from pathlib import Path

import config
from behavior import cli
from behavior.detect.tracking import PersonTracker
from behavior.runtime import environment
from behavior.settings import DetectorSettings, ExtractSettings, Runtime
from tools import mot

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "assets" / "mot" / "MOT17-mini"


def main(argv: list[str] | None = None) -> int:
    parser = cli.build_parser(__doc__, config, (DetectorSettings, Runtime))
    parser.add_argument("--sequences", type=Path, default=DEFAULT, help="a sequence folder or a folder of them")
    args = parser.parse_args(argv)
    cfg = cli.settings_from_args(args, config)
    cli.setup_logging("WARNING")
    detector = ExtractSettings.from_config(cfg).detector
    folders = mot.find_sequences(args.sequences)
    tracker = PersonTracker(detector)
    table = mot.evaluate_sequences(folders, tracker)
    frames = int(table.loc["OVERALL", "num_frames"])
    precision = f" {detector.precision}" if tracker.backend == "openvino" else ""
    print(f"{len(folders)} sequences, {frames} frames, from {args.sequences}; detector {detector.weights} "
          f"conf {detector.conf} imgsz {detector.imgsz} on {tracker.backend}{precision}, "
          f"tracker {detector.tracker_config}")
    shown = table[["num_frames", "mota", "idf1", "motp", "precision", "recall", "num_false_positives",
                   "num_misses", "num_switches"]].rename(columns={
                       "num_frames": "frames", "num_false_positives": "FP", "num_misses": "FN",
                       "num_switches": "IDsw"})
    print(shown.to_string(float_format=lambda v: f"{v:.3f}"))
    overall = table.loc["OVERALL"]
    print(f"\nMOTA {overall['mota']:.3f}   IDF1 {overall['idf1']:.3f}")
    return 0


if __name__ == "__main__":
    environment.setup()  # offline Ultralytics, the torchvision fix
    sys.exit(cli.run(main))
