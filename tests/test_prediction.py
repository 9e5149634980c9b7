import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from behavior.errors import InputError
from behavior.extraction import ExtractSettings, extract_all, find_videos
from behavior.features import FeatureCache
from behavior.prediction import Predictor, PredictSettings, video_label
from behavior.synthetic import ClipSpec, render_clip, write_clip
from behavior.video import VideoWriter

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor(tiny_checkpoint, PredictSettings(stride=2))


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(params=["rgb", "difference"])
def predictor_input(request, predictor):
    """The predictor with CNN_INPUT set both where prediction and where the feature cache read it."""
    import dataclasses

    original = predictor.mc
    predictor.mc = predictor.net.cfg = dataclasses.replace(original, cnn_input=request.param)
    yield predictor
    predictor.mc = predictor.net.cfg = original


def test_streaming_features_equal_batch_features(predictor_input, sample_clips, tmp_path):
    """The crops and features of a live prediction are those that training computed from the same frames."""
    predictor = predictor_input
    mc = predictor.mc
    job = find_videos(sample_clips)[1]  # a two-person clip
    settings = ExtractSettings(target_fps=mc.target_fps, frame_width=mc.frame_width, frame_height=mc.frame_height,
                               crop_margin=mc.crop_margin, jpeg_quality=mc.jpeg_quality, min_track_frames=1)
    extract_all([job], tmp_path / "frames", settings, progress=False)
    video_dir = job.out_dir(tmp_path / "frames")
    person_of = {int(r["track_id"]): int(r["person"]) for r in read_rows(video_dir / "tracks.csv")}
    dirs = [p.relative_to(tmp_path / "frames").as_posix() for p in video_dir.glob("person_*")]
    store = FeatureCache(tmp_path / "cache", "k").load(tmp_path / "frames", dirs, predictor.net, progress=False)

    predictor.feature_log = []
    try:
        predictor.run(job.path, tmp_path / "pred", progress=False)
        log = predictor.feature_log
    finally:
        predictor.feature_log = None
    assert len(log) == len(store.index) >= 20
    rel = video_dir.relative_to(tmp_path / "frames").as_posix()
    for frame, track, streamed in log:
        batch = store.plain[store.index[f"{rel}/person_{person_of[track]}/frame_{frame:06d}.jpg"]].float()
        assert torch.allclose(streamed, batch, atol=2e-2, rtol=1e-2)  # the cache stores float16


def test_outputs_and_schemas(predictor, sample_clips, tmp_path):
    clip = sample_clips / "standing" / "standing_1.mp4"
    summary = predictor.run(clip, tmp_path / "out", progress=False)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["annotated.mp4", "summary.json", "tracks.csv"]
    rows = read_rows(out / "tracks.csv")
    assert list(rows[0]) == ["frame", "time_s", "track_id", "x1", "y1", "x2", "y2", "det_conf", "label",
                             "label_conf", "p_fight", "p_walk"]
    assert rows[0]["label"] == ""  # "..." until a label is ready
    labeled = [r for r in rows if r["label"]]
    assert labeled and all(r["label"] in ("fight", "walk") for r in labeled)
    assert all(abs(float(r["p_fight"]) + float(r["p_walk"]) - 1) < 1e-3 for r in labeled)
    cap = cv2.VideoCapture(str(out / "annotated.mp4"))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, image = cap.read()
    assert ok and image.shape == (240, 320, 3) and frames == summary["frames_kept"]
    saved = json.loads((out / "summary.json").read_text())
    assert saved["video_label"]["label"] in ("fight", "walk") and saved["video_label"]["rule"] == "mean"
    assert set(saved["timing_ms_per_frame"]) == {"decode", "detect_track", "crop_cnn", "lstm", "draw_write", "total",
                                                 "wall"}
    assert len(saved["tracks"]) == 2
    for t in saved["tracks"]:
        assert {"track_id", "first_frame", "last_frame", "segments", "majority_label", "mean_confidence"} <= set(t)
        assert t["segments"][0]["start_frame"] <= t["segments"][-1]["end_frame"]
    with pytest.raises(InputError, match="--overwrite"):
        predictor.run(clip, out, progress=False)


def test_annotations_are_drawn(predictor, sample_clips, tmp_path):
    clip = sample_clips / "walking" / "walking_0.mp4"
    predictor.run(clip, tmp_path / "out", progress=False)
    original = cv2.VideoCapture(str(clip)).read()[1]
    annotated = cv2.VideoCapture(str(tmp_path / "out" / "annotated.mp4")).read()[1]
    assert np.abs(annotated.astype(int) - original).mean() > 0.5  # boxes and captions


def test_memory_stays_bounded_on_a_long_stream(predictor, tmp_path):
    """Six scenes with empty frames between them: each scene's person is a new track; lost tracks must be freed."""
    path = tmp_path / "long.mp4"
    with VideoWriter(path, 15.0, (320, 240)) as out:
        for seed in range(6):
            for frame in render_clip(ClipSpec(motion="standing", persons=1, width=320, height=240, fps=15.0,
                                              seconds=1.0, seed=300 + seed)):
                out.write(frame)
            for _ in range(25):  # longer than ByteTrack keeps a lost track (30 frames at 30 fps = 1 s)
                out.write(np.full((240, 320, 3), 90, np.uint8))
    summary = predictor.run(path, tmp_path / "out", progress=False)
    assert len(summary["tracks"]) >= 6
    assert summary["live_tracks_max"] <= 3  # the previous scene's track is freed a second after it is lost


def test_video_without_people(predictor, tmp_path):
    path = tmp_path / "empty.mp4"
    with VideoWriter(path, 10.0, (160, 120)) as out:
        for _ in range(10):
            out.write(np.full((120, 160, 3), 90, np.uint8))
    summary = predictor.run(path, tmp_path / "out", progress=False)
    assert summary["tracks"] == [] and summary["video_label"]["label"] is None
    assert read_rows(tmp_path / "out" / "tracks.csv") == []


def test_video_label_rules():
    tracks = [{"mean_probs": {"a": 0.9, "b": 0.1}, "labeled_frames": 1},
              {"mean_probs": {"a": 0.3, "b": 0.7}, "labeled_frames": 3}]
    assert video_label(tracks, ["a", "b"], "mean")["scores"] == pytest.approx({"a": 0.45, "b": 0.55})
    assert video_label(tracks, ["a", "b"], "max")["label"] == "a"


def run_predict(*args):
    return subprocess.run([sys.executable, str(ROOT / "predict.py"), *args, "--no-progress"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("make,message", [
    (lambda d: d / "none.pth", "checkpoint not found"),
    (lambda d: (d / "junk.pth").write_bytes(b"junk") and d / "junk.pth", "cannot read checkpoint"),
    (lambda d: torch.save({"model": {}}, d / "partial.pth") or d / "partial.pth", "lacks classes"),
])
def test_bad_checkpoints(tmp_path, sample_clips, make, message):
    proc = run_predict("--video", str(sample_clips / "walking" / "walking_0.mp4"), "--checkpoint", str(make(tmp_path)))
    assert proc.returncode == 2 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_bad_videos_and_streams(tiny_checkpoint, tmp_path):
    (tmp_path / "bad.mp4").write_bytes(os.urandom(2048))
    for args, message in ((["--video", str(tmp_path / "missing.mp4")], "video not found"),
                          (["--video", str(tmp_path / "bad.mp4")], "cannot open video"),
                          (["--source", "99"], "cannot open video")):
        proc = run_predict(*args, "--checkpoint", str(tiny_checkpoint), "--output-dir", str(tmp_path / "o"))
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


def test_batch_evaluation(tiny_checkpoint, sample_clips, tmp_path):
    clips = tmp_path / "clips"
    (clips / "walk").mkdir(parents=True)
    (clips / "fight").mkdir()
    os.symlink(sample_clips / "walking" / "walking_0.mp4", clips / "walk" / "a.mp4")
    write_clip(clips / "fight" / "b.mp4", ClipSpec(motion="jumping", width=320, height=240, fps=10, seconds=1.5,
                                                  seed=205))
    (clips / "fight" / "broken.mp4").write_bytes(b"\0" * 100)
    proc = run_predict("--videos-dir", str(clips), "--evaluate", "--checkpoint", str(tiny_checkpoint),
                       "--output-dir", str(tmp_path / "eval"))
    assert proc.returncode == 1, proc.stderr  # one video failed; the others were scored
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert report["n"] == 2 and report["failed"] == 1
    assert (tmp_path / "eval" / "confusion_matrix.png").is_file()
    assert "accuracy" in proc.stdout and "macro-F1" in proc.stdout


def test_drop_mode_waits_for_a_full_window(predictor, sample_clips, tmp_path):
    """With PAD_MODE "drop" training saw no padded sequence, so a track is labeled only once its window is full."""
    import dataclasses

    clip = sample_clips / "walking" / "walking_0.mp4"
    first_labeled = {}
    original = predictor.mc
    try:
        for mode in ("reverse", "drop"):
            predictor.mc = dataclasses.replace(original, pad_mode=mode, min_sequence_frames=2)
            predictor.run(clip, tmp_path / mode, progress=False)
            rows = read_rows(tmp_path / mode / "tracks.csv")
            kept = sorted({int(r["frame"]) for r in rows})
            first_labeled[mode] = kept.index(min(int(r["frame"]) for r in rows if r["label"]))
    finally:
        predictor.mc = original
    assert first_labeled["reverse"] < original.sequence_length - 1 <= first_labeled["drop"]
