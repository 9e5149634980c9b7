"""What a user looks at after a prediction: report.html (the annotated video and a clickable per-person timeline)
and timeline.png (the same timeline as a picture).

The page is self-contained: inline CSS and script, no network, the video by relative path (``annotated.mp4``
beside it, H.264, which browsers play). Each labeled person is a row of colored label segments in seconds, one color
per class as in the video; clicking a segment seeks the video to it, and a line marks the current time as it plays.

Example:
    >>> write_pages(Path("outputs/clip"), summary)  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import warnings
from pathlib import Path
from typing import Any

from behavior.fonts import families_for
from behavior.io import files
from behavior.metrics import save_figure
from behavior.predict.drawing import palette

VIDEO = "annotated.mp4"


def class_colors(classes: list[str]) -> dict[str, str]:
    """Each class's color as ``#rrggbb``, the one it has in annotated.mp4.

    Example:
        >>> class_colors(["fight", "walk"])["fight"]
        '#f23c3c'
    """
    return {c: "#{:02x}{:02x}{:02x}".format(*bgr[::-1]) for c, bgr in zip(classes, palette(len(classes)), strict=True)}


def labeled_people(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The tracks that got a label, as summary.json lists them (person_1 first)."""
    return [t for t in summary["tracks"] if t["labeled_frames"]]


def write_pages(out: Path, summary: dict[str, Any]) -> None:
    """report.html and timeline.png of one prediction, into ``out`` beside annotated.mp4."""
    timeline_png(out / "timeline.png", summary)
    files.atomic_write_text(out / "report.html", report_html(summary))


def timeline_png(path: Path, summary: dict[str, Any]) -> Path:
    """Who did what, when, as a picture: a row per labeled person, colored label segments over seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    people = labeled_people(summary)
    duration = summary.get("duration_s") or 1.0
    step = 1.0 / (summary.get("source_fps") or 1.0)
    with plt.rc_context({"font.family": families_for(summary["classes"])}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Glyph .* missing")  # no font has them here: fonts said so, once
        fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * max(len(people), 1)))
        _draw_timeline(ax, summary, people, duration, step)
        fig.tight_layout()
        return save_figure(fig, path)


def _draw_timeline(ax: Any, summary: dict[str, Any], people: list[dict[str, Any]], duration: float,
                   step: float) -> None:
    import matplotlib.patches

    colors = class_colors(summary["classes"])
    for row, track in enumerate(people):
        for s in track["segments"]:
            ax.broken_barh([(s["start_s"], s["end_s"] - s["start_s"] + step)], (row - 0.35, 0.7),
                           facecolors=colors[s["label"]])
    ax.set_yticks(range(len(people)), [f"person_{t['person']}" for t in people])
    ax.set_ylim(len(people) - 0.5, -0.5)
    ax.set_xlim(0, duration)
    ax.set_xlabel("seconds")
    used = sorted({s["label"] for t in people for s in t["segments"]}, key=summary["classes"].index)
    ax.legend(handles=[matplotlib.patches.Patch(color=colors[c], label=c) for c in used], loc="upper center",
              bbox_to_anchor=(0.5, -0.35 if people else -0.1), ncol=max(len(used), 1), frameon=False)
    label = summary["video_label"]["label"]
    ax.set_title(f"{Path(str(summary['source'])).name}: {label or 'no label'}")


def _segment(s: dict[str, Any], duration: float, step: float, color: str) -> str:
    left = 100 * s["start_s"] / duration
    width = max(100 * (s["end_s"] - s["start_s"] + step) / duration, 0.4)
    title = f"{s['label']} {s['start_s']:.1f}-{s['end_s'] + step:.1f} s, confidence {s['confidence']:.2f}"
    return (f'<div class="seg" style="left:{left:.3f}%;width:{width:.3f}%;background:{color}" '
            f'data-start="{s["start_s"]:.3f}" data-end="{s["end_s"] + step:.3f}" '
            f'data-label="{html.escape(s["label"])}" title="{html.escape(title)}"></div>')


def _rows(summary: dict[str, Any], duration: float, step: float) -> str:
    colors = class_colors(summary["classes"])
    rows = []
    for t in labeled_people(summary):
        segments = "".join(_segment(s, duration, step, colors[s["label"]]) for s in t["segments"])
        rows.append(f'<div class="row" data-person="person_{t["person"]}"><div class="name">person_{t["person"]}'
                    f'<small>{html.escape(t["majority_label"] or "")}</small></div><div class="lane">{segments}'
                    '<div class="playhead"></div></div></div>')
    return "\n".join(rows) or '<p class="none">Nobody was tracked long enough for a label.</p>'


def report_html(summary: dict[str, Any]) -> str:
    """The page: the annotated video, the video's label and scores, the clickable per-person timeline."""
    duration = summary.get("duration_s") or 1.0
    step = 1.0 / (summary.get("source_fps") or 1.0)
    label = summary["video_label"]
    colors = class_colors(summary["classes"])
    scores = " ".join(f'<span class="score"><i style="background:{colors.get(c, "#888")}"></i>{html.escape(c)} '
                      f"{v:.2f}</span>" for c, v in sorted(label["scores"].items(), key=lambda kv: -kv[1]))
    short = len(summary["tracks"]) - len(labeled_people(summary))
    name = html.escape(Path(str(summary["source"])).name)
    return PAGE.format(
        title=name, label=html.escape(label["label"] or f"no label ({label.get('why', '')})"), scores=scores,
        rule=html.escape(label["rule"]), video=VIDEO, rows=_rows(summary, duration, step), duration=duration,
        ticks="".join(f'<span style="left:{100 * k / duration:.3f}%">{k:g} s</span>'
                      for k in _ticks(duration)),
        short=f"<p>{short} more track(s) too short for a label are in tracks.csv.</p>" if short else "",
        data=html.escape(json.dumps({"duration": duration})),
    )


def batch_index_html(items: list[tuple[str, str, str | None, str]], evaluation: dict[str, Any] | None,
                     headline: str = "") -> str:
    """A batch's index page: every video (its report's link, true class, prediction, error), the misclassified
    first when evaluated, with the confusion matrix and the per-class scores.

    ``items`` holds each video's (report link relative to the page, true class, predicted class or None, error).
    """
    def wrong(item: tuple[str, str, str | None, str]) -> bool:
        return evaluation is not None and item[1] in evaluation["classes"] and item[2] != item[1]

    rows = []
    for link, label, predicted, error in sorted(items, key=lambda it: (not wrong(it), it[0])):
        mark = ' class="wrong"' if wrong((link, label, predicted, error)) else ""
        name = html.escape(Path(link).parent.name)
        cell = f'<a href="{html.escape(link)}">{name}</a>' if not error else name
        rows.append(f"<tr{mark}><td>{cell}</td><td>{html.escape(label)}</td>"
                    f"<td>{html.escape(predicted or '(no label)')}</td><td>{html.escape(error[:120])}</td></tr>")
    scores = ""
    if evaluation is not None:
        per_class = "".join(f"<tr><td>{html.escape(c)}</td><td>{v['precision']:.3f}</td><td>{v['recall']:.3f}</td>"
                            f"<td>{v['f1']:.3f}</td><td>{v['support']}</td></tr>"
                            for c, v in evaluation["per_class"].items())
        scores = (f'<p class="headline">{html.escape(headline)}</p><img src="confusion_matrix.png" '
                  'alt="confusion matrix"><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th>'
                  f"<th>videos</th></tr>{per_class}</table>")
    return INDEX.format(scores=scores, rows="\n".join(rows), n=len(items))


def _ticks(duration: float) -> list[float]:
    """Round second marks along the timeline, about eight of them."""
    step = next(s for s in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, float("inf"))
                if duration / s <= 8)
    return [k * step for k in range(int(duration // step) + 1)] if step != float("inf") else [0.0]


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: who did what, when</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }}
h1 {{ font-size: 20px; margin: 0 0 8px; }}
video {{ width: 100%; max-height: 60vh; background: #000; }}
.label {{ font-size: 17px; margin: 8px 0; }}
.score {{ margin-right: 14px; white-space: nowrap; }}
.score i {{ display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }}
.timeline {{ margin-top: 16px; }}
.row {{ display: flex; align-items: center; height: 30px; }}
.name {{ width: 140px; flex: none; font-weight: 600; }}
.name small {{ display: block; font-weight: 400; color: #666; line-height: 1; }}
.lane {{ position: relative; flex: 1; height: 22px; background: #f1f1f1; border-radius: 3px; }}
.seg {{ position: absolute; top: 0; bottom: 0; cursor: pointer; border-radius: 2px; }}
.seg:hover {{ outline: 2px solid #222; }}
.playhead {{ position: absolute; top: -3px; bottom: -3px; width: 2px; background: #111; left: 0;
             pointer-events: none; }}
.axis {{ position: relative; margin-left: 140px; height: 18px; color: #666; font-size: 12px; }}
.axis span {{ position: absolute; transform: translateX(-50%); white-space: nowrap; }}
</style></head>
<body data-summary="{data}">
<h1>{title}</h1>
<video id="video" src="{video}" controls preload="auto"></video>
<p class="label">Video: <b id="video-label">{label}</b> <small>({rule} over people)</small><br>{scores}</p>
<div class="timeline" id="timeline">
{rows}
<div class="axis">{ticks}</div>
</div>
{short}
<p><small>Click a segment to see it. Files beside this page: annotated.mp4, tracks.csv, summary.json,
annotations.json, labels.csv, timeline.png.</small></p>
<script>
const video = document.getElementById("video");
const duration = JSON.parse(document.body.dataset.summary).duration;
for (const seg of document.querySelectorAll(".seg")) {{
  seg.addEventListener("click", () => {{
    const start = parseFloat(seg.dataset.start), end = parseFloat(seg.dataset.end);
    video.currentTime = start + Math.min(0.02, (end - start) / 2);
  }});
}}
const heads = document.querySelectorAll(".playhead");
function tick() {{
  const x = Math.min(100, 100 * video.currentTime / duration);
  for (const head of heads) head.style.left = x + "%";
  requestAnimationFrame(tick);
}}
requestAnimationFrame(tick);
</script>
</body></html>
"""

INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>predictions of {n} videos</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 12px 0; }}
td, th {{ padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }}
tr.wrong td {{ background: #fde8e8; }}
img {{ max-width: 480px; }}
.headline {{ font-size: 17px; }}
</style></head>
<body>
<h1>Predictions of {n} videos</h1>
{scores}
<table id="videos"><tr><th>video (its report)</th><th>class</th><th>predicted</th><th>error</th></tr>
{rows}
</table>
</body></html>
"""
