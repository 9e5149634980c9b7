"""What the accuracy benchmarks share: running the project's scripts as a user would, and reading their outputs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from behavior import files
from behavior.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def run_stage(name: str, argv: list[str], log_path: Path) -> float:
    """Run one of the project's scripts, printing the command and logging its output to ``log_path``; seconds taken."""
    quiet = [] if name == "group_sequences.py" else ["--no-progress"]  # stage 2 has no progress bar
    command = [sys.executable, str(ROOT / name), *argv, *quiet]
    printable = " ".join(["python", name, *argv])
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
    from behavior.tracking import file_sha256

    batch = files.read_json(output_dir / "batch.json") or {}
    made_with = (batch.get("checkpoint") or {}).get("sha256")
    return ["--overwrite"] if made_with and made_with != file_sha256(str(checkpoint)) else []


def end_to_end(evaluation: dict) -> dict:
    """Video-level figures over every video of a predict.py --evaluate: no prediction or a failure counts as wrong."""
    videos = evaluation["videos"]
    correct = sum(v["predicted"] == v["label"] for v in videos)
    return {"videos": len(videos), "correct": correct, "accuracy": correct / max(len(videos), 1),
            "unlabeled": sum(v["predicted"] is None for v in videos)}
