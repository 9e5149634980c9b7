"""Person detection (YOLOv8) and tracking (ByteTrack), shared by extraction and prediction.

``PersonTracker`` runs the Ultralytics detector on one frame at a time and feeds its person
boxes to an Ultralytics ``BYTETracker``, exactly what ``YOLO.track(persist=True)`` does, but
with the tracker owned here: ``reset()`` starts a fresh one for every video, so track ids
never leak from one video into the next.

Example:
    >>> tracker = PersonTracker(DetectorSettings(weights="yolov8n.pt"))  # doctest: +SKIP
    >>> tracker.reset(fps=15)                                           # doctest: +SKIP
    >>> tracker.update(frame)                                           # doctest: +SKIP
    [Detection(track_id=1, box=(49.0, 399.0, 246.0, 903.0), conf=0.87)]
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from behavior.errors import InputError
from behavior.io.files import file_sha256
from behavior.io.frames import SceneObject
from behavior.io.weights import resolve_weights
from behavior.runtime import backends, hardware
from behavior.runtime.backends import load_yolo_backend
from behavior.settings import DetectorSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

PERSON_CLASS = 0  # COCO "person"
WHOLE_FRAME_TRACK = 0  # track id and person number of the whole frame where nobody is tracked (ByteTrack counts from 1)


@dataclass(frozen=True)
class Detection:
    """One tracked person in one frame; ``box`` is ``x1, y1, x2, y2`` in source pixels."""

    track_id: int
    box: tuple[float, float, float, float]
    conf: float


def load_tracker_config(spec: str) -> dict[str, Any]:
    """Load an Ultralytics tracker YAML by name (``bytetrack.yaml``) or path."""
    from ultralytics.utils import YAML
    from ultralytics.utils.checks import check_yaml

    try:
        path = check_yaml(spec)
    except (FileNotFoundError, AssertionError) as exc:
        raise InputError(f"tracker config not found: {spec}") from exc
    cfg = dict(YAML.load(path))
    if cfg.get("tracker_type") != "bytetrack":
        raise InputError(f"tracker config {spec} must have tracker_type: bytetrack, got {cfg.get('tracker_type')!r}")
    return cfg


def describe_detector(settings: DetectorSettings) -> dict[str, Any]:
    """The detector and tracker identity recorded with every result (no model is loaded)."""
    path = resolve_weights(settings.weights)
    return {
        "detector": {"weights": path.name, "sha256": file_sha256(str(path)), "conf": settings.conf,
                     "iou": settings.iou, "imgsz": settings.imgsz, "classes": [PERSON_CLASS],
                     **({"object_classes": list(settings.object_classes)} if settings.object_classes else {})},
        "tracker": {"config": Path(settings.tracker_config).name, **load_tracker_config(settings.tracker_config)},
    }


def _batched(items: Iterable[T], n: int) -> Iterator[tuple[T, ...]]:
    """Consecutive tuples of ``n`` items (the last may be shorter): ``itertools.batched`` before Python 3.12."""
    it = iter(items)
    while chunk := tuple(itertools.islice(it, n)):
        yield chunk


def _now(fn: Callable[..., Any], *args: Any) -> cf.Future:
    """``fn(*args)`` run here and now, as a finished future (``pool.submit``'s shape without a thread)."""
    future: cf.Future = cf.Future()
    future.set_result(fn(*args))
    return future


class PersonTracker:
    """YOLOv8 person detector plus ByteTrack; load once per process, ``reset()`` per video.

    ``batch`` > 1 (stage 1, where latency does not matter): ``track`` detects that many frames in one
    call, side by side on the cores, then tracks them one by one, so the tracks are those of ``batch`` 1.
    """

    def __init__(self, settings: DetectorSettings) -> None:
        from types import SimpleNamespace

        self.settings = settings
        self.batch = settings.batch
        self.device = hardware.resolve_device(settings.device)
        self.weights_path = resolve_weights(settings.weights)
        self.model, self.backend = load_yolo_backend(
            self.weights_path, "detect", settings.imgsz, backends.resolve_backend(settings.backend, self.device),
            what="detector", precision=settings.precision, throughput=self.batch > 1)
        self._tracker_args = SimpleNamespace(**load_tracker_config(settings.tracker_config))
        self._tracker = None
        self.classes = [PERSON_CLASS, *self._class_ids(settings.object_classes)]
        # The first predict selects the device, and Ultralytics then drops torch to one CPU thread.
        self.detect(np.zeros((64, 64, 3), dtype=np.uint8))
        threads = hardware.set_threads(settings.threads)
        log.info("detector %s on %s, %s (%d CPU threads)", self.weights_path.name, self.device, self.backend, threads)

    def reset(self, fps: float = 30.0) -> None:
        """Start a new ByteTrack for a new video; ids restart at 1. ``fps`` is the rate frames arrive at."""
        from ultralytics.trackers.byte_tracker import BYTETracker

        self._tracker = BYTETracker(self._tracker_args, frame_rate=max(int(round(fps)), 1))

    @property
    def lost_after(self) -> int:
        """Frames a lost track is kept by ByteTrack before its id is dropped for good."""
        return int(self._tracker.max_time_lost) if self._tracker is not None else 30

    def _class_ids(self, names: Sequence[str]) -> list[int]:
        """The detector's class ids of ``names``; InputError naming those it does not know."""
        ids = {name: k for k, name in self.model.names.items()}
        unknown = [n for n in names if n not in ids]
        if unknown:
            raise InputError(f"object classes {', '.join(unknown)} are not classes of the detector "
                             f"{self.weights_path.name} ({', '.join(ids)})")
        return [ids[n] for n in names]

    def detect(self, frame: np.ndarray) -> Any:
        """Run the detector alone on a BGR frame; returns Ultralytics ``Boxes`` on the CPU."""
        return self.detect_many([frame])[0]

    def detect_many(self, frames: list[np.ndarray]) -> list[Any]:
        """The detector alone on BGR frames in one call; each frame's Ultralytics ``Boxes`` on the CPU."""
        s = self.settings
        results = self.model.predict(
            frames, classes=self.classes, conf=s.conf, iou=s.iou, imgsz=s.imgsz,
            device=self.device, half=self.device.startswith("cuda"), verbose=False,
        )
        return [r.boxes.cpu().numpy() for r in results]

    def update(self, frame: np.ndarray, boxes: Any = None) -> list[Detection]:
        """Track the persons in the next frame of the current video (detecting them unless ``boxes`` are given)."""
        if self._tracker is None:
            self.reset()
        boxes = self.detect(frame) if boxes is None else boxes
        if len(self.classes) > 1:  # ByteTrack follows the people only
            boxes = boxes[boxes.cls == PERSON_CLASS]
        tracks = self._tracker.update(boxes, frame)
        return [
            Detection(int(t[4]), (float(t[0]), float(t[1]), float(t[2]), float(t[3])), float(t[5]))
            for t in tracks
        ]

    def objects(self, boxes: Any) -> list[SceneObject]:
        """The detections of ``object_classes`` among one frame's boxes (none when no object class is kept)."""
        if len(self.classes) == 1:
            return []
        names = self.model.names
        return [SceneObject(names[int(c)], (float(b[0]), float(b[1]), float(b[2]), float(b[3])), float(p))
                for b, c, p in zip(boxes.xyxy, boxes.cls, boxes.conf, strict=True) if int(c) != PERSON_CLASS]

    def track(self, frames: Iterable[T], image: Callable[[T], np.ndarray]
              ) -> Iterator[tuple[T, list[Detection], list[SceneObject]]]:
        """Each of ``frames`` with its tracked persons and (with ``object_classes``) the objects the same detector
        call found, in order; ``image`` gives a frame's BGR pixels.

        Frames are detected ``batch`` at a time and tracked one by one: the same tracks as ``update`` per frame.
        On OpenVINO and ONNX Runtime the detector works on the next batch (on a worker thread; the runtimes release
        the GIL) while the caller tracks and crops this one, so the cores do not wait for Python; torch's own
        threads fight a second caller, so torch detects in turn (measured: benchmarks/extract_speed.py).
        """
        chunks = _batched(frames, self.batch)
        with cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="detect") as pool:
            submit = _now if self.backend == "torch" else pool.submit
            chunk = next(chunks, ())
            pending = submit(self.detect_many, [image(f) for f in chunk]) if chunk else None
            while pending is not None:
                following = next(chunks, ())  # decoded while the detector works on this batch
                boxes = pending.result()
                pending = submit(self.detect_many, [image(f) for f in following]) if following else None
                for frame, found in zip(chunk, boxes, strict=True):
                    yield frame, self.update(image(frame), found), self.objects(found)
                chunk = following
