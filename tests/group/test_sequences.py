import csv
import json
import logging
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from behavior.data.windows import dense_windows, pad_positions
from behavior.errors import InputError
from behavior.group.sequences import (
    PersonTrack,
    build_sequences,
    evenly_spaced,
    group_sequences,
    split_segments,
    track_sequences,
    write_sequence_set,
)
from behavior.io.sequence_file import SEQUENCES_HEADER
from behavior.settings import SequenceSettings
from tools.synthetic import write_frames_tree


def make_track(ordinals, person=1, label="fight", video="v1"):
    ordinals = tuple(ordinals)
    return PersonTrack("", label, video, person, tuple(2 * o for o in ordinals), ordinals,
                       tuple(f"{label}/{video}/person_{person}/frame_{2 * o:06d}.jpg" for o in ordinals))


def test_dense_windows():
    assert dense_windows(10, 4, 3) == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert dense_windows(3, 4, 1) == []
    assert dense_windows(4, 4, 100) == [[0, 1, 2, 3]]


@pytest.mark.parametrize("mode,expected", [
    ("reverse", [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]),
    ("drop", None),
])
def test_pad_modes(mode, expected):
    assert pad_positions(4, 10, mode) == expected


def test_reverse_padding_of_one_frame():
    assert pad_positions(1, 4, "reverse") == [0, 0, 0, 0]


def test_gap_cutting():
    assert split_segments([0, 1, 2, 3, 10, 11, 12], max_gap=5) == [range(0, 4), range(4, 7)]
    assert split_segments([0, 1, 2, 3, 9, 10], max_gap=5) == [range(0, 6)]  # exactly 5 missing: no cut
    assert split_segments([], max_gap=5) == []


def test_no_window_spans_a_gap():
    track = make_track(list(range(20)) + list(range(40, 70)))
    seqs = track_sequences(track, SequenceSettings(length=8, stride=4, max_gap=5, min_frames=4))
    for s in seqs:
        indices = [int(p[-10:-4]) for p in s.frames]
        assert not (min(indices) < 40 * 2 <= max(indices) and min(indices) < 20 * 2)


def test_short_segments_are_padded_and_recorded():
    settings = SequenceSettings(length=16, stride=8, max_gap=2, min_frames=6, pad_mode="reverse")
    [seq] = track_sequences(make_track(range(10)), settings)
    assert seq.n_real_frames == 10 and seq.padding == "reverse" and len(seq.frames) == 16
    assert seq.frames[10] == seq.frames[8]  # ping-pong back from the end
    assert (seq.start_frame, seq.end_frame) == (0, 18)
    assert track_sequences(make_track(range(5)), settings) == []  # below MIN_SEQUENCE_FRAMES
    drop = SequenceSettings(length=16, stride=8, min_frames=6, pad_mode="drop")
    assert track_sequences(make_track(range(10)), drop) == []


def test_full_windows_are_not_padded():
    seqs = track_sequences(make_track(range(32)), SequenceSettings(length=16, stride=8))
    assert [(s.start_frame, s.n_real_frames, s.padding) for s in seqs] == [(0, 16, "none"), (16, 16, "none"),
                                                                           (32, 16, "none")]
    assert len({s.sequence_id for s in seqs}) == 3


def test_evenly_spaced():
    assert evenly_spaced(list(range(10)), 3) == [0, 4, 9]  # first, middle, last
    assert evenly_spaced(list(range(3)), 0) == [0, 1, 2]


def test_settings_validation():
    with pytest.raises(InputError, match="PAD_MODE"):
        SequenceSettings(pad_mode="mirror").validate()


@pytest.fixture
def tree(tmp_path):
    write_frames_tree(tmp_path / "frames", videos_per_class=10, persons_per_video=2, frames_per_person=24)
    return tmp_path / "frames"


def test_build_from_listing_only(tree):
    seqs = build_sequences(tree, SequenceSettings(length=16, stride=8))
    assert len(seqs) == 2 * 10 * 2 * 2  # classes x videos x persons x windows
    assert all((tree / p).is_file() for s in seqs for p in s.frames)


def test_balance_caps_sequences_per_video(tree):
    seqs = build_sequences(tree, SequenceSettings(length=4, stride=1, max_per_video=5))
    per_video = {}
    for s in seqs:
        per_video.setdefault(s.video_key, []).append(s)
    assert all(len(v) == 5 for v in per_video.values())


def test_vanished_person_folder_is_skipped(tree, caplog):
    for f in (tree / "fight" / "fight_00000" / "person_2").iterdir():
        f.unlink()
    with caplog.at_level(logging.WARNING):
        seqs = build_sequences(tree, SequenceSettings(length=16, stride=8))
    assert "fight_00000/person_2: its crop files are gone" in caplog.text
    assert len(seqs) == 2 * 10 * 2 * 2 - 2


def test_only_failed_videos(tree):
    for meta_path in tree.glob("*/*/meta.json"):
        meta = json.loads(meta_path.read_text())
        meta_path.write_text(json.dumps({**meta, "status": "failed"}))
    with pytest.raises(InputError, match="no finished videos"):
        build_sequences(tree, SequenceSettings())


def test_bad_frames_dirs(tmp_path):
    with pytest.raises(InputError, match="not found"):
        build_sequences(tmp_path / "nope", SequenceSettings())
    with pytest.raises(InputError, match="no finished videos"):
        build_sequences(tmp_path, SequenceSettings())


def test_one_class_is_an_error(tree):
    shutil.rmtree(tree / "walk")
    with pytest.raises(InputError, match="only one class"):
        group_sequences(tree, SequenceSettings())


def test_write_is_deterministic_and_safe(tree, tmp_path):
    out = tmp_path / "seq" / "sequences.csv"
    result = group_sequences(tree, SequenceSettings(), seed=3)
    assert write_sequence_set(result, out) is True
    first = out.read_bytes()
    assert write_sequence_set(group_sequences(tree, SequenceSettings(), seed=3), out) is False
    assert out.read_bytes() == first
    with pytest.raises(InputError, match="--overwrite"):
        write_sequence_set(group_sequences(tree, SequenceSettings(), seed=4), out)
    assert write_sequence_set(group_sequences(tree, SequenceSettings(), seed=4), out, overwrite=True)
    assert json.loads((out.parent / "classes.json").read_text()) == ["fight", "walk"]
    assert "TOTAL" in (out.parent / "sequences.summary.txt").read_text()
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(SEQUENCES_HEADER)
    assert all(len(r["frames"].split("|")) == 16 for r in rows)
    assert [r["split"] for r in rows] == sorted((r["split"] for r in rows), key=["train", "val", "test"].index)


@settings(max_examples=40, deadline=None)
@given(videos=st.integers(3, 25), persons=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_no_video_in_two_splits(tmp_path_factory, videos, persons, seed):
    tree = tmp_path_factory.mktemp("t")
    write_frames_tree(tree, videos_per_class=videos, persons_per_video=persons, frames_per_person=20)
    result = group_sequences(tree, SequenceSettings(length=8, stride=4), seed=seed)
    splits_of_video = {}
    for row in result.rows():
        splits_of_video.setdefault((row[3], row[2], row[4]), set()).add(row[1])
    assert all(len(s) == 1 for s in splits_of_video.values())
    assert len(splits_of_video) == 2 * videos
    for label in ("fight", "walk"):
        splits = {s for (_, lab, _), ss in splits_of_video.items() if lab == label for s in ss}
        assert splits == {"train", "val", "test"}


def test_every_video_without_a_sequence_is_named_with_why(tmp_path):
    """A video must never vanish between stages with only a split warning."""
    tree = tmp_path / "f"
    write_frames_tree(tree, videos_per_class=4, persons_per_video=1, frames_per_person=20)
    nobody = tree / "fight" / "fight_00001"
    shutil.rmtree(nobody / "person_1")
    meta = json.loads((nobody / "meta.json").read_text())
    (nobody / "meta.json").write_text(json.dumps({**meta, "persons": [], "settings": {**meta["settings"],
                                                                                     "min_track_frames": 8}}))
    short = tree / "walk" / "walk_00002" / "person_1"
    for crop in sorted(short.iterdir())[5:]:
        crop.unlink()
    failed = tree / "walk" / "walk_00003"
    meta = json.loads((failed / "meta.json").read_text())
    shutil.rmtree(failed / "person_1")
    (failed / "meta.json").write_text(json.dumps({**meta, "status": "failed", "error": "cannot open video"}))

    result = group_sequences(tree, SequenceSettings(length=16, stride=8, min_frames=8), seed=0)
    assert result.dropped == [
        ("fight/fight_00001", "stage 1 tracked nobody for 8 kept frames (MIN_TRACK_FRAMES)"),
        ("walk/walk_00002", "its longest track segment has 5 frames, fewer than MIN_SEQUENCE_FRAMES (8)"),
        ("walk/walk_00003", "stage 1 failed: cannot open video"),
    ]
    assert result.dropped_table().startswith("3 of 8 videos have no sequence in any split:")
    padded = tree / "fight" / "fight_00002" / "person_1"
    for crop in sorted(padded.iterdir())[12:]:
        crop.unlink()
    drop = group_sequences(tree, SequenceSettings(length=16, stride=8, min_frames=8, pad_mode="drop"), seed=0)
    assert ("fight/fight_00002", "its longest track segment has 12 frames, fewer than SEQUENCE_LENGTH (16), and "
                                 "PAD_MODE 'drop' pads nothing") in drop.dropped
    out = tmp_path / "s" / "sequences.csv"
    write_sequence_set(result, out)
    assert "  walk/walk_00003    stage 1 failed: cannot open video" in out.with_suffix(".summary.txt").read_text()


def test_a_corrupt_meta_json_is_listed_with_its_reason(tree):
    """No video disappears silently: one whose meta.json cannot be read is named, with what to do."""
    (tree / "fight" / "fight_00003" / "meta.json").write_text('{"status": "do')
    result = group_sequences(tree, SequenceSettings(length=16, stride=8))
    [(video, why)] = [d for d in result.dropped if d[0] == "fight/fight_00003"]
    assert why.startswith("its meta.json cannot be read (not JSON:")
    assert why.endswith("extract_frames.py redoes this video")
    assert "fight/fight_00003" in result.dropped_table()


def test_windows_much_longer_than_the_tracks_warn(tree, caplog):
    with caplog.at_level(logging.WARNING):
        build_sequences(tree, SequenceSettings(length=16, stride=8))
        assert "much longer than the tracks" not in caplog.text
        build_sequences(tree, SequenceSettings(length=200, stride=8))  # tracks of 24 kept frames
    assert "SEQUENCE_LENGTH 200 is much longer than the tracks (half of them last 24 kept frames" in caplog.text


def test_a_file_of_the_user_s_is_never_replaced_by_the_sequences(tree, tmp_path):
    mine = tmp_path / "scores.csv"
    mine.write_text("name,score\nx,1\n")
    result = group_sequences(tree, SequenceSettings(length=16, stride=8))
    for overwrite in (False, True):
        with pytest.raises(InputError, match="is not a sequences file .*nothing was changed"):
            write_sequence_set(result, mine, overwrite=overwrite)
    assert mine.read_text() == "name,score\nx,1\n" and not (tmp_path / "classes.json").exists()
