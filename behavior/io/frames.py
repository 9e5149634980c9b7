"""The frames folder that stage 1 writes and stages 2-4 read: its files, their headers and status values.

``FRAMES_DIR/[<group>/]<class>/<video>/`` holds ``person_<k>/frame_<n>.jpg``, ``tracks.csv``, ``meta.json``,
with INPUTS "scene_video" ``scene/frame_<n>.jpg`` and with INPUTS "objects" ``objects.csv`` (the OBJECT_CLASSES
boxes of every kept frame; meta.json's ``objects`` lists the classes saved). A video imported from an annotation file
also holds its ``keypoints.csv`` when the file has poses, and any video the user labeled per track its
``track_labels.csv``. ``FRAMES_DIR/manifest.csv`` lists every video. This module is the only code that knows these
names.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from behavior.errors import InputError, first_line
from behavior.io import files

TRACKS_HEADER = ("frame", "time_s", "track_id", "person", "x1", "y1", "x2", "y2", "conf")
OBJECTS_HEADER = ("frame", "time_s", "class", "x1", "y1", "x2", "y2", "conf")
OBJECTS_FILE = "objects.csv"
ANNOTATED = "annotated"  # meta.json's "objects" or "keypoints" when they came from the user's annotation file
KEYPOINTS_FILE = "keypoints.csv"  # an annotated video's keypoints: frame, person, then x, y, conf of each of 17
KEYPOINTS_HEADER = ("frame", "person", *(f"{axis}{k}" for k in range(17) for axis in ("x", "y", "c")))
TRACK_LABELS_FILE = "track_labels.csv"  # the labels a user gave this video's tracks (ANNOTATIONS_DIR)
TRACK_LABELS_HEADER = ("track_id", "label", "start_frame", "end_frame")
MANIFEST_HEADER = ("group", "class", "video", "status", "persons", "frames", "seconds", "error")
STATUS_DONE, STATUS_FAILED, STATUS_SKIPPED = "done", "failed", "skipped"
FRAME_FILE = re.compile(r"frame_(\d+)\.jpg$")
PERSON_DIR = re.compile(r"person_(\d+)$")


def tracked_persons(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The people of a meta.json that the tracker found (not the whole-frame stand-in)."""
    return [p for p in meta.get("persons", []) if not p.get("whole_frame")]


def _meta_paths(frames_dir: Path) -> Iterator[Path]:
    """Every video's meta.json path under ``frames_dir`` (staging folders are hidden and skipped)."""
    frames_dir = Path(frames_dir)
    for pattern in ("*/*/meta.json", "*/*/*/meta.json"):
        for path in sorted(frames_dir.glob(pattern)):
            if not any(part.startswith(".") for part in path.relative_to(frames_dir).parts):
                yield path


def _read_meta(path: Path) -> tuple[dict[str, Any] | None, str]:
    """A meta.json parsed, or None and why it cannot be read."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return None, first_line(exc)
    except ValueError as exc:
        return None, f"not JSON: {first_line(exc)}"
    return (meta, "") if isinstance(meta, dict) and "status" in meta else (None, "it holds no status")


def scan_meta(frames_dir: Path) -> tuple[list[tuple[Path, dict[str, Any]]], list[tuple[str, str]]]:
    """Every video's meta.json under ``frames_dir``, read once: the readable ones parsed, and ``(video, why)`` for
    the others, so that no stage drops such a video without a word.

    Example:
        >>> scan_meta(Path("frames"))[1]  # doctest: +SKIP
        [('fight/fi007', 'its meta.json cannot be read (not JSON: ...): extract_frames.py redoes this video')]
    """
    frames_dir = Path(frames_dir)
    readable, unreadable = [], []
    for path in _meta_paths(frames_dir):
        meta, why = _read_meta(path)
        if meta is not None:
            readable.append((path, meta))
        else:
            video = path.parent.relative_to(frames_dir).as_posix()
            unreadable.append((video, f"its meta.json cannot be read ({why}): extract_frames.py redoes this video"))
    return readable, unreadable


def iter_meta(frames_dir: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every readable video's meta.json under ``frames_dir``, parsed (``scan_meta`` also lists the others)."""
    for path in _meta_paths(frames_dir):
        meta, _ = _read_meta(path)
        if meta is not None:
            yield path, meta


def refuse_foreign_folder(frames_dir: Path) -> None:
    """InputError when FRAMES_DIR holds files stage 1 did not write, which a run would overwrite or mix with.

    Stage 1 writes only ``manifest.csv`` (with its own header) and class or group folders at the top of FRAMES_DIR:
    a user's own ``manifest.csv``, notes or spreadsheets there mean the wrong folder was given, even with --overwrite.
    """
    frames_dir = Path(frames_dir)
    foreign = [n for n in files.foreign_entries(frames_dir, ("manifest.csv",)) if (frames_dir / n).is_file()]
    manifest = frames_dir / "manifest.csv"
    if manifest.is_file():
        with open(manifest, newline="", encoding="utf-8", errors="replace") as f:
            if tuple(next(csv.reader(f), [])) != MANIFEST_HEADER:
                foreign.insert(0, "manifest.csv")
    if foreign:
        raise InputError(f"FRAMES_DIR {frames_dir} holds files stage 1 did not write "
                         f"({files.describe_entries(foreign)}): nothing was changed; choose an empty or new "
                         "--frames-dir")


def rebuild_manifest(frames_dir: Path) -> Path:
    """Write ``frames_dir/manifest.csv`` from all meta.json files, one row per video."""
    rows = sorted(
        (m.get("group", ""), m.get("class", ""), m.get("video", path.parent.name), m.get("status", ""),
         len(tracked_persons(m)), m.get("frames_kept", 0), m.get("seconds", 0), m.get("error", ""))
        for path, m in iter_meta(frames_dir)
    )
    return files.write_csv(Path(frames_dir) / "manifest.csv", MANIFEST_HEADER, rows)

SCENE_DIR = "scene"  # beside a video's person_<n> folders: every kept frame whole (INPUTS "scene_video")


def scene_path(crop: str) -> str:
    """The scene image of the frame a person crop comes from: ``<video>/person_<n>/frame_F.jpg`` ->
    ``<video>/scene/frame_F.jpg``.

    Example:
        >>> scene_path("fight/fi001/person_2/frame_000007.jpg")
        'fight/fi001/scene/frame_000007.jpg'
    """
    video, _, name = crop.rsplit("/", 2)
    return f"{video}/{SCENE_DIR}/{name}"


def read_tracks(video_dir: Path) -> list[dict[str, str]]:
    """The rows of one extracted video's tracks.csv; InputError naming the file when it cannot be read."""
    path = Path(video_dir) / "tracks.csv"
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except OSError:
        raise InputError(f"tracks.csv missing: {path}; re-extract this video (extract_frames.py --overwrite)") from None


@dataclass(frozen=True)
class SceneObject:
    """One detected object in one frame: its class name and ``x1, y1, x2, y2`` box in source pixels."""

    name: str
    box: tuple[float, float, float, float]
    conf: float


def object_rows(index: int, time_s: float, objects: list[SceneObject]) -> list[tuple]:
    """One frame's objects as rows of objects.csv (boxes to 0.1 px, as tracks.csv records people)."""
    return [(index, f"{time_s:.3f}", o.name, *(f"{v:.1f}" for v in o.box), f"{o.conf:.4f}") for o in objects]


def read_objects(video_dir: Path, classes: tuple[str, ...]) -> dict[int, list[SceneObject]]:
    """One extracted video's objects by frame; InputError when it was extracted without (all of) ``classes``."""
    video_dir = Path(video_dir)
    saved = (files.read_json(video_dir / "meta.json") or {}).get("objects")
    missing = [] if saved == ANNOTATED else [c for c in classes if c not in (saved or ())]
    if saved is None or missing:
        what = "no objects" if saved is None else f"no {', '.join(missing)}"
        raise InputError(f"{video_dir} was extracted with {what}: rerun extract_frames.py with INPUTS 'objects' and "
                         "these OBJECT_CLASSES (it adds the objects without tracking again)")
    by_frame: dict[int, list[SceneObject]] = {}
    try:
        with open(video_dir / OBJECTS_FILE, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                box = tuple(float(row[k]) for k in ("x1", "y1", "x2", "y2"))
                by_frame.setdefault(int(row["frame"]), []).append(SceneObject(row["class"], box, float(row["conf"])))
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{video_dir / OBJECTS_FILE} cannot be read ({first_line(exc)}): re-extract this video "
                         "(extract_frames.py --overwrite)") from None
    return by_frame


def keypoint_rows(person: int, frame: int, keypoints: Any) -> tuple:
    """One person's annotated keypoints (17, 3; NaN where not labeled) in one frame as a row of keypoints.csv."""
    return (frame, person, *("" if v != v else f"{v:.2f}" for v in keypoints.reshape(-1).tolist()))


def read_keypoints(video_dir: Path, video: str) -> dict[str, Any]:
    """An annotated video's keypoints by crop path (``<video>/person_<k>/frame_<n>.jpg``), (17, 3), NaN unseen."""
    import numpy as np

    out = {}
    path = Path(video_dir) / KEYPOINTS_FILE
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                values = [float(row[k]) if row[k] else float("nan") for k in KEYPOINTS_HEADER[2:]]
                crop = f"{video}/person_{int(row['person'])}/frame_{int(row['frame']):06d}.jpg"
                out[crop] = np.asarray(values, np.float32).reshape(17, 3)
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{path} cannot be read ({first_line(exc)}): re-extract this video "
                         "(extract_frames.py --overwrite)") from None
    return out


@dataclass(frozen=True)
class TrackLabel:
    """A label a user gave one track of one video: the whole track, or the frames ``start`` to ``end`` (source
    frame indices, inclusive)."""

    track_id: int
    label: str
    start: int | None = None
    end: int | None = None

    def covers(self, first: int, last: int) -> bool:
        """True when the frames ``first`` to ``last`` all lie in this label's range."""
        return self.start is None or (self.start <= first and last <= self.end)

    def touches(self, first: int, last: int) -> bool:
        """True when some frame of ``first`` to ``last`` lies in this label's range."""
        return self.start is None or (first <= self.end and self.start <= last)


def write_track_labels(video_dir: Path, labels: list[TrackLabel]) -> None:
    """Keep a video's track_labels.csv in step with the user's labels (removed when it has none)."""
    path = Path(video_dir) / TRACK_LABELS_FILE
    if not labels:
        path.unlink(missing_ok=True)
        return
    rows = [(t.track_id, t.label, "" if t.start is None else t.start, "" if t.end is None else t.end) for t in labels]
    text = files.csv_text(TRACK_LABELS_HEADER, rows)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        files.write_csv(path, TRACK_LABELS_HEADER, rows)


def read_track_labels(video_dir: Path) -> list[TrackLabel]:
    """The labels a user gave this video's tracks (none without a track_labels.csv)."""
    path = Path(video_dir) / TRACK_LABELS_FILE
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [TrackLabel(int(r["track_id"]), r["label"], int(r["start_frame"]) if r["start_frame"] else None,
                           int(r["end_frame"]) if r["end_frame"] else None) for r in csv.DictReader(f)]


def annotated_keypoints(frames_dir: Path, person_dirs: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The keypoints of the person folders whose video's poses came from an annotation file, by crop path (every
    crop: NaN where the file has none), and the other folders, whose poses the pose model gives."""
    import numpy as np

    frames_dir = Path(frames_dir)
    by_video: dict[str, list[str]] = {}
    for folder in person_dirs:
        by_video.setdefault(folder.rsplit("/", 1)[0], []).append(folder)
    found: dict[str, Any] = {}
    others: list[str] = []
    for video, folders in by_video.items():
        if (files.read_json(frames_dir / video / "meta.json") or {}).get("keypoints") != ANNOTATED:
            others += folders
            continue
        given = read_keypoints(frames_dir / video, video)
        for folder in folders:
            for name in sorted(os.listdir(frames_dir / folder)):
                if FRAME_FILE.match(name):
                    found[f"{folder}/{name}"] = given.get(f"{folder}/{name}", np.full((17, 3), np.nan, np.float32))
    return found, others
