"""The stage 2 script as a user runs it, on a listing-only tree and on real extracted frames."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from behavior.synthetic import write_frames_tree

ROOT = Path(__file__).resolve().parents[1]


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "group_sequences.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_split_file_reproduces_a_split(tmp_path):
    write_frames_tree(tmp_path / "f", videos_per_class=4, persons_per_video=1, frames_per_person=16)
    split = tmp_path / "split.csv"
    split.write_text("video,split\n" + "".join(
        f"{c}_{i:05d},{'test' if i == 0 else 'val' if i == 1 else 'train'}\n" for c in ("fight", "walk")
        for i in range(4)))
    out = tmp_path / "s" / "sequences.csv"
    proc = run_script("--frames-dir", str(tmp_path / "f"), "--sequences-file", str(out), "--split-file", str(split))
    assert proc.returncode == 0, proc.stderr
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    expected = {(f"{c}_{i:05d}", "test" if i == 0 else "val" if i == 1 else "train")
                for c in ("fight", "walk") for i in range(4)}
    assert {(r["video"], r["split"]) for r in rows} == expected
    assert "TOTAL" in proc.stdout


def test_errors_are_one_line(tmp_path):
    proc = run_script("--frames-dir", str(tmp_path / "nope"), "--sequences-file", str(tmp_path / "s.csv"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"group_sequences.py: error: frames folder not found: {tmp_path / 'nope'} (run extract_frames.py first)"]


@pytest.fixture(scope="module")
def real_frames(surv_fight, weights_dir, tmp_path_factory):
    """Three real fight and three real noFight clips through stage 1."""
    clips = tmp_path_factory.mktemp("surv")
    for label in ("fight", "noFight"):
        (clips / label).mkdir()
        for video in sorted((surv_fight / label).glob("*.mp4"))[:3]:
            os.symlink(video, clips / label / video.name)
    frames = clips.parent / (clips.name + "_frames")
    proc = subprocess.run([sys.executable, str(ROOT / "extract_frames.py"), "--clips-dir", str(clips),
                           "--frames-dir", str(frames), "--target-fps", "10", "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    return frames


def test_real_frames_give_valid_rows_and_identical_reruns(real_frames, tmp_path):
    out = tmp_path / "sequences.csv"
    args = ["--frames-dir", str(real_frames), "--sequences-file", str(out), "--sequence-length", "8",
            "--sequence-stride", "4", "--min-sequence-frames", "4", "--split-fractions", "0.34", "0.33", "0.33"]
    first = run_script(*args)
    assert first.returncode == 0, first.stderr
    content = out.read_bytes()
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(len(r["frames"].split("|")) == 8 for r in rows)
    assert all((real_frames / p).is_file() for r in rows for p in r["frames"].split("|"))
    split_of_video = {}
    for r in rows:
        split_of_video.setdefault(r["video"], set()).add(r["split"])
    assert all(len(s) == 1 for s in split_of_video.values())
    second = run_script(*args)
    assert second.returncode == 0 and "unchanged" in second.stdout and out.read_bytes() == content


@pytest.mark.parametrize("read_only", [True, False], ids=["read-only", "full"])
def test_a_full_or_read_only_disk_is_one_line(tmp_path, read_only):
    from conftest import one_error_line, run_on_small_disk

    write_frames_tree(tmp_path / "f", videos_per_class=40, persons_per_video=2, frames_per_person=40)
    out = tmp_path / "out"
    proc = run_on_small_disk([sys.executable, str(ROOT / "group_sequences.py"), "--frames-dir", str(tmp_path / "f"),
                              "--sequences-file", str(out / "sequences.csv")], out, size_kb=8, read_only=read_only)
    assert proc.returncode == 1, proc.stderr
    line = one_error_line(proc, "group_sequences.py")
    assert line.endswith("read-only file system" if read_only else "no space left on device (disk full)")


def test_invalid_settings_are_refused_before_any_work(tmp_path, capsys):
    import group_sequences
    from behavior import cli

    for flag, value, message in (("--split-fractions", ["0.85", "0", "0.15"], "needs train and val > 0"),
                                 ("--min-sequence-frames", ["0"], "MIN_SEQUENCE_FRAMES (--min-sequence-frames) must "
                                                                  "be an integer >= 1, got 0"),
                                 ("--pad-mode", ["mirror"], "must be one of: reverse, loop, repeat_last, drop"),
                                 ("--sequence-length", ["sixteen"], "argument --sequence-length: invalid int value")):
        try:
            code = cli.run(group_sequences.main, ["--frames-dir", str(tmp_path / "nope"), flag, *value])
        except SystemExit as exit_:  # argparse's own usage errors
            code = exit_.code
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], err
