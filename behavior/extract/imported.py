"""Stage 1 from the user's annotation files: their tracks, poses, objects and labels instead of the detector's.

A video with an annotation file in ANNOTATIONS_DIR (``[<group>/]<class>/<video>.json`` or ``.txt``, or
``<video>.json`` / ``.txt`` at its top; ``behavior.io.annotations`` reads the formats) is not detected, tracked or
posed: its people are the file's tracks, cut from the video by the same function as detected ones, so every stream
works. ``ANNOTATIONS_DIR/labels.csv`` (``video,track_id,label[,start_frame,end_frame]``) labels tracks of any video,
annotated or detected (then by the track ids of its tracks.csv); stage 2 reads them from the video's folder.

Example:
    >>> annotation_file(job, Path("annotations"))  # doctest: +SKIP
    PosixPath('annotations/fight/fi001.json')
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from behavior.detect.tracking import Detection
from behavior.errors import InputError
from behavior.io.annotations import VideoAnnotations, read_track_labels
from behavior.io.clips import VideoJob
from behavior.io.frames import SceneObject, TrackLabel
from behavior.io.video import Frame, FrameReader

log = logging.getLogger(__name__)

SUFFIXES = (".json", ".txt")  # PoseTrack/COCO-style JSON, MOTChallenge gt.txt
LABELS_FILE = "labels.csv"  # in ANNOTATIONS_DIR: per-track labels of any video


def annotation_file(job: VideoJob, annotations_dir: Path | None) -> Path | None:
    """``job``'s annotation file: beside its class folders' layout first, else by its name alone; None without."""
    if not annotations_dir:
        return None
    folder = Path(annotations_dir)
    for base in (folder.joinpath(*[p for p in (job.group, job.label) if p]), folder):
        for suffix in SUFFIXES:
            if (base / f"{job.stem}{suffix}").is_file():
                return base / f"{job.stem}{suffix}"
    return None


def describe_annotations(path: Path | None) -> dict[str, str] | None:
    """What meta.json records of an annotation file, so that a changed file is imported again."""
    if path is None:
        return None
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()  # not cached: users edit these files
    except OSError:
        digest = "unreadable"  # reading it fails the video, in one line
    return {"file": Path(path).name, "sha256": digest}


def annotated_people(reader: FrameReader, annotations: VideoAnnotations, path: Path
                     ) -> Iterator[tuple[Frame, list[Detection], list[SceneObject]]]:
    """Each kept frame with the file's people and objects in it, as the detector's ``track`` gives them.

    InputError when a box lies wholly outside the frame or the file names frames the video does not have.
    """
    used = 0
    for frame in reader:
        h, w = frame.image.shape[:2]
        people, objects = annotations.people.get(frame.index, []), annotations.objects.get(frame.index, [])
        used += bool(people)
        boxes = [(f"track {p.track_id}", p.box) for p in people] + [(f"a {o.name}", o.box) for o in objects]
        for what, (x1, y1, x2, y2) in boxes:
            if x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h:
                raise InputError(f"annotations {path}, frame {frame.index}: {what}'s box {(x1, y1, x2, y2)} lies "
                                 f"outside the {w}x{h} frame")
        yield frame, [Detection(p.track_id, p.box, 1.0) for p in people], objects
    last = max([*annotations.people, *annotations.objects], default=-1)
    if last >= reader.frames_read:
        raise InputError(f"annotations {path}: frame {last} is beyond the video's {reader.frames_read} frames "
                         "(frames count from 0; MOTChallenge files from 1)")
    annotated = sum(bool(people) for people in annotations.people.values())
    if used < annotated / 2:
        log.warning("%s: only %d of its %d annotated frames are among the frames kept at TARGET_FPS: set TARGET_FPS "
                    "0 to keep every frame, or annotate the kept ones", path, used, annotated)


def keypoints_of(annotations: VideoAnnotations) -> dict[tuple[int, int], Any]:
    """The file's keypoints by (frame, track id), for the people that have them."""
    return {(frame, p.track_id): p.keypoints for frame, people in annotations.people.items() for p in people
            if p.keypoints is not None}


def warn_unmatched(annotations_dir: Path | None, jobs: list[VideoJob]) -> None:
    """One warning line naming the annotation files in ANNOTATIONS_DIR that match no video of ``jobs``."""
    if not annotations_dir or not Path(annotations_dir).is_dir():
        return
    used = {annotation_file(job, annotations_dir) for job in jobs}
    unmatched = sorted(p.relative_to(annotations_dir).as_posix() for p in Path(annotations_dir).rglob("*")
                       if p.suffix in SUFFIXES and p not in used)
    if unmatched:
        log.warning("%d annotation file(s) in %s match no video in CLIPS_DIR (left out): %s", len(unmatched),
                    annotations_dir, ", ".join(unmatched[:5]) + (" ..." if len(unmatched) > 5 else ""))


def labels_by_video(annotations_dir: Path | None, jobs: list[VideoJob]) -> dict[str, list[TrackLabel]]:
    """Each video's track labels from ``ANNOTATIONS_DIR/labels.csv`` by job key (a row names a video by its name or
    its ``[group/]class/name``); videos it names that are not among ``jobs`` get one warning line."""
    path = Path(annotations_dir) / LABELS_FILE if annotations_dir else None
    if path is None or not path.is_file():
        return {}
    given = read_track_labels(path)
    known = {name: job.key for job in jobs for name in (job.key, job.stem)}
    unknown = sorted(v for v in given if v not in known)
    if unknown:
        log.warning("%s names videos that are not in CLIPS_DIR (left out): %s", path, ", ".join(unknown[:5])
                    + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""))
    out: dict[str, list[TrackLabel]] = {}
    for video, labels in given.items():
        if video in known:
            out.setdefault(known[video], []).extend(labels)
    return out
