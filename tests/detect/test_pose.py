"""Keypoints: the pose model on real crops, the crop geometry, the keypoint cache, and prediction's agreement."""

import csv
import os

import numpy as np
import pytest
import torch

from behavior.data.datasets import load_vectors
from behavior.detect.pose import CropGeometry, KeypointCache, PoseEstimator, PoseSettings, pick_pose
from behavior.extract.extraction import extract_all
from behavior.io.checkpoint import save_checkpoint
from behavior.io.clips import find_videos
from behavior.model.network import BehaviorNet, ModelConfig
from behavior.predict.session import Predictor
from behavior.settings import DetectorSettings, ExtractSettings, PredictSettings

CLIP = "fight/fi079.mp4"  # 640x360, 71 frames, two people fighting
STREAMS = ("motion", "pose", "interaction", "reach")


@pytest.fixture(scope="module")
def estimator(weights_dir):
    return PoseEstimator(PoseSettings("yolov8n-pose.pt"))


@pytest.fixture(scope="module")
def real_clip(surv_fight, weights_dir, tmp_path_factory):
    """One real fight clip, extracted by stage 1 (no pose: keypoints are filled in afterwards)."""
    root = tmp_path_factory.mktemp("pose")
    clips = root / "clips"
    (clips / "fight").mkdir(parents=True)
    os.symlink(surv_fight / CLIP, clips / CLIP)
    job = find_videos(clips)[0]
    extract_all([job], root / "frames", ExtractSettings(), progress=False)
    return root, job


def person_dirs(root, job) -> list[str]:
    video = job.out_dir(root / "frames")
    return sorted(p.relative_to(root / "frames").as_posix() for p in video.glob("person_*"))


def test_crop_geometry_round_trip():
    box = (100.0, 40.0, 160.0, 200.0)
    g = CropGeometry.of(box, 0.15, (224, 224))
    inside = g.to_crop(box)
    assert 0 < inside[0] < inside[2] < 224 and 0 < inside[1] < inside[3] < 224
    points = np.array([[inside[0], inside[1], 0.9], [inside[2], inside[3], 0.5]], np.float32)
    assert g.to_source(points) == pytest.approx(np.array([[100, 40, 0.9], [160, 200, 0.5]]), abs=1e-3)


def test_pick_pose_takes_the_tracked_person_or_none():
    kp = np.arange(2 * 17 * 3, dtype=np.float32).reshape(2, 17, 3)
    boxes = np.array([[0, 0, 50, 100], [100, 0, 150, 100]], np.float32)
    assert pick_pose(boxes, kp, (98, 2, 148, 100))[0, 0] == kp[1, 0, 0]
    assert np.isnan(pick_pose(boxes, kp, (300, 0, 350, 100))).all()  # nobody where the tracker saw the person
    assert np.isnan(pick_pose(np.zeros((0, 4)), np.zeros((0, 17, 3)), (0, 0, 1, 1))).all()


def test_pose_model_finds_the_tracked_people_of_a_real_clip(real_clip, estimator, tmp_path):
    root, job = real_clip
    dirs = person_dirs(root, job)
    assert len(dirs) >= 2
    cache = KeypointCache(tmp_path / "features", estimator.settings)
    store = cache.load(root / "frames", dirs, estimator, progress=False)
    assert store.misses == len(dirs) and store.computed == len(store.keypoints) >= 30
    assert store.coverage() > 0.5  # most tracked people get a pose on their crop (this clip: two fighters entangled)
    rows = list(csv.DictReader(open(job.out_dir(root / "frames") / "tracks.csv")))
    for row in rows[:10]:
        kp = store.keypoints[f"{job.key}/person_{row['person']}/frame_{int(row['frame']):06d}.jpg"]
        if np.isnan(kp).all():
            continue
        x1, y1, x2, y2 = (float(row[k]) for k in ("x1", "y1", "x2", "y2"))
        seen = kp[kp[:, 2] > 0.5]
        h = y2 - y1
        # source-pixel keypoints lie on the tracked person (their box, with a little slack)
        assert ((seen[:, 0] > x1 - 0.3 * h) & (seen[:, 0] < x2 + 0.3 * h)).all()
        assert ((seen[:, 1] > y1 - 0.3 * h) & (seen[:, 1] < y2 + 0.3 * h)).all()
    again = cache.load(root / "frames", dirs, None, progress=False)  # no model needed: all cached
    assert again.hits == len(dirs) and again.computed == 0
    assert all(np.array_equal(again.keypoints[k], v, equal_nan=True) for k, v in store.keypoints.items())


def test_no_keypoints_are_nan_never_zeros(estimator):
    blank = np.full((224, 224, 3), 90, np.uint8)
    kp = estimator.estimate([blank], [(60.0, 20.0, 160.0, 200.0)])[0]
    assert kp.shape == (17, 3) and np.isnan(kp).all()


def pose_checkpoint(path, model_config: ModelConfig) -> None:
    torch.manual_seed(0)
    net = BehaviorNet(model_config, None)
    save_checkpoint(path, {"model": net.state_dict(), "classes": ["fight", "noFight"],
                           "model_config": model_config.to_dict(),
                           "train_config": {}, "metrics": {}, "epoch": 1, "versions": {}})


def test_prediction_computes_the_keypoints_and_streams_training_read(real_clip, estimator, tmp_path, person_log):
    """A training video's frames give, live, the keypoints and stream vectors that training computed."""
    root, job = real_clip
    dirs = person_dirs(root, job)
    store = KeypointCache(tmp_path / "features", estimator.settings).load(root / "frames", dirs, estimator,
                                                                           progress=False)
    cached = load_vectors(root / "frames", dirs, STREAMS, store.keypoints)
    model_config = ModelConfig(inputs=STREAMS, pose_sha256=estimator.settings.sha256())
    pose_checkpoint(tmp_path / "pose.pth", model_config)
    predictor = Predictor(tmp_path / "pose.pth", PredictSettings(detector=DetectorSettings()))
    summary = predictor.run(job.path, tmp_path / "pred", progress=False)
    person_of = {int(r["track_id"]): int(r["person"])
                 for r in csv.DictReader(open(job.out_dir(root / "frames") / "tracks.csv"))}
    compared = 0
    kept = set(person_of)
    for frame, track, _, vector, keypoints in person_log:
        if track not in kept:
            continue  # a short track stage 1 dropped
        path = f"{job.key}/person_{person_of[track]}/frame_{frame:06d}.jpg"
        assert np.allclose(keypoints, store.keypoints[path], atol=1e-3, equal_nan=True)
        own = slice(0, 4 + 86)  # motion and pose (interaction also sees the short tracks stage 1 dropped)
        assert np.allclose(vector[own], cached[path][own], atol=1e-4)
        compared += 1
    assert compared == len(cached) >= 30
    assert summary["timing_ms_per_frame"]["pose"] > 0
    assert not any("feature_norm" in k for k in predictor.net.state_dict())  # pose streams only: no CNN was loaded


def test_prediction_refuses_other_pose_weights(tmp_path, weights_dir):
    model_config = ModelConfig(inputs=("pose",), pose_sha256="0" * 64)
    pose_checkpoint(tmp_path / "pose.pth", model_config)
    from behavior.errors import InputError

    with pytest.raises(InputError, match="not the pose weights this checkpoint was trained with"):
        Predictor(tmp_path / "pose.pth", PredictSettings())
