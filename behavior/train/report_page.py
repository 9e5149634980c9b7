"""What a user looks at after training: MODEL_DIR/report.html, one self-contained page.

The settings the model was trained with (and which differ from config.py: a flag, or "auto" resolved), the data
(videos and sequences of each class per split), the curves and the confusion matrix (the PNGs beside it), the
per-class scores, and the held-out videos it got wrong, each with a strip of the sequence that spoke loudest for
the wrong class and the video's probabilities.

Example:
    >>> write_training_page(Path("models/lstm_mn"), page)  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from behavior.io import files
from behavior.io.sequence_file import SequenceTable
from behavior.settings import config_value, constants_of

STRIP_FRAMES = 8  # crops shown of a misread sequence
STRIP_HEIGHT = 72  # pixels


@dataclass
class TrainingPage:
    """Everything the page shows, gathered by the final evaluation."""

    title: str
    report: dict[str, Any]  # report.json's content
    settings: list[tuple[str, Any, str]] = field(default_factory=list)  # constant, value, where it came from
    data: list[list[Any]] = field(default_factory=list)  # class, then videos / sequences per split
    splits: list[str] = field(default_factory=list)
    wrong: list[dict[str, Any]] = field(default_factory=list)  # video, label, predicted, probs, strip


def settings_rows(*configs: Any) -> list[tuple[str, Any, str]]:
    """Each config.py constant the settings objects hold (the first one's where two hold it: the model's as it
    resolved "auto"), its value, and "config.py" or config.py's value where they differ (a flag, or "auto")."""
    rows: dict[str, tuple[str, Any, str]] = {}
    for config in configs:
        for name, constant in constants_of(type(config)).items():
            value, written = getattr(config, name), config_value(constant)
            source = "config.py" if value == written else f"a flag, or auto resolved (config.py: {written!r})"
            rows.setdefault(constant, (constant, value, source))
    return [rows[c] for c in sorted(rows)]


def data_rows(table: SequenceTable, rows: dict[str, list[int]]) -> tuple[list[str], list[list[Any]]]:
    """Per class: videos and sequences in each split (videos counted by their clip's class)."""
    splits = [s for s in ("train", "val", "test") if rows.get(s)]
    videos = {s: Counter(table.classes[table.clip_label(i)] for i in {table.videos[j]: j for j in rows[s]}.values())
              for s in splits}
    sequences = {s: Counter(table.classes[table.labels[i]] for i in rows[s]) for s in splits}
    return splits, [[c, *(f"{videos[s][c]} / {sequences[s][c]}" for s in splits)] for c in table.classes]


def sequence_strip(frames_dir: Path, paths: list[str]) -> str:
    """A strip of a sequence's crops as a ``data:`` JPEG URI (empty when the crops cannot be read)."""
    picks = [paths[int(k)] for k in np.linspace(0, len(paths) - 1, min(STRIP_FRAMES, len(paths))).round()]
    images = [cv2.imread(str(Path(frames_dir) / p)) for p in picks]
    images = [cv2.resize(im, (max(1, round(im.shape[1] * STRIP_HEIGHT / im.shape[0])), STRIP_HEIGHT))
              for im in images if im is not None]
    if not images:
        return ""
    ok, data = cv2.imencode(".jpg", np.hstack(images), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode() if ok else ""


def wrong_videos(table: SequenceTable, rows: list[int], probs: np.ndarray, bags: list[Any], clips: np.ndarray,
                 frames_dir: Path) -> list[dict[str, Any]]:
    """The held-out videos read wrong: each with its probabilities and the strip of the sequence (of ``rows``,
    whose ``probs`` these are) that gave the wrong class the most."""
    position = {r: n for n, r in enumerate(rows)}
    out = []
    for bag, clip in zip(bags, clips, strict=True):
        predicted = int(clip.argmax())
        if predicted == bag.label:
            continue
        loudest = max(bag.rows, key=lambda r: probs[position[r], predicted])
        out.append({"video": bag.video, "label": table.classes[bag.label], "predicted": table.classes[predicted],
                    "probs": dict(zip(table.classes, map(float, clip), strict=True)),
                    "strip": sequence_strip(frames_dir, table.frames[loudest])})
    return out


def write_training_page(model_dir: Path, page: TrainingPage) -> Path:
    """MODEL_DIR/report.html."""
    return files.atomic_write_text(Path(model_dir) / "report.html", training_html(page))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _wrong_videos(page: TrainingPage) -> str:
    if not page.wrong:
        return "<p>None: every held-out video was labeled right.</p>"
    items = []
    for w in page.wrong:
        probs = ", ".join(f"{html.escape(c)} {p:.2f}" for c, p in sorted(w["probs"].items(), key=lambda kv: -kv[1]))
        strip = f'<img class="strip" src="{w["strip"]}" alt="the sequence it read">' if w["strip"] else ""
        items.append(f'<div class="wrong"><b>{html.escape(w["video"])}</b>: {html.escape(w["label"])}, read as '
                     f'<b>{html.escape(w["predicted"])}</b><br><small>{probs}</small><br>{strip}</div>')
    return "\n".join(items)


def training_html(page: TrainingPage) -> str:
    """The page's HTML."""
    video, sequence = page.report["video_level"], page.report["sequence_level"]
    scores = [[c, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", v["support"]]
              for c, v in video["per_class"].items()]
    warnings = "".join(f"<p class='warn'>{html.escape(w)}</p>" for w in page.report.get("warnings", []))
    return TRAINING.format(
        title=html.escape(page.title), split=html.escape(page.report["split"]), best=page.report["best_epoch"],
        accuracy=video["accuracy"], f1=video["macro_f1"], n=video["n"], seq=sequence["accuracy"],
        nseq=sequence["n"], warnings=warnings,
        scores=_table(["class", "precision", "recall", "F1", "videos"], scores),
        data=_table(["class", *(f"{s}: videos / sequences" for s in page.splits)], page.data),
        settings=_table(["setting", "value", "from"], [list(row) for row in page.settings]),
        wrong=_wrong_videos(page))


def write_cv_page(cv_dir: Path, report: dict[str, Any]) -> Path:
    """MODEL_DIR/cv/report.html: every fold (linked to its own report page) and the pooled figures."""
    folds = [[f'<a href="fold_{f["fold"]}/report.html">fold {f["fold"]}</a>', f["videos"], f["groups"],
              f"{f['video_accuracy']:.3f}", f"{f['video_macro_f1']:.3f}", f["best_epoch"]] for f in report["per_fold"]]
    head = "".join(f"<th>{h}</th>" for h in ("fold", "videos", "groups", "video accuracy", "macro-F1", "best epoch"))
    body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>" for row in folds)  # links: ours
    pooled = report["pooled"]
    scores = [[c, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", v["support"]]
              for c, v in pooled["per_class"].items()]
    page = CV.format(folds=report["folds"], videos=report["videos"], groups=report["groups"],
                     source=html.escape(str(report["groups_from"])), mean=report["video_accuracy"]["mean"],
                     std=report["video_accuracy"]["std"], f1=report["video_macro_f1"]["mean"],
                     pooled=pooled["accuracy"], table=f"<table><tr>{head}</tr>{body}</table>",
                     scores=_table(["class", "precision", "recall", "F1", "videos"], scores))
    return files.atomic_write_text(Path(cv_dir) / "report.html", page)


CV = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{folds}-fold cross-validation</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; }}
td, th {{ padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }}
img {{ max-width: 560px; }}
</style></head>
<body>
<h1>{folds}-fold cross-validation</h1>
<p>{videos} train + val videos in {groups} groups ({source}); each video held out once. Video accuracy
<b>{mean:.3f} &plusmn; {std:.3f}</b> over folds (macro-F1 {f1:.3f}); pooled over every held-out video {pooled:.3f}.</p>
{table}
<h2>Every held-out video together</h2>
<img src="confusion_matrix.png" alt="pooled confusion matrix">
{scores}
</body></html>
"""

TRAINING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: training report</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; }}
td, th {{ padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }}
img {{ max-width: 100%; }}
.pictures img {{ display: block; margin: 8px 0; }}
.pictures img + img {{ max-width: 560px; }}
.wrong {{ margin: 10px 0; }}
.strip {{ display: block; margin-top: 4px; height: 72px; }}
.warn {{ color: #a33; }}
</style></head>
<body>
<h1>{title}</h1>
<p>On the {split} split, best epoch {best}: video accuracy <b>{accuracy:.3f}</b>, macro-F1 {f1:.3f} ({n} videos);
sequence accuracy {seq:.3f} ({nseq} sequences).</p>
{warnings}
<div class="pictures"><img src="curves.png" alt="training curves"> <img src="confusion_matrix.png"
alt="confusion matrix"></div>
<h2>Per class ({split} videos)</h2>
{scores}
<h2>Videos it got wrong</h2>
{wrong}
<h2>Data</h2>
{data}
<h2>Settings</h2>
{settings}
</body></html>
"""
