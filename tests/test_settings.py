"""Every config.py constant is checked at start-up, in one place, with its allowed range or choices."""

import pytest

import config
from behavior import cli, settings
from behavior.errors import InputError


def defaults() -> dict:
    return cli.config_constants(config)


def test_every_constant_has_a_rule_and_the_defaults_pass():
    assert set(settings.RULES) == set(defaults())
    settings.validate(defaults())


def test_config_stays_lean():
    """Users face the settings that matter (docs/EXPERIMENTS.md lists those removed)."""
    assert len(defaults()) <= 52  # 50, and OBJECT_CLASSES and ANNOTATIONS_DIR since issue 37


def test_every_constant_is_declared_once_and_no_default_can_drift():
    """One declaration per config.py constant (``settings.setting``); every field holding one, declaring or using it,
    defaults to config.py's value, in every settings class and in the checkpoint's model config."""
    import dataclasses

    from behavior.model.network import ModelConfig

    declared = [c for cls in settings.DECLARING for c in settings.constants_of(cls, declared_only=True).values()]
    assert sorted(declared) == sorted(defaults()), "each config.py constant declared by exactly one field"
    recorded = {"mil_pooling", "cpu_precision"}  # ModelConfig records these resolved ("auto" made concrete)
    for cls in (*settings.DECLARING, ModelConfig):
        for field in dataclasses.fields(cls):
            constant = field.metadata.get("constant")
            if constant and not (cls is ModelConfig and field.name in recorded):
                value = getattr(config, constant)
                assert field.default == (tuple(value) if isinstance(value, list) else value), (cls, field.name)


@pytest.mark.parametrize("script,offered,refused", [
    ("extract_frames", ["--frames-dir", "--yolo-imgsz", "--detect-batch", "--inputs", "--device"],
     ["--lstm-hidden-dim", "--sequence-length", "--predict-stride"]),
    ("group_sequences", ["--sequence-length", "--groups-file", "--seed", "--log-level"],
     ["--lstm-hidden-dim", "--yolo-imgsz", "--device", "--learning-rate"]),
    ("train_mobilenet_lstm", ["--lstm-hidden-dim", "--inputs", "--focal-gamma", "--inference-backend"],
     ["--yolo-imgsz", "--sequence-length", "--predict-stride"]),
    ("predict", ["--predict-stride", "--yolo-imgsz", "--detect-batch", "--model-dir", "--inference-precision"],
     ["--lstm-hidden-dim", "--sequence-length", "--learning-rate", "--inputs"]),
])
def test_each_script_offers_its_own_stage_s_flags_and_nothing_else(script, offered, refused):
    import importlib

    parser = cli.build_parser(None, config, importlib.import_module(script).FLAGS)
    flags = {option for action in parser._actions for option in action.option_strings}
    assert set(offered) <= flags and not set(refused) & flags


@pytest.mark.parametrize("name,value,allowed", [
    ("YOLO_IMGSZ", 0, "an integer in [32, 4096]"),
    ("YOLO_IMGSZ", -640, "an integer in [32, 4096]"),
    ("YOLO_CONF_THRESHOLD", 1.5, "a number in (0, 1)"),
    ("YOLO_CONF_THRESHOLD", 0.0, "a number in (0, 1)"),
    ("DEVICE", "banana", "auto, cpu, cuda, cuda:N or a GPU number"),
    ("LSTM_HIDDEN_DIM", 0, "an integer in [1, 4096]"),
    ("LSTM_NUM_LAYERS", 0, "an integer in [1, 16]"),
    ("LSTM_DROPOUT", 1.0, "a number in [0, 1)"),
    ("LSTM_DROPOUT", 1.0, "a number in [0, 1)"),
    ("TARGET_FPS", float("nan"), "a number in [0, 1000]"),
    ("TARGET_FPS", float("inf"), "a number in [0, 1000]"),
    ("FOCAL_GAMMA", -1.0, "a number in [0, 10]"),
    ("TORCH_THREADS", -1, "an integer >= 0"),
    ("EARLY_STOPPING_PATIENCE", 0, "an integer >= 1"),
    ("SEQUENCE_LENGTH", "sixteen", "an integer in [1, 1024]"),
    ("SEQUENCE_LENGTH", 100000, "an integer in [1, 1024]"),  # 127 MB of padding once,
    ("ENABLE_PERSON_TRACKING", "no", "true or false"),
    ("PAD_MODE", "mirror", "one of: reverse, drop"),
    ("VIDEO_LABEL_RULE", "vote", "one of: auto, mean, max, mean_min"),
    ("MIL_POOLING", "attention", "one of: auto, none, max, roles"),
    ("SPLIT_FRACTIONS", (0.7, 0.3), "3 numbers, each in [0, 1]"),
    ("FRAMES_DIR", "", "a non-empty text"),
])
def test_a_bad_value_names_the_constant_its_flag_and_what_is_allowed(name, value, allowed):
    with pytest.raises(InputError) as error:
        settings.validate({**defaults(), name: value})
    assert str(error.value) == f"{name} ({cli.flag_name(name)}) must be {allowed}, got {value!r}"


@pytest.mark.parametrize("changes,message", [
    ({"SPLIT_FRACTIONS": (0.85, 0.0, 0.15)}, "needs train and val > 0"),
    ({"SPLIT_FRACTIONS": (0.7, 0.2, 0.2)}, "must sum to 1"),
    ({"CNN_INPUT": "difference", "FINE_TUNE_BLOCKS": 2}, "needs a frozen backbone"),
    ({"INPUTS": ("appearance", "scene_video"), "FINE_TUNE_BLOCKS": 2, "CNN_INPUT": "rgb"},
     "INPUTS 'scene_video' needs a frozen backbone"),
    ({"INPUTS": ("pose", "objects"), "OBJECT_CLASSES": ()}, "INPUTS 'objects' needs OBJECT_CLASSES"),
])
def test_rules_that_tie_constants_together(changes, message):
    with pytest.raises(InputError, match=message):
        settings.validate({**defaults(), **changes})


def test_device_must_exist_here():
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="DEVICE 'cuda': no CUDA GPU is visible"):
            settings.validate({**defaults(), "DEVICE": "cuda"})
    with pytest.raises(InputError, match="DEVICE 'cuda:99': "):
        settings.validate({**defaults(), "DEVICE": "cuda:99"})


def test_help_comes_from_config_comments():
    docs = cli.constant_docs(config)
    assert docs["SEQUENCE_LENGTH"].section == "Stage 2" and docs["SEQUENCE_LENGTH"].comment
    assert "needed to fine-tune" in docs["CNN_INPUT"].comment  # continued on the next line in config.py
    missing = [name for name, doc in docs.items() if not doc.comment]
    assert missing == [], f"constants without a comment in config.py (their --help would be empty): {missing}"


def test_help_is_short_and_help_all_gives_each_setting_in_full(capsys):
    """--help: each setting's first clause; --help-all: config.py's whole comment."""
    import extract_frames

    for flag in ("--help", "--help-all"):
        with pytest.raises(SystemExit):
            extract_frames.main([flag])
    short, full = capsys.readouterr().out.split("usage:")[1:]
    assert "frames kept per second of video [" in short and "resampled by timestamp" not in short
    assert "resampled by timestamp" in " ".join(full.split())
    assert short.count("\n") < full.count("\n")


def test_stage_1_keeps_no_track_that_stage_2_would_drop_unnamed():
    """Defaults aligned: a track long enough for stage 1 is long enough for a sequence in stage 2."""
    assert settings.ExtractSettings().min_track_frames >= config.MIN_SEQUENCE_FRAMES


def test_stage_1_saves_the_objects_only_for_a_model_that_reads_them():
    reads = settings.ExtractSettings.from_config({**defaults(), "INPUTS": ("pose", "objects")})
    assert reads.objects == tuple(config.OBJECT_CLASSES)
    assert settings.ExtractSettings.from_config(defaults()).objects == ()
    whole_frame = {**defaults(), "INPUTS": ("pose", "objects"), "ENABLE_PERSON_TRACKING": False}
    assert settings.ExtractSettings.from_config(whole_frame).objects == ()
