"""Stage 4: label every tracked person of a video or a live stream, frame by frame.

Each kept frame is decoded once, its persons are detected and tracked by the very code stage 1
used (``PersonTracker``, ``crop_person``, the same resampling), and every crop goes through
MobileNetV2 exactly once. Each track keeps a ring buffer of its last SEQUENCE_LENGTH features
and box motions; every PREDICT_STRIDE kept frames all ready tracks are classified in one
batched LSTM forward, and their probabilities are smoothed (EMA). Buffers of tracks that
ByteTrack has dropped are freed, and tracks.csv rows are written as they come, so memory
stays flat on an endless stream.

Outputs: annotated.mp4, tracks.csv and summary.json, written into a hidden ``.partial`` folder
inside the output folder and moved into place at the end (summary.json last: a folder without
it holds no finished prediction). The tool never touches files it did not write: a non-empty
folder that holds no prediction is refused, and ``--overwrite`` replaces only those three files.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from behavior import metrics
from behavior.data.mil import bag_probs, fold_received, label_rule, received_classes
from behavior.data.windows import pad_positions
from behavior.detect.crops import clip_box, crop_person, letterbox, motion_image, scene_crop
from behavior.detect.pose import CropGeometry, PoseEstimator, PoseSettings
from behavior.detect.tracking import WHOLE_FRAME_TRACK, Detection, PersonTracker
from behavior.errors import InputError, first_line
from behavior.features.appearance import embed_crops
from behavior.features.streams import Person, StreamState, as_recorded
from behavior.features.video_backbone import ClipBuffer, VideoBackbone, fit_size
from behavior.io import files
from behavior.io.checkpoint import load_checkpoint
from behavior.io.clips import find_videos
from behavior.io.files import file_sha256
from behavior.io.video import Frame, FrameReader, VideoWriter, is_stream, require_display
from behavior.model.network import BehaviorNet, ModelConfig, background_index, load_backbone
from behavior.predict.drawing import draw_box, draw_skeleton, palette
from behavior.runtime import backends, hardware
from behavior.runtime.interrupts import stop_requests
from behavior.settings import PredictSettings

log = logging.getLogger(__name__)

STAGES = ("decode", "detect_track", "crop_cnn", "i3d", "pose", "lstm", "draw_write")
OUTPUT_FILES = ("annotated.mp4", "tracks.csv", "summary.json")  # the only files a prediction writes or replaces
BATCH_FILES = ("batch.json", "evaluation.json", "confusion_matrix.csv", "confusion_matrix.png")
STAGING = ".partial"
NOBODY_LABELED = "nobody was tracked long enough to be labeled"  # a video label's "why" when it is null
NO_LABEL = "(no label)"  # what --evaluate predicts for a video that failed or where nobody was tracked


def load_model(path: Path, device: str) -> tuple[BehaviorNet, list[str]]:
    """Rebuild the network from a checkpoint; InputError when it does not match the code."""
    ckpt = load_checkpoint(path)
    try:
        mc = ModelConfig.from_dict(ckpt["model_config"])
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(f"checkpoint {path}: {exc}") from None
    net = BehaviorNet(mc, load_backbone(None) if mc.appearance else None)
    try:
        net.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise InputError(f"checkpoint {path} does not match its model_config: {first_line(exc)}") from None
    if len(ckpt["classes"]) != mc.num_classes:
        raise InputError(f"checkpoint {path}: {len(ckpt['classes'])} classes but a {mc.num_classes}-way head")
    if mc.background_class and mc.background_class not in ckpt["classes"]:
        raise InputError(f"checkpoint {path}: background class {mc.background_class!r} is not one of its classes")
    return net.eval().to(device), list(ckpt["classes"])


def as_saved(image: np.ndarray, mc: ModelConfig) -> np.ndarray:
    """A BGR image exactly as training read it from stage 1's JPEGs: encoded at JPEG_QUALITY, decoded as RGB."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, mc.jpeg_quality])
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def training_crop(frame: np.ndarray, det: Detection, mc: ModelConfig) -> np.ndarray:
    """The crop exactly as training saw it: stage 1's crop, as saved (``as_saved``)."""
    size = (mc.frame_width, mc.frame_height)
    crop = crop_person(frame, det.box, size, mc.crop_margin) if mc.person_tracking else letterbox(frame, size)
    return as_saved(crop, mc)


# --- Output folders: never touch what the tool did not write ----------------------------------------------------

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


def _publish(staging: Path, out: Path) -> None:
    """Move a finished prediction's files from ``staging`` into ``out``, summary.json last."""
    with files.writing(out):
        (out / "summary.json").unlink(missing_ok=True)  # until the last rename, the folder holds no prediction
        for name in OUTPUT_FILES:
            if (staging / name).exists():
                os.replace(staging / name, out / name)
            else:
                (out / name).unlink(missing_ok=True)  # an earlier run's file that this run did not write


# --- Per-track state --------------------------------------------------------------------------------------------

@dataclass
class TrackState:
    """One track: recent features and stream vectors (a ring buffer), smoothed probabilities, label statistics.

    Nothing in it grows with the track's length except ``segments``, which grows only when the label changes.
    """

    length: int
    features: deque = field(init=False)
    vectors: deque = field(init=False)
    last_crop: np.ndarray | None = None  # for CNN_INPUT "difference"
    probs: np.ndarray | None = None
    first_frame: int = -1
    last_frame: int = -1
    last_seen: int = 0  # kept-frame counter
    frames: int = 0
    labeled: int = 0  # frames with a label
    counts: Counter = field(default_factory=Counter)  # class index -> labeled frames
    conf_sum: float = 0.0
    prob_sum: np.ndarray | None = None  # sum of the smoothed probabilities over labeled frames
    segments: list[list[int]] = field(default_factory=list)  # [class, start frame, end frame]

    def __post_init__(self) -> None:
        self.features = deque(maxlen=self.length)
        self.vectors = deque(maxlen=self.length)

    def record_label(self, frame: int) -> None:
        """Add this frame's label (the argmax of the smoothed probabilities) to the running statistics."""
        k = int(self.probs.argmax())
        self.labeled += 1
        self.counts[k] += 1
        self.conf_sum += float(self.probs[k])
        self.prob_sum = self.probs.copy() if self.prob_sum is None else self.prob_sum + self.probs
        if self.segments and self.segments[-1][0] == k:
            self.segments[-1][2] = frame
        else:
            self.segments.append([k, frame, frame])

    def free(self) -> None:
        """Drop the buffers of a track ByteTrack has lost; its statistics stay for the summary."""
        self.features.clear()
        self.vectors.clear()
        self.last_crop = None


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


TRACKS_CSV_HEADER = ("frame", "time_s", "track_id", "x1", "y1", "x2", "y2", "det_conf", "label", "label_conf")


class Predictor:
    """A loaded model plus the shared detector and tracker; ``run`` processes one source."""

    def __init__(self, checkpoint: Path, settings: PredictSettings) -> None:
        settings.validate()
        self.settings = settings
        self.device = hardware.resolve_device(settings.detector.device)
        self.net, self.classes = load_model(checkpoint, self.device)
        self.checkpoint = {"path": str(Path(checkpoint).absolute()), "sha256": file_sha256(str(checkpoint))}
        self.mc = self.net.cfg
        self.background = background_index(self.mc, self.classes)
        rule = settings.video_label_rule
        self.video_rule = label_rule(self.mc.mil_pooling, self.mc.actor_classes) if rule == "auto" else rule
        self.tracker = (PersonTracker(settings.detector)
                        if self.mc.person_tracking else None)
        if self.mc.appearance and self.device == "cpu":
            backends.compiled_backbone(self.net)  # export or load MobileNetV2 for its runtime now, not mid-video
        hardware.set_threads(settings.detector.threads)
        self.colors = palette(len(self.classes))
        self.pose = self._pose_estimator(settings) if self.mc.needs_keypoints else None
        self.video = self._video_backbone(settings) if self.mc.i3d else None
        # set to a list to record (frame, track, features, stream vector, keypoints) of every person
        self.feature_log: list[tuple[int, int, torch.Tensor, np.ndarray, np.ndarray | None]] | None = None

    def _pose_estimator(self, settings: PredictSettings) -> PoseEstimator:
        """The pose model the checkpoint's keypoints came from; InputError when POSE_WEIGHTS is another one."""
        pose = PoseSettings(settings.pose_weights, self.mc.pose_imgsz, settings.detector.device,
                            settings.detector.threads, settings.detector.backend, settings.detector.precision)
        if self.mc.pose_sha256 and pose.sha256() != self.mc.pose_sha256:
            raise InputError(f"POSE_WEIGHTS {settings.pose_weights} (sha256 {pose.sha256()[:12]}) are not the pose "
                             f"weights this checkpoint was trained with (sha256 {self.mc.pose_sha256[:12]})")
        return PoseEstimator(pose)

    def _video_backbone(self, settings: PredictSettings) -> VideoBackbone:
        """The I3D the checkpoint's video features came from; InputError when I3D_WEIGHTS is another one."""
        video = VideoBackbone.load(settings.i3d_weights, self.mc.video_clip_length, self.mc.video_size, self.device,
                                   self.mc.cnn_backend, self.mc.cpu_precision)
        if self.mc.video_sha256 and video.sha256 != self.mc.video_sha256:
            raise InputError(f"I3D_WEIGHTS {settings.i3d_weights} (sha256 {video.sha256[:12]}) are not the I3D "
                             f"weights this checkpoint was trained with (sha256 {self.mc.video_sha256[:12]})")
        return video

    @torch.inference_mode()
    def _classify(self, states: list[TrackState]) -> np.ndarray:
        """One batched LSTM forward over the given tracks' buffers (short ones padded as in training)."""
        length = self.mc.sequence_length
        feats, vectors = [], []
        for s in states:
            n = len(s.features)
            positions = list(range(length)) if n == length else pad_positions(n, length, self.mc.pad_mode)
            feats.append(torch.stack([s.features[p] for p in positions]))
            vectors.append(torch.from_numpy(np.stack([s.vectors[p] for p in positions])))
        logits = self.net(torch.stack(feats).to(self.device), torch.stack(vectors).to(self.device))
        return torch.softmax(logits.float(), dim=-1).cpu().numpy()

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
            _publish(staging, out)
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
        from tqdm import tqdm

        reader = FrameReader(source, self.mc.target_fps)
        kept_fps = min(reader.fps, self.mc.target_fps) if self.mc.target_fps > 0 else reader.fps
        tracker = None if whole_frame else self.tracker
        if tracker is not None:
            tracker.reset(fps=kept_fps)
        session = _Session(self, out, kept_fps, show)
        timer = Timer()
        interrupted = False
        started = time.perf_counter()
        name = Path(str(source)).name if not is_stream(source) else str(source)
        bar = tqdm(desc=name, total=reader.total, unit="frame", leave=False, disable=not progress)

        def decoded() -> Iterator[Frame]:
            for frame in reader:
                timer.mark("decode")
                yield frame

        frames = decoded()
        if tracker is not None:
            tracked = tracker.track(frames, lambda f: f.image)
        else:
            track = WHOLE_FRAME_TRACK if whole_frame else 1
            tracked = ((f, [Detection(track, (0.0, 0.0, float(f.image.shape[1]), float(f.image.shape[0])), 1.0)])
                       for f in frames)
        try:
            # stopping early ("q", Ctrl-C) leaves no decoder or detector thread behind
            with stop_requests() as stop, closing(frames), closing(tracked):
                for frame, found in tracked:
                    h, w = frame.image.shape[:2]
                    dets = [Detection(d.track_id, clip_box(d.box, w, h), d.conf) for d in found]
                    timer.mark("detect_track")
                    session.timer.reset()
                    if not session.handle(frame, dets):
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
            bar.close()
            session.close()
        kept = session.kept
        if kept == 0:
            if interrupted:
                raise KeyboardInterrupt  # before the first frame: there is nothing to keep
            raise InputError(f"no frames could be decoded from {source}")
        measured = {**timer.per_frame(kept), **session.timer.per_frame(kept)}
        timing = {k: measured.get(k, 0.0) for k in STAGES}
        timing["total"] = round(sum(timing.values()), 2)  # work per frame; stages overlap in wall time
        timing["wall"] = round((time.perf_counter() - started) * 1000 / kept, 2)
        tracks = session.finished + list(session.states.items())
        summary = self._summary(source, reader, kept, kept_fps, tracks, timing, interrupted)
        summary["live_tracks_max"] = session.live_max
        summary["whole_frame"] = whole_frame
        for track in summary["tracks"]:
            track["whole_frame"] = whole_frame
        files.write_json(out / "summary.json", summary)
        return summary

    def _row(self, index: int, t: float, d: Detection, st: TrackState) -> list[Any]:
        probs = st.probs
        label = self.classes[int(probs.argmax())] if probs is not None else ""
        conf = f"{probs.max():.4f}" if probs is not None else ""
        return [index, f"{t:.3f}", d.track_id, *(f"{v:.1f}" for v in d.box), f"{d.conf:.4f}", label, conf,
                *((f"{p:.4f}" for p in probs) if probs is not None else [""] * len(self.classes))]

    def _draw(self, image: np.ndarray, d: Detection, st: TrackState) -> None:
        if st.probs is None:
            draw_box(image, d.box, f"#{d.track_id} ...", (200, 200, 200))
        else:
            k = int(st.probs.argmax())
            draw_box(image, d.box, f"#{d.track_id} {self.classes[k]} {st.probs[k]:.2f}", self.colors[k])

    def backends(self) -> dict[str, str]:
        """Where each network runs: the detector, the pose model, MobileNetV2 and I3D (those the model uses)."""
        out = {"detector": self.tracker.backend} if self.tracker is not None else {}
        if self.pose is not None:
            out["pose"] = self.pose.backend
        if self.mc.appearance:
            on_runtime = self.device == "cpu" and backends.compiled_backbone(self.net) is not None
            out["cnn"] = self.mc.cnn_backend if on_runtime else "torch"
        if self.video is not None:
            out["i3d"] = self.video.backend
        return out

    def _summary(self, source: Any, reader: FrameReader, kept: int, fps: float,
                 tracks: list[tuple[int, TrackState]], timing: dict[str, float], interrupted: bool) -> dict[str, Any]:
        ranked = sorted(tracks, key=lambda item: (-item[1].frames, item[1].first_frame, item[0]))
        per_track = [track_summary(track, st, self.classes, person)
                     for person, (track, st) in enumerate(ranked, start=1)]
        return {
            "source": str(source), "classes": self.classes, "frames_read": reader.frames_read, "frames_kept": kept,
            "fps": fps, "interrupted": interrupted, "tracks": per_track,
            "video_label": video_label(per_track, self.classes, self.video_rule, self.background,
                                       self.mc.actor_classes),
            "timing_ms_per_frame": timing, "checkpoint": self.checkpoint, "inference_backends": self.backends(),
            "settings": {"stride": self.settings.stride, "smoothing": self.settings.smoothing,
                         "model_config": self.mc.to_dict()},
            "created": datetime.now(UTC).isoformat(timespec="seconds"), "versions": hardware.versions(),
        }


class _Session:
    """The per-source state after tracking: crops and CNN, track buffers, LSTM, drawing and writing."""

    def __init__(self, predictor: Predictor, out: Path, fps: float, show: bool) -> None:
        self.p = predictor
        self.out, self.fps, self.show = out, fps, show
        self.states: dict[int, TrackState] = {}
        self.streams = StreamState(predictor.mc.inputs)
        self.no_features = torch.zeros(0)  # what a track's feature buffer holds when the model reads no appearance
        self.keypoints: dict[int, np.ndarray | None] = {}  # this frame's, by track, for drawing
        self.scene_clip = ClipBuffer(predictor.mc.video_clip_length)  # the scene's I3D clip (INPUTS "scene_video")
        self.finished: list[tuple[int, TrackState]] = []
        self.rows = files.CsvStream(out / "tracks.csv",
                                    [*TRACKS_CSV_HEADER, *(f"p_{c}" for c in predictor.classes)])
        self.writer: VideoWriter | None = None
        self.timer = Timer()
        self.kept = 0
        self.live_max = 0

    def handle(self, frame: Frame, dets: list[Detection]) -> bool:
        """Update the tracks with one frame's persons, classify when due, draw and write; False to stop."""
        p, mc, s = self.p, self.p.mc, self.p.settings
        image, kept = frame.image, self.kept
        scene_image = as_saved(scene_crop(image, (mc.frame_width, mc.frame_height)), mc) if mc.scene_images else None
        scene_video = None
        if "scene_video" in mc.inputs:  # every kept frame; the scene image counts as cropping
            self.timer.mark("crop_cnn")
            scene_video = self._scene_video(scene_image)
            self.timer.mark("i3d")
        if dets:
            tracks = [self.states.get(d.track_id) or self.states.setdefault(d.track_id, TrackState(mc.sequence_length))
                      for d in dets]
            # crops only for what reads them: the CNNs and the pose model (a motion-only model needs none)
            reads_crops = mc.appearance or p.pose is not None
            crops = [training_crop(image, d, mc) for d in dets] if reads_crops else []
            parts = []  # (people, dim) per feature stream, in FEATURE_STREAMS order
            if mc.appearance:
                seen = crops
                if mc.cnn_input == "difference":  # as the feature cache: against the track's previous crop
                    seen = [motion_image(c, st.last_crop) for c, st in zip(crops, tracks, strict=True)]
                    for st, crop in zip(tracks, crops, strict=True):
                        st.last_crop = crop
                parts.append(embed_crops(p.net, np.stack(seen), p.device))
            if scene_video is not None:
                parts.append(scene_video.expand(len(dets), -1))
            features = torch.cat(parts, dim=1) if parts else [self.no_features] * len(dets)
            self.timer.mark("crop_cnn")
            recorded = [as_recorded(d.box, frame.time_s) for d in dets]  # what training reads from tracks.csv
            boxes, t = [b for b, _ in recorded], recorded[0][1]
            keypoints: list[np.ndarray | None] = [None] * len(dets)
            if p.pose is not None:
                size = (mc.frame_width, mc.frame_height)
                keypoints = p.pose.estimate_source(crops, boxes, [CropGeometry.of(b, mc.crop_margin, size)
                                                                  for b in boxes])
            self.keypoints = dict(zip((d.track_id for d in dets), keypoints, strict=True))
            vectors = self.streams.step([Person(d.track_id, b, k) for d, b, k in zip(dets, boxes, keypoints,
                                                                                      strict=True)], t)
            self.timer.mark("pose")
            if p.feature_log is not None:
                p.feature_log += list(zip([frame.index] * len(dets), [d.track_id for d in dets], features, vectors,
                                          keypoints, strict=True))
            for st, feat, vec in zip(tracks, features, vectors, strict=True):
                st.features.append(feat)
                st.vectors.append(vec)
                st.first_frame = frame.index if st.first_frame < 0 else st.first_frame
                st.last_frame, st.last_seen = frame.index, kept
                st.frames += 1
        else:
            self.keypoints = {}
        if kept % s.stride == 0:
            # as in training: short tracks are padded from MIN_SEQUENCE_FRAMES on, unless PAD_MODE drops them
            needed = mc.sequence_length if mc.pad_mode == "drop" else min(mc.min_sequence_frames, mc.sequence_length)
            ready = [st for st in self.states.values() if len(st.features) >= needed]
            if ready:
                for st, probs in zip(ready, p._classify(ready), strict=True):
                    st.probs = probs if st.probs is None else s.smoothing * probs + (1 - s.smoothing) * st.probs
        for d in dets:
            st = self.states[d.track_id]
            if st.probs is not None:
                st.record_label(frame.index)
        lost_after = p.tracker.lost_after if p.tracker is not None else 1
        for track in [t for t, st in self.states.items() if kept - st.last_seen > lost_after]:
            st = self.states.pop(track)
            st.free()
            self.streams.forget(track)
            self.finished.append((track, st))
        self.live_max = max(self.live_max, len(self.states))
        self.timer.mark("lstm")
        self.rows.write([p._row(frame.index, frame.time_s, d, self.states[d.track_id]) for d in dets])
        for d in dets:
            p._draw(image, d, self.states[d.track_id])
            skeleton = self.keypoints.get(d.track_id)
            if s.draw_pose and skeleton is not None:
                draw_skeleton(image, skeleton, (255, 255, 255))
        if self.writer is None:
            self.writer = VideoWriter(self.out / "annotated.mp4", self.fps, (image.shape[1], image.shape[0]))
        self.writer.write(image)
        keep_going = True
        if self.show:
            cv2.imshow("behavior", image)
            keep_going = (cv2.waitKey(1) & 0xFF) != ord("q")
        self.timer.mark("draw_write")
        self.kept += 1
        return keep_going

    def _scene_video(self, current: np.ndarray) -> torch.Tensor:
        """I3D's feature (1, 1024) of the scene's clip, computed when a clip ends, held in between (as the cache)."""
        video = self.p.video
        if self.scene_clip.push(fit_size(current, video.size)):
            self.scene_clip.feature = torch.from_numpy(video.embed(self.scene_clip.clip()[None]))
        return self.scene_clip.feature

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.rows.close()
        if self.show:
            cv2.destroyAllWindows()


def track_summary(track: int, st: TrackState, classes: list[str], person: int = 0) -> dict[str, Any]:
    """First/last frame, label segments, majority label and mean confidence of one track.

    ``person`` is its rank as stage 1 numbers people: 1 for the track seen in the most frames.
    """
    segments = [{"label": classes[k], "start_frame": start, "end_frame": end} for k, start, end in st.segments]
    return {
        "person": person, "track_id": track, "first_frame": st.first_frame, "last_frame": st.last_frame,
        "frames": st.frames, "segments": segments,
        "majority_label": classes[st.counts.most_common(1)[0][0]] if st.counts else None,
        "mean_confidence": st.conf_sum / st.labeled if st.labeled else None,
        "labeled_frames": st.labeled,
        "mean_probs": (dict(zip(classes, map(float, st.prob_sum / st.labeled), strict=True))
                       if st.labeled else None),
    }


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


# --- Batches ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchItem:
    """One video of a batch: where it came from, its true class (if any) and the outcome."""

    path: Path
    label: str
    predicted: str | None
    error: str = ""
    interrupted: bool = False


def claim_batch_dir(folder: Path, jobs: list, checkpoint: dict[str, str], overwrite: bool) -> Path:
    """Check that a batch may write into ``folder``, mark it with batch.json, and return it, absolute.

    A non-empty folder that is not a batch's (no batch.json or evaluation.json) is refused. So are
    finished predictions made with another checkpoint, unless ``overwrite``: they are never replaced
    silently.
    """
    folder = Path(folder).absolute()
    ours = any((folder / name).is_file() for name in ("batch.json", "evaluation.json"))
    foreign = files.foreign_entries(folder, {*BATCH_FILES, *(job.out_dir(Path()).parts[0] for job in jobs)})
    if foreign and not ours:
        raise InputError(f"{folder} is not empty and holds no batch of predictions "
                         f"({files.describe_entries(foreign)}): nothing was changed; choose an empty or new "
                         "--output-dir")
    if not overwrite:
        for job in jobs:
            summary = files.read_json(job.out_dir(folder) / "summary.json")
            if prediction_state(job.out_dir(folder)) == "done" and \
                    summary.get("checkpoint", {}).get("sha256") != checkpoint["sha256"]:
                raise InputError(f"{job.out_dir(folder)} holds a prediction made with another checkpoint: pass "
                                 "--overwrite to redo the batch with this one, or choose another --output-dir")
    files.write_json(folder / "batch.json", {"checkpoint": checkpoint,
                                              "created": datetime.now(UTC).isoformat(timespec="seconds")})
    return folder


def predict_folder(predictor: Predictor, videos_dir: Path, output_dir: Path, overwrite: bool = False,
                   progress: bool = True) -> list[BatchItem]:
    """Predict every video of ``videos_dir/[<group>/]<class>/``; a bad video is recorded and the rest go on.

    A finished prediction of the same checkpoint is reused; an interrupted one is redone. Ctrl-C
    stops the batch: the last item is then marked ``interrupted`` and no later video is started.
    """

    jobs = find_videos(videos_dir)
    root = claim_batch_dir(output_dir, jobs, predictor.checkpoint, overwrite)
    with files.folder_lock(root, "the output folder"):
        return _predict_jobs(predictor, jobs, root, overwrite, progress)


def _predict_jobs(predictor: Predictor, jobs: list, root: Path, overwrite: bool, progress: bool) -> list[BatchItem]:
    from tqdm import tqdm

    items = []
    for job in tqdm(jobs, desc="videos", unit="video", disable=not progress):
        out = job.out_dir(root)
        try:
            if prediction_state(out) == "done" and not overwrite:  # made with this checkpoint: claim_batch_dir
                summary = files.read_json(out / "summary.json")
            else:
                summary = predictor.run(job.path, out, progress=False, overwrite=True)
            label = (summary.get("video_label") or {}).get("label")
            items.append(BatchItem(job.path, job.label, label, interrupted=bool(summary.get("interrupted"))))
        except InputError as exc:
            log.warning("%s: failed: %s", job.path, exc)
            items.append(BatchItem(job.path, job.label, None, str(exc)))
        if items[-1].interrupted:
            log.warning("batch interrupted at %s: %d of %d videos done; a rerun redoes it and goes on",
                        job.path, len(items) - 1, len(jobs))
            break
    return items


def check_evaluation_classes(videos_dir: Path, classes: list[str]) -> None:
    """InputError, before any video is read, when no class folder of ``videos_dir`` is a class of the model: nothing
    could be scored. Folders of other classes beside known ones are only logged (they are counted apart)."""
    folders = sorted({job.label for job in find_videos(videos_dir)})
    unknown = [c for c in folders if c not in classes]
    if len(unknown) == len(folders):
        raise InputError(f"--evaluate: the class folders of {videos_dir} ({', '.join(folders)}) are none of the "
                         f"checkpoint's classes ({', '.join(classes)}): rename them, or leave out --evaluate")
    if unknown:
        log.warning("--evaluate: class folders the model does not know are not scored: %s", ", ".join(unknown))


def evaluate_batch(items: list[BatchItem], classes: list[str], output_dir: Path) -> dict[str, Any]:
    """Video-level metrics over every video of a known class, with the confusion matrix as CSV and PNG.

    A video without a label (it failed, or nobody in it was tracked) counts as wrong: it is
    predicted as ``NO_LABEL``, a column of its own in the confusion matrix. ``labeled`` holds the
    accuracy over the videos that got a label, for comparison. Videos of classes the model does
    not know cannot be scored and are counted apart (``unknown_class``).
    """
    index = {c: i for i, c in enumerate(classes)}
    known = [it for it in items if it.label in index]
    y_true = [index[it.label] for it in known]
    y_pred = [index.get(it.predicted, len(classes)) if it.predicted is not None else len(classes) for it in known]
    report = metrics.evaluate(y_true, y_pred, classes, none_label=NO_LABEL)
    labeled = [(t, p) for t, p in zip(y_true, y_pred, strict=True) if p < len(classes)]
    report["labeled"] = {"n": len(labeled),
                         "accuracy": float(np.mean([t == p for t, p in labeled])) if labeled else 0.0}
    report.update(unknown_class=sum(it.label not in index for it in items),
                  failed=sum(bool(it.error) for it in known),
                  no_prediction=sum(not it.error and it.predicted is None for it in known))
    report["videos"] = [{"video": str(it.path), "label": it.label, "predicted": it.predicted, "error": it.error}
                        for it in items]
    files.write_json(Path(output_dir) / "evaluation.json", report)
    metrics.write_confusion_csv(Path(output_dir) / "confusion_matrix.csv", report)
    metrics.plot_confusion(Path(output_dir) / "confusion_matrix.png", report, "predict.py --evaluate (video level)")
    return report


def evaluation_headline(report: dict[str, Any]) -> str:
    """The one line a user reads first: accuracy over every video, and what it includes, in the same line.

    Example:
        >>> evaluation_headline({"n": 48, "accuracy": 0.5625, "macro_f1": 0.6, "failed": 0, "no_prediction": 7,
        ...                      "labeled": {"n": 41, "accuracy": 0.6585}, "unknown_class": 0})
        'accuracy 0.5625 over all 48 videos (7 unlabeled count as wrong; 0.6585 over the 41 labeled) | macro-F1 0.6000'
    """
    unlabeled = report["failed"] + report["no_prediction"]
    line = f"accuracy {report['accuracy']:.4f} over all {report['n']} videos"
    if unlabeled:
        line += (f" ({unlabeled} unlabeled count as wrong; {report['labeled']['accuracy']:.4f} over the "
                 f"{report['labeled']['n']} labeled)")
    line += f" | macro-F1 {report['macro_f1']:.4f}"
    if report["unknown_class"]:
        line += f" | {report['unknown_class']} videos of classes the model does not know are not scored"
    return line
