import argparse
import re

import pytest

import config
from behavior import cli, settings
from behavior.errors import BehaviorError, InputError


def test_every_constant_is_a_flag_of_some_script():
    import importlib

    flags = set()
    for script in ("extract_frames", "group_sequences", "train_mobilenet_lstm", "predict"):
        parser = cli.build_parser("x", config, importlib.import_module(script).FLAGS)
        flags |= {opt for action in parser._actions for opt in action.option_strings}
    missing = [name for name in cli.config_constants(config) if cli.flag_name(name) not in flags]
    assert missing == [], f"constants no script offers (set in config.py only): {missing}"
    assert cli.flag_name("SEQUENCE_LENGTH") == "--sequence-length"


def every_group() -> list:
    return list(settings.DECLARING)


def test_flags_override_and_keep_types():
    parser = cli.build_parser("x", config, every_group())
    args = parser.parse_args(["--sequence-length", "24", "--no-enable-person-tracking", "--target-fps", "7.5",
                              "--split-fractions", "0.8", "0.1", "0.1", "--frames-dir", "/tmp/f"])
    cfg = cli.settings_from_args(args, config)
    assert cfg["SEQUENCE_LENGTH"] == 24 and cfg["ENABLE_PERSON_TRACKING"] is False
    assert cfg["TARGET_FPS"] == 7.5 and cfg["SPLIT_FRACTIONS"] == [0.8, 0.1, 0.1]
    assert cfg["FRAMES_DIR"] == "/tmp/f" and cfg["LSTM_HIDDEN_DIM"] == config.LSTM_HIDDEN_DIM


def test_bad_flag_value_is_a_usage_error():
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser("x", config, every_group()).parse_args(["--sequence-length", "many"])
    assert exit_info.value.code == 2


def test_run_turns_errors_into_one_line_and_exit_codes(capsys):
    def fails_input(argv):
        raise InputError("clips folder not found: x")

    def fails_other(argv):
        raise BehaviorError("nothing extracted")

    def interrupted(argv):
        raise KeyboardInterrupt

    assert cli.run(fails_input) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: clips folder not found: x" in err
    assert cli.run(fails_other) == 1
    assert cli.run(interrupted) == 130


def test_config_holds_constants_only():
    for name, value in vars(config).items():
        if name.startswith("__"):
            continue
        assert name.isupper(), f"config.py should only define constants, found {name}"
        assert isinstance(value, bool | int | float | str | tuple), name
    assert isinstance(argparse.ArgumentParser, type)


@pytest.mark.parametrize("script", ["extract_frames", "group_sequences", "train_mobilenet_lstm", "predict"])
def test_help_lists_the_stage_flags_grouped_with_their_help(script, capsys):
    """Own flags, then each group of settings under its heading (help from config.py's comments, allowed values)."""
    import importlib

    module = importlib.import_module(script)
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    flags = text[text.index("options:"):]
    starts = [flags.index(f"\n{cli.group_constants(group)[0]}:\n") for group in module.FLAGS]
    assert starts == sorted(starts)
    for group, start, end in zip(module.FLAGS, starts, [*starts[1:], len(flags)], strict=True):
        for name in cli.group_constants(group)[1]:
            at = re.search(re.escape(cli.flag_name(name)) + "[ ,]", flags)
            assert at and start < at.start() < end, name
    assert "(default: " in flags and "[an integer >= 1]" in flags


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser("x", config, every_group()).parse_args(["--sequence-length", "many"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid int value: 'many'" in err[0]
