"""Sample videos for the demo and the tests: real people, generated motion, fully offline.

The people are real photographs that ship inside Ultralytics (``bus.jpg``, ``zidane.jpg``), cut
out and moved over a generated background in a few motion classes, so the real detector finds
them without any download. The same seed always gives the same frames.

Example:
    >>> generate_dataset(Path("datasets/sample_clips"), videos_per_class=4)  # doctest: +SKIP

From the shell: ``python -m tools.synthetic --out datasets/sample_clips``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from behavior.io import files
from behavior.io.frames import TRACKS_HEADER
from behavior.io.video import VideoWriter

log = logging.getLogger(__name__)

MOTIONS = ("walking", "jumping", "standing")

# Person boxes (x1, y1, x2, y2) in the Ultralytics sample photos, as YOLOv8n finds them. The
# people cut by bus.jpg's edges are left out: they are found unreliably once small.
PERSON_SOURCES: tuple[tuple[str, tuple[int, int, int, int]], ...] = (
    ("bus.jpg", (49, 399, 246, 903)),
    ("bus.jpg", (221, 406, 345, 857)),
    ("zidane.jpg", (749, 42, 1142, 712)),
)


@dataclass(frozen=True)
class ClipSpec:
    """What one generated clip shows."""

    motion: str = "walking"
    persons: int = 1
    width: int = 640
    height: int = 480
    fps: float = 25.0
    seconds: float = 3.0
    seed: int = 0


def ultralytics_assets() -> Path:
    """The folder of sample images installed with Ultralytics (found without importing it)."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("ultralytics is not installed: its sample photos are needed")
    return Path(next(iter(spec.submodule_search_locations))) / "assets"


@cache
def person_cutouts() -> tuple[np.ndarray, ...]:
    """The real person photos, cut out of the Ultralytics samples (BGR)."""
    cutouts = []
    for name, (x1, y1, x2, y2) in PERSON_SOURCES:
        image = cv2.imread(str(ultralytics_assets() / name))
        if image is None:
            raise FileNotFoundError(f"missing Ultralytics sample image {name}")
        cutouts.append(image[y1:y2, x1:x2].copy())
    return tuple(cutouts)


def _feather_mask(height: int, width: int, edge_x: float = 0.15, edge_y: float = 0.04) -> np.ndarray:
    """An alpha mask, 1 inside and ramping to 0 at the borders, so pasted people blend in.

    The sides fade widely: that is where the photos hold bits of their neighbours.
    """
    ramp_x = np.clip(np.minimum(np.arange(width), np.arange(width)[::-1]) / max(width * edge_x, 1), 0, 1)
    ramp_y = np.clip(np.minimum(np.arange(height), np.arange(height)[::-1]) / max(height * edge_y, 1), 0, 1)
    return (ramp_y[:, None] * ramp_x[None, :])[..., None].astype(np.float32)


def render_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A plain scene: a wall with doors and windows over a tiled floor."""
    image = np.empty((height, width, 3), np.uint8)
    horizon = int(height * rng.uniform(0.5, 0.62))
    wall = rng.integers(90, 200, 3)
    floor = rng.integers(60, 140, 3)
    shade = np.linspace(1.0, 0.8, horizon)[:, None, None]
    image[:horizon] = (wall[None, None, :] * shade).astype(np.uint8)
    image[horizon:] = floor
    for _ in range(rng.integers(2, 5)):  # doors and windows
        w, h = int(rng.uniform(0.06, 0.15) * width), int(rng.uniform(0.15, 0.35) * height)
        x, y = int(rng.uniform(0, width - w)), int(rng.uniform(0.05 * height, max(horizon - h, 0.06 * height)))
        cv2.rectangle(image, (x, y), (x + w, y + h), tuple(int(c) for c in rng.integers(30, 230, 3)), -1)
    for x in np.linspace(-width, 2 * width, 13):  # floor tiles in perspective
        cv2.line(image, (int(width / 2 + (x - width / 2) * 0.3), horizon), (int(x), height), (40, 40, 40), 1)
    for y in np.geomspace(1, height - horizon, 6):
        cv2.line(image, (0, horizon + int(y)), (width, horizon + int(y)), (40, 40, 40), 1)
    noise = rng.normal(0, 4, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def _position(motion: str, t: float, lane: tuple[float, float], base_y: float, height: float, phase: float,
              speed: float) -> tuple[float, float, bool]:
    """Centre x, feet y and facing (True = flipped) of a person at time ``t``."""
    left, right = lane
    centre = (left + right) / 2
    if motion == "walking":
        span = max(right - left, 1.0)
        travel = (t * speed + phase * span) % (2 * span)
        x = left + (travel if travel < span else 2 * span - travel)
        return x, base_y + 3 * math.sin(2 * math.pi * 2 * t), travel >= span
    if motion == "jumping":
        hop = abs(math.sin(math.pi * (1.4 * t + phase)))
        return centre, base_y - 0.14 * height * hop, False
    if motion == "standing":
        return centre + 2 * math.sin(2 * math.pi * 0.5 * t + phase), base_y, False
    raise ValueError(f"unknown motion {motion!r}; expected one of {MOTIONS}")


def _paste(frame: np.ndarray, person: np.ndarray, alpha: np.ndarray, cx: float, feet_y: float) -> None:
    """Alpha-blend ``person`` into ``frame`` with its bottom centre at (cx, feet_y), clipped to the frame."""
    ph, pw = person.shape[:2]
    x0, y0 = int(round(cx - pw / 2)), int(round(feet_y - ph))
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + pw, frame.shape[1]), min(y0 + ph, frame.shape[0])
    if fx1 <= fx0 or fy1 <= fy0:
        return
    src = person[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0].astype(np.float32)
    a = alpha[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    dst = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    frame[fy0:fy1, fx0:fx1] = (src * a + dst * (1 - a)).astype(np.uint8)


def render_clip(spec: ClipSpec) -> Iterator[np.ndarray]:
    """Yield the BGR frames of one clip; deterministic for a given spec."""
    rng = np.random.default_rng(spec.seed)
    background = render_background(spec.width, spec.height, rng)
    cutouts = person_cutouts()
    chosen = rng.choice(len(cutouts), size=spec.persons, replace=spec.persons > len(cutouts))
    lane_w = spec.width / max(spec.persons, 1)  # 0 persons: an empty scene
    people = []
    for i, idx in enumerate(chosen):
        source = cutouts[int(idx)]
        h = int(spec.height * rng.uniform(0.5, 0.66))
        w = max(int(source.shape[1] * h / source.shape[0]), 8)
        image = cv2.resize(source, (w, h), interpolation=cv2.INTER_AREA)
        lane = (i * lane_w + w / 2 + 4, (i + 1) * lane_w - w / 2 - 4)
        if lane[0] > lane[1]:
            lane = ((lane[0] + lane[1]) / 2,) * 2
        people.append({
            "image": image, "flipped": cv2.flip(image, 1), "alpha": _feather_mask(h, w), "lane": lane,
            "base_y": spec.height * rng.uniform(0.9, 0.97), "phase": float(rng.uniform(0, 1)),
            "speed": float(rng.uniform(0.2, 0.3) * spec.height),  # about 1.4 m/s for a 1.7 m person
        })
    for n in range(int(round(spec.seconds * spec.fps))):
        t = n / spec.fps
        frame = background.copy()
        for p in people:
            x, y, flipped = _position(spec.motion, t, p["lane"], p["base_y"], spec.height, p["phase"], p["speed"])
            _paste(frame, p["flipped"] if flipped else p["image"], p["alpha"], x, y)
        yield frame


def write_clip(path: Path, spec: ClipSpec) -> Path:
    """Render ``spec`` into an .mp4 at ``path`` (written atomically)."""
    with VideoWriter(path, spec.fps, (spec.width, spec.height)) as out:
        for frame in render_clip(spec):
            out.write(frame)
    return Path(path)


def generate_dataset(
    root: Path,
    videos_per_class: int = 4,
    motions: Sequence[str] = MOTIONS,
    seed: int = 0,
    seconds: float = 3.0,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``root/<motion>/<motion>_<i>.mp4`` clips with 1-2 people, at 20, 25 or 30 fps.

    Existing clips are kept unless ``overwrite``: they are identical for the same seed anyway.
    """
    paths = []
    for c, motion in enumerate(motions):
        for i in range(videos_per_class):
            clip_seed = seed * 100_003 + c * 1_000 + i
            rng = np.random.default_rng(clip_seed)
            spec = ClipSpec(motion=motion, persons=int(rng.integers(1, 3)), fps=float(rng.choice([20, 25, 30])),
                            seconds=seconds, seed=clip_seed)
            path = Path(root) / motion / f"{motion}_{i:03d}.mp4"
            if overwrite or not path.exists():
                write_clip(path, spec)
            paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: generate a sample dataset."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("datasets/sample_clips"), help="output folder")
    parser.add_argument("--videos-per-class", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    paths = generate_dataset(args.out, args.videos_per_class, MOTIONS, args.seed, args.seconds, args.overwrite)
    print(f"{len(paths)} sample clips ({', '.join(MOTIONS)}) in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def write_frames_tree(
    frames_dir: Path,
    videos_per_class: int,
    persons_per_video: int,
    frames_per_person: int,
    classes: Sequence[str] = ("fight", "walk"),
    fps: float = 30.0,
    target_fps: float = 15.0,
    image_size: int = 0,
    seed: int = 0,
) -> int:
    """Lay out a stage 1 output tree, for tests and benchmarks that need no detector.

    With ``image_size`` 0 the crop files are empty (stage 2 only lists them). Otherwise they are
    small real JPEGs whose brightness depends on the class, and ``tracks.csv`` holds boxes that
    move at a class-dependent speed, so a classifier can learn both. Returns the number of person
    folders. Every ``meta.json`` says "done"; crops are kept as ``target_fps`` keeps them.
    """
    step = max(int(round(fps / target_fps)), 1) if target_fps > 0 else 1
    rng = np.random.default_rng(seed)
    folders = 0
    for c, label in enumerate(classes):
        for v in range(videos_per_class):
            video_dir = Path(frames_dir) / label / f"{label}_{v:05d}"
            names = [f"frame_{i * step:06d}.jpg" for i in range(frames_per_person)]
            rows = []
            for p in range(1, persons_per_video + 1):
                person_dir = video_dir / f"person_{p}"
                person_dir.mkdir(parents=True, exist_ok=True)
                for i, name in enumerate(names):
                    if image_size:
                        level = 40 + 170 * c / max(len(classes) - 1, 1)
                        image = np.clip(rng.normal(level, 25, (image_size, image_size, 3)), 0, 255).astype(np.uint8)
                        cv2.imwrite(str(person_dir / name), image)
                        x = 50.0 * p + 3.0 * c * i
                        rows.append((i * step, f"{i * step / fps:.3f}", p, p, x, 40.0, x + 30, 120.0, 0.9))
                    else:
                        (person_dir / name).touch()
                folders += 1
            if image_size:
                files.write_csv(video_dir / "tracks.csv", TRACKS_HEADER, rows)
            files.write_json(video_dir / "meta.json", {
                "group": "", "class": label, "video": video_dir.name, "status": "done", "fps": fps,
                "frame_count": frames_per_person * step, "frames_kept": frames_per_person,
                "settings": {"target_fps": target_fps, "frame_width": image_size or 224,
                             "frame_height": image_size or 224},
                "persons": [{"person": p, "frames": frames_per_person} for p in range(1, persons_per_video + 1)],
            })
    return folders


# A standing person's 17 COCO keypoints, relative to the box centre, in box heights.
STANDING = np.array([[0, -0.4], [-0.03, -0.42], [0.03, -0.42], [-0.06, -0.4], [0.06, -0.4], [-0.12, -0.25],
                     [0.12, -0.25], [-0.15, -0.05], [0.15, -0.05], [-0.16, 0.1], [0.16, 0.1], [-0.08, 0.05],
                     [0.08, 0.05], [-0.08, 0.25], [0.08, 0.25], [-0.08, 0.45], [0.08, 0.45]])


def write_annotated_clips(root: Path, objects: dict[str, str], videos_per_class: int, seconds: float = 2.0,
                          fps: float = 10.0, seed: int = 0) -> tuple[Path, Path]:
    """Clips whose class only an object tells, with their annotation files: ``root/clips/<class>/*.mp4`` and
    ``root/annotations/<class>/*.json`` (PoseTrack/COCO: one person's track and keypoints, and the class's object
    in their right hand). ``objects`` maps each class to its object's COCO name; the people stand and sway the same
    way in every class. Returns the clips and annotations folders.
    """
    names = sorted(set(objects.values()))
    categories = [{"id": 1, "name": "person"}] + [{"id": 2 + k, "name": n} for k, n in enumerate(names)]
    width, height = 320, 240
    for c, (label, item) in enumerate(sorted(objects.items())):
        for v in range(videos_per_class):
            rng = np.random.default_rng(seed * 100_003 + c * 1_000 + v)
            background = render_background(width, height, rng)
            cx, cy, h = rng.uniform(100, 220), rng.uniform(110, 130), rng.uniform(140, 170)
            images, annotations = [], []
            with VideoWriter(Path(root) / "clips" / label / f"{label}_{v:03d}.mp4", fps, (width, height)) as out:
                for k in range(int(seconds * fps)):
                    x = cx + 6 * math.sin(2 * math.pi * 0.5 * k / fps + v)  # a slow sway, alike in every class
                    box = (x - 0.2 * h, cy - 0.5 * h, x + 0.2 * h, cy + 0.5 * h)
                    points = STANDING * h + (x, cy) + rng.normal(0, 1.5, STANDING.shape)
                    wrist = points[10]
                    frame = background.copy()
                    cv2.rectangle(frame, (int(box[0]), int(box[1])), (int(box[2]), int(box[3])), (90, 90, 90), -1)
                    out.write(frame)
                    images.append({"id": k + 1, "frame_index": k})
                    keypoints = np.concatenate([points, np.full((17, 1), 2.0)], axis=1).reshape(-1)
                    annotations.append({"image_id": k + 1, "track_id": 1, "category_id": 1,
                                        "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                                        "keypoints": [round(float(p), 2) for p in keypoints]})
                    annotations.append({"image_id": k + 1, "category_id": 2 + names.index(item),
                                        "bbox": [float(wrist[0]) - 5, float(wrist[1]) - 8, 10, 16]})
            files.write_json(Path(root) / "annotations" / label / f"{label}_{v:03d}.json",
                             {"images": images, "annotations": annotations, "categories": categories})
    return Path(root) / "clips", Path(root) / "annotations"
