"""Stage 2: cut each person's crops into fixed-length, labeled sequences.

Everything here works on file names: the number in ``frame_<n>.jpg`` is the source frame index,
and ``meta.json`` says how frames were kept, so gaps are measured in kept frames without
decoding a single image. Padding repeats paths; no image is ever copied.

Example:
    >>> dense_windows(20, length=8, stride=6)
    [[0, 1, 2, 3, 4, 5, 6, 7], [6, 7, 8, 9, 10, 11, 12, 13], [12, 13, 14, 15, 16, 17, 18, 19]]
    >>> pad_positions(3, length=8, mode="reverse")
    [0, 1, 2, 1, 0, 1, 2, 1]
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from behavior.data.splits import SPLITS, assign_splits, read_split_file, video_groups
from behavior.data.windows import dense_windows, pad_positions
from behavior.errors import InputError
from behavior.io import files
from behavior.io.frames import FRAME_FILE, PERSON_DIR, STATUS_DONE, TrackLabel, iter_meta, read_track_labels, scan_meta
from behavior.io.sequence_file import (
    GROUPS_HEADER,
    GROUPS_NAME,
    LABEL_FROM_CLIP,
    LABEL_FROM_TRACK,
    SEQUENCES_HEADER,
    refuse_foreign_sequences_file,
)
from behavior.io.video import kept_ordinal
from behavior.report import format_table
from behavior.settings import SequenceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PersonTrack:
    """One person's crops in one video, in time order."""

    group: str
    label: str
    video: str
    person: int
    frame_indices: tuple[int, ...]  # source frame index of each crop
    ordinals: tuple[int, ...]  # position of each crop among the video's kept frames
    paths: tuple[str, ...]  # crop paths relative to FRAMES_DIR
    labels: tuple[TrackLabel, ...] = ()  # the labels the user gave this track (ANNOTATIONS_DIR), if any

    @property
    def video_key(self) -> str:
        """``group/class/video`` (or ``class/video``), unique within a dataset."""
        return "/".join(p for p in (self.group, self.label, self.video) if p)


@dataclass(frozen=True)
class Window:
    """One window of a person's track: SEQUENCE_LENGTH crop paths, a row of the sequences file (a training example)."""

    sequence_id: str
    label: str
    group: str
    video: str
    person: int
    start_frame: int
    end_frame: int
    n_real_frames: int
    padding: str
    frames: tuple[str, ...]
    clip: str = ""  # the video's class folder (``label`` unless the user labeled this person: ``label_source``)
    label_source: str = LABEL_FROM_CLIP

    @property
    def video_key(self) -> str:
        return "/".join(p for p in (self.group, self.clip or self.label, self.video) if p)

    def row(self, split: str) -> tuple:
        """The CSV row of this sequence in ``split``."""
        return (self.sequence_id, split, self.label, self.group, self.video, self.person, self.start_frame,
                self.end_frame, self.n_real_frames, self.padding, "|".join(self.frames), self.label_source)


def split_segments(ordinals: tuple[int, ...] | list[int], max_gap: int) -> list[range]:
    """Cut a track where more than ``max_gap`` kept frames are missing; returns position ranges.

    Example:
        >>> split_segments([0, 1, 2, 9, 10], max_gap=5)
        [range(0, 3), range(3, 5)]
    """
    segments, start = [], 0
    for i in range(1, len(ordinals)):
        if ordinals[i] - ordinals[i - 1] - 1 > max_gap:
            segments.append(range(start, i))
            start = i
    if ordinals:
        segments.append(range(start, len(ordinals)))
    return segments


def window_label(track: PersonTrack, first: int, last: int, background: str) -> tuple[str, str] | None:
    """The label of a window of ``track`` over source frames ``first`` to ``last``, and where it comes from.

    A track without labels of its own takes its clip's. A labeled track: the label whose range holds the whole
    window; a window outside every range is ``background`` (BACKGROUND_CLASS) or, without one, None (dropped), as
    is a window that straddles a range's edge.

    Example:
        >>> track = PersonTrack("", "fight", "v", 1, (), (), (), (TrackLabel(7, "punch", 10, 20),))
        >>> window_label(track, 12, 18, "none"), window_label(track, 30, 40, "none"), window_label(track, 5, 15, "")
        (('punch', 'track'), ('none', 'track'), None)
    """
    if not track.labels:
        return track.label, LABEL_FROM_CLIP
    for given in track.labels:
        if given.covers(first, last):
            return given.label, LABEL_FROM_TRACK
    if background and not any(given.touches(first, last) for given in track.labels):
        return background, LABEL_FROM_TRACK
    return None


def track_sequences(track: PersonTrack, settings: SequenceSettings) -> list[Window]:
    """All windows of one person's track, gap-cut, sampled and padded as the settings say, each labeled by
    ``window_label``."""
    out = []
    for segment in split_segments(track.ordinals, settings.max_gap):
        n = len(segment)
        if n < settings.min_frames:
            continue
        windows = dense_windows(n, settings.length, settings.stride)
        padding = "none"
        if not windows:  # shorter than one window
            positions = pad_positions(n, settings.length, settings.pad_mode)
            if positions is None:
                continue
            windows, padding = [positions], settings.pad_mode
        for window in windows:
            picks = [segment[p] for p in window]
            first, last = min(picks), max(picks)
            labeled = window_label(track, track.frame_indices[first], track.frame_indices[last],
                                   settings.background_class)
            if labeled is None:
                continue
            out.append(Window(
                sequence_id=f"{track.video_key}/person_{track.person}/{track.frame_indices[first]:06d}",
                label=labeled[0], group=track.group, video=track.video, person=track.person,
                start_frame=track.frame_indices[first], end_frame=track.frame_indices[last],
                n_real_frames=len(set(picks)), padding=padding,
                frames=tuple(track.paths[p] for p in picks), clip=track.label, label_source=labeled[1],
            ))
    return out


def evenly_spaced(items: list, limit: int) -> list:
    """At most ``limit`` items spread evenly over the list (all of them when ``limit`` is 0)."""
    if limit <= 0 or len(items) <= limit:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def _person_frames(folder: Path) -> list[tuple[int, str]]:
    """``(source index, file name)`` of every crop in a person folder, by index."""
    frames = []
    with os.scandir(folder) as entries:
        for entry in entries:
            m = FRAME_FILE.match(entry.name)
            if m:
                frames.append((int(m.group(1)), entry.name))
    return sorted(frames)


def finished_videos(frames_dir: Path, metas: list[tuple[Path, dict[str, Any]]] | None = None,
                    ) -> list[tuple[Path, dict[str, Any]]]:
    """``(meta.json path, meta)`` of every video that stage 1 finished (of ``metas`` when already read)."""
    metas = list(iter_meta(frames_dir)) if metas is None else metas
    return [(path, meta) for path, meta in metas if meta.get("status") == STATUS_DONE]


def read_tracks(frames_dir: Path, videos: list[tuple[Path, dict[str, Any]]]) -> Iterator[PersonTrack]:
    """Every person track of the given finished videos, from directory listings and meta.json only."""
    frames_dir = Path(frames_dir)
    for meta_path, meta in videos:
        video_dir = meta_path.parent
        fps = float(meta.get("fps") or 0) or 30.0
        target = float((meta.get("settings") or {}).get("target_fps") or 0)
        rel_dir = video_dir.relative_to(frames_dir).as_posix()
        with os.scandir(video_dir) as entries:
            people = sorted(
                (int(m.group(1)), e.name) for e in entries if e.is_dir() and (m := PERSON_DIR.match(e.name))
            )
        labels = read_track_labels(video_dir)
        track_of = {int(p.get("person", 0)): p.get("track_id") for p in meta.get("persons", [])}
        for person, name in people:
            frames = _person_frames(video_dir / name)
            if not frames:
                log.warning("skipping %s/%s: its crop files are gone", rel_dir, name)
                continue
            yield PersonTrack(
                group=str(meta.get("group", "")), label=str(meta.get("class", video_dir.parent.name)),
                video=str(meta.get("video", video_dir.name)), person=person,
                frame_indices=tuple(i for i, _ in frames),
                ordinals=tuple(kept_ordinal(i, fps, target) for i, _ in frames),
                paths=tuple(f"{rel_dir}/{name}/{f}" for _, f in frames),
                labels=tuple(t for t in labels if t.track_id == track_of.get(person)),
            )


def build_sequences(frames_dir: Path, settings: SequenceSettings,
                    metas: list[tuple[Path, dict[str, Any]]] | None = None) -> list[Window]:
    """All sequences of all finished videos under ``frames_dir``, in a stable order (``metas``: already read)."""
    frames_dir = Path(frames_dir)
    if not frames_dir.is_dir():
        raise InputError(f"frames folder not found: {frames_dir} (run extract_frames.py first)")
    settings.validate()
    videos = finished_videos(frames_dir, metas)
    if not videos:
        raise InputError(f"no finished videos in {frames_dir}: run extract_frames.py first (see manifest.csv)")
    by_video: dict[str, list[Window]] = {}
    longest: list[int] = []  # each track's longest segment, in kept frames
    for track in read_tracks(frames_dir, videos):
        by_video.setdefault(track.video_key, []).extend(track_sequences(track, settings))
        longest.append(max(len(segment) for segment in split_segments(track.ordinals, settings.max_gap)))
    warn_if_windows_outgrow_tracks(settings, longest)
    sequences = []
    for key in sorted(by_video):
        sequences += evenly_spaced(by_video[key], settings.max_per_video)
    if not sequences:
        raise InputError(f"no sequences: no person track in {frames_dir} reaches MIN_SEQUENCE_FRAMES "
                         f"({settings.min_frames}); lower it or MIN_TRACK_FRAMES, or extract at a higher TARGET_FPS")
    return sequences


def warn_if_windows_outgrow_tracks(settings: SequenceSettings, longest: list[int]) -> None:
    """Warn when SEQUENCE_LENGTH is much longer than most tracks: their windows would be mostly padding."""
    if not longest:
        return
    typical = sorted(longest)[len(longest) // 2]
    if settings.length > 2 * typical:
        log.warning("SEQUENCE_LENGTH %d is much longer than the tracks (half of them last %d kept frames or fewer): "
                    "most windows are padding; a window of about %d frames reads real motion", settings.length,
                    typical, max(typical, settings.min_frames))


def why_no_sequence(meta: dict[str, Any], tracks: list[PersonTrack], settings: SequenceSettings) -> str:
    """Why a video of stage 1 gives no sequence, in the words of the setting that decided it."""
    if meta.get("status") != STATUS_DONE:
        return f"stage 1 failed: {meta.get('error') or 'no reason recorded'}"
    if not meta.get("persons"):
        needed = (meta.get("settings") or {}).get("min_track_frames", "MIN_TRACK_FRAMES")
        return f"stage 1 tracked nobody for {needed} kept frames (MIN_TRACK_FRAMES)"
    if not tracks:
        return "its crop files are gone"
    longest = max(len(segment) for t in tracks for segment in split_segments(t.ordinals, settings.max_gap))
    if longest < settings.min_frames:
        return (f"its longest track segment has {longest} frames, fewer than MIN_SEQUENCE_FRAMES "
                f"({settings.min_frames})")
    return (f"its longest track segment has {longest} frames, fewer than SEQUENCE_LENGTH ({settings.length}), "
            "and PAD_MODE 'drop' pads nothing")


def videos_without_sequences(frames_dir: Path, settings: SequenceSettings, have: set[str],
                             metas: list[tuple[Path, dict[str, Any]]]) -> list[tuple[str, str]]:
    """``(video key, why)`` for every video of stage 1 (finished or failed, from ``metas``) not in ``have``."""
    frames_dir = Path(frames_dir)
    missing = []
    for path, meta in metas:
        key = "/".join(p for p in (meta.get("group", ""), meta.get("class", ""), meta.get("video", "")) if p)
        if key and key not in have:
            tracks = list(read_tracks(frames_dir, [(path, meta)])) if meta.get("status") == STATUS_DONE else []
            missing.append((key, why_no_sequence(meta, tracks, settings)))
    return sorted(missing)


@dataclass(frozen=True)
class SequenceSet:
    """Sequences with their video-level splits and the ordered class names: stage 2's result."""

    sequences: list[Window]
    split_of: dict[str, str]  # video key -> split
    classes: list[str]
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (video key, why it has no sequence in any split)
    group_of: dict[str, str] | None = None  # video key -> recording group, when GROUPS_FILE or GROUP_PATTERN is set

    def dropped_table(self) -> str:
        """The videos that stage 2 leaves out, each with the reason; "" when there are none."""
        if not self.dropped:
            return ""
        total = len(self.dropped) + len(self.split_of)
        width = max(len(key) for key, _ in self.dropped)
        lines = [f"{len(self.dropped)} of {total} videos have no sequence in any split:"]
        return "\n".join(lines + [f"  {key.ljust(width)}  {why}" for key, why in self.dropped])

    def rows(self) -> list[tuple]:
        """CSV rows, train then val then test, each in video and time order."""
        kept = [s for s in self.sequences if s.video_key in self.split_of]
        kept.sort(key=lambda s: SPLITS.index(self.split_of[s.video_key]))  # stable: keeps the order within
        return [s.row(self.split_of[s.video_key]) for s in kept]

    def table(self) -> str:
        """split x class: videos, persons, sequences (and recording groups, when known); then TOTAL."""
        stats: dict[tuple[str, str], list[set | int]] = {}
        for s in self.sequences:
            split = self.split_of.get(s.video_key)
            if split is None:
                continue
            entry = stats.setdefault((split, s.label), [set(), set(), 0])
            entry[0].add(s.video_key)
            entry[1].add((s.video_key, s.person))
            entry[2] += 1
        order = sorted(stats.items(), key=lambda item: (SPLITS.index(item[0][0]), item[0][1]))
        rows = [[split, label, len(v), len(p), n] for (split, label), (v, p, n) in order]
        total = ["TOTAL", "", sum(r[2] for r in rows), sum(r[3] for r in rows), sum(r[4] for r in rows)]
        header = ["split", "class", "videos", "persons", "sequences"]
        if self.group_of is None:
            return format_table(header, rows, total)
        for row, (_, (v, _, _)) in zip(rows, order, strict=True):
            row.insert(2, len({self.group_of[k] for k in v}))
        total.insert(2, len({self.group_of[k] for k in self.split_of}))
        table = format_table([*header[:2], "groups", *header[2:]], rows, total)
        shared = self.groups_in_several_splits()
        if shared:
            table += (f"\nWARNING: {len(shared)} group(s) span several splits, e.g. {shared[0]}: "
                      "the split file mixes recordings")
        return table

    def groups_in_several_splits(self) -> list[str]:
        """Recording groups with videos in more than one split (only a split file can do that)."""
        splits_of: dict[str, set[str]] = {}
        for key, split in self.split_of.items():
            splits_of.setdefault(self.group_of[key] if self.group_of else key, set()).add(split)
        return sorted(g for g, s in splits_of.items() if len(s) > 1)

    def groups_text(self) -> str | None:
        """The ``video,group`` CSV written beside the sequences (None without groups): cross-validation reads it."""
        if self.group_of is None:
            return None
        return files.csv_text(GROUPS_HEADER, [(k, self.group_of[k]) for k in sorted(self.split_of)])


def group_sequences(
    frames_dir: Path,
    settings: SequenceSettings,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 42,
    split_file: Path | None = None,
    groups_file: Path | None = None,
    group_pattern: str = "",
) -> SequenceSet:
    """Build every sequence under ``frames_dir`` and split them by video (or as ``split_file`` says).

    With ``groups_file`` or ``group_pattern`` (GROUPS_FILE, GROUP_PATTERN), whole recording groups
    are split instead of single videos.
    """
    metas, unreadable = scan_meta(frames_dir) if Path(frames_dir).is_dir() else ([], [])  # each meta.json read once
    sequences = build_sequences(frames_dir, settings, metas)
    classes = sorted({s.label for s in sequences})
    if len(classes) < 2:
        raise InputError(
            f"only one class ({classes[0]}) has sequences in {frames_dir}: a classifier needs at least two"
        )
    videos_by_class: dict[str, list[str]] = {}
    for s in sequences:
        keys = videos_by_class.setdefault(s.clip or s.label, [])
        if not keys or keys[-1] != s.video_key:
            keys.append(s.video_key)
    keys = [k for keys in videos_by_class.values() for k in keys]
    group_of = video_groups(keys, groups_file, group_pattern)
    if split_file is not None:
        split_of = read_split_file(split_file, keys)
    else:
        split_of = assign_splits(videos_by_class, fractions, seed, group_of)
    dropped = videos_without_sequences(frames_dir, settings, set(keys), metas) + unreadable
    dropped += [(k, "not in the split file") for k in keys if k not in split_of]
    return SequenceSet(sequences, split_of, classes, sorted(dropped), group_of)


def write_sequence_set(result: SequenceSet, out_file: Path, overwrite: bool = False) -> bool:
    """Write the sequences CSV, classes.json, the split table and groups.csv beside it; False when already identical.

    Raises InputError rather than replace a different existing file without ``overwrite``. A
    groups.csv of an earlier, grouped run is removed when this run has no groups.
    """
    out_file = Path(out_file)
    refuse_foreign_sequences_file(out_file)
    with files.folder_lock(out_file.parent, "the sequences folder"):
        return _write_sequence_set(result, out_file, overwrite)


def _write_sequence_set(result: SequenceSet, out_file: Path, overwrite: bool) -> bool:
    text = files.csv_text(SEQUENCES_HEADER, result.rows())
    extras: dict[Path, str | None] = {
        out_file.with_name("classes.json"): json.dumps(result.classes, indent=2) + "\n",
        out_file.with_suffix(".summary.txt"): "\n\n".join(filter(None, (result.table(), result.dropped_table())))
        + "\n",
        out_file.with_name(GROUPS_NAME): result.groups_text(),
    }
    if out_file.is_file():
        if out_file.read_text(encoding="utf-8") == text and all(
            (p.read_text(encoding="utf-8") if p.is_file() else None) == t for p, t in extras.items()
        ):
            return False
        if not overwrite:
            raise InputError(f"{out_file} exists and would change: pass --overwrite to replace it")
    for path, content in extras.items():
        if content is not None:
            files.atomic_write_text(path, content)
        elif path.is_file():
            path.unlink()
    files.atomic_write_text(out_file, text)
    return True
