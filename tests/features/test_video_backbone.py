import numpy as np
import pytest
import torch

from behavior.features.appearance import read_crop
from behavior.features.video_backbone import (
    ClipBuffer,
    VideoBackbone,
    VideoFeatureCache,
    clip_end,
    clip_positions,
    fit_size,
    folder_features,
)


@pytest.fixture(scope="module")
def backbone(weights_dir):
    return VideoBackbone.load("i3d_kinetics400_rgb.npz", clip_length=4, size=32)


def test_each_image_reads_the_last_clip_that_ended_on_or_before_it():
    assert [clip_end(n, 4) for n in range(10)] == [0, 0, 0, 0, 4, 4, 4, 4, 8, 8]
    assert clip_positions(0, 4) == [0, 0, 0, 0]
    assert clip_positions(4, 4) == [1, 2, 3, 4]
    assert clip_positions(8, 3) == [6, 7, 8]


def test_a_live_clip_buffer_makes_the_cache_s_clips():
    images = [np.full((2, 2, 3), n, np.uint8) for n in range(9)]
    buffer, clips = ClipBuffer(4), []
    for n, image in enumerate(images):
        if buffer.push(image):
            clips.append((n, buffer.clip()[:, 0, 0, 0].tolist()))
    assert clips == [(e, clip_positions(e, 4)) for e in (0, 4, 8)]


def test_folder_features_are_i3d_of_each_clip_and_its_mirror(backbone, small_sequences):
    frames, _ = small_sequences
    folder = frames / "fight" / "fight_00000" / "person_1"
    images = [fit_size(read_crop(p, None), 32) for p in sorted(folder.glob("*.jpg"))]
    plain, flipped = folder_features(images, backbone)
    assert plain.shape == (len(images), 1024) and plain.dtype == np.float16
    clip = np.stack([images[p] for p in clip_positions(4, 4)])[None]
    for n in (4, 5, 7):  # the clip ending at 4 gives images 4..7 their feature
        np.testing.assert_allclose(plain[n], backbone.embed(clip)[0], rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(flipped[4], backbone.embed(clip, mirror=True)[0], rtol=1e-2, atol=1e-2)
    assert not np.array_equal(plain[0], plain[4]) and not np.array_equal(plain, flipped)


def test_the_cache_is_reused_until_a_folder_or_a_setting_changes(backbone, small_sequences, tmp_path):
    frames, _ = small_sequences
    dirs = ["fight/fight_00000/person_1", "walk/walk_00000/person_1"]
    first = VideoFeatureCache(tmp_path, backbone.key).load(frames, dirs, backbone, progress=False)
    assert (first.hits, first.misses, first.computed) == (0, 2, 24) and first.plain.shape == (24, 1024)
    second = VideoFeatureCache(tmp_path, backbone.key).load(frames, dirs, None, progress=False)
    assert (second.hits, second.misses) == (2, 0) and torch.equal(second.plain, first.plain)
    longer = VideoBackbone(backbone.net, 8, 32, backbone.sha256)
    assert len({backbone.key, longer.key, VideoBackbone(backbone.net, 4, 64, backbone.sha256).key,
                VideoBackbone(backbone.net, 4, 32, "0" * 64).key}) == 4


def test_a_runtime_that_is_missing_leaves_i3d_on_torch_with_a_warning(weights_dir, monkeypatch, caplog):
    from behavior.runtime import backends

    monkeypatch.setattr(backends, "available", lambda backend: backend == "torch")
    with caplog.at_level("WARNING"):
        video = VideoBackbone.load("i3d_kinetics400_rgb.npz", 4, 32, "cpu", "openvino", "bfloat16")
    assert (video.backend, video.precision) == ("torch", "float32")
    assert video.key == VideoBackbone.load("i3d_kinetics400_rgb.npz", 4, 32).key
    assert "I3D on openvino failed (the openvino package is not installed); computing features on torch" in caplog.text
