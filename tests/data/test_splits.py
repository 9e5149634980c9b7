import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from behavior.data.splits import (
    assign_folds,
    assign_groups,
    assign_splits,
    groups_from_pattern,
    read_groups_file,
    read_split_file,
    split_counts,
    validate_fractions,
    video_groups,
)
from behavior.errors import InputError


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


# --- recording groups -------------------------------------------------------------------------------------------


@st.composite
def grouped_videos(draw):
    """Random classes of videos, each video in one of a few random groups (groups may hold several classes)."""
    n_groups = draw(st.integers(1, 12))
    videos_by_class, group_of = {}, {}
    for c in range(draw(st.integers(1, 4))):
        keys = [f"c{c}/v{i}" for i in range(draw(st.integers(1, 15)))]
        videos_by_class[f"c{c}"] = keys
        for key in keys:
            group_of[key] = f"g{draw(st.integers(0, n_groups - 1))}"
    return videos_by_class, group_of


@st.composite
def fractions(draw):
    """SPLIT_FRACTIONS that validate: train and val > 0, test >= 0, summing to 1."""
    train = draw(st.integers(1, 99))
    val = draw(st.integers(1, 100 - train))
    return train / 100, val / 100, (100 - train - val) / 100


@settings(max_examples=200, deadline=None)
@given(grouped_videos(), fractions(), st.integers(0, 2**31))
def test_no_group_lands_in_two_splits_and_every_video_is_assigned(data, fractions, seed):
    videos_by_class, group_of = data
    split_of = assign_splits(videos_by_class, fractions, seed, group_of)
    assert set(split_of) == set(group_of)
    splits_of_group = {}
    for key, split in split_of.items():
        splits_of_group.setdefault(group_of[key], set()).add(split)
    assert all(len(s) == 1 for s in splits_of_group.values())
    assert split_of == assign_splits(videos_by_class, fractions, seed, group_of)  # deterministic by seed
    used = {s for s in split_of.values()}
    wanted = [s for s, f in zip(("train", "val", "test"), fractions, strict=True) if f > 0]
    assert len(used) == min(len(wanted), len(splits_of_group))  # every split gets a group while groups last


@settings(max_examples=200, deadline=None)
@given(grouped_videos(), st.integers(2, 6), st.integers(0, 2**31))
def test_folds_never_split_a_group_and_hold_every_video_once(data, folds, seed):
    videos_by_class, group_of = data
    if folds > len(set(group_of.values())):
        with pytest.raises(InputError, match=f"{folds} folds need at least {folds} groups"):
            assign_folds(videos_by_class, folds, seed, group_of)
        return
    fold_of = assign_folds(videos_by_class, folds, seed, group_of)
    assert set(fold_of) == set(group_of)
    assert {fold_of[k] for k in fold_of} == set(range(folds))  # no empty fold
    folds_of_group = {}
    for key, fold in fold_of.items():
        folds_of_group.setdefault(group_of[key], set()).add(fold)
    assert all(len(f) == 1 for f in folds_of_group.values())


def test_groups_are_stratified_by_class():
    # 20 cameras, each with 3 fight and 3 normal clips, plus 10 cameras with only normal clips
    counts = {f"cam{i}": {"fight": 3, "normal": 3} for i in range(20)}
    counts.update({f"quiet{i}": {"normal": 2} for i in range(10)})
    bin_of = assign_groups(counts, (0.6, 0.2, 0.2), seed=0)
    per_bin = [{c: sum(counts[g].get(c, 0) for g, b in bin_of.items() if b == i) for c in ("fight", "normal")}
               for i in range(3)]
    assert [p["fight"] for p in per_bin] == [36, 12, 12]
    assert [p["normal"] for p in per_bin] == [48, 16, 16]


def test_groups_file_by_key_name_or_filename_and_source_column(tmp_path):
    keys = ["fight/fi001", "fight/fi002", "noFight/nofi001"]
    path = tmp_path / "sources.csv"
    path.write_text("path,video,source\nfight/fi001.mp4,fi001,yt_a\nx,fight/fi002,yt_a\nx,nofi001.mp4,yt_b\n"
                    "x,unused,yt_c\n")
    assert read_groups_file(path, keys) == {"fight/fi001": "yt_a", "fight/fi002": "yt_a", "noFight/nofi001": "yt_b"}


def test_a_video_missing_from_the_groups_file_is_named(tmp_path):
    path = tmp_path / "groups.csv"
    path.write_text("video,group\nfi001,a\n")
    with pytest.raises(InputError, match=r"gives no group for video noFight/nofi007 and 1 more: add it"):
        read_groups_file(path, ["fight/fi001", "noFight/nofi007", "noFight/nofi008"])
    path.write_text("video,camera\nfi001,a\n")
    with pytest.raises(InputError, match="needs a header with the columns video,group"):
        read_groups_file(path, ["fight/fi001"])
    path.write_text("video,group\nfi001,a\nfi001,b\n")
    with pytest.raises(InputError, match=r"listed in two groups \(a, b\)"):
        read_groups_file(path, ["fight/fi001"])


def test_group_pattern():
    assert groups_from_pattern(r"^\d+_(\d+)_", ["kick/1_12_3", "hug/4_2_1"]) == {"kick/1_12_3": "12",
                                                                                  "hug/4_2_1": "2"}
    with pytest.raises(InputError, match=r"does not match video kick/extra_clip \(searched in 'extra_clip'\)"):
        groups_from_pattern(r"^\d+_(\d+)_", ["kick/1_12_3", "kick/extra_clip"])
    with pytest.raises(InputError, match="needs a capture group"):
        groups_from_pattern(r"^\d+_", ["kick/1_12_3"])
    with pytest.raises(InputError, match="not a regular expression"):
        groups_from_pattern(r"^(\d+", ["kick/1_12_3"])
    with pytest.raises(InputError, match="not both"):
        video_groups(["a/b"], "groups.csv", r"(x)")
    assert video_groups(["a/b"]) is None


def test_without_groups_the_split_is_the_one_by_video():
    # the video-level algorithm is untouched: the same keys, fractions and seed give the same split as before
    assert assign_splits({"fight": ["fight/a", "fight/b", "fight/c"]}, (0.7, 0.15, 0.15), seed=0) == \
        {"fight/c": "train", "fight/b": "val", "fight/a": "test"}
