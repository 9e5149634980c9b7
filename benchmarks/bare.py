"""The baseline every speed benchmark compares against: the bare Ultralytics track loop."""

from __future__ import annotations

from pathlib import Path

import cv2

from behavior import runtime
from behavior.tracking import DetectorSettings


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
                        tracker=d.tracker_config, device=runtime.resolve_device(d.device), verbose=False)
            frames += 1
        cap.release()
    return frames
