"""I3D features of short clips, one vector per image: the ``scene_video`` stream.

A folder's images in order (a video's scene images, one per kept frame) are read in clips of ``VIDEO_CLIP_LENGTH``
(L). At every L-th image (ordinals 0, L, 2L, ...) the clip of the L images ending there (the first image repeated
where the folder holds fewer before it) goes through I3D once, at ``VIDEO_SIZE`` pixels; its ``Mixed_5c`` output
averaged over time and space (1024 numbers) is the feature of that image and of the L - 1 after it. So each image
passes through I3D about once, every feature looks only backwards, and prediction, which sees the same images one
frame at a time (``ClipBuffer``), computes the same values. Features of the clip and of its mirror image are cached
per folder (``FolderCache``) under a key of the weights, the clip length, the input size, the runtime and its
precision.

Example:
    >>> clip_end(0, 8), clip_end(7, 8), clip_end(8, 8)
    (0, 0, 8)
    >>> clip_positions(2, 4)
    [0, 0, 1, 2]
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import logging
from collections import deque
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from behavior import report
from behavior.features.appearance import FeatureStore, FolderCache, read_crop
from behavior.io.files import file_sha256
from behavior.io.weights import resolve_weights
from behavior.model.i3d import FEATURE_DIM, I3D, load_i3d, to_clip
from behavior.runtime import backends

log = logging.getLogger(__name__)

CACHE_VERSION = 1
CLIP_BATCH = 4  # clips per I3D call when filling the cache


def clip_end(ordinal: int, length: int) -> int:
    """The ordinal of the image whose clip gives image ``ordinal`` its feature: the last multiple of ``length``."""
    return ordinal - ordinal % length


def clip_positions(end: int, length: int) -> list[int]:
    """The ordinals of the clip of ``length`` images ending at ``end`` (the first image repeated before it)."""
    return [max(0, end - length + 1 + k) for k in range(length)]


def cache_key(sha256: str, clip_length: int, size: int, backend: str, precision: str) -> str:
    """What decides a feature: the I3D weights, the clip length, the input size and how I3D computed."""
    text = "|".join(map(str, (CACHE_VERSION, sha256, clip_length, size, backend, precision)))
    if backend != "torch":
        text += f"|{backends.runtime_version(backend)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fit_size(image: np.ndarray, size: int) -> np.ndarray:
    """An RGB image at ``size`` x ``size`` as I3D reads it (area interpolation when shrinking)."""
    if image.shape[:2] == (size, size):
        return image
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


@dataclass
class VideoBackbone:
    """I3D frozen on a device, reading clips of ``clip_length`` images at ``size`` pixels.

    On the CPU it runs on ``compiled`` (an OpenVINO or ONNX Runtime export) when one is given, else on torch.
    """

    net: I3D
    clip_length: int
    size: int
    sha256: str
    device: str = "cpu"
    compiled: backends.CompiledNetwork | None = field(default=None, repr=False)
    cpu_precision: str = "float32"  # OpenVINO's precision (INFERENCE_PRECISION); torch computes float32 on the CPU

    @classmethod
    def load(cls, weights: str, clip_length: int, size: int, device: str = "cpu", backend: str = "torch",
             cpu_precision: str = "float32") -> VideoBackbone:
        """I3D from weights found by ``behavior.io.weights`` (I3D_WEIGHTS), on ``backend`` on the CPU."""
        path = resolve_weights(weights)
        video = cls(load_i3d(path).to(device), clip_length, size, file_sha256(str(path)), device,
                    cpu_precision=cpu_precision)
        if device == "cpu" and backend != "torch":
            video.compiled = backends.compile_network("I3D", backend, lambda: backends.export_i3d(
                video.net, video.sha256, clip_length, video.size, backend), cpu_precision)
        return video

    @property
    def backend(self) -> str:
        """Where the clips run: "torch", "openvino" or "onnxruntime"."""
        return self.compiled.backend if self.compiled is not None else "torch"

    @property
    def precision(self) -> str:
        """float16 autocast on CUDA; on the CPU float32, or bfloat16 where OpenVINO is told so."""
        if self.device.startswith("cuda"):
            return "float16"
        return self.cpu_precision if self.backend == "openvino" else "float32"

    @property
    def key(self) -> str:
        """The cache key of this network's features (``cache_key``)."""
        return cache_key(self.sha256, self.clip_length, self.size, self.backend, self.precision)

    @torch.inference_mode()
    def embed(self, clips: np.ndarray, mirror: bool = False) -> np.ndarray:
        """(B, L, size, size, 3) uint8 RGB clips -> (B, 1024) float32: ``Mixed_5c`` averaged over time and space."""
        x = torch.stack([to_clip(c) for c in clips]).to(self.device)
        if mirror:
            x = x.flip(-1)
        if self.compiled is not None:
            return self.compiled(x.numpy())
        autocast = torch.autocast("cuda", dtype=torch.float16) if self.precision == "float16" else nullcontext()
        with autocast:
            out = self.net.features(x)
        return out.float().mean(dim=(2, 3, 4)).cpu().numpy()


def folder_features(images: Sequence[np.ndarray], backbone: VideoBackbone) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, 1024) of a folder's images in order, of the clips and of their mirror images, float16."""
    length = backbone.clip_length
    ends = list(range(0, len(images), length))
    plain, flipped = [], []
    for i in range(0, len(ends), CLIP_BATCH):
        clips = np.stack([np.stack([images[p] for p in clip_positions(e, length)]) for e in ends[i:i + CLIP_BATCH]])
        plain.append(backbone.embed(clips))
        flipped.append(backbone.embed(clips, mirror=True))
    rows = [clip_end(n, length) // length for n in range(len(images))]
    empty = np.zeros((0, FEATURE_DIM), np.float32)
    return (np.concatenate(plain or [empty])[rows].astype(np.float16),
            np.concatenate(flipped or [empty])[rows].astype(np.float16))


class VideoFeatureCache(FolderCache):
    """Per-folder I3D feature files (the scene folders ``scene_video`` reads)."""

    def load(self, frames_dir: Path, folders: Sequence[str], backbone: VideoBackbone | None,
             progress: bool = True) -> FeatureStore:
        """Features of every image in ``folders`` (relative to ``frames_dir``), computing what is missing.

        Each folder's entry is saved as soon as it is done, so an interrupted pass keeps what it finished.
        """
        frames_dir = Path(frames_dir)
        scanned, todo = self.scan(frames_dir, folders, ("plain", "flipped"))
        found = {d: (names, arrays["plain"], arrays["flipped"]) for d, (names, arrays) in scanned.items()}
        if todo and backbone is None:
            raise RuntimeError("I3D features must be computed but no network was given")
        computed = sum(len(names) for _, names, _ in todo)
        with cf.ThreadPoolExecutor(max_workers=4, thread_name_prefix="decode") as pool, report.progress(
                total=computed, desc="I3D features", unit="image", disable=not progress, leave=False) as bar:
            for folder, names, signature in todo:
                images = list(pool.map(lambda n, d=folder: fit_size(read_crop(frames_dir / d / n, None),
                                                                     backbone.size), names))
                plain, flipped = folder_features(images, backbone)
                self.write(folder, signature, plain=plain, flipped=flipped)
                found[folder] = (names, plain, flipped)
                bar.update(len(names))
        if todo:
            log.info("I3D feature cache %s: computed %d images in %d folders", self.key, computed, len(todo))
        index: dict[str, int] = {}
        for folder in sorted(found):
            for name in found[folder][0]:
                index[f"{folder}/{name}"] = len(index)
        empty = np.zeros((0, FEATURE_DIM), np.float16)
        ordered = [found[f] for f in sorted(found)]
        return FeatureStore(index, torch.from_numpy(np.concatenate([p for _, p, _ in ordered] or [empty])),
                            torch.from_numpy(np.concatenate([f for _, _, f in ordered] or [empty])),
                            hits=len(found) - len(todo), misses=len(todo), computed=computed)


class ClipBuffer:
    """One image sequence seen live (the scene): its last clip and the feature it holds.

    ``push`` takes the next image and says whether a clip ends on it (every ``clip_length``-th image, the first
    included); then ``clip`` is that clip and ``feature`` is set by the caller, held until the next one.
    """

    def __init__(self, clip_length: int) -> None:
        self.length = clip_length
        self.images: deque[np.ndarray] = deque(maxlen=clip_length)
        self.seen = 0
        self.feature: torch.Tensor | None = None

    def push(self, image: np.ndarray) -> bool:
        self.images.append(image)
        self.seen += 1
        return (self.seen - 1) % self.length == 0

    def clip(self) -> np.ndarray:
        """The clip ending on the newest image, the oldest repeated while fewer than ``clip_length`` were seen."""
        images = list(self.images)
        return np.stack([images[0]] * (self.length - len(images)) + images)
