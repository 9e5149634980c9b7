#!/usr/bin/env python
"""One frame of predict.py's annotated video where the people get different labels, as a PNG.

Reads a prediction folder (``annotated.mp4`` and ``tracks.csv``), finds the frame whose labeled
people carry the most distinct labels (ties: the most people, then the most confident), and writes
it, scaled to ``--width``. This is how docs/RESULTS.md's picture of fighters and bystanders was made:

    python predict.py --video fi042.mp4 --checkpoint <fold checkpoint> --output-dir /tmp/fi042
    python benchmarks/people_frame.py /tmp/fi042 docs/images/people_labels.png
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import cv2

from behavior import cli
from behavior.errors import InputError
from behavior.io import files
from behavior.io.video import kept_ordinal
from behavior.runtime import environment

ROOT = Path(__file__).resolve().parents[1]




def best_frame(tracks_csv: Path) -> tuple[int, list[dict[str, str]]]:
    """The source frame index and rows of the frame whose labeled people have the most distinct labels."""
    by_frame: dict[str, list[dict[str, str]]] = defaultdict(list)
    order: list[str] = []
    with open(tracks_csv, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["label"]:
                if row["frame"] not in by_frame:
                    order.append(row["frame"])
                by_frame[row["frame"]].append(row)
    if not any(by_frame.values()):
        raise InputError(f"{tracks_csv} has no labeled person")

    def score(frame: str) -> tuple[int, int, float]:
        rows = by_frame[frame]
        return len({r["label"] for r in rows}), len(rows), sum(float(r["label_conf"]) for r in rows)

    chosen = max(order, key=score)
    return int(chosen), by_frame[chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prediction_dir", type=Path, help="a predict.py output folder")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=640, help="width of the picture in pixels")
    args = parser.parse_args(argv)
    index, rows = best_frame(args.prediction_dir / "tracks.csv")
    summary = files.read_json(args.prediction_dir / "summary.json") or {}
    source = cv2.VideoCapture(str(summary.get("source", "")))
    source_fps = source.get(cv2.CAP_PROP_FPS) or summary.get("fps", 0)
    source.release()
    target = float(summary.get("settings", {}).get("model_config", {}).get("target_fps", 0))
    position = kept_ordinal(index, source_fps, target)  # annotated.mp4 holds the kept frames, in order
    capture = cv2.VideoCapture(str(args.prediction_dir / "annotated.mp4"))
    for _ in range(position + 1):
        ok, image = capture.read()
        if not ok:
            raise InputError(f"{args.prediction_dir / 'annotated.mp4'} ends before kept frame {position}")
    capture.release()
    scale = args.width / image.shape[1]
    image = cv2.resize(image, (args.width, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", image)
    files.atomic_write_bytes(args.out, png.tobytes())
    print(f"frame {rows[0]['frame']}: " + ", ".join(f"track {r['track_id']} {r['label']} {r['label_conf']}"
                                                    for r in rows) + f" -> {args.out}")
    return 0


if __name__ == "__main__":
    environment.setup()  # offline Ultralytics, the torchvision fix
    sys.exit(cli.run(main))
