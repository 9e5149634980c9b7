import pytest

from behavior.weights import WeightsNotFoundError, resolve_weights


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
