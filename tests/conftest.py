"""Shared fixtures: offline weights, the real assets, and small generated videos."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from behavior.io import checkpoint
from behavior.runtime import environment

ROOT = Path(__file__).resolve().parents[1]
environment.setup()  # offline Ultralytics, the torchvision fix: what every program does first

SHARED_ASSETS = ROOT.parent / "shared" / "assets"


@pytest.fixture(scope="session", autouse=True)
def exports_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runtime exports (behavior.runtime.backends) go to a folder of this session, never the repo's models/."""
    folder = tmp_path_factory.mktemp("exports")
    os.environ["BEHAVIOR_EXPORTS_DIR"] = str(folder)  # the scripts the tests run inherit it
    return folder


def _weights_dir() -> Path:
    return Path(os.environ.get("BEHAVIOR_WEIGHTS_DIR") or SHARED_ASSETS / "weights")


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    """The folder with yolov8n.pt; the test fails (not skips) with a clear message when absent."""
    folder = _weights_dir()
    if not (folder / "yolov8n.pt").is_file():
        pytest.fail(
            f"yolov8n.pt not found in {folder}: set BEHAVIOR_WEIGHTS_DIR to a folder holding the offline weights "
            "(for example ../shared/assets/weights)",
            pytrace=False,
        )
    os.environ["BEHAVIOR_WEIGHTS_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def surv_fight() -> Path:
    """The real surveillance fight dataset from ../shared/assets."""
    folder = SHARED_ASSETS / "datasets" / "surv_fight"
    if not (folder / "fight").is_dir():
        pytest.fail(f"real dataset not found at {folder}: these tests need ../shared/assets beside the repo",
                    pytrace=False)
    return folder


@pytest.fixture(scope="session")
def sample_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated dataset: walking and standing, two short clips each."""
    from tools.synthetic import ClipSpec, write_clip

    root = tmp_path_factory.mktemp("clips")
    for c, motion in enumerate(("walking", "standing")):
        for i in range(2):
            spec = ClipSpec(motion=motion, persons=1 + i, width=320, height=240, fps=20.0, seconds=1.5,
                            seed=200 + 2 * c + i)
            write_clip(root / motion / f"{motion}_{i}.mp4", spec)
    return root


@pytest.fixture(scope="session")
def objects_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class folder with one clip of MOT17-09's street (people, a handbag, chairs): its four frames in ../shared/
    assets, each shown three times at 10 fps, at 960x540."""
    import cv2

    sequence = SHARED_ASSETS / "mot" / "MOT17-mini" / "train" / "MOT17-09-FRCNN" / "img1"
    images = [cv2.imread(str(sequence / f"{k:06d}.jpg")) for k in range(1, 5)]
    if any(image is None for image in images):
        pytest.fail(f"MOT17-mini frames not found in {sequence}: these tests need ../shared/assets beside the repo",
                    pytrace=False)
    clips = tmp_path_factory.mktemp("objects_clip")
    path = clips / "walking" / "street.mp4"
    path.parent.mkdir()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (960, 540))
    for image in images:
        for _ in range(3):
            writer.write(cv2.resize(image, (960, 540), interpolation=cv2.INTER_AREA))
    writer.release()
    return clips


@pytest.fixture(scope="session")
def small_sequences(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Real 32x32 JPEG crops of two classes (with tracks.csv) and their sequences: stage 3's input."""
    from behavior.group.sequences import group_sequences, write_sequence_set
    from behavior.settings import SequenceSettings
    from tools.synthetic import write_frames_tree

    root = tmp_path_factory.mktemp("small")
    write_frames_tree(root / "frames", videos_per_class=6, persons_per_video=1, frames_per_person=12,
                      image_size=32)
    result = group_sequences(root / "frames", SequenceSettings(length=4, stride=4, min_frames=4), seed=0)
    write_sequence_set(result, root / "sequences" / "sequences.csv")
    return root / "frames", root / "sequences" / "sequences.csv"


@pytest.fixture
def train_cfg(small_sequences, weights_dir, tmp_path):
    """A function giving config.py's values, shrunk for a few-second training run on the small sequences."""
    import config
    from behavior import cli

    frames, sequences = small_sequences

    def make(**overrides) -> dict:
        cfg = cli.config_constants(config)
        cfg.update(FRAMES_DIR=str(frames), SEQUENCES_FILE=str(sequences), FEATURES_DIR=str(tmp_path / "features"),
                   MODEL_DIR=str(tmp_path / "model"), LSTM_HIDDEN_DIM=16, LSTM_NUM_LAYERS=1, HEAD_HIDDEN_DIM=8,
                   BATCH_SIZE=8, NUM_EPOCHS=3, LEARNING_RATE=1e-2, NUM_WORKERS=0, FEATURE_BATCH_SIZE=16,
                   EARLY_STOPPING_PATIENCE=5, INPUTS=("appearance", "motion"),  # the CNN path, unless a test says
                   CNN_INPUT="rgb")  # the small sequences' classes differ in brightness, which motion images lose
        cfg.update(overrides)
        return cfg

    return make


@pytest.fixture(scope="session")
def tiny_checkpoint(small_sequences, weights_dir, tmp_path_factory) -> Path:
    """A model trained for two epochs on the small sequences (32x32 crops, 4 frames): for stage 4 plumbing."""
    import config
    from behavior import cli
    from behavior.train import training

    frames, sequences = small_sequences
    out = tmp_path_factory.mktemp("tiny")
    cfg = cli.config_constants(config)
    cfg.update(FRAMES_DIR=str(frames), SEQUENCES_FILE=str(sequences), FEATURES_DIR=str(out / "features"),
               MODEL_DIR=str(out / "model"), LSTM_HIDDEN_DIM=16, LSTM_NUM_LAYERS=1, HEAD_HIDDEN_DIM=8,
               BATCH_SIZE=8, NUM_EPOCHS=2, LEARNING_RATE=1e-2, NUM_WORKERS=0, MIN_SEQUENCE_FRAMES=2,
               INPUTS=("appearance", "motion"), CNN_INPUT="rgb")
    training.train(cfg, progress=False)
    return out / "model" / checkpoint.BEST


def run_on_small_disk(argv: list[str], mount: Path, size_kb: int, read_only: bool = False,
                      timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``argv`` with a fresh ``size_kb`` tmpfs (read-only if asked) mounted at ``mount``: a real full or
    read-only disk, in a private mount namespace (``unshare``), so nothing outside the test is affected."""
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed to give the disk-fault tests a real full/read-only disk",
                    pytrace=False)
    mount.mkdir(parents=True, exist_ok=True)
    options = f"size={size_kb}k" + (",ro" if read_only else "")
    script = f'mount -t tmpfs -o {options} tmpfs "$1" || exit 99; shift; exec "$@"'
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", str(mount),
                           *argv], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode == 99 or "unshare: " in proc.stderr:
        pytest.fail(f"cannot mount a test disk here (user namespaces disabled?): {proc.stderr.strip()}",
                    pytrace=False)
    return proc


def one_error_line(proc: subprocess.CompletedProcess, script: str) -> str:
    """The single error line a script printed (log lines aside); fails when there is a traceback or more."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines()
             if line.strip() and not any(f" {level} " in line for level in ("INFO", "WARNING", "DEBUG"))]
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: "), proc.stderr
    return lines[0]


def ctrl_c_on_call(real, n: int):
    """``real``, except that its ``n``-th call raises KeyboardInterrupt, as Ctrl-C would at that moment."""
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    return wrapper


@pytest.fixture
def person_log(monkeypatch) -> list:
    """Every person a prediction sees, as (frame, track, features, stream vector, keypoints), recorded by wrapping
    the per-frame feature step (``PersonFeatures.compute``)."""
    from behavior.predict.person_features import PersonFeatures

    log: list = []
    real = PersonFeatures.compute

    def compute(self, frame, dets, tracks, objects=()):
        found = real(self, frame, dets, tracks, objects)
        log.extend(zip([frame.index] * len(dets), [d.track_id for d in dets], found.features, found.vectors,
                       found.keypoints, strict=True))
        return found

    monkeypatch.setattr(PersonFeatures, "compute", compute)
    return log
