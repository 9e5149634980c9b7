#!/usr/bin/env python
"""Stage 2 speed: group_sequences on a generated stage 1 tree of 10,000 person folders.

The tree holds empty crop files (stage 2 only lists them) and one meta.json per video.
Times building the sequences, splitting and writing the CSV, over a few runs; prints the
median and the target (under 30 s here).

    python benchmarks/group_speed.py                     # 10,000 person folders x 30 crops
    python benchmarks/group_speed.py --persons 2000 --frames 60 --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import config
from behavior import cli
from behavior.group.sequences import group_sequences, write_sequence_set
from behavior.runtime import environment
from behavior.settings import SequenceSettings
from tools.synthetic import write_frames_tree

ROOT = Path(__file__).resolve().parents[1]



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=10_000, help="person folders in the tree")
    parser.add_argument("--frames", type=int, default=30, help="crops per person folder")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cli.setup_logging("WARNING")
    cfg = cli.config_constants(config)
    settings = SequenceSettings.from_config(cfg)

    with tempfile.TemporaryDirectory() as tmp:
        frames = Path(tmp) / "frames"
        start = time.perf_counter()
        folders = write_frames_tree(frames, videos_per_class=args.persons // 4, persons_per_video=2,
                                    frames_per_person=args.frames)
        made = time.perf_counter() - start
        seconds, count = [], 0
        for run in range(args.runs):
            start = time.perf_counter()
            result = group_sequences(frames, settings, tuple(cfg["SPLIT_FRACTIONS"]), int(cfg["SEED"]))
            write_sequence_set(result, Path(tmp) / f"run{run}" / "sequences.csv")
            seconds.append(time.perf_counter() - start)
            count = len(result.sequences)
    median = statistics.median(seconds)
    print(f"tree: {folders} person folders x {args.frames} crops (made in {made:.1f} s)")
    print(f"group_sequences: {count} sequences; median {median:.2f} s over {args.runs} runs "
          f"(min {min(seconds):.2f}, max {max(seconds):.2f}); {folders / median:.0f} person folders/s")
    print(f"target < 30 s: {'met' if median < 30 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    environment.setup()  # offline Ultralytics, the torchvision fix
    raise SystemExit(main())
