"""What the accuracy benchmarks share: running the project's scripts as a user would, and reading their outputs."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

from behavior.errors import InputError
from behavior.io import files

ROOT = Path(__file__).resolve().parents[1]


@cache
def script_flags(name: str) -> frozenset[str]:
    """The options one of the project's scripts takes, from its --help."""
    text = subprocess.run([sys.executable, str(ROOT / name), "--help"], capture_output=True, text=True, cwd=ROOT).stdout
    options = [line.strip().split("  ")[0] for line in text.splitlines() if line.lstrip().startswith("-")]
    return frozenset(flag for column in options for flag in re.findall(r"--[a-z][a-z0-9-]*", column))


def for_stage(name: str, argv: list[str]) -> list[str]:
    """``argv`` without the options (and their values) that the script ``name`` does not take: a benchmark's extra
    flags reach every stage, each stage takes its own (``--actor-classes`` is stage 3's)."""
    known, kept, keep = script_flags(name), [], True
    for arg in argv:
        if arg.startswith("--"):
            keep = arg.split("=", 1)[0] in known
        if keep:
            kept.append(arg)
    return kept


def run_stage(name: str, argv: list[str], log_path: Path) -> float:
    """Run one of the project's scripts, printing the command and logging its output to ``log_path``; seconds taken.

    Options the script does not take are left out (``for_stage``)."""
    quiet = [] if name == "group_sequences.py" else ["--no-progress"]  # stage 2 has no progress bar
    argv = for_stage(name, argv)
    command = [sys.executable, str(ROOT / name), *argv, *quiet]
    printable = shlex.join(["python", name, *argv])  # copyable into a shell
    print(f"$ {printable}", flush=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as f:
        f.write(f"$ {printable}\n")
        f.flush()
        code = subprocess.call(command, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if code not in (0, 1):  # 1: some videos failed, which the reports count
        raise InputError(f"{name} exited with {code}; see {log_path}")
    return time.perf_counter() - start


def link_videos(clips_dir: Path, keys: list[str], out: Path, suffix: str = ".mp4") -> int:
    """``out/<class>/<clip><suffix>`` links to the given ``class/clip`` videos: a folder for predict.py --videos-dir."""
    for key in keys:
        source = clips_dir / f"{key}{suffix}"
        if not source.is_file():
            raise InputError(f"video missing: {source}")
        target = out / f"{key}{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.symlink(source.resolve(), target)
    return len(keys)


def predict_flags(checkpoint: Path, output_dir: Path) -> list[str]:
    """``["--overwrite"]`` when ``output_dir`` holds predictions of another checkpoint (they are stale), else []."""
    from behavior.io.files import file_sha256

    batch = files.read_json(output_dir / "batch.json") or {}
    made_with = (batch.get("checkpoint") or {}).get("sha256")
    return ["--overwrite"] if made_with and made_with != file_sha256(str(checkpoint)) else []


def end_to_end(evaluation: dict) -> dict:
    """Video-level figures over every video of a predict.py --evaluate: no prediction or a failure counts as wrong."""
    videos = evaluation["videos"]
    correct = sum(v["predicted"] == v["label"] for v in videos)
    return {"videos": len(videos), "correct": correct, "accuracy": correct / max(len(videos), 1),
            "unlabeled": sum(v["predicted"] is None for v in videos)}


def benchmark_parser(description: str, dataset: Path, work_name: str, clips_help: str) -> argparse.ArgumentParser:
    """The options every accuracy benchmark takes: the dataset, a work folder, modes, extra flags, --overwrite."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips-dir", type=Path, default=dataset, help=clips_help)
    parser.add_argument("--work-dir", type=Path, default=ROOT / "outputs" / work_name)
    parser.add_argument("--modes", default="person,frame", help="comma-separated: person, frame")
    parser.add_argument("--extra", default="", help='more config flags for every stage, e.g. "--cnn-input rgb"')
    parser.add_argument("--overwrite", action="store_true", help="redo every stage")
    return parser


def check_common(args: argparse.Namespace, modes: dict) -> list[str]:
    """Validate and resolve the common options in place; returns the modes asked for."""
    if not args.clips_dir.is_dir():
        raise InputError(f"dataset not found: {args.clips_dir}")
    args.clips_dir, args.work_dir = args.clips_dir.resolve(), args.work_dir.resolve()
    args.extra = shlex.split(args.extra)
    return choices(args.modes, modes, "modes")


def choices(value: str, allowed: dict, name: str) -> list[str]:
    """A comma-separated option's items, each one of ``allowed``."""
    items = [m.strip() for m in value.split(",") if m.strip()]
    if not items or any(m not in allowed for m in items):
        raise InputError(f"--{name} takes {', '.join(allowed)}; got {value!r}")
    return items
