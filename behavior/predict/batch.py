"""Predicting a folder of videos: one output folder per video, a bad video recorded and the rest going on, and
``--evaluate``'s video-level metrics against the class folders."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from behavior import metrics, report
from behavior.errors import InputError
from behavior.io import files
from behavior.io.clips import find_videos
from behavior.predict.outputs import prediction_state
from behavior.predict.pages import batch_index_html
from behavior.predict.session import Predictor

log = logging.getLogger(__name__)

BATCH_FILES = ("batch.json", "evaluation.json", "confusion_matrix.csv", "confusion_matrix.png", "index.html")
NO_LABEL = "(no label)"  # what --evaluate predicts for a video that failed or where nobody was tracked


@dataclass(frozen=True)
class BatchItem:
    """One video of a batch: where it came from, its true class (if any) and the outcome."""

    path: Path
    label: str
    predicted: str | None
    error: str = ""
    interrupted: bool = False
    output: str = ""  # its output folder, relative to the batch's


def claim_batch_dir(folder: Path, jobs: list, checkpoint: dict[str, str], overwrite: bool) -> Path:
    """Check that a batch may write into ``folder``, mark it with batch.json, and return it, absolute.

    A non-empty folder that is not a batch's (no batch.json or evaluation.json) is refused. So are
    finished predictions made with another checkpoint, unless ``overwrite``: they are never replaced
    silently.
    """
    folder = Path(folder).absolute()
    ours = any((folder / name).is_file() for name in ("batch.json", "evaluation.json"))
    foreign = files.foreign_entries(folder, {*BATCH_FILES, *(job.out_dir(Path()).parts[0] for job in jobs)})
    if foreign and not ours:
        raise InputError(f"{folder} is not empty and holds no batch of predictions "
                         f"({files.describe_entries(foreign)}): nothing was changed; choose an empty or new "
                         "--output-dir")
    if not overwrite:
        for job in jobs:
            summary = files.read_json(job.out_dir(folder) / "summary.json")
            if prediction_state(job.out_dir(folder)) == "done" and \
                    summary.get("checkpoint", {}).get("sha256") != checkpoint["sha256"]:
                raise InputError(f"{job.out_dir(folder)} holds a prediction made with another checkpoint: pass "
                                 "--overwrite to redo the batch with this one, or choose another --output-dir")
    files.write_json(folder / "batch.json", {"checkpoint": checkpoint,
                                              "created": datetime.now(UTC).isoformat(timespec="seconds")})
    return folder


def predict_folder(predictor: Predictor, videos_dir: Path, output_dir: Path, overwrite: bool = False,
                   progress: bool = True) -> list[BatchItem]:
    """Predict every video of ``videos_dir/[<group>/]<class>/``; a bad video is recorded and the rest go on.

    A finished prediction of the same checkpoint is reused; an interrupted one is redone. Ctrl-C
    stops the batch: the last item is then marked ``interrupted`` and no later video is started.
    """
    jobs = find_videos(videos_dir)
    root = claim_batch_dir(output_dir, jobs, predictor.checkpoint, overwrite)
    with files.folder_lock(root, "the output folder"):
        return _predict_jobs(predictor, jobs, root, overwrite, progress)


def _predict_jobs(predictor: Predictor, jobs: list, root: Path, overwrite: bool, progress: bool) -> list[BatchItem]:
    items = []
    for job in report.progress(jobs, desc="videos", unit="video", disable=not progress):
        out = job.out_dir(root)
        try:
            if prediction_state(out) == "done" and not overwrite:  # made with this checkpoint: claim_batch_dir
                summary = files.read_json(out / "summary.json")
            else:
                summary = predictor.run(job.path, out, progress=False, overwrite=True)
            label = (summary.get("video_label") or {}).get("label")
            items.append(BatchItem(job.path, job.label, label, interrupted=bool(summary.get("interrupted")),
                                   output=job.out_dir(Path()).as_posix()))
        except InputError as exc:
            log.warning("%s: failed: %s", job.path, exc)
            items.append(BatchItem(job.path, job.label, None, str(exc), output=job.out_dir(Path()).as_posix()))
        if items[-1].interrupted:
            log.warning("batch interrupted at %s: %d of %d videos done; a rerun redoes it and goes on",
                        job.path, len(items) - 1, len(jobs))
            break
    return items


def check_evaluation_classes(videos_dir: Path, classes: list[str]) -> None:
    """InputError, before any video is read, when no class folder of ``videos_dir`` is a class of the model: nothing
    could be scored. Folders of other classes beside known ones are only logged (they are counted apart)."""
    folders = sorted({job.label for job in find_videos(videos_dir)})
    unknown = [c for c in folders if c not in classes]
    if len(unknown) == len(folders):
        raise InputError(f"--evaluate: the class folders of {videos_dir} ({', '.join(folders)}) are none of the "
                         f"checkpoint's classes ({', '.join(classes)}): rename them, or leave out --evaluate")
    if unknown:
        log.warning("--evaluate: class folders the model does not know are not scored: %s", ", ".join(unknown))


def evaluate_batch(items: list[BatchItem], classes: list[str], output_dir: Path) -> dict[str, Any]:
    """Video-level metrics over every video of a known class, with the confusion matrix as CSV and PNG.

    A video without a label (it failed, or nobody in it was tracked) counts as wrong: it is
    predicted as ``NO_LABEL``, a column of its own in the confusion matrix. ``labeled`` holds the
    accuracy over the videos that got a label, for comparison. Videos of classes the model does
    not know cannot be scored and are counted apart (``unknown_class``).
    """
    index = {c: i for i, c in enumerate(classes)}
    known = [it for it in items if it.label in index]
    y_true = [index[it.label] for it in known]
    y_pred = [index.get(it.predicted, len(classes)) if it.predicted is not None else len(classes) for it in known]
    report = metrics.evaluate(y_true, y_pred, classes, none_label=NO_LABEL)
    labeled = [(t, p) for t, p in zip(y_true, y_pred, strict=True) if p < len(classes)]
    report["labeled"] = {"n": len(labeled),
                         "accuracy": float(np.mean([t == p for t, p in labeled])) if labeled else 0.0}
    report.update(unknown_class=sum(it.label not in index for it in items),
                  failed=sum(bool(it.error) for it in known),
                  no_prediction=sum(not it.error and it.predicted is None for it in known))
    report["videos"] = [{"video": str(it.path), "label": it.label, "predicted": it.predicted, "error": it.error}
                        for it in items]
    files.write_json(Path(output_dir) / "evaluation.json", report)
    metrics.write_confusion_csv(Path(output_dir) / "confusion_matrix.csv", report)
    metrics.plot_confusion(Path(output_dir) / "confusion_matrix.png", report, "predict.py --evaluate (video level)")
    return report


def write_index(output_dir: Path, items: list[BatchItem], evaluation: dict[str, Any] | None = None) -> Path:
    """index.html of a batch: every video's report, the misclassified first, and the evaluation when there is one."""
    rows = [(f"{it.output}/report.html", it.label, it.predicted, it.error) for it in items]
    headline = evaluation_headline(evaluation) if evaluation is not None else ""
    return files.atomic_write_text(Path(output_dir) / "index.html", batch_index_html(rows, evaluation, headline))


def evaluation_headline(report: dict[str, Any]) -> str:
    """The one line a user reads first: accuracy over every video, and what it includes, in the same line.

    Example:
        >>> evaluation_headline({"n": 48, "accuracy": 0.5625, "macro_f1": 0.6, "failed": 0, "no_prediction": 7,
        ...                      "labeled": {"n": 41, "accuracy": 0.6585}, "unknown_class": 0})
        'accuracy 0.5625 over all 48 videos (7 unlabeled count as wrong; 0.6585 over the 41 labeled) | macro-F1 0.6000'
    """
    unlabeled = report["failed"] + report["no_prediction"]
    line = f"accuracy {report['accuracy']:.4f} over all {report['n']} videos"
    if unlabeled:
        line += (f" ({unlabeled} unlabeled count as wrong; {report['labeled']['accuracy']:.4f} over the "
                 f"{report['labeled']['n']} labeled)")
    line += f" | macro-F1 {report['macro_f1']:.4f}"
    if report["unknown_class"]:
        line += f" | {report['unknown_class']} videos of classes the model does not know are not scored"
    return line
