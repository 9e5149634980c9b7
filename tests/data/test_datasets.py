import csv
import math

import numpy as np
import pytest
import torch

from behavior.data import mil
from behavior.data.datasets import (
    CachedSequenceDataset,
    augment_clip,
    check_crops_exist,
    load_vectors,
    person_stats,
    vectors_tensor,
)
from behavior.data.mil import PersonStats
from behavior.errors import InputError
from behavior.features.streams import flip_vectors
from behavior.io.sequence_file import SequenceTable, read_sequences
from behavior.train.losses import class_weights

MOTION = ("appearance", "motion")


def test_class_weights_inverse_frequency():
    w = class_weights([0, 0, 0, 1], 2)
    assert w.tolist() == pytest.approx([0.5, 1.5])
    assert class_weights([0, 1, 2, 2], 4).tolist() == pytest.approx([1.2, 1.2, 0.6, 0.0])


def test_read_sequences(small_sequences):
    frames, sequences = small_sequences
    table = read_sequences(sequences)
    assert table.classes == ["fight", "walk"] and table.sequence_length == 4
    assert set(table.splits) == {"train", "val", "test"}
    assert table.videos[0].count("/") == 1
    check_crops_exist(frames, table)


def test_missing_crop_is_named(small_sequences, tmp_path):
    frames, sequences = small_sequences
    table = read_sequences(sequences)
    with pytest.raises(InputError, match="crop file missing: .*frame_"):
        check_crops_exist(tmp_path, table)


def test_scene_features_follow_each_crop_and_a_missing_scene_is_named(small_sequences):
    """INPUTS "scene_video": each frame's features are the crop's, then the scene image's of the same frame, flipped
    together; a sequence whose scene images were never saved stops with a line saying how to add them."""
    from types import SimpleNamespace

    frames, sequences = small_sequences
    table = read_sequences(sequences)
    rows = table.select("train")
    with pytest.raises(InputError, match=r"scene image missing: .*/scene/frame_.*rerun extract_frames.py"):
        check_crops_exist(frames, table, scene=True)
    check_crops_exist(frames, table)  # the crops themselves are there
    assert table.scene_dirs(rows) == sorted({d.rsplit("/", 1)[0] + "/scene" for d in table.person_dirs(rows)})
    crops = sorted({p for i in rows for p in table.frames[i]})
    scenes = sorted({p.rsplit("/", 2)[0] + "/scene/" + p.rsplit("/", 1)[1] for p in crops})
    paths = crops + scenes
    number = {p: float(n) for n, p in enumerate(paths)}
    store = SimpleNamespace(index={p: n for n, p in enumerate(paths)},
                            plain=torch.tensor([[number[p]] for p in paths]))
    store.flipped = -store.plain
    data = CachedSequenceDataset(table, rows, store, None, ("appearance", "scene_video"), augment=False,
                                 video_store=store)
    features, _, _ = data[0]
    assert features.shape == (table.sequence_length, 2)
    for t, p in enumerate(table.frames[rows[0]]):
        scene = p.rsplit("/", 2)[0] + "/scene/" + p.rsplit("/", 1)[1]
        assert features[t].tolist() == [number[p], number[scene]]
    alone = CachedSequenceDataset(table, rows, None, None, ("scene_video", "motion"), augment=False,
                                  video_store=store)[0][0]
    assert alone[:, 0].tolist() == features[:, 1].tolist()  # without "appearance": the scene's only
    torch.manual_seed(0)
    flipped = CachedSequenceDataset(table, rows, store, None, ("appearance", "scene_video"), augment=True,
                                    video_store=store)
    seen = {bool((flipped[0][0] <= 0).all()) for _ in range(20)}
    assert seen == {True, False}  # crop and scene flip together, never one without the other


def test_sequence_file_errors(tmp_path, small_sequences):
    with pytest.raises(InputError, match="not found"):
        read_sequences(tmp_path / "none.csv")
    bad = tmp_path / "s.csv"
    bad.write_text("a,b\n1,2\n")
    (tmp_path / "classes.json").write_text('["a", "b"]')
    with pytest.raises(InputError, match="not a sequences file"):
        read_sequences(bad)
    _, sequences = small_sequences
    empty = tmp_path / "e.csv"
    empty.write_text(sequences.read_text().splitlines()[0] + "\n")
    with pytest.raises(InputError, match="no sequences"):
        read_sequences(empty)


def test_motion_from_tracks(small_sequences):
    frames, sequences = small_sequences
    table = read_sequences(sequences)
    motion = load_vectors(frames, table.person_dirs(), MOTION)
    # walk boxes move 3 px per kept frame (1/15 s), their height is 80 px: 3 / 80 * 15 body heights/s
    first, second = (f"walk/walk_00000/person_1/frame_{i:06d}.jpg" for i in (0, 2))
    assert motion[first][0] == 0.0 and motion[second][0] == pytest.approx(3 / 80 * 15, rel=1e-2)  # time_s: 3 dp
    assert motion[second][3] == pytest.approx(30 / 80)
    assert motion["fight/fight_00000/person_1/frame_000002.jpg"][0] == 0.0  # fight boxes stand still
    rows = table.select("train")
    m = vectors_tensor(table, rows, motion, 4)
    assert m.shape == (len(rows), 4, 4)
    flipped = flip_vectors(m, MOTION)
    assert torch.equal(flipped[..., 0], -m[..., 0]) and torch.equal(flipped[..., 1:], m[..., 1:])


def test_clip_augmentation_is_the_same_for_every_frame():
    import random

    frame = torch.rand(3, 32, 32)
    clip = frame.expand(6, 3, 32, 32).clone()
    out, flipped = augment_clip(clip, random.Random(1))
    assert out.shape == clip.shape and all(torch.allclose(out[0], out[i]) for i in range(6))
    assert isinstance(flipped, bool)
    assert not torch.allclose(out[0], frame)


def test_tracks_csv_needed_for_motion(tmp_path):
    (tmp_path / "c" / "v" / "person_1").mkdir(parents=True)
    with pytest.raises(InputError, match="tracks.csv missing"):
        load_vectors(tmp_path, ["c/v/person_1"], MOTION)
    with open(tmp_path / "c" / "v" / "tracks.csv", "w", newline="") as f:
        csv.writer(f).writerows([["frame", "time_s", "track_id", "person", "x1", "y1", "x2", "y2", "conf"],
                                 [0, 0.0, 7, 1, 0, 0, 10, 20, 0.9], [2, 0.2, 7, 1, 2, 0, 12, 40, 0.9]])
    motion = load_vectors(tmp_path, ["c/v/person_1"], MOTION)
    assert motion["c/v/person_1/frame_000002.jpg"][2] == pytest.approx(math.log(2) / 0.2)


def test_person_stats_sum_presence_and_reach_over_the_frames(tmp_path):
    """Two people 60 px apart for two frames; person 1's right wrist reaches 40 px (0.5 body height) out towards
    person 2 in the second frame. Presence is the box heights summed; person 3 is not asked for."""
    video = tmp_path / "kick" / "v"
    video.mkdir(parents=True)
    header = ["frame", "time_s", "track_id", "person", "x1", "y1", "x2", "y2", "conf"]
    rows = [[f, f / 10, p, p, x - 20, 60, x + 20, 140, 0.9] for f in (0, 2) for p, x in ((1, 100), (2, 160), (3, 400))]
    with open(video / "tracks.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    pose = np.full((17, 3), np.nan, np.float32)
    pose[[5, 6, 11, 12]] = (100, 100, 0.9)  # shoulders and hips on the body's axis
    pose[10] = (100, 110, 0.9)  # the right wrist hangs at the side
    reaching = pose.copy()
    reaching[10] = (140, 100, 0.9)
    keypoints = {"kick/v/person_1/frame_000000.jpg": pose, "kick/v/person_1/frame_000002.jpg": reaching}
    stats = person_stats(tmp_path, ["kick/v/person_1", "kick/v/person_2"], keypoints)
    assert set(stats) == {"kick/v/person_1", "kick/v/person_2"}
    assert stats["kick/v/person_1"] == PersonStats(presence=160.0, reach=pytest.approx(0.5))
    assert stats["kick/v/person_2"] == PersonStats(presence=160.0, reach=0.0)  # no keypoints: reaches nobody


def test_person_labels_relabel_receivers_and_bystanders_of_the_given_rows_only():
    classes = ["hug", "kick", "none", "kick_received"]
    frames = ["kick/a/person_1", "kick/a/person_2", "kick/a/person_3", "hug/b/person_1", "hug/b/person_2",
              "hug/b/person_4", "kick/c/person_1", "kick/c/person_2"]
    table = SequenceTable(ids=[f"s{i}" for i in range(8)], splits=["train"] * 6 + ["test"] * 2,
                          labels=[1, 1, 1, 0, 0, 0, 1, 1],
                          videos=[f.rsplit("/", 1)[0] for f in frames],
                          frames=[[f"{f}/frame_000000.jpg"] for f in frames], classes=classes)
    people = {"kick/a/person_1": PersonStats(900, 1.0), "kick/a/person_2": PersonStats(1000, 6.0),
              "kick/a/person_3": PersonStats(100, 9.0), "hug/b/person_1": PersonStats(800, 2.0),
              "hug/b/person_2": PersonStats(700, 1.0), "hug/b/person_4": PersonStats(50, 0.0),
              "kick/c/person_1": PersonStats(900, 1.0), "kick/c/person_2": PersonStats(900, 5.0)}
    out = mil.with_person_labels(table, table.select("train"), people, ("kick",), background=2)
    assert out.labels == [3, 1, 2, 0, 0, 2, 1, 1]  # the one kicked receives, bystanders are none; test rows keep
    assert table.labels == [1, 1, 1, 0, 0, 0, 1, 1] and out.classes == classes  # their clip's; a new table
    assert mil.with_person_labels(table, [0, 1, 2], people, (), background=2).labels[:3] == [1, 1, 2]
