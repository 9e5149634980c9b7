"""Golden outputs: ``make demo`` as a new user runs it, then real clips through stage 1 and predict.py.

Every file a user reads (crops, tracks.csv, meta.json, manifest.csv, sequences.csv, the training report,
predict.py's tracks.csv and summary.json) must stay the same as recorded in ``tests/golden/``, so that
moving code around cannot change what the tool does. What varies from run to run is left out before
comparing: absolute paths, timings, creation times, library versions and the settings echo of summary.json
(its figures are compared; the settings that made them are in the checkpoint). After a deliberate change of
behavior, rerun with ``GOLDEN_UPDATE=1`` and say why in the commit.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).with_name("golden")
VOLATILE_KEYS = {"source", "seconds", "created", "checkpoint", "timing_ms_per_frame", "versions", "inference_backends"}
VOLATILE_COLUMNS = {"seconds"}
REAL_CLIPS = {"fight/fi003.mp4": "surv_fight", "punch/0_1_4.avi": "ut_interaction"}


def _json_stable(value):
    if isinstance(value, dict):
        return {k: _json_stable(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_json_stable(v) for v in value]
    return value


def _stable_bytes(path: Path) -> bytes:
    """A file's content without what varies between identical runs."""
    if path.suffix == ".json":
        value = json.loads(path.read_text())
        if path.name == "summary.json":
            value.pop("settings", None)  # the echo of the run's flags; the figures they made are compared
        return json.dumps(_json_stable(value), sort_keys=True).encode()
    if path.suffix == ".csv":
        rows = list(csv.reader(io.StringIO(path.read_text())))
        keep = [i for i, name in enumerate(rows[0]) if name not in VOLATILE_COLUMNS] if rows else []
        return "\n".join(",".join(row[i] for i in keep) for row in rows).encode()
    return path.read_bytes()


def digests(root: Path, patterns: tuple[str, ...]) -> dict[str, str]:
    """sha256 of every file under ``root`` matching ``patterns``, crops folded into one digest per person."""
    out: dict[str, str] = {}
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            rel = path.relative_to(root)
            if path.suffix == ".jpg":
                key = str(rel.parent) + "/*.jpg"
                out[key] = hashlib.sha256((out.get(key, "") + path.name).encode() + path.read_bytes()).hexdigest()
            else:
                out[str(rel)] = hashlib.sha256(_stable_bytes(path)).hexdigest()
    return out


def check_golden(name: str, got: dict[str, str]) -> None:
    """Compare with tests/golden/<name>.json (or write it with GOLDEN_UPDATE=1), naming every file that differs."""
    path = GOLDEN / f"{name}.json"
    if os.environ.get("GOLDEN_UPDATE"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = json.loads(path.read_text())
    differ = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    assert not differ, f"{name}: outputs differ from tests/golden/{name}.json: {differ}"


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, **kwargs)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def demo(weights_dir, tmp_path_factory) -> tuple[Path, str]:
    """``make demo`` into a temporary folder: the folder and its stdout."""
    root = tmp_path_factory.mktemp("demo")
    folders = {"SAMPLE_CLIPS": "clips", "SAMPLE_FRAMES": "frames", "SAMPLE_SEQUENCES": "seq/sequences.csv",
               "SAMPLE_FEATURES": "features", "SAMPLE_MODEL": "model", "SAMPLE_HOLDOUT": "holdout", "DEMO_OUT": "out"}
    variables = [f"{name}={root / rel}" for name, rel in folders.items()]
    proc = _run(["make", "--no-print-directory", "-o", ".venv/.installed", "demo", f"PY={sys.executable}",
                 *variables])
    return root, proc.stdout


@pytest.fixture(scope="module")
def real_clips(tmp_path_factory) -> Path:
    """One surv_fight clip and one UT-Interaction clip, in the layout stage 1 takes."""
    shared = ROOT.parent / "shared" / "assets" / "datasets"
    root = tmp_path_factory.mktemp("real")
    for rel, dataset in REAL_CLIPS.items():
        source = shared / dataset / rel
        if not source.is_file():
            pytest.fail(f"real clip {source} not found: these tests need ../shared/assets beside the repo",
                        pytrace=False)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(source)
    return root


def test_make_demo_labels_its_held_out_clip_correctly(demo):
    root, stdout = demo
    assert "\nvideo: walking (" in stdout  # predict.py's own verdict on the held-out walking clip
    assert "labeled walking" in stdout and (root / "out" / "annotated.mp4").is_file()


def test_demo_outputs_match_the_golden_files(demo):
    root, _ = demo
    check_golden("demo", digests(root, ("frames/**/*.jpg", "frames/**/*.csv", "frames/**/meta.json", "seq/*",
                                        "model/*.csv", "model/report.json", "out/*.csv", "out/summary.json",
                                        "out/annotations.json")))


def test_real_clips_through_stage_1_and_predict_match_the_golden_files(demo, real_clips, tmp_path):
    """Stage 1 on real clips; predict.py with the demo's model (appearance + motion) and with a model of the
    default streams (pose, interaction, reach) trained for two epochs on the demo's people."""
    demo_root, _ = demo
    frames = tmp_path / "frames"
    _run([sys.executable, "extract_frames.py", "--clips-dir", str(real_clips), "--frames-dir", str(frames)])
    pose_model = tmp_path / "pose_model"
    _run([sys.executable, "train_mobilenet_lstm.py", "--frames-dir", str(demo_root / "frames"),
          "--sequences-file", str(demo_root / "seq" / "sequences.csv"), "--features-dir", str(tmp_path / "features"),
          "--model-dir", str(pose_model), "--num-epochs", "2", "--ensemble-size", "2"])
    checkpoints = {"demo": demo_root / "model" / "best_mobilenet_lstm.pth",
                   "pose": pose_model / "best_mobilenet_lstm.pth"}
    for model, checkpoint in checkpoints.items():
        for rel in REAL_CLIPS:
            _run([sys.executable, "predict.py", "--video", str(real_clips / rel), "--checkpoint", str(checkpoint),
                  "--output-dir", str(tmp_path / "out" / model / Path(rel).stem)])
    check_golden("real", {**digests(frames, ("**/*.jpg", "**/*.csv", "**/meta.json")),
                          **digests(tmp_path, ("out/**/*.csv", "out/**/summary.json", "out/**/annotations.json",
                                               "pose_model/report.json",
                                               "pose_model/predictions.csv"))})
