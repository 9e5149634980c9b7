"""Each tracked person's keypoints: YOLOv8-pose on their crop, and the cache that computes them once.

The detector and ByteTrack decide who is where (the pose model alone misses small people); the
pose model then runs on each person's crop, the very image stage 1 saved (prediction makes it the
same way: ``person_features.training_crop``), batched over the crops at hand. Of the poses found in a
crop, the one whose box best overlaps the tracked box is that person's; none overlapping enough
means no keypoints, stored as NaN, never as zeros. Keypoints are kept in source-pixel coordinates.

Running on the saved crops means that extractions made before the pose stream existed get keypoints
without re-running detection or decoding a video: ``KeypointCache`` fills them in at training time,
under ``FEATURES_DIR/pose-<key>/``, keyed like the feature cache (weights, input size, version).

Example:
    >>> estimator = PoseEstimator(PoseSettings("yolov8n-pose.pt"))         # doctest: +SKIP
    >>> estimator.estimate([crop_rgb], [(40.0, 20.0, 180.0, 210.0)])[0].shape  # doctest: +SKIP
    (17, 3)
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from behavior import report
from behavior.detect.crops import crop_region
from behavior.errors import InputError
from behavior.features.appearance import FolderCache, decoded_batches
from behavior.features.people import KEYPOINTS
from behavior.io import files
from behavior.io.files import file_sha256
from behavior.io.frames import read_tracks
from behavior.io.weights import resolve_weights
from behavior.runtime import backends, hardware
from behavior.runtime.backends import load_yolo_backend
from behavior.settings import uses

log = logging.getLogger(__name__)

CACHE_VERSION = 1
MIN_MATCH_IOU = 0.3  # a pose whose box overlaps the tracked box less than this is someone else's
POSE_CONF = 0.25  # the pose model's own detection threshold
MISSING = np.full((KEYPOINTS, 3), np.nan, np.float32)


@dataclass(frozen=True)
class PoseSettings:
    """The pose model and how it runs."""

    weights: str = uses("POSE_WEIGHTS")
    imgsz: int = 224  # the pose model's input size: the crops' (ModelConfig.pose_imgsz)
    device: str = uses("DEVICE")
    threads: int = uses("TORCH_THREADS")
    backend: str = uses("INFERENCE_BACKEND")
    precision: str = uses("INFERENCE_PRECISION")  # "auto": bfloat16 where the CPU computes it natively

    @property
    def runs_on(self) -> str:
        """The backend the pose model is asked to run on here ("auto" resolved for the device)."""
        return backends.resolve_backend(self.backend, hardware.resolve_device(self.device))

    def key(self) -> str:
        """A short key naming everything that decides a crop's keypoints (the backend too: never mixed)."""
        path = resolve_weights(self.weights)
        text = "|".join(map(str, (CACHE_VERSION, file_sha256(str(path)), self.imgsz, MIN_MATCH_IOU, POSE_CONF)))
        if self.runs_on != "torch":  # torch's keys stay those of the caches made before the backends
            text += f"|{self.runs_on}|{backends.runtime_version(self.runs_on)}|{hardware.cpu_precision(self.precision)}"
        return "pose-" + hashlib.sha256(text.encode()).hexdigest()[:16]

    def sha256(self) -> str:
        """The resolved weights' sha256, recorded in checkpoints."""
        return file_sha256(str(resolve_weights(self.weights)))


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``x1, y1, x2, y2`` boxes.

    Example:
        >>> box_iou((0, 0, 2, 2), (1, 0, 3, 2))
        0.3333333333333333
    """
    w = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class CropGeometry:
    """Where a crop of ``size`` = (width, height) lies in the source frame: its region's origin and scale."""

    x0: float
    y0: float
    scale_x: float  # crop pixels per source pixel
    scale_y: float

    @classmethod
    def of(cls, box: Sequence[float], margin: float, size: tuple[int, int]) -> CropGeometry:
        """The geometry ``crops.crop_person`` gives the crop of ``box``."""
        x0, y0, x1, y1 = crop_region(tuple(box), margin, size[0] / size[1])
        return cls(x0, y0, size[0] / (x1 - x0), size[1] / (y1 - y0))

    def to_crop(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        """A source-pixel box in crop pixels."""
        x1, y1, x2, y2 = box
        return ((x1 - self.x0) * self.scale_x, (y1 - self.y0) * self.scale_y,
                (x2 - self.x0) * self.scale_x, (y2 - self.y0) * self.scale_y)

    def to_source(self, keypoints: np.ndarray) -> np.ndarray:
        """Keypoints (17, 3) in crop pixels -> source pixels (confidences kept)."""
        out = keypoints.astype(np.float32, copy=True)
        out[:, 0] = keypoints[:, 0] / self.scale_x + self.x0
        out[:, 1] = keypoints[:, 1] / self.scale_y + self.y0
        return out


def pick_pose(boxes: np.ndarray, keypoints: np.ndarray, expected: Sequence[float]) -> np.ndarray:
    """The keypoints (17, 3) of the pose whose box best matches ``expected`` (crop pixels), or NaN when none does.

    Example:
        >>> kp = np.ones((2, 17, 3), np.float32); kp[1] *= 2
        >>> float(pick_pose(np.array([[0, 0, 5, 5], [10, 10, 50, 90]]), kp, (12, 8, 48, 92))[0, 0])
        2.0
    """
    if len(boxes) == 0:
        return MISSING.copy()
    ious = [box_iou(b, expected) for b in boxes]
    best = int(np.argmax(ious))
    return keypoints[best].astype(np.float32) if ious[best] >= MIN_MATCH_IOU else MISSING.copy()


class PoseEstimator:
    """YOLOv8-pose on person crops, loaded once; ``estimate`` takes a batch of crops."""

    def __init__(self, settings: PoseSettings) -> None:
        self.settings = settings
        self.device = hardware.resolve_device(settings.device)
        self.model, self.backend = load_yolo_backend(settings.weights, "pose", settings.imgsz, settings.runs_on,
                                                     what="pose model", precision=settings.precision)
        if getattr(self.model, "task", "pose") != "pose":
            raise InputError(f"POSE_WEIGHTS {settings.weights} is a {self.model.task} model, not a pose model")
        self._predict([np.zeros((settings.imgsz, settings.imgsz, 3), np.uint8)])  # selects the device
        hardware.set_threads(settings.threads)  # Ultralytics drops torch to one thread at first use

    def _predict(self, images_bgr: list[np.ndarray]) -> list[Any]:
        return self.model.predict(images_bgr, imgsz=self.settings.imgsz, conf=POSE_CONF, device=self.device,
                                  half=self.device.startswith("cuda"), verbose=False)

    def estimate(self, crops_rgb: Sequence[np.ndarray], expected: Sequence[Sequence[float]]) -> list[np.ndarray]:
        """Keypoints (17, 3: x, y in crop pixels, confidence) of the person expected at each crop's box.

        ``crops_rgb`` are RGB uint8 crops, as the feature cache and prediction hold them; ``expected`` is
        each tracked box in that crop's pixels.
        """
        if not len(crops_rgb):
            return []
        results = self._predict([np.ascontiguousarray(c[..., ::-1]) for c in crops_rgb])
        out = []
        for result, box in zip(results, expected, strict=True):
            if result.keypoints is None or len(result.boxes) == 0:
                out.append(MISSING.copy())
                continue
            xy = result.keypoints.xy.cpu().numpy()
            conf = result.keypoints.conf  # None only for models trained without keypoint visibility
            conf = conf.cpu().numpy() if conf is not None else np.ones(xy.shape[:2], np.float32)
            points = np.concatenate([xy, conf[..., None]], axis=-1)
            out.append(pick_pose(result.boxes.xyxy.cpu().numpy(), points, box))
        return out

    def estimate_source(self, crops_rgb: Sequence[np.ndarray], boxes: Sequence[Sequence[float]],
                        geometry: Sequence[CropGeometry]) -> list[np.ndarray]:
        """Keypoints in source pixels of the persons tracked at ``boxes``, from their crops (cut as ``geometry``)."""
        found = self.estimate(crops_rgb, [g.to_crop(b) for g, b in zip(geometry, boxes, strict=True)])
        return [g.to_source(k) for g, k in zip(geometry, found, strict=True)]


def crop_boxes(frames_dir: Path, video: str) -> tuple[dict[str, tuple[float, ...]], float, tuple[int, int]]:
    """Each crop's tracked box (by crop path), and the crop margin and size of one extracted video."""
    meta = files.read_json(Path(frames_dir) / video / "meta.json")
    if not isinstance(meta, dict):
        raise InputError(f"meta.json missing or unreadable in {Path(frames_dir) / video}: re-extract this video")
    extraction = meta.get("settings", {})
    if not extraction.get("person_tracking", True):
        raise InputError(f"{video} was extracted in whole-frame mode: pose, interaction and reach need tracked people")
    margin = float(extraction.get("crop_margin", 0.15))
    size = (int(extraction.get("frame_width", 224)), int(extraction.get("frame_height", 224)))
    boxes = {}
    for row in read_tracks(Path(frames_dir) / video):
        boxes[f"{video}/person_{row['person']}/frame_{int(row['frame']):06d}.jpg"] = tuple(
            float(row[k]) for k in ("x1", "y1", "x2", "y2"))
    return boxes, margin, size


@dataclass
class KeypointStore:
    """Keypoints (17, 3) in source pixels of a set of crops, by crop path (NaN rows: not seen)."""

    keypoints: dict[str, np.ndarray]
    hits: int = 0  # person folders found in the cache
    misses: int = 0  # person folders computed now
    computed: int = 0  # crops run through the pose model now
    with_pose: int = 0  # crops whose person got keypoints

    def coverage(self) -> float:
        """The share of crops whose person got keypoints."""
        return self.with_pose / max(len(self.keypoints), 1)


class KeypointCache(FolderCache):
    """Per-person-folder keypoint files under the key of ``settings``, filled from the saved crops."""

    def __init__(self, cache_dir: Path, settings: PoseSettings) -> None:
        super().__init__(cache_dir, settings.key())
        self.settings = settings

    def load(self, frames_dir: Path, person_dirs: Sequence[str], estimator: PoseEstimator | None = None,
             batch_size: int = 32, progress: bool = True) -> KeypointStore:
        """Keypoints of every crop in ``person_dirs``, computing (with ``estimator``, made when needed) what is missing.

        Each folder's entry is saved as soon as it is complete, so an interrupted pass keeps its work.
        """
        frames_dir = Path(frames_dir)
        scanned, todo = self.scan(frames_dir, person_dirs, ("keypoints",))
        found = {d: (crops, arrays["keypoints"]) for d, (crops, arrays) in scanned.items()}
        computed = 0
        if todo:
            computed = self._compute(frames_dir, todo, estimator, batch_size, progress, found)
        keypoints = {f"{d}/{name}": kp for d, (crops, array) in found.items()
                     for name, kp in zip(crops, array, strict=True)}
        with_pose = sum(bool(np.isfinite(k[:, 2]).any()) for k in keypoints.values())
        return KeypointStore(keypoints, len(found) - len(todo), len(todo), computed, with_pose)

    def _compute(self, frames_dir: Path, todo: list[tuple[str, list[str], str]], estimator: PoseEstimator | None,
                 batch_size: int, progress: bool, found: dict) -> int:
        videos: dict[str, tuple] = {}
        crops: list[tuple[str, Path]] = []
        where: list[tuple[tuple[float, ...], CropGeometry]] = []
        for d, names, _ in todo:
            video = d.rsplit("/", 1)[0]
            if video not in videos:
                videos[video] = crop_boxes(frames_dir, video)
            boxes, margin, size = videos[video]
            for name in names:
                box = boxes.get(f"{d}/{name}")
                if box is None:
                    raise InputError(f"{frames_dir / d / name} has no row in {video}/tracks.csv: re-extract this video")
                crops.append((d, frames_dir / d / name))
                where.append((box, CropGeometry.of(box, margin, size)))
        estimator = estimator or PoseEstimator(self.settings)
        outputs: dict[str, list[np.ndarray]] = defaultdict(list)
        pending = {d: (names, signature) for d, names, signature in todo}

        def save_finished() -> None:
            for d in [d for d, (names, _) in pending.items() if len(outputs[d]) == len(names)]:
                names, signature = pending.pop(d)
                array = np.stack(outputs.pop(d)) if names else np.zeros((0, KEYPOINTS, 3), np.float32)
                self.write(d, signature, keypoints=array)
                found[d] = (names, array)

        save_finished()  # folders without crops
        done = 0
        with cf.ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode") as pool, report.progress(
            total=len(crops), desc="keypoints", unit="crop", disable=not progress, leave=False
        ) as bar:
            for batch, images in decoded_batches(pool, crops, None, batch_size):
                boxes, geometry = zip(*where[done:done + len(batch)], strict=True)
                done += len(batch)
                for (d, _), kp in zip(batch, estimator.estimate_source(images, boxes, geometry), strict=True):
                    outputs[d].append(kp)
                save_finished()
                bar.update(len(batch))
        log.info("keypoint cache %s: computed %d crops in %d person folders", self.key, len(crops), len(todo))
        return len(crops)
