#!/usr/bin/env python
"""Accuracy on real video: the whole pipeline on the Surveillance Camera Fight dataset, in two modes.

For each mode it runs the four scripts as a user would (every command is printed and logged),
with a fixed, class-stratified, video-level split (benchmarks/surv_fight_split.csv: 156 train,
36 val, 48 test videos = 20 %, made by behavior.splits.assign_splits with seed 42):

    person  per-person crops (YOLOv8 + ByteTrack), the default pipeline
    frame   the whole letterboxed frame as one "person" (ENABLE_PERSON_TRACKING=False)

Both use CNN_INPUT="difference" (motion images), chosen by cross-validation on the train + val
videos (``--tune``; docs/RESULTS.md).
Training selects its epoch on val; the test split is read once, by training's final report and by
``predict.py --videos-dir <test videos> --evaluate``, which is the headline figure: it runs on the
raw test videos, so a video where nobody is tracked counts as an error.

    python benchmarks/surv_fight.py                           # both modes, into outputs/surv_fight
    python benchmarks/surv_fight.py --modes frame --figures-dir docs/images
    python benchmarks/surv_fight.py --tune 4 --modes frame --extra "--cnn-input rgb"   # 4-fold CV, no test

Every stage resumes: a rerun skips finished work (pass --overwrite to redo it all).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from behavior import cli, files  # noqa: E402
from behavior.errors import InputError  # noqa: E402
from behavior.report import format_table  # noqa: E402

DATASET = ROOT.parent / "shared" / "assets" / "datasets" / "surv_fight"
SPLIT_FILE = Path(__file__).resolve().parent / "surv_fight_split.csv"
SHARED = ["--cnn-input", "difference"]  # chosen on val, for both modes
MODES = {
    "person": SHARED,
    "frame": ["--no-enable-person-tracking", *SHARED],
}
log = logging.getLogger("surv_fight")


def run_stage(name: str, argv: list[str], log_path: Path) -> float:
    """Run one of the project's scripts, its output into ``log_path``; seconds taken."""
    quiet = [] if name == "group_sequences.py" else ["--no-progress"]  # stage 2 has no progress bar
    command = [sys.executable, str(ROOT / name), *argv, *quiet]
    printable = " ".join(["python", name, *argv])
    print(f"$ {printable}", flush=True)
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as f:
        f.write(f"$ {printable}\n")
        f.flush()
        code = subprocess.call(command, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if code not in (0, 1):  # 1: some videos failed, which the reports count
        raise InputError(f"{name} exited with {code}; see {log_path}")
    return time.perf_counter() - start


def link_test_videos(clips_dir: Path, split_file: Path, out: Path) -> int:
    """``out/<class>/<clip>.mp4`` links to the test split's videos, the folder predict.py evaluates."""
    count = 0
    with open(split_file, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["split"] != "test":
                continue
            source = clips_dir / f"{row['video']}.mp4"
            if not source.is_file():
                raise InputError(f"test video missing: {source}")
            target = out / f"{row['video']}.mp4"
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.symlink(source.resolve(), target)
            count += 1
    return count


def extract(mode: str, args: argparse.Namespace, extra: list[str]) -> tuple[Path, Path, float]:
    """Stage 1 of one mode (resumes); the mode's work folder, its frames folder and the seconds taken."""
    work = args.work_dir / mode
    work.mkdir(parents=True, exist_ok=True)
    frames = work / "frames"
    overwrite = ["--overwrite"] if args.overwrite else []
    seconds = run_stage("extract_frames.py", [
        "--clips-dir", str(args.clips_dir), "--frames-dir", str(frames), *extra, *overwrite], work / "extract.log")
    return work, frames, seconds


def group_and_train(frames: Path, split_file: Path, out: Path, features: Path, extra: list[str],
                    overwrite: bool) -> dict[str, float]:
    """Stages 2 and 3 into ``out`` (sequences/, model/); training is skipped when its report exists.

    Every script takes every config flag, so ``extra`` goes to both stages unchanged.
    """
    out.mkdir(parents=True, exist_ok=True)
    seqs, model = out / "sequences" / "sequences.csv", out / "model"
    times = {"group": run_stage("group_sequences.py", [  # an identical rerun leaves the file unchanged
        "--frames-dir", str(frames), "--sequences-file", str(seqs), "--split-file", str(split_file),
        *extra, "--overwrite"], out / "group.log")}
    if overwrite or not (model / "report.json").is_file():
        times["train"] = run_stage("train_mobilenet_lstm.py", [
            "--frames-dir", str(frames), "--sequences-file", str(seqs), "--features-dir", str(features),
            "--model-dir", str(model), *extra, "--overwrite"], out / "train.log")
    return times


def run_mode(mode: str, args: argparse.Namespace, test_dir: Path) -> dict:
    """Stages 1-4 of one mode with the fixed split; the training report and the end-to-end evaluation."""
    extra = [*MODES[mode], *args.extra]
    work, frames, seconds = extract(mode, args, extra)
    times = {"extract": seconds, **group_and_train(frames, args.split_file, work, work / "features", extra,
                                                    args.overwrite)}
    fresh_model = ["--overwrite"] if "train" in times else []  # predictions of an older model are stale
    times["predict"] = run_stage("predict.py", [
        "--videos-dir", str(test_dir), "--evaluate", "--checkpoint", str(work / "model" / "best_mobilenet_lstm.pth"),
        "--output-dir", str(work / "predictions"), *fresh_model], work / "predict.log")
    report = json.loads((work / "model" / "report.json").read_text())
    evaluation = json.loads((work / "predictions" / "evaluation.json").read_text())
    return {"mode": mode, "flags": extra, "seconds": times, "train_report": report, "evaluation": evaluation}


def fold_split_files(split_file: Path, folds: int, out: Path) -> list[Path]:
    """``folds`` split files over the train and val videos only, each fold once as val (test videos left out)."""
    import numpy as np

    with open(split_file, newline="", encoding="utf-8") as f:
        videos = [r["video"] for r in csv.DictReader(f) if r["split"] != "test"]
    fold_of = {}
    rng = np.random.default_rng(0)
    for label in sorted({v.split("/")[0] for v in videos}):  # stratified: each class dealt round the folds
        members = [v for v in videos if v.split("/")[0] == label]
        for i, j in enumerate(rng.permutation(len(members))):
            fold_of[members[j]] = i % folds
    paths = []
    for k in range(folds):
        path = out / f"fold{k}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [f"{v},{'val' if fold_of[v] == k else 'train'}" for v in videos]
        path.write_text("video,split\n" + "\n".join(rows) + "\n")
        paths.append(path)
    return paths


def run_tuning(mode: str, args: argparse.Namespace) -> dict:
    """K-fold cross-validation on the train + val videos for one mode and ``--extra`` flags: tuning never sees test."""
    extra = [*MODES[mode], *args.extra]
    work, frames, _ = extract(mode, args, extra)
    tag = "_".join(a.lstrip("-") for a in args.extra) or "defaults"
    scores = []
    for k, split in enumerate(fold_split_files(args.split_file, args.tune, work / "tune" / "splits")):
        out = work / "tune" / tag / f"fold{k}"
        group_and_train(frames, split, out, work / "features", extra, args.overwrite)
        report = json.loads((out / "model" / "report.json").read_text())
        scores.append((report["video_level"]["accuracy"], report["sequence_level"]["accuracy"]))
    return {"mode": mode, "flags": extra, "video": [v for v, _ in scores], "sequence": [q for _, q in scores]}


def end_to_end(evaluation: dict) -> dict:
    """Video-level figures over every test video: no prediction (nobody tracked) or failure counts as wrong."""
    videos = evaluation["videos"]
    correct = sum(v["predicted"] == v["label"] for v in videos)
    return {"videos": len(videos), "correct": correct, "accuracy": correct / max(len(videos), 1),
            "unlabeled": sum(v["predicted"] is None for v in videos)}


def summary_rows(results: list[dict]) -> list[list]:
    """One row per mode: training's test report and predict.py's evaluation."""
    rows = []
    for r in results:
        seq, vid, ev = r["train_report"]["sequence_level"], r["train_report"]["video_level"], r["evaluation"]
        e2e = end_to_end(ev)
        fight = ev["per_class"].get("fight", {})
        rows.append([r["mode"], f"{r['train_report']['best_val']['val_macro_f1']:.3f}", f"{seq['accuracy']:.3f}",
                     f"{vid['accuracy']:.3f} ({vid['n']})", f"{ev['labeled']['accuracy']:.3f} ({ev['labeled']['n']})",
                     f"{ev['macro_f1']:.3f}", f"{fight.get('precision', 0):.3f}", f"{fight.get('recall', 0):.3f}",
                     f"{fight.get('f1', 0):.3f}", f"{e2e['accuracy']:.3f} ({e2e['correct']}/{e2e['videos']})"])
    return rows


HEADERS = ["mode", "val macro-F1", "test seq acc", "test video acc (train)", "predict acc (labeled videos)",
           "predict macro-F1", "fight P", "fight R", "fight F1", "predict acc (all test videos)"]


def copy_figures(results: list[dict], work_dir: Path, figures_dir: Path) -> None:
    """Confusion matrices and training curves of every mode, under stable names, for docs/RESULTS.md."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    for r in results:
        mode = work_dir / r["mode"]
        shutil.copyfile(mode / "model" / "curves.png", figures_dir / f"surv_fight_{r['mode']}_curves.png")
        shutil.copyfile(mode / "predictions" / "confusion_matrix.png",
                        figures_dir / f"surv_fight_{r['mode']}_confusion.png")
        frame = annotated_frame(mode / "predictions")
        if frame is not None:
            shutil.copyfile(frame, figures_dir / f"surv_fight_{r['mode']}_annotated.png")


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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips-dir", type=Path, default=DATASET, help="the dataset, <class>/<clip>.mp4")
    parser.add_argument("--split-file", type=Path, default=SPLIT_FILE, help="video,split CSV")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "outputs" / "surv_fight")
    parser.add_argument("--modes", default="person,frame", help="comma-separated: person, frame")
    parser.add_argument("--figures-dir", type=Path, help="also copy the pictures here (docs/images)")
    parser.add_argument("--extra", default="", help='more config flags for every stage, e.g. "--frame-width 320"')
    parser.add_argument("--tune", type=int, default=0, metavar="K",
                        help="instead of the test run: K-fold cross-validation on the train + val videos")
    parser.add_argument("--overwrite", action="store_true", help="redo every stage")
    args = parser.parse_args(argv)
    cli.setup_logging("INFO")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise InputError(f"--modes takes {', '.join(MODES)}; got {args.modes!r}")
    if not args.clips_dir.is_dir():
        raise InputError(f"dataset not found: {args.clips_dir}")
    args.clips_dir, args.split_file = args.clips_dir.resolve(), args.split_file.resolve()
    args.work_dir = args.work_dir.resolve()
    args.extra = shlex.split(args.extra)
    if args.tune:
        if args.tune < 2:
            raise InputError("--tune needs at least 2 folds")
        tuned = [run_tuning(mode, args) for mode in modes]
        rows = [[t["mode"], " ".join(t["flags"]), " ".join(f"{v:.3f}" for v in t["video"]),
                 f"{sum(t['video']) / len(t['video']):.3f}", f"{sum(t['sequence']) / len(t['sequence']):.3f}"]
                for t in tuned]
        print()
        print(format_table(["mode", "flags", "val video acc per fold", "mean video acc", "mean sequence acc"], rows))
        return 0
    test_dir = args.work_dir / "test_videos"
    n_test = link_test_videos(args.clips_dir, args.split_file, test_dir)
    print(f"split {args.split_file.name}: {n_test} test videos linked under {test_dir}")
    results = [run_mode(mode, args, test_dir) for mode in modes]
    files_out = files.write_json(args.work_dir / "results.json", results)
    if args.figures_dir:
        copy_figures(results, args.work_dir, args.figures_dir)
    print()
    print(format_table(HEADERS, summary_rows(results)))
    for r in results:
        cm = r["evaluation"]["confusion_matrix"]
        classes = r["evaluation"]["classes"]
        print(f"\n{r['mode']}: predict.py confusion matrix (rows true, columns predicted; {', '.join(classes)}): {cm}")
        print(f"{r['mode']}: seconds per stage: " + ", ".join(f"{k} {v:.0f}" for k, v in r["seconds"].items()))
    print(f"\nresults: {files_out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
