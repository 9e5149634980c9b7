"""Inference backends: the same detections, keypoints and features as PyTorch, from exports made once and checked."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import SHARED_ASSETS  # noqa: I001

from behavior.detect.pose import box_iou
from behavior.detect.tracking import PersonTracker
from behavior.features.appearance import backbone_key, embed_crops
from behavior.features.video_backbone import VideoBackbone, fit_size
from behavior.model.network import BehaviorNet, ModelConfig, load_backbone
from behavior.runtime import backends
from behavior.settings import DetectorSettings

RUNTIMES = ("openvino", "onnxruntime")


@pytest.fixture(scope="module")
def real_frames(surv_fight) -> list[np.ndarray]:
    """BGR frames with people: two surveillance clips (480x360) and two MOT17 street frames (1920x1080)."""
    frames = []
    for clip in sorted((surv_fight / "fight").glob("*.mp4"))[3:5]:
        cap = cv2.VideoCapture(str(clip))
        for i in range(40):
            ok, frame = cap.read()
            if ok and i % 20 == 19:
                frames.append(frame)
        cap.release()
    mot = SHARED_ASSETS / "mot" / "MOT17-mini" / "train" / "MOT17-04-FRCNN" / "img1"
    if not mot.is_dir():
        pytest.fail(f"MOT17-mini not found at {mot}: these tests need ../shared/assets", pytrace=False)
    frames += [cv2.imread(str(p)) for p in sorted(mot.glob("*.jpg"))[:2]]
    assert len(frames) == 6
    return frames


@pytest.fixture(scope="module")
def trackers(weights_dir) -> dict[str, PersonTracker]:
    return {b: PersonTracker(DetectorSettings(backend=b, precision="float32")) for b in ("torch", *RUNTIMES)}


def test_auto_is_openvino_on_the_cpu_and_torch_on_a_gpu():
    assert backends.resolve_backend("auto", "cpu") == "openvino"
    assert backends.resolve_backend("auto", "cuda:0") == "torch"
    assert backends.resolve_backend("onnxruntime", "cpu") == "onnxruntime"
    assert backends.resolve_backend("torch", "cpu") == "torch"


def test_a_missing_runtime_runs_on_torch_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(backends, "available", lambda b: b == "torch")
    with caplog.at_level(logging.WARNING):
        assert backends.resolve_backend("openvino", "cpu") == "torch"
        assert backends.resolve_backend("auto", "cpu") == "torch"
    assert "openvino package is not installed" in caplog.text


@pytest.mark.parametrize("backend", RUNTIMES)
def test_the_same_detections_as_torch_on_real_frames(trackers, real_frames, backend):
    assert trackers[backend].backend == backend
    total = 0
    for frame in real_frames:
        ref, got = trackers["torch"].detect(frame), trackers[backend].detect(frame)
        assert len(got) == len(ref), f"{backend}: {len(got)} people, torch {len(ref)}"
        for box, conf in zip(ref.xyxy, ref.conf, strict=True):
            ious = [box_iou(box, other) for other in got.xyxy]
            best = int(np.argmax(ious))
            assert ious[best] >= 0.99, f"{backend}: box {box} best IoU {ious[best]:.4f}"
            assert abs(float(got.conf[best]) - float(conf)) <= 0.01
        total += len(ref)
    assert total >= 10  # the frames really hold people


def test_a_batch_side_by_side_detects_as_frame_by_frame(trackers, real_frames, monkeypatch):
    """DETECT_BATCH > 1 on OpenVINO: the same boxes as one frame a call, through our infer requests (no
    ``AsyncInferQueue``: freed by the garbage collector, Ultralytics' per-call queue can hang the process)."""
    import openvino

    def refused(*args, **kwargs):
        raise AssertionError("an AsyncInferQueue was made")

    monkeypatch.setattr(openvino, "AsyncInferQueue", refused)
    batched = PersonTracker(DetectorSettings(backend="openvino", precision="float32", batch=4))
    assert isinstance(batched.model.predictor.model.ov_compiled_model, backends.SideBySide)
    frames = real_frames[:4] + real_frames[:1]  # a full side-by-side chunk and one left over
    for ref, got in zip((trackers["openvino"].detect(f) for f in frames), batched.detect_many(frames), strict=True):
        assert np.allclose(got.xyxy, ref.xyxy, atol=0.5) and np.allclose(got.conf, ref.conf, atol=1e-3)


def test_an_export_that_fails_leaves_the_detector_on_torch(weights_dir, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(backends, "export_yolo", broken)
    with caplog.at_level(logging.WARNING):
        tracker = PersonTracker(DetectorSettings(backend="openvino"))
    assert tracker.backend == "torch"
    assert len(tracker.detect(np.zeros((64, 64, 3), np.uint8))) == 0
    assert [r.message for r in caplog.records if r.levelno >= logging.WARNING] == [
        "detector on openvino failed (converter crashed); running it on torch"]


def test_exports_are_made_once_checked_and_rebuilt_when_changed(tmp_path):
    calls = []

    def build(staging: Path) -> Path:
        calls.append(staging)
        (staging / "sub").mkdir()
        (staging / "sub" / "weights.bin").write_bytes(b"\x01" * 100)
        model = staging / "model.xml"
        model.write_text("<net/>")
        return model

    spec = backends.ExportSpec("yolov8n", "detect", "ab" * 32, (640,), "openvino")
    first = backends.cached_export(spec, build, tmp_path)
    assert first == spec.folder(tmp_path) / "model.xml" and first.is_file()
    assert backends.cached_export(spec, build, tmp_path) == first
    assert len(calls) == 1
    assert [p.name for p in tmp_path.iterdir()] == [first.parent.name]  # no staging left

    (first.parent / "sub" / "weights.bin").write_bytes(b"\x02" * 100)  # corrupted on disk
    assert backends.cached_export(spec, build, tmp_path) == first
    assert len(calls) == 2
    assert (first.parent / "sub" / "weights.bin").read_bytes() == b"\x01" * 100

    other = backends.ExportSpec("yolov8n", "detect", "ab" * 32, (320,), "openvino")
    assert other.folder(tmp_path) != spec.folder(tmp_path)  # the input size is part of the key


def test_an_interrupted_export_leaves_nothing(tmp_path):
    def build(staging: Path) -> Path:
        (staging / "half.bin").write_bytes(b"0")
        raise KeyboardInterrupt

    spec = backends.ExportSpec("yolov8n", "detect", "cd" * 32, (640,), "onnxruntime")
    with pytest.raises(KeyboardInterrupt):
        backends.cached_export(spec, build, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def real_crops(surv_fight) -> np.ndarray:
    """RGB 224x224 person-sized crops of real surveillance frames."""
    cap = cv2.VideoCapture(str(sorted((surv_fight / "fight").glob("*.mp4"))[0]))
    crops = []
    for _ in range(8):
        ok, frame = cap.read()
        assert ok
        crops.append(cv2.cvtColor(cv2.resize(frame[40:320, 100:380], (224, 224)), cv2.COLOR_BGR2RGB))
    return np.stack(crops)


@pytest.mark.parametrize("backend", RUNTIMES)
def test_mobilenet_features_match_torch(weights_dir, real_crops, backend):
    backbone = load_backbone(weights_dir / "mobilenet_v2_imagenet.pth")
    ref_net = BehaviorNet(ModelConfig(), backbone)
    net = BehaviorNet(ModelConfig(cnn_backend=backend), backbone)
    assert backends.compiled_backbone(net) is not None
    for mirror in (False, True):
        ref = embed_crops(ref_net, real_crops, "cpu", mirror=mirror)
        got = embed_crops(net, real_crops, "cpu", mirror=mirror)
        assert got.shape == ref.shape == (len(real_crops), 1280)
        cosine = torch.nn.functional.cosine_similarity(got, ref, dim=1)
        assert float(cosine.min()) >= 0.999, f"{backend}: cosine {cosine.tolist()}"


@pytest.mark.parametrize(("backend", "precision"), [*((b, "float32") for b in RUNTIMES), ("openvino", "bfloat16")])
def test_i3d_features_match_torch(weights_dir, real_crops, backend, precision):
    ref = VideoBackbone.load("i3d_kinetics400_rgb.npz", 4, 64)
    video = VideoBackbone.load("i3d_kinetics400_rgb.npz", 4, 64, "cpu", backend, precision)
    assert (video.backend, video.precision) == (backend, precision if backend == "openvino" else "float32")
    assert video.key != ref.key
    clips = np.stack([fit_size(c, 64) for c in real_crops]).reshape(2, 4, 64, 64, 3)
    for mirror in (False, True):
        got, want = torch.from_numpy(video.embed(clips, mirror)), torch.from_numpy(ref.embed(clips, mirror))
        assert got.shape == want.shape == (2, 1024)
        cosine = torch.nn.functional.cosine_similarity(got, want, dim=1)
        assert float(cosine.min()) >= 0.999, f"{backend} {precision}: cosine {cosine.tolist()}"


def test_features_from_two_backends_never_share_a_cache_key(weights_dir):
    keys = {backbone_key(weights_dir / "mobilenet_v2_imagenet.pth", ModelConfig(cnn_backend=b))
            for b in ("torch", *RUNTIMES)}
    assert len(keys) == 3


def test_checkpoints_record_the_backend_and_old_ones_read_as_torch():
    cfg = ModelConfig(cnn_backend="openvino")
    assert ModelConfig.from_dict(cfg.to_dict()).cnn_backend == "openvino"
    old = {k: v for k, v in cfg.to_dict().items() if k != "cnn_backend"}
    assert ModelConfig.from_dict(old).cnn_backend == "torch"
    from behavior.errors import InputError

    with pytest.raises(InputError, match="cnn_backend must be one of: torch, openvino, onnxruntime"):
        ModelConfig.from_dict({**cfg.to_dict(), "cnn_backend": "tensorrt"})


def test_pose_keypoints_match_torch(weights_dir, surv_fight, tmp_path):
    from behavior.detect.pose import PoseEstimator, PoseSettings

    crops = []
    cap = cv2.VideoCapture(str(sorted((surv_fight / "fight").glob("*.mp4"))[3]))
    for _ in range(30):
        ok, frame = cap.read()
    tracker = PersonTracker(DetectorSettings(backend="torch"))
    boxes = tracker.detect(frame).xyxy
    for x1, y1, x2, y2 in boxes:
        x1, y1, x2, y2 = map(int, (x1, y1, x2, y2))
        crops.append(cv2.cvtColor(cv2.resize(frame[y1:y2, x1:x2], (224, 224)), cv2.COLOR_BGR2RGB))
    expected = [(0.0, 0.0, 224.0, 224.0)] * len(crops)
    ref = PoseEstimator(PoseSettings(backend="torch")).estimate(crops, expected)
    got = PoseEstimator(PoseSettings(backend="openvino", precision="float32")).estimate(crops, expected)
    seen = 0
    for r, g in zip(ref, got, strict=True):
        assert np.isnan(r).all() == np.isnan(g).all()
        if not np.isnan(r).all():
            assert np.abs(r[:, :2] - g[:, :2]).max() < 1.0  # pixels of a 224 crop
            assert np.abs(r[:, 2] - g[:, 2]).max() < 0.01
            seen += 1
    assert seen >= 2


def test_bad_weights_are_one_error_on_every_backend_not_a_fallback(tmp_path, caplog):
    from behavior.errors import InputError

    bad = tmp_path / "yolov8n.pt"
    bad.write_bytes(b"not a checkpoint")
    for backend in ("openvino", "torch"):
        with caplog.at_level(logging.WARNING), pytest.raises(InputError, match=f"detector weights {bad}"):
            PersonTracker(DetectorSettings(weights=str(bad), backend=backend))
    assert "running it on torch" not in caplog.text
