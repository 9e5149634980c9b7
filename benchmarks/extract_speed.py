#!/usr/bin/env python
"""Stage 1 speed: extraction against a bare Ultralytics track loop on the same clips.

Both run in this one process with the same model, image size, confidence, tracker and
clips, every frame of every clip (no resampling), alternating pass by pass so that machine
noise hits both alike. The bare loop is what a user would write with the library alone:
``cv2.VideoCapture`` + ``YOLO.track(frame, persist=True)``, saving nothing. Extraction also
crops every tracked person and writes the JPEGs, tracks.csv and meta.json.

Extraction runs once per inference backend (``--runs``: backend, OpenVINO precision and DETECT_BATCH;
torch, OpenVINO float32 and bfloat16, ONNX Runtime by default). With the pose stream, each saved
crop also goes through YOLOv8-pose once on the same backend (the keypoint cache, filled right after
each extraction pass from that pass's crops, as training fills it): "+ pose" is the two together.

With ``--objects``, each run is also timed keeping OBJECT_CLASSES' boxes beside the people (INPUTS "objects":
objects.csv from the same detector call).

Prints the median frames/s of each and their ratios to the bare loop (targets: torch extraction/bare
>= 0.90; the optimized backend >= 2.0; extraction with pose no slower than 1.5x extraction alone; with objects
under 5 % slower than without).

    python benchmarks/extract_speed.py                      # 6 surv_fight clips, 5 passes
    python benchmarks/extract_speed.py --clips-dir DIR --videos 10 --passes 7
    python benchmarks/extract_speed.py --runs torch:float32:1 openvino:float32:1 openvino:float32:4
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from bare import Run, bare_track_pass

import config
from behavior import cli
from behavior.detect.pose import KeypointCache, PoseEstimator, PoseSettings
from behavior.detect.tracking import PersonTracker
from behavior.extract.extraction import extract_video, identity_of
from behavior.io.clips import find_videos
from behavior.io.weights import load_yolo
from behavior.report import format_table
from behavior.runtime import backends, environment, hardware
from behavior.settings import ExtractSettings
from tools.synthetic import generate_dataset

ROOT = Path(__file__).resolve().parents[1]



DEFAULT_CLIPS = ROOT.parent / "shared" / "assets" / "datasets" / "surv_fight"


def extraction_pass(tracker: PersonTracker, jobs, settings: ExtractSettings, identity, out_dir: Path) -> int:
    """The project's stage 1 on the same clips, overwriting its output. Returns frames processed."""
    frames = 0
    for job in jobs:
        result = extract_video(job, out_dir, settings, identity, lambda: tracker, overwrite=True, progress=False)
        if result.status != "done":
            raise SystemExit(f"extraction failed on {job.path}: {result.error}")
        frames += result.frames
    return frames


DEFAULT_RUNS = ["torch:float32:1", f"openvino:float32:{config.DETECT_BATCH}", "openvino:bfloat16:1",
                f"openvino:bfloat16:{config.DETECT_BATCH}", f"onnxruntime:float32:{config.DETECT_BATCH}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips-dir", type=Path, default=DEFAULT_CLIPS,
                        help="clips in <class>/ folders (default: ../shared/assets/datasets/surv_fight; "
                             "generated sample clips when that is absent)")
    parser.add_argument("--videos", type=int, default=6, help="how many clips (spread over the classes)")
    parser.add_argument("--passes", type=int, default=5, help="timed passes of each loop")
    parser.add_argument("--imgsz", type=int, default=config.YOLO_IMGSZ)
    parser.add_argument("--device", default=config.DEVICE)
    parser.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, metavar="BACKEND:PRECISION:BATCH",
                        help=f"stage 1 configurations to time (default: {' '.join(DEFAULT_RUNS)})")
    parser.add_argument("--no-pose", action="store_true", help="skip the keypoint passes")
    parser.add_argument("--objects", action="store_true", help="also time each run keeping OBJECT_CLASSES' boxes")
    args = parser.parse_args()
    cli.setup_logging("WARNING")
    runs = [Run.parse(r) for r in args.runs]

    with tempfile.TemporaryDirectory() as tmp:
        clips_dir = args.clips_dir
        if not clips_dir.is_dir():
            clips_dir = Path(tmp) / "clips"
            generate_dataset(clips_dir, videos_per_class=max(1, args.videos // 3), seconds=3.0)
        jobs = find_videos(clips_dir)
        jobs = jobs[:: max(1, len(jobs) // args.videos)][: args.videos]  # spread over the classes
        cfg = {**cli.config_constants(config), "TARGET_FPS": 0.0, "YOLO_IMGSZ": args.imgsz, "DEVICE": args.device}
        base = ExtractSettings.from_config(cfg)
        identity = identity_of(base)

        bare = load_yolo(base.detector.weights)  # the same checked file the pipeline loads
        loops = {}
        for run in runs:
            detector = dataclasses.replace(base.detector, backend=run.backend, precision=run.precision, batch=run.batch)
            tracker = PersonTracker(detector)
            if tracker.backend != run.backend:
                raise SystemExit(f"{run}: the backend did not load (see the warning above)")
            pose = None if args.no_pose else PoseEstimator(PoseSettings(
                config.POSE_WEIGHTS, device=args.device, backend=run.backend, precision=run.precision))
            loops[str(run)] = (tracker, dataclasses.replace(base, detector=detector), pose)
            if args.objects:
                kept = dataclasses.replace(detector, object_classes=tuple(config.OBJECT_CLASSES))
                loops[f"{run} + objects"] = (PersonTracker(kept), dataclasses.replace(
                    base, detector=detector, objects=tuple(config.OBJECT_CLASSES)), None)
        out_dir = Path(tmp) / "frames"
        bare_track_pass(bare, [j.path for j in jobs[:1]], base.detector)  # warm-up, untimed
        for tracker, settings, _ in loops.values():
            extraction_pass(tracker, jobs[:1], settings, identity, out_dir)
        threads = hardware.set_threads(base.detector.threads)  # Ultralytics lowered it on first use

        rates: dict[str, list[float]] = {"bare torch track loop": []}
        frames = {}
        crops = 0
        for p in range(args.passes):
            start = time.perf_counter()
            n = bare_track_pass(bare, [j.path for j in jobs], base.detector)
            rates["bare torch track loop"].append(n / (time.perf_counter() - start))
            frames["bare torch track loop"] = n
            for name, (tracker, settings, pose) in loops.items():
                start = time.perf_counter()
                n = extraction_pass(tracker, jobs, settings, identity, out_dir)
                seconds = time.perf_counter() - start
                rates.setdefault(f"extract {name}", []).append(n / seconds)
                frames[f"extract {name}"] = n
                if pose is None:
                    continue
                dirs = sorted(d.relative_to(out_dir).as_posix() for d in out_dir.glob("*/*/person_*"))
                start = time.perf_counter()  # the crops were just rewritten: every keypoint is computed again
                store = KeypointCache(Path(tmp) / f"pose_{p}", pose.settings).load(out_dir, dirs, pose,
                                                                                   progress=False)
                rates.setdefault(f"extract + pose {name}", []).append(n / (seconds + time.perf_counter() - start))
                frames[f"extract + pose {name}"], crops = n, store.computed

    bare_fps = statistics.median(rates["bare torch track loop"])
    rows = [[name, frames[name], statistics.median(r), min(r), max(r), statistics.median(r) / bare_fps]
            for name, r in rates.items()]
    print(f"clips: {len(jobs)} from {clips_dir}  device: {hardware.resolve_device(args.device)}  "
          f"threads: {threads}  imgsz: {args.imgsz}  passes: {args.passes}  crops/pass: {crops}  "
          f"pose imgsz: {PoseSettings.imgsz}  openvino {backends.runtime_version('openvino')}  "
          f"onnxruntime {backends.runtime_version('onnxruntime')}")
    print(format_table(["loop", "frames/pass", "median fps", "min fps", "max fps", "x bare"], rows))
    for name in loops:
        if name.endswith(" + objects"):
            plain = name.removesuffix(" + objects")
            cost = statistics.median(rates[f"extract {plain}"]) / statistics.median(rates[f"extract {name}"]) - 1
            met = "met" if cost < 0.05 else "NOT met"
            print(f"extract {plain}: objects add {cost:+.1%} a frame (target < 5 %: {met})")
            continue
        ratio = statistics.median(rates[f"extract {name}"]) / bare_fps
        target = 0.90 if name.startswith("torch") else 2.0
        met = "met" if ratio >= target else "NOT met"
        line = f"extract {name}: {ratio:.2f}x the bare loop (target >= {target}: {met})"
        if not args.no_pose:
            cost = statistics.median(rates[f"extract {name}"]) / statistics.median(rates[f"extract + pose {name}"])
            line += f"; time with pose / without: {cost:.2f} (target <= 1.5: {'met' if cost <= 1.5 else 'NOT met'})"
        print(line)
    return 0


if __name__ == "__main__":
    environment.setup()  # offline Ultralytics, the torchvision fix
    raise SystemExit(main())
