"""Compute settings shared by every stage: which device to run on and how many CPU threads.

torch is imported by the functions that need it, not with this module: the settings import it, and a script's
``--help`` answers before torch loads.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform

from behavior import __version__
from behavior.errors import InputError


def resolve_device(device: str = "auto") -> str:
    """Turn ``"auto"`` into ``"cuda:0"`` when a GPU is visible, else ``"cpu"``; check any other choice.

    Raises InputError for a device that does not exist here (``cuda`` without a GPU, ``banana``),
    so a run fails at start-up rather than at its first tensor.
    """
    import torch

    if device in ("", "auto"):
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device.isdigit():
        device = f"cuda:{device}"
    if device == "cpu":
        return device
    if device == "cuda" or device.startswith("cuda:") and device[5:].isdigit():
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise InputError(f"DEVICE {device!r}: no CUDA GPU is visible to torch {torch.__version__} ({build}); "
                             "use DEVICE auto or cpu")
        index = int(device[5:] or 0) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise InputError(f"DEVICE {device!r}: only {torch.cuda.device_count()} CUDA GPU(s) are visible")
        return device
    if device == "mps":
        if not torch.backends.mps.is_available():
            raise InputError("DEVICE 'mps': Apple's Metal backend is not available here; use DEVICE auto or cpu")
        return device
    raise InputError(f"DEVICE must be auto, cpu, cuda, cuda:N or a GPU number, got {device!r}")


def set_threads(threads: int = 0) -> int:
    """Set torch's CPU thread count (0 = all cores) and return it.

    Ultralytics lowers it to one thread on small machines when it first selects a device,
    so callers restore it after the detector's first run.
    """
    import torch

    n = threads if threads > 0 else (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape results, as plain strings (for meta files)."""
    out = {"behavior": __version__, "python": platform.python_version()}
    for package in ("torch", "torchvision", "ultralytics", "opencv-python"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def cpu_precision(choice: str = "auto") -> str:
    """Resolve INFERENCE_PRECISION for the CPU: "auto" is bfloat16 where the CPU has native bfloat16 units."""
    if choice in ("float32", "bfloat16"):
        return choice
    if choice != "auto":
        raise InputError(f"INFERENCE_PRECISION must be auto, float32 or bfloat16, got {choice!r}")
    import torch

    native = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or getattr(
        torch.cpu, "_is_amx_tile_supported", lambda: False)()
    return "bfloat16" if native else "float32"
