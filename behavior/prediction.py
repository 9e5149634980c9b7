"""Stage 4: label every tracked person of a video or a live stream, frame by frame.

Each kept frame is decoded once, its persons are detected and tracked by the very code stage 1
used (``PersonTracker``, ``crop_person``, the same resampling), and every crop goes through
MobileNetV2 exactly once. Each track keeps a ring buffer of its last SEQUENCE_LENGTH features
and box motions; every PREDICT_STRIDE kept frames all ready tracks are classified in one
batched LSTM forward, and their probabilities are smoothed (EMA). Buffers of tracks that
ByteTrack has dropped are freed, so memory stays flat on an endless stream.

Outputs (written under a temporary name, then moved into place): annotated.mp4, tracks.csv and
summary.json; see ``write_outputs``.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch

from behavior import files, runtime
from behavior.crops import clip_box, crop_person, letterbox, motion_image
from behavior.data import MotionState, motion_step
from behavior.drawing import draw_box, palette
from behavior.errors import InputError
from behavior.features import embed_crops
from behavior.model import BehaviorNet, ModelConfig, load_backbone
from behavior.sequences import pad_positions
from behavior.settings import build_settings, check_fields
from behavior.tracking import Detection, DetectorSettings, PersonTracker
from behavior.training import load_checkpoint
from behavior.video import Frame, FrameReader, VideoWriter

log = logging.getLogger(__name__)

STAGES = ("decode", "detect_track", "crop_cnn", "lstm", "draw_write")


@dataclass(frozen=True)
class PredictSettings:
    """How to run prediction (config.py, stage 4); the model's own settings come from its checkpoint."""

    stride: int = 4
    smoothing: float = 0.5
    video_label_rule: str = "mean"
    detector: DetectorSettings = field(default_factory=DetectorSettings)

    CONSTANTS: ClassVar[dict[str, str]] = {
        "stride": "PREDICT_STRIDE", "smoothing": "SMOOTHING", "video_label_rule": "VIDEO_LABEL_RULE"}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> PredictSettings:
        """Build from the effective ``config.py`` values."""
        return build_settings(cls, cfg, cls.CONSTANTS, detector=DetectorSettings.from_config(cfg))

    def validate(self) -> None:
        """Raise InputError for values no run could use (the rules of ``behavior.settings``)."""
        check_fields(self, self.CONSTANTS)
        check_fields(self.detector, self.detector.CONSTANTS)


def load_model(path: Path, device: str) -> tuple[BehaviorNet, list[str]]:
    """Rebuild the network from a checkpoint; InputError when it does not match the code."""
    ckpt = load_checkpoint(path)
    try:
        mc = ModelConfig.from_dict(ckpt["model_config"])
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(f"checkpoint {path} does not match this version: {exc}") from None
    net = BehaviorNet(mc, load_backbone(None))
    try:
        net.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise InputError(f"checkpoint {path} does not match its model_config: {str(exc).splitlines()[0]}") from None
    if len(ckpt["classes"]) != mc.num_classes:
        raise InputError(f"checkpoint {path}: {len(ckpt['classes'])} classes but a {mc.num_classes}-way head")
    return net.eval().to(device), list(ckpt["classes"])


def training_crop(frame: np.ndarray, det: Detection, mc: ModelConfig) -> np.ndarray:
    """The crop exactly as training saw it: stage 1's crop, JPEG-encoded at its quality, decoded as RGB."""
    size = (mc.frame_width, mc.frame_height)
    crop = crop_person(frame, det.box, size, mc.crop_margin) if mc.person_tracking else letterbox(frame, size)
    ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, mc.jpeg_quality])
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@dataclass
class TrackState:
    """One live track: its recent features and motions, smoothed probabilities and label history."""

    length: int
    features: deque = field(init=False)
    motion: deque = field(init=False)
    prev: MotionState | None = None
    last_crop: np.ndarray | None = None  # for CNN_INPUT "difference"
    probs: np.ndarray | None = None
    first_frame: int = -1
    last_frame: int = -1
    last_seen: int = 0  # kept-frame counter
    frames: int = 0
    history: list[tuple[int, int, float]] = field(default_factory=list)  # frame, class, confidence
    prob_sum: np.ndarray | None = None  # sum of the smoothed probabilities over labeled frames

    def __post_init__(self) -> None:
        self.features = deque(maxlen=self.length)
        self.motion = deque(maxlen=self.length)


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
        self.device = runtime.resolve_device(settings.detector.device)
        self.net, self.classes = load_model(checkpoint, self.device)
        self.mc = self.net.cfg
        self.tracker = PersonTracker(settings.detector) if self.mc.person_tracking else None
        runtime.set_threads(settings.detector.threads)
        self.colors = palette(len(self.classes))
        self.feature_log: list[tuple[int, int, torch.Tensor]] | None = None  # set to a list to record features

    @torch.inference_mode()
    def _classify(self, states: list[TrackState]) -> np.ndarray:
        """One batched LSTM forward over the given tracks' buffers (short ones padded as in training)."""
        length = self.mc.sequence_length
        feats, motions = [], []
        for s in states:
            n = len(s.features)
            positions = list(range(length)) if n == length else pad_positions(n, length, self.mc.pad_mode)
            feats.append(torch.stack([s.features[p] for p in positions]))
            motions.append(torch.from_numpy(np.stack([s.motion[p] for p in positions])))
        logits = self.net(torch.stack(feats).to(self.device), torch.stack(motions).to(self.device))
        return torch.softmax(logits.float(), dim=-1).cpu().numpy()

    def run(self, source: str | int | Path, output_dir: Path, show: bool = False, progress: bool = True,
            overwrite: bool = False) -> dict[str, Any]:
        """Predict one video or stream into ``output_dir``; returns the summary."""
        output_dir = Path(output_dir)
        if (output_dir / "summary.json").exists() and not overwrite:
            raise InputError(f"{output_dir} already holds a prediction: pass --overwrite or another --output-dir")
        staging = output_dir.with_name(f".{output_dir.name}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            summary = self._run(source, staging, show, progress)
            files.replace_dir(staging, output_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return summary

    def _run(self, source: str | int | Path, out: Path, show: bool, progress: bool) -> dict[str, Any]:
        """Decode (one thread ahead), detect and track, then hand each frame to the session.

        The session's work (crops, CNN, LSTM, drawing) stays on this thread: on a small CPU a second
        compute thread only fights the detector for the same cores (measured: slower overall).
        """
        from tqdm import tqdm

        reader = FrameReader(source, self.mc.target_fps)
        kept_fps = min(reader.fps, self.mc.target_fps) if self.mc.target_fps > 0 else reader.fps
        if self.tracker is not None:
            self.tracker.reset(fps=kept_fps)
        session = _Session(self, out, kept_fps, show)
        timer = Timer()
        interrupted = False
        started = time.perf_counter()
        bar = tqdm(desc=str(source), unit="frame", leave=False, disable=not progress)
        try:
            for frame in reader:
                timer.mark("decode")
                h, w = frame.image.shape[:2]
                if self.tracker is not None:
                    dets = self.tracker.update(frame.image)
                else:
                    dets = [Detection(1, (0.0, 0.0, float(w), float(h)), 1.0)]
                dets = [Detection(d.track_id, clip_box(d.box, w, h), d.conf) for d in dets]
                timer.mark("detect_track")
                session.timer.reset()
                if not session.handle(frame, dets):
                    break  # "q" in the window
                timer.reset()
                bar.update()
        except KeyboardInterrupt:
            interrupted = True
            log.warning("interrupted: finishing the outputs of the frames seen")
        finally:
            bar.close()
            session.close()
        kept = session.kept
        if kept == 0:
            raise InputError(f"no frames could be decoded from {source}")
        measured = {**timer.per_frame(kept), **session.timer.per_frame(kept)}
        timing = {k: measured.get(k, 0.0) for k in STAGES}
        timing["total"] = round(sum(timing.values()), 2)  # work per frame; stages overlap in wall time
        timing["wall"] = round((time.perf_counter() - started) * 1000 / kept, 2)
        tracks = sorted(session.finished + list(session.states.items()), key=lambda item: item[0])
        summary = self._summary(source, reader, kept, kept_fps, tracks, timing, interrupted)
        summary["live_tracks_max"] = session.live_max
        header = ["frame", "time_s", "track_id", "x1", "y1", "x2", "y2", "det_conf", "label", "label_conf",
                  *(f"p_{c}" for c in self.classes)]
        files.write_csv(out / "tracks.csv", header, session.rows)
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

    def _summary(self, source: Any, reader: FrameReader, kept: int, fps: float,
                 tracks: list[tuple[int, TrackState]], timing: dict[str, float], interrupted: bool) -> dict[str, Any]:
        per_track = [track_summary(track, st, self.classes) for track, st in tracks]
        return {
            "source": str(source), "classes": self.classes, "frames_read": reader.frames_read, "frames_kept": kept,
            "fps": fps, "interrupted": interrupted, "tracks": per_track,
            "video_label": video_label(per_track, self.classes, self.settings.video_label_rule),
            "timing_ms_per_frame": timing,
            "settings": {"stride": self.settings.stride, "smoothing": self.settings.smoothing,
                         "model_config": self.mc.to_dict()},
            "versions": runtime.versions(),
        }


class _Session:
    """The per-source state after tracking: crops and CNN, track buffers, LSTM, drawing and writing."""

    def __init__(self, predictor: Predictor, out: Path, fps: float, show: bool) -> None:
        self.p = predictor
        self.out, self.fps, self.show = out, fps, show
        self.states: dict[int, TrackState] = {}
        self.finished: list[tuple[int, TrackState]] = []
        self.rows: list[list[Any]] = []
        self.writer: VideoWriter | None = None
        self.timer = Timer()
        self.kept = 0
        self.live_max = 0

    def handle(self, frame: Frame, dets: list[Detection]) -> bool:
        """Update the tracks with one frame's persons, classify when due, draw and write; False to stop."""
        p, mc, s = self.p, self.p.mc, self.p.settings
        image, kept = frame.image, self.kept
        if dets:
            tracks = [self.states.get(d.track_id) or self.states.setdefault(d.track_id, TrackState(mc.sequence_length))
                      for d in dets]
            crops = [training_crop(image, d, mc) for d in dets]
            if mc.cnn_input == "difference":  # as the feature cache: against the track's previous crop
                raw = crops
                crops = [motion_image(c, st.last_crop) for c, st in zip(raw, tracks, strict=True)]
                for st, crop in zip(tracks, raw, strict=True):
                    st.last_crop = crop
            features = embed_crops(p.net, np.stack(crops), p.device)
            if p.feature_log is not None:
                p.feature_log += [(frame.index, d.track_id, f) for d, f in zip(dets, features, strict=True)]
            for d, st, feat in zip(dets, tracks, features, strict=True):
                vec, st.prev = motion_step(d.box, frame.time_s, st.prev)
                st.features.append(feat)
                st.motion.append(vec)
                st.first_frame = frame.index if st.first_frame < 0 else st.first_frame
                st.last_frame, st.last_seen = frame.index, kept
                st.frames += 1
        self.timer.mark("crop_cnn")
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
                st.history.append((frame.index, int(st.probs.argmax()), float(st.probs.max())))
                st.prob_sum = st.probs.copy() if st.prob_sum is None else st.prob_sum + st.probs
        lost_after = p.tracker.lost_after if p.tracker is not None else 1
        for track in [t for t, st in self.states.items() if kept - st.last_seen > lost_after]:
            st = self.states.pop(track)  # keep its summary, free its buffers
            st.features.clear()
            st.motion.clear()
            st.last_crop = None
            self.finished.append((track, st))
        self.live_max = max(self.live_max, len(self.states))
        self.timer.mark("lstm")
        for d in dets:
            self.rows.append(p._row(frame.index, frame.time_s, d, self.states[d.track_id]))
            p._draw(image, d, self.states[d.track_id])
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

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.show:
            cv2.destroyAllWindows()


def track_summary(track: int, st: TrackState, classes: list[str]) -> dict[str, Any]:
    """First/last frame, label segments, majority label and mean confidence of one track."""
    segments: list[dict[str, Any]] = []
    for frame, k, _ in st.history:
        if segments and segments[-1]["label"] == classes[k]:
            segments[-1]["end_frame"] = frame
        else:
            segments.append({"label": classes[k], "start_frame": frame, "end_frame": frame})
    counts = Counter(k for _, k, _ in st.history)
    mean_probs = (st.prob_sum / len(st.history)).tolist() if st.history else None
    return {
        "track_id": track, "first_frame": st.first_frame, "last_frame": st.last_frame, "frames": st.frames,
        "segments": segments,
        "majority_label": classes[counts.most_common(1)[0][0]] if counts else None,
        "mean_confidence": float(np.mean([c for _, _, c in st.history])) if st.history else None,
        "labeled_frames": len(st.history),
        "mean_probs": dict(zip(classes, map(float, mean_probs), strict=True)) if mean_probs else None,
    }


def video_label(tracks: list[dict[str, Any]], classes: list[str], rule: str) -> dict[str, Any]:
    """The video's label from its tracks' mean probabilities.

    ``mean``: each class's probability averaged over tracks, weighted by their labeled frames (as
    training's video-level evaluation averages over sequences). ``max``: each class's highest mean
    probability in any one track, so the single most confident person decides.

    Example:
        >>> tracks = [{"mean_probs": {"fight": 0.9, "walk": 0.1}, "labeled_frames": 2},
        ...           {"mean_probs": {"fight": 0.2, "walk": 0.8}, "labeled_frames": 6}]
        >>> [video_label(tracks, ["fight", "walk"], rule)["label"] for rule in ("mean", "max")]
        ['walk', 'fight']
    """
    labeled = [t for t in tracks if t["mean_probs"]]
    if not labeled:
        return {"label": None, "rule": rule, "scores": dict.fromkeys(classes, 0.0)}
    if rule == "mean":
        weights = np.array([t["labeled_frames"] for t in labeled], float)
        scores = {c: float(np.average([t["mean_probs"][c] for t in labeled], weights=weights)) for c in classes}
    else:
        scores = {c: float(max(t["mean_probs"][c] for t in labeled)) for c in classes}
    return {"label": max(classes, key=lambda c: scores[c]), "rule": rule, "scores": scores}


@dataclass(frozen=True)
class BatchItem:
    """One video of a batch: where it came from, its true class (if any) and the outcome."""

    path: Path
    label: str
    predicted: str | None
    error: str = ""


def predict_folder(predictor: Predictor, videos_dir: Path, output_dir: Path, overwrite: bool = False,
                   progress: bool = True) -> list[BatchItem]:
    """Predict every video of ``videos_dir/[<group>/]<class>/``; a bad video is recorded and skipped."""
    from tqdm import tqdm

    from behavior.extraction import find_videos

    items = []
    for job in tqdm(find_videos(videos_dir), desc="videos", unit="video", disable=not progress):
        out = job.out_dir(output_dir)
        try:
            if (out / "summary.json").exists() and not overwrite:
                summary = files.read_json(out / "summary.json") or {}
            else:
                summary = predictor.run(job.path, out, progress=False, overwrite=overwrite)
            items.append(BatchItem(job.path, job.label, (summary.get("video_label") or {}).get("label")))
        except InputError as exc:
            log.warning("%s: failed: %s", job.path, exc)
            items.append(BatchItem(job.path, job.label, None, str(exc)))
    return items


def evaluate_batch(items: list[BatchItem], classes: list[str], output_dir: Path) -> dict[str, Any]:
    """Video-level metrics of a labeled batch, with the confusion matrix as CSV and PNG (stage 3's code).

    Videos whose class the model does not know, failed videos and videos with nobody in them are
    counted apart, not scored.
    """
    from behavior import metrics

    index = {c: i for i, c in enumerate(classes)}
    scored = [it for it in items if it.label in index and it.predicted in index]
    report = metrics.evaluate([index[it.label] for it in scored], [index[it.predicted] for it in scored], classes)
    report.update(unknown_class=sum(it.label not in index for it in items),
                  failed=sum(bool(it.error) for it in items),
                  no_prediction=sum(not it.error and it.predicted is None for it in items))
    report["videos"] = [{"video": str(it.path), "label": it.label, "predicted": it.predicted, "error": it.error}
                        for it in items]
    files.write_json(Path(output_dir) / "evaluation.json", report)
    metrics.write_confusion_csv(Path(output_dir) / "confusion_matrix.csv", report)
    metrics.plot_confusion(Path(output_dir) / "confusion_matrix.png", report, "predict.py --evaluate (video level)")
    return report
