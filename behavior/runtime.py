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
