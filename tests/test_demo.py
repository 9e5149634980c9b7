"""``make demo`` as a new user runs it: the whole pipeline, offline, ending with the right label on an unseen clip."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_make_demo_labels_its_held_out_clip_correctly(weights_dir, tmp_path):
    folders = {"SAMPLE_CLIPS": "clips", "SAMPLE_FRAMES": "frames", "SAMPLE_SEQUENCES": "seq/sequences.csv",
               "SAMPLE_FEATURES": "features", "SAMPLE_MODEL": "model", "SAMPLE_HOLDOUT": "holdout", "DEMO_OUT": "out"}
    variables = [f"{name}={tmp_path / rel}" for name, rel in folders.items()]
    proc = subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", "demo", f"PY={sys.executable}",
                           *variables], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "\nvideo: walking (" in proc.stdout  # predict.py's own verdict on the held-out walking clip
    assert "labeled walking" in proc.stdout and (tmp_path / "out" / "annotated.mp4").is_file()
