import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from behavior.errors import InputError
from behavior.extract.extraction import extract_all
from behavior.features.appearance import FeatureCache
from behavior.features.video_backbone import VideoBackbone, VideoFeatureCache
from behavior.io.clips import find_videos
from behavior.io.video import VideoWriter
from behavior.predict.outputs import OUTPUT_FILES, video_label
from behavior.predict.session import Predictor
from behavior.settings import DetectorSettings, ExtractSettings, PredictSettings
from tools.synthetic import ClipSpec, render_clip, write_clip

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor(tiny_checkpoint, PredictSettings(stride=2, detector=DetectorSettings(batch=1)))


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(params=[("rgb", ("appearance", "motion")), ("difference", ("appearance", "motion")),
                        ("difference", ("appearance", "scene_video", "motion")),
                        ("rgb", ("scene_video", "motion"))],
                ids=["rgb", "difference", "every-feature-stream", "scene-video-only"])
def predictor_input(request, predictor):
    """The predictor with CNN_INPUT and INPUTS (the scene and I3D streams) set both where prediction and where the
    feature caches read them; I3D on clips of 4 images at 64 pixels, to be quick."""
    import dataclasses

    from behavior.model.network import SequenceClassifier

    original, members = predictor.model_config, predictor.net.members
    cnn_input, inputs = request.param
    predictor.model_config = predictor.net.cfg = dataclasses.replace(original, cnn_input=cnn_input, inputs=inputs,
                                                           video_clip_length=4, video_size=64)
    # a head that reads these streams
    predictor.net.members = torch.nn.ModuleList([SequenceClassifier(predictor.model_config).eval()])
    predictor.video = VideoBackbone.load("i3d_kinetics400_rgb.npz", 4, 64) if predictor.model_config.i3d else None
    yield predictor
    predictor.model_config = predictor.net.cfg = original
    predictor.net.members, predictor.video = members, None


def test_streaming_features_equal_batch_features(predictor_input, sample_clips, tmp_path, person_log):
    """The crops and features of a live prediction are those that training computed from the same frames (with
    INPUTS "scene_video": each person's, then I3D's of their frame's scene clip, from the scene images stage 1
    saves and the I3D feature cache)."""
    predictor = predictor_input
    model_config = predictor.model_config
    job = find_videos(sample_clips)[1]  # a two-person clip
    settings = ExtractSettings(target_fps=model_config.target_fps, frame_width=model_config.frame_width,
                               frame_height=model_config.frame_height,
                               crop_margin=model_config.crop_margin, jpeg_quality=model_config.jpeg_quality,
                               min_track_frames=1,
                               scene=model_config.scene_images)
    extract_all([job], tmp_path / "frames", settings, progress=False)
    video_dir = job.out_dir(tmp_path / "frames")
    person_of = {int(r["track_id"]): int(r["person"]) for r in read_rows(video_dir / "tracks.csv")}
    dirs = [p.relative_to(tmp_path / "frames").as_posix() for p in video_dir.glob("person_*")] \
        if model_config.appearance else []
    assert (video_dir / "scene").is_dir() == model_config.scene_images
    scene_dir = (video_dir / "scene").relative_to(tmp_path / "frames").as_posix()
    store = FeatureCache(tmp_path / "cache", "k").load(tmp_path / "frames", dirs, predictor.net, progress=False)
    video_store = VideoFeatureCache(tmp_path / "cache", "v").load(tmp_path / "frames", [scene_dir], predictor.video,
                                                                  progress=False) if model_config.i3d else None

    predictor.run(job.path, tmp_path / "pred", progress=False)
    log = person_log
    assert len(log) * model_config.appearance == len(store.index) and len(log) >= 20
    rel = video_dir.relative_to(tmp_path / "frames").as_posix()
    for frame, track, streamed, _, _ in log:
        crop, scene = f"{rel}/person_{person_of[track]}/frame_{frame:06d}.jpg", f"{rel}/scene/frame_{frame:06d}.jpg"
        parts = [(store, crop)] * model_config.appearance + [(video_store, scene)] * model_config.i3d
        batch = torch.cat([cache.plain[cache.index[p]].float() for cache, p in parts])
        assert streamed.shape == (model_config.feature_dim,)
        assert torch.allclose(streamed, batch, atol=2e-2, rtol=1e-2)  # the caches store float16


def test_outputs_and_schemas(predictor, sample_clips, tmp_path):
    clip = sample_clips / "standing" / "standing_1.mp4"
    summary = predictor.run(clip, tmp_path / "out", progress=False)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    rows = read_rows(out / "tracks.csv")
    assert list(rows[0]) == ["frame", "time_s", "track_id", "person", "x1", "y1", "x2", "y2", "det_conf", "label",
                             "label_conf", "p_fight", "p_walk"]
    assert rows[0]["label"] == rows[0]["person"] == ""  # "..." until a label is ready, and no name
    names = {t["track_id"]: t["person"] for t in summary["tracks"]}  # the names the video, the CSV and summary share
    assert all(r["person"] == (f"person_{names[int(r['track_id'])]}" if r["label"] else "") for r in rows)
    named = [t["person"] for t in summary["tracks"] if t["person"]]
    assert named == list(range(1, len(named) + 1))  # numbered as they got their first label, listed in that order
    labeled = [r for r in rows if r["label"]]
    assert labeled and all(r["label"] in ("fight", "walk") for r in labeled)
    assert all(abs(float(r["p_fight"]) + float(r["p_walk"]) - 1) < 1e-3 for r in labeled)
    cap = cv2.VideoCapture(str(out / "annotated.mp4"))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, image = cap.read()
    assert ok and image.shape == (240, 320, 3)
    assert frames == summary["frames_read"] > summary["frames_kept"]  # every source frame, not only the kept ones
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(summary["source_fps"]) and summary["source_fps"] > summary["fps"]
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    assert fourcc in ("avc1", "h264")  # H.264: every browser plays it (MPEG-4 Part 2 none does)
    saved = json.loads((out / "summary.json").read_text())
    assert saved["video_label"]["label"] in ("fight", "walk") and saved["video_label"]["rule"] == "mean"
    assert set(saved["timing_ms_per_frame"]) == {"decode", "detect_track", "crop_cnn", "i3d", "pose", "lstm",
                                                 "draw_write", "total", "wall"}
    assert saved["inference_backends"] == {"detector": "openvino", "cnn": "openvino"}  # "auto" on a CPU
    assert len(saved["tracks"]) == 2
    for t in saved["tracks"]:
        assert {"track_id", "first_frame", "last_frame", "segments", "majority_label", "mean_confidence"} <= set(t)
        assert t["segments"][0]["start_frame"] <= t["segments"][-1]["end_frame"]
        fps = summary["fps"] if summary["frames_read"] == summary["frames_kept"] else None
        for s in t["segments"]:  # in seconds too: the frame's time in the video
            assert s["start_s"] <= s["end_s"] and (fps is None or s["start_s"] == round(s["start_frame"] / fps, 3))
        assert t["first_s"] == pytest.approx(t["first_frame"] * t["last_s"] / max(t["last_frame"], 1), abs=1e-3)
    with pytest.raises(InputError, match="--overwrite"):
        predictor.run(clip, out, progress=False)


def test_detecting_ahead_in_batches_gives_the_same_outputs(predictor, tiny_checkpoint, sample_clips, tmp_path):
    """DETECT_BATCH changes speed only: the same tracks, boxes and labels as detecting frame by frame."""
    clip = sample_clips / "walking" / "walking_1.mp4"  # two people
    ahead = Predictor(tiny_checkpoint, PredictSettings(stride=2, detector=DetectorSettings(batch=4)))
    assert ahead.tracker.batch == 4 and predictor.tracker.batch == 1
    one = predictor.run(clip, tmp_path / "one", progress=False)
    four = ahead.run(clip, tmp_path / "four", progress=False)
    assert read_rows(tmp_path / "four" / "tracks.csv") == read_rows(tmp_path / "one" / "tracks.csv")
    assert len(read_rows(tmp_path / "one" / "tracks.csv")) > 20
    assert four["video_label"] == one["video_label"] and four["frames_kept"] == one["frames_kept"]


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


def test_video_without_people_is_labeled_from_the_whole_frame(predictor, tmp_path):
    path = tmp_path / "empty.mp4"
    with VideoWriter(path, 10.0, (160, 120)) as out:
        for _ in range(10):
            out.write(np.full((120, 160, 3), 90, np.uint8))
    summary = predictor.run(path, tmp_path / "out", progress=False)
    assert summary["whole_frame"] is True and summary["video_label"]["label"] in predictor.classes
    [track] = summary["tracks"]
    assert track["track_id"] == 0 and track["whole_frame"] is True and track["labeled_frames"] > 0
    rows = read_rows(tmp_path / "out" / "tracks.csv")
    assert len(rows) == 10 and {r["track_id"] for r in rows} == {"0"}
    assert (rows[0]["x1"], rows[0]["y1"], rows[0]["x2"], rows[0]["y2"]) == ("0.0", "0.0", "160.0", "120.0")


def test_video_label_rules():
    tracks = [{"mean_probs": {"a": 0.9, "b": 0.1}, "labeled_frames": 1},
              {"mean_probs": {"a": 0.3, "b": 0.7}, "labeled_frames": 3}]
    assert video_label(tracks, ["a", "b"], "mean")["scores"] == pytest.approx({"a": 0.45, "b": 0.55})
    assert video_label(tracks, ["a", "b"], "max")["label"] == "a"
    assert video_label(tracks, ["a", "b"], "max", background=1)["scores"] == pytest.approx({"a": 0.9, "b": 0.1})
    assert video_label(tracks, ["a", "b"], "max", background=0)["label"] == "b"  # "a" needs everyone to be "a"
    nobody = video_label([], ["a", "b"], "max")
    assert nobody["label"] is None and nobody["why"] == "nobody was tracked long enough to be labeled"
    assert video_label([], ["a", "a_received"], "mean_min", actor_classes=["a"])["scores"] == {"a": 0.0}


@pytest.mark.parametrize(("pooling", "actors"), [("none", ()), ("max", ()), ("roles", ()),
                                                  ("roles", ("kick",))])  # the last: who acts learned (mean_min)
@pytest.mark.parametrize("background", [None, 2])
def test_prediction_and_training_give_a_video_the_same_label(pooling, actors, background):
    from behavior.data.mil import label_rule, make_bags
    from behavior.train.evaluation import video_probs

    classes = ["kick", "punch", "normal", "kick_received"]
    rng = np.random.default_rng(len(pooling) + (background or 0) + len(actors))
    videos = ["kick/a"] * 5 + ["normal/b"] * 3
    persons = [1, 1, 2, 3, 3, 1, 2, 2]
    frames = [f"{v}/person_{p}/frame_{n:06d}.jpg" for n, (v, p) in enumerate(zip(videos, persons, strict=True))]
    labels = [0] * 5 + [2] * 3
    probs = rng.dirichlet(np.ones(4), size=8)
    rows = list(range(8))
    bags = make_bags(videos, labels, frames, rows)
    rule = label_rule(pooling, actors)  # what VIDEO_LABEL_RULE "auto" resolves to
    clips, people = video_probs(probs, rows, bags, rule, background, classes, actors)
    offset = 0
    for bag, clip in zip(bags, clips, strict=True):
        counts = bag.sequences_of()  # prediction: each track's mean probabilities over its labeled frames
        tracks = [{"mean_probs": dict(zip(classes, people[offset + k], strict=True)), "labeled_frames": n}
                  for k, n in enumerate(counts)]
        offset += len(counts)
        predicted = video_label(tracks, classes, rule, background, actors)
        assert predicted["label"] == classes[int(clip.argmax())]
        assert set(predicted["scores"]) == set(classes[:3 if actors else 4])  # no video is "kick_received"
        assert [predicted["scores"][c] for c in classes[:3]] == pytest.approx(clip[:3].tolist(), abs=1e-6)


def run_predict(*args):
    return subprocess.run([sys.executable, str(ROOT / "predict.py"), *args, "--no-progress"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})


def predict_here(capfd, *args):
    """predict.py's main in this process (no start-up cost): exit code, stdout, stderr (file descriptors too)."""
    import predict
    from behavior import cli

    capfd.readouterr()
    code = cli.run(predict.main, [*args, "--no-progress"])
    out, err = capfd.readouterr()
    return code, out, err


def _with_model_config(folder: Path, tiny: Path, **changes) -> Path:
    ckpt = torch.load(tiny, weights_only=True)
    ckpt["model_config"].update(changes)
    torch.save(ckpt, folder / "changed.pth")
    return folder / "changed.pth"


@pytest.mark.parametrize("make,message", [
    (lambda d, tiny: d / "none.pth", "checkpoint not found"),
    (lambda d, tiny: _with_model_config(d, tiny, sequence_length="sixteen"),
     "model_config sequence_length must be an integer in [1, 1024], got 'sixteen'"),
    (lambda d, tiny: _with_model_config(d, tiny, sequence_length=0), "model_config sequence_length must be an int"),
    (lambda d, tiny: (d / "junk.pth").write_bytes(b"junk") and d / "junk.pth",
     "cannot read checkpoint {}: it is a text file, not a checkpoint: pass the best_mobilenet_lstm.pth that "
     "train_mobilenet_lstm.py wrote"),
    (lambda d, tiny: (d / "cut.pth").write_bytes(tiny.read_bytes()[:20000]) and d / "cut.pth",
     "cannot read checkpoint {}: it is truncated or damaged (an interrupted copy or save?)"),
    (lambda d, tiny: shutil.copy(Path(os.environ["BEHAVIOR_WEIGHTS_DIR"]) / "yolov8n.pt", d / "yolo.pth"),
     "cannot read checkpoint {}: it is an Ultralytics YOLO model (the detector or pose model), not a behavior"),
    (lambda d, tiny: torch.save({"model": argparse.Namespace()}, d / "objects.pth") or d / "objects.pth",
     "cannot read checkpoint {}: it holds Python objects, not only tensors and plain values"),
    (lambda d, tiny: torch.save({"model": {}}, d / "partial.pth") or d / "partial.pth", "lacks classes"),
])
def test_bad_checkpoints(tmp_path, sample_clips, tiny_checkpoint, weights_dir, make, message):
    """Each says in the tool's own words what the file is and what to do (no torch text, no ANSI codes)."""
    path = make(tmp_path, tiny_checkpoint)
    proc = run_predict("--video", str(sample_clips / "walking" / "walking_0.mp4"), "--checkpoint", str(path))
    assert proc.returncode == 2 and message.format(path) in proc.stderr, proc.stderr
    assert "weights_only" not in proc.stderr and "\x1b" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_bad_videos_and_streams(tiny_checkpoint, tmp_path, capfd):
    """Each gets one line that says what is wrong; OpenCV's and FFmpeg's own noise stays off the terminal."""
    (tmp_path / "bad.mp4").write_bytes(os.urandom(2048))
    for args, message in ((["--video", str(tmp_path / "missing.mp4")], "video not found"),
                          (["--video", str(tmp_path / "bad.mp4")], "cannot open video (corrupt or unsupported")):
        code, _, err = predict_here(capfd, *args, "--checkpoint", str(tiny_checkpoint), "--output-dir",
                                    str(tmp_path / "o"))
        lines = [line for line in err.splitlines() if " INFO " not in line and " WARNING " not in line]
        assert code == 2 and len(lines) == 1 and message in lines[0], err
        assert not (tmp_path / "o").exists()  # a failed run leaves no folder behind
    for args, message in ((["--source", "99"], "cannot open camera 99"),  # a new process: OpenCV's own logging
                          (["--source", "rtsp://127.0.0.1:9/live"], "cannot open stream rtsp://127.0.0.1:9/live")):
        proc = run_predict(*args, "--checkpoint", str(tiny_checkpoint), "--output-dir", str(tmp_path / "o"))
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        ours = [line for line in proc.stderr.splitlines() if " INFO " not in line and " WARNING " not in line]
        assert ours == [f"predict.py: error: {ours[0].split('error: ', 1)[1]}"], proc.stderr  # nothing else
        assert not (tmp_path / "o").exists()


def test_batch_evaluation_counts_every_video(tiny_checkpoint, sample_clips, tmp_path):
    """A video that failed counts as wrong, and the headline says so in one line; one where nobody was tracked is
    labeled from the whole frame."""
    clips = tmp_path / "clips"
    (clips / "walk").mkdir(parents=True)
    (clips / "fight").mkdir()
    os.symlink(sample_clips / "walking" / "walking_0.mp4", clips / "walk" / "a.mp4")
    write_clip(clips / "fight" / "b.mp4", ClipSpec(motion="jumping", width=320, height=240, fps=10, seconds=1.5,
                                                  seed=205))
    (clips / "fight" / "broken.mp4").write_bytes(b"\0" * 100)
    with VideoWriter(clips / "walk" / "nobody.mp4", 10.0, (160, 120)) as out:
        for _ in range(10):
            out.write(np.full((120, 160, 3), 90, np.uint8))
    proc = run_predict("--videos-dir", str(clips), "--evaluate", "--checkpoint", str(tiny_checkpoint),
                       "--output-dir", str(tmp_path / "eval"))
    assert proc.returncode == 1, proc.stderr  # one video failed; every video was scored
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert report["n"] == 4 and report["failed"] == 1 and report["no_prediction"] == 0
    assert report["labeled"]["n"] == 3
    assert report["predicted_classes"] == ["fight", "walk", "(no label)"]
    assert sum(map(sum, report["confusion_matrix"])) == 4 and sum(row[2] for row in report["confusion_matrix"]) == 1
    assert report["accuracy"] == pytest.approx(report["labeled"]["accuracy"] * 3 / 4)
    headline = next(line for line in proc.stdout.splitlines() if line.startswith("accuracy"))
    assert "over all 4 videos (1 unlabeled count as wrong;" in headline and "over the 3 labeled)" in headline
    nobody = json.loads((tmp_path / "eval" / "walk" / "nobody" / "summary.json").read_text())
    assert nobody["whole_frame"] is True and nobody["video_label"]["label"]
    assert (tmp_path / "eval" / "confusion_matrix.png").is_file()
    assert "macro-F1" in proc.stdout
    index = (tmp_path / "eval" / "index.html").read_text()  # every video's report, the misclassified first
    links = re.findall(r'href="([^"]+)"', index)
    assert len(links) == 3 and all((tmp_path / "eval" / link).is_file() for link in links)
    rows = re.findall(r"<tr( class=\"wrong\")?><td>", index.split('id="videos"')[1])
    assert rows == sorted(rows, reverse=True) and 'src="confusion_matrix.png"' in index and headline in index
    assert f"report: {tmp_path / 'eval' / 'index.html'}" in proc.stdout


def test_evaluating_folders_of_other_classes_is_one_line_before_any_video(tiny_checkpoint, sample_clips, tmp_path):
    """--evaluate where no class folder is a class of the model (fight, walk): one line naming both sides, exit 2."""
    from conftest import one_error_line

    proc = run_predict("--videos-dir", str(sample_clips), "--evaluate", "--checkpoint", str(tiny_checkpoint),
                       "--output-dir", str(tmp_path / "eval"))
    assert proc.returncode == 2 and one_error_line(proc, "predict.py") == (
        f"predict.py: error: --evaluate: the class folders of {sample_clips} (standing, walking) are none of the "
        "checkpoint's classes (fight, walk): rename them, or leave out --evaluate")
    assert not (tmp_path / "eval").exists()


def test_drop_mode_waits_for_a_full_window(predictor, sample_clips, tmp_path):
    """With PAD_MODE "drop" training saw no padded sequence, so a track is labeled only once its window is full."""
    import dataclasses

    clip = sample_clips / "walking" / "walking_0.mp4"
    first_labeled = {}
    original = predictor.model_config
    try:
        for mode in ("reverse", "drop"):
            predictor.model_config = dataclasses.replace(original, pad_mode=mode, min_sequence_frames=2)
            predictor.run(clip, tmp_path / mode, progress=False)
            rows = read_rows(tmp_path / mode / "tracks.csv")
            kept = sorted({int(r["frame"]) for r in rows})
            first_labeled[mode] = kept.index(min(int(r["frame"]) for r in rows if r["label"]))
    finally:
        predictor.model_config = original
    assert first_labeled["reverse"] < original.sequence_length - 1 <= first_labeled["drop"]


# --- Output folders: nothing the tool did not write is ever deleted (issue: predict wiped a user's folder) --------

def test_a_folder_that_is_not_a_prediction_is_refused_and_left_alone(predictor, sample_clips, tmp_path):
    clip = sample_clips / "standing" / "standing_0.mp4"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("a user's file")
    outputs = tmp_path / "outputs"  # earlier predictions in their own subfolders
    for name in ("clip_a", "clip_b"):
        predictor.run(clip, outputs / name, progress=False)
    for folder in (mine, outputs):
        before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
        for overwrite in (False, True):
            with pytest.raises(InputError, match="is not empty and holds no prediction .*nothing was changed"):
                predictor.run(clip, folder, progress=False, overwrite=overwrite)
        assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    assert (mine / "notes.txt").read_text() == "a user's file"


def test_overwrite_replaces_only_our_own_files(predictor, sample_clips, tmp_path):
    clip = sample_clips / "standing" / "standing_0.mp4"
    out = tmp_path / "out"
    first = predictor.run(clip, out, progress=False)
    (out / "notes.txt").write_text("kept")
    with pytest.raises(InputError, match="already holds a prediction: pass --overwrite"):
        predictor.run(clip, out, progress=False)
    second = predictor.run(clip, out, progress=False, overwrite=True)
    assert (out / "notes.txt").read_text() == "kept"
    assert sorted(p.name for p in out.iterdir()) == sorted([*OUTPUT_FILES, "notes.txt"])
    assert second["created"] >= first["created"] and not (out / ".partial").exists()


def test_output_dir_dot_is_one_line_not_a_traceback(tiny_checkpoint, sample_clips, tmp_path):
    clip = sample_clips / "standing" / "standing_0.mp4"
    busy, empty = tmp_path / "busy", tmp_path / "empty"
    busy.mkdir()
    empty.mkdir()
    (busy / "keep.txt").write_text("x")
    args = [sys.executable, str(ROOT / "predict.py"), "--video", str(clip), "--checkpoint", str(tiny_checkpoint),
            "--output-dir", ".", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    refused = subprocess.run(args, cwd=busy, capture_output=True, text=True, timeout=300, env=env)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith(f"predict.py: error: {busy} is not empty")
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]
    done = subprocess.run(args, cwd=empty, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in empty.iterdir()) == sorted(OUTPUT_FILES)


# --- Ctrl-C: a partial result is never taken for done ---------------------------------------------------------------

@pytest.fixture
def interrupt_after(predictor, monkeypatch):
    """Press Ctrl-C ``presses`` times in the next prediction once ``n`` frames of a video are done."""
    import signal

    from behavior.predict import session

    original = session.Session.handle
    plan = {"after": None, "presses": 1}

    def handle(self, frame, dets, objects=()):
        if plan["after"] is not None and self.kept >= plan["after"]:
            plan["after"] = None
            for _ in range(plan["presses"]):
                signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # as Python handles a SIGINT
        return original(self, frame, dets, objects)

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, whatever the runner set
    monkeypatch.setattr(session.Session, "handle", handle)
    yield lambda n, presses=1: plan.update(after=n, presses=presses)
    signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("presses,kept", [(1, 6), (2, 5)])
def test_an_interrupted_video_is_marked_and_redone(predictor, interrupt_after, sample_clips, tmp_path, presses,
                                                    kept):
    """One Ctrl-C finishes the frame in hand and stops; a second one stops at once. Either way the frames are kept."""
    from behavior.predict.outputs import prediction_state

    clip = sample_clips / "walking" / "walking_0.mp4"
    interrupt_after(5, presses)
    partial = predictor.run(clip, tmp_path / "out", progress=False)
    assert partial["interrupted"] and partial["frames_kept"] == kept
    assert prediction_state(tmp_path / "out") == "interrupted"
    assert len(read_rows(tmp_path / "out" / "tracks.csv")) > 0  # the frames seen are kept
    full = predictor.run(clip, tmp_path / "out", progress=False)  # no --overwrite needed: it was never done
    assert not full["interrupted"] and full["frames_kept"] > 5
    assert prediction_state(tmp_path / "out") == "done"


def test_ctrl_c_stops_a_batch_and_a_rerun_goes_on(predictor, interrupt_after, sample_clips, tmp_path):
    from behavior.predict.batch import predict_folder
    from behavior.predict.outputs import prediction_state

    out = tmp_path / "batch"
    interrupt_after(None)
    first = predict_folder(predictor, sample_clips, out, progress=False)  # 4 videos, all done
    assert [it.interrupted for it in first] == [False] * 4
    standing, walking = out / "standing", out / "walking"
    (standing / "standing_1" / "summary.json").unlink()  # as if never run
    (walking / "walking_0" / "summary.json").unlink()
    interrupt_after(3)
    items = predict_folder(predictor, sample_clips, out, progress=False)
    assert [it.interrupted for it in items] == [False, True]  # stopped at the interrupted video: nothing after it
    assert prediction_state(standing / "standing_1") == "interrupted"
    assert prediction_state(walking / "walking_0") == "none"
    again = predict_folder(predictor, sample_clips, out, progress=False)
    assert [it.interrupted for it in again] == [False] * 4
    assert all(prediction_state(out / job) == "done" for job in
               ("standing/standing_0", "standing/standing_1", "walking/walking_0", "walking/walking_1"))


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists():
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared (exit code {proc.poll()})")


@pytest.mark.parametrize("mode", ["video", "batch"])
def test_ctrl_c_exits_130(tiny_checkpoint, tmp_path, mode):
    """A real SIGINT, as a user's Ctrl-C: exit code 130, the partial result marked, nothing taken for done."""
    import signal
    import time

    from behavior.predict.outputs import prediction_state

    clips = tmp_path / "clips"
    for label in ("standing", "walking"):  # long enough for the signal to land mid-video
        write_clip(clips / label / f"{label}_0.mp4", ClipSpec(motion=label, width=320, height=240, fps=15,
                                                             seconds=10, seed=11))
    out = tmp_path / "out"
    what = (["--video", str(clips / "standing" / "standing_0.mp4")] if mode == "video"
            else ["--videos-dir", str(clips)])
    proc = subprocess.Popen([sys.executable, str(ROOT / "predict.py"), *what, "--checkpoint", str(tiny_checkpoint),
                             "--output-dir", str(out), "--no-progress"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal
    first = out if mode == "video" else out / "standing" / "standing_0"
    _wait_for(first / ".partial" / "tracks.csv", proc)
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stdout
    assert prediction_state(first) == "interrupted"
    summary = json.loads((first / "summary.json").read_text())
    assert 0 < summary["frames_kept"] < 150
    if mode == "batch":
        assert not (out / "walking").exists()  # no video after the interrupted one was started


# --- The rest of what a user reads ------------------------------------------------------------------------------

@pytest.mark.parametrize("display,message", [(None, "--show needs a screen, but DISPLAY is not set"),
                                             (":87", "--show cannot open a window on display ':87'")])
def test_show_without_a_display_is_one_line(tiny_checkpoint, sample_clips, tmp_path, display, message):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    if display:
        env["DISPLAY"] = display
    proc = subprocess.run([sys.executable, str(ROOT / "predict.py"), "--video",
                           str(sample_clips / "walking" / "walking_0.mp4"), "--checkpoint", str(tiny_checkpoint),
                           "--output-dir", str(tmp_path / "out"), "--show", "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={**env, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr  # not 134: the process is never aborted by Qt
    assert proc.stderr.strip().splitlines()[-1].startswith(f"predict.py: error: {message}")
    assert not (tmp_path / "out").exists()  # no staging folder, no outputs


def test_people_are_named_as_stage_1_names_them(tiny_checkpoint, sample_clips, tmp_path, capfd):
    """person_1 is the track seen in the most frames, as in stage 1's folders; the tracker id is kept beside it."""
    code, out, _ = predict_here(capfd, "--video", str(sample_clips / "standing" / "standing_1.mp4"),
                                "--checkpoint", str(tiny_checkpoint), "--output-dir", str(tmp_path / "out"))
    assert code == 0
    tracks = json.loads((tmp_path / "out" / "summary.json").read_text())["tracks"]
    assert [t["person"] for t in tracks] == list(range(1, len(tracks) + 1)) and len(tracks) == 2
    assert [t["frames"] for t in tracks] == sorted((t["frames"] for t in tracks), reverse=True)
    table = out.splitlines()
    assert table[0].split()[:2] == ["person", "track"]
    assert table[2].split()[:2] == ["person_1", str(tracks[0]["track_id"])]


def test_flags_the_checkpoint_decides_are_not_offered(tiny_checkpoint, sample_clips, tmp_path, capfd):
    """The model's settings come from its checkpoint: predict.py has no flag for them, rather than ignoring one."""
    with pytest.raises(SystemExit) as exit_info:
        predict_here(capfd, "--video", str(sample_clips / "walking" / "walking_0.mp4"), "--checkpoint",
                     str(tiny_checkpoint), "--output-dir", str(tmp_path / "out"), "--sequence-length", "24")
    assert exit_info.value.code == 2
    [line] = capfd.readouterr().err.strip().splitlines()
    assert "unrecognized arguments: --sequence-length 24" in line and not (tmp_path / "out").exists()
    with pytest.raises(SystemExit):
        predict_here(capfd, "--help")
    flags = capfd.readouterr().out.split("options:")[1]
    assert flags.index("--video ") < flags.index("--checkpoint") < flags.index(
        "the model's own settings come from its checkpoint") and "--sequence-length" not in flags


def test_memory_stays_flat_on_a_long_stream(predictor, tmp_path):
    """tracks.csv rows go to disk as they come and no per-frame list grows (an hour of 5 people was 250 MB)."""
    import tracemalloc

    from behavior.detect.tracking import Detection
    from behavior.io.video import Frame
    from behavior.predict.session import Session

    image = np.full((96, 128, 3), 120, np.uint8)
    dets = [Detection(k, (10.0 + 20 * k, 10.0, 25.0 + 20 * k, 80.0), 0.9) for k in range(1, 6)]
    session = Session(predictor, tmp_path, 15.0, 15.0, show=False)
    try:
        def feed(start: int, n: int) -> None:
            for i in range(start, start + n):
                session.handle(Frame(i, i / 15.0, image.copy()), dets)

        feed(0, 60)  # warm up: buffers full, labels flowing
        tracemalloc.start()
        feed(60, 140)
        middle = tracemalloc.get_traced_memory()[0]
        feed(200, 400)
        grown = tracemalloc.get_traced_memory()[0] - middle
        tracemalloc.stop()
    finally:
        session.close()
    assert grown < 100_000, f"memory grew {grown} bytes over 400 frames with 5 people"  # was ~1 KB/person/frame
    assert sum(1 for _ in open(tmp_path / "tracks.csv")) == 1 + 600 * 5
    assert all(len(st.segments) <= 50 for st in session.buffer.states.values())


@pytest.mark.parametrize("read_only", [True, False], ids=["read-only", "full"])
def test_a_full_or_read_only_output_dir_is_one_line(tiny_checkpoint, sample_clips, tmp_path, read_only):
    from conftest import one_error_line, run_on_small_disk

    out = tmp_path / "out"
    proc = run_on_small_disk([sys.executable, str(ROOT / "predict.py"), "--video",
                              str(sample_clips / "walking" / "walking_0.mp4"), "--checkpoint", str(tiny_checkpoint),
                              "--output-dir", str(out), "--no-progress"], out, size_kb=16, read_only=read_only)
    assert proc.returncode == 1, proc.stderr
    line = one_error_line(proc, "predict.py")
    assert line.endswith("read-only file system" if read_only else "no space left on device (disk full)")


@pytest.mark.parametrize("flag,value,message", [
    ("--yolo-conf-threshold", "1.5", "YOLO_CONF_THRESHOLD (--yolo-conf-threshold) must be a number in (0, 1)"),
    ("--yolo-imgsz", "0", "YOLO_IMGSZ (--yolo-imgsz) must be an integer in [32, 4096]"),
    ("--smoothing", "0", "SMOOTHING (--smoothing) must be a number in (0, 1]"),
])
def test_invalid_prediction_settings_are_one_line(tiny_checkpoint, tmp_path, capsys, flag, value, message):
    import predict
    from behavior import cli

    code = cli.run(predict.main, ["--video", str(tmp_path / "x.mp4"), "--checkpoint", str(tiny_checkpoint),
                                  flag, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err


def test_a_checkpoint_from_before_the_streams_still_predicts(tiny_checkpoint, sample_clips, tmp_path):
    """model_config as earlier versions wrote it (use_motion, inputs "crops", no pose keys): it loads and predicts
    with appearance and motion, and the same weights give the same labels as today's checkpoint."""
    from behavior.io.checkpoint import save_checkpoint

    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    old = dict(ckpt["model_config"])
    for key in ("pose_imgsz", "pose_sha256"):
        old.pop(key)
    old.update(use_motion=True, inputs=["crops", "motion"])
    save_checkpoint(tmp_path / "old.pth", {**ckpt, "model_config": old})
    clip = sample_clips / "walking" / "walking_0.mp4"
    before = Predictor(tmp_path / "old.pth", PredictSettings(stride=2))
    assert before.model_config.inputs == ("appearance", "motion") and before.pose is None
    summary = before.run(clip, tmp_path / "old", progress=False)
    today = Predictor(tiny_checkpoint, PredictSettings(stride=2)).run(clip, tmp_path / "new", progress=False)
    assert summary["video_label"] == today["video_label"] and summary["tracks"]


def test_a_motion_only_model_predicts_without_crops(sample_clips, tmp_path, weights_dir, person_log):
    """A model that reads neither appearance nor pose needs no crop, no CNN and no pose model."""
    from behavior.io.checkpoint import save_checkpoint
    from behavior.model.network import BehaviorNet, ModelConfig

    model_config = ModelConfig(inputs=("motion",), sequence_length=4, min_sequence_frames=2)
    save_checkpoint(tmp_path / "motion.pth", {"model": BehaviorNet(model_config, None).state_dict(), "classes": ["a",
                                                                                                                 "b"],
                                              "model_config": model_config.to_dict(), "train_config": {}, "metrics": {},
                                              "epoch": 1, "versions": {}})
    predictor = Predictor(tmp_path / "motion.pth", PredictSettings(stride=2))
    assert predictor.pose is None and predictor.net.backbone is None
    summary = predictor.run(sample_clips / "walking" / "walking_0.mp4", tmp_path / "out", progress=False)
    assert summary["video_label"]["label"] in ("a", "b")
    assert person_log and all(f.numel() == 0 and k is None for _, _, f, _, k in person_log)


def test_prediction_reads_the_objects_training_read(objects_clip, tmp_path, weights_dir, person_log):
    """A video's frames give, live, the objects stream that training replays from stage 1's objects.csv."""
    from behavior.data.datasets import load_vectors
    from behavior.io.checkpoint import save_checkpoint
    from behavior.model.network import BehaviorNet, ModelConfig

    classes = ("handbag", "chair")
    settings = ExtractSettings(target_fps=0.0, frame_width=96, frame_height=96, min_track_frames=3, objects=classes,
                               detector=DetectorSettings(imgsz=640))
    job = find_videos(objects_clip)[0]
    extract_all([job], tmp_path / "frames", settings, progress=False)
    video = job.out_dir(tmp_path / "frames")
    person_of = {int(r["track_id"]): int(r["person"]) for r in read_rows(video / "tracks.csv")}
    dirs = [f"{job.key}/person_{k}" for k in sorted(set(person_of.values()))]
    inputs = ("motion", "objects")
    replayed = load_vectors(tmp_path / "frames", dirs, inputs, object_classes=classes)
    model_config = ModelConfig(inputs=inputs, object_classes=classes, sequence_length=4, min_sequence_frames=2,
                               target_fps=0.0, frame_width=96, frame_height=96)
    save_checkpoint(tmp_path / "objects.pth", {"model": BehaviorNet(model_config, None).state_dict(),
                                               "classes": ["a", "b"], "model_config": model_config.to_dict(),
                                               "train_config": {}, "metrics": {}, "epoch": 1, "versions": {}})
    predictor = Predictor(tmp_path / "objects.pth", PredictSettings(detector=DetectorSettings(imgsz=640)))
    predictor.run(job.path, tmp_path / "out", progress=False)
    live = {f"{job.key}/person_{person_of[track]}/frame_{frame:06d}.jpg": vector
            for frame, track, _, vector, _ in person_log if track in person_of}
    assert live.keys() == replayed.keys() and len(live) >= 12
    assert all(np.allclose(live[path], replayed[path], atol=1e-5) for path in live)
    none = 4 + len(classes)  # the first slot's none flag, after motion and the one-hot class
    assert any(vector[none] == 0 for vector in live.values())  # someone stands by an object


def test_exported_annotations_import_as_the_same_tracks(predictor, sample_clips, tmp_path, weights_dir):
    """predict.py's annotations.json and labels.csv are what ANNOTATIONS_DIR takes: imported by stage 1, they give
    the tracks the prediction saw (boxes to 0.1 px) and the labels it gave them."""
    from behavior.io.annotations import read_annotations, read_track_labels

    clip = sample_clips / "walking" / "walking_1.mp4"
    summary = predictor.run(clip, tmp_path / "pred", progress=False)
    found = read_annotations(tmp_path / "pred" / "annotations.json")
    exported = {(f, p.track_id): p.box for f, people in found.people.items() for p in people}
    predicted = {(int(r["frame"]), int(r["track_id"])): tuple(float(r[k]) for k in ("x1", "y1", "x2", "y2"))
                 for r in read_rows(tmp_path / "pred" / "tracks.csv")}
    assert exported.keys() == predicted.keys() and len(exported) > 20
    assert all(np.allclose(exported[k], predicted[k], atol=0.051) for k in exported)
    labels = read_track_labels(tmp_path / "pred" / "labels.csv")["walking_1"]
    assert [(t.track_id, t.label, t.start, t.end) for t in labels] == [
        (t["track_id"], s["label"], s["start_frame"], s["end_frame"]) for t in summary["tracks"] for s in t["segments"]]

    annotations = tmp_path / "annotations"
    annotations.mkdir()
    shutil.copy(tmp_path / "pred" / "annotations.json", annotations / "walking_1.json")
    shutil.copy(tmp_path / "pred" / "labels.csv", annotations / "labels.csv")
    settings = ExtractSettings(target_fps=predictor.model_config.target_fps, frame_width=32, frame_height=32,
                               min_track_frames=1, annotations_dir=str(annotations))
    job = next(j for j in find_videos(sample_clips) if j.stem == "walking_1")
    assert extract_all([job], tmp_path / "frames", settings, progress=False)[0].annotated
    imported = {(int(r["frame"]), int(r["track_id"])): tuple(float(r[k]) for k in ("x1", "y1", "x2", "y2"))
                for r in read_rows(job.out_dir(tmp_path / "frames") / "tracks.csv")}
    assert imported.keys() == predicted.keys()
    assert all(np.allclose(imported[k], predicted[k], atol=0.051) for k in imported)
    assert (job.out_dir(tmp_path / "frames") / "track_labels.csv").is_file()


def test_the_console_lists_the_labeled_people_with_their_timeline_in_seconds(tiny_checkpoint, sample_clips, tmp_path,
                                                                            capfd):
    code, out, _ = predict_here(capfd, "--video", str(sample_clips / "walking" / "walking_1.mp4"), "--checkpoint",
                                str(tiny_checkpoint), "--output-dir", str(tmp_path / "out"))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    labeled = [t for t in summary["tracks"] if t["labeled_frames"]]
    rows = [line for line in out.splitlines() if line.startswith("person_")]
    assert code == 0 and len(rows) == len(labeled) >= 1
    first = labeled[0]["segments"][0]
    assert f"{first['label']} {first['start_s']:.1f}-{first['end_s']:.1f} s" in rows[0]
    short = len(summary["tracks"]) - len(labeled)
    assert (f"{short} more track(s) too short for a label" in out) == (short > 0)
