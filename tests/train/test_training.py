import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from behavior.errors import BehaviorError, InputError
from behavior.io import checkpoint
from behavior.io.weights import resolve_weights
from behavior.model.network import BehaviorNet, ModelConfig, load_backbone
from behavior.predict.session import Predictor
from behavior.settings import PredictSettings
from behavior.train import engine, setup, training

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = ("best_mobilenet_lstm.pth", "last.pth", "history.csv", "report.json", "classification_report.txt",
           "confusion_matrix.csv", "confusion_matrix.png", "curves.png", "predictions.csv")


def test_trains_and_writes_every_output(train_cfg, capsys):
    cfg = train_cfg()
    report = training.train(cfg, progress=False)
    out = capsys.readouterr().out
    for text in ("Epoch 1/3", "Train Loss:", "| Train Acc:", "Val Loss:", "| Val Acc:", "Best model saved",
                 "FINAL EVALUATION ON TEST SET", "Video level:"):
        assert text in out, text
    model_dir = Path(cfg["MODEL_DIR"])
    for name in OUTPUTS:
        assert (model_dir / name).is_file(), name
    assert report["split"] == "test" and report["video_level"]["n"] == 2
    assert report["video_level"]["accuracy"] == 1.0  # brightness and motion separate the classes
    assert len((model_dir / "history.csv").read_text().splitlines()) == 4
    predictions = (model_dir / "predictions.csv").read_text().splitlines()  # every test sequence, its probabilities
    assert predictions[0] == "sequence_id,label,predicted,p_fight,p_walk"
    assert len(predictions) - 1 == report["sequence_level"]["n"]
    for line in predictions[1:]:
        sid, label, predicted, *probs = line.split(",")
        p = [float(v) for v in probs]
        assert sid.split("/")[0] == label and predicted == ("fight", "walk")[p.index(max(p))]
        assert abs(sum(p) - 1) < 1e-4
    # one test video per class: a perfect score that means nothing, and the report says so
    assert report["warnings"] == ["the test split holds only 2 videos (1 fight, 1 walk): one video moves video-level "
                                  "accuracy by 50 points, so these figures mean little; use at least 5 videos per "
                                  "class, or cross-validate"]
    assert f"WARNING: {report['warnings'][0]}" in out
    assert (model_dir / "classification_report.txt").read_text().startswith("WARNING: the test split holds only 2")
    page = (model_dir / "report.html").read_text()  # one page: figures, pictures, data, settings and their source
    assert "video accuracy <b>1.000</b>" in page and "the test split holds only 2 videos" in page
    assert all((model_dir / src).is_file() for src in re.findall(r'<img src="([^"]+)"', page))
    assert "<td>LSTM_HIDDEN_DIM</td><td>16</td><td>a flag, or auto resolved (config.py: 32)</td>" in page
    assert "<td>SEED</td><td>42</td><td>config.py</td>" in page and "every held-out video was labeled right" in page
    assert f"report: {model_dir / 'report.html'}" in out


def test_streams_without_a_cnn(train_cfg, capsys):
    """INPUTS without appearance: no MobileNetV2 is loaded or cached; keypoints are filled in from the saved crops
    (these synthetic people get none: every pose vector says so) and the checkpoint names its streams."""
    cfg = train_cfg(INPUTS=("motion", "pose", "interaction"), BACKBONE_WEIGHTS="missing.pth")
    report = training.train(cfg, progress=False)
    out = capsys.readouterr().out
    assert "motion, pose, interaction only (no MobileNetV2)" in out and "Keypoint cache: 0 person folders reused" in out
    ckpt = torch.load(Path(cfg["MODEL_DIR"]) / checkpoint.BEST, weights_only=True)
    model_config = ModelConfig.from_dict(ckpt["model_config"])
    assert model_config.inputs == ("motion", "pose", "interaction") and len(model_config.pose_sha256) == 64
    assert not any(k.startswith("backbone") or "feature_norm" in k for k in ckpt["model"])
    features = Path(cfg["FEATURES_DIR"])
    assert [p.name[:5] for p in features.iterdir()] == ["pose-"]  # only the keypoint cache
    assert report["video_level"]["n"] == 2
    training.train({**cfg, "MODEL_DIR": cfg["MODEL_DIR"] + "2"}, progress=False)
    assert "Keypoint cache: 12 person folders reused, 0 computed" in capsys.readouterr().out


def test_the_video_streams_read_i3d_features_from_their_cache(train_cfg, tmp_path, capsys):
    """INPUTS "scene_video": I3D's features of the scene's clips (stage 1's ``scene`` folders; without them training
    stops with one line before any work), cached once per folder; the checkpoint records the clip length, the input
    size and the weights, and prediction refuses other weights."""
    import shutil


    frames = tmp_path / "frames"
    shutil.copytree(train_cfg()["FRAMES_DIR"], frames)
    cfg = train_cfg(FRAMES_DIR=str(frames), INPUTS=("scene_video", "motion"), VIDEO_SIZE=32,
                    NUM_EPOCHS=2)
    with pytest.raises(InputError, match="scene image missing: .*rerun extract_frames.py"):
        training.train(cfg, progress=False)  # before any work
    videos = sorted(p.parent for p in frames.glob("*/*/person_1"))
    for video in videos:  # one person each: their crops stand in for the scene images
        shutil.copytree(video / "person_1", video / "scene")
    report = training.train(cfg, progress=False)
    assert f"I3D feature cache: 0 folders reused, {len(videos)} computed" in capsys.readouterr().out
    ckpt = torch.load(Path(cfg["MODEL_DIR"]) / checkpoint.BEST, weights_only=True)
    model_config = ModelConfig.from_dict(ckpt["model_config"])
    assert (model_config.feature_dim, model_config.video_clip_length, model_config.video_size,
            len(model_config.video_sha256)) == (1024, 16, 32, 64)
    assert any("scene_video_norm" in k for k in ckpt["model"]) and report["video_level"]["n"] == 2
    training.train({**cfg, "INPUTS": ("scene_video",), "MODEL_DIR": cfg["MODEL_DIR"] + "2"}, progress=False)
    assert f"I3D feature cache: {len(videos)} folders reused, 0 computed" in capsys.readouterr().out
    other = tmp_path / "other.npz"
    with np.load(resolve_weights("i3d_kinetics400_rgb.npz")) as weights:
        np.savez(other, **{k: weights[k] * 1.01 for k in weights.files})
    with pytest.raises(InputError, match="I3D_WEIGHTS .* are not the I3D weights this checkpoint was trained with"):
        Predictor(Path(cfg["MODEL_DIR"]) / checkpoint.BEST, PredictSettings(i3d_weights=str(other)))


def test_multiple_instance_training_pools_each_clip_s_people(train_cfg, capsys):
    """MIL_POOLING trains on whole clips; the report's video level pools people the same way and says who is
    labeled what; predict.py's "auto" video rule takes the checkpoint's pooling."""

    cfg = train_cfg(MIL_POOLING="max", BACKGROUND_CLASS="walk", INPUTS=("motion",), NUM_EPOCHS=2)
    report = training.train(cfg, progress=False)
    out = capsys.readouterr().out
    assert "clips as bags of people, max pooling, background class walk" in out
    assert "Video level (max pooling over people)" in out and "walk (background)" in out
    assert report["video_level"]["pooling"] == "max" and report["video_level"]["n"] == 2
    assert report["people_labels"]["walk"]["background"] and report["people_labels"]["fight"]["clips"] == 1
    assert {p for people in report["people"].values() for p in people} == {"person_1"}
    ckpt = torch.load(Path(cfg["MODEL_DIR"]) / checkpoint.BEST, weights_only=True)
    assert (ckpt["model_config"]["mil_pooling"], ckpt["model_config"]["background_class"]) == ("max", "walk")
    predictor = Predictor(Path(cfg["MODEL_DIR"]) / checkpoint.BEST, PredictSettings())
    assert (predictor.video_rule, predictor.background) == ("max", 1)
    assert Predictor(Path(cfg["MODEL_DIR"]) / checkpoint.BEST, PredictSettings(video_label_rule="mean")).video_rule \
        == "mean"
    with pytest.raises(InputError, match="BACKGROUND_CLASS .*'sitting' is not one of the classes of the sequences"):
        training.train(train_cfg(BACKGROUND_CLASS="sitting", MODEL_DIR=cfg["MODEL_DIR"] + "2"), progress=False)


def test_actor_classes_label_each_person_and_add_the_background_class(train_cfg, capsys):
    """ACTOR_CLASSES with a BACKGROUND_CLASS that has no folder: it and the received classes become classes of the
    model, training is per person, and the video label (report and predict.py) is the mean with the background's
    minimum; settings that cannot work are one-line errors before any training."""

    cfg = train_cfg(ACTOR_CLASSES=("fight",), BACKGROUND_CLASS="none", INPUTS=("motion",), NUM_EPOCHS=2)
    report = training.train(cfg, progress=False)
    out = capsys.readouterr().out
    assert "Keypoint cache:" in out  # who acts is read from the keypoints
    assert re.search(r"Who acts \(fight\): of \d+ train and val sequences, 0 are of people receiving the action "
                     r"\(<action>_received\) and 0 are of people passing by \(none\)", out)  # one person a clip
    ckpt = torch.load(Path(cfg["MODEL_DIR"]) / checkpoint.BEST, weights_only=True)
    assert ckpt["classes"] == ["fight", "walk", "none", "fight_received"]
    model_config = ModelConfig.from_dict(ckpt["model_config"])
    assert (model_config.actor_classes, model_config.mil_pooling, model_config.background_class,
            model_config.num_classes) == (("fight",), "roles", "none", 4)
    assert report["video_level"]["pooling"] == "mean_min" and report["video_level"]["n"] == 2
    predictor = Predictor(Path(cfg["MODEL_DIR"]) / checkpoint.BEST, PredictSettings())
    assert (predictor.video_rule, predictor.background) == ("mean_min", 2)
    for overrides, message in [({"BACKGROUND_CLASS": ""}, "ACTOR_CLASSES .*needs a BACKGROUND_CLASS"),
                               ({"ACTOR_CLASSES": ("kick",)}, "ACTOR_CLASSES .*kick: not among the clip classes"),
                               ({"MIL_POOLING": "max"}, "MIL_POOLING must be auto or roles, not 'max'")]:
        with pytest.raises(InputError, match=message):
            training.train({**cfg, **overrides, "MODEL_DIR": cfg["MODEL_DIR"] + "2"}, progress=False)


def test_roles_without_actor_classes_train_each_person_and_pool_by_mean_min(train_cfg, capsys):
    """MIL_POOLING "roles" with a background folder and no ACTOR_CLASSES: no class is added, training is per person
    (main people carry the clip label), and the video label of the report and predict.py is mean_min; without a
    background class it is a one-line error before any training."""

    cfg = train_cfg(MIL_POOLING="roles", BACKGROUND_CLASS="walk", INPUTS=("motion",), NUM_EPOCHS=2)
    report = training.train(cfg, progress=False)
    out = capsys.readouterr().out
    assert re.search(r"Who acts: of \d+ train and val sequences, 0 are of people passing by \(walk\)", out)
    assert "clips as bags" not in out  # per sequence
    ckpt = torch.load(Path(cfg["MODEL_DIR"]) / checkpoint.BEST, weights_only=True)
    assert ckpt["classes"] == ["fight", "walk"] and ckpt["model_config"]["mil_pooling"] == "roles"
    assert report["video_level"]["pooling"] == "mean_min"
    predictor = Predictor(Path(cfg["MODEL_DIR"]) / checkpoint.BEST, PredictSettings())
    assert (predictor.video_rule, predictor.background) == ("mean_min", 1)
    with pytest.raises(InputError, match="MIL_POOLING .*roles needs a BACKGROUND_CLASS"):
        training.train({**cfg, "BACKGROUND_CLASS": "", "MODEL_DIR": cfg["MODEL_DIR"] + "2"}, progress=False)


def test_a_class_missing_from_a_split_is_said_plainly():
    from behavior.metrics import data_warnings

    warnings = data_warnings({"train": {"a": 20, "b": 20}, "val": {"a": 5, "b": 5}, "test": {"a": 6}}, ["a", "b"],
                             "test")
    assert warnings[0] == "class b has no video in the test split: its test figures are missing"
    assert "the test split holds only 6 videos (6 a, 0 b)" in warnings[1]
    assert data_warnings({"train": {"a": 20, "b": 20}, "val": {"a": 5, "b": 5}, "test": {"a": 6, "b": 5}},
                         ["a", "b"], "test") == []


def test_checkpoint_round_trip_weights_only(train_cfg):
    cfg = train_cfg(NUM_EPOCHS=1)
    training.train(cfg, progress=False)
    ckpt = torch.load(Path(cfg["MODEL_DIR"]) / checkpoint.BEST, weights_only=True)
    assert set(ckpt) >= {"model", "classes", "model_config", "train_config", "metrics", "epoch", "versions"}
    model_config = ModelConfig.from_dict(ckpt["model_config"])
    assert (model_config.sequence_length, model_config.frame_width, model_config.num_classes) == (4, 32, 2)
    assert ckpt["classes"] == ["fight", "walk"] and model_config.pad_mode == cfg["PAD_MODE"]
    net = BehaviorNet(model_config, load_backbone(None))
    net.load_state_dict(ckpt["model"])


def test_early_stopping_stops(train_cfg, capsys):
    cfg = train_cfg(NUM_EPOCHS=20, EARLY_STOPPING_PATIENCE=2, LEARNING_RATE=1e-9)
    training.train(cfg, progress=False)
    out = capsys.readouterr().out
    assert "Early stopping" in out and "Epoch 4/20" not in out  # epoch 1 best, 2 and 3 not: stop


def test_early_stopping_rule():
    stop = engine.EarlyStopping(patience=2)
    assert stop.step(0.5) and not stop.step(0.5) and not stop.should_stop
    assert not stop.step(0.4) and stop.should_stop


def test_resume_continues_and_refuses_changes(train_cfg, capsys):
    cfg = train_cfg(NUM_EPOCHS=2)
    training.train(cfg, progress=False)
    with pytest.raises(InputError, match="--resume"):
        training.train(cfg, progress=False)
    capsys.readouterr()
    training.train({**cfg, "NUM_EPOCHS": 3}, resume=True, progress=False)
    out = capsys.readouterr().out
    assert "Resumed from" in out and "Epoch 3/3" in out and "Epoch 1/3" not in out
    assert len((Path(cfg["MODEL_DIR"]) / "history.csv").read_text().splitlines()) == 4
    with pytest.raises(InputError, match="model config differs.*hidden_dim"):
        training.train({**cfg, "NUM_EPOCHS": 4, "LSTM_HIDDEN_DIM": 32}, resume=True, progress=False)


def test_resume_after_ctrl_c_continues_the_same_run(train_cfg, tmp_path, monkeypatch, capsys):
    """Interrupted in epoch 3 and resumed, training ends exactly where an uninterrupted run ends."""
    import torch
    from conftest import ctrl_c_on_call

    straight = train_cfg(NUM_EPOCHS=4, MODEL_DIR=str(tmp_path / "straight"))
    training.train(straight, progress=False)
    real = engine.train_one_epoch
    resumed = {**straight, "MODEL_DIR": str(tmp_path / "resumed")}
    monkeypatch.setattr(engine, "train_one_epoch", ctrl_c_on_call(real, 3))  # in epoch 3
    with pytest.raises(KeyboardInterrupt):
        training.train(resumed, progress=False)
    monkeypatch.setattr(engine, "train_one_epoch", real)
    capsys.readouterr()
    training.train(resumed, progress=False)  # the plain command continues an interrupted run: no --resume needed
    assert "the same run goes on" in capsys.readouterr().out
    a, b = (checkpoint.load_checkpoint(Path(cfg["MODEL_DIR"]) / checkpoint.LAST) for cfg in (straight, resumed))
    assert [h["train_loss"] for h in a["history"]] == pytest.approx([h["train_loss"] for h in b["history"]], rel=1e-6)
    assert all(torch.allclose(a["model"][k], b["model"][k], atol=1e-6) for k in a["model"])


def test_an_interrupted_run_with_other_settings_is_not_continued_silently(train_cfg, tmp_path, monkeypatch):
    """A plain rerun continues only the same run: changed settings need --overwrite, said in one line."""
    from conftest import ctrl_c_on_call

    cfg = train_cfg(NUM_EPOCHS=3)
    real = engine.train_one_epoch
    monkeypatch.setattr(engine, "train_one_epoch", ctrl_c_on_call(real, 2))
    with pytest.raises(KeyboardInterrupt):
        training.train(cfg, progress=False)
    monkeypatch.setattr(engine, "train_one_epoch", real)
    with pytest.raises(InputError, match="holds an interrupted training that cannot go on .*hidden_dim.*--overwrite"):
        training.train({**cfg, "LSTM_HIDDEN_DIM": 32}, progress=False)
    assert training.train({**cfg, "LSTM_HIDDEN_DIM": 32}, overwrite=True, progress=False)["best_epoch"] >= 1


def test_resume_refuses_other_classes(train_cfg, tmp_path):
    cfg = train_cfg(NUM_EPOCHS=1)
    training.train(cfg, progress=False)
    sequences = Path(cfg["SEQUENCES_FILE"])
    other = tmp_path / "other" / "sequences.csv"
    other.parent.mkdir()
    other.write_text(sequences.read_text().replace(",walk,", ",stroll,").replace("walk/", "walk/"))
    (other.parent / "classes.json").write_text('["fight", "stroll"]')
    with pytest.raises(InputError, match="trained on classes"):
        training.train({**cfg, "SEQUENCES_FILE": str(other)}, resume=True, progress=False)


def test_nan_loss_is_a_clear_error(train_cfg):
    with pytest.raises(BehaviorError, match="loss became nan"):
        training.train(train_cfg(LEARNING_RATE=1e30, NUM_EPOCHS=3), progress=False)


def test_empty_train_split(train_cfg, tmp_path):
    cfg = train_cfg()
    lines = Path(cfg["SEQUENCES_FILE"]).read_text().splitlines()
    only_test = tmp_path / "s" / "sequences.csv"
    only_test.parent.mkdir()
    only_test.write_text("\n".join([lines[0]] + [line for line in lines[1:] if ",test," in line]) + "\n")
    (only_test.parent / "classes.json").write_text('["fight", "walk"]')
    with pytest.raises(InputError, match="train split .* is empty"):
        training.train({**cfg, "SEQUENCES_FILE": str(only_test)}, progress=False)


def test_fine_tuning_path(train_cfg):
    report = training.train(train_cfg(NUM_EPOCHS=1, FINE_TUNE_BLOCKS=1), progress=False)
    assert report["video_level"]["n"] == 2


def test_ddp_two_cpu_processes(train_cfg, tmp_path):
    cfg = train_cfg(NUM_EPOCHS=2)
    args = [f"--{k.lower().replace('_', '-')}={cfg[k]}" for k in
            ("FRAMES_DIR", "SEQUENCES_FILE", "FEATURES_DIR", "MODEL_DIR", "LSTM_HIDDEN_DIM", "LSTM_NUM_LAYERS",
             "BATCH_SIZE", "NUM_EPOCHS", "LEARNING_RATE")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(ROOT / "train_mobilenet_lstm.py"), *args, "--torch-threads=1", "--device=cpu", "--no-progress"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          start_new_session=True) as running:
        try:
            stdout, stderr = running.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(running.pid, signal.SIGKILL)  # the workers too, not only torchrun
            raise
    proc = subprocess.CompletedProcess(command, running.returncode, stdout, stderr)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("Epoch 2/2") == 1  # only rank 0 prints
    assert "2 process(es)" in proc.stdout and "FINAL EVALUATION ON TEST SET" in proc.stdout
    assert (Path(cfg["MODEL_DIR"]) / checkpoint.BEST).is_file()


def test_script_errors_are_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = str(ROOT / "train_mobilenet_lstm.py")
    proc = subprocess.run([sys.executable, script, "--sequences-file", str(tmp_path / "none.csv")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"train_mobilenet_lstm.py: error: sequences file not found: {tmp_path / 'none.csv'} "
        "(run group_sequences.py first)"]


@pytest.mark.parametrize("read_only", [True, False], ids=["read-only", "full"])
def test_a_full_or_read_only_model_dir_is_one_line(small_sequences, weights_dir, tmp_path, read_only):
    """Found before the feature pass and the first epoch (read-only), or at the first save (full): one line."""
    from conftest import one_error_line, run_on_small_disk

    frames, sequences = small_sequences
    model_dir = tmp_path / "model"
    proc = run_on_small_disk([sys.executable, str(ROOT / "train_mobilenet_lstm.py"), "--frames-dir", str(frames),
                              "--sequences-file", str(sequences), "--features-dir", str(tmp_path / "features"),
                              "--model-dir", str(model_dir), "--num-epochs", "2", "--lstm-hidden-dim", "16",
                              "--no-progress"], model_dir, size_kb=16, read_only=read_only)
    assert proc.returncode == 1, proc.stderr
    line = one_error_line(proc, "train_mobilenet_lstm.py")
    if read_only:
        assert line == f"train_mobilenet_lstm.py: error: cannot write {model_dir}: read-only file system"
        assert "Feature cache" not in proc.stdout and "Epoch" not in proc.stdout
    else:
        assert line.endswith("no space left on device (disk full)") and str(model_dir) in line


@pytest.mark.parametrize("flag,value,message", [
    ("--lstm-hidden-dim", "0", "LSTM_HIDDEN_DIM (--lstm-hidden-dim) must be an integer in [1, 4096], got 0"),
    ("--lstm-num-layers", "0", "LSTM_NUM_LAYERS (--lstm-num-layers) must be an integer in [1, 16], got 0"),
    ("--lstm-dropout", "1.0", "LSTM_DROPOUT (--lstm-dropout) must be a number in [0, 1), got 1.0"),
    ("--lstm-dropout", "1", "LSTM_DROPOUT (--lstm-dropout) must be a number in [0, 1), got 1.0"),
    ("--focal-gamma", "-1", "FOCAL_GAMMA (--focal-gamma) must be a number in [0, 10], got -1.0"),
    ("--torch-threads", "-2", "TORCH_THREADS (--torch-threads) must be an integer >= 0, got -2"),
    ("--early-stopping-patience", "0", "EARLY_STOPPING_PATIENCE (--early-stopping-patience) must be an integer >= 1"),
    ("--device", "banana", "DEVICE (--device) must be auto, cpu, cuda, cuda:N or a GPU number, got 'banana'"),
    ("--device", "cuda:99", "DEVICE 'cuda:99': "),  # no GPU, or not 100 of them
    ("--learning-rate", "nan", "LEARNING_RATE (--learning-rate) must be a number > 0, got nan"),
])
def test_invalid_settings_are_one_line_before_any_work(tmp_path, capsys, flag, value, message):
    import train_mobilenet_lstm
    from behavior import cli

    code = cli.run(train_mobilenet_lstm.main, ["--sequences-file", str(tmp_path / "none.csv"), flag, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err


def test_resume_without_a_checkpoint(train_cfg):
    with pytest.raises(InputError, match="checkpoint not found: .*last.pth"):
        training.train(train_cfg(), resume=True, progress=False)


@pytest.mark.parametrize("overrides, backend", [
    ({}, "openvino"),  # INFERENCE_BACKEND "auto" on a CPU
    ({"INFERENCE_BACKEND": "onnxruntime"}, "onnxruntime"),
    ({"INFERENCE_BACKEND": "torch"}, "torch"),
    ({"FINE_TUNE_BLOCKS": 1}, "torch"),  # a fine-tuned backbone trains, and so predicts, on torch
    ({"INPUTS": ("motion", "pose")}, "torch"),  # no CNN at all
])
def test_the_cnn_backend_is_chosen_once_and_recorded(train_cfg, overrides, backend):
    from behavior.io.sequence_file import read_sequences

    cfg = train_cfg(**overrides)
    model_config = setup.model_config_from(cfg, read_sequences(Path(cfg["SEQUENCES_FILE"])), Path(cfg["FRAMES_DIR"]))
    assert model_config.cnn_backend == backend
    assert ModelConfig.from_dict(model_config.to_dict()).cnn_backend == backend


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
def test_a_model_folder_holding_the_user_s_own_files_is_refused_untouched(train_cfg, tmp_path, overwrite):
    """--model-dir pointed at a folder of the user's own report.json and history.csv: one line, and both untouched,
    even with --overwrite (which replaces only training's own files); cross-validation likewise."""
    from behavior.train import crossval

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.json").write_text('{"quarter": 3}')
    (mine / "history.csv").write_text("year,sales\n2025,12\n")
    cfg = train_cfg(MODEL_DIR=str(mine))
    message = (f"MODEL_DIR {mine} holds files training did not write (2 other entries, e.g. 'history.csv'): "
               "nothing was changed; choose an empty or new --model-dir")
    with pytest.raises(InputError) as error:
        training.train(cfg, overwrite=overwrite, progress=False)
    assert str(error.value) == message
    with pytest.raises(InputError, match="holds files training did not write"):
        crossval.cross_validate(cfg, folds=2, overwrite=overwrite, progress=False)
    assert sorted(p.name for p in mine.iterdir()) == ["history.csv", "report.json"]
    assert (mine / "report.json").read_text() == '{"quarter": 3}'
