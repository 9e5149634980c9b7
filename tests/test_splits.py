import logging

import pytest

from behavior.errors import InputError
from behavior.splits import assign_splits, read_split_file, split_counts, validate_fractions


@pytest.mark.parametrize("n,expected", [(10, [7, 2, 1]), (20, [14, 3, 3]), (3, [1, 1, 1]), (2, [1, 1, 0]),
                                        (1, [1, 0, 0]), (120, [84, 18, 18])])
def test_split_counts(n, expected):
    assert split_counts(n, (0.7, 0.15, 0.15)) == expected
    assert sum(split_counts(n, (0.7, 0.15, 0.15))) == n


def test_zero_fraction_split_stays_empty():
    assert split_counts(10, (0.8, 0.2, 0.0)) == [8, 2, 0]


def test_fractions_validated():
    with pytest.raises(InputError, match="must sum to 1"):
        validate_fractions((0.7, 0.2, 0.2))
    with pytest.raises(InputError, match="train and val > 0"):
        validate_fractions((0.0, 0.5, 0.5))
    with pytest.raises(InputError, match="train and val > 0"):  # no validation videos: training could not stop early
        validate_fractions((0.85, 0.0, 0.15))


def videos(n_a=20, n_b=10):
    return {"a": [f"a/v{i}" for i in range(n_a)], "b": [f"b/w{i}" for i in range(n_b)]}


def test_stratified_and_deterministic():
    split_of = assign_splits(videos(), (0.7, 0.15, 0.15), seed=1)
    assert split_of == assign_splits(videos(), (0.7, 0.15, 0.15), seed=1)
    assert split_of != assign_splits(videos(), (0.7, 0.15, 0.15), seed=2)
    for label, expected in (("a", [14, 3, 3]), ("b", [7, 2, 1])):
        got = [sum(1 for k, s in split_of.items() if k.startswith(label + "/") and s == split)
               for split in ("train", "val", "test")]
        assert got == expected


def test_adding_a_class_does_not_reshuffle_others():
    before = assign_splits(videos(), (0.7, 0.15, 0.15), seed=1)
    after = assign_splits({**videos(), "c": ["c/x0", "c/x1", "c/x2"]}, (0.7, 0.15, 0.15), seed=1)
    assert {k: v for k, v in after.items() if not k.startswith("c/")} == before


def test_warns_when_a_class_misses_a_split(caplog):
    with caplog.at_level(logging.WARNING):
        assign_splits({"rare": ["rare/1", "rare/2"], "common": [f"c/{i}" for i in range(10)]}, (0.7, 0.15, 0.15), 0)
    assert "class rare has too few videos (2) to reach every split: none in test" in caplog.text


def test_split_file_by_key_name_or_filename(tmp_path, caplog):
    keys = ["fight/fi001", "noFight/nofi001", "g/walk/w1", "g/walk/w2"]
    path = tmp_path / "split.csv"
    path.write_text("video,split\nfight/fi001,train\nnofi001.mp4,test\nw1,VAL\nghost,train\n")
    with caplog.at_level(logging.WARNING):
        split_of = read_split_file(path, keys)
    assert split_of == {"fight/fi001": "train", "noFight/nofi001": "test", "g/walk/w1": "val"}
    assert "1 video(s) of the split file have no sequences" in caplog.text
    assert "1 video(s) are not in the split file and are left out" in caplog.text


@pytest.mark.parametrize("text,message", [
    ("name,split\nx,train\n", "columns video,split"),
    ("video,split\nfight/fi001,holdout\n", "split must be one of"),
    ("video,split\nfight/fi001,train\nfight/fi001,test\n", "two splits"),
    ("video,split\nsame,train\n", "several videos"),
])
def test_split_file_errors(tmp_path, text, message):
    path = tmp_path / "split.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_split_file(path, ["fight/fi001", "a/same", "b/same"])
    with pytest.raises(InputError, match="not found"):
        read_split_file(tmp_path / "nope.csv", [])
