from conftest import SHARED_ASSETS  # noqa: I001

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from behavior.errors import InputError
from behavior.model.i3d import FEATURE_DIM, I3D, load_i3d, same_padding, to_clip


@pytest.fixture(scope="module")
def i3d(weights_dir):
    path = weights_dir / "i3d_kinetics400_rgb.npz"
    if not path.is_file():
        pytest.fail(f"{path} not found: the I3D tests need ../shared/assets/weights (or `make i3d-weights`)",
                    pytrace=False)
    return load_i3d(path)


def cricket_frames() -> np.ndarray:
    path = SHARED_ASSETS / "samples" / "v_CricketShot_g04_c01_rgb.gif"
    if not path.is_file():
        pytest.fail(f"DeepMind's sample clip not found at {path}", pytrace=False)
    return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(Image.open(path))])


@pytest.mark.parametrize(("size", "kernel", "stride", "expected"), [
    (224, 7, 2, (2, 3)), (16, 7, 2, (2, 3)), (112, 3, 2, (0, 1)), (8, 2, 2, (0, 0)), (9, 3, 1, (1, 1)),
    (3, 3, 2, (1, 1)), (1, 7, 2, (3, 3))])
def test_same_padding_is_tensorflows(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected
    out = (size + sum(expected) - kernel) // stride + 1
    assert out == -(-size // stride)  # "SAME": ceil(size / stride) outputs


def test_deepminds_sample_clip_is_playing_cricket(i3d, weights_dir):
    labels = (weights_dir / "kinetics400_labels.txt").read_text().splitlines()
    clip = to_clip(cricket_frames()[:16])
    with torch.no_grad():
        probs = i3d(clip[None]).softmax(-1)[0]
    assert labels[int(probs.argmax())] == "playing cricket"
    assert float(probs.max()) > 0.9  # DeepMind's figure: 0.96 from 16 frames


def test_features_are_mixed_5c(i3d):
    with torch.no_grad():
        out = i3d.features(torch.zeros(2, 3, 8, 112, 112))
    assert out.shape == (2, FEATURE_DIM, 1, 4, 4)
    assert not any(p.requires_grad for p in i3d.parameters())


def test_to_clip_scales_to_minus_one_one():
    clip = to_clip(np.array([[[[0, 255, 127]]]], np.uint8))
    assert clip.shape == (3, 1, 1, 1)
    assert clip.flatten().tolist() == pytest.approx([-1.0, 1.0, 127 / 127.5 - 1])


def test_other_arrays_are_refused(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(InputError, match="not DeepMind's Kinetics-400 I3D"):
        load_i3d(path)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="cannot read I3D weights"):
        load_i3d(tmp_path / "bad.npz")
    assert isinstance(I3D(), torch.nn.Module)
