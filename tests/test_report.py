"""What users read while a stage runs: a progress bar on a terminal, log lines with an ETA elsewhere."""

import logging
import subprocess
import sys
from pathlib import Path

from behavior import report

ROOT = Path(__file__).resolve().parents[1]


def test_off_a_terminal_progress_is_a_log_line_with_the_count_and_eta(monkeypatch, caplog):
    monkeypatch.setattr(report, "LOG_EVERY", 0.0)
    caplog.set_level(logging.INFO, logger="progress")
    bar = report.progress(range(4), desc="videos", unit="video")
    assert isinstance(bar, report.LogProgress)  # pytest's stderr is no terminal
    assert list(bar) == [0, 1, 2, 3]
    assert caplog.messages[-1].startswith("videos: 4/4 videos (100%), 0 s left")
    with report.progress(desc="clip", total=10, unit="batch") as frames:
        frames.set_postfix(loss="0.5")
        frames.update(5)
    assert caplog.messages[-1].startswith("clip: 5/10 batches (50%)") and caplog.messages[-1].endswith("loss 0.5")


def test_a_run_redirected_to_a_file_holds_no_escape_sequences(tmp_path, sample_clips, weights_dir):
    """Progress bars draw with carriage returns and cursor escapes: off a terminal there are none."""
    with open(tmp_path / "log.txt", "w") as log:
        subprocess.run([sys.executable, str(ROOT / "extract_frames.py"), "--clips-dir", str(sample_clips),
                        "--frames-dir", str(tmp_path / "frames"), "--target-fps", "10", "--yolo-imgsz", "320",
                        "--frame-width", "64", "--frame-height", "64"], cwd=ROOT, stdout=log, stderr=log, check=True)
    text = (tmp_path / "log.txt").read_text()
    assert "TOTAL" in text and "\r" not in text and "\x1b[" not in text
