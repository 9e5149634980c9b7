"""Classification metrics, video-level aggregation, and the report files users read.

Training's evaluation and ``predict.py --evaluate`` both call ``evaluate`` and ``write_report``.

Example:
    >>> m = evaluate([0, 0, 1, 1], [0, 1, 1, 1], ["walk", "fight"])
    >>> round(m["accuracy"], 2), round(m["macro_f1"], 2)
    (0.75, 0.73)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from behavior.fonts import families_for
from behavior.io import files
from behavior.report import format_table


def evaluate(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str],
             none_label: str | None = None) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1, macro-F1, mean class accuracy and the confusion matrix.

    With ``none_label``, a prediction of ``len(classes)`` means "no label" (a video that failed, or
    where nobody was tracked): it counts as wrong, and the confusion matrix gets a column for it
    (``predicted_classes``), so every item is counted and none silently dropped.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(classes)))
    columns = [*classes, none_label] if none_label else list(classes)
    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    cm = confusion_matrix(y_true, y_pred, labels=list(range(len(columns))))[: len(classes)]
    present = support > 0
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "mean_class_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "per_class": {
            c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                "support": int(support[i])}
            for i, c in enumerate(classes)
        },
        "confusion_matrix": cm.tolist(),
        "classes": list(classes),
        "predicted_classes": columns,
    }


def people_labels(clips: Sequence[tuple[int, dict[str, Sequence[float]]]], classes: Sequence[str],
                  background: int | None = None) -> dict[str, dict[str, Any]]:
    """Per true class: in how many of its clips someone, not everyone, or everyone is labeled with it.

    ``clips`` holds each clip's true class and its people's probabilities. "some, not all" counts
    only clips with at least two people: that is where per-person labels can tell actors from
    bystanders (with a background class, a fight clip should have fighters and background people).

    Example:
        >>> people_labels([(0, {"person_1": [0.9, 0.1], "person_2": [0.2, 0.8]})], ["fight", "noFight"], 1)["fight"]
        {'clips': 1, 'someone': 1, 'everyone': 0, 'several_people': 1, 'some_not_all': 1, 'background': False}
    """
    out = {c: {"clips": 0, "someone": 0, "everyone": 0, "several_people": 0, "some_not_all": 0,
               "background": k == background} for k, c in enumerate(classes)}
    for label, people in clips:
        hits = [int(np.argmax(p)) == label for p in people.values()]
        row = out[classes[label]]
        row["clips"] += 1
        row["someone"] += any(hits)
        row["everyone"] += bool(hits) and all(hits)
        if len(hits) >= 2:
            row["several_people"] += 1
            row["some_not_all"] += any(hits) and not all(hits)
    return out


def people_labels_table(labeled: dict[str, dict[str, Any]]) -> str:
    """``people_labels`` as a table users read."""
    def share(n: int, of: int) -> str:
        return f"{n}/{of} ({n / of:.0%})" if of else "-"

    rows = [[c + (" (background)" if r["background"] else ""), r["clips"], share(r["someone"], r["clips"]),
             share(r["everyone"], r["clips"]), share(r["some_not_all"], r["several_people"])]
            for c, r in labeled.items()]
    return ("Per-person labels (each person's mean probability over their sequences):\n"
            + format_table(["true class", "clips", "someone labeled it", "everyone", "some, not all (2+ people)"],
                           rows))


def classification_report_text(metrics: dict[str, Any], title: str) -> str:
    """A scikit-learn style text report of ``evaluate`` output."""
    width = max(12, *(len(c) for c in metrics["classes"]))
    lines = [title, "", f"{'':>{width}}  precision    recall  f1-score   support", ""]
    for c, m in metrics["per_class"].items():
        lines.append(f"{c:>{width}}  {m['precision']:9.3f} {m['recall']:9.3f} {m['f1']:9.3f} {m['support']:9d}")
    lines += ["", f"{'accuracy':>{width}}  {'':9} {'':9} {metrics['accuracy']:9.3f} {metrics['n']:9d}",
              f"{'macro-F1':>{width}}  {'':9} {'':9} {metrics['macro_f1']:9.3f} {metrics['n']:9d}",
              f"{'mean class acc':>{width}}  {'':9} {'':9} {metrics['mean_class_accuracy']:9.3f} {metrics['n']:9d}"]
    return "\n".join(lines) + "\n"


def write_confusion_csv(path: Path, metrics: dict[str, Any]) -> Path:
    """Rows are true classes, columns predicted classes."""
    classes = metrics["classes"]
    rows = [[c, *row] for c, row in zip(classes, metrics["confusion_matrix"], strict=True)]
    return files.write_csv(path, ["true\\predicted", *metrics.get("predicted_classes", classes)], rows)


def plot_confusion(path: Path, metrics: dict[str, Any], title: str) -> Path:
    """The confusion matrix as a picture: counts and row-normalized shares in each cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(metrics["confusion_matrix"], float)
    classes = metrics["classes"]
    columns = metrics.get("predicted_classes", classes)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = 2.2 + 0.9 * len(classes)
    with plt.rc_context({"font.family": families_for([*classes, *columns, title])}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Glyph .* missing")  # no font has them here: fonts said so, once
        fig, ax = plt.subplots(figsize=(size + 1 + 0.9 * (len(columns) - len(classes)), size))
        _draw_confusion(fig, ax, cm, share, classes, columns, title)
        fig.tight_layout()
        return save_figure(fig, path)


def _draw_confusion(fig: Any, ax: Any, cm: np.ndarray, share: np.ndarray, classes: Sequence[str],
                    columns: Sequence[str], title: str) -> None:
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(columns)):
            ax.text(j, i, f"{int(cm[i, j])}\n{share[i, j]:.0%}", ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)


def plot_curves(path: Path, history: list[dict[str, float]]) -> Path:
    """Loss, accuracy, macro-F1 and learning rate per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    panels = [("loss", ["train_loss", "val_loss"]), ("accuracy", ["train_acc", "val_acc"]),
              ("macro-F1", ["val_macro_f1"]), ("learning rate", ["lr"])]
    for ax, (title, keys) in zip(axes, panels, strict=True):
        for key in keys:
            ax.plot(epochs, [h[key] for h in history], marker="o", markersize=3, label=key)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if title == "learning rate":
            ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig: Any, path: Path) -> Path:
    """A matplotlib figure as a PNG file, written atomically; the figure is closed."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return files.atomic_write_bytes(Path(path), buf.getvalue())


MIN_VIDEOS_PER_CLASS = 5  # fewer videos of a class in the evaluated split, and its figures say little


def data_warnings(videos_by_split: dict[str, dict[str, int]], classes: Sequence[str], evaluated: str) -> list[str]:
    """Plain warnings when the data cannot support the figures: a class missing from a split, or too few test videos.

    ``videos_by_split`` maps each split to its number of videos per class.

    Example:
        >>> data_warnings({"train": {"a": 9, "b": 9}, "val": {"a": 2, "b": 0}, "test": {"a": 1, "b": 1}},
        ...               ["a", "b"], "test")[0]
        'class b has no video in the val split: validation cannot tell when it is learned'
    """
    out = []
    effect = {"train": "the model never learns it", "val": "validation cannot tell when it is learned",
              "test": "its test figures are missing"}
    for split in ("train", "val", "test"):
        counts = videos_by_split.get(split, {})
        if not counts and split == "test":
            continue  # said once: the report falls back to validation
        out += [f"class {c} has no video in the {split} split: {effect[split]}" for c in classes if not counts.get(c)]
    counts = videos_by_split.get(evaluated, {})
    total = sum(counts.values())
    if total and min(counts.get(c, 0) for c in classes) < MIN_VIDEOS_PER_CLASS:
        out.append(f"the {evaluated} split holds only {total} videos ("
                   + ", ".join(f"{counts.get(c, 0)} {c}" for c in classes)
                   + f"): one video moves video-level accuracy by {100 / total:.0f} points, so these figures mean "
                   f"little; use at least {MIN_VIDEOS_PER_CLASS} videos per class, or cross-validate")
    return out


def write_predictions(path: Path, ids: Sequence[str], labels: Sequence[int], probs: np.ndarray,
                      classes: Sequence[str]) -> Path:
    """Each scored sequence's label, prediction and class probabilities as CSV (``predictions.csv``): what the
    video-level figures summarize, for finding which moments of which person a model gets wrong.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "predictions.csv"
        >>> _ = write_predictions(out, ["fight/a/person_1/000000"], [0], np.array([[0.75, 0.25]]), ["fight", "walk"])
        >>> out.read_text().splitlines()[1]
        'fight/a/person_1/000000,fight,fight,0.750000,0.250000'
    """
    rows = [[sid, classes[int(y)], classes[int(np.argmax(p))], *(f"{float(v):.6f}" for v in p)]
            for sid, y, p in zip(ids, labels, probs, strict=True)]
    return files.write_csv(path, ["sequence_id", "label", "predicted", *(f"p_{c}" for c in classes)], rows)


def write_report(out_dir: Path, sequence: dict[str, Any], video: dict[str, Any], extra: dict[str, Any]) -> None:
    """report.json, classification_report.txt and the confusion matrix (video level) as CSV and PNG."""
    out_dir = Path(out_dir)
    files.write_json(out_dir / "report.json", {**extra, "sequence_level": sequence, "video_level": video})
    warnings = "".join(f"WARNING: {w}\n" for w in extra.get("warnings", []))
    files.atomic_write_text(out_dir / "classification_report.txt",
                            warnings + (warnings and "\n")
                            + classification_report_text(
                                video, f"Video level ({video.get('pooling', 'mean')} pooling over people)")
                            + "\n" + classification_report_text(sequence, "Sequence level"))
    write_confusion_csv(out_dir / "confusion_matrix.csv", video)
    plot_confusion(out_dir / "confusion_matrix.png", video, "Confusion matrix (video level)")
