"""What training and cross-validation set up alike: the network's settings and the data every fit shares."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from behavior.data import mil
from behavior.data.datasets import (
    CachedSequenceDataset,
    ImageSequenceDataset,
    check_crops_exist,
    load_vectors,
    person_stats,
)
from behavior.data.mil import PersonStats
from behavior.detect.pose import KeypointCache, KeypointStore, PoseSettings
from behavior.errors import InputError
from behavior.features.appearance import FeatureCache, FeatureStore, backbone_key
from behavior.features.video_backbone import VideoBackbone, VideoFeatureCache
from behavior.io import files
from behavior.io.files import file_sha256
from behavior.io.frames import annotated_keypoints
from behavior.io.sequence_file import SequenceTable, read_sequences
from behavior.io.weights import resolve_weights
from behavior.model.network import BehaviorNet, ModelConfig, load_backbone
from behavior.runtime import backends, hardware
from behavior.settings import ExtractSettings, ModelSettings, TrainConfig
from behavior.train.distributed import Distributed

log = logging.getLogger(__name__)

WHOLE_FRAME_INPUTS = ("appearance", "motion")  # what a model of whole frames reads when INPUTS asks for people


def model_config_from(cfg: dict[str, Any], table: SequenceTable, frames_dir: Path) -> ModelConfig:
    """The network's settings: stage 3 constants, plus how the crops were made (from stage 1's meta.json)."""
    first_video = Path(frames_dir) / table.frames[0][0].rsplit("/", 2)[0] / "meta.json"
    extraction = (files.read_json(first_video) or {}).get("settings", {})
    chosen = ModelSettings.from_config(cfg)
    crops = ExtractSettings.from_config(cfg)  # config.py's, where a meta.json from before a field lacks it
    pooling = resolve_pooling(chosen.mil_pooling, chosen.background_class, chosen.actor_classes)
    model_config = ModelConfig(
        **{**asdict(chosen), "mil_pooling": pooling}, num_classes=len(table.classes),
        sequence_length=table.sequence_length,
        **{name: type(getattr(crops, name))(extraction.get(name, getattr(crops, name)))
           for name in ("frame_width", "frame_height", "crop_margin", "target_fps", "person_tracking", "jpeg_quality")},
        pad_mode=str(cfg["PAD_MODE"]), min_sequence_frames=int(cfg["MIN_SEQUENCE_FRAMES"]),
        cpu_precision=hardware.cpu_precision(str(cfg["INFERENCE_PRECISION"])),
    )
    if model_config.background_class and model_config.background_class not in table.classes:
        raise InputError(f"BACKGROUND_CLASS (--background-class) {model_config.background_class!r} is not one of the "
                         f"classes of the sequences: {', '.join(table.classes)}")
    check_roles(model_config, table.classes)
    if not model_config.person_tracking and (model_config.needs_keypoints or model_config.scene_images
                                             or "objects" in model_config.inputs):
        log.warning("whole-frame frames: INPUTS %s need tracked people; this model reads %s",
                    ", ".join(model_config.inputs),
                    ", ".join(WHOLE_FRAME_INPUTS))
        model_config = dataclasses.replace(model_config, inputs=WHOLE_FRAME_INPUTS)
    if model_config.fine_tune_blocks > 0:  # fine-tuning trains the backbone in float32 on torch: predict the same way
        model_config = dataclasses.replace(model_config, cpu_precision="float32")
    elif model_config.appearance or model_config.i3d:  # cached features are computed (and predicted) on this runtime
        model_config = dataclasses.replace(model_config, cnn_backend=backends.resolve_backend(
            str(cfg["INFERENCE_BACKEND"]), hardware.resolve_device(str(cfg["DEVICE"]))))
    if model_config.i3d:  # and the I3D the video features came from
        model_config = dataclasses.replace(model_config,
                                           video_sha256=file_sha256(str(resolve_weights(str(cfg["I3D_WEIGHTS"])))))
    if model_config.needs_keypoints:  # prediction checks that it runs the pose model the keypoints came from
        model_config = dataclasses.replace(model_config, pose_sha256=PoseSettings(str(cfg["POSE_WEIGHTS"])).sha256())
    return model_config


def resolve_pooling(pooling: str, background_class: str, actor_classes: Sequence[str] = ()) -> str:
    """MIL_POOLING as training applies it: "auto" is "max" with a background class and "none" without, and
    "roles" when ACTOR_CLASSES names who acts (each person labeled from the clip's geometry).

    Measured by grouped CV (docs/RESULTS.md): with a background class, max pooling beat per-sequence
    training on surv_fight; without one (UT-Interaction), bag training learned far slower than per-sequence
    training and early stopping ended it first.

    Example:
        >>> resolve_pooling("auto", "noFight"), resolve_pooling("auto", ""), resolve_pooling("lse", "")
        ('max', 'none', 'lse')
        >>> resolve_pooling("auto", "none", ("kick", "punch"))
        'roles'
    """
    if pooling != "auto":
        return pooling
    if actor_classes:
        return mil.ROLES
    return "max" if background_class else "none"


def with_person_classes(table: SequenceTable, cfg: dict[str, Any]) -> SequenceTable:
    """``table`` with the classes that MIL_POOLING "roles" gives people but no clip folder bears: each actor class's
    received class ("kick_received", the one kicked) and BACKGROUND_CLASS where no folder is named so (UT-Interaction:
    the passers-by are "none")."""
    roles = cfg["ACTOR_CLASSES"] or cfg["MIL_POOLING"] == mil.ROLES
    if not roles or not cfg["BACKGROUND_CLASS"]:
        return table
    wanted = [str(cfg["BACKGROUND_CLASS"]), *(mil.received(c) for c in cfg["ACTOR_CLASSES"] if c in table.classes)]
    return dataclasses.replace(table, classes=[*table.classes, *(c for c in wanted if c not in table.classes)])


def check_roles(model_config: ModelConfig, classes: list[str]) -> None:
    """Raise InputError when MIL_POOLING "roles" or ACTOR_CLASSES cannot label the people: they need a background
    class for those who pass by, actor classes that exist, and per-person training."""
    if model_config.actor_classes and not model_config.background_class:
        raise InputError("ACTOR_CLASSES (--actor-classes) needs a BACKGROUND_CLASS (--background-class): the label "
                         "of the people who receive the action or pass by")
    if model_config.mil_pooling == mil.ROLES and not model_config.background_class:
        raise InputError("MIL_POOLING (--mil-pooling) roles needs a BACKGROUND_CLASS (--background-class): the label "
                         "of the people who pass by")
    if not model_config.actor_classes:
        return
    people_only = {model_config.background_class, *mil.received_classes(model_config.actor_classes)}
    clip_classes = [c for c in classes if c not in people_only]
    unknown = [c for c in model_config.actor_classes if c not in clip_classes]
    if unknown:
        raise InputError(f"ACTOR_CLASSES (--actor-classes) {', '.join(unknown)}: not among the clip classes "
                         f"{', '.join(clip_classes)}")
    if model_config.mil_pooling != mil.ROLES:
        raise InputError(f"ACTOR_CLASSES (--actor-classes) trains each person with their own label: MIL_POOLING "
                         f"must be auto or roles, not {model_config.mil_pooling!r}")


@dataclass
class TrainingData:
    """What every fit on one sequences table shares: the table, the network's settings, the stream vectors
    (motion, pose, interaction) and, with a frozen backbone, every crop's cached features (computed once,
    e.g. for all folds of a CV)."""

    table: SequenceTable
    model_config: ModelConfig
    weights_path: Path | None  # MobileNetV2's, when the network reads appearance
    frames_dir: Path
    vectors: dict[str, np.ndarray] | None
    store: FeatureStore | None  # None when fine-tuning (the crops themselves are read) or without appearance
    num_workers: int = 0  # data-loading workers when the crops are read
    video_store: FeatureStore | None = None  # I3D's features of the scene images, with INPUTS "scene_video"
    people: dict[str, PersonStats] | None = None  # by person folder, with MIL_POOLING "roles" (who acts in each clip)

    @property
    def reads_crops(self) -> bool:
        """True when fine-tuning: batches are decoded crops rather than cached features."""
        return self.model_config.appearance and self.store is None

    @property
    def workers(self) -> int:
        return self.num_workers if self.reads_crops else 0

    def dataset(self, rows: list[int], augment: bool) -> torch.utils.data.Dataset:
        """The sequences of ``rows`` as a dataset of (frames or features, stream vectors, label)."""
        if not self.reads_crops:
            return CachedSequenceDataset(self.table, rows, self.store, self.vectors, self.model_config.inputs, augment,
                                         self.video_store, self.model_config.object_classes)
        size = (self.model_config.frame_width, self.model_config.frame_height)
        return ImageSequenceDataset(self.table, rows, self.frames_dir, size, self.vectors, self.model_config.inputs,
                                    augment, self.model_config.object_classes)

    def backbone(self) -> torch.nn.Sequential | None:
        """A fresh MobileNetV2 trunk with the ImageNet weights, or None when the network reads no appearance."""
        return load_backbone(self.weights_path) if self.model_config.appearance else None


def load_keypoints(train_config: TrainConfig, env: Distributed, table: SequenceTable, model_config: ModelConfig,
                   progress: bool) -> KeypointStore:
    """Keypoints of every crop ``table`` reads: an annotation file's where stage 1 imported the video, else from the
    keypoint cache, filled from the saved crops where missing."""
    pose = PoseSettings(train_config.pose_weights, model_config.pose_imgsz, train_config.device,
                        train_config.threads, train_config.inference_backend,
                        train_config.inference_precision)
    cache = KeypointCache(Path(train_config.features_dir), pose)
    given, detected = annotated_keypoints(Path(train_config.frames_dir), table.person_dirs())
    if env.main:  # one process fills the cache, the others read it
        store = cache.load(Path(train_config.frames_dir), detected, progress=progress)
    env.barrier()
    if not env.main:
        store = cache.load(Path(train_config.frames_dir), detected, progress=False)
    with_pose = sum(bool(np.isfinite(k[:, 2]).any()) for k in given.values())
    store = dataclasses.replace(store, keypoints={**store.keypoints, **given}, with_pose=store.with_pose + with_pose)
    if env.main:
        print(f"Keypoint cache: {store.hits} person folders reused, {store.misses} computed ({store.computed} crops)"
              + (f", {len(given)} crops' keypoints from annotation files" if given else "")
              + f"; {store.coverage():.1%} of crops have a pose")
    return store


def load_training_data(train_config: TrainConfig, env: Distributed, table: SequenceTable, model_config: ModelConfig,
                       progress: bool) -> TrainingData:
    """Stream vectors, keypoints and (frozen backbone) the feature cache of every crop ``table`` reads."""
    say = print if env.main else (lambda *a, **k: None)
    caches = (model_config.appearance and model_config.fine_tune_blocks == 0) or model_config.needs_keypoints \
        or model_config.i3d
    if env.main and caches:  # a read-only or full disk is found now, not after a pass
        files.ensure_writable(Path(train_config.features_dir))
    hardware.set_threads(train_config.threads)
    frames_dir = Path(train_config.frames_dir)
    weights_path = resolve_weights(train_config.backbone_weights) if model_config.appearance else None
    needs_keypoints = model_config.needs_keypoints or bool(model_config.actor_classes)
    keypoints = load_keypoints(train_config, env, table, model_config, progress).keypoints if needs_keypoints else None
    people = person_stats(frames_dir, table.person_dirs(), keypoints) if model_config.mil_pooling == mil.ROLES else None
    vectors = load_vectors(frames_dir, table.person_dirs(), model_config.inputs, keypoints,
                           model_config.object_classes) if model_config.vector_dim else None
    store = None
    if model_config.appearance and model_config.fine_tune_blocks == 0:
        model = BehaviorNet(model_config, load_backbone(weights_path))
        cache = FeatureCache(Path(train_config.features_dir), backbone_key(weights_path, model_config))
        folders = table.person_dirs()
        if env.main:  # one process fills the cache, the others read it
            store = cache.load(frames_dir, folders, model, env.device, train_config.feature_batch_size, progress)
            say(f"Feature cache: {store.hits} folders reused, {store.misses} computed ({store.computed} images)")
        env.barrier()
        if not env.main:
            store = cache.load(frames_dir, folders, model, env.device, train_config.feature_batch_size, False)
    video_store = load_video_features(train_config, env, table, model_config, progress) if model_config.i3d else None
    return TrainingData(table, model_config, weights_path, frames_dir, vectors, store, train_config.num_workers,
                        people=people,
                        video_store=video_store)


def load_video_features(train_config: TrainConfig, env: Distributed, table: SequenceTable, model_config: ModelConfig,
                        progress: bool) -> FeatureStore:
    """I3D's features of every scene image ``table`` reads (``scene_video``), from their cache."""
    backbone = VideoBackbone.load(train_config.i3d_weights, model_config.video_clip_length, model_config.video_size,
                                  env.device, model_config.cnn_backend,
                                  model_config.cpu_precision)
    cache = VideoFeatureCache(Path(train_config.features_dir), backbone.key)
    folders = table.scene_dirs()
    if env.main:  # one process fills the cache, the others read it
        store = cache.load(Path(train_config.frames_dir), folders, backbone, progress)
        print(f"I3D feature cache: {store.hits} folders reused, {store.misses} computed ({store.computed} images)")
    env.barrier()
    if not env.main:
        store = cache.load(Path(train_config.frames_dir), folders, None, progress=False)
    return store


def set_up(cfg: dict[str, Any], train_config: TrainConfig, splits: Sequence[str]) -> tuple[SequenceTable, ModelConfig]:
    """The sequences of ``splits`` (with the classes people get) and the network's settings, their crops checked:
    where training and cross-validation both start."""
    full = with_person_classes(read_sequences(Path(train_config.sequences_file)), cfg)
    table = full.subset([i for i, s in enumerate(full.splits) if s in splits])
    if not table.ids:
        raise InputError(f"{train_config.sequences_file} has no {' or '.join(splits)} sequences")
    model_config = model_config_from(cfg, table, Path(train_config.frames_dir))
    check_crops_exist(Path(train_config.frames_dir), table, scene=model_config.scene_images)
    return table, model_config
