"""Annotation files users already have, read into the tool's terms: people with track ids (and keypoints) and
objects per frame, and labels per track.

Formats:

- **PoseTrack / COCO-style JSON** (``.json``): ``images`` (a frame each: its ``frame_index`` when given, else its
  position in the list), ``annotations`` (``image_id``, ``track_id``, ``bbox`` as x, y, width, height, optional
  ``keypoints``: 17 COCO keypoints as 51 numbers x, y, confidence, and ``category_id``) and ``categories``
  (``id``, ``name``). Annotations of the category named ``person`` are people; those of other categories are
  objects, by their category's name.
- **MOTChallenge** ``gt.txt`` (``.txt``): ``frame, id, x, y, width, height[, flag, class, visibility]``, frames
  counted from 1. Rows flagged 0 (ignored by MOTChallenge) and classes other than pedestrian (1) are left out.
- **Track labels** (``.csv``): ``video,track_id,label[,start_frame,end_frame]``: a whole track, or a range of its
  frames (source frame indices, inclusive).

``PoseTrackWriter`` and ``write_labels`` write the same formats (predict.py's ``annotations.json`` and
``labels.csv``), so that a prediction corrected in an annotation tool can be trained on.

Frames here are source frame indices from 0, as stage 1 numbers its crops. Every problem is one line naming the file
and what is wrong (``InputError``).

Example:
    >>> found = read_annotations(Path("clip.json"))  # doctest: +SKIP
    >>> found.people[0]  # doctest: +SKIP
    [AnnotatedPerson(track_id=3, box=(10.0, 20.0, 60.0, 140.0), keypoints=None)]
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from behavior.errors import InputError, first_line
from behavior.io import files
from behavior.io.frames import SceneObject, TrackLabel

KEYPOINT_NUMBERS = 17 * 3  # COCO: x, y and a confidence (or visibility) per keypoint
LABELS_HEADER = ("video", "track_id", "label")
LABEL_RANGE = ("start_frame", "end_frame")
MOT_PEDESTRIAN = 1


@dataclass(frozen=True)
class AnnotatedPerson:
    """One annotated person in one frame: a track id, an ``x1, y1, x2, y2`` box and optionally (17, 3) keypoints."""

    track_id: int
    box: tuple[float, float, float, float]
    keypoints: np.ndarray | None = None


@dataclass
class VideoAnnotations:
    """One video's annotations, by source frame index."""

    source: str  # the format, for meta.json: "posetrack" or "mot"
    people: dict[int, list[AnnotatedPerson]] = field(default_factory=lambda: defaultdict(list))
    objects: dict[int, list[SceneObject]] = field(default_factory=lambda: defaultdict(list))


def read_annotations(path: Path) -> VideoAnnotations:
    """One video's annotation file, by its suffix: PoseTrack/COCO-style ``.json`` or MOTChallenge ``.txt``."""
    path = Path(path)
    readers = {".json": _read_posetrack, ".txt": _read_mot}
    if path.suffix.lower() not in readers:
        raise InputError(f"annotations {path}: unknown format (expected .json PoseTrack/COCO or .txt MOTChallenge)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"annotations {path}: cannot be read ({first_line(exc)})") from None
    return readers[path.suffix.lower()](text, path)


def _box(xywh: Any, where: str) -> tuple[float, float, float, float]:
    """An ``x, y, width, height`` box as ``x1, y1, x2, y2``; InputError when it is not 4 numbers with a size."""
    try:
        x, y, w, h = (float(v) for v in xywh)
    except (TypeError, ValueError):
        raise InputError(f"{where}: a box must be 4 numbers x, y, width, height, got {xywh!r}") from None
    if not all(np.isfinite((x, y, w, h))) or w <= 0 or h <= 0:
        raise InputError(f"{where}: a box needs a positive width and height, got {xywh!r}")
    return x, y, x + w, y + h


def _keypoints(values: Any, where: str) -> np.ndarray | None:
    """COCO keypoints (51 numbers) as (17, 3); None when absent or all zero (a person without a pose)."""
    if values is None or (isinstance(values, list) and not values):
        return None
    if not isinstance(values, list) or len(values) != KEYPOINT_NUMBERS:
        size = len(values) if isinstance(values, list) else type(values).__name__
        raise InputError(f"{where}: keypoints must be {KEYPOINT_NUMBERS} numbers (17 x, y, confidence), got {size}")
    points = np.asarray(values, dtype=np.float64).reshape(17, 3)
    if not points.any():
        return None
    points[points[:, 2] <= 0] = np.nan  # COCO visibility 0: not labeled
    points[:, 2] = np.minimum(points[:, 2], 1.0)  # COCO visibility 1 or 2: labeled, as sure as a confidence of 1
    return points


def _read_posetrack(text: str, path: Path) -> VideoAnnotations:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"annotations {path}: not JSON ({first_line(exc)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or \
            not isinstance(data.get("annotations"), list):
        raise InputError(f"annotations {path}: a PoseTrack/COCO file needs 'images' and 'annotations' lists")
    try:
        frame_of = {image["id"]: int(image.get("frame_index", k)) for k, image in enumerate(data["images"])}
        names = {c["id"]: str(c["name"]) for c in data.get("categories") or [{"id": 1, "name": "person"}]}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InputError(f"annotations {path}: each image needs an id (and an integer frame_index, if any), each "
                         "category an id and a name") from None
    found = VideoAnnotations("posetrack")
    for k, item in enumerate(data["annotations"]):
        where = f"annotations {path}, annotation {k}"
        if item.get("image_id") not in frame_of:
            raise InputError(f"{where}: image_id {item.get('image_id')!r} is not one of the images")
        frame = frame_of[item["image_id"]]
        name = names.get(item.get("category_id", 1))
        if name is None:
            raise InputError(f"{where}: category_id {item.get('category_id')!r} is not one of the categories")
        box = _box(item.get("bbox"), where)
        if name != "person":
            found.objects[frame].append(SceneObject(name, box, float(item.get("score", 1.0))))
            continue
        if not isinstance(item.get("track_id"), int):
            raise InputError(f"{where}: a person needs an integer track_id, got {item.get('track_id')!r}")
        found.people[frame].append(AnnotatedPerson(item["track_id"], box, _keypoints(item.get("keypoints"), where)))
    return found


def _read_mot(text: str, path: Path) -> VideoAnnotations:
    found = VideoAnnotations("mot")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"annotations {path}, line {number}"
        try:
            values = [float(v) for v in line.split(",")]
        except ValueError:
            raise InputError(f"{where}: expected numbers frame, id, x, y, width, height[, ...], got {line!r}") from None
        if len(values) < 6 or values[0] < 1 or values[0] != int(values[0]) or values[1] != int(values[1]):
            raise InputError(f"{where}: expected frame (from 1), id, x, y, width, height[, ...], got {line!r}")
        if (len(values) >= 7 and values[6] == 0) or (len(values) >= 8 and values[7] not in (MOT_PEDESTRIAN, -1)):
            continue  # ignored by MOTChallenge, or not a pedestrian
        found.people[int(values[0]) - 1].append(AnnotatedPerson(int(values[1]), _box(values[2:6], where)))
    return found


def read_track_labels(path: Path) -> dict[str, list[TrackLabel]]:
    """The per-track labels of a ``video,track_id,label[,start_frame,end_frame]`` CSV, by video (its name or
    ``[group/]class/name``)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"track labels {path}: cannot be read ({first_line(exc)})") from None
    header = tuple(c.strip() for c in rows[0]) if rows else ()
    if header not in (LABELS_HEADER, LABELS_HEADER + LABEL_RANGE):
        raise InputError(f"track labels {path}: the header must be {','.join(LABELS_HEADER)}"
                         f"[,{','.join(LABEL_RANGE)}], got {','.join(header) or 'nothing'}")
    by_video: dict[str, list[TrackLabel]] = defaultdict(list)
    for number, row in enumerate(rows[1:], start=2):
        if any(row):
            video, label = _track_label(row, path, number)
            by_video[video].append(label)
    return dict(by_video)


def _track_label(row: list[str], path: Path, number: int) -> tuple[str, TrackLabel]:
    where = f"track labels {path}, line {number}"
    if len(row) < len(LABELS_HEADER):
        raise InputError(f"{where}: a row needs a video, a track_id and a label")
    video, track, label, *span = (c.strip() for c in row)
    if not video or not label:
        raise InputError(f"{where}: a row needs a video and a label")
    try:
        numbers = [int(track)] + [int(v) for v in span if v != ""]
    except ValueError:
        raise InputError(f"{where}: track_id, start_frame and end_frame must be integers") from None
    if len(numbers) == 2 or (len(numbers) == 3 and not 0 <= numbers[1] <= numbers[2]):
        raise InputError(f"{where}: a frame range needs 0 <= start_frame <= end_frame, got {', '.join(span)}")
    start, end = (numbers[1], numbers[2]) if len(numbers) == 3 else (None, None)
    return video, TrackLabel(numbers[0], label, start, end)


class PoseTrackWriter:
    """A PoseTrack/COCO-style JSON file that ``read_annotations`` reads back, written frame by frame so that a long
    stream's memory stays flat (the frames go to two hidden part files, joined on ``close``); keypoints not seen
    are 0, 0, 0.

    Example:
        >>> writer = PoseTrackWriter(Path("annotations.json"))  # doctest: +SKIP
        >>> writer.add(0, [AnnotatedPerson(1, (10, 20, 60, 140))], [])  # doctest: +SKIP
        >>> writer.close()  # doctest: +SKIP
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.category = {"person": 1}
        self.images = 0
        self._parts = [self.path.with_name(f".{self.path.name}.{part}") for part in ("images", "annotations")]
        with files.writing(self.path):
            self._files = [open(part, "w", encoding="utf-8") for part in self._parts]  # noqa: SIM115
        self._empty = [True, True]

    def add(self, index: int, people: list[AnnotatedPerson], objects: list[SceneObject]) -> None:
        """One frame (its source index), its people and its objects."""
        self.images += 1
        self._write(0, {"id": self.images, "frame_index": index})
        for person in people:
            item = {"image_id": self.images, "category_id": 1, "track_id": person.track_id, "bbox": _xywh(person.box)}
            if person.keypoints is not None:
                item["keypoints"] = [round(float(v), 2) for v in np.nan_to_num(person.keypoints, nan=0.0).reshape(-1)]
            self._write(1, item)
        for o in objects:
            category = self.category.setdefault(o.name, len(self.category) + 1)
            self._write(1, {"image_id": self.images, "category_id": category, "bbox": _xywh(o.box),
                            "score": round(o.conf, 4)})

    def _write(self, part: int, item: dict[str, Any]) -> None:
        with files.writing(self.path):
            self._files[part].write(("" if self._empty[part] else ",\n") + json.dumps(item))
        self._empty[part] = False

    def close(self) -> Path:
        """Join the parts into the JSON file (renamed into place) and remove them."""
        for f in self._files:
            f.close()
        categories = json.dumps([{"id": i, "name": n} for n, i in self.category.items()])
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            with files.writing(self.path), open(tmp, "w", encoding="utf-8") as out:
                for key, part in zip(("images", "annotations"), self._parts, strict=True):
                    out.write(f'{{"{key}": [\n' if key == "images" else f',\n"{key}": [\n')
                    with open(part, encoding="utf-8") as f:
                        shutil.copyfileobj(f, out)
                    out.write("\n]")
                out.write(f',\n"categories": {categories}}}\n')
            with files.writing(self.path):
                os.replace(tmp, self.path)
        finally:
            for path in (tmp, *self._parts):
                path.unlink(missing_ok=True)
        return self.path


def write_labels(path: Path, rows: list[tuple[str, TrackLabel]]) -> Path:
    """``(video, label)`` pairs as a ``video,track_id,label,start_frame,end_frame`` CSV (``read_track_labels``)."""
    return files.write_csv(path, LABELS_HEADER + LABEL_RANGE, [
        (video, t.track_id, t.label, "" if t.start is None else t.start, "" if t.end is None else t.end)
        for video, t in rows])


def _xywh(box: tuple[float, float, float, float]) -> list[float]:
    x1, y1, x2, y2 = box
    return [round(x1, 1), round(y1, 1), round(x2 - x1, 1), round(y2 - y1, 1)]
