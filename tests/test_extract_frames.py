"""The stage 1 script as a user runs it: exit codes, messages, and no network access."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "extract_frames.py"
FAST = ["--target-fps", "10", "--yolo-imgsz", "320", "--frame-width", "64", "--frame-height", "64", "--no-progress"]


def run_script(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_missing_clips_dir_is_one_line(tmp_path):
    proc = run_script("--clips-dir", str(tmp_path / "nope"), "--frames-dir", str(tmp_path / "f"))
    assert proc.returncode == 2
    expected = f"extract_frames.py: error: clips folder not found: {tmp_path / 'nope'}"
    assert proc.stderr.strip().splitlines() == [expected]
    assert "Traceback" not in proc.stderr


def test_bad_shard_is_a_usage_error(tmp_path, sample_clips):
    proc = run_script("--clips-dir", str(sample_clips), "--frames-dir", str(tmp_path), "--shard", "3")
    assert proc.returncode == 2 and "--shard must look like I/N" in proc.stderr


def test_nothing_extracted_exits_1(tmp_path, weights_dir):
    (tmp_path / "clips" / "fight").mkdir(parents=True)
    (tmp_path / "clips" / "fight" / "bad.mp4").write_bytes(os.urandom(1024))
    proc = run_script("--clips-dir", str(tmp_path / "clips"), "--frames-dir", str(tmp_path / "f"), *FAST)
    assert proc.returncode == 1, proc.stderr
    assert "failed: " in proc.stdout and "Traceback" not in proc.stderr


NETWORK_GUARD = textwrap.dedent("""
    import sys
    attempts = []
    def guard(event, args):
        if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto",
                     "socket.bind", "urllib.Request", "http.client.connect"):
            attempts.append((event, repr(args)[:120]))
            raise ConnectionRefusedError(f"network access during extraction: {event}")
    sys.addaudithook(guard)
    sys.argv = ["extract_frames.py"] + sys.argv[1:]
    import extract_frames
    from behavior import cli
    code = cli.run(extract_frames.main)
    during = list(attempts)
    try:  # the guard must be able to see an attempt, or the test proves nothing
        import socket
        socket.getaddrinfo("example.com", 80)
    except OSError:
        pass
    print("NETWORK", __import__("json").dumps({"code": code, "during": during, "control": len(attempts) > len(during)}))
""")


def test_extraction_attempts_no_network_access(tmp_path, sample_clips, weights_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("YOLO_")}  # the package must set them itself
    env["YOLO_CONFIG_DIR"] = str(tmp_path / "ucfg")  # a fresh Ultralytics settings folder
    proc = subprocess.run(
        [sys.executable, "-c", NETWORK_GUARD, "--clips-dir", str(sample_clips), "--frames-dir", str(tmp_path / "f"),
         *FAST], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("NETWORK"))
    report = json.loads(line.split(" ", 1)[1])
    assert report["control"], "the audit hook did not see a deliberate lookup"
    assert report["during"] == [], f"extraction tried to reach the network: {report['during']}"
    assert report["code"] == 0, proc.stderr
    assert "TOTAL" in proc.stdout


def test_rerun_skips_and_prints_the_table(tmp_path, sample_clips, weights_dir):
    args = ["--clips-dir", str(sample_clips), "--frames-dir", str(tmp_path / "f"), *FAST]
    first = run_script(*args)
    assert first.returncode == 0, first.stderr
    header, rule, *rows = first.stdout.splitlines()[:3]
    assert header.split() == ["class", "videos", "failed", "persons", "nobody", "tracked", "(whole", "frame)"]
    second = run_script(*args)
    assert second.returncode == 0 and "0 extracted, 4 already done" in second.stdout
    assert "detector yolov8n.pt on" not in second.stderr  # nothing to do: the model is never loaded
    shard = run_script(*args, "--shard", "0/2", "--overwrite")
    assert shard.returncode == 0
    manifest = run_script(*args, "--rebuild-manifest")
    assert manifest.returncode == 0 and (tmp_path / "f" / "manifest.csv").read_text().count("\n") == 5


@pytest.mark.parametrize("flag", ["--help"])
def test_help_lists_config_overrides(flag):
    proc = run_script(flag)
    assert proc.returncode == 0 and "--enable-person-tracking" in proc.stdout and "--shard" in proc.stdout


def test_missing_weights_is_one_line(tmp_path, sample_clips):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BEHAVIOR_OFFLINE": "1",
           "BEHAVIOR_WEIGHTS_DIR": str(tmp_path / "empty")}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--clips-dir", str(sample_clips), "--frames-dir",
                           str(tmp_path / "f"), "--yolo-weights", "yolov8x-missing.pt"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "weights 'yolov8x-missing.pt' not found; searched:" in lines[0]
    assert str(tmp_path / "empty" / "yolov8x-missing.pt") in lines[0]


def test_corrupt_weights_is_one_line(tmp_path, sample_clips):
    bad = tmp_path / "yolov8n.pt"
    bad.write_bytes(b"not a checkpoint")
    proc = run_script("--clips-dir", str(sample_clips), "--frames-dir", str(tmp_path / "f"),
                      "--yolo-weights", str(bad), "--no-progress")
    assert proc.returncode == 2, proc.stderr
    assert "cannot load detector weights" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("read_only", [True, False], ids=["read-only", "full"])
def test_a_full_or_read_only_disk_stops_the_batch_with_one_line(tmp_path, sample_clips, weights_dir, read_only):
    """Once writing fails, every later video would fail too: the batch stops, exit 1, one line naming the cause."""
    from conftest import one_error_line, run_on_small_disk

    frames = tmp_path / "frames"
    proc = run_on_small_disk([sys.executable, str(SCRIPT), "--clips-dir", str(sample_clips), "--frames-dir",
                              str(frames), *FAST], frames, size_kb=64, read_only=read_only)
    assert proc.returncode == 1, proc.stderr
    line = one_error_line(proc, "extract_frames.py")
    if read_only:
        assert line == f"extract_frames.py: error: cannot write {frames}: read-only file system"
    else:
        assert line.endswith(": no space left on device (disk full)") and str(frames) in line
        assert "failed" not in proc.stderr and "TOTAL" not in proc.stdout  # no video was recorded as failed


def test_changed_settings_need_overwrite(tmp_path, sample_clips, weights_dir):
    """--target-fps 5 over crops made at another rate would replace them: refused, nothing touched."""
    args = ["--clips-dir", str(sample_clips), "--frames-dir", str(tmp_path / "f"), *FAST]
    assert run_script(*args).returncode == 0
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "f").rglob("*.jpg"))
    proc = run_script(*args, "--target-fps", "3")
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert "were extracted with other settings" in line and "target_fps 10.0 -> 3.0" in line and "--overwrite" in line
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "f").rglob("*.jpg")) == before
    nan = run_script(*args, "--target-fps", "nan")
    assert nan.returncode == 2 and "TARGET_FPS (--target-fps) must be a number in [0, 1000], got nan" in nan.stderr


def test_unsafe_detector_weights_never_run(tmp_path, sample_clips):
    """A pickle that would run code, given as --yolo-weights or found as yolov8n.pt, is refused before loading."""
    import torch

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "weights" / "yolov8n.pt"
    evil.parent.mkdir()
    torch.save({"model": Payload(), "date": "2024"}, evil)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BEHAVIOR_WEIGHTS_DIR": str(evil.parent), "BEHAVIOR_OFFLINE": "1"}
    for extra in (["--yolo-weights", str(evil)], []):  # explicit, and found in $BEHAVIOR_WEIGHTS_DIR
        proc = subprocess.run([sys.executable, str(SCRIPT), "--clips-dir", str(sample_clips), "--frames-dir",
                               str(tmp_path / "f"), *extra, "--no-progress"], cwd=ROOT, capture_output=True,
                              text=True, timeout=300, env=env)
        assert proc.returncode == 2, proc.stderr
        assert f"refusing to load detector weights {evil}: it references io.open" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert not marker.exists()


def test_a_second_run_into_the_same_frames_folder_is_refused_while_one_runs(tmp_path, sample_clips, weights_dir):
    """Two writers would race on the staging folders: the second gets one line naming the first, exit 2, and
    nothing in the folder changes."""
    frames = tmp_path / "frames"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from behavior.io import files\n"
         f"with files.folder_lock({str(frames)!r}, 'FRAMES_DIR'):\n    print('held', flush=True); time.sleep(60)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        before = sorted(p.name for p in frames.iterdir())
        proc = run_script("--clips-dir", str(sample_clips), "--frames-dir", str(frames), *FAST)
        assert proc.returncode == 2, proc.stderr
        [line] = proc.stderr.strip().splitlines()
        assert line.startswith(f"extract_frames.py: error: FRAMES_DIR {frames} is being written by process "
                               f"{holder.pid} (-c, started ") and line.endswith("nothing was changed"), line
        assert sorted(p.name for p in frames.iterdir()) == before
    finally:
        holder.kill()
        holder.wait()
    assert run_script("--clips-dir", str(sample_clips), "--frames-dir", str(frames), *FAST).returncode == 0


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["plain", "overwrite"])
def test_a_frames_folder_holding_the_user_s_own_files_is_refused_untouched(tmp_path, sample_clips, overwrite):
    """--frames-dir pointed at a folder of the user's own files: one line, exit 2, and their manifest.csv (and all
    else) untouched, even with --overwrite, which replaces only the tool's own files."""
    frames = tmp_path / "mine"
    frames.mkdir()
    (frames / "manifest.csv").write_text("item,price\nchair,12\n")
    proc = run_script("--clips-dir", str(sample_clips), "--frames-dir", str(frames), *FAST, *overwrite)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"extract_frames.py: error: FRAMES_DIR {frames} holds files stage 1 did not write ('manifest.csv'): nothing "
        "was changed; choose an empty or new --frames-dir"]
    assert sorted(p.name for p in frames.iterdir()) == ["manifest.csv"]
    assert (frames / "manifest.csv").read_text() == "item,price\nchair,12\n"
    rebuild = run_script("--frames-dir", str(frames), "--rebuild-manifest")
    assert rebuild.returncode == 2 and (frames / "manifest.csv").read_text() == "item,price\nchair,12\n"
