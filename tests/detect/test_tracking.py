import pytest

from behavior.detect.tracking import PersonTracker, describe_detector, load_tracker_config
from behavior.errors import InputError
from behavior.settings import DetectorSettings
from tools.synthetic import ClipSpec, render_clip


@pytest.fixture(scope="module")
def tracker(weights_dir):
    return PersonTracker(DetectorSettings(weights="yolov8n.pt", imgsz=320))


def track_clip(tracker, seed, persons):
    tracker.reset(fps=10)
    frames = list(render_clip(ClipSpec(motion="standing", persons=persons, width=320, height=240,
                                       fps=10.0, seconds=0.8, seed=seed)))
    return [tracker.update(f) for f in frames]


def test_finds_and_tracks_the_real_people(tracker):
    per_frame = track_clip(tracker, seed=3, persons=2)
    assert all(len(dets) == 2 for dets in per_frame[1:])
    assert {d.track_id for d in per_frame[-1]} == {1, 2}
    for d in per_frame[-1]:
        x1, y1, x2, y2 = d.box
        assert 0 <= x1 < x2 <= 320 and 0 <= y1 < y2 <= 240 and 0.25 <= d.conf <= 1


def test_ids_restart_for_every_video(tracker):
    first = track_clip(tracker, seed=3, persons=2)
    second = track_clip(tracker, seed=4, persons=1)
    assert max(d.track_id for dets in first for d in dets) == 2
    assert {d.track_id for dets in second for d in dets} == {1}


def test_torch_threads_restored(tracker):
    import os

    import torch

    assert torch.get_num_threads() == (os.cpu_count() or 1)


def test_describe_records_weights_and_tracker(weights_dir):
    desc = describe_detector(DetectorSettings())
    assert desc["detector"]["sha256"] == "7060dedecb75602fd7649479399aaef1c8fd98e573702eebfddd81bc9bf87a0b"
    assert desc["tracker"]["tracker_type"] == "bytetrack"


def test_tracker_config_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_tracker_config(str(tmp_path / "nope.yaml"))
    botsort = tmp_path / "b.yaml"
    botsort.write_text("tracker_type: botsort\n")
    with pytest.raises(InputError, match="bytetrack"):
        load_tracker_config(str(botsort))


@pytest.mark.parametrize("backend", ["torch", "openvino"])
def test_batched_detection_gives_the_tracks_of_frame_by_frame(weights_dir, surv_fight, backend):
    import cv2

    cap = cv2.VideoCapture(str(sorted((surv_fight / "fight").glob("*.mp4"))[3]))
    frames = [cap.read()[1] for _ in range(23)]  # 23: the last batch of 4 is short
    assert all(f is not None for f in frames)
    one = PersonTracker(DetectorSettings(backend=backend, batch=1))
    four = PersonTracker(DetectorSettings(backend=backend, batch=4))
    assert four.batch == 4 and four.backend == backend
    one.reset(fps=25)
    expected = [one.update(f) for f in frames]
    four.reset(fps=25)
    got = list(four.track(iter(frames), lambda f: f))
    assert [f is g for f, (g, _) in zip(frames, got, strict=True)] == [True] * len(frames)
    assert sum(len(d) for d in expected) >= 40
    for want, (_, have) in zip(expected, got, strict=True):
        assert [d.track_id for d in have] == [d.track_id for d in want]
        for a, b in zip(want, have, strict=True):
            assert max(abs(x - y) for x, y in zip(a.box, b.box, strict=True)) < 0.05 and abs(a.conf - b.conf) < 1e-3


def test_stopping_early_leaves_no_detector_thread(tracker, monkeypatch):
    import threading

    monkeypatch.setattr(tracker, "batch", 3)
    frames = list(render_clip(ClipSpec(motion="walking", persons=1, width=320, height=240, fps=10.0, seconds=1.0,
                                       seed=5)))
    tracker.reset(fps=10)
    people = tracker.track(iter(frames), lambda f: f)
    frame, found = next(people)
    assert frame is frames[0] and len(found) <= 1
    people.close()  # a caller interrupted mid-video (Ctrl-C, a bad frame): the batch in flight is waited for
    assert not [t for t in threading.enumerate() if t.name.startswith("detect")]
