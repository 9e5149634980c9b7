"""Shared fixtures: offline weights, the real assets, and small generated videos."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # config.py and the top-level scripts

import behavior  # noqa: E402,F401  (applies the offline environment first)

SHARED_ASSETS = ROOT.parent / "shared" / "assets"


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
    from behavior.synthetic import ClipSpec, write_clip

    root = tmp_path_factory.mktemp("clips")
    for c, motion in enumerate(("walking", "standing")):
        for i in range(2):
            spec = ClipSpec(motion=motion, persons=1 + i, width=320, height=240, fps=20.0, seconds=1.5,
                            seed=200 + 2 * c + i)
            write_clip(root / motion / f"{motion}_{i}.mp4", spec)
    return root
