"""Checkpoints that stage 3 writes and stage 4 loads: saved atomically, loaded as tensors and plain data only."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from behavior.errors import InputError
from behavior.io import files


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """torch.save to a temporary name, then rename: a crash never leaves half a checkpoint."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return files.atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint of plain types and tensors; InputError when missing, corrupt or incomplete."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise InputError(f"cannot read checkpoint {path}: {unreadable_checkpoint(path)}") from None
    required = ("model", "classes", "model_config", "train_config", "metrics", "epoch", "versions")
    missing = [k for k in required if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise InputError(f"checkpoint {path} lacks {', '.join(missing)}: not a behavior checkpoint")
    return ckpt


def unreadable_checkpoint(path: Path) -> str:
    """What a file torch cannot load as a checkpoint is, and what to do, in words (never torch's own text).

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".pth") as f:
        ...     _ = f.write("model: mine"); f.flush(); unreadable_checkpoint(Path(f.name))
        'it is a text file, not a checkpoint: pass the best_mobilenet_lstm.pth that train_mobilenet_lstm.py wrote'
    """
    ours = "pass the best_mobilenet_lstm.pth that train_mobilenet_lstm.py wrote"
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head:
        return f"the file is empty: {ours}"
    if not head.startswith(b"PK\x03\x04"):  # torch saves zip archives
        text = b"\0" not in head and all(c >= 32 or c in b"\t\n\r" for c in head[:512])
        return f"it is a {'text file' if text else 'file of another kind'}, not a checkpoint: {ours}"
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            pickled = b"".join(archive.read(n) for n in archive.namelist() if n.endswith("data.pkl"))
    except (zipfile.BadZipFile, OSError):
        return "it is truncated or damaged (an interrupted copy or save?): copy it again, or train again"
    if b"ultralytics" in pickled:
        return f"it is an Ultralytics YOLO model (the detector or pose model), not a behavior checkpoint: {ours}"
    return ("it holds Python objects, not only tensors and plain values, and such files are never unpickled here: "
            f"not a checkpoint of this tool; {ours}")

BEST, LAST = "best_mobilenet_lstm.pth", "last.pth"
REPORT = "report.json"  # written last: a model folder without it holds an interrupted training
CV_DIR = "cv"  # under MODEL_DIR: fold_<k>/ (a full model folder each), folds.csv, cv_report.json, confusion matrix
MODEL_FILES = (BEST, LAST, "history.csv", REPORT, "classification_report.txt", "confusion_matrix.csv",
               "confusion_matrix.png", "curves.png", "predictions.csv", "report.html", CV_DIR)  # all training writes
HISTORY_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1", "lr", "seconds")


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
