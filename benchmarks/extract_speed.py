#!/usr/bin/env python
"""Stage 1 speed: extraction against a bare Ultralytics track loop on the same clips.

Both run in this one process with the same model, image size, confidence, tracker and
clips, every frame of every clip (no resampling), alternating pass by pass so that machine
noise hits both alike. The bare loop is what a user would write with the library alone:
``cv2.VideoCapture`` + ``YOLO.track(frame, persist=True)``, saving nothing. Extraction also
crops every tracked person and writes the JPEGs, tracks.csv and meta.json.

With the pose stream, each saved crop also goes through YOLOv8-pose once (the keypoint cache, filled
right after each extraction pass from that pass's crops, as training fills it): "extract + pose" is
the two together.

Prints the median frames/s of each and their ratios (targets: extraction/bare >= 0.90; extraction
with pose no slower than 1.5x extraction alone).

    python benchmarks/extract_speed.py                      # 6 surv_fight clips, 5 passes
    python benchmarks/extract_speed.py --clips-dir DIR --videos 10 --passes 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bare import bare_track_pass  # noqa: E402

import config  # noqa: E402
from behavior import cli, runtime  # noqa: E402
from behavior.extraction import ExtractSettings, extract_video, find_videos  # noqa: E402
from behavior.pose import KeypointCache, PoseEstimator, PoseSettings  # noqa: E402
from behavior.report import format_table  # noqa: E402
from behavior.synthetic import generate_dataset  # noqa: E402
from behavior.tracking import PersonTracker  # noqa: E402
from behavior.weights import load_yolo  # noqa: E402

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips-dir", type=Path, default=DEFAULT_CLIPS,
                        help="clips in <class>/ folders (default: ../shared/assets/datasets/surv_fight; "
                             "generated sample clips when that is absent)")
    parser.add_argument("--videos", type=int, default=6, help="how many clips (spread over the classes)")
    parser.add_argument("--passes", type=int, default=5, help="timed passes of each loop")
    parser.add_argument("--imgsz", type=int, default=config.YOLO_IMGSZ)
    parser.add_argument("--device", default=config.DEVICE)
    args = parser.parse_args()
    cli.setup_logging("WARNING")

    with tempfile.TemporaryDirectory() as tmp:
        clips_dir = args.clips_dir
        if not clips_dir.is_dir():
            clips_dir = Path(tmp) / "clips"
            generate_dataset(clips_dir, videos_per_class=max(1, args.videos // 3), seconds=3.0)
        jobs = find_videos(clips_dir)
        jobs = jobs[:: max(1, len(jobs) // args.videos)][: args.videos]  # spread over the classes
        cfg = {**cli.config_constants(config), "TARGET_FPS": 0.0, "YOLO_IMGSZ": args.imgsz, "DEVICE": args.device}
        settings = ExtractSettings.from_config(cfg)
        identity = settings.identity()

        bare = load_yolo(settings.detector.weights)  # the same checked file the pipeline loads
        tracker = PersonTracker(settings.detector)
        estimator = PoseEstimator(PoseSettings(config.POSE_WEIGHTS, config.POSE_IMGSZ, args.device))
        out_dir = Path(tmp) / "frames"
        bare_track_pass(bare, [j.path for j in jobs[:1]], settings.detector)  # warm-up, untimed
        extraction_pass(tracker, jobs[:1], settings, identity, out_dir)
        threads = runtime.set_threads(settings.detector.threads)  # Ultralytics lowered it on first use

        rates: dict[str, list[float]] = {"bare": [], "extract": [], "extract + pose": []}
        frames = {}
        crops = 0
        for p in range(args.passes):
            for name in ("bare", "extract"):
                start = time.perf_counter()
                if name == "bare":
                    n = bare_track_pass(bare, [j.path for j in jobs], settings.detector)
                else:
                    n = extraction_pass(tracker, jobs, settings, identity, out_dir)
                seconds = time.perf_counter() - start
                rates[name].append(n / seconds)
                frames[name] = n
            dirs = sorted(d.relative_to(out_dir).as_posix() for d in out_dir.glob("*/*/person_*"))
            start = time.perf_counter()  # the crops were just rewritten: every keypoint is computed again
            store = KeypointCache(Path(tmp) / f"pose_{p}", estimator.settings).load(out_dir, dirs, estimator,
                                                                                    progress=False)
            rates["extract + pose"].append(n / (seconds + time.perf_counter() - start))
            frames["extract + pose"], crops = n, store.computed

    ratios = [e / b for e, b in zip(rates["extract"], rates["bare"], strict=True)]
    rows = [[name, frames[name], statistics.median(r), min(r), max(r)] for name, r in rates.items()]
    print(f"clips: {len(jobs)} from {clips_dir}  device: {runtime.resolve_device(args.device)}  "
          f"threads: {threads}  imgsz: {args.imgsz}  passes: {args.passes}  crops/pass: {crops}  "
          f"pose imgsz: {config.POSE_IMGSZ}")
    print(format_table(["loop", "frames/pass", "median fps", "min fps", "max fps"], rows))
    ratio = statistics.median(rates["extract"]) / statistics.median(rates["bare"])
    print(f"ratio extraction/bare (median fps): {ratio:.3f}   "
          f"median of per-pass ratios: {statistics.median(ratios):.3f}   "
          f"target >= 0.90: {'met' if ratio >= 0.90 else 'NOT met'}")
    cost = statistics.median(rates["extract"]) / statistics.median(rates["extract + pose"])
    print(f"time with pose / time without (median fps): {cost:.3f}   target <= 1.5: "
          f"{'met' if cost <= 1.5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
