"""Compute settings shared by every stage: which device to run on and how many CPU threads."""

from __future__ import annotations

import importlib.metadata
import os
import platform

import torch


def resolve_device(device: str = "auto") -> str:
    """Turn ``"auto"`` into ``"cuda:0"`` when a GPU is visible, else ``"cpu"``; pass others through."""
    if device in ("", "auto"):
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device.isdigit():
        return f"cuda:{device}"
    return device


def set_threads(threads: int = 0) -> int:
    """Set torch's CPU thread count (0 = all cores) and return it.

    Ultralytics lowers it to one thread on small machines when it first selects a device,
    so callers restore it after the detector's first run.
    """
    n = threads if threads > 0 else (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape results, as plain strings (for meta files)."""
    import behavior

    out = {"behavior": behavior.__version__, "python": platform.python_version()}
    for package in ("torch", "torchvision", "ultralytics", "opencv-python"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def cpu_precision(choice: str = "auto") -> str:
    """Resolve CNN_PRECISION for the CPU: "auto" is bfloat16 where the CPU has native bfloat16 units."""
    if choice in ("float32", "bfloat16"):
        return choice
    if choice != "auto":
        from behavior.errors import InputError

        raise InputError(f"CNN_PRECISION must be auto, float32 or bfloat16, got {choice!r}")
    native = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or getattr(
        torch.cpu, "_is_amx_tile_supported", lambda: False)()
    return "bfloat16" if native else "float32"
