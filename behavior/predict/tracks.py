"""Each tracked person's state during a prediction, and the two per-frame components that keep it: the track buffer
(recent features, freed when ByteTrack drops a track) and the classifier (batched LSTM, smoothed probabilities)."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from behavior.data.windows import pad_positions
from behavior.detect.tracking import Detection
from behavior.model.network import BehaviorNet, ModelConfig


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
    person: int = 0  # its name, person_<n>: people are numbered as they get their first label (0: not yet)
    first_frame: int = -1
    last_frame: int = -1
    last_seen: int = 0  # kept-frame counter
    frames: int = 0
    labeled: int = 0  # frames with a label
    counts: Counter = field(default_factory=Counter)  # class index -> labeled frames
    conf_sum: float = 0.0
    prob_sum: np.ndarray | None = None  # sum of the smoothed probabilities over labeled frames
    segments: list[list] = field(default_factory=list)  # [class, start frame, end frame, confidence sum, frames]

    def __post_init__(self) -> None:
        self.features = deque(maxlen=self.length)
        self.vectors = deque(maxlen=self.length)

    @property
    def name(self) -> str:
        """``person_<n>``, the name the video, tracks.csv and summary.json give it; empty before its first label."""
        return f"person_{self.person}" if self.person else ""

    def record_label(self, frame: int) -> None:
        """Add this frame's label (the argmax of the smoothed probabilities) to the running statistics."""
        k = int(self.probs.argmax())
        self.labeled += 1
        self.counts[k] += 1
        self.conf_sum += float(self.probs[k])
        self.prob_sum = self.probs.copy() if self.prob_sum is None else self.prob_sum + self.probs
        if not self.segments or self.segments[-1][0] != k:
            self.segments.append([k, frame, frame, 0.0, 0])
        segment = self.segments[-1]
        segment[2] = frame
        segment[3] += float(self.probs[k])
        segment[4] += 1

    def free(self) -> None:
        """Drop the buffers of a track ByteTrack has lost; its statistics stay for the summary."""
        self.features.clear()
        self.vectors.clear()
        self.last_crop = None


class TrackBuffer:
    """The live tracks, by track id: a ring buffer of features per track; memory stays flat on an endless stream.

    Example:
        >>> buffer = TrackBuffer(sequence_length=16, lost_after=30)
        >>> [st.length for st in buffer.tracks_of([Detection(7, (0.0, 0.0, 10.0, 20.0), 0.9)])]
        [16]
    """

    def __init__(self, sequence_length: int, lost_after: int) -> None:
        self.length, self.lost_after = sequence_length, lost_after
        self.states: dict[int, TrackState] = {}
        self.finished: list[tuple[int, TrackState]] = []  # dropped tracks, kept for the summary
        self.live_max = 0

    def tracks_of(self, dets: list[Detection]) -> list[TrackState]:
        """The state of each detection's track, new ones started."""
        return [self.states.get(d.track_id) or self.states.setdefault(d.track_id, TrackState(self.length))
                for d in dets]

    def append(self, frame_index: int, kept: int, tracks: list[TrackState], features: torch.Tensor | list[torch.Tensor],
               vectors: list[np.ndarray]) -> None:
        """Add one frame's features and stream vectors to its people's buffers."""
        for st, feat, vec in zip(tracks, features, vectors, strict=True):
            st.features.append(feat)
            st.vectors.append(vec)
            st.first_frame = frame_index if st.first_frame < 0 else st.first_frame
            st.last_frame, st.last_seen = frame_index, kept
            st.frames += 1

    def drop_lost(self, kept: int) -> list[int]:
        """Free the tracks ByteTrack has dropped (unseen for longer than it keeps them); returns their ids."""
        lost = [t for t, st in self.states.items() if kept - st.last_seen > self.lost_after]
        for track in lost:
            st = self.states.pop(track)
            st.free()
            self.finished.append((track, st))
        self.live_max = max(self.live_max, len(self.states))
        return lost

    def every_state(self) -> Iterator[TrackState]:
        """Every track seen so far, live or dropped."""
        yield from self.states.values()
        yield from (st for _, st in self.finished)


class Classifier:
    """Every ``stride`` kept frames, one batched LSTM forward over the ready tracks; probabilities smoothed by EMA.

    As in training, short tracks are padded from MIN_SEQUENCE_FRAMES on, unless PAD_MODE drops them.
    """

    def __init__(self, net: BehaviorNet, model_config: ModelConfig, device: str, stride: int, smoothing: float) -> None:
        self.net, self.model_config, self.device = net, model_config, device
        self.stride, self.smoothing = stride, smoothing
        length = model_config.sequence_length
        self.needed = length if model_config.pad_mode == "drop" else min(model_config.min_sequence_frames, length)

    def update(self, kept: int, states: dict[int, TrackState]) -> None:
        """Classify the ready tracks when due and smooth their probabilities."""
        if kept % self.stride:
            return
        ready = [st for st in states.values() if len(st.features) >= self.needed]
        if ready:
            for st, probs in zip(ready, self.classify(ready), strict=True):
                st.probs = probs if st.probs is None else self.smoothing * probs + (1 - self.smoothing) * st.probs

    @torch.inference_mode()
    def classify(self, states: list[TrackState]) -> np.ndarray:
        """One batched LSTM forward over the given tracks' buffers (short ones padded as in training)."""
        model_config = self.model_config
        length = model_config.sequence_length
        feats, vectors = [], []
        for s in states:
            n = len(s.features)
            positions = list(range(length)) if n == length else pad_positions(n, length, model_config.pad_mode)
            feats.append(torch.stack([s.features[p] for p in positions]))
            vectors.append(torch.from_numpy(np.stack([s.vectors[p] for p in positions])))
        logits = self.net(torch.stack(feats).to(self.device), torch.stack(vectors).to(self.device))
        return torch.softmax(logits.float(), dim=-1).cpu().numpy()
