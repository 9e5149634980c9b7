#!/usr/bin/env python
"""Accuracy on real video with per-person ground truth: UT-Interaction, cross-validated by sequence.

UT-Interaction (shared/assets/datasets/ut_interaction: 90 clips, 6 classes, sequences 1-15) has the
same actors throughout a sequence, so the folds are made by sequence: ``--cv 5`` deals the 15
sequences into 5 folds of 3 (GROUP_PATTERN ``^\\d+_(\\d+)_`` on the clip name). For each mode it runs
the scripts as a user would (every command is printed and logged):

    extract_frames.py -> group_sequences.py --group-pattern ... (all videos train/val, no test split)
    -> train_mobilenet_lstm.py --cv 5 -> predict.py --evaluate on each fold's held-out clips with that
    fold's checkpoint

and reports, over all 90 clips, predict.py's 6-way video-level accuracy, macro-F1 and confusion
matrix (a clip where nobody is tracked counts as wrong), and, in per-person mode, per-person scores
from predict.py's own outputs (summary.json, tracks.csv): the clip's most present tracks (the sum of
their box heights over their frames, so that a small passer-by far behind the two actors, seen as long,
is not taken for one of them) are ordered by the x-centre of their boxes and matched to labels.csv's
left/right labels.

    actor accuracy   kick, punch, push: the main actor's track gives the clip's class a higher
                     probability than the receiver's track
    person accuracy  handshake, hug (both people) and point (one person): each expected person's track
                     is labeled with the clip's class; a person not tracked counts as wrong
    people found     clips where the number of labeled tracks differs from the expected 2 (1 for point)

Modes: ``person`` (YOLOv8 + ByteTrack crops) and ``frame`` (the whole frame). Settings are the
project's defaults plus CNN_INPUT "difference", chosen on surv_fight's grouped CV, not here.

``--person-labels`` (person mode) trains from the dataset's own per-person labels instead of the clip labels: its
left and right labels are given to the tool's own tracks (the clip's most present tracks in stage 1's tracks.csv,
left to right; "receives_kick" becomes the model's "kick_received") in an ANNOTATIONS_DIR labels.csv, which stage 1
copies beside each video and stage 2 labels those people's sequences by.

    python benchmarks/ut_interaction.py                 # both modes, into outputs/ut_interaction
    python benchmarks/ut_interaction.py --modes person --extra "--cnn-input rgb"

Every stage resumes: a rerun skips finished work (pass --overwrite to redo it all).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from pathlib import Path

from pipeline import benchmark_parser, check_common, end_to_end, link_videos, predict_flags, run_stage

from behavior import cli, metrics
from behavior.errors import InputError
from behavior.io import files
from behavior.io.annotations import write_labels
from behavior.io.frames import TrackLabel
from behavior.report import format_table
from behavior.runtime import environment

ROOT = Path(__file__).resolve().parents[1]



DATASET = ROOT.parent / "shared" / "assets" / "datasets" / "ut_interaction"
GROUP_PATTERN = r"^\d+_(\d+)_"  # <index>_<sequence>_<class id>.avi
FOLDS = 5
SHARED = ["--cnn-input", "difference"]  # surv_fight's grouped-CV choice
WHOLE_FRAME = ["--inputs", "appearance", "motion", "--learning-rate", "1e-4", "--lstm-hidden-dim", "256",
               "--lstm-num-layers", "2", "--ensemble-size", "1", "--no-stream-norm"]  # pose needs people; as measured
MODES = {"person": SHARED, "frame": ["--no-enable-person-tracking", *SHARED, *WHOLE_FRAME]}
ACTIONS = ("kick", "punch", "push")  # one actor, one receiver
TOGETHER = {"handshake": 2, "hug": 2, "point": 1}  # everyone in the clip does the class
log = logging.getLogger("ut_interaction")


def read_labels(clips_dir: Path) -> dict[str, dict[str, str]]:
    """labels.csv by video key (``class/clip``)."""
    path = clips_dir / "labels.csv"
    if not path.is_file():
        raise InputError(f"labels not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        return {row["path"].rsplit(".", 1)[0]: row for row in csv.DictReader(f)}


def run_mode(mode: str, args: argparse.Namespace, labels: dict[str, dict[str, str]]) -> dict:
    """Stages 1-3 (``--cv``) and predict.py on every fold's held-out clips; the fold reports and evaluations."""
    extra = [*MODES[mode], *args.extra]
    work = args.work_dir / mode
    frames, seqs, model = work / "frames", work / "sequences" / "sequences.csv", work / "model"
    if args.cv_only:  # sequences and models per set of extra flags, beside the full run's
        model = work / "tune" / ("_".join(a.lstrip("-") for a in args.extra) or "defaults")
        model = model.with_name(model.name + "_person_labels") if args.person_labels else model
        seqs = model.with_name(model.name + "_sequences") / "sequences.csv"  # a model folder holds only the model
    overwrite = ["--overwrite"] if args.overwrite else []
    times = {"extract": run_stage("extract_frames.py", [
        "--clips-dir", str(args.clips_dir), "--frames-dir", str(frames), *extra, *overwrite], work / "extract.log")}
    if args.person_labels:  # the same frames, now with the dataset's labels on its tracks
        annotations = write_person_labels(frames, labels, work / "person_labels")
        times["extract"] += run_stage("extract_frames.py", [
            "--clips-dir", str(args.clips_dir), "--frames-dir", str(frames), "--annotations-dir", str(annotations),
            *extra], work / "extract.log")
    times["group"] = run_stage("group_sequences.py", [
        "--frames-dir", str(frames), "--sequences-file", str(seqs), "--group-pattern", GROUP_PATTERN,
        "--split-fractions", "0.85", "0.15", "0", *extra, "--overwrite"], work / "group.log")
    times["cv"] = run_stage("train_mobilenet_lstm.py", [
        "--frames-dir", str(frames), "--sequences-file", str(seqs), "--features-dir", str(work / "features"),
        "--model-dir", str(model), "--cv", str(FOLDS), *extra, *overwrite], work / "cv.log")
    cv = json.loads((model / "cv" / "cv_report.json").read_text())
    if args.cv_only:
        result = {"mode": mode, "flags": extra, "seconds": times, "cv": cv}
        if mode == "person":  # per person, from each fold's report on its held-out clips
            result["people"] = person_scores(cv_people(model / "cv", frames, labels), labels)
        return result
    fold_of_sequence = {}
    with open(model / "cv" / "folds.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            fold_of_sequence[row["group"]] = int(row["fold"])
    unplaced = sorted({r["sequence"] for r in labels.values()} - set(fold_of_sequence))
    if unplaced:  # every clip of a sequence lacked sequences: its clips are still predicted, by fold 1
        log.warning("sequence(s) %s have no training sequences; their clips are scored with fold 1", unplaced)
    times["predict"] = 0.0
    evaluations = []
    for k in range(1, FOLDS + 1):
        keys = sorted(key for key, r in labels.items() if fold_of_sequence.get(r["sequence"], 1) == k)
        videos = work / "heldout" / f"fold_{k}"
        link_videos(args.clips_dir, keys, videos, suffix=".avi")
        checkpoint = model / "cv" / f"fold_{k}" / "best_mobilenet_lstm.pth"
        out = work / "predictions" / f"fold_{k}"
        times["predict"] += run_stage("predict.py", [
            "--videos-dir", str(videos), "--evaluate", "--checkpoint", str(checkpoint),
            "--output-dir", str(out), *predict_flags(checkpoint, out)], work / f"predict_fold_{k}.log")
        evaluations.append(json.loads((out / "evaluation.json").read_text()))
    return {"mode": mode, "flags": extra, "seconds": times, "cv": cv, "evaluations": evaluations}


def write_person_labels(frames: Path, labels: dict[str, dict[str, str]], annotations: Path) -> Path:
    """An ANNOTATIONS_DIR whose labels.csv gives each clip's left and right person labels to the tool's own tracks
    (the clip's most present tracks in stage 1's tracks.csv, left to right); returns the folder."""
    rows = []
    for key, row in sorted(labels.items()):
        tracks = frames / key / "tracks.csv"
        if not tracks.is_file():
            continue
        expected = 1 if row["main_actor"] == "single" else 2
        boxes = track_boxes(tracks, "track_id")
        people, _ = left_to_right([{"track_id": t} for t in boxes], boxes, "track_id", expected)
        given = [row["left_person_label"], row["right_person_label"]][:expected]
        if len(people) == 1 and expected == 2:
            continue  # one person tracked where two act: which one it is, is not known
        for person, label in zip(people, given, strict=False):
            name = label.replace("receives_", "") + "_received" if label.startswith("receives_") else label
            rows.append((key.rsplit("/", 1)[1], TrackLabel(int(person["track_id"]), name)))
    write_labels(annotations / "labels.csv", rows)
    return annotations


def pooled_evaluation(evaluations: list[dict]) -> dict:
    """predict.py's video-level figures over every fold's held-out clips together."""
    classes = evaluations[0]["classes"]
    index = {c: i for i, c in enumerate(classes)}
    videos = [v for e in evaluations for v in e["videos"]]
    none = len(classes)
    result = metrics.evaluate([index[v["label"]] for v in videos],
                              [index.get(v["predicted"], none) if v["predicted"] else none for v in videos],
                              classes, none_label="(no label)")
    result["videos"] = videos
    return result


def clip_people(prediction_dir: Path, expected: int) -> tuple[list[dict], int]:
    """The ``expected`` most present labeled tracks of a clip in predict.py's outputs, left to right, each with
    its mean x-centre; and how many labeled tracks the clip has."""
    summary = files.read_json(prediction_dir / "summary.json")
    if summary is None:
        return [], 0
    labeled = [t for t in summary["tracks"] if t.get("mean_probs")]
    return left_to_right(labeled, track_boxes(prediction_dir / "tracks.csv", "track_id"), "track_id", expected)


def track_boxes(tracks_csv: Path, key: str) -> dict[str, tuple[float, float]]:
    """Each track's (mean x-centre, presence) over its rows (``key``: the tracks.csv column naming it).

    Presence is the sum of the track's box heights over its frames: a person seen long and large scores high,
    a small passer-by in the background (UT-Interaction's second set) or a short fragment low.
    """
    rows: dict[str, list[tuple[float, float]]] = {}
    with open(tracks_csv, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rows.setdefault(row[key], []).append(((float(row["x1"]) + float(row["x2"])) / 2,
                                                  float(row["y2"]) - float(row["y1"])))
    return {k: (sum(x for x, _ in v) / len(v), sum(h for _, h in v)) for k, v in rows.items()}


def left_to_right(people: list[dict], boxes: dict[str, tuple[float, float]], key: str, expected: int
                  ) -> tuple[list[dict], int]:
    """The ``expected`` most present people (``track_boxes``), ordered by x-centre; and how many there are.

    The clip's two main people are its largest and longest-seen tracks, not merely its longest: a bystander
    walking through the whole clip far behind them is seen as long.
    """
    chosen = sorted(people, key=lambda t: -boxes.get(str(t[key]), (0.0, 0.0))[1])[:expected]
    for t in chosen:
        t["x_centre"] = boxes.get(str(t[key]), (0.0, 0.0))[0]
    return sorted(chosen, key=lambda t: t["x_centre"]), len(people)


def cv_people(cv_dir: Path, frames_dir: Path, labels: dict[str, dict[str, str]]) -> dict[str, tuple[list[dict], int]]:
    """Each clip's people as its held-out CV fold scored them (report.json's per-person mean probabilities over
    their sequences), with their presence and x-centres from stage 1's tracks.csv."""
    out = {}
    for report_path in sorted(cv_dir.glob("fold_*/report.json")):
        report = json.loads(report_path.read_text())
        classes = report["video_level"]["classes"]
        for key, people in report.get("people", {}).items():
            if key not in labels:
                continue
            row = labels[key]
            entries = [{"person": name, "mean_probs": dict(zip(classes, probs, strict=True))}
                       for name, probs in people.items()]
            expected = 1 if row["main_actor"] == "single" else 2
            boxes = {f"person_{k}": v for k, v in track_boxes(frames_dir / key / "tracks.csv", "person").items()}
            out[key] = left_to_right(entries, boxes, "person", expected)
    return out


def predicted_people(predictions: Path, labels: dict[str, dict[str, str]]) -> dict[str, tuple[list[dict], int]]:
    """Each clip's people from predict.py's outputs under ``predictions/fold_*/<class>/<clip>``."""
    out = {}
    for key, row in labels.items():
        folders = list(predictions.glob(f"fold_*/{row['label']}/{key.split('/', 1)[1]}"))
        expected = 1 if row["main_actor"] == "single" else 2
        out[key] = clip_people(folders[0], expected) if folders else ([], 0)
    return out


def person_scores(people_of: dict[str, tuple[list[dict], int]], labels: dict[str, dict[str, str]]) -> dict:
    """Actor accuracy, per-person accuracy and people-count mismatches, from each clip's people left to right."""
    actor = {"correct": 0, "clips": 0, "missing": 0}
    person = {"correct": 0, "people": 0, "missing": 0}
    per_class = {}
    mismatched = []
    for key, row in sorted(labels.items()):
        if key not in people_of:
            continue
        label = row["label"]
        expected = 1 if row["main_actor"] == "single" else 2
        people, found = people_of[key]
        if found != expected:
            mismatched.append(f"{key} ({found})")
        if label in ACTIONS:
            actor["clips"] += 1
            if len(people) < 2:
                actor["missing"] += 1
                continue
            main, other = (people[0], people[1]) if row["main_actor"] == "left" else (people[1], people[0])
            hit = main["mean_probs"][label] > other["mean_probs"][label]
            actor["correct"] += hit
            per_class.setdefault(label, [0, 0])
            per_class[label][0] += hit
            per_class[label][1] += 1
        else:
            person["people"] += expected
            person["missing"] += expected - len(people)
            hits = sum(max(t["mean_probs"], key=t["mean_probs"].get) == label for t in people)
            person["correct"] += hits
            per_class.setdefault(label, [0, 0])
            per_class[label][0] += hits
            per_class[label][1] += expected
    actor["accuracy"] = actor["correct"] / max(actor["clips"], 1)
    person["accuracy"] = person["correct"] / max(person["people"], 1)
    return {"actor": actor, "person": person, "per_class": per_class, "people_mismatch": mismatched}


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__, DATASET, "ut_interaction", "the dataset, <class>/<clip>.avi + labels.csv")
    parser.add_argument("--cv-only", action="store_true",
                        help="stages 1-3 only: the grouped CV, into <work>/<mode>/tune/<extra flags> (no predict.py)")
    parser.add_argument("--person-labels", action="store_true",
                        help="train from the dataset's per-person labels (ANNOTATIONS_DIR labels.csv) instead of the "
                             "clip labels (with --cv-only)")
    args = parser.parse_args(argv)
    cli.setup_logging("INFO")
    modes = check_common(args, MODES)
    labels = read_labels(args.clips_dir)
    started = time.perf_counter()
    if args.cv_only:
        cvs = [run_mode(mode, args, labels) for mode in modes]
        print(format_table(["mode", "flags", "CV video acc (mean ± std)", "CV macro-F1", "actor acc", "person acc",
                            "people found != expected", "seconds"],
                           [[r["mode"], " ".join(r["flags"]),
                             f"{r['cv']['video_accuracy']['mean']:.3f} ± {r['cv']['video_accuracy']['std']:.3f}",
                             f"{r['cv']['video_macro_f1']['mean']:.3f}",
                             *(_people_cells(r["people"]) if "people" in r else ["n/a", "n/a", "n/a"]),
                             f"{sum(r['seconds'].values()):.0f}"] for r in cvs]))
        return 0
    results = []
    for mode in modes:
        r = run_mode(mode, args, labels)
        r["predict"] = pooled_evaluation(r["evaluations"])
        r["e2e"] = end_to_end({"videos": r["predict"].pop("videos")})
        if mode == "person":
            r["people"] = person_scores(predicted_people(args.work_dir / mode / "predictions", labels), labels)
        del r["evaluations"]
        results.append(r)
    files_out = files.write_json(args.work_dir / "results.json", results)
    print()
    print(format_table(
        ["mode", "CV video acc (mean ± std)", "CV macro-F1", "predict acc (all clips)", "predict macro-F1",
         "actor acc", "person acc", "people found != expected"],
        [[r["mode"], f"{r['cv']['video_accuracy']['mean']:.3f} ± {r['cv']['video_accuracy']['std']:.3f}",
          f"{r['cv']['video_macro_f1']['mean']:.3f} ± {r['cv']['video_macro_f1']['std']:.3f}",
          f"{r['e2e']['accuracy']:.3f} ({r['e2e']['correct']}/{r['e2e']['videos']})", f"{r['predict']['macro_f1']:.3f}",
          *(_people_cells(r["people"]) if "people" in r else ["n/a", "n/a", "n/a"])] for r in results]))
    for r in results:
        print(f"\n{r['mode']}: predict.py confusion matrix (rows true: {', '.join(r['predict']['classes'])}; "
              f"columns predicted: {', '.join(r['predict']['predicted_classes'])}): {r['predict']['confusion_matrix']}")
        if "people" in r:
            p = r["people"]
            print(f"{r['mode']}: per class (correct/scored): "
                  + ", ".join(f"{c} {a}/{b}" for c, (a, b) in sorted(p["per_class"].items())))
            print(f"{r['mode']}: clips without the expected number of labeled people: "
                  + (", ".join(p["people_mismatch"]) or "none"))
        print(f"{r['mode']}: seconds per stage: " + ", ".join(f"{k} {v:.0f}" for k, v in r["seconds"].items()))
    print(f"\nresults: {files_out} ({time.perf_counter() - started:.0f} s)")
    return 0


def _people_cells(people: dict) -> list[str]:
    a, p = people["actor"], people["person"]
    return [f"{a['accuracy']:.3f} ({a['correct']}/{a['clips']})", f"{p['accuracy']:.3f} ({p['correct']}/{p['people']})",
            str(len(people["people_mismatch"]))]


if __name__ == "__main__":
    environment.setup()  # offline Ultralytics, the torchvision fix
    sys.exit(cli.run(main))
