"""Stage 1: find people in labeled videos and save each person's crops, one folder per person.

For every video under ``CLIPS_DIR/<class>/`` or ``CLIPS_DIR/<group>/<class>/`` this writes
``FRAMES_DIR/[<group>/]<class>/<video_stem>/`` with ``person_<k>/frame_<source index>.jpg``,
``tracks.csv`` and ``meta.json`` (with INPUTS "scene_video", ``scene/frame_<source index>.jpg``: every kept
frame whole; with INPUTS "objects", ``objects.csv``: the OBJECT_CLASSES boxes from the same detector call; both
added later to videos finished without them), then rebuilds ``FRAMES_DIR/manifest.csv`` from every
``meta.json`` (so the outputs of several shards merge by folder).

A video is written into a hidden staging folder and renamed into place only when complete;
a rerun skips videos already done with the same settings, so an interrupted run resumes.
One bad video is recorded as failed and the batch goes on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from behavior import report
from behavior.detect.crops import JpegWriter, clip_box, crop_person, letterbox, scene_crop
from behavior.detect.tracking import WHOLE_FRAME_TRACK, Detection, PersonTracker, describe_detector
from behavior.errors import InputError, first_line
from behavior.extract import imported
from behavior.io import files
from behavior.io.annotations import read_annotations
from behavior.io.clips import VideoJob
from behavior.io.frames import (
    ANNOTATED,
    KEYPOINTS_FILE,
    KEYPOINTS_HEADER,
    OBJECTS_FILE,
    OBJECTS_HEADER,
    SCENE_DIR,
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_SKIPPED,
    TRACKS_HEADER,
    SceneObject,
    keypoint_rows,
    object_rows,
    rebuild_manifest,
    refuse_foreign_folder,
    tracked_persons,
    write_track_labels,
)
from behavior.io.video import (
    Frame,
    FrameReader,
    VideoError,
    expected_kept_frames,
    probe_video,
)
from behavior.report import format_table
from behavior.runtime import hardware
from behavior.runtime.interrupts import StopRequest, stop_requests
from behavior.settings import ExtractSettings

log = logging.getLogger(__name__)

def identity_of(settings: ExtractSettings) -> dict[str, Any]:
    """Everything that determines the output, as JSON-comparable plain values.

    Device, threads, backend and batch are left out: they change speed, not results; so are the scene images and
    the objects, which are added to a finished video without tracking it again. Resolving the detector here also
    fails early, before any video, when its weights are missing.
    """
    own = {k: v for k, v in asdict(settings).items() if k not in ("detector", "scene", "objects", "annotations_dir")}
    ident: dict[str, Any] = {"settings": own, "detector": None, "tracker": None}
    if settings.person_tracking:
        ident.update(describe_detector(settings.detector))
    return json.loads(json.dumps(ident))


def job_identity(job: VideoJob, identity: dict[str, Any], settings: ExtractSettings
                 ) -> tuple[dict[str, Any], Path | None]:
    """``identity`` for one video, and its annotation file: an imported video depends on that file (its digest),
    not on the detector and tracker."""
    source = imported.annotation_file(job, settings.annotations_dir)
    if source is None:
        return {**identity, "annotations": None}, None
    return {**identity, "detector": None, "tracker": None,
            "annotations": imported.describe_annotations(source)}, source


@dataclass(frozen=True)
class VideoResult:
    """The outcome of one video, as the summary table and manifest report it."""

    job: VideoJob
    status: str
    persons: int = 0  # tracked people (the whole-frame stand-in not counted)
    frames: int = 0
    seconds: float = 0.0
    error: str = ""
    whole_frame: bool = False  # nobody was tracked: the whole frame stands in as person_0
    annotated: bool = False  # its people came from an annotation file, not the detector
    scene_added: bool = False  # done before; its scene images (INPUTS "scene_video") were added now
    objects_added: bool = False  # done before; its objects (INPUTS "objects") were added now


def parse_shard(spec: str) -> tuple[int, int]:
    """Parse ``"I/N"`` (0 <= I < N) into ``(I, N)``."""
    try:
        index, count = (int(x) for x in spec.split("/"))
    except ValueError:
        raise InputError(f"--shard must look like I/N, for example 0/4; got {spec!r}") from None
    if count < 1 or not 0 <= index < count:
        raise InputError(f"--shard {spec}: need 0 <= I < N")
    return index, count


def select_shard(jobs: Iterable[VideoJob], index: int, count: int) -> list[VideoJob]:
    """The deterministic share ``index`` of ``count`` of the videos, stable as videos are added."""
    return [j for j in jobs if zlib.crc32(j.key.encode("utf-8")) % count == index]


def _is_done(meta: dict | None, identity: dict[str, Any], size_bytes: int) -> bool:
    """True when an earlier run finished this video with the same settings and the same source file.

    A video that an older version finished with nobody tracked and no whole-frame stand-in is redone:
    it holds no crops to lose.
    """
    return bool(
        meta
        and meta.get("status") == STATUS_DONE
        and meta.get("size_bytes") == size_bytes
        and all(meta.get(k) == v for k, v in identity.items())
        and (meta.get("persons") or not (meta.get("settings") or {}).get("person_tracking"))
    )


def settings_changes(meta: dict[str, Any], identity: dict[str, Any]) -> list[str]:
    """What differs between the settings a video was extracted with and ``identity``, as "name old -> new".

    Example:
        >>> settings_changes({"settings": {"target_fps": 15.0}, "detector": None},
        ...                  {"settings": {"target_fps": 5.0}, "detector": None})
        ['target_fps 15.0 -> 5.0']
    """
    def short(value: Any) -> str:
        text = repr(value)
        return text if len(text) <= 20 else text[:17] + "..."

    changes = []
    for key, new in identity.items():
        old = meta.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changes += [f"{k} {short(old.get(k))} -> {short(new.get(k))}" for k in sorted(set(old) | set(new))
                        if old.get(k) != new.get(k)]
        elif old != new:
            changes.append(f"{key} {short(old)} -> {short(new)}")
    return changes


def refuse_changed_settings(jobs: list[VideoJob], frames_dir: Path, identity: dict[str, Any],
                            settings: ExtractSettings) -> None:
    """Raise InputError when videos already extracted with other settings would be redone: that needs --overwrite.

    Re-extracting replaces a video's crops; a changed flag (``--target-fps 5``) must not do it silently.
    Failed videos hold no crops and are retried freely.
    """
    changed = []
    for job in jobs:
        meta = files.read_json(job.out_dir(frames_dir) / "meta.json")
        if isinstance(meta, dict) and meta.get("status") == STATUS_DONE:
            diff = settings_changes(meta, job_identity(job, identity, settings)[0])
            if diff:
                changed.append((job, diff))
    if changed:
        job, diff = changed[0]
        raise InputError(f"{len(changed)} video(s) in {frames_dir} were extracted with other settings "
                         f"(e.g. {job.key}: {'; '.join(diff[:3])}): pass --overwrite to replace their crops, "
                         "or choose a new --frames-dir")


def _rank_tracks(counts: Counter, first_seen: dict[int, int], settings: ExtractSettings,
                 every: bool = False) -> dict[int, int]:
    """Map kept track ids to person numbers 1..N: most frames first, short tracks dropped, at most
    MAX_PERSONS_PER_VIDEO (``every``: all of them, as an annotation file's tracks are)."""
    eligible = [t for t, n in counts.items() if n >= settings.min_track_frames]
    ranked = sorted(eligible, key=lambda t: (-counts[t], first_seen[t], t))[: None if every else settings.max_persons]
    return {track: k for k, track in enumerate(ranked, start=1)}


Found = tuple[Frame, list[Detection], list[SceneObject]]  # a frame, its people and the objects beside them


def _people(frames: Iterable[Frame], tracker: PersonTracker | None) -> Iterator[Found]:
    """Each frame with its persons (tracked detections, or the whole frame in whole-frame mode) and objects."""
    if tracker is not None:
        yield from tracker.track(frames, lambda frame: frame.image)
        return
    for frame in frames:
        h, w = frame.image.shape[:2]
        yield frame, [Detection(1, (0.0, 0.0, float(w), float(h)), 1.0)], []


@dataclass
class TrackLog:
    """What one pass over a video saw of each track: its rows for tracks.csv, frame counts, first and last frame."""

    rows: list[tuple] = field(default_factory=list)  # (frame, time, track, box, conf)
    objects: list[tuple] = field(default_factory=list)  # objects.csv's rows
    counts: Counter = field(default_factory=Counter)
    first_seen: dict[int, int] = field(default_factory=dict)
    last_seen: dict[int, int] = field(default_factory=dict)

    def add(self, frame: Frame, track: int, box: tuple[float, ...], conf: float) -> None:
        self.rows.append((frame.index, frame.time_s, track, box, conf))
        self.counts[track] += 1
        self.first_seen.setdefault(track, frame.index)
        self.last_seen[track] = frame.index

    def add_whole_frame(self, rows: list[tuple]) -> None:
        """The stand-in of a video where nobody was tracked: every kept frame whole, as track 0."""
        self.rows += rows
        self.counts[WHOLE_FRAME_TRACK] = len(rows)
        self.first_seen[WHOLE_FRAME_TRACK], self.last_seen[WHOLE_FRAME_TRACK] = rows[0][0], rows[-1][0]


def _extract_into(
    staging: Path, job: VideoJob, fps: float, total: int, settings: ExtractSettings,
    tracker: PersonTracker | None, progress: bool, source: Path | None = None,
) -> tuple[list[dict[str, Any]], int, int]:
    """Track (or, from the annotation file ``source``, import) and crop every kept frame of ``job`` into
    ``staging``; return persons and frame counts."""
    reader = FrameReader(job.path, settings.target_fps, fps=fps)
    annotations = read_annotations(source) if source is not None else None
    if annotations is not None:
        found = imported.annotated_people(reader, annotations, source)
    else:
        if tracker is not None:
            tracker.reset(fps=min(fps, settings.target_fps) if settings.target_fps > 0 else fps)
        found = _people(reader, tracker)
    whole_frames = tracker is None and annotations is None
    with stop_requests() as stop, JpegWriter(settings.jpeg_quality) as writer, closing(found), report.progress(
        total=total or None, desc=job.stem, unit="frame", leave=False, disable=not progress
    ) as bar:
        tracks = _crop_frames(found, staging, settings, whole_frames, writer, stop, bar)
        person_of = _rank_tracks(tracks.counts, tracks.first_seen, settings, every=annotations is not None)
        if reader.frames_kept and tracker is not None and annotations is None and not person_of:
            whole = _whole_frame_into(staging, job, fps, settings, writer, stop)  # a label for every video
            if whole:
                tracks.add_whole_frame(whole)
                person_of = {WHOLE_FRAME_TRACK: WHOLE_FRAME_TRACK}
    if reader.frames_kept == 0:
        raise VideoError("no frames could be decoded")
    if settings.objects or annotations is not None:
        files.write_csv(staging / OBJECTS_FILE, OBJECTS_HEADER, tracks.objects)
    keypoints = imported.keypoints_of(annotations) if annotations is not None else {}
    if keypoints:
        _write_keypoints(staging, tracks, person_of, keypoints)
    return _keep_ranked(staging, tracks, person_of), reader.frames_read, reader.frames_kept


def _write_keypoints(staging: Path, tracks: TrackLog, person_of: dict[int, int],
                     keypoints: dict[tuple[int, int], Any]) -> None:
    """keypoints.csv of an annotated video: the file's keypoints of every kept person's crop that has them."""
    rows = [keypoint_rows(person_of[track], index, keypoints[index, track])
            for index, _, track, _, _ in sorted(tracks.rows, key=lambda r: (r[0], person_of.get(r[2], 0)))
            if track in person_of and (index, track) in keypoints]
    files.write_csv(staging / KEYPOINTS_FILE, KEYPOINTS_HEADER, rows)


def _crop_frames(found: Iterable[Found], staging: Path, settings: ExtractSettings,
                 whole_frames: bool, writer: JpegWriter, stop: StopRequest, bar: Any) -> TrackLog:
    """Save every person's crop (and, with scene images, every frame whole) into ``staging/track_<id>/``."""
    size = (settings.frame_width, settings.frame_height)
    tracks = TrackLog()
    for frame, people, objects in found:
        stop.check()
        h, w = frame.image.shape[:2]
        tracks.objects += _object_rows(frame, objects)
        if settings.scene:
            writer.submit(staging / SCENE_DIR / f"frame_{frame.index:06d}.jpg", scene_crop(frame.image, size))
        for det in people:
            box = clip_box(det.box, w, h)
            if whole_frames:
                crop = letterbox(frame.image, size)
            else:
                crop = crop_person(frame.image, box, size, settings.crop_margin)
            writer.submit(staging / f"track_{det.track_id}" / f"frame_{frame.index:06d}.jpg", crop)
            tracks.add(frame, det.track_id, box, det.conf)
        bar.update()
    return tracks


def _object_rows(frame: Frame, objects: list[SceneObject]) -> list[tuple]:
    """One frame's objects as objects.csv rows, their boxes clipped to the frame as the people's are."""
    h, w = frame.image.shape[:2]
    return object_rows(frame.index, frame.time_s, [SceneObject(o.name, clip_box(o.box, w, h), o.conf)
                                                   for o in objects])


def _keep_ranked(staging: Path, tracks: TrackLog, person_of: dict[int, int]) -> list[dict[str, Any]]:
    """Rename the kept tracks' folders to ``person_<k>``, drop the others, write tracks.csv; returns the persons."""
    for track in tracks.counts:
        folder = staging / f"track_{track}"
        if track in person_of:
            folder.rename(staging / f"person_{person_of[track]}")
        else:
            shutil.rmtree(folder)
    files.write_csv(
        staging / "tracks.csv",
        TRACKS_HEADER,
        (
            (index, f"{t:.3f}", track, person_of[track], *(f"{v:.1f}" for v in box), f"{conf:.4f}")
            for index, t, track, box, conf in sorted(tracks.rows, key=lambda r: (r[0], person_of.get(r[2], 0)))
            if track in person_of
        ),
    )
    return [
        {"person": k, "track_id": t, "frames": tracks.counts[t], "first_frame": tracks.first_seen[t],
         "last_frame": tracks.last_seen[t], **({"whole_frame": True} if t == WHOLE_FRAME_TRACK else {})}
        for t, k in sorted(person_of.items(), key=lambda item: item[1])
    ]


def _whole_frame_into(staging: Path, job: VideoJob, fps: float, settings: ExtractSettings,
                      writer: JpegWriter, stop: StopRequest) -> list[tuple]:
    """Save every kept frame whole, cut like a person box covering the frame: the instance of a video where
    nobody was tracked (prediction makes the same crop with the same function)."""
    size = (settings.frame_width, settings.frame_height)
    rows = []
    for frame in FrameReader(job.path, settings.target_fps, fps=fps):
        stop.check()
        h, w = frame.image.shape[:2]
        box = (0.0, 0.0, float(w), float(h))
        writer.submit(staging / f"track_{WHOLE_FRAME_TRACK}" / f"frame_{frame.index:06d}.jpg",
                      crop_person(frame.image, box, size, settings.crop_margin))
        rows.append((frame.index, frame.time_s, WHOLE_FRAME_TRACK, box, 1.0))
    return rows


def _add_scene(final: Path, job: VideoJob, meta: dict[str, Any], settings: ExtractSettings) -> bool:
    """Save the scene images (every kept frame whole) of a video finished without them: the video is decoded
    again, not tracked. A video that cannot be decoded now is left as it was, with a warning (False)."""
    staging = final / f".{SCENE_DIR}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    size = (settings.frame_width, settings.frame_height)
    try:
        with stop_requests() as stop, JpegWriter(settings.jpeg_quality) as writer:
            for frame in FrameReader(job.path, settings.target_fps, fps=meta.get("fps")):
                stop.check()
                writer.submit(staging / f"frame_{frame.index:06d}.jpg", scene_crop(frame.image, size))
        if writer.written != meta.get("frames_kept"):
            raise VideoError(f"{writer.written} frames decoded, {meta.get('frames_kept')} when it was extracted")
    except files.OutputError:
        raise
    except Exception as exc:
        shutil.rmtree(staging, ignore_errors=True)
        log.warning("%s: cannot add its scene images: %s", job.key, first_line(exc))
        return False
    shutil.rmtree(final / SCENE_DIR, ignore_errors=True)
    staging.rename(final / SCENE_DIR)
    files.write_json(final / "meta.json", {**meta, "scene": True})
    return True


def _add_objects(final: Path, job: VideoJob, meta: dict[str, Any], settings: ExtractSettings,
                 tracker: PersonTracker) -> bool:
    """Save the objects (INPUTS "objects") of a video finished without them: the same detector calls on the same
    frames again, its people left as they were. A video that cannot be decoded now is left as it was, with a
    warning (False)."""
    rows: list[tuple] = []
    try:
        fps = float(meta.get("fps") or probe_video(job.path).fps)
        tracker.reset(fps=min(fps, settings.target_fps) if settings.target_fps > 0 else fps)
        with stop_requests() as stop:
            for frame, _, objects in tracker.track(FrameReader(job.path, settings.target_fps, fps=fps),
                                                   lambda f: f.image):
                stop.check()
                rows += _object_rows(frame, objects)
    except files.OutputError:
        raise
    except Exception as exc:
        log.warning("%s: cannot add its objects: %s", job.key, first_line(exc))
        return False
    files.write_csv(final / OBJECTS_FILE, OBJECTS_HEADER, rows)
    files.write_json(final / "meta.json", {**meta, "objects": list(settings.objects)})
    return True


def _finished_earlier(job: VideoJob, final: Path, settings: ExtractSettings, identity: dict[str, Any],
                      size_bytes: int, get_tracker: Callable[[], PersonTracker | None]) -> VideoResult | None:
    """The skipped result of a video an identical run already finished (its scene images and objects added if now
    wanted)."""
    meta = files.read_json(final / "meta.json")
    if (final / "meta.json").is_file() and not isinstance(meta, dict):
        log.warning("%s: its meta.json cannot be read: extracting the video again", job.key)
    if not _is_done(meta, identity, size_bytes):
        return None
    scene = settings.scene and not meta.get("scene") and _add_scene(final, job, meta, settings)
    if scene:
        meta = {**meta, "scene": True}
    saved = meta.get("objects") or []
    wanted = settings.objects and saved != ANNOTATED and not set(settings.objects) <= set(saved)
    objects = wanted and _add_objects(final, job, meta, settings, get_tracker())
    return VideoResult(job, STATUS_SKIPPED, len(tracked_persons(meta)), int(meta.get("frames_kept", 0)),
                       whole_frame=bool(meta.get("whole_frame")), annotated=bool(meta.get("annotations")),
                       scene_added=bool(scene),
                       objects_added=bool(objects))


def _extract_to_staging(job: VideoJob, staging: Path, settings: ExtractSettings, tracker: PersonTracker | None,
                        progress: bool, meta: dict[str, Any], source: Path | None = None) -> None:
    """Extract ``job`` (from its annotation file ``source``, if any) into ``staging`` and fill ``meta``; a problem
    with the video or its annotations is recorded as failed (its partial files removed), a full or read-only disk
    propagates to stop the batch."""
    try:
        info = probe_video(job.path)
        meta.update(fps=info.fps, width=info.width, height=info.height, frame_count=info.frame_count)
        total = expected_kept_frames(info.frame_count, info.fps, settings.target_fps)
        persons, frames_read, frames_kept = _extract_into(staging, job, info.fps, total, settings, tracker, progress,
                                                          source)
        objects = ANNOTATED if source is not None else list(settings.objects)
        meta.update(frame_count=frames_read, frames_kept=frames_kept, persons=persons,
                    status=STATUS_DONE, error="", **({"scene": True} if settings.scene else {}),
                    **({"objects": objects} if objects else {}),
                    **({"keypoints": ANNOTATED} if (staging / KEYPOINTS_FILE).exists() else {}))
        if any(p.get("whole_frame") for p in persons):
            meta["whole_frame"] = True
            log.warning("%s: no person tracked for at least %d frames: the whole frame stands in (person_%d)",
                        job.key, settings.min_track_frames, WHOLE_FRAME_TRACK)
    except files.OutputError:
        raise  # a full or read-only disk fails every video alike: stop the batch
    except Exception as exc:  # one bad video never stops the batch
        for child in staging.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        message = first_line(exc)
        meta.update(frames_kept=0, persons=[], status=STATUS_FAILED, error=message)
        log.warning("%s: failed: %s", job.key, message)


def extract_video(
    job: VideoJob,
    frames_dir: Path,
    settings: ExtractSettings,
    identity: dict[str, Any],
    get_tracker: Callable[[], PersonTracker | None],
    overwrite: bool = False,
    progress: bool = True,
) -> VideoResult:
    """Extract one video into its folder, or skip it when an identical run already finished it.

    Any problem with the video itself is recorded as a failed result (and in meta.json);
    problems with the tool's setup (missing weights) propagate to stop the batch. The folder appears, complete
    with its meta.json, only when every file is in place.
    """
    final = job.out_dir(frames_dir)
    try:
        size_bytes = job.path.stat().st_size
    except OSError as exc:
        size_bytes = -1
        log.debug("cannot stat %s: %s", job.path, exc)
    identity, source = job_identity(job, identity, settings)
    earlier = None if overwrite else _finished_earlier(job, final, settings, identity, size_bytes, get_tracker)
    if earlier is not None:
        return earlier
    tracker = None if source else get_tracker()  # outside the per-video try: a broken detector must stop the batch
    staging = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    with files.writing(staging):
        staging.mkdir(parents=True)
    started = time.perf_counter()
    meta: dict[str, Any] = {"source": str(job.path), "size_bytes": size_bytes, "group": job.group,
                            "class": job.label, "video": job.stem}
    try:
        _extract_to_staging(job, staging, settings, tracker, progress, meta, source)
        meta.update({k: v for k, v in identity.items() if k != "annotations" or v is not None})
        meta.update(seconds=round(time.perf_counter() - started, 3),
                    created=datetime.now(UTC).isoformat(timespec="seconds"), versions=hardware.versions(),
                    inference_backend=getattr(tracker, "backend", None))
        files.write_json(staging / "meta.json", meta)
        files.replace_dir(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # only left when interrupted
    return VideoResult(job, meta["status"], len(tracked_persons(meta)), meta["frames_kept"], meta["seconds"],
                       meta["error"], bool(meta.get("whole_frame")), annotated=source is not None)


def extract_all(
    jobs: list[VideoJob],
    frames_dir: Path,
    settings: ExtractSettings,
    overwrite: bool = False,
    progress: bool = True,
) -> list[VideoResult]:
    """Extract every job in order, holding FRAMES_DIR's lock; the detector is loaded only if some video needs work."""
    settings.validate()
    identity = identity_of(settings)
    refuse_foreign_folder(frames_dir)
    files.ensure_writable(Path(frames_dir))
    with files.folder_lock(frames_dir, "FRAMES_DIR"):
        if not overwrite:
            refuse_changed_settings(jobs, Path(frames_dir), identity, settings)
        return _extract_jobs(jobs, Path(frames_dir), settings, identity, overwrite, progress)


def _extract_jobs(jobs: list[VideoJob], frames_dir: Path, settings: ExtractSettings, identity: dict[str, Any],
                  overwrite: bool, progress: bool) -> list[VideoResult]:
    loaded: list[PersonTracker] = []

    def get_tracker() -> PersonTracker | None:
        if not settings.person_tracking:
            return None
        if not loaded:
            loaded.append(PersonTracker(dataclasses.replace(settings.detector, object_classes=settings.objects)))
        return loaded[0]

    labels = imported.labels_by_video(settings.annotations_dir, jobs)
    imported.warn_unmatched(settings.annotations_dir, jobs)
    results = []
    for job in report.progress(jobs, desc="videos", unit="video", disable=not progress):
        result = extract_video(job, frames_dir, settings, identity, get_tracker, overwrite, progress)
        if result.status != STATUS_FAILED:
            write_track_labels(job.out_dir(frames_dir), labels.get(job.key, []))
        results.append(result)
    rebuild_manifest(frames_dir)
    return results


def summary_table(results: list[VideoResult]) -> str:
    """class | videos | failed | persons | nobody tracked (whole frame instead), one row per class, then TOTAL; with
    annotation files, how many videos were imported from them and how many detected."""
    by_class: dict[str, list[VideoResult]] = {}
    for r in results:
        by_class.setdefault("/".join(p for p in (r.job.group, r.job.label) if p), []).append(r)
    imports = any(r.annotated for r in results)
    rows = [
        [name, len(rs), sum(r.status == STATUS_FAILED for r in rs), sum(r.persons for r in rs),
         sum(r.whole_frame for r in rs)] + ([sum(r.annotated for r in rs), sum(not r.annotated for r in rs)]
                                            if imports else [])
        for name, rs in sorted(by_class.items())
    ]
    total = ["TOTAL", len(results), *(sum(r[k] for r in rows) for k in range(2, len(rows[0]) if rows else 5))]
    header = ["class", "videos", "failed", "persons", "nobody tracked (whole frame)"]
    return format_table(header + (["annotated", "detected"] if imports else []), rows, total)

