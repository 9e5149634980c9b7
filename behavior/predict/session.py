"""Stage 4: label every tracked person of a video or a live stream, frame by frame.

Each kept frame is decoded once, its persons are detected and tracked by the very code stage 1
used (``PersonTracker``, ``crop_person``, the same resampling), and every crop goes through
MobileNetV2 exactly once. A ``Session`` hands each frame to small components in turn: person
features (``PersonFeatures``), the track buffer (a ring buffer of the last SEQUENCE_LENGTH
features per track, freed when ByteTrack drops it), the classifier (every PREDICT_STRIDE kept
frames one batched LSTM forward over the ready tracks, smoothed by EMA), tracks.csv, the
annotator and the video writer. The annotated video has every source frame: those between two kept
frames are drawn with the boxes and labels of the kept one before them. Memory stays flat on an
endless stream.

Outputs (``behavior.predict.outputs``): annotated.mp4, tracks.csv and summary.json.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from behavior import report
from behavior.data.mil import label_rule
from behavior.detect.crops import clip_box
from behavior.detect.pose import PoseEstimator, PoseSettings
from behavior.detect.tracking import WHOLE_FRAME_TRACK, Detection, PersonTracker
from behavior.errors import InputError, first_line
from behavior.features.streams import as_recorded
from behavior.features.video_backbone import VideoBackbone
from behavior.io import files
from behavior.io.annotations import AnnotatedPerson, PoseTrackWriter
from behavior.io.checkpoint import load_checkpoint
from behavior.io.files import file_sha256
from behavior.io.frames import SceneObject
from behavior.io.video import Frame, FrameReader, VideoWriter, is_stream, require_display
from behavior.model.network import BehaviorNet, ModelConfig, background_index, load_backbone
from behavior.predict.drawing import Annotator
from behavior.predict.outputs import (
    STAGING,
    RunningLabel,
    TracksCsv,
    claim_output_dir,
    clock,
    export_labels,
    publish,
    track_summary,
    video_label,
)
from behavior.predict.pages import write_pages
from behavior.predict.person_features import PersonFeatures
from behavior.predict.tracks import Classifier, TrackBuffer, TrackState
from behavior.runtime import backends, hardware
from behavior.runtime.interrupts import stop_requests
from behavior.settings import PredictSettings

log = logging.getLogger(__name__)

STAGES = ("decode", "detect_track", "crop_cnn", "i3d", "pose", "lstm", "draw_write")


def load_model(path: Path, device: str) -> tuple[BehaviorNet, list[str]]:
    """Rebuild the network from a checkpoint; InputError when it does not match the code."""
    ckpt = load_checkpoint(path)
    try:
        model_config = ModelConfig.from_dict(ckpt["model_config"])
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(f"checkpoint {path}: {exc}") from None
    net = BehaviorNet(model_config, load_backbone(None) if model_config.appearance else None)
    try:
        net.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise InputError(f"checkpoint {path} does not match its model_config: {first_line(exc)}") from None
    if len(ckpt["classes"]) != model_config.num_classes:
        raise InputError(f"checkpoint {path}: {len(ckpt['classes'])} classes but a {model_config.num_classes}-way head")
    if model_config.background_class and model_config.background_class not in ckpt["classes"]:
        raise InputError(f"checkpoint {path}: background class {model_config.background_class!r} is not one of its "
                         "classes")
    return net.eval().to(device), list(ckpt["classes"])


class Timer:
    """Milliseconds spent per stage, for the per-frame timing table."""

    def __init__(self) -> None:
        self.total = dict.fromkeys(STAGES, 0.0)  # stages measured on another thread stay 0
        self._last = time.perf_counter()

    def reset(self) -> None:
        """Start the next measurement now (time spent waiting is not any stage's)."""
        self._last = time.perf_counter()

    def mark(self, stage: str) -> None:
        now = time.perf_counter()
        self.total[stage] += (now - self._last) * 1000
        self._last = now

    def per_frame(self, frames: int) -> dict[str, float]:
        """Milliseconds per frame of the stages this timer measured."""
        return {k: round(v / max(frames, 1), 2) for k, v in self.total.items() if v > 0}


class Predictor:
    """A loaded model plus the shared detector and tracker; ``run`` processes one source."""

    def __init__(self, checkpoint: Path, settings: PredictSettings) -> None:
        settings.validate()
        self.settings = settings
        self.device = hardware.resolve_device(settings.detector.device)
        self.net, self.classes = load_model(checkpoint, self.device)
        self.checkpoint = {"path": str(Path(checkpoint).absolute()), "sha256": file_sha256(str(checkpoint))}
        self.model_config = self.net.cfg
        self.background = background_index(self.model_config, self.classes)
        rule = settings.video_label_rule
        self.video_rule = label_rule(self.model_config.mil_pooling,
                                     self.model_config.actor_classes) if rule == "auto" else rule
        objects = self.model_config.object_classes if "objects" in self.model_config.inputs else ()
        self.tracker = (PersonTracker(dataclasses.replace(settings.detector, object_classes=objects))
                        if self.model_config.person_tracking else None)
        if self.model_config.appearance and self.device == "cpu":
            backends.compiled_backbone(self.net)  # export or load MobileNetV2 for its runtime now, not mid-video
        hardware.set_threads(settings.detector.threads)
        self.pose = self._pose_estimator(settings) if self.model_config.needs_keypoints else None
        self.video = self._video_backbone(settings) if self.model_config.i3d else None

    def _pose_estimator(self, settings: PredictSettings) -> PoseEstimator:
        """The pose model the checkpoint's keypoints came from; InputError when POSE_WEIGHTS is another one."""
        pose = PoseSettings(settings.pose_weights, self.model_config.pose_imgsz, settings.detector.device,
                            settings.detector.threads, settings.detector.backend, settings.detector.precision)
        if self.model_config.pose_sha256 and pose.sha256() != self.model_config.pose_sha256:
            raise InputError(f"POSE_WEIGHTS {settings.pose_weights} (sha256 {pose.sha256()[:12]}) are not the pose "
                             f"weights this checkpoint was trained with (sha256 {self.model_config.pose_sha256[:12]})")
        return PoseEstimator(pose)

    def _video_backbone(self, settings: PredictSettings) -> VideoBackbone:
        """The I3D the checkpoint's video features came from; InputError when I3D_WEIGHTS is another one."""
        video = VideoBackbone.load(settings.i3d_weights, self.model_config.video_clip_length,
                                   self.model_config.video_size, self.device,
                                   self.model_config.cnn_backend, self.model_config.cpu_precision)
        if self.model_config.video_sha256 and video.sha256 != self.model_config.video_sha256:
            raise InputError(f"I3D_WEIGHTS {settings.i3d_weights} (sha256 {video.sha256[:12]}) are not the I3D "
                             f"weights this checkpoint was trained with (sha256 {self.model_config.video_sha256[:12]})")
        return video

    def run(self, source: str | int | Path, output_dir: Path, show: bool = False, progress: bool = True,
            overwrite: bool = False) -> dict[str, Any]:
        """Predict one video or stream into ``output_dir``; returns the summary.

        Ctrl-C ends the source early: the frames seen so far are written as a prediction marked
        ``"interrupted": true``, which no rerun takes for finished. Callers decide the exit code.
        """
        out = claim_output_dir(output_dir, overwrite)
        if show:
            require_display()
        created = not out.exists()
        try:
            files.ensure_writable(out)  # a read-only or full disk is one line now, not a traceback later
            with files.folder_lock(out, "the output folder"):
                return self._run_into(source, out, show, progress)
        finally:
            if created and out.is_dir() and not any(out.iterdir()):
                out.rmdir()  # a run that failed leaves no empty folder behind

    def _run_into(self, source: str | int | Path, out: Path, show: bool, progress: bool) -> dict[str, Any]:
        """Predict into ``out``'s staging folder, then publish the outputs (``out``'s lock held)."""
        staging = out / STAGING
        shutil.rmtree(staging, ignore_errors=True)
        try:
            with files.writing(staging):
                staging.mkdir()
            summary = self._run(source, staging, show, progress)
            if (self.tracker is not None and summary["video_label"]["label"] is None and not summary["interrupted"]
                    and not is_stream(source)):  # a label for every video, as training gives one
                log.warning("%s: nobody was tracked long enough for a label: the whole frame stands in (track %d)",
                            Path(str(source)).name, WHOLE_FRAME_TRACK)
                summary = self._run(source, staging, show, progress, whole_frame=True)
            publish(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return summary

    def _run(self, source: str | int | Path, out: Path, show: bool, progress: bool,
             whole_frame: bool = False) -> dict[str, Any]:
        """Decode (one thread ahead), detect and track, then hand each frame to the session.

        ``whole_frame``: no detector; the whole frame is the one person (track 0), cut as stage 1 cuts
        the frames of a video where nobody was tracked.

        The detector takes DETECT_BATCH frames a call, one batch ahead (``PersonTracker.track``: on the
        inference runtimes it runs on a worker thread while this thread tracks and handles the previous
        batch; the tracks are those of frame-by-frame detection). The session's work (crops, CNN, pose,
        LSTM, drawing) stays on this thread.
        """
        reader = FrameReader(source, self.model_config.target_fps, between=True)  # the video shows every frame
        kept_fps = min(reader.fps, self.model_config.target_fps) if self.model_config.target_fps > 0 else reader.fps
        if self.tracker is not None and not whole_frame:
            self.tracker.reset(fps=kept_fps)  # before the session: how long a lost track is kept depends on it
        session = Session(self, out, kept_fps, reader.fps, show)
        timer = Timer()
        started = time.perf_counter()
        name = Path(str(source)).name if not is_stream(source) else str(source)
        with report.progress(desc=name, total=reader.total, unit="frame", leave=False, disable=not progress) as bar:
            interrupted = self._track_into(session, reader, timer, bar, whole_frame)
        kept = session.kept
        if kept == 0:
            if interrupted:
                raise KeyboardInterrupt  # before the first frame: there is nothing to keep
            raise InputError(f"no frames could be decoded from {source}")
        measured = {**timer.per_frame(kept), **session.timer.per_frame(kept)}
        timing = {k: measured.get(k, 0.0) for k in STAGES}
        timing["total"] = round(sum(timing.values()), 2)  # work per frame; stages overlap in wall time
        timing["wall"] = round((time.perf_counter() - started) * 1000 / kept, 2)
        tracks = session.buffer.finished + list(session.buffer.states.items())
        summary = self._summary(source, reader, kept, kept_fps, tracks, timing, interrupted)
        export_labels(out, name, summary["tracks"])
        write_pages(out, summary)
        summary["live_tracks_max"] = session.buffer.live_max
        summary["whole_frame"] = whole_frame
        for track in summary["tracks"]:
            track["whole_frame"] = whole_frame
        files.write_json(out / "summary.json", summary)
        return summary

    def _track_into(self, session: Session, reader: FrameReader, timer: Timer, bar: Any, whole_frame: bool) -> bool:
        """Hand every tracked frame to ``session`` until the source ends, "q" or Ctrl-C; True when interrupted."""
        tracker = None if whole_frame else self.tracker

        def decoded() -> Iterator[Frame]:
            for frame in reader:
                timer.mark("decode")
                yield frame

        frames = decoded()
        if tracker is not None:
            tracked = tracker.track(frames, lambda f: f.image)
        else:
            track = WHOLE_FRAME_TRACK if whole_frame else 1
            tracked = ((f, [Detection(track, (0.0, 0.0, float(f.image.shape[1]), float(f.image.shape[0])), 1.0)], [])
                       for f in frames)
        interrupted = False
        try:
            # stopping early ("q", Ctrl-C) leaves no decoder or detector thread behind
            with stop_requests() as stop, closing(frames), closing(tracked):
                for frame, found, objects in tracked:
                    h, w = frame.image.shape[:2]
                    dets = [Detection(d.track_id, clip_box(d.box, w, h), d.conf) for d in found]
                    timer.mark("detect_track")
                    session.timer.reset()
                    if not session.handle(frame, dets, objects):
                        break  # "q" in the window
                    timer.reset()
                    bar.update()
                    if stop.requested:
                        interrupted = True
                        break
        except KeyboardInterrupt:  # a second Ctrl-C, or one before the loop began
            interrupted = True
        finally:
            if interrupted:
                log.warning("interrupted after %d frames: writing their outputs, marked as interrupted", session.kept)
            session.close()
        return interrupted

    def backends(self) -> dict[str, str]:
        """Where each network runs: the detector, the pose model, MobileNetV2 and I3D (those the model uses)."""
        out = {"detector": self.tracker.backend} if self.tracker is not None else {}
        if self.pose is not None:
            out["pose"] = self.pose.backend
        if self.model_config.appearance:
            on_runtime = self.device == "cpu" and backends.compiled_backbone(self.net) is not None
            out["cnn"] = self.model_config.cnn_backend if on_runtime else "torch"
        if self.video is not None:
            out["i3d"] = self.video.backend
        return out

    def _summary(self, source: Any, reader: FrameReader, kept: int, fps: float,
                 tracks: list[tuple[int, TrackState]], timing: dict[str, float], interrupted: bool) -> dict[str, Any]:
        ranked = sorted(tracks, key=lambda item: (not item[1].person, item[1].person, -item[1].frames,
                                                  item[1].first_frame, item[0]))  # the named first, in name order
        per_track = [track_summary(track, st, self.classes, reader.fps) for track, st in ranked]
        return {
            "source": str(source), "classes": self.classes, "frames_read": reader.frames_read, "frames_kept": kept,
            "fps": fps, "source_fps": reader.fps, "duration_s": round(reader.frames_read / reader.fps, 3)
            if reader.fps else None, "interrupted": interrupted, "tracks": per_track,
            "video_label": video_label(per_track, self.classes, self.video_rule, self.background,
                                       self.model_config.actor_classes),
            "timing_ms_per_frame": timing, "checkpoint": self.checkpoint, "inference_backends": self.backends(),
            "settings": {"stride": self.settings.stride, "smoothing": self.settings.smoothing,
                         "model_config": self.model_config.to_dict()},
            "created": datetime.now(UTC).isoformat(timespec="seconds"), "versions": hardware.versions(),
        }


class Session:
    """One source's per-frame pipeline after tracking: person features, track buffer, classifier, tracks.csv,
    annotator and video writer; each component takes one call per frame."""

    def __init__(self, predictor: Predictor, out: Path, fps: float, video_fps: float, show: bool) -> None:
        model_config, settings = predictor.model_config, predictor.settings
        self.out, self.video_fps, self.show = out, video_fps, show  # annotated.mp4 at the source's rate
        self.timer = Timer()
        self.people = PersonFeatures(predictor.net, model_config, predictor.device, predictor.pose, predictor.video,
                                     self.timer)
        lost_after = predictor.tracker.lost_after if predictor.tracker is not None else 1
        self.buffer = TrackBuffer(model_config.sequence_length, lost_after)
        self.classifier = Classifier(predictor.net, model_config, predictor.device, settings.stride, settings.smoothing)
        self.rows = TracksCsv(out / "tracks.csv", predictor.classes)
        self.annotator = Annotator(predictor.classes, settings.draw_pose)
        self.label = RunningLabel(predictor.classes, predictor.video_rule, predictor.background,
                                  model_config.actor_classes, every=int(round(fps)))  # the banner's, once a second
        self.writer: VideoWriter | None = None
        self.kept = 0
        self.named = 0  # people named so far (person_1, person_2...)
        self.annotations = PoseTrackWriter(out / "annotations.json")

    def handle(self, frame: Frame, dets: list[Detection], objects: list[SceneObject] = ()) -> bool:
        """Update the tracks with one frame's persons (and objects), classify when due, draw and write; False to
        stop."""
        tracks = self.buffer.tracks_of(dets)
        found = self.people.compute(frame, dets, tracks, objects)
        self.buffer.append(frame.index, self.kept, tracks, found.features, found.vectors)
        self.classifier.update(self.kept, self.buffer.states)
        for _, st in sorted(zip((d.track_id for d in dets), tracks, strict=True), key=lambda pair: pair[0]):
            if st.probs is not None:
                if not st.person:  # named as they get their first label, in track order within a frame
                    self.named += 1
                    st.person = self.named
                st.record_label(frame.index)
        for track in self.buffer.drop_lost(self.kept):
            self.people.forget(track)
        self.timer.mark("lstm")
        self.rows.write(frame, dets, self.buffer.states)
        self.annotations.add(frame.index, [AnnotatedPerson(d.track_id, as_recorded(d.box, 0)[0], k)
                                           for d, k in zip(dets, found.keypoints, strict=True)], objects)
        label = self.label.update(self.kept, self.buffer.every_state())
        keypoints = dict(zip((d.track_id for d in dets), found.keypoints, strict=True))
        objects_of = dict(zip((d.track_id for d in dets), found.objects, strict=True))
        keep_going = True
        for shown in (frame, *frame.between):  # the source frames up to the next kept one hold this frame's boxes
            self.annotator.annotate(shown.image, dets, self.buffer.states, keypoints, objects_of,
                                    banner=f"{clock(shown.time_s)}  video: {label}")
            keep_going = self._show_and_write(shown.image) and keep_going
        self.timer.mark("draw_write")
        self.kept += 1
        return keep_going

    def _show_and_write(self, image: np.ndarray) -> bool:
        """Append the annotated frame to annotated.mp4 (and the window, with --show); False when "q" was pressed."""
        if self.writer is None:
            self.writer = VideoWriter(self.out / "annotated.mp4", self.video_fps, (image.shape[1], image.shape[0]),
                                      codec="h264")  # browsers play it: the report page shows it
        self.writer.write(image)
        if not self.show:
            return True
        cv2.imshow("behavior", image)
        return (cv2.waitKey(1) & 0xFF) != ord("q")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.rows.close()
        self.annotations.close()
        if self.show:
            cv2.destroyAllWindows()
