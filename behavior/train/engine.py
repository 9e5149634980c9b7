"""The training loop: one fit is an epoch loop over ``train_one_epoch`` and ``evaluate``, with early stopping,
ReduceLROnPlateau and a resumable checkpoint after every epoch."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from behavior import metrics, report
from behavior.data import mil
from behavior.data.datasets import (
    BagBatchSampler,
    BagDataset,
    collate_bags,
)
from behavior.errors import BehaviorError
from behavior.io import files
from behavior.io.checkpoint import (
    BEST,
    HISTORY_FIELDS,
    LAST,
    save_checkpoint,
)
from behavior.model.network import BehaviorNet, background_index, combine_members
from behavior.runtime import hardware
from behavior.settings import TrainConfig
from behavior.train.distributed import Distributed, autocast, make_scaler, seed_everything
from behavior.train.evaluation import final_evaluation, predict_probs, video_probs
from behavior.train.losses import batch_loss, class_weights
from behavior.train.setup import (
    TrainingData,
)


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


def train_one_epoch(net: torch.nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler, weights: torch.Tensor, train_config: TrainConfig, device: str,
                    epoch: int, progress: bool, pooling: str = "none", background: int | None = None,
                    ) -> tuple[float, float]:
    """One pass over the training data; returns the mean loss and the accuracy (per clip with MIL pooling).

    With ``pooling`` other than "none" a batch is whole clips (``collate_bags``): the loss is that of
    each clip's label under its people's pooled probabilities (``behavior.data.mil``). Each member of an
    ensemble learns on its own: the loss is the mean of the members' losses; the accuracy is the ensemble's.
    """
    net.train()
    params = [p for p in net.parameters() if p.requires_grad]
    total, correct, loss_sum = 0, 0, 0.0
    bar = report.progress(loader, desc="train", unit="batch", leave=False, disable=not progress)
    for step, batch in enumerate(bar):
        x, m, y = (t.to(device, non_blocking=True) for t in batch[:3])
        with autocast(device):
            member_logits = net(x, m, members=True)
        loss = torch.stack([batch_loss(logits, y, weights, train_config, pooling, background, batch)[1]
                            for logits in member_logits]).mean()
        with torch.no_grad():
            scores = batch_loss(combine_members(member_logits), y, weights, train_config, pooling, background, batch)[0]
        if not torch.isfinite(loss):
            raise BehaviorError(f"the loss became {loss.item()} at epoch {epoch}, batch {step + 1}: "
                                "lower LEARNING_RATE or check the data")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if train_config.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, train_config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        total += len(y)
        correct += int((scores.argmax(-1) == y).sum())
        loss_sum += loss.item() * len(y)
        bar.set_postfix(loss=f"{loss_sum / total:.4f}")
    return loss_sum / max(total, 1), correct / max(total, 1)


def make_optimizer(model: torch.nn.Module, train_config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over the parameters that train."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(trainable, lr=train_config.learning_rate, weight_decay=train_config.weight_decay)


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


def assign_roles(data: TrainingData, rows: dict[str, list[int]], say: Callable[..., None]) -> TrainingData:
    """With MIL_POOLING "roles", each person's role in their clip: passers-by train (and validate) as background."""
    if data.people is None:
        return data
    background = data.table.classes.index(data.model_config.background_class)
    table = data.table
    for split in ("train", "val"):
        table = mil.with_person_labels(table, rows[split], data.people, data.model_config.actor_classes, background)
    ours = [i for split in ("train", "val") for i in rows[split]]
    passing = sum(table.labels[i] == background != data.table.labels[i] for i in ours)
    received = mil.received_classes(data.model_config.actor_classes)
    receiving = sum(table.classes[table.labels[i]] in received for i in ours)
    actors, receivers = "", ""
    if data.model_config.actor_classes:
        actors = f" ({', '.join(data.model_config.actor_classes)})"
        receivers = f"{receiving} are of people receiving the action (<action>{mil.RECEIVED_SUFFIX}) and "
    say(f"Who acts{actors}: of {len(ours)} train and val sequences, {receivers}{passing} are of people passing "
        f"by ({data.model_config.background_class})")
    return dataclasses.replace(data, table=table)


@dataclass
class Batches:
    """The batches of one fit: training (whole clips under MIL pooling) and validation, and each split's clips."""

    train: DataLoader
    val: DataLoader
    bags: dict[str, list[mil.Bag]]
    pooling: str  # "none": per sequence; else how a clip pools its people
    background: int | None
    train_labels: list[int]  # what class weights count: clips under MIL pooling, else sequences
    reading: str  # what the network reads, for the start line


def make_batches(data: TrainingData, rows: dict[str, list[int]], train_config: TrainConfig, env: Distributed,
                 seed_gen: torch.Generator) -> Batches:
    """Loaders over the train and val rows: clips as bags of people under MIL pooling, else shuffled sequences."""
    table, model_config, workers = data.table, data.model_config, data.workers
    reading = ("cached features" if data.store is not None else "fine-tuning from crops") if model_config.appearance \
        else f"{', '.join(model_config.inputs)} only (no MobileNetV2)"
    # "roles" trains per sequence
    pooling = model_config.mil_pooling if mil.trains_bags(model_config.mil_pooling) else "none"
    background = background_index(model_config, table.classes)
    bags = {split: mil.table_bags(table, r, people_apart=split == "train") for split, r in rows.items()}
    train_set = data.dataset(rows["train"], train_config.augment)
    if pooling != "none":  # whole clips per batch: their people's pooled probabilities meet the clip labels
        train = _bag_loader(train_set, rows["train"], bags["train"], train_config.batch_size, seed_gen, env, workers)
        train_labels = [b.label for b in bags["train"]]
        reading += f"; clips as bags of people, {pooling} pooling" + (
            f", background class {model_config.background_class}" if background is not None else "")
    else:
        train = _loader(train_set, train_config.batch_size, True, seed_gen, env, workers)
        train_labels = [table.labels[i] for i in rows["train"]]
    val = _loader(data.dataset(rows["val"], False), train_config.batch_size, False, None, env, workers)
    return Batches(train, val, bags, pooling, background, train_labels, reading)


@dataclass
class Optimization:
    """What an epoch updates and last.pth keeps: optimizer, LR schedule, gradient scaler, early stopping, history."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    scaler: torch.amp.GradScaler
    stopper: EarlyStopping
    weights: torch.Tensor  # class weights of the loss
    history: list[dict[str, float]] = field(default_factory=list)
    start_epoch: int = 1

    @classmethod
    def create(cls, model: torch.nn.Module, train_config: TrainConfig, weights: torch.Tensor,
               device: str) -> Optimization:
        optimizer = make_optimizer(model, train_config)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=train_config.lr_factor,
                                                               patience=train_config.lr_patience)
        return cls(optimizer, scheduler, make_scaler(device), EarlyStopping(train_config.patience), weights)

    def resume(self, model: torch.nn.Module, ckpt: dict[str, Any], seed_gen: torch.Generator) -> str:
        """Continue from last.pth's state; returns how faithfully the run goes on."""
        model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.history = list(ckpt["history"])
        self.stopper = EarlyStopping(self.stopper.patience, ckpt["best_f1"], ckpt["bad_epochs"])
        self.start_epoch = ckpt["epoch"] + 1
        torch.set_rng_state(ckpt["rng"])
        if "sampler_rng" not in ckpt:
            return f"{LAST} predates saved batch order, so later epochs differ from an uninterrupted run"
        seed_gen.set_state(ckpt["sampler_rng"])
        return "the same run goes on: batch order and random state are those an uninterrupted run would have"

    def resumable(self, seed_gen: torch.Generator) -> dict[str, Any]:
        """What last.pth holds beyond the model, so that a rerun continues the same run."""
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "history": self.history, "best_f1": self.stopper.best, "bad_epochs": self.stopper.bad_epochs,
                "rng": torch.get_rng_state(), "sampler_rng": seed_gen.get_state()}


def evaluate(model: BehaviorNet, batches: Batches, rows: list[int], classes: list[str], device: str
             ) -> tuple[float, dict[str, Any]]:
    """Validation loss and metrics: per sequence, or per clip under MIL pooling (as training scores)."""
    probs, labels, loss = predict_probs(model, batches.val, device)
    if batches.pooling != "none":
        probs = video_probs(probs, rows, batches.bags["val"], batches.pooling, batches.background)[0]
        labels = np.array([b.label for b in batches.bags["val"]])
        loss = float(mil.bag_loss(torch.from_numpy(probs), torch.from_numpy(labels),
                                  torch.ones(len(classes), dtype=torch.float64)))
    return loss, metrics.evaluate(labels, probs.argmax(1), classes)


def save_epoch(model_dir: Path, state: dict[str, Any], run: Optimization, seed_gen: torch.Generator,
               improved: bool, say: Callable[..., None]) -> None:
    """The epoch's checkpoints (best when ``improved``, last always), history.csv and the learning curves."""
    if improved:
        save_checkpoint(model_dir / BEST, state)
        say(f"Best model saved (val macro-F1 {run.stopper.best:.4f})")
    save_checkpoint(model_dir / LAST, {**state, **run.resumable(seed_gen)})
    files.write_csv(model_dir / "history.csv", HISTORY_FIELDS,
                    [[f"{h[k]:.6g}" for k in HISTORY_FIELDS] for h in run.history])
    metrics.plot_curves(model_dir / "curves.png", run.history)


def _parallel(model: torch.nn.Module, env: Distributed) -> torch.nn.Module:
    """The model as the epoch trains it: wrapped for DistributedDataParallel under torchrun."""
    if env.world == 1:
        return model
    device_ids = [env.local_rank] if env.device.startswith("cuda") else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def fit(data: TrainingData, rows: dict[str, list[int]], train_config: TrainConfig, env: Distributed, model_dir: Path,
        ckpt: dict[str, Any] | None = None, progress: bool = True, scored: str = "test",
        ) -> dict[str, Any]:
    """Train a fresh network on ``rows["train"]``, stop early on ``rows["val"]``, evaluate on ``rows["test"]``.

    Writes the checkpoints and reports into ``model_dir``; ``ckpt`` (last.pth) continues an interrupted run.
    ``scored`` names ``rows["test"]`` in what is printed and in report.json ("test", or a CV fold).
    """
    say = print if env.main else (lambda *a, **k: None)
    threads = hardware.set_threads(train_config.threads)
    seed_gen = seed_everything(train_config.seed)
    data = assign_roles(data, rows, say)
    table, model_config = data.table, data.model_config
    model = BehaviorNet(model_config, data.backbone())
    batches = make_batches(data, rows, train_config, env, seed_gen)
    net = _parallel(model.to(env.device), env)
    run = Optimization.create(model, train_config, class_weights(batches.train_labels,
                                                                 model_config.num_classes).to(env.device),
                              env.device)
    if ckpt is not None:
        how = run.resume(model, ckpt, seed_gen)
        say(f"Resumed from {model_dir / LAST} after epoch {ckpt['epoch']} ({how})")
    say(f"Training on {env.device} ({threads} CPU threads, {env.world} process(es)); "
        f"{len(rows['train'])} train / {len(rows['val'])} val / {len(rows['test'])} test sequences; "
        f"classes: {', '.join(table.classes)}; {batches.reading}")
    base = {"classes": table.classes, "model_config": model_config.to_dict(), "train_config": asdict(train_config),
            "versions": hardware.versions()}
    for epoch in range(run.start_epoch, train_config.epochs + 1):
        if run.stopper.should_stop:
            break
        started = time.perf_counter()
        say(f"\nEpoch {epoch}/{train_config.epochs}")
        if isinstance(batches.train.sampler, DistributedSampler):
            batches.train.sampler.set_epoch(epoch)
        train_loss, train_acc = train_one_epoch(net, batches.train, run.optimizer, run.scaler, run.weights,
                                                train_config,
                                                env.device, epoch, progress and env.main, batches.pooling,
                                                batches.background)
        val_loss, val = evaluate(model, batches, rows["val"], table.classes, env.device)
        run.scheduler.step(val_loss)
        record = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                  "val_loss": val_loss, "val_acc": val["accuracy"], "val_macro_f1": val["macro_f1"],
                  "lr": run.optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - started}
        run.history.append(record)
        say(f"Train Loss: {train_loss:.4f} | Train Acc: {train_acc:.4f}")
        say(f"Val Loss: {val_loss:.4f} | Val Acc: {val['accuracy']:.4f} | Val macro-F1: {val['macro_f1']:.4f}")
        improved = run.stopper.step(val["macro_f1"])
        if env.main:
            state = {**base, "model": {k: v.cpu() for k, v in model.state_dict().items()}, "epoch": epoch,
                     "metrics": {k: float(v) for k, v in record.items()}}
            save_epoch(model_dir, state, run, seed_gen, improved, say)
        if run.stopper.should_stop:
            say(f"Early stopping: no better validation macro-F1 for {train_config.patience} epochs")
    env.barrier()
    if not env.main:
        return {}
    return final_evaluation(model, table, rows, lambda split, augment: data.dataset(rows[split], augment), train_config,
                            env.device, model_dir, data.workers, scored)
