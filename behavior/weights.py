"""The one place where model weights are found.

Search order: an explicit path, then ``$BEHAVIOR_WEIGHTS_DIR``, then the project's ``models/``,
then the owning library's own download (which works on a connected machine; set
``BEHAVIOR_OFFLINE=1`` to skip it). When nothing works, one error names every place searched.

Example:
    >>> resolve_weights("yolov8n.pt")  # doctest: +SKIP
    PosixPath('/data/weights/yolov8n.pt')
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from behavior.compat import PROJECT_ROOT
from behavior.errors import InputError

log = logging.getLogger(__name__)

WEIGHTS_DIR_ENV = "BEHAVIOR_WEIGHTS_DIR"
OFFLINE_ENV = "BEHAVIOR_OFFLINE"
MODELS_DIR = PROJECT_ROOT / "models"


class WeightsNotFoundError(InputError, FileNotFoundError):
    """No weights file was found in any of the searched places."""


def _download_ultralytics(name: str, folder: Path) -> Path:
    """Fetch an official Ultralytics checkpoint into ``folder``."""
    from ultralytics.utils.downloads import attempt_download_asset

    folder.mkdir(parents=True, exist_ok=True)
    return Path(attempt_download_asset(str(folder / name)))


def _download_mobilenet_v2(name: str, folder: Path) -> Path:
    """Fetch torchvision's ImageNet MobileNetV2 state_dict into ``folder`` under ``name``."""
    import torch
    from torchvision.models import MobileNet_V2_Weights

    folder.mkdir(parents=True, exist_ok=True)
    state = torch.hub.load_state_dict_from_url(MobileNet_V2_Weights.IMAGENET1K_V1.url, progress=False)
    path = folder / name
    torch.save(state, path)
    return path


def downloader_for(name: str) -> Callable[[str, Path], Path] | None:
    """Return the library download function that knows ``name``, or None."""
    if name.startswith("yolo") and name.endswith(".pt"):
        return _download_ultralytics
    if name.startswith("mobilenet_v2") and name.endswith(".pth"):
        return _download_mobilenet_v2
    return None


def resolve_weights(spec: str | os.PathLike, models_dir: Path = MODELS_DIR) -> Path:
    """Return an existing weights file for ``spec`` (a file name or a path), searching in order.

    Raises:
        WeightsNotFoundError: with every place searched, when no file exists and no download worked.
    """
    spec_path = Path(spec).expanduser()
    name = spec_path.name
    searched: list[str] = []

    if spec_path.is_file():
        return spec_path.resolve()
    if spec_path.is_absolute() or len(spec_path.parts) > 1:
        searched.append(f"{spec_path} (explicit path)")

    env_dir = os.environ.get(WEIGHTS_DIR_ENV)
    if env_dir:
        candidate = Path(env_dir).expanduser() / name
        if candidate.is_file():
            return candidate.resolve()
        searched.append(f"{candidate} (${WEIGHTS_DIR_ENV})")
    else:
        searched.append(f"${WEIGHTS_DIR_ENV} (not set)")

    candidate = models_dir / name
    if candidate.is_file():
        return candidate.resolve()
    searched.append(str(candidate))

    download = downloader_for(name)
    if download is None:
        searched.append("download (no library publishes this name)")
    elif os.environ.get(OFFLINE_ENV, "").lower() in {"1", "true", "yes"}:
        searched.append(f"download (skipped: {OFFLINE_ENV} is set)")
    else:
        try:
            path = download(name, models_dir)
            if Path(path).is_file():
                log.info("downloaded %s to %s", name, path)
                return Path(path).resolve()
            searched.append("download (nothing was saved)")
        except Exception as exc:  # any network or library failure is reported with the rest
            searched.append(f"download ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")

    raise WeightsNotFoundError(f"weights '{name}' not found; searched: " + "; ".join(searched))
