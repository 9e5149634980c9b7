#!/usr/bin/env python
"""Command-line speed: how long each script takes to answer ``--help`` and a bad argument.

Each script runs as a user runs it (a new Python process), ``--runs`` times, alternating with a bare
Python start (``python -c "import argparse"``) so that machine noise hits both alike. Prints the median
seconds of each and the ratio to the bare start. Target: every ``--help`` and every argument error under 1 s:
a script imports its stage (torch, Ultralytics) only after its arguments are parsed.

    python benchmarks/cli_speed.py              # the four scripts, 5 runs each
    python benchmarks/cli_speed.py --runs 9
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from behavior.report import format_table

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("extract_frames.py", "group_sequences.py", "train_mobilenet_lstm.py", "predict.py")
TARGET_S = 1.0


def seconds(argv: list[str]) -> float:
    """Wall seconds of one run of ``argv`` from the project's root, its output discarded."""
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (the median is reported)")
    args = parser.parse_args()
    commands = {"bare python": [sys.executable, "-c", "import argparse"]}
    for script in SCRIPTS:
        commands[f"{script} --help"] = [sys.executable, script, "--help"]
        commands[f"{script} --no-such-flag"] = [sys.executable, script, "--no-such-flag"]
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, argv in commands.items():
            times[name].append(seconds(argv))
    bare = statistics.median(times["bare python"])
    rows = [[name, statistics.median(t), max(t), statistics.median(t) / bare] for name, t in times.items()]
    print(f"runs: {args.runs}; python {sys.version.split()[0]}")
    print(format_table(["command", "median s", "max s", "x bare python"], rows))
    slowest = max(statistics.median(t) for name, t in times.items() if name != "bare python")
    print(f"slowest answer: {slowest:.2f} s (target < {TARGET_S:g} s: {'met' if slowest < TARGET_S else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
