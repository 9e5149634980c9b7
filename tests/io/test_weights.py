import pytest

from behavior.io.weights import WeightsNotFoundError, resolve_weights


def test_explicit_path_wins(tmp_path, monkeypatch):
    explicit = tmp_path / "mine" / "yolov8n.pt"
    explicit.parent.mkdir()
    explicit.write_bytes(b"x")
    env = tmp_path / "env"
    env.mkdir()
    (env / "yolov8n.pt").write_bytes(b"y")
    monkeypatch.setenv("BEHAVIOR_WEIGHTS_DIR", str(env))
    assert resolve_weights(explicit) == explicit.resolve()


def test_env_dir_before_models_dir(tmp_path, monkeypatch):
    env, models = tmp_path / "env", tmp_path / "models"
    for d in (env, models):
        d.mkdir()
        (d / "yolov8n.pt").write_bytes(b"x")
    monkeypatch.setenv("BEHAVIOR_WEIGHTS_DIR", str(env))
    assert resolve_weights("yolov8n.pt", models_dir=models) == (env / "yolov8n.pt").resolve()
    monkeypatch.delenv("BEHAVIOR_WEIGHTS_DIR")
    assert resolve_weights("yolov8n.pt", models_dir=models) == (models / "yolov8n.pt").resolve()


def test_error_names_every_place_searched(tmp_path, monkeypatch):
    monkeypatch.setenv("BEHAVIOR_WEIGHTS_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("BEHAVIOR_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as err:
        resolve_weights(tmp_path / "a" / "yolov8n.pt", models_dir=tmp_path / "models")
    message = str(err.value)
    assert "\n" not in message
    for place in (str(tmp_path / "a" / "yolov8n.pt"), str(tmp_path / "env" / "yolov8n.pt"),
                  str(tmp_path / "models" / "yolov8n.pt"), "download (skipped"):
        assert place in message


def test_unknown_name_has_no_download(tmp_path, monkeypatch):
    monkeypatch.delenv("BEHAVIOR_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsNotFoundError, match="no library publishes"):
        resolve_weights("custom.bin", models_dir=tmp_path)


def test_shared_weights_resolve(weights_dir):
    assert resolve_weights("yolov8n.pt") == (weights_dir / "yolov8n.pt").resolve()


def _payload_file(path, payload):
    import torch

    torch.save({"model": payload, "date": "2024"}, path)
    return path


def test_official_weights_pass_the_check(weights_dir):
    from behavior.io.weights import verify_checkpoint

    for name in ("yolov8n.pt", "yolov8n-pose.pt"):
        verify_checkpoint(weights_dir / name)  # no error: only layers, tensors and plain data


def test_a_pickle_that_runs_code_is_refused_and_never_runs(tmp_path):
    import os

    from behavior.io.weights import UnsafeWeightsError, verify_checkpoint

    marker = tmp_path / "pwned"

    class WritesAFile:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    class RunsAShell:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for payload, name in ((WritesAFile(), "io.open"), (RunsAShell(), "posix.system")):
        path = _payload_file(tmp_path / "evil.pt", payload)
        with pytest.raises(UnsafeWeightsError, match=f"refusing to load detector weights .*it references {name}"):
            verify_checkpoint(path, "detector")
        assert not marker.exists()


def test_a_layer_called_with_arguments_is_refused(tmp_path):
    """Network classes may only be rebuilt bare, as pickle saves objects: DetectionModel(cfg) would eval strings."""
    from ultralytics.nn.tasks import DetectionModel

    from behavior.io.weights import UnsafeWeightsError, verify_checkpoint

    class BuildsAModel:
        def __reduce__(self):
            return (DetectionModel, ({"backbone": [], "head": [], "activation": "print('x')"},))

    path = _payload_file(tmp_path / "evil.pt", BuildsAModel())
    with pytest.raises(UnsafeWeightsError, match="it calls ultralytics.nn.tasks.DetectionModel with arguments"):
        verify_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    import pickle

    from behavior.io.weights import UnsafeWeightsError, verify_checkpoint

    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"a": 1}))  # a bare pickle, not torch's zip format
    with pytest.raises(UnsafeWeightsError, match="not a PyTorch checkpoint"):
        verify_checkpoint(raw)
