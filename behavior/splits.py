"""Train/val/test splits made by video, never by sequence, so no test frame is seen in training.

Example:
    >>> split_counts(10, (0.7, 0.15, 0.15))
    [7, 2, 1]
    >>> assign_splits({"fight": ["fight/a", "fight/b", "fight/c"]}, (0.7, 0.15, 0.15), seed=0)
    {'fight/c': 'train', 'fight/b': 'val', 'fight/a': 'test'}
"""

from __future__ import annotations

import csv
import logging
import math
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from behavior.errors import InputError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def validate_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Check SPLIT_FRACTIONS by the rules of ``behavior.settings``: three numbers summing to 1, train and val > 0."""
    from behavior import settings

    settings.validate({"SPLIT_FRACTIONS": tuple(fractions)})
    return (float(fractions[0]), float(fractions[1]), float(fractions[2]))


def split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """How many of ``n`` videos go to train, val and test.

    Largest remainders first; then every split with a positive fraction gets at least one video,
    taken from the largest split, as long as that split keeps one.
    """
    raw = [n * f for f in fractions]
    counts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    for i, f in enumerate(fractions):
        if f > 0 and counts[i] == 0:
            donor = max(range(len(counts)), key=lambda j: (counts[j], -j))
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[i] += 1
    return counts


def assign_splits(videos_by_class: dict[str, list[str]], fractions: Sequence[float], seed: int) -> dict[str, str]:
    """Map every video key to a split, stratified by class and deterministic by ``seed``.

    Each class is shuffled with its own generator (seeded by ``seed`` and the class name), so
    adding a class does not reshuffle the others. Warns for a class missing from a split.
    """
    fractions = validate_fractions(fractions)
    split_of: dict[str, str] = {}
    for label in sorted(videos_by_class):
        keys = sorted(videos_by_class[label])
        rng = np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))])
        shuffled = [keys[i] for i in rng.permutation(len(keys))]
        counts = split_counts(len(keys), fractions)
        start = 0
        for split, count in zip(SPLITS, counts, strict=True):
            for key in shuffled[start : start + count]:
                split_of[key] = split
            start += count
            if count == 0 and fractions[SPLITS.index(split)] > 0:
                log.warning("class %s has too few videos (%d) to reach every split: none in %s",
                            label, len(keys), split)
    return split_of


def read_split_file(path: Path, video_keys: Sequence[str]) -> dict[str, str]:
    """Read a ``video,split`` CSV (a published or earlier split) and map it onto ``video_keys``.

    A row's video may be the key (``class/video`` or ``group/class/video``), the video's name, or
    its file name with extension. Videos the file does not list are left out, with a warning.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"split file not found: {path}")
    by_name: dict[str, list[str]] = {}
    for key in video_keys:
        by_name.setdefault(key.rsplit("/", 1)[-1], []).append(key)
    known = set(video_keys)
    split_of: dict[str, str] = {}
    unmatched = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"video", "split"} <= {c.strip() for c in reader.fieldnames}:
            raise InputError(f"split file {path} needs a header with the columns video,split")
        for line, row in enumerate(reader, start=2):
            video, split = (row.get("video") or "").strip(), (row.get("split") or "").strip().lower()
            if split not in SPLITS:
                raise InputError(f"{path}:{line}: split must be one of {', '.join(SPLITS)}, got {split!r}")
            if video in known:
                keys = [video]
            else:
                keys = by_name.get(video) or by_name.get(Path(video).stem) or []
            if len(keys) > 1:
                raise InputError(f"{path}:{line}: {video!r} names several videos ({', '.join(keys)}); use class/video")
            if not keys:
                unmatched.append(video)
                continue
            if keys[0] in split_of and split_of[keys[0]] != split:
                raise InputError(f"{path}:{line}: {video!r} is listed in two splits")
            split_of[keys[0]] = split
    if unmatched:
        log.warning("%d video(s) of the split file have no sequences here, e.g. %s", len(unmatched), unmatched[0])
    missing = [k for k in video_keys if k not in split_of]
    if missing:
        log.warning("%d video(s) are not in the split file and are left out, e.g. %s", len(missing), missing[0])
    return split_of
