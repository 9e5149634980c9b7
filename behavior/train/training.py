"""Stage 3: train the MobileNetV2 + BiLSTM classifier on the sequences of stage 2.

One readable loop, in the manner of torchvision's reference scripts: class-weighted (optionally
focal) cross-entropy, Adam/AdamW, ReduceLROnPlateau on the validation loss, early stopping on
the validation macro-F1, gradient clipping, AMP on CUDA, and DistributedDataParallel under
``torchrun``. With a frozen backbone every crop's features come from the on-disk cache, so an
epoch only runs the LSTM. At the end the best checkpoint is evaluated on the test split, per
sequence and per video.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler
from tqdm import tqdm

from behavior import metrics, settings
from behavior.data import mil
from behavior.data.datasets import (
    BagBatchSampler,
    BagDataset,
    CachedSequenceDataset,
    ImageSequenceDataset,
    check_crops_exist,
    collate_bags,
    load_vectors,
    person_stats,
)
from behavior.data.mil import PersonStats
from behavior.detect.pose import KeypointCache, KeypointStore, PoseSettings
from behavior.detect.tracking import WHOLE_FRAME_TRACK
from behavior.errors import BehaviorError, InputError
from behavior.features.appearance import FeatureCache, FeatureStore, backbone_key
from behavior.features.video_backbone import VideoBackbone, VideoFeatureCache
from behavior.io import files
from behavior.io.checkpoint import load_checkpoint, save_checkpoint
from behavior.io.files import file_sha256
from behavior.io.sequence_file import SequenceTable, read_sequences
from behavior.io.weights import resolve_weights
from behavior.model.network import BehaviorNet, ModelConfig, background_index, combine_members, load_backbone
from behavior.runtime import backends, hardware
from behavior.settings import ExtractSettings, ModelSettings, TrainConfig

log = logging.getLogger(__name__)

BEST, LAST = "best_mobilenet_lstm.pth", "last.pth"
WHOLE_FRAME_INPUTS = ("appearance", "motion")  # what a model of whole frames reads when INPUTS asks for people
CV_DIR = "cv"  # under MODEL_DIR: fold_<k>/ (a full model folder each), folds.csv, cv_report.json, confusion matrix
MODEL_FILES = (BEST, LAST, "history.csv", "report.json", "classification_report.txt", "confusion_matrix.csv",
               "confusion_matrix.png", "curves.png", "predictions.csv", CV_DIR)  # all that training writes
HISTORY_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1", "lr", "seconds")


def model_config_from(cfg: dict[str, Any], table: SequenceTable, frames_dir: Path) -> ModelConfig:
    """The network's settings: stage 3 constants, plus how the crops were made (from stage 1's meta.json)."""
    first_video = Path(frames_dir) / table.frames[0][0].rsplit("/", 2)[0] / "meta.json"
    extraction = (files.read_json(first_video) or {}).get("settings", {})
    chosen = ModelSettings.from_config(cfg)
    crops = ExtractSettings.from_config(cfg)  # config.py's, where a meta.json from before a field lacks it
    pooling = resolve_pooling(chosen.mil_pooling, chosen.background_class, chosen.actor_classes)
    mc = ModelConfig(
        **{**asdict(chosen), "mil_pooling": pooling}, num_classes=len(table.classes),
        sequence_length=table.sequence_length,
        **{name: type(getattr(crops, name))(extraction.get(name, getattr(crops, name)))
           for name in ("frame_width", "frame_height", "crop_margin", "target_fps", "person_tracking", "jpeg_quality")},
        pad_mode=str(cfg["PAD_MODE"]), min_sequence_frames=int(cfg["MIN_SEQUENCE_FRAMES"]),
        cpu_precision=hardware.cpu_precision(str(cfg["INFERENCE_PRECISION"])),
    )
    if mc.background_class and mc.background_class not in table.classes:
        raise InputError(f"BACKGROUND_CLASS (--background-class) {mc.background_class!r} is not one of the classes "
                         f"of the sequences: {', '.join(table.classes)}")
    check_roles(mc, table.classes)
    if not mc.person_tracking and (mc.needs_keypoints or mc.scene_images):
        log.warning("whole-frame frames: INPUTS %s need tracked people; this model reads %s", ", ".join(mc.inputs),
                    ", ".join(WHOLE_FRAME_INPUTS))
        mc = dataclasses.replace(mc, inputs=WHOLE_FRAME_INPUTS)
    if mc.fine_tune_blocks > 0:  # fine-tuning trains the backbone in float32 on torch: predict the same way
        mc = dataclasses.replace(mc, cpu_precision="float32")
    elif mc.appearance or mc.i3d:  # cached features are computed (and predicted) on the chosen runtime
        mc = dataclasses.replace(mc, cnn_backend=backends.resolve_backend(
            str(cfg["INFERENCE_BACKEND"]), hardware.resolve_device(str(cfg["DEVICE"]))))
    if mc.i3d:  # and the I3D the video features came from
        mc = dataclasses.replace(mc, video_sha256=file_sha256(str(resolve_weights(str(cfg["I3D_WEIGHTS"])))))
    if mc.needs_keypoints:  # prediction checks that it runs the pose model the keypoints came from
        mc = dataclasses.replace(mc, pose_sha256=PoseSettings(str(cfg["POSE_WEIGHTS"])).sha256())
    return mc


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


def check_roles(mc: ModelConfig, classes: list[str]) -> None:
    """Raise InputError when MIL_POOLING "roles" or ACTOR_CLASSES cannot label the people: they need a background
    class for those who pass by, actor classes that exist, and per-person training."""
    if mc.actor_classes and not mc.background_class:
        raise InputError("ACTOR_CLASSES (--actor-classes) needs a BACKGROUND_CLASS (--background-class): the label "
                         "of the people who receive the action or pass by")
    if mc.mil_pooling == mil.ROLES and not mc.background_class:
        raise InputError("MIL_POOLING (--mil-pooling) roles needs a BACKGROUND_CLASS (--background-class): the label "
                         "of the people who pass by")
    if not mc.actor_classes:
        return
    people_only = {mc.background_class, *mil.received_classes(mc.actor_classes)}
    clip_classes = [c for c in classes if c not in people_only]
    unknown = [c for c in mc.actor_classes if c not in clip_classes]
    if unknown:
        raise InputError(f"ACTOR_CLASSES (--actor-classes) {', '.join(unknown)}: not among the clip classes "
                         f"{', '.join(clip_classes)}")
    if mc.mil_pooling != mil.ROLES:
        raise InputError(f"ACTOR_CLASSES (--actor-classes) trains each person with their own label: MIL_POOLING "
                         f"must be auto or roles, not {mc.mil_pooling!r}")


def class_weights(labels: list[int], num_classes: int) -> torch.Tensor:
    """Inverse class frequency, normalized to a mean of 1 over the classes present.

    Example:
        >>> class_weights([0, 0, 0, 1], 2).tolist()
        [0.5, 1.5]
    """
    counts = np.bincount(np.asarray(labels, int), minlength=num_classes).astype(float)
    weights = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    present = counts > 0
    weights[present] *= present.sum() / weights[present].sum()
    return torch.tensor(weights, dtype=torch.float32)


def classification_loss(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
                        gamma: float = 0.0) -> torch.Tensor:
    """Class-weighted cross-entropy; with ``gamma`` > 0, focal loss (easy examples count less)."""
    ce = F.cross_entropy(logits.float(), target, weight=weights, reduction="none")
    if gamma > 0:
        p_true = torch.softmax(logits.float(), dim=-1).gather(1, target[:, None]).squeeze(1)
        ce = (1 - p_true).pow(gamma) * ce
    return ce.sum() / weights[target].sum()


@dataclass
class EarlyStopping:
    """Stop after ``patience`` epochs without a better score."""

    patience: int
    best: float = -math.inf
    bad_epochs: int = 0

    def step(self, score: float) -> bool:
        """Record an epoch's score; True when it is the best so far."""
        if score > self.best:
            self.best, self.bad_epochs = score, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; returns a generator for the data sampler."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


class Distributed:
    """The torchrun environment, or a single process."""

    def __init__(self, device: str) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = hardware.resolve_device(device)
        if self.world > 1:
            if self.device.startswith("cuda"):
                self.device = f"cuda:{self.local_rank}"
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if self.device.startswith("cuda") else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


@torch.inference_mode()
def predict_probs(model: BehaviorNet, loader: DataLoader, device: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Class probabilities and labels of every sequence in ``loader``, and the mean (unweighted) loss."""
    model.eval()
    probs, labels, losses = [], [], []
    for x, motion, y in loader:
        x, motion, y = x.to(device), motion.to(device), y.to(device)
        with _autocast(device):
            logits = model(x, motion)
        losses.append(F.cross_entropy(logits.float(), y, reduction="sum").item())
        probs.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        labels.append(y.cpu().numpy())
    n = sum(len(label) for label in labels)
    if n == 0:
        return np.zeros((0, model.cfg.num_classes)), np.zeros(0, int), 0.0
    return np.concatenate(probs), np.concatenate(labels), sum(losses) / n


def _resume_checkpoint(model_dir: Path, table: SequenceTable, mc: ModelConfig) -> dict[str, Any]:
    """``last.pth``, after checking that it was trained on the same classes with the same model config."""
    ckpt = load_checkpoint(model_dir / LAST)
    if ckpt["classes"] != table.classes:
        raise InputError(f"cannot resume: {model_dir / LAST} was trained on classes {ckpt['classes']}, "
                         f"the sequences have {table.classes}")
    new = mc.to_dict()
    if ckpt["model_config"] != new:
        changed = sorted(k for k in new if ckpt["model_config"].get(k) != new[k])
        raise InputError(f"cannot resume: the model config differs from {model_dir / LAST} ({', '.join(changed)})")
    for key in ("optimizer", "scheduler", "history", "best_f1", "bad_epochs", "rng"):
        if key not in ckpt:
            raise InputError(f"cannot resume from {model_dir / LAST}: it lacks {key} (is it a best-model file?)")
    return ckpt


def train_one_epoch(net: torch.nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler, weights: torch.Tensor, tc: TrainConfig, device: str, epoch: int,
                    progress: bool, pooling: str = "none", background: int | None = None) -> tuple[float, float]:
    """One pass over the training data; returns the mean loss and the accuracy (per clip with MIL pooling).

    With ``pooling`` other than "none" a batch is whole clips (``collate_bags``): the loss is that of
    each clip's label under its people's pooled probabilities (``behavior.data.mil``). Each member of an
    ensemble learns on its own: the loss is the mean of the members' losses; the accuracy is the ensemble's.
    """
    net.train()
    params = [p for p in net.parameters() if p.requires_grad]
    total, correct, loss_sum = 0, 0, 0.0
    bar = tqdm(loader, desc="train", unit="batch", leave=False, disable=not progress)
    for step, batch in enumerate(bar):
        x, m, y = (t.to(device, non_blocking=True) for t in batch[:3])
        with _autocast(device):
            member_logits = net(x, m, members=True)
        loss = torch.stack([batch_loss(logits, y, weights, tc, pooling, background, batch)[1]
                            for logits in member_logits]).mean()
        with torch.no_grad():
            scores = batch_loss(combine_members(member_logits), y, weights, tc, pooling, background, batch)[0]
        if not torch.isfinite(loss):
            raise BehaviorError(f"the loss became {loss.item()} at epoch {epoch}, batch {step + 1}: "
                                "lower LEARNING_RATE or check the data")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if tc.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        total += len(y)
        correct += int((scores.argmax(-1) == y).sum())
        loss_sum += loss.item() * len(y)
        bar.set_postfix(loss=f"{loss_sum / total:.4f}")
    return loss_sum / max(total, 1), correct / max(total, 1)


def batch_loss(logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, tc: TrainConfig, pooling: str,
               background: int | None, batch: Sequence) -> tuple[torch.Tensor, torch.Tensor]:
    """The scores (per sequence, or per clip with MIL pooling: ``batch[3]`` holds the bags) and the loss of one
    batch's logits."""
    if pooling != "none":
        scores = mil.clip_probs(torch.softmax(logits.float(), dim=-1), batch[3], pooling, background)
        return scores, mil.bag_loss(scores, y, weights, tc.focal_gamma)
    return logits, classification_loss(logits, y, weights, tc.focal_gamma)


def video_probs(probs: np.ndarray, rows: list[int], bags: list[mil.Bag], pooling: str,
                background: int | None, classes: Sequence[str] = (), actor_classes: Sequence[str] = (),
                ) -> tuple[np.ndarray, np.ndarray]:
    """Each bag's pooled probabilities (B, C) and each person's (P, C), from the sequences' ``probs`` of ``rows``.

    The video label of training's reports: "none" pools with the mean over the sequences, as
    ``predict.py`` does with VIDEO_LABEL_RULE "auto" for such a model. With ``actor_classes`` (and the
    ``classes``), each received class counts for its action (``mil.fold_received``).
    """
    position = {r: n for n, r in enumerate(rows)}
    if not bags:
        return np.zeros((0, probs.shape[1])), np.zeros((0, probs.shape[1]))
    ordered = torch.from_numpy(probs[[position[r] for bag in bags for r in bag.rows]]).double()
    people, counts, bag_of = mil.people_probs(ordered, bags)
    clips = mil.pool_people(mil.fold_received(people, classes, actor_classes), counts, bag_of, pooling, background)
    return clips.numpy(), people.numpy()


def make_optimizer(model: torch.nn.Module, tc: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over the parameters that train."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(trainable, lr=tc.learning_rate, weight_decay=tc.weight_decay)


def make_scaler(device: str) -> torch.amp.GradScaler:
    """A gradient scaler, active only for float16 autocast on CUDA."""
    return torch.amp.GradScaler(enabled=device.startswith("cuda") and not torch.cuda.is_bf16_supported())


def _autocast(device: str):
    if device.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return nullcontext()


def _loader(dataset, batch_size: int, shuffle: bool, seed_gen: torch.Generator | None, env: Distributed,
            workers: int) -> DataLoader:
    sampler = None
    if shuffle and env.world > 1:
        sampler = DistributedSampler(dataset, num_replicas=env.world, rank=env.rank, seed=seed_gen.initial_seed())
    elif shuffle:
        sampler = RandomSampler(dataset, generator=seed_gen)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=workers,
                      pin_memory=env.device.startswith("cuda"), persistent_workers=workers > 0)


def _bag_loader(sequences, rows: list[int], bags: list[mil.Bag], batch_size: int, seed_gen: torch.Generator,
                env: Distributed, workers: int) -> DataLoader:
    """Whole clips per batch, for multiple-instance training: shuffled clips packed up to ``batch_size`` sequences."""
    sampler = BagBatchSampler([len(b.rows) for b in bags], batch_size, seed_gen, env.rank, env.world)
    return DataLoader(BagDataset(sequences, rows, bags), batch_sampler=sampler, num_workers=workers,
                      collate_fn=partial(collate_bags, bags=bags), pin_memory=env.device.startswith("cuda"),
                      persistent_workers=workers > 0)


def train(cfg: dict[str, Any], resume: bool = False, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train on SEQUENCES_FILE, write MODEL_DIR, evaluate on the test split; returns the report.

    An existing model in MODEL_DIR is continued with ``resume`` or replaced with ``overwrite``;
    without either, training refuses to start.
    """
    settings.validate(cfg)
    tc = TrainConfig.from_config(cfg)
    refuse_foreign_model_dir(Path(tc.model_dir))
    env = Distributed(tc.device)
    try:
        if not env.main:  # the main process holds MODEL_DIR's lock for every rank
            return _train(cfg, tc, env, resume, overwrite, progress)
        with files.folder_lock(Path(tc.model_dir), "MODEL_DIR"):
            return _train(cfg, tc, env, resume, overwrite, progress)
    finally:
        env.close()


def refuse_foreign_model_dir(model_dir: Path) -> None:
    """InputError when MODEL_DIR holds files training did not write, which a run would overwrite or mix with: other
    names, or reports without the model they report on. --overwrite replaces only training's own files."""
    entries = files.foreign_entries(model_dir, ())
    foreign = [e for e in entries if e not in MODEL_FILES]
    if entries and not foreign and not {BEST, LAST, CV_DIR} & set(entries):
        foreign = entries  # report.json or history.csv and no model: not from a training run
    if foreign:
        raise InputError(f"MODEL_DIR {model_dir} holds files training did not write "
                         f"({files.describe_entries(foreign)}): nothing was changed; choose an empty or new "
                         "--model-dir")


@dataclass
class TrainingData:
    """What every fit on one sequences table shares: the table, the network's settings, the stream vectors
    (motion, pose, interaction) and, with a frozen backbone, every crop's cached features (computed once,
    e.g. for all folds of a CV)."""

    table: SequenceTable
    mc: ModelConfig
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
        return self.mc.appearance and self.store is None

    @property
    def workers(self) -> int:
        return self.num_workers if self.reads_crops else 0

    def dataset(self, rows: list[int], augment: bool) -> torch.utils.data.Dataset:
        """The sequences of ``rows`` as a dataset of (frames or features, stream vectors, label)."""
        if not self.reads_crops:
            return CachedSequenceDataset(self.table, rows, self.store, self.vectors, self.mc.inputs, augment,
                                         self.video_store)
        size = (self.mc.frame_width, self.mc.frame_height)
        return ImageSequenceDataset(self.table, rows, self.frames_dir, size, self.vectors, self.mc.inputs, augment)

    def backbone(self) -> torch.nn.Sequential | None:
        """A fresh MobileNetV2 trunk with the ImageNet weights, or None when the network reads no appearance."""
        return load_backbone(self.weights_path) if self.mc.appearance else None


def load_keypoints(tc: TrainConfig, env: Distributed, table: SequenceTable, mc: ModelConfig,
                   progress: bool) -> KeypointStore:
    """Keypoints of every crop ``table`` reads, from the keypoint cache, filled from the saved crops where missing."""
    pose = PoseSettings(tc.pose_weights, mc.pose_imgsz, tc.device, tc.threads, tc.inference_backend,
                        tc.inference_precision)
    cache = KeypointCache(Path(tc.features_dir), pose)
    if env.main:  # one process fills the cache, the others read it
        store = cache.load(Path(tc.frames_dir), table.person_dirs(), progress=progress)
        print(f"Keypoint cache: {store.hits} person folders reused, {store.misses} computed ({store.computed} crops); "
              f"{store.coverage():.1%} of crops have a pose")
    env.barrier()
    if not env.main:
        store = cache.load(Path(tc.frames_dir), table.person_dirs(), progress=False)
    return store


def load_training_data(tc: TrainConfig, env: Distributed, table: SequenceTable, mc: ModelConfig,
                       progress: bool) -> TrainingData:
    """Stream vectors, keypoints and (frozen backbone) the feature cache of every crop ``table`` reads."""
    say = print if env.main else (lambda *a, **k: None)
    frames_dir = Path(tc.frames_dir)
    weights_path = resolve_weights(tc.backbone_weights) if mc.appearance else None
    needs_keypoints = mc.needs_keypoints or bool(mc.actor_classes)
    keypoints = load_keypoints(tc, env, table, mc, progress).keypoints if needs_keypoints else None
    people = person_stats(frames_dir, table.person_dirs(), keypoints) if mc.mil_pooling == mil.ROLES else None
    vectors = load_vectors(frames_dir, table.person_dirs(), mc.inputs, keypoints) if mc.vector_dim else None
    store = None
    if mc.appearance and mc.fine_tune_blocks == 0:
        model = BehaviorNet(mc, load_backbone(weights_path))
        cache = FeatureCache(Path(tc.features_dir), backbone_key(weights_path, mc))
        folders = table.person_dirs()
        if env.main:  # one process fills the cache, the others read it
            store = cache.load(frames_dir, folders, model, env.device, tc.feature_batch_size, progress)
            say(f"Feature cache: {store.hits} folders reused, {store.misses} computed ({store.computed} images)")
        env.barrier()
        if not env.main:
            store = cache.load(frames_dir, folders, model, env.device, tc.feature_batch_size, False)
    video_store = load_video_features(tc, env, table, mc, progress) if mc.i3d else None
    return TrainingData(table, mc, weights_path, frames_dir, vectors, store, tc.num_workers, people=people,
                        video_store=video_store)


def load_video_features(tc: TrainConfig, env: Distributed, table: SequenceTable, mc: ModelConfig,
                        progress: bool) -> FeatureStore:
    """I3D's features of every scene image ``table`` reads (``scene_video``), from their cache."""
    backbone = VideoBackbone.load(tc.i3d_weights, mc.video_clip_length, mc.video_size, env.device, mc.cnn_backend,
                                  mc.cpu_precision)
    cache = VideoFeatureCache(Path(tc.features_dir), backbone.key)
    folders = table.scene_dirs()
    if env.main:  # one process fills the cache, the others read it
        store = cache.load(Path(tc.frames_dir), folders, backbone, progress)
        print(f"I3D feature cache: {store.hits} folders reused, {store.misses} computed ({store.computed} images)")
    env.barrier()
    if not env.main:
        store = cache.load(Path(tc.frames_dir), folders, None, progress=False)
    return store


def _train(cfg: dict[str, Any], tc: TrainConfig, env: Distributed, resume: bool, overwrite: bool,
           progress: bool) -> dict[str, Any]:
    frames_dir, model_dir = Path(tc.frames_dir), Path(tc.model_dir)
    table = with_person_classes(read_sequences(Path(tc.sequences_file)), cfg)
    rows = {split: table.select(split) for split in ("train", "val", "test")}
    if not rows["train"]:
        raise InputError(f"the train split of {tc.sequences_file} is empty: check SPLIT_FRACTIONS in stage 2")
    if not rows["val"]:
        raise InputError(f"the val split of {tc.sequences_file} is empty: early stopping needs validation videos")
    mc = model_config_from(cfg, table, frames_dir)
    check_crops_exist(frames_dir, table, scene=mc.scene_images)
    ckpt = _resume_checkpoint(model_dir, table, mc) if resume else None
    if ckpt is None and (model_dir / BEST).exists() and not overwrite:
        raise InputError(f"{model_dir} already holds a trained model: pass --resume to continue it, "
                         "--overwrite to start over, or choose another --model-dir")
    if env.main:  # a read-only or full disk is found now, not after the feature pass and an epoch
        files.ensure_writable(model_dir)
        if (mc.appearance and mc.fine_tune_blocks == 0) or mc.needs_keypoints or mc.i3d:
            files.ensure_writable(Path(tc.features_dir))
    hardware.set_threads(tc.threads)
    data = load_training_data(tc, env, table, mc, progress)
    return fit(data, rows, tc, env, model_dir, ckpt, progress)


def fit(data: TrainingData, rows: dict[str, list[int]], tc: TrainConfig, env: Distributed, model_dir: Path,
        ckpt: dict[str, Any] | None = None, progress: bool = True, scored: str = "test",
        ) -> dict[str, Any]:
    """Train a fresh network on ``rows["train"]``, stop early on ``rows["val"]``, evaluate on ``rows["test"]``.

    Writes the checkpoints and reports into ``model_dir``; ``ckpt`` (last.pth) continues an interrupted run.
    ``scored`` names ``rows["test"]`` in what is printed and in report.json ("test", or a CV fold).
    """
    say = print if env.main else (lambda *a, **k: None)
    threads = hardware.set_threads(tc.threads)
    seed_gen = seed_everything(tc.seed)
    if data.people is not None:  # each person's role in their clip: passers-by train (and validate) as background
        background = data.table.classes.index(data.mc.background_class)
        table = data.table
        for split in ("train", "val"):
            table = mil.with_person_labels(table, rows[split], data.people, data.mc.actor_classes, background)
        ours = [i for split in ("train", "val") for i in rows[split]]
        passing = sum(table.labels[i] == background != data.table.labels[i] for i in ours)
        received = mil.received_classes(data.mc.actor_classes)
        receiving = sum(table.classes[table.labels[i]] in received for i in ours)
        actors, receivers = "", ""
        if data.mc.actor_classes:
            actors = f" ({', '.join(data.mc.actor_classes)})"
            receivers = f"{receiving} are of people receiving the action (<action>{mil.RECEIVED_SUFFIX}) and "
        say(f"Who acts{actors}: of {len(ours)} train and val sequences, {receivers}{passing} are of people passing "
            f"by ({data.mc.background_class})")
        data = dataclasses.replace(data, table=table)
    table, mc = data.table, data.mc
    model = BehaviorNet(mc, data.backbone())
    reading = ("cached features" if data.store is not None else "fine-tuning from crops") if mc.appearance \
        else f"{', '.join(mc.inputs)} only (no MobileNetV2)"
    workers = data.workers

    def dataset(split: str, augment: bool):
        return data.dataset(rows[split], augment)

    pooling = mc.mil_pooling if mil.trains_bags(mc.mil_pooling) else "none"  # "roles" trains per sequence
    background = background_index(mc, table.classes)
    bags = {split: mil.table_bags(table, r) for split, r in rows.items()}
    if pooling != "none":  # whole clips per batch: their people's pooled probabilities meet the clip labels
        train_loader = _bag_loader(dataset("train", tc.augment), rows["train"], bags["train"], tc.batch_size, seed_gen,
                                   env, workers)
        train_labels = [b.label for b in bags["train"]]
        reading += f"; clips as bags of people, {pooling} pooling" + (
            f", background class {mc.background_class}" if background is not None else "")
    else:
        train_loader = _loader(dataset("train", tc.augment), tc.batch_size, True, seed_gen, env, workers)
        train_labels = [table.labels[i] for i in rows["train"]]
    val_loader = _loader(dataset("val", False), tc.batch_size, False, None, env, workers)
    model.to(env.device)
    net = model
    if env.world > 1:
        device_ids = [env.local_rank] if env.device.startswith("cuda") else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    optimizer = make_optimizer(model, tc)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=tc.lr_factor,
                                                           patience=tc.lr_patience)
    weights = class_weights(train_labels, mc.num_classes).to(env.device)
    scaler = make_scaler(env.device)
    stopper = EarlyStopping(tc.patience)
    history: list[dict[str, float]] = []
    start_epoch = 1

    base = {"classes": table.classes, "model_config": mc.to_dict(), "train_config": asdict(tc),
            "versions": hardware.versions()}
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        history = list(ckpt["history"])
        stopper = EarlyStopping(tc.patience, ckpt["best_f1"], ckpt["bad_epochs"])
        start_epoch = ckpt["epoch"] + 1
        torch.set_rng_state(ckpt["rng"])
        if "sampler_rng" in ckpt:
            seed_gen.set_state(ckpt["sampler_rng"])
            how = "the same run goes on: batch order and random state are those an uninterrupted run would have"
        else:
            how = f"{LAST} predates saved batch order, so later epochs differ from an uninterrupted run"
        say(f"Resumed from {model_dir / LAST} after epoch {ckpt['epoch']} ({how})")

    say(f"Training on {env.device} ({threads} CPU threads, {env.world} process(es)); "
        f"{len(rows['train'])} train / {len(rows['val'])} val / {len(rows['test'])} test sequences; "
        f"classes: {', '.join(table.classes)}; {reading}")
    for epoch in range(start_epoch, tc.epochs + 1):
        if stopper.should_stop:
            break
        started = time.perf_counter()
        say(f"\nEpoch {epoch}/{tc.epochs}")
        if isinstance(train_loader.sampler, DistributedSampler):
            train_loader.sampler.set_epoch(epoch)
        train_loss, train_acc = train_one_epoch(net, train_loader, optimizer, scaler, weights, tc, env.device,
                                                epoch, progress and env.main, pooling, background)
        probs, labels, val_loss = predict_probs(model, val_loader, env.device)
        if pooling != "none":  # validation scores clips, as training does
            clips = video_probs(probs, rows["val"], bags["val"], pooling, background)[0]
            labels = np.array([b.label for b in bags["val"]])
            val_loss = float(mil.bag_loss(torch.from_numpy(clips), torch.from_numpy(labels),
                                          torch.ones(mc.num_classes, dtype=torch.float64)))
            probs = clips
        val = metrics.evaluate(labels, probs.argmax(1), table.classes)
        scheduler.step(val_loss)
        record = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                  "val_loss": val_loss, "val_acc": val["accuracy"], "val_macro_f1": val["macro_f1"],
                  "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - started}
        history.append(record)
        say(f"Train Loss: {record['train_loss']:.4f} | Train Acc: {record['train_acc']:.4f}")
        say(f"Val Loss: {val_loss:.4f} | Val Acc: {val['accuracy']:.4f} | Val macro-F1: {val['macro_f1']:.4f}")
        improved = stopper.step(val["macro_f1"])
        if env.main:
            state = {**base, "model": {k: v.cpu() for k, v in model.state_dict().items()}, "epoch": epoch,
                     "metrics": {k: float(v) for k, v in record.items()}}
            if improved:
                save_checkpoint(model_dir / BEST, state)
                say(f"Best model saved (val macro-F1 {val['macro_f1']:.4f})")
            save_checkpoint(model_dir / LAST, {**state, "optimizer": optimizer.state_dict(),
                                               "scheduler": scheduler.state_dict(), "history": history,
                                               "best_f1": stopper.best, "bad_epochs": stopper.bad_epochs,
                                               "rng": torch.get_rng_state(), "sampler_rng": seed_gen.get_state()})
            files.write_csv(model_dir / "history.csv", HISTORY_FIELDS,
                            [[f"{h[k]:.6g}" for k in HISTORY_FIELDS] for h in history])
            metrics.plot_curves(model_dir / "curves.png", history)
        if stopper.should_stop:
            say(f"Early stopping: no better validation macro-F1 for {tc.patience} epochs")
    env.barrier()
    if not env.main:
        return {}
    return final_evaluation(model, table, rows, dataset, tc, env.device, model_dir, workers, scored)


def final_evaluation(model: BehaviorNet, table: SequenceTable, rows: dict[str, list[int]], dataset, tc: TrainConfig,
                     device: str, model_dir: Path, workers: int, scored: str = "test") -> dict[str, Any]:
    """Evaluate the best checkpoint on the test split (per sequence and per video) and write the report."""
    split = "test" if rows["test"] else "val"  # the rows scored
    name = scored if rows["test"] else "val"  # what they are called
    title = {"test": "TEST SET", "val": "VALIDATION SET"}.get(name, name.upper())
    print("\n" + "=" * 60 + f"\nFINAL EVALUATION ON {title}\n" + "=" * 60)
    best = load_checkpoint(model_dir / BEST)
    model.load_state_dict(best["model"])
    if split == "val":
        log.warning("the test split is empty: reporting on the validation split instead")
    loader = DataLoader(dataset(split, False), batch_size=tc.batch_size, num_workers=workers)
    probs, labels, loss = predict_probs(model, loader, device)
    sequence = metrics.evaluate(labels, probs.argmax(1), table.classes)
    mc = model.cfg
    bags = mil.table_bags(table, rows[split])
    background = background_index(mc, table.classes)
    rule = mil.label_rule(mc.mil_pooling, mc.actor_classes)
    clips, people = video_probs(probs, rows[split], bags, rule, background, table.classes, mc.actor_classes)
    video = metrics.evaluate([b.label for b in bags], clips.argmax(1), table.classes)
    video["predictions"] = {b.video: table.classes[int(p.argmax())] for b, p in zip(bags, clips, strict=True)}
    video["pooling"] = rule
    people_of, offset = {}, 0
    for bag in bags:
        people_of[bag.video] = {name: [round(float(v), 6) for v in people[offset + k]]
                                for k, name in enumerate(bag.persons)}
        offset += len(bag.persons)
    labeled = metrics.people_labels([(b.label, people_of[b.video]) for b in bags], table.classes, background)
    per_split = {name: Counter(table.classes[table.labels[i]] for i in {table.videos[j]: j for j in r}.values())
                 for name, r in rows.items()}
    warnings = metrics.data_warnings(per_split, table.classes, split)
    extra = {"split": name, "best_epoch": best["epoch"], "loss": loss, "best_val": best["metrics"],
             "checkpoint": str(model_dir / BEST), "warnings": warnings, "people_labels": labeled,
             "whole_frame_videos": sum(b.persons == (f"person_{WHOLE_FRAME_TRACK}",) for b in bags),
             "people": people_of}
    metrics.write_report(model_dir, sequence, video, extra)
    metrics.write_predictions(model_dir / "predictions.csv", [table.ids[i] for i in rows[split]], labels, probs,
                              table.classes)
    print(f"Best epoch: {best['epoch']} (val macro-F1 {best['metrics']['val_macro_f1']:.4f})")
    print(f"Sequence level: accuracy {sequence['accuracy']:.4f} | macro-F1 {sequence['macro_f1']:.4f} "
          f"| mean class accuracy {sequence['mean_class_accuracy']:.4f} ({sequence['n']} sequences)")
    print(f"Video level:    accuracy {video['accuracy']:.4f} | macro-F1 {video['macro_f1']:.4f} "
          f"| mean class accuracy {video['mean_class_accuracy']:.4f} ({video['n']} {name} videos with sequences)")
    print(metrics.classification_report_text(video, f"Video level ({video['pooling']} pooling over people)"))
    print(metrics.people_labels_table(labeled))
    if extra["whole_frame_videos"]:
        print(f"{extra['whole_frame_videos']} of the {len(bags)} videos had nobody tracked: the whole frame stood in")
    for warning in warnings:
        print(f"WARNING: {warning}")
    print(f"outputs: {model_dir} (best_mobilenet_lstm.pth, report.json, predictions.csv, confusion_matrix.png, "
          "curves.png)")
    return json.loads(json.dumps({**extra, "sequence_level": sequence, "video_level": video}))
