"""Environment fixes applied before torchvision or Ultralytics is imported.

Programs call ``setup()`` once, first thing (the scripts through ``cli.run``); it does two things:

1. Ultralytics is made offline and quiet: ``YOLO_OFFLINE``, ``YOLO_AUTOINSTALL=false`` and a
   project-local ``YOLO_CONFIG_DIR``, so it never probes the network or writes to ``~/.config``.
2. When torchvision's compiled ops cannot load (a CUDA torchvision wheel beside a CPU torch makes
   ``import torchvision`` fail with "operator torchvision::nms does not exist"), a pure-torch NMS
   is registered as ``torchvision::nms`` so that torchvision and Ultralytics import and track.
   When the compiled ops do load, nothing is registered and ``NMS_FALLBACK_ACTIVE`` stays False.

torch is imported by the functions that need it, not with this module: ``configure_offline_environment`` runs
before a script parses its arguments, ``setup`` after (``cli.parse``), so that ``--help`` answers before torch loads.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NMS_FALLBACK_ACTIVE = False
_OPS_LIBRARY: Any = None  # a torch.library.Library  # kept alive: dropping it unregisters the ops


def configure_offline_environment() -> None:
    """Keep Ultralytics offline and its settings inside the project, unless the user chose otherwise."""
    # Ultralytics 8.3 only accepts "true" here (8.4 also takes "1"); both mean offline.
    os.environ.setdefault("YOLO_OFFLINE", "true")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(PROJECT_ROOT / ".ultralytics"))
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # corrupt videos are reported by us, once
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")  # so are cameras and streams that cannot be opened
    # Ultralytics pins OMP to 1 thread at import when unset; say "all cores" first.
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))


def nms_reference(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression in plain torch/numpy, with torchvision's semantics.

    Boxes are ``(N, 4)`` in ``x1, y1, x2, y2``; returns the kept indices (int64) sorted by
    decreasing score. A box is suppressed when its IoU with a kept box is *greater* than the
    threshold, exactly as ``torchvision.ops.nms``.

    Example:
        >>> import torch
        >>> b = torch.tensor([[0., 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])
        >>> nms_reference(b, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist()
        [0, 2]
    """
    import numpy as np
    import torch

    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order].detach().to("cpu", torch.float64).numpy()
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    areas = (x2 - x1).clip(min=0) * (y2 - y1).clip(min=0)
    alive = np.ones(len(b), dtype=bool)
    keep = []
    for i in range(len(b)):
        if not alive[i]:
            continue
        keep.append(i)
        rest = slice(i + 1, None)
        w = (np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])).clip(min=0)
        h = (np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])).clip(min=0)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        alive[rest] &= iou <= iou_threshold
    return order[torch.as_tensor(keep, dtype=torch.long, device=order.device)]


def _torchvision_ops_load() -> bool:
    """Try to load torchvision's compiled ops without importing torchvision itself."""
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    for folder in spec.submodule_search_locations:
        for lib in sorted(Path(folder).glob("_C*.so")) + sorted(Path(folder).glob("_C*.pyd")):
            try:
                torch.ops.load_library(str(lib))
                return True
            except (OSError, ImportError, RuntimeError):
                return False
    return False


def _register_nms_fallback() -> None:
    """Define ``torchvision::nms`` (and ``qnms``) as pure-torch ops so torchvision can import."""
    import torch

    global _OPS_LIBRARY, NMS_FALLBACK_ACTIVE
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    for op in ("nms", "qnms"):
        lib.impl(op, nms_reference, "CompositeExplicitAutograd")
    _OPS_LIBRARY = lib
    NMS_FALLBACK_ACTIVE = True


def _route_torchvision_nms() -> None:
    """Point ``torchvision.ops.nms`` at the registered op: torchvision refuses to call ops it did not load."""
    import torch
    import torchvision.ops
    import torchvision.ops.boxes

    def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
        return torch.ops.torchvision.nms(boxes, scores, iou_threshold)

    nms.__doc__ = torchvision.ops.boxes.nms.__doc__
    torchvision.ops.nms = nms
    torchvision.ops.boxes.nms = nms  # batched_nms looks it up here


def setup() -> None:
    """Apply every fix; safe to call more than once."""
    import torch

    configure_offline_environment()
    if NMS_FALLBACK_ACTIVE or hasattr(torch.ops.torchvision, "nms") or _torchvision_ops_load():
        return
    _register_nms_fallback()
    _route_torchvision_nms()
    log.debug("torchvision compiled ops unavailable; using the pure-torch NMS fallback")
