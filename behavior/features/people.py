"""People in one frame and how they stand to each other: the COCO keypoint layout, a person's box and keypoints,
distances between boxes, the nearest other person, and how far a wrist or ankle reaches towards someone's body.

All in body heights, so the same scene gives the same numbers at any resolution (``behavior.features.streams``
builds the interaction, reach and reached streams from these).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

KEYPOINTS = 17  # COCO order: nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles (left, right)
LIMB_DISTANCE_CAP = 3.0  # limb-to-body distances beyond this many body heights (or unseen limbs) read as this
KEYPOINT_MIN_CONF = 0.3  # keypoints below this confidence count as not seen
LIMBS = (9, 10, 15, 16)  # left wrist, right wrist, left ankle, right ankle
TARGETS = (0, 1, 2, 3, 4, 5, 6, 11, 12)  # head (nose, eyes, ears) and torso (shoulders, hips): where a blow lands
TORSO = (5, 6, 11, 12)  # shoulders and hips: where a limb reaches out from
SKELETON = ((5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14),
            (14, 16), (0, 1), (0, 2), (1, 3), (2, 4))  # COCO limbs, for drawing


@dataclass(frozen=True)
class Person:
    """One tracked person in one frame: an id stable within the video, the box and (optionally) keypoints.

    ``keypoints`` is (17, 3): x, y in source pixels and a confidence; rows of NaN (or ``None`` for the whole
    person) mean not seen.
    """

    track: int
    box: tuple[float, float, float, float]
    keypoints: np.ndarray | None = None


def centre_height(box: tuple[float, float, float, float]) -> tuple[float, float, float]:
    x1, y1, x2, y2 = box
    return (x1 + x2) / 2, (y1 + y2) / 2, max(y2 - y1, 1.0)


def seen_keypoints(keypoints: np.ndarray | None) -> np.ndarray:
    """Which of the 17 keypoints are seen (finite and confident enough)."""
    if keypoints is None:
        return np.zeros(KEYPOINTS, bool)
    return np.isfinite(keypoints).all(axis=1) & (np.nan_to_num(keypoints[:, 2]) >= KEYPOINT_MIN_CONF)


def box_distance(point: tuple[float, float], box: tuple[float, float, float, float]) -> float:
    """Distance from a point to a box (0 inside it), in pixels.

    Example:
        >>> box_distance((0, 0), (3, 4, 10, 10)), box_distance((5, 5), (3, 4, 10, 10))
        (5.0, 0.0)
    """
    x, y = point
    x1, y1, x2, y2 = box
    dx = max(x1 - x, 0.0, x - x2)
    dy = max(y1 - y, 0.0, y - y2)
    return math.hypot(dx, dy)


def box_gap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Smallest distance between two boxes (0 when they overlap), in pixels."""
    dx = max(b[0] - a[2], a[0] - b[2], 0.0)
    dy = max(b[1] - a[3], a[1] - b[3], 0.0)
    return math.hypot(dx, dy)


def centre_distance(me: Person, other: Person) -> float:
    """Distance between two people's box centres, in ``me``'s box heights."""
    cx, cy, h = centre_height(me.box)
    ox, oy, _ = centre_height(other.box)
    return math.hypot(ox - cx, oy - cy) / h


def nearest_other(me: Person, others: Sequence[Person]) -> tuple[Person | None, float]:
    """The other person whose box centre is nearest to ``me``'s, and that distance in ``me``'s box heights.

    Example:
        >>> a, b, c = Person(1, (0, 0, 10, 20)), Person(2, (30, 0, 40, 20)), Person(3, (50, 0, 60, 20))
        >>> nearest_other(a, [c, b])
        (Person(track=2, box=(30, 0, 40, 20), keypoints=None), 1.5)
    """
    nearest, best = None, math.inf
    for other in others:
        distance = centre_distance(me, other)
        if distance < best:
            nearest, best = other, distance
    return nearest, best


def limb_extension(me: Person, others: Sequence[Person]) -> float:
    """How far ``me``'s furthest wrist or ankle reaches out from their torso towards the nearest other person,
    in body heights (0 when alone, reaching away, or without a torso and limbs): who strikes, pushes or points.

    Example:
        >>> kp = np.full((KEYPOINTS, 3), np.nan)
        >>> kp[list(TORSO)] = (5, 10, 1.0)
        >>> kp[10] = (9, 8, 1.0)  # the right wrist, 4 px towards the other person
        >>> a, b = Person(1, (0, 0, 10, 20), kp), Person(2, (30, 0, 40, 20))
        >>> limb_extension(a, [b]), limb_extension(a, [])
        (0.2, 0.0)
    """
    partner, _ = nearest_other(me, others)
    return 0.0 if partner is None else float(max(0.0, limb_extensions(me, partner).max()))


def limb_extensions(me: Person, partner: Person) -> np.ndarray:
    """How far each of ``me``'s wrists and ankles (LIMBS) is out from their torso towards ``partner``, in body
    heights (4,): negative when it points away, 0 when the limb or the torso is not seen.

    Example:
        >>> kp = np.full((KEYPOINTS, 3), np.nan)
        >>> kp[list(TORSO)] = (5, 10, 1.0)
        >>> kp[15] = (2, 19, 1.0)  # the left ankle, 3 px away from the other person
        >>> limb_extensions(Person(1, (0, 0, 10, 20), kp), Person(2, (30, 0, 40, 20))).tolist()
        [0.0, 0.0, -0.15, 0.0]
    """
    out = np.zeros(len(LIMBS))
    seen = seen_keypoints(me.keypoints)
    torso = [k for k in TORSO if seen[k]]
    if not torso:
        return out
    cx, _, h = centre_height(me.box)
    toward = 1.0 if centre_height(partner.box)[0] >= cx else -1.0
    centre = float(me.keypoints[torso, 0].mean())
    for n, k in enumerate(LIMBS):
        if seen[k]:
            out[n] = toward * (float(me.keypoints[k, 0]) - centre) / h
    return out


@dataclass(frozen=True)
class LimbContact:
    """Where one person's limbs are against the nearest other person in one frame: what ``reach`` and ``reached``
    both read, computed once per person and frame (``limb_contact``)."""

    partner: Person | None  # the nearest other person; None when alone
    distances: np.ndarray  # (4,) each wrist and ankle to the partner's body, body heights; NaN = not seen or alone
    partner_pose: bool  # the partner's head or torso keypoints were seen (else their box was the target)


def limb_contact(me: Person, others: Sequence[Person]) -> LimbContact:
    """``me``'s nearest other person and each of ``me``'s limbs' distance to their body (``limb_distances``).

    Example:
        >>> limb_contact(Person(1, (0, 0, 10, 20)), []).partner is None
        True
    """
    partner, _ = nearest_other(me, others)
    if partner is None:
        return LimbContact(None, np.full(len(LIMBS), np.nan, np.float32), False)
    return LimbContact(partner, *limb_distances(me, partner))


def limb_distances(me: Person, partner: Person) -> tuple[np.ndarray, bool]:
    """Each of ``me``'s wrists and ankles' distance to ``partner``'s nearest head or torso keypoint (their box when
    they have no pose), in ``me``'s body heights (4,), NaN for a limb not seen; and whether the partner has a pose.
    """
    _, _, h = centre_height(me.box)
    mine, theirs = seen_keypoints(me.keypoints), seen_keypoints(partner.keypoints)
    targets = [k for k in TARGETS if theirs[k]]
    distances = np.full(len(LIMBS), np.nan, np.float32)
    for n, k in enumerate(LIMBS):
        if not mine[k]:
            continue
        x, y = float(me.keypoints[k, 0]), float(me.keypoints[k, 1])
        if targets:
            d = min(math.hypot(x - partner.keypoints[j, 0], y - partner.keypoints[j, 1]) for j in targets)
        else:
            d = box_distance((x, y), partner.box)
        distances[n] = min(d / h, LIMB_DISTANCE_CAP)
    return distances, bool(targets)
