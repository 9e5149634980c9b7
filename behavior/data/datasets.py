"""Training data: the sequences CSV, stream vectors replayed from tracks.csv, and the two kinds of dataset.

``CachedSequenceDataset`` gathers cached CNN features (frozen backbone: no image is decoded
while training). ``ImageSequenceDataset`` loads the crops themselves, with one random flip,
crop and color jitter per clip, for fine-tuning the backbone.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from behavior.data.mil import Bag, PersonStats
from behavior.errors import InputError
from behavior.features.appearance import FeatureStore, crops_to_tensor, read_crop
from behavior.features.people import Person, limb_extension
from behavior.features.streams import StreamState, flip_vectors, vector_dim
from behavior.io.frames import SceneObject, read_objects, read_tracks, scene_path
from behavior.io.sequence_file import SequenceTable
from behavior.model.network import FEATURE_STREAMS


def check_crops_exist(frames_dir: Path, table: SequenceTable, scene: bool = False) -> None:
    """Raise one clear error naming the first missing crop file (or, with ``scene``, scene image), if any."""
    frames_dir = Path(frames_dir)
    listings: dict[str, set[str]] = {}

    def exists(path: str) -> bool:
        folder, name = path.rsplit("/", 1)
        if folder not in listings:
            full = frames_dir / folder
            listings[folder] = set(os.listdir(full)) if full.is_dir() else set()
        return name in listings[folder]

    for i, paths in enumerate(table.frames):
        for p in paths:
            if not exists(p):
                raise InputError(f"crop file missing: {frames_dir / p} (sequence {table.ids[i]}); "
                                 "was FRAMES_DIR changed? rerun extract_frames.py and group_sequences.py")
            if scene and not exists(scene_path(p)):
                raise InputError(f"scene image missing: {frames_dir / scene_path(p)}; INPUTS has 'scene_video': rerun "
                                 "extract_frames.py with it (it adds the scene images without tracking again)")


def replay_tracks(frames_dir: Path, video: str, keypoints: dict[str, np.ndarray] | None = None,
                  object_classes: tuple[str, ...] = ()
                  ) -> Iterator[tuple[float, list[str], list[Person], list[SceneObject]]]:
    """A video's tracks.csv frame by frame, as prediction sees its live tracks: (time, crop paths, people, objects).

    Everyone tracked in a frame is present, in track order, with their keypoints where ``keypoints`` has them;
    with ``object_classes``, the frame's objects from objects.csv.
    """
    by_frame: dict[int, list[dict[str, str]]] = defaultdict(list)
    for row in read_tracks(Path(frames_dir) / video):
        by_frame[int(row["frame"])].append(row)
    objects = read_objects(Path(frames_dir) / video, object_classes) if object_classes else {}
    for frame in sorted(by_frame):
        rows = sorted(by_frame[frame], key=lambda r: int(r["person"]))
        paths = [f"{video}/person_{r['person']}/frame_{frame:06d}.jpg" for r in rows]
        people = [Person(int(r["person"]), tuple(float(r[k]) for k in ("x1", "y1", "x2", "y2")),
                         keypoints.get(p) if keypoints is not None else None)
                  for r, p in zip(rows, paths, strict=True)]
        yield float(rows[0]["time_s"]), paths, people, objects.get(frame, [])


def _videos_of(person_dirs: list[str]) -> dict[str, set[int]]:
    """The tracks wanted in each video, from person folders ``<video>/person_<n>``."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for d in person_dirs:
        video, person = d.rsplit("/", 1)
        wanted[video].add(int(person.split("_")[1]))
    return wanted


def load_vectors(frames_dir: Path, person_dirs: list[str], inputs: Sequence[str],
                 keypoints: dict[str, np.ndarray] | None = None,
                 object_classes: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """The stream vectors (motion, pose, objects... those ``inputs`` name) of every crop of ``person_dirs``, by path.

    Each video's tracks.csv (and objects.csv) is replayed frame by frame through ``streams.StreamState``, with every
    tracked person of the frame present, as prediction feeds its live tracks.
    """
    out: dict[str, np.ndarray] = {}
    replayed = tuple(object_classes) if "objects" in inputs else ()
    for video, persons in _videos_of(person_dirs).items():
        state = StreamState(inputs, object_classes)
        for t, paths, people, objects in replay_tracks(frames_dir, video, keypoints, replayed):
            for path, person, vec in zip(paths, people, state.step(people, t, objects), strict=True):
                if person.track in persons:
                    out[path] = vec
    return out


def person_stats(frames_dir: Path, person_dirs: list[str], keypoints: dict[str, np.ndarray] | None
                 ) -> dict[str, PersonStats]:
    """How much each person folder is seen and how far its limbs reach towards others (``mil.roles``' input)."""
    presence: dict[str, float] = defaultdict(float)
    reach: dict[str, float] = defaultdict(float)
    for video, persons in _videos_of(person_dirs).items():
        for _, paths, people, _ in replay_tracks(frames_dir, video, keypoints):
            for path, person in zip(paths, people, strict=True):
                if person.track in persons:
                    folder = path.rsplit("/", 1)[0]
                    presence[folder] += person.box[3] - person.box[1]
                    reach[folder] += limb_extension(person, [p for p in people if p.track != person.track])
    return {folder: PersonStats(presence[folder], reach[folder]) for folder in presence}


def vectors_tensor(table: SequenceTable, rows: list[int], vectors: dict[str, np.ndarray] | None,
                   dim: int) -> torch.Tensor:
    """(len(rows), T, dim) stream vectors of the given sequences (zeros where a crop has none)."""
    out = np.zeros((len(rows), table.sequence_length, dim), np.float32)
    if vectors and dim:
        for n, i in enumerate(rows):
            for t, p in enumerate(table.frames[i]):
                vec = vectors.get(p)
                if vec is not None:
                    out[n, t] = vec
    return torch.from_numpy(out)


class CachedSequenceDataset(Dataset):
    """Sequences as gathered cached features and stream vectors: (features (T, F), vectors (T, D), label).

    Each frame's features are, of those ``inputs`` names, the crop's MobileNetV2 features ("appearance"), its
    frame's scene image's ("scene"), then I3D's of the scene's clip ("scene_video", from ``video_store``).
    Without any of them the features are empty, (T, 0).
    """

    def __init__(self, table: SequenceTable, rows: list[int], store: FeatureStore | None,
                 vectors: dict[str, np.ndarray] | None, inputs: Sequence[str], augment: bool,
                 video_store: FeatureStore | None = None, object_classes: Sequence[str] = ()) -> None:
        self.rows, self.inputs, self.object_classes = rows, tuple(inputs), tuple(object_classes)
        self.labels = torch.tensor([table.labels[i] for i in rows], dtype=torch.long)
        sources = {"appearance": (store, False), "scene_video": (video_store, True)}
        self.gathers: list[tuple[FeatureStore, torch.Tensor]] = []  # (store, rows (N, T)), in FEATURE_STREAMS order
        for stream, _ in FEATURE_STREAMS:
            source, scene = sources[stream]
            if source is not None and stream in inputs:
                path_of = scene_path if scene else (lambda p: p)
                index = [[source.index[path_of(p)] for p in table.frames[i]] for i in rows]
                self.gathers.append((source, torch.tensor(index, dtype=torch.long)))
        self.vectors = vectors_tensor(table, rows, vectors, vector_dim(inputs, object_classes))
        self.empty = torch.zeros(table.sequence_length, 0)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flip = self.augment and torch.rand(()) < 0.5
        vectors = flip_vectors(self.vectors[n], self.inputs, self.object_classes) if flip else self.vectors[n]
        if not self.gathers:
            return self.empty, vectors, self.labels[n]
        parts = [(store.flipped if flip else store.plain)[index[n]] for store, index in self.gathers]  # all flipped
        return torch.cat(parts, dim=-1), vectors, self.labels[n]


class ImageSequenceDataset(Dataset):
    """Sequences as crops (T, 3, H, W) in [0, 1] with per-clip augmentation, for fine-tuning."""

    def __init__(self, table: SequenceTable, rows: list[int], frames_dir: Path, size: tuple[int, int],
                 vectors: dict[str, np.ndarray] | None, inputs: Sequence[str], augment: bool,
                 object_classes: Sequence[str] = ()) -> None:
        self.table, self.rows, self.frames_dir, self.size = table, rows, Path(frames_dir), size
        self.labels = torch.tensor([table.labels[i] for i in rows], dtype=torch.long)
        self.inputs, self.object_classes = tuple(inputs), tuple(object_classes)
        self.vectors = vectors_tensor(table, rows, vectors, vector_dim(inputs, object_classes))
        self.augment = augment

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        paths = self.table.frames[self.rows[n]]
        vectors = self.vectors[n]
        frames = crops_to_tensor([read_crop(self.frames_dir / p, self.size) for p in paths])
        if self.augment:
            frames, flipped = augment_clip(frames)
            if flipped:
                vectors = flip_vectors(vectors, self.inputs, self.object_classes)
        return frames, vectors, self.labels[n]


class BagDataset(Dataset):
    """Whole clips for multiple-instance training: item ``b`` is every sequence of ``bags[b]``, in its row order.

    ``sequences`` is a dataset of ``rows`` (one item per row, as above); each bag's rows must be among them.
    """

    def __init__(self, sequences: Dataset, rows: list[int], bags: list[Bag]) -> None:
        position = {r: n for n, r in enumerate(rows)}
        self.sequences, self.bags = sequences, bags
        self.items = [[position[r] for r in bag.rows] for bag in bags]

    def __len__(self) -> int:
        return len(self.bags)

    def __getitem__(self, b: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        x, vectors, _ = zip(*(self.sequences[n] for n in self.items[b]), strict=True)
        return torch.stack(x), torch.stack(vectors), b


class BagBatchSampler:
    """Batches of whole bags holding about ``budget`` sequences together (at least one bag), shuffled each epoch.

    Under torchrun every process draws the same order and takes its share of the bags; the
    batch count is cut to the smallest share so that every process takes the same number of steps.
    """

    def __init__(self, sizes: list[int], budget: int, generator: torch.Generator | None = None,
                 rank: int = 0, world: int = 1) -> None:
        self.sizes, self.budget, self.generator, self.rank, self.world = sizes, budget, generator, rank, world

    def _pack(self, order: list[int]) -> list[list[int]]:
        batches: list[list[int]] = []
        count = 0
        for b in order:
            if batches and count + self.sizes[b] <= self.budget:
                batches[-1].append(b)
                count += self.sizes[b]
            else:
                batches.append([b])
                count = self.sizes[b]
        return batches

    def _batches(self, order: list[int]) -> list[list[int]]:
        shares = [self._pack(order[r::self.world]) for r in range(self.world)]
        return shares[self.rank][:min(len(s) for s in shares)]

    def __iter__(self):
        n = len(self.sizes)
        order = torch.randperm(n, generator=self.generator).tolist() if self.generator is not None else list(range(n))
        return iter(self._batches(order))

    def __len__(self) -> int:
        return len(self._batches(list(range(len(self.sizes)))))  # the count in bag order (shuffled: about that)


def collate_bags(items: list[tuple[torch.Tensor, torch.Tensor, int]], bags: list[Bag],
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[Bag]]:
    """Concatenate whole bags: (sequences' features, their vectors, the bags' labels, the bags)."""
    chosen = [bags[b] for _, _, b in items]
    return (torch.cat([x for x, _, _ in items]), torch.cat([v for _, v, _ in items]),
            torch.tensor([bag.label for bag in chosen], dtype=torch.long), chosen)


def augment_clip(frames: torch.Tensor, rng: random.Random | None = None) -> tuple[torch.Tensor, bool]:
    """One random flip, resized crop and color jitter, applied alike to every frame of a clip."""
    from torchvision.transforms.v2 import functional as F

    rng = rng or random.Random(int(torch.randint(0, 2**31 - 1, ()).item()))
    _, _, h, w = frames.shape
    flipped = rng.random() < 0.5
    if flipped:
        frames = frames.flip(-1)
    scale = rng.uniform(0.8, 1.0)
    ch, cw = max(int(h * scale), 1), max(int(w * scale), 1)
    top, left = rng.randint(0, h - ch), rng.randint(0, w - cw)
    frames = F.resized_crop(frames, top, left, ch, cw, [h, w], antialias=True)
    frames = F.adjust_brightness(frames, rng.uniform(0.8, 1.2))
    frames = F.adjust_contrast(frames, rng.uniform(0.8, 1.2))
    frames = F.adjust_saturation(frames, rng.uniform(0.8, 1.2))
    return frames.clamp_(0, 1), flipped
