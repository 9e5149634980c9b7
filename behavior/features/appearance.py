"""The on-disk cache of per-crop MobileNetV2 features, so each crop goes through the CNN once.

With a frozen backbone a crop's features never change, so they are computed once, for the crop
and its horizontal mirror (flipping stays available as augmentation), and stored as float16 in
``FEATURES_DIR/<backbone key>/<person folder>.npz``. The key covers the backbone weights, the
input size and the normalization: new weights mean a new key, and old entries are never used.
Inside a key, an entry is reused only while its person folder lists the same files with the
same sizes and modification times.

Example:
    >>> cache = FeatureCache(Path("datasets/features"), backbone_key(weights, cfg))  # doctest: +SKIP
    >>> store = cache.load(frames_dir, ["fight/fi001/person_1"], net)              # doctest: +SKIP
    >>> store.plain[store.index["fight/fi001/person_1/frame_000012.jpg"]].shape    # doctest: +SKIP
    torch.Size([1280])
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import io
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from behavior import report
from behavior.detect.crops import DIFFERENCE_GAIN, motion_image
from behavior.errors import InputError
from behavior.io import files
from behavior.io.files import file_sha256
from behavior.io.weights import IMAGENET_MEAN, IMAGENET_STD
from behavior.model.network import FEATURE_DIM, BehaviorNet, ModelConfig
from behavior.runtime import backends

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def backbone_key(weights: Path, cfg: ModelConfig) -> str:
    """A short key naming everything that decides a crop's features."""
    text = "|".join(map(str, (CACHE_VERSION, file_sha256(str(weights)), cfg.frame_width, cfg.frame_height,
                              IMAGENET_MEAN, IMAGENET_STD, cfg.cpu_precision,
                              cfg.cnn_input, DIFFERENCE_GAIN if cfg.cnn_input == "difference" else "")))
    if cfg.cnn_backend != "torch":  # torch's keys stay those of the caches made before the backends
        text += f"|{cfg.cnn_backend}|{backends.runtime_version(cfg.cnn_backend)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_crop(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    """Read a crop JPEG as RGB uint8 (H, W, 3) at ``size`` = (width, height) (None: as saved)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read crop image {path}")
    if size is not None and (image.shape[1], image.shape[0]) != tuple(size):
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def crops_to_tensor(images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
    """RGB uint8 images (N, H, W, 3) -> float tensor (N, 3, H, W) in [0, 1], as ``BehaviorNet.embed`` takes."""
    array = np.ascontiguousarray(np.stack(images) if not isinstance(images, np.ndarray) else images)
    return torch.from_numpy(array).permute(0, 3, 1, 2).float().div_(255)


@torch.inference_mode()
def embed_crops(net: BehaviorNet, images: np.ndarray, device: str, mirror: bool = False) -> torch.Tensor:
    """MobileNetV2 features (N, 1280) of RGB uint8 crops (N, H, W, 3), float32 on the CPU.

    The one way crops become features: the cache (training) and prediction both call it, with
    the same backend (the model's ``cnn_backend`` on the CPU) and precision (float16 autocast on
    CUDA; on the CPU the model's ``cpu_precision``), so they agree.
    """
    x = crops_to_tensor(images).to(device, non_blocking=True)
    if mirror:
        x = x.flip(-1)
    compiled = backends.compiled_backbone(net) if device == "cpu" else None
    if compiled is not None:
        return torch.from_numpy(compiled(x.numpy()))
    if device.startswith("cuda"):
        autocast = torch.autocast("cuda", dtype=torch.float16)
    elif net.cfg.cpu_precision == "bfloat16":
        autocast = torch.autocast("cpu", dtype=torch.bfloat16)
    else:
        autocast = nullcontext()
    with autocast:
        return net.embed(x).float().cpu()


def embed_images(net: BehaviorNet, images: np.ndarray, device: str) -> tuple[np.ndarray, np.ndarray]:
    """Features of RGB crops and of their mirror images, float16 (N, 1280) each, for the cache."""
    plain = embed_crops(net, images, device)
    flipped = embed_crops(net, images, device, mirror=True)
    return plain.half().numpy(), flipped.half().numpy()


@dataclass
class FeatureStore:
    """Features of a set of crops in memory: row ``index[path]`` of ``plain`` and ``flipped``."""

    index: dict[str, int]
    plain: torch.Tensor  # (N, 1280) float16
    flipped: torch.Tensor
    hits: int = 0  # folders (person or scene) found in the cache
    misses: int = 0  # folders (person or scene) computed now
    computed: int = field(default=0)  # images (crops or scene) run through the CNN now


def _listing(folder: Path) -> tuple[list[str], str]:
    """The crop names of a person folder and a signature of their sizes and times."""
    entries = []
    with os.scandir(folder) as it:
        for e in it:
            if e.name.endswith(".jpg"):
                st = e.stat()
                entries.append((e.name, st.st_size, st.st_mtime_ns))
    entries.sort()
    signature = hashlib.sha256(repr(entries).encode()).hexdigest()
    return [name for name, _, _ in entries], signature


class FolderCache:
    """Arrays per person folder (``<cache_dir>/<key>/<person folder>.npz``), valid while the folder lists the same
    crop files with the same sizes and times. ``FeatureCache`` and the keypoint cache build on it."""

    def __init__(self, cache_dir: Path, key: str) -> None:
        self.folder = Path(cache_dir) / key
        self.key = key

    def entry_path(self, person_dir: str) -> Path:
        return self.folder / f"{person_dir}.npz"

    def read(self, person_dir: str, signature: str, names: Sequence[str]) -> dict[str, np.ndarray] | None:
        """The arrays ``names`` of one folder's entry, or None when it is missing, stale or unreadable."""
        try:
            with np.load(self.entry_path(person_dir), allow_pickle=False) as data:
                if str(data["signature"]) != signature:
                    return None
                return {n: data[n] for n in names}
        except (OSError, KeyError, ValueError):
            return None

    def write(self, person_dir: str, signature: str, **arrays: np.ndarray) -> None:
        """Save one folder's entry atomically."""
        buf = io.BytesIO()
        np.savez(buf, signature=np.array(signature), **arrays)
        files.atomic_write_bytes(self.entry_path(person_dir), buf.getvalue())

    def scan(self, frames_dir: Path, person_dirs: Sequence[str], names: Sequence[str]
             ) -> tuple[dict[str, tuple[list[str], dict[str, np.ndarray]]], list[tuple[str, list[str], str]]]:
        """Split ``person_dirs`` into entries found (crop names, arrays) and folders to compute (dir, crops, sig)."""
        found: dict[str, tuple[list[str], dict[str, np.ndarray]]] = {}
        todo: list[tuple[str, list[str], str]] = []
        for person_dir in sorted(set(person_dirs)):
            folder = Path(frames_dir) / person_dir
            if not folder.is_dir():
                raise InputError(f"crop folder missing: {folder} (was FRAMES_DIR changed or cleaned?)")
            crops, signature = _listing(folder)
            cached = self.read(person_dir, signature, names)
            if cached is not None:
                found[person_dir] = (crops, cached)
            else:
                todo.append((person_dir, crops, signature))
        return found, todo


class FeatureCache(FolderCache):
    """Per-person-folder MobileNetV2 feature files under one backbone key."""

    def load(
        self,
        frames_dir: Path,
        person_dirs: Sequence[str],
        net: BehaviorNet | None,
        device: str = "cpu",
        batch_size: int = 64,
        progress: bool = True,
    ) -> FeatureStore:
        """Features of every crop in ``person_dirs`` (relative to ``frames_dir``), computing what is missing.

        ``net`` (with its backbone) is only used when something must be computed.
        """
        frames_dir = Path(frames_dir)
        scanned, todo = self.scan(frames_dir, person_dirs, ("plain", "flipped"))
        found = {d: (crops, arrays["plain"], arrays["flipped"]) for d, (crops, arrays) in scanned.items()}
        computed = 0
        if todo:
            if net is None:
                raise RuntimeError("features must be computed but no network was given")
            computed = self._compute(frames_dir, todo, net, device, batch_size, progress, found)
        index: dict[str, int] = {}
        plains, flips = [], []
        for person_dir in sorted(found):
            names, plain, flipped = found[person_dir]
            for name in names:
                index[f"{person_dir}/{name}"] = len(index)
            plains.append(plain)
            flips.append(flipped)
        empty = np.zeros((0, FEATURE_DIM), np.float16)
        return FeatureStore(index, torch.from_numpy(np.concatenate(plains or [empty])),
                            torch.from_numpy(np.concatenate(flips or [empty])),
                            hits=len(found) - len(todo), misses=len(todo), computed=computed)

    def _compute(self, frames_dir: Path, todo: list[tuple[str, list[str], str]], net: BehaviorNet, device: str,
                 batch_size: int, progress: bool, found: dict) -> int:
        """Run every crop of ``todo`` through the CNN in batches; decoding happens on worker threads.

        Each person folder's entry is saved as soon as its last crop is done, so an interrupted
        pass (Ctrl-C, a killed job) keeps what it finished and a rerun computes only the rest.
        """
        size = (net.cfg.frame_width, net.cfg.frame_height)
        crops = [(d, frames_dir / d / n) for d, names, _ in todo for n in names]
        outputs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {d: [] for d, _, _ in todo}
        pending = {d: (names, signature) for d, names, signature in todo}
        previous: dict[str, np.ndarray] = {}  # each folder's last crop, for CNN_INPUT "difference"

        def save_finished() -> None:
            for d in [d for d, (names, _) in pending.items() if len(outputs[d]) == len(names)]:
                names, signature = pending.pop(d)
                pairs = outputs.pop(d)
                empty = np.zeros((0, FEATURE_DIM), np.float16)
                plain = np.stack([p for p, _ in pairs]) if pairs else empty
                flipped = np.stack([f for _, f in pairs]) if pairs else empty
                self.write(d, signature, plain=plain, flipped=flipped)
                found[d] = (names, plain, flipped)
                previous.pop(d, None)

        net.eval().to(device)
        save_finished()  # folders without crops
        with cf.ThreadPoolExecutor(max_workers=4, thread_name_prefix="decode") as pool, report.progress(
            total=len(crops), desc="features", unit="crop", disable=not progress, leave=False
        ) as bar:
            for batch, images in decoded_batches(pool, crops, size, batch_size):
                if net.cfg.cnn_input == "difference":
                    images = _motion_images(batch, images, previous)
                plain, flipped = embed_images(net, np.stack(images), device)
                for (d, _), p, f in zip(batch, plain, flipped, strict=True):
                    outputs[d].append((p, f))
                save_finished()
                bar.update(len(batch))
        log.info("feature cache %s: computed %d images in %d folders", self.key, len(crops), len(todo))
        return len(crops)


def _motion_images(batch: list[tuple[str, Path]], images: list[np.ndarray],
                   previous: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Each crop's motion image against the crop before it in its folder (crops arrive in folder order)."""
    out = []
    for (folder, _), image in zip(batch, images, strict=True):
        out.append(motion_image(image, previous.get(folder)))
        previous[folder] = image
    return out


def decoded_batches(
    pool: cf.Executor, crops: list[tuple[str, Path]], size: tuple[int, int] | None, batch_size: int
) -> Iterator[tuple[list[tuple[str, Path]], list[np.ndarray]]]:
    """Batches of crops with their decoded images; the next batch decodes while this one is used."""
    batches = [crops[i : i + batch_size] for i in range(0, len(crops), batch_size)]
    pending = [pool.submit(read_crop, path, size) for _, path in batches[0]] if batches else []
    for i, batch in enumerate(batches):
        current = pending
        if i + 1 < len(batches):
            pending = [pool.submit(read_crop, path, size) for _, path in batches[i + 1]]
        yield batch, [f.result() for f in current]
