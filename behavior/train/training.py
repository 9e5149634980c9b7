"""Stage 3: train the MobileNetV2 + BiLSTM classifier on the sequences of stage 2.

One readable loop, in the manner of torchvision's reference scripts: class-weighted (optionally
focal) cross-entropy, Adam/AdamW, ReduceLROnPlateau on the validation loss, early stopping on
the validation macro-F1, gradient clipping, AMP on CUDA, and DistributedDataParallel under
``torchrun``. With a frozen backbone every crop's features come from the on-disk cache, so an
epoch only runs the LSTM. At the end the best checkpoint is evaluated on the test split, per
sequence and per video.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from behavior import settings
from behavior.errors import InputError
from behavior.io import files
from behavior.io.checkpoint import (
    BEST,
    LAST,
    REPORT,
    load_checkpoint,
    refuse_foreign_model_dir,
)
from behavior.io.sequence_file import SequenceTable
from behavior.model.network import ModelConfig
from behavior.settings import TrainConfig
from behavior.train.engine import Distributed, fit
from behavior.train.setup import (
    load_training_data,
    set_up,
)

log = logging.getLogger(__name__)


def train(cfg: dict[str, Any], resume: bool = False, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train on SEQUENCES_FILE, write MODEL_DIR, evaluate on the test split; returns the report.

    An existing model in MODEL_DIR is continued with ``resume`` or replaced with ``overwrite``;
    without either, training refuses to start.
    """
    settings.validate(cfg)
    train_config = TrainConfig.from_config(cfg)
    refuse_foreign_model_dir(Path(train_config.model_dir))
    env = Distributed(train_config.device)
    try:
        if not env.main:  # the main process holds MODEL_DIR's lock for every rank
            return _train(cfg, train_config, env, resume, overwrite, progress)
        with files.folder_lock(Path(train_config.model_dir), "MODEL_DIR"):
            return _train(cfg, train_config, env, resume, overwrite, progress)
    finally:
        env.close()


def _train(cfg: dict[str, Any], train_config: TrainConfig, env: Distributed, resume: bool, overwrite: bool,
           progress: bool) -> dict[str, Any]:
    model_dir = Path(train_config.model_dir)
    table, model_config = set_up(cfg, train_config, ("train", "val", "test"))
    rows = {split: table.select(split) for split in ("train", "val", "test")}
    if not rows["train"]:
        raise InputError(f"the train split of {train_config.sequences_file} is empty: check SPLIT_FRACTIONS in stage 2")
    if not rows["val"]:
        raise InputError(f"the val split of {train_config.sequences_file} is empty: early stopping needs validation "
                         "videos")
    ckpt = _earlier_run(model_dir, table, model_config, resume, overwrite)
    if env.main:  # a read-only or full disk is found now, not after the feature pass and an epoch
        files.ensure_writable(model_dir)
    data = load_training_data(train_config, env, table, model_config, progress)
    return fit(data, rows, train_config, env, model_dir, ckpt, progress)


def _earlier_run(model_dir: Path, table: SequenceTable, model_config: ModelConfig, resume: bool, overwrite: bool
                 ) -> dict[str, Any] | None:
    """last.pth when this run continues one (``resume``, or an interrupted run of the same settings); None to start
    afresh. InputError where starting afresh would replace a model without ``overwrite``."""
    if resume:
        return _resume_checkpoint(model_dir, table, model_config)
    if overwrite or not any((model_dir / name).exists() for name in (BEST, LAST)):
        return None
    if (model_dir / REPORT).is_file():
        raise InputError(f"{model_dir} already holds a trained model: pass --resume to continue it, "
                         "--overwrite to start over, or choose another --model-dir")
    try:
        ckpt = _resume_checkpoint(model_dir, table, model_config)
    except InputError as exc:
        raise InputError(f"{model_dir} holds an interrupted training that cannot go on ({exc}): pass --overwrite "
                         "to start over, or choose another --model-dir") from None
    log.info("%s holds an interrupted training of the same settings: continuing it", model_dir)
    return ckpt


def _resume_checkpoint(model_dir: Path, table: SequenceTable, model_config: ModelConfig) -> dict[str, Any]:
    """``last.pth``, after checking that it was trained on the same classes with the same model config."""
    ckpt = load_checkpoint(model_dir / LAST)
    if ckpt["classes"] != table.classes:
        raise InputError(f"cannot resume: {model_dir / LAST} was trained on classes {ckpt['classes']}, "
                         f"the sequences have {table.classes}")
    new = model_config.to_dict()
    if ckpt["model_config"] != new:
        changed = sorted(k for k in new if ckpt["model_config"].get(k) != new[k])
        raise InputError(f"cannot resume: the model config differs from {model_dir / LAST} ({', '.join(changed)})")
    for key in ("optimizer", "scheduler", "history", "best_f1", "bad_epochs", "rng"):
        if key not in ckpt:
            raise InputError(f"cannot resume from {model_dir / LAST}: it lacks {key} (is it a best-model file?)")
    return ckpt
