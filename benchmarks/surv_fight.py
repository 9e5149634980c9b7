#!/usr/bin/env python
"""Accuracy on real video: the whole pipeline on the Surveillance Camera Fight dataset, in two modes
and two protocols.

The 240 clips come from 45 source recordings (shared/assets/datasets/surv_fight/sources.csv), and
clips of one recording share scene and people. So the headline protocol splits by source:

    source  benchmarks/surv_fight_source_split.csv: 157 train, 35 val, 48 test videos (20 %), whole
            sources on each side (22 / 11 / 12 of 45), stratified by class as far as sources allow;
            made by behavior.data.splits.assign_splits with fractions (0.65, 0.15, 0.2), seed 42, the
            sources as groups (``--make-split`` rewrites it). Every tuning decision is taken by
            grouped cross-validation on its train + val sources (``--tune K``), never on its test.
    clip    benchmarks/surv_fight_split.csv: split by clip (156 / 36 / 48), so one recording can sit on
            both sides. Kept only to compare with published random-split figures; it is optimistic.

Modes: ``person`` (per-person crops from YOLOv8 + ByteTrack, the default pipeline) and ``frame``
(the whole letterboxed frame as one "person", ENABLE_PERSON_TRACKING=False). For each mode and
protocol it runs the four scripts as a user would (every command is printed and logged). Training
selects its epoch on val; the test split is read once, by training's final report and by
``predict.py --videos-dir <test videos> --evaluate``, the figure reported: it runs on the raw test
videos, so a video where nobody is tracked counts as an error.

    python benchmarks/surv_fight.py                                  # both modes, both protocols
    python benchmarks/surv_fight.py --protocols source --figures-dir docs/images
    python benchmarks/surv_fight.py --tune 5 --extra "--cnn-input rgb"   # 5-fold CV by source; no test

Every stage resumes: a rerun skips finished work (pass --overwrite to redo it all).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import sys
import time
from pathlib import Path

from pipeline import benchmark_parser, check_common, choices, end_to_end, link_videos, predict_flags, run_stage

from behavior import cli
from behavior.io import files
from behavior.report import format_table
from behavior.runtime import environment

ROOT = Path(__file__).resolve().parents[1]



DATASET = ROOT.parent / "shared" / "assets" / "datasets" / "surv_fight"
HERE = Path(__file__).resolve().parent
PROTOCOLS = {  # name: (split file, groups of the split for stage 2 and CV, what the row means)
    "source": (HERE / "surv_fight_source_split.csv", "sources.csv", "split by source recording"),
    "clip": (HERE / "surv_fight_split.csv", None, "split by clip (shares recordings)"),
}
SOURCE_FRACTIONS, SOURCE_SEED = (0.65, 0.15, 0.2), 42  # how surv_fight_source_split.csv was made
SHARED = ["--cnn-input", "difference"]  # chosen by grouped CV by source, for both modes (docs/RESULTS.md)
WHOLE_FRAME = ["--inputs", "appearance", "motion", "--learning-rate", "1e-4", "--lstm-hidden-dim", "256",
               "--lstm-num-layers", "2", "--ensemble-size", "1",
               "--no-stream-norm"]  # what frame mode was measured with
MODES = {
    "person": SHARED,  # with the default INPUTS (motion, pose, interaction), the CNN input does not matter
    "frame": ["--no-enable-person-tracking", *SHARED, *WHOLE_FRAME],
}
log = logging.getLogger("surv_fight")


def link_test_videos(clips_dir: Path, split_file: Path, out: Path) -> int:
    """``out/<class>/<clip>.mp4`` links to the test split's videos, the folder predict.py evaluates."""
    with open(split_file, newline="", encoding="utf-8") as f:
        return link_videos(clips_dir, [r["video"] for r in csv.DictReader(f) if r["split"] == "test"], out)


def extract(mode: str, args: argparse.Namespace, extra: list[str]) -> tuple[Path, Path, float]:
    """Stage 1 of one mode (resumes); the mode's work folder, its frames folder and the seconds taken."""
    work = args.work_dir / mode
    work.mkdir(parents=True, exist_ok=True)
    frames = work / "frames"
    overwrite = ["--overwrite"] if args.overwrite else []
    seconds = run_stage("extract_frames.py", [
        "--clips-dir", str(args.clips_dir), "--frames-dir", str(frames), *extra, *overwrite], work / "extract.log")
    return work, frames, seconds


def group_and_train(frames: Path, split_file: Path, groups: list[str], out: Path, features: Path,
                    extra: list[str], overwrite: bool, cv: int = 0) -> dict[str, float]:
    """Stages 2 and 3 into ``out`` (sequences/, model/); training (or ``cv`` folds) is skipped when finished.

    Every script takes every config flag, so ``extra`` goes to both stages unchanged; ``groups``
    (``--groups-file F``) to stage 2 only, which writes groups.csv for the cross-validation.
    """
    out.mkdir(parents=True, exist_ok=True)
    seqs, model = out / "sequences" / "sequences.csv", out / "model"
    times = {"group": run_stage("group_sequences.py", [  # an identical rerun leaves the file unchanged
        "--frames-dir", str(frames), "--sequences-file", str(seqs), "--split-file", str(split_file), *groups,
        *extra, "--overwrite"], out / "group.log")}
    done = model / ("cv/cv_report.json" if cv else "report.json")
    if overwrite or cv or not done.is_file():  # --cv reuses its finished folds by itself
        times["train"] = run_stage("train_mobilenet_lstm.py", [
            "--frames-dir", str(frames), "--sequences-file", str(seqs), "--features-dir", str(features),
            "--model-dir", str(model), *extra, *(["--cv", str(cv)] if cv else []),
            *(["--overwrite"] if overwrite or not cv else [])], out / ("cv.log" if cv else "train.log"))
    return times


def protocol_inputs(protocol: str, args: argparse.Namespace) -> tuple[Path, list[str]]:
    """The split file of a protocol and the stage 2 flags that name its groups."""
    split_file, groups, _ = PROTOCOLS[protocol]
    return split_file, (["--groups-file", str(args.clips_dir / groups)] if groups else [])


def run_mode(mode: str, protocol: str, args: argparse.Namespace) -> dict:
    """Stages 1-4 of one mode under one protocol's split; the training report and the end-to-end evaluation."""
    extra = [*MODES[mode], *args.extra]
    work, frames, seconds = extract(mode, args, extra)
    split_file, groups = protocol_inputs(protocol, args)
    test_dir = args.work_dir / "test_videos" / protocol
    n_test = link_test_videos(args.clips_dir, split_file, test_dir)
    print(f"{protocol}: {split_file.name}: {n_test} test videos linked under {test_dir}")
    out = work / protocol
    times = {"extract": seconds, **group_and_train(frames, split_file, groups, out, work / "features", extra,
                                                    args.overwrite)}
    checkpoint = out / "model" / "best_mobilenet_lstm.pth"
    times["predict"] = run_stage("predict.py", [
        "--videos-dir", str(test_dir), "--evaluate", "--checkpoint", str(checkpoint),
        "--output-dir", str(out / "predictions"), *predict_flags(checkpoint, out / "predictions")], out / "predict.log")
    report = json.loads((out / "model" / "report.json").read_text())
    evaluation = json.loads((out / "predictions" / "evaluation.json").read_text())
    return {"mode": mode, "protocol": protocol, "flags": extra, "seconds": times, "train_report": report,
            "evaluation": evaluation}


def run_tuning(mode: str, args: argparse.Namespace) -> dict:
    """Grouped K-fold CV (``train_mobilenet_lstm.py --cv K``) on the source split's train + val videos."""
    extra = [*MODES[mode], *args.extra]
    work, frames, _ = extract(mode, args, extra)
    tag = "_".join(a.lstrip("-") for a in args.extra) or "defaults"
    split_file, groups = protocol_inputs("source", args)
    out = work / "tune" / tag
    group_and_train(frames, split_file, groups, out, work / "features", extra, args.overwrite, cv=args.tune)
    return {"mode": mode, "flags": extra, "cv": json.loads((out / "model" / "cv" / "cv_report.json").read_text())}


def make_source_split(clips_dir: Path, path: Path) -> Path:
    """Write the source-grouped split file from sources.csv (SOURCE_FRACTIONS, SOURCE_SEED)."""
    from behavior.data.splits import assign_splits

    videos_by_class: dict[str, list[str]] = {}
    group_of = {}
    with open(clips_dir / "sources.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = row["path"].rsplit(".", 1)[0]
            videos_by_class.setdefault(key.split("/")[0], []).append(key)
            group_of[key] = row["source"]
    split_of = assign_splits(videos_by_class, SOURCE_FRACTIONS, SOURCE_SEED, group_of)
    return files.write_csv(path, ["video", "split"], sorted(split_of.items()))


def summary_rows(results: list[dict]) -> list[list]:
    """One row per mode: training's test report and predict.py's evaluation."""
    rows = []
    for r in results:
        seq, vid, ev = r["train_report"]["sequence_level"], r["train_report"]["video_level"], r["evaluation"]
        e2e = end_to_end(ev)
        fight = ev["per_class"].get("fight", {})
        best_val = r["train_report"]["best_val"]["val_macro_f1"]
        rows.append([PROTOCOLS[r["protocol"]][2], r["mode"], f"{best_val:.3f}", f"{seq['accuracy']:.3f}",
                     f"{vid['accuracy']:.3f} ({vid['n']})", f"{ev['labeled']['accuracy']:.3f} ({ev['labeled']['n']})",
                     f"{ev['macro_f1']:.3f}", f"{fight.get('precision', 0):.3f}", f"{fight.get('recall', 0):.3f}",
                     f"{fight.get('f1', 0):.3f}", f"{e2e['accuracy']:.3f} ({e2e['correct']}/{e2e['videos']})"])
    return rows


HEADERS = ["protocol", "mode", "val macro-F1", "test seq acc", "test video acc (train)", "predict acc (labeled videos)",
           "predict macro-F1", "fight P", "fight R", "fight F1", "predict acc (all test videos)"]


def copy_figures(results: list[dict], work_dir: Path, figures_dir: Path) -> None:
    """Confusion matrices and training curves of every mode, under stable names, for docs/RESULTS.md."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    for r in results:
        out, name = work_dir / r["mode"] / r["protocol"], f"surv_fight_{r['protocol']}_{r['mode']}"
        shutil.copyfile(out / "model" / "curves.png", figures_dir / f"{name}_curves.png")
        shutil.copyfile(out / "predictions" / "confusion_matrix.png", figures_dir / f"{name}_confusion.png")
        frame = annotated_frame(out / "predictions")
        if frame is not None:
            shutil.copyfile(frame, figures_dir / f"{name}_annotated.png")


def annotated_frame(predictions: Path) -> Path | None:
    """Save a frame two thirds into the correctly labeled fight video with the most labeled tracks, as PNG."""
    import cv2

    best = None
    for summary_path in sorted(predictions.glob("fight/*/summary.json")):
        summary = json.loads(summary_path.read_text())
        if (summary.get("video_label") or {}).get("label") != "fight":
            continue
        labeled = sum(t["majority_label"] is not None for t in summary["tracks"])
        if best is None or labeled > best[0]:
            best = (labeled, summary_path.parent)
    if best is None:
        return None
    cap = cv2.VideoCapture(str(best[1] / "annotated.mp4"))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.set(cv2.CAP_PROP_POS_FRAMES, max(count * 2 // 3, 0))
    ok, image = cap.read()
    cap.release()
    if not ok:
        return None
    path = best[1] / "annotated_frame.png"
    cv2.imwrite(str(path), image)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__, DATASET, "surv_fight", "the dataset, <class>/<clip>.mp4")
    parser.add_argument("--protocols", default="source,clip", help="comma-separated: source, clip")
    parser.add_argument("--figures-dir", type=Path, help="also copy the pictures here (docs/images)")
    parser.add_argument("--tune", type=int, default=0, metavar="K",
                        help="instead of the test runs: K-fold CV grouped by source on the source split's train + val")
    parser.add_argument("--make-split", action="store_true", help="rewrite surv_fight_source_split.csv and stop")
    args = parser.parse_args(argv)
    cli.setup_logging("INFO")
    modes = check_common(args, MODES)
    protocols = choices(args.protocols, PROTOCOLS, "protocols")
    if args.make_split:
        print(f"written: {make_source_split(args.clips_dir, PROTOCOLS['source'][0])}")
        return 0
    started = time.perf_counter()
    if args.tune:
        tuned = [run_tuning(mode, args) for mode in modes]
        print()
        print(format_table(["mode", "flags", "video acc per fold", "video acc", "macro-F1", "pooled acc"], [
            [t["mode"], " ".join(t["flags"]), " ".join(f"{f['video_accuracy']:.3f}" for f in t["cv"]["per_fold"]),
             _mean_std(t["cv"]["video_accuracy"]), _mean_std(t["cv"]["video_macro_f1"]),
             f"{t['cv']['pooled']['accuracy']:.3f}"] for t in tuned]))
        print(f"\n{args.tune}-fold CV grouped by source, {time.perf_counter() - started:.0f} s")
        return 0
    results = [run_mode(mode, protocol, args) for protocol in protocols for mode in modes]
    files_out = files.write_json(args.work_dir / "results.json", results)
    if args.figures_dir:
        copy_figures(results, args.work_dir, args.figures_dir)
    print()
    print(format_table(HEADERS, summary_rows(results)))
    for r in results:
        cm = r["evaluation"]["confusion_matrix"]
        classes = r["evaluation"]["predicted_classes"]
        name = f"{r['protocol']}/{r['mode']}"
        print(f"\n{name}: predict.py confusion matrix (rows true, columns predicted; {', '.join(classes)}): {cm}")
        print(f"{name}: seconds per stage: " + ", ".join(f"{k} {v:.0f}" for k, v in r["seconds"].items()))
    print(f"\nresults: {files_out} ({time.perf_counter() - started:.0f} s)")
    return 0


def _mean_std(figure: dict) -> str:
    return f"{figure['mean']:.3f} ± {figure['std']:.3f}"


if __name__ == "__main__":
    environment.setup()  # offline Ultralytics, the torchvision fix
    sys.exit(cli.run(main))
