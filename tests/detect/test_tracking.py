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
    assert [f is g for f, (g, _, _) in zip(frames, got, strict=True)] == [True] * len(frames)
    assert sum(len(d) for d in expected) >= 40
    for want, (_, have, _) in zip(expected, got, strict=True):
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
    frame, found, objects = next(people)
    assert frame is frames[0] and len(found) <= 1 and objects == []
    people.close()  # a caller interrupted mid-video (Ctrl-C, a bad frame): the batch in flight is waited for
    assert not [t for t in threading.enumerate() if t.name.startswith("detect")]


def test_objects_come_from_the_same_detector_call_and_leave_the_people_unchanged(weights_dir):
    """With object classes, the one detector call also gives the objects; ByteTrack still sees only the people."""
    import cv2
    from conftest import SHARED_ASSETS

    sequence = SHARED_ASSETS / "mot" / "MOT17-mini" / "train" / "MOT17-09-FRCNN" / "img1"
    frames = [cv2.imread(str(sequence / f"{k:06d}.jpg")) for k in (3, 4)]
    assert all(f is not None for f in frames), "MOT17-mini frames not found in ../shared/assets"
    plain = PersonTracker(DetectorSettings(weights="yolov8n.pt"))
    with_objects = PersonTracker(DetectorSettings(weights="yolov8n.pt", object_classes=("handbag", "chair", "cup")))
    people, found = [], []
    for tracker in (plain, with_objects):
        tracker.reset(fps=30)
        out = list(tracker.track(frames, lambda f: f))
        people.append([d for _, dets, _ in out for d in dets])
        found.append([o for _, _, objects in out for o in objects])
    assert people[0] == people[1] and people[0]
    assert found[0] == [] and {o.name for o in found[1]} == {"handbag", "chair"}
    assert all(0 < o.conf <= 1 and o.box[0] < o.box[2] and o.box[1] < o.box[3] for o in found[1])
    assert describe_detector(with_objects.settings)["detector"]["object_classes"] == ["handbag", "chair", "cup"]
    assert "object_classes" not in describe_detector(plain.settings)["detector"]


def test_an_object_class_the_detector_lacks_is_one_line(weights_dir):
    with pytest.raises(InputError, match="object classes teapot-of-doom are not classes of the detector yolov8n.pt"):
        PersonTracker(DetectorSettings(weights="yolov8n.pt", object_classes=("cup", "teapot-of-doom")))
