"""Grouped K-fold cross-validation: every video held out once, groups kept whole, the test split never read."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from behavior.errors import InputError
from behavior.group.sequences import group_sequences, write_sequence_set
from behavior.settings import SequenceSettings
from behavior.train import crossval
from tools.synthetic import write_frames_tree

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cv_cfg(train_cfg, tmp_path):
    """config.py's values, shrunk, on a fresh tree of 8 videos per class (its own, so tests may delete crops)."""
    frames, sequences = tmp_path / "frames", tmp_path / "sequences" / "sequences.csv"
    write_frames_tree(frames, videos_per_class=8, persons_per_video=1, frames_per_person=8, image_size=32)
    write_sequence_set(group_sequences(frames, SequenceSettings(length=4, stride=4, min_frames=4), seed=0), sequences)

    def make(**overrides) -> dict:
        return train_cfg(FRAMES_DIR=str(frames), SEQUENCES_FILE=str(sequences), NUM_EPOCHS=2, **overrides)

    return make


def split_videos(sequences: Path) -> dict[str, str]:
    with open(sequences, newline="") as f:
        return {f"{r['label']}/{r['video']}": r["split"] for r in csv.DictReader(f)}


def test_every_video_is_held_out_once_and_the_test_split_is_never_read(cv_cfg, capsys):
    cfg = cv_cfg()
    split_of = split_videos(Path(cfg["SEQUENCES_FILE"]))
    for video, split in split_of.items():  # the test videos' crops are gone: reading one would fail
        if split == "test":
            shutil.rmtree(Path(cfg["FRAMES_DIR"]) / video)
    report = crossval.cross_validate(cfg, folds=3, progress=False)
    pool = sorted(v for v, s in split_of.items() if s != "test")
    held = [v for fold in report["per_fold"] for v in fold["predictions"]]
    assert sorted(held) == pool  # each train/val video exactly once, no test video
    assert report["pooled"]["n"] == len(pool) == report["videos"]
    assert sum(map(sum, report["pooled"]["confusion_matrix"])) == len(pool)
    assert [f["fold"] for f in report["per_fold"]] == [1, 2, 3]
    for name in ("video_accuracy", "video_macro_f1", "video_mean_class_accuracy"):
        values = [f[name] for f in report["per_fold"]]
        assert report[name]["mean"] == pytest.approx(sum(values) / 3, abs=1e-6)
    out = Path(cfg["MODEL_DIR"]) / "cv"
    for name in ("cv_report.json", "folds.csv", "confusion_matrix.csv", "confusion_matrix.png",
                 "fold_1/best_mobilenet_lstm.pth", "fold_3/report.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "cv_report.json").read_text())["per_fold"] == report["per_fold"]
    printed = capsys.readouterr().out
    assert "mean ± std" in printed and "test split not read" in printed and "pooled over all" in printed
    page = (out / "report.html").read_text()  # each fold linked to its own page, and the pooled figures
    links = re.findall(r'href="([^"]+)"', page)
    assert links == [f"fold_{k}/report.html" for k in (1, 2, 3)] and all((out / link).is_file() for link in links)
    assert f"{report['video_accuracy']['mean']:.3f}" in page and f"report: {out / 'report.html'}" in printed


def test_a_rerun_reuses_finished_folds_and_other_settings_need_overwrite(cv_cfg, capsys):
    cfg = cv_cfg()
    first = crossval.cross_validate(cfg, folds=2, progress=False)
    capsys.readouterr()
    again = crossval.cross_validate(cfg, folds=2, progress=False)
    assert "fold 2/2: finished earlier, report reused" in capsys.readouterr().out
    assert again["per_fold"] == first["per_fold"]
    with pytest.raises(InputError, match="holds a cross-validation with other folds or settings"):
        crossval.cross_validate({**cfg, "LSTM_HIDDEN_DIM": 8}, folds=2, progress=False)
    with pytest.raises(InputError, match="holds a cross-validation with other folds or settings"):
        crossval.cross_validate(cfg, folds=3, progress=False)
    redone = crossval.cross_validate({**cfg, "LSTM_HIDDEN_DIM": 8}, folds=2, overwrite=True, progress=False)
    assert "report reused" not in capsys.readouterr().out
    assert redone["model_config"]["hidden_dim"] == 8


def test_folds_follow_recording_groups(cv_cfg):
    cfg = cv_cfg(GROUP_PATTERN=r"^[a-z]+_(\d+)$")  # fight_0000i and walk_0000i share a recording
    crossval.cross_validate(cfg, folds=2, progress=False)
    with open(Path(cfg["MODEL_DIR"]) / "cv" / "folds.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    fold_of_group = {}
    for row in rows:
        assert fold_of_group.setdefault(row["group"], row["fold"]) == row["fold"], row
    assert len(set(fold_of_group.values())) == 2


def test_too_many_folds_is_one_clear_error(cv_cfg):
    with pytest.raises(InputError, match="20 folds need at least 20 groups of videos; there are 14"):
        crossval.cross_validate(cv_cfg(), folds=20, progress=False)


def test_the_cv_command(cv_cfg, weights_dir):
    cfg = cv_cfg()
    flags = ["--frames-dir", cfg["FRAMES_DIR"], "--sequences-file", cfg["SEQUENCES_FILE"],
             "--features-dir", cfg["FEATURES_DIR"], "--model-dir", cfg["MODEL_DIR"], "--lstm-hidden-dim", "16",
             "--lstm-num-layers", "1", "--num-epochs", "2"]
    proc = subprocess.run([sys.executable, str(ROOT / "train_mobilenet_lstm.py"), *flags, "--cv", "2",
                           "--no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("mean ± std") for line in lines)
    assert sum(line.split()[:1] in (["1"], ["2"]) and len(line.split()) == 8 for line in lines) >= 2  # per fold
    assert not (Path(cfg["MODEL_DIR"]) / "best_mobilenet_lstm.pth").exists()  # CV trains no final model
    bad = subprocess.run([sys.executable, str(ROOT / "train_mobilenet_lstm.py"), *flags, "--cv", "1"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["train_mobilenet_lstm.py: error: --cv needs at least 2 folds, got 1"]


def test_people_the_user_labeled_leave_the_folds_as_they_were():
    """Folds are dealt by each video's clip class: the same folds with or without per-person labels."""
    import dataclasses

    from behavior.io.sequence_file import SequenceTable

    classes = ["kick", "kick_received", "walk"]
    videos = [f"{c}/{c}_{k}" for c in ("kick", "walk") for k in range(6)]
    frames = [[f"{v}/person_1/frame_000000.jpg"] for v in videos]
    clip = SequenceTable([str(k) for k in range(12)], ["train"] * 12, [0] * 6 + [2] * 6, videos, frames, classes)
    person = dataclasses.replace(clip, labels=[1, 0, 1, 0, 1, 0] + [2] * 6, person_labeled=[True] * 6 + [False] * 6)
    assert crossval.plan_folds(person, 3, 7, None).fold_of == crossval.plan_folds(clip, 3, 7, None).fold_of
