"""The baseline every speed benchmark compares against: the bare Ultralytics track loop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2

from behavior.runtime import hardware
from behavior.settings import DetectorSettings


def bare_track_pass(model, paths: list[Path], d: DetectorSettings) -> int:
    """What a user would write with the library alone: decode every frame, ``YOLO.track(persist=True)``, keep nothing.

    Returns the number of frames processed. The tracker is reset for each video, as the project does.
    """
    frames = 0
    for path in paths:
        if getattr(model, "predictor", None) is not None and getattr(model.predictor, "trackers", None):
            model.predictor.trackers[0].reset()
        cap = cv2.VideoCapture(str(path))
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            model.track(frame, persist=True, classes=[0], conf=d.conf, iou=d.iou, imgsz=d.imgsz,
                        tracker=d.tracker_config, device=hardware.resolve_device(d.device), verbose=False)
            frames += 1
        cap.release()
    return frames


@dataclass(frozen=True)
class Run:
    """One way of running the detector: backend, OpenVINO precision and frames per detector call (DETECT_BATCH).

    Example:
        >>> str(Run.parse("openvino:bfloat16:4")), str(Run.parse("torch", batch=1))
        ('openvino bfloat16 batch 4', 'torch batch 1')
    """

    backend: str
    precision: str
    batch: int

    @classmethod
    def parse(cls, text: str, precision: str = "float32", batch: int = 1) -> Run:
        """``BACKEND[:PRECISION[:BATCH]]``; the parts left out take the given defaults."""
        parts = text.split(":")
        return cls(parts[0], parts[1] if len(parts) > 1 and parts[1] else precision,
                   int(parts[2]) if len(parts) > 2 else batch)

    def __str__(self) -> str:
        precision = f" {self.precision}" if self.backend == "openvino" else ""
        return f"{self.backend}{precision} batch {self.batch}"
