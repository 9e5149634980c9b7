"""What a prediction writes: its output folder (claimed, staged, published), tracks.csv row by row, and summary.json's
per-track and per-video labels.

Outputs go into a hidden ``.partial`` folder inside the output folder and are moved into place at the end
(summary.json last: a folder without it holds no finished prediction). The tool never touches files it did not
write: a non-empty folder that holds no prediction is refused, and ``--overwrite`` replaces only its own files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from behavior.data.mil import bag_probs, fold_received, received_classes
from behavior.detect.tracking import Detection
from behavior.errors import InputError
from behavior.io import files
from behavior.io.annotations import write_labels
from behavior.io.frames import TrackLabel
from behavior.io.video import Frame
from behavior.predict.tracks import TrackState

OUTPUT_FILES = ("annotated.mp4", "tracks.csv", "annotations.json", "labels.csv", "timeline.png", "report.html",
                "summary.json")  # the only files a prediction writes or replaces
STAGING = ".partial"
NOBODY_LABELED = "nobody was tracked long enough to be labeled"  # a video label's "why" when it is null
TRACKS_CSV_HEADER = ("frame", "time_s", "track_id", "person", "x1", "y1", "x2", "y2", "det_conf", "label",
                     "label_conf")


def prediction_state(folder: Path) -> str:
    """``"done"`` (a finished prediction), ``"interrupted"`` (a partial one), or ``"none"``."""
    summary = files.read_json(Path(folder) / "summary.json")
    if not isinstance(summary, dict) or "video_label" not in summary:
        return "none"
    return "interrupted" if summary.get("interrupted") else "done"


def claim_output_dir(folder: Path, overwrite: bool) -> Path:
    """Check that a prediction may be written into ``folder`` and return it, absolute.

    A missing or empty folder, or one holding only our own outputs, is fine; an interrupted
    prediction is redone; a finished one needs ``overwrite``. A folder holding anything else and
    no prediction is refused even with ``overwrite``: the tool never deletes what it did not write.
    """
    folder = Path(folder).absolute()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"output folder {folder} is a file")
    state = prediction_state(folder)
    foreign = files.foreign_entries(folder, OUTPUT_FILES)
    if foreign and state == "none":
        raise InputError(f"{folder} is not empty and holds no prediction ({files.describe_entries(foreign)}): "
                         "nothing was changed; choose an empty or new --output-dir")
    if state == "done" and not overwrite:
        raise InputError(f"{folder} already holds a prediction: pass --overwrite to replace it (only "
                         f"{', '.join(OUTPUT_FILES)} are replaced) or choose another --output-dir")
    return folder


def publish(staging: Path, out: Path) -> None:
    """Move a finished prediction's files from ``staging`` into ``out``, summary.json last."""
    with files.writing(out):
        (out / "summary.json").unlink(missing_ok=True)  # until the last rename, the folder holds no prediction
        for name in OUTPUT_FILES:
            if (staging / name).exists():
                os.replace(staging / name, out / name)
            else:
                (out / name).unlink(missing_ok=True)  # an earlier run's file that this run did not write


class TracksCsv:
    """tracks.csv, one row per person and frame, written as frames come (and off the main thread).

    Example:
        >>> rows = TracksCsv(Path("tracks.csv"), ["fight", "walk"])  # doctest: +SKIP
        >>> rows.write(frame, detections, states)  # doctest: +SKIP
    """

    def __init__(self, path: Path, classes: list[str]) -> None:
        self.classes = classes
        self.stream = files.CsvStream(path, [*TRACKS_CSV_HEADER, *(f"p_{c}" for c in classes)])

    def write(self, frame: Frame, dets: list[Detection], states: dict[int, TrackState]) -> None:
        """The rows of one frame's people, with each one's smoothed label (empty until the first)."""
        self.stream.write([self._row(frame, d, states[d.track_id]) for d in dets])

    def _row(self, frame: Frame, d: Detection, st: TrackState) -> list[Any]:
        probs = st.probs
        label = self.classes[int(probs.argmax())] if probs is not None else ""
        conf = f"{probs.max():.4f}" if probs is not None else ""
        return [frame.index, f"{frame.time_s:.3f}", d.track_id, st.name, *(f"{v:.1f}" for v in d.box),
                f"{d.conf:.4f}", label, conf,
                *((f"{p:.4f}" for p in probs) if probs is not None else [""] * len(self.classes))]

    def close(self) -> None:
        self.stream.close()


def export_labels(out: Path, video: str, tracks: list[dict[str, Any]]) -> None:
    """labels.csv: each track's label segments, as ANNOTATIONS_DIR takes them beside annotations.json (the session's
    ``PoseTrackWriter``): a user corrects both in an annotation tool and trains on them."""
    stem = Path(video).stem
    write_labels(out / "labels.csv", [(stem, TrackLabel(t["track_id"], s["label"], s["start_frame"], s["end_frame"]))
                                      for t in tracks for s in t["segments"]])


def track_summary(track: int, st: TrackState, classes: list[str], source_fps: float = 0.0) -> dict[str, Any]:
    """First/last frame, label segments, majority label and mean confidence of one track.

    ``person`` is its name's number (person_1 was labeled first; None for a track never labeled), as the video and
    tracks.csv name it. With the source's ``source_fps``, frames are also given in seconds (the time of each frame
    in the video).
    """
    def seconds(frame: int) -> float | None:
        return round(frame / source_fps, 3) if source_fps > 0 else None

    segments = [{"label": classes[k], "start_frame": start, "end_frame": end, "start_s": seconds(start),
                 "end_s": seconds(end), "confidence": round(conf / frames, 4)}
                for k, start, end, conf, frames in st.segments]
    return {
        "person": st.person or None, "track_id": track, "first_frame": st.first_frame, "last_frame": st.last_frame,
        "first_s": seconds(st.first_frame), "last_s": seconds(st.last_frame), "frames": st.frames,
        "segments": segments,
        "majority_label": classes[st.counts.most_common(1)[0][0]] if st.counts else None,
        "mean_confidence": st.conf_sum / st.labeled if st.labeled else None,
        "labeled_frames": st.labeled,
        "mean_probs": (dict(zip(classes, map(float, st.prob_sum / st.labeled), strict=True))
                       if st.labeled else None),
    }


class RunningLabel:
    """The video's label so far, for the annotated video's banner: the tracks labeled until now pooled as
    summary.json pools them (``video_label``), refreshed every ``every`` frames (a stream's tracks only grow).

    Example:
        >>> RunningLabel(["fight", "walk"], "mean", None, (), every=15).update(0, [])
        '...'
    """

    def __init__(self, classes: list[str], rule: str, background: int | None, actor_classes: Sequence[str],
                 every: int) -> None:
        self.classes, self.rule, self.background, self.actor_classes = classes, rule, background, actor_classes
        self.every, self.text = max(every, 1), "..."

    def update(self, kept: int, tracks: Iterable[TrackState]) -> str:
        """The label text for the ``kept``-th frame."""
        if kept % self.every == 0:
            people = [{"mean_probs": dict(zip(self.classes, map(float, st.prob_sum / st.labeled), strict=True)),
                       "labeled_frames": st.labeled} for st in tracks if st.labeled]
            label = video_label(people, self.classes, self.rule, self.background, self.actor_classes)["label"]
            self.text = label or "..."
        return self.text


def clock(seconds: float) -> str:
    """A time in the video as minutes and seconds.

    Example:
        >>> clock(75.25)
        '1:15.2'
    """
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def video_label(tracks: list[dict[str, Any]], classes: list[str], rule: str, background: int | None = None,
                actor_classes: Sequence[str] = ()) -> dict[str, Any]:
    """The video's label from its tracks' mean probabilities, pooled by ``rule`` as training pools a clip's people.

    ``mean``: each class's probability averaged over tracks, weighted by their labeled frames. ``max``: the most
    telling track decides (``behavior.data.mil``); with a ``background``
    class, the video is background only when every track is (also under ``mean_min``). Scores are normalized
    to sum to one. With ``actor_classes``, a track receiving an action counts for it ("kick_received": kick).

    Example:
        >>> tracks = [{"mean_probs": {"fight": 0.9, "walk": 0.1}, "labeled_frames": 2},
        ...           {"mean_probs": {"fight": 0.2, "walk": 0.8}, "labeled_frames": 6}]
        >>> [video_label(tracks, ["fight", "walk"], rule)["label"] for rule in ("mean", "max")]
        ['walk', 'fight']
    """
    folded = received_classes(actor_classes)  # counted for their actions: no video is "kick_received"
    labeled = [t for t in tracks if t["mean_probs"]]
    if not labeled:
        return {"label": None, "rule": rule, "scores": {c: 0.0 for c in classes if c not in folded},
                "why": NOBODY_LABELED}
    people = torch.tensor([[t["mean_probs"][c] for c in classes] for t in labeled], dtype=torch.float64)
    weights = torch.tensor([t["labeled_frames"] for t in labeled], dtype=torch.float64)
    pooled = bag_probs(fold_received(people, classes, actor_classes), rule, background, weights).tolist()
    scores = {c: round(float(p), 6) for c, p in zip(classes, pooled, strict=True) if c not in folded}
    return {"label": classes[int(np.argmax(pooled))], "rule": rule, "scores": scores}
