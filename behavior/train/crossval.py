"""Grouped, stratified K-fold cross-validation on the train and val videos of stage 2: never the test split.

Videos are dealt into K folds by recording group (GROUPS_FILE, GROUP_PATTERN, or the groups.csv
stage 2 wrote; else each video is its own group), stratified by class. Each fold in turn is held
out and scored; the network is trained on the other folds and stops early on a group-disjoint
slice of them (SPLIT_FRACTIONS' val share), so no score comes from videos that chose an epoch.
Features are computed once and shared by every fold. A rerun reuses finished folds.

Example:
    >>> mean_std([0.5, 0.7, 0.9])
    (0.7, 0.2)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from behavior import metrics, settings
from behavior.data.splits import SPLITS, assign_folds, assign_splits, read_groups_file, video_groups
from behavior.errors import InputError
from behavior.io import files
from behavior.io.checkpoint import CV_DIR, refuse_foreign_model_dir
from behavior.io.sequence_file import GROUPS_NAME, SequenceTable
from behavior.report import format_table
from behavior.settings import TrainConfig
from behavior.train.distributed import Distributed
from behavior.train.engine import fit
from behavior.train.report_page import write_cv_page
from behavior.train.setup import load_training_data, set_up

FOLDS_HEADER = ("video", "label", "group", "fold")
RUN_KEYS_IGNORED = ("model_dir", "device", "threads", "num_workers", "feature_batch_size")  # no effect on results


@dataclass(frozen=True)
class FoldPlan:
    """Which fold holds out each video (1-based), with its label and recording group."""

    folds: int
    fold_of: dict[str, int]  # video key -> fold
    label_of: dict[str, str]
    group_of: dict[str, str]

    def csv_text(self) -> str:
        """folds.csv: video,label,group,fold, in video order."""
        rows = [(k, self.label_of[k], self.group_of[k], self.fold_of[k]) for k in sorted(self.fold_of)]
        return files.csv_text(FOLDS_HEADER, rows)

    def videos(self, fold: int) -> list[str]:
        """The video keys that ``fold`` holds out."""
        return sorted(k for k, f in self.fold_of.items() if f == fold)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value), rounded to 6 places."""
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return round(mean, 6), round(std, 6)


def cv_groups(cfg: dict[str, Any], sequences_file: Path, keys: list[str]) -> tuple[dict[str, str] | None, str]:
    """Each video's recording group and where it came from: GROUPS_FILE/GROUP_PATTERN, else stage 2's groups.csv."""
    group_of = video_groups(keys, cfg.get("GROUPS_FILE") or None, cfg.get("GROUP_PATTERN") or "")
    if group_of is not None:
        return group_of, "GROUPS_FILE" if cfg.get("GROUPS_FILE") else "GROUP_PATTERN"
    written = Path(sequences_file).with_name(GROUPS_NAME)
    if written.is_file():
        return read_groups_file(written, keys), str(written)
    return None, "none: each video is its own group (set GROUPS_FILE or GROUP_PATTERN when clips share recordings)"


def plan_folds(table: SequenceTable, folds: int, seed: int, group_of: dict[str, str] | None) -> FoldPlan:
    """Deal the table's videos into ``folds`` folds by group, stratified by their clip's class (the same folds
    whether or not the user labeled people)."""
    videos_by_class: dict[str, list[str]] = {}
    label_of = {}
    for i, video in enumerate(table.videos):
        label_of[video] = table.classes[table.clip_label(i)]
    for video in sorted(label_of):
        videos_by_class.setdefault(label_of[video], []).append(video)
    group_of = group_of or {k: k for k in label_of}  # no groups: each video alone
    fold_of = assign_folds(videos_by_class, folds, seed, group_of)
    return FoldPlan(folds, {k: f + 1 for k, f in fold_of.items()}, label_of, group_of)


def fold_rows(table: SequenceTable, plan: FoldPlan, fold: int, val_share: float, seed: int) -> dict[str, list[int]]:
    """Rows of one fold: ``test`` = the held-out fold; ``train``/``val`` = the other folds, split by group."""
    rest: dict[str, list[str]] = {}
    for key in sorted(plan.fold_of):
        if plan.fold_of[key] != fold:
            rest.setdefault(plan.label_of[key], []).append(key)
    split_of = assign_splits(rest, (1 - val_share, val_share, 0.0), seed + fold, plan.group_of)
    rows: dict[str, list[int]] = {s: [] for s in SPLITS}
    for i, video in enumerate(table.videos):
        rows["test" if plan.fold_of[video] == fold else split_of[video]].append(i)
    return rows


def fold_summary(fold: int, plan: FoldPlan, report: dict[str, Any]) -> dict[str, Any]:
    """One fold's figures: video level (the headline), sequence level, and its held-out videos."""
    video, sequence = report["video_level"], report["sequence_level"]
    held = plan.videos(fold)
    return {"fold": fold, "videos": len(held), "groups": len({plan.group_of[k] for k in held}),
            "video_accuracy": video["accuracy"], "video_macro_f1": video["macro_f1"],
            "video_mean_class_accuracy": video["mean_class_accuracy"], "sequence_accuracy": sequence["accuracy"],
            "best_epoch": report["best_epoch"], "predictions": video["predictions"]}


def summarize(plan: FoldPlan, per_fold: list[dict[str, Any]], classes: list[str]) -> dict[str, Any]:
    """Mean and std over folds, and the pooled confusion matrix (every video held out exactly once)."""
    summary: dict[str, Any] = {"folds": plan.folds, "videos": len(plan.fold_of),
                               "groups": len(set(plan.group_of.values()))}
    for name in ("video_accuracy", "video_macro_f1", "video_mean_class_accuracy", "sequence_accuracy"):
        mean, std = mean_std([f[name] for f in per_fold])
        summary[name] = {"mean": mean, "std": std}
    predicted = {k: p for f in per_fold for k, p in f["predictions"].items()}
    keys = sorted(predicted)
    index = {c: i for i, c in enumerate(classes)}
    pooled = metrics.evaluate([index[plan.label_of[k]] for k in keys], [index[predicted[k]] for k in keys], classes)
    summary["pooled"] = pooled
    return summary


def cross_validate(cfg: dict[str, Any], folds: int, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Grouped K-fold CV on SEQUENCES_FILE's train and val videos; writes MODEL_DIR/cv (holding MODEL_DIR's lock)
    and returns its report."""
    settings.validate(cfg)
    refuse_foreign_model_dir(Path(cfg["MODEL_DIR"]))
    with files.folder_lock(Path(cfg["MODEL_DIR"]), "MODEL_DIR"):
        return _cross_validate(cfg, folds, overwrite, progress)


def _cross_validate(cfg: dict[str, Any], folds: int, overwrite: bool, progress: bool) -> dict[str, Any]:
    if folds < 2:
        raise InputError(f"--cv needs at least 2 folds, got {folds}")
    train_config = TrainConfig.from_config(cfg)
    env = Distributed(train_config.device)
    if env.world > 1:
        raise InputError("--cv runs in one process: start it without torchrun")
    table, model_config = set_up(cfg, train_config, ("train", "val"))  # the test split is never read
    out = Path(train_config.model_dir) / CV_DIR
    group_of, source = cv_groups(cfg, Path(train_config.sequences_file), sorted(set(table.videos)))
    plan = plan_folds(table, folds, train_config.seed, group_of)
    run = {"folds": folds, "seed": train_config.seed, "model_config": model_config.to_dict(),
           "train_config": {k: v for k, v in asdict(train_config).items() if k not in RUN_KEYS_IGNORED},
           "folds_csv": plan.csv_text()}
    _claim(out, run, overwrite)
    print(f"Cross-validation: {folds} folds of {len(plan.fold_of)} train+val videos in "
          f"{len(set(plan.group_of.values()))} groups (groups from {source}); test split not read")
    print(format_table(["fold", *table.classes, "groups"], [
        [k, *(sum(plan.label_of[v] == c for v in plan.videos(k)) for c in table.classes),
         len({plan.group_of[v] for v in plan.videos(k)})] for k in range(1, folds + 1)]))
    data = load_training_data(train_config, env, table, model_config, progress)
    fractions = tuple(cfg["SPLIT_FRACTIONS"])
    val_share = fractions[1] / (fractions[0] + fractions[1])
    per_fold = []
    for k in range(1, folds + 1):
        fold_dir = out / f"fold_{k}"
        report = files.read_json(fold_dir / "report.json")
        if report is None:
            print(f"\n##### fold {k}/{folds}: training on the other folds")
            rows = fold_rows(table, plan, k, val_share, train_config.seed)
            if not rows["train"] or not rows["val"]:
                raise InputError(f"fold {k}: the other folds have too few groups to train on and stop early; "
                                 "use fewer folds")
            report = fit(data, rows, train_config, env, fold_dir, None, progress, scored=f"held-out fold {k}")
        else:
            print(f"fold {k}/{folds}: finished earlier, report reused ({fold_dir / 'report.json'})")
        per_fold.append(fold_summary(k, plan, report))
    env.close()
    summary = summarize(plan, per_fold, table.classes)
    report = {**summary, "per_fold": per_fold, "groups_from": source, "classes": table.classes,
              "model_config": run["model_config"], "train_config": run["train_config"]}
    files.write_json(out / "cv_report.json", report)
    metrics.write_confusion_csv(out / "confusion_matrix.csv", summary["pooled"])
    metrics.plot_confusion(out / "confusion_matrix.png", summary["pooled"],
                           f"{folds}-fold CV, summed over folds (video level)")
    print("\n" + cv_table(report) + f"\nreport: {write_cv_page(out, report)}")
    return report


def _claim(out: Path, run: dict[str, Any], overwrite: bool) -> None:
    """Make ``out`` this run's folder: a run with other folds or settings is replaced only with ``overwrite``."""
    run_file = out / "run.json"
    earlier = files.read_json(run_file)
    if earlier is not None and earlier != json.loads(json.dumps(run)):
        if not overwrite:
            raise InputError(f"{out} holds a cross-validation with other folds or settings: "
                             "pass --overwrite to replace it, or choose another --model-dir")
        earlier = None
    if earlier is None and out.exists():
        for report in out.glob("fold_*/report.json"):  # finished folds of another run must not be reused
            report.unlink()
    files.ensure_writable(out)
    files.write_json(run_file, run)
    files.atomic_write_text(out / "folds.csv", run["folds_csv"])


def cv_table(report: dict[str, Any]) -> str:
    """Per-fold rows, then mean ± std and the pooled figures: what users read."""
    rows = [[f["fold"], f["groups"], f["videos"], f"{f['video_accuracy']:.3f}", f"{f['video_macro_f1']:.3f}",
             f"{f['video_mean_class_accuracy']:.3f}", f"{f['sequence_accuracy']:.3f}", f["best_epoch"]]
            for f in report["per_fold"]]

    def ms(name: str) -> str:
        return f"{report[name]['mean']:.3f} ± {report[name]['std']:.3f}"

    mean = ["mean ± std", "", "", ms("video_accuracy"), ms("video_macro_f1"), ms("video_mean_class_accuracy"),
            ms("sequence_accuracy"), ""]
    pooled = report["pooled"]
    text = format_table(["fold", "groups", "videos", "video acc", "macro-F1", "mean class acc", "sequence acc",
                         "best epoch"], rows, mean)
    cm = pooled["confusion_matrix"]
    return (f"{text}\npooled over all {report['videos']} videos (each held out once): accuracy "
            f"{pooled['accuracy']:.3f}, macro-F1 {pooled['macro_f1']:.3f}, mean class accuracy "
            f"{pooled['mean_class_accuracy']:.3f}\nconfusion matrix summed over folds (rows true, columns predicted; "
            f"{', '.join(report['classes'])}): {cm}")

