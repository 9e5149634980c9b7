"""The final evaluation of a fit: the best checkpoint on the held-out sequences, per sequence, video and person."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from behavior import metrics
from behavior.data import mil
from behavior.detect.tracking import WHOLE_FRAME_TRACK
from behavior.io.checkpoint import (
    BEST,
    load_checkpoint,
)
from behavior.io.sequence_file import SequenceTable
from behavior.model.network import BehaviorNet, background_index
from behavior.settings import TrainConfig
from behavior.train.distributed import autocast
from behavior.train.report_page import TrainingPage, data_rows, settings_rows, write_training_page, wrong_videos

log = logging.getLogger(__name__)


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


def final_evaluation(model: BehaviorNet, table: SequenceTable, rows: dict[str, list[int]], dataset,
                     train_config: TrainConfig,
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
    loader = DataLoader(dataset(split, False), batch_size=train_config.batch_size, num_workers=workers)
    probs, labels, loss = predict_probs(model, loader, device)
    sequence = metrics.evaluate(labels, probs.argmax(1), table.classes)
    model_config = model.cfg
    bags = mil.table_bags(table, rows[split])
    background = background_index(model_config, table.classes)
    rule = mil.label_rule(model_config.mil_pooling, model_config.actor_classes)
    clips, people = video_probs(probs, rows[split], bags, rule, background, table.classes, model_config.actor_classes)
    video = metrics.evaluate([b.label for b in bags], clips.argmax(1), table.classes)
    video["predictions"] = {b.video: table.classes[int(p.argmax())] for b, p in zip(bags, clips, strict=True)}
    video["pooling"] = rule
    people_of, offset = {}, 0
    for bag in bags:
        people_of[bag.video] = {name: [round(float(v), 6) for v in people[offset + k]]
                                for k, name in enumerate(bag.persons)}
        offset += len(bag.persons)
    labeled = metrics.people_labels([(b.label, people_of[b.video]) for b in bags], table.classes, background)
    per_split = {name: Counter(table.classes[table.clip_label(i)] for i in {table.videos[j]: j for j in r}.values())
                 for name, r in rows.items()}
    warnings = metrics.data_warnings(per_split, table.classes, split)
    extra = {"split": name, "best_epoch": best["epoch"], "loss": loss, "best_val": best["metrics"],
             "checkpoint": str(model_dir / BEST), "warnings": warnings, "people_labels": labeled,
             "whole_frame_videos": sum(b.persons == (f"person_{WHOLE_FRAME_TRACK}",) for b in bags),
             "people": people_of}
    splits, data = data_rows(table, rows)
    write_training_page(model_dir, TrainingPage(
        model_dir.name, {**extra, "sequence_level": sequence, "video_level": video},
        settings_rows(model_config, train_config), data, splits,
        wrong_videos(table, rows[split], probs, bags, clips, Path(train_config.frames_dir))))
    metrics.write_report(model_dir, sequence, video, extra)  # report.json last: the training is finished
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
          f"curves.png)\nreport: {model_dir / 'report.html'}")
    return json.loads(json.dumps({**extra, "sequence_level": sequence, "video_level": video}))


@torch.inference_mode()
def predict_probs(model: BehaviorNet, loader: DataLoader, device: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Class probabilities and labels of every sequence in ``loader``, and the mean (unweighted) loss."""
    model.eval()
    probs, labels, losses = [], [], []
    for x, motion, y in loader:
        x, motion, y = x.to(device), motion.to(device), y.to(device)
        with autocast(device):
            logits = model(x, motion)
        losses.append(F.cross_entropy(logits.float(), y, reduction="sum").item())
        probs.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        labels.append(y.cpu().numpy())
    n = sum(len(label) for label in labels)
    if n == 0:
        return np.zeros((0, model.cfg.num_classes)), np.zeros(0, int), 0.0
    return np.concatenate(probs), np.concatenate(labels), sum(losses) / n
