"""The stage 2 script as a user runs it, on a listing-only tree and on real extracted frames."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.synthetic import write_frames_tree

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
    """Three real fight and three real noFight clips through stage 1, each class's from three source recordings."""
    clips = tmp_path_factory.mktemp("surv")
    with open(surv_fight / "sources.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for label in ("fight", "noFight"):
        (clips / label).mkdir()
        first_of_source = {}
        for row in rows:
            if row["path"].startswith(f"{label}/"):
                first_of_source.setdefault(row["source"], row["path"])
        for path in list(first_of_source.values())[:3]:
            os.symlink(surv_fight / path, clips / path)
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
                                 ("--pad-mode", ["mirror"], "must be one of: reverse, drop"),
                                 ("--sequence-length", ["sixteen"], "argument --sequence-length: invalid int value")):
        try:
            code = cli.run(group_sequences.main, ["--frames-dir", str(tmp_path / "nope"), flag, *value])
        except SystemExit as exit_:  # argparse's own usage errors
            code = exit_.code
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], err


def _videos_by_split(sequences: Path) -> dict[str, str]:
    with open(sequences, newline="") as f:
        return {f"{r['label']}/{r['video']}": r["split"] for r in csv.DictReader(f)}


def test_group_pattern_keeps_a_recording_in_one_split(tmp_path):
    write_frames_tree(tmp_path / "f", videos_per_class=6, persons_per_video=1, frames_per_person=16)
    out = tmp_path / "s" / "sequences.csv"
    args = ["--frames-dir", str(tmp_path / "f"), "--sequences-file", str(out), "--group-pattern", r"^[a-z]+_(\d+)$"]
    proc = run_script(*args)
    assert proc.returncode == 0, proc.stderr
    split_of = _videos_by_split(out)
    assert len(split_of) == 12
    for i in range(6):  # fight_0000i and walk_0000i are one recording
        assert split_of[f"fight/fight_{i:05d}"] == split_of[f"walk/walk_{i:05d}"]
    header = proc.stdout.splitlines()[0].split()
    assert header == ["split", "class", "groups", "videos", "persons", "sequences"]
    assert (out.parent / "groups.csv").read_text().splitlines()[:2] == ["video,group", "fight/fight_00000,00000"]
    bad = run_script(*args[:4], "--group-pattern", r"^fight_(\d+)$")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        r"group_sequences.py: error: GROUP_PATTERN '^fight_(\\d+)$' does not match video walk/walk_00000 "
        "(searched in 'walk_00000')"]


def test_real_frames_grouped_by_source(real_frames, surv_fight, tmp_path):
    """The acceptance run: sources.csv as the groups file on real extracted surv_fight frames."""
    out = tmp_path / "sequences.csv"
    args = ["--frames-dir", str(real_frames), "--sequences-file", str(out), "--sequence-length", "8",
            "--min-sequence-frames", "4", "--split-fractions", "0.34", "0.33", "0.33",
            "--groups-file", str(surv_fight / "sources.csv")]
    first = run_script(*args)
    assert first.returncode == 0, first.stderr
    with open(surv_fight / "sources.csv", newline="") as f:
        source_of = {r["path"].rsplit(".", 1)[0]: r["source"] for r in csv.DictReader(f)}
    splits_of_source = {}
    for video, split in _videos_by_split(out).items():
        splits_of_source.setdefault(source_of[video], set()).add(split)
    assert len(splits_of_source) >= 2 and all(len(s) == 1 for s in splits_of_source.values())
    written = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(written) == {"sequences.csv", "classes.json", "sequences.summary.txt", "groups.csv"}
    second = run_script(*args)
    assert second.returncode == 0 and "unchanged" in second.stdout
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == written  # byte-identical rerun
    partial = tmp_path / "partial.csv"
    partial.write_text("".join(line + "\n" for line in (surv_fight / "sources.csv").read_text().splitlines()
                               if "fi001" not in line))
    proc = run_script(*args[:-1], str(partial), "--sequences-file", str(tmp_path / "other.csv"))
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"group_sequences.py: error: groups file {partial} gives no group for video fight/fi001: add it"]
    plain = run_script(*args[:-2], "--overwrite")  # without groups: the by-video split, and groups.csv goes
    assert plain.returncode == 0 and not (tmp_path / "groups.csv").exists()
