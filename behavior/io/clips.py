"""The clips folder users give stage 1 and predict.py: ``<class>/*.mp4`` or ``<group>/<class>/*.mp4``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from behavior.errors import InputError
from behavior.io.video import VIDEO_EXTENSIONS, is_video_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoJob:
    """One input video and the labels its folders give it."""

    path: Path
    group: str
    label: str

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def key(self) -> str:
        """``group/class/stem`` (or ``class/stem``): unique within a dataset."""
        return "/".join(p for p in (self.group, self.label, self.stem) if p)

    def out_dir(self, frames_dir: Path) -> Path:
        """Where this video's crops and meta files go."""
        return Path(frames_dir).joinpath(*[p for p in (self.group, self.label, self.stem) if p])


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _videos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and is_video_file(p))


def find_videos(clips_dir: Path) -> list[VideoJob]:
    """List the videos of ``clips_dir/<class>/`` and ``clips_dir/<group>/<class>/``, sorted.

    Raises InputError when the folder is missing or holds no video; warns about class
    folders without videos and loose videos outside any class folder.
    """
    clips_dir = Path(clips_dir)
    if not clips_dir.is_dir():
        raise InputError(f"clips folder not found: {clips_dir}")
    jobs: list[VideoJob] = []
    loose = _videos_in(clips_dir)
    if loose:
        log.warning("ignoring %d video(s) directly in %s: put them in a <class>/ folder", len(loose), clips_dir)
    for top in _visible_dirs(clips_dir):
        direct = _videos_in(top)
        jobs += [VideoJob(p, "", top.name) for p in direct]
        subdirs = _visible_dirs(top)
        for sub in subdirs:
            videos = _videos_in(sub)
            jobs += [VideoJob(p, top.name, sub.name) for p in videos]
            if not videos:
                log.warning("class folder %s has no videos (%s)", sub, ", ".join(sorted(VIDEO_EXTENSIONS)))
        if not direct and not subdirs:
            log.warning("class folder %s has no videos (%s)", top, ", ".join(sorted(VIDEO_EXTENSIONS)))
    if not jobs:
        raise InputError(
            f"no videos found in {clips_dir}: expected {clips_dir}/<class>/*.mp4 "
            f"or {clips_dir}/<group>/<class>/*.mp4 ({', '.join(sorted(VIDEO_EXTENSIONS))}, any case)"
        )
    return _drop_duplicate_stems(sorted(jobs, key=lambda j: (j.key, j.path.suffix)))


def _drop_duplicate_stems(jobs: list[VideoJob]) -> list[VideoJob]:
    """Two videos with one stem in one class folder would share an output folder: keep the first."""
    seen: dict[str, VideoJob] = {}
    for job in jobs:
        if job.key in seen:
            log.warning("skipping %s: %s has the same stem and would share its output folder",
                        job.path, seen[job.key].path)
        else:
            seen[job.key] = job
    return list(seen.values())
