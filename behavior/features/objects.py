"""The objects stream's definition: what a person handles or stands by, from the detector's non-person boxes.

Per person and frame, the ``NEAREST`` objects within ``NEAR`` body heights of the person's box, nearest first, each
as one slot of ``slot_dim(classes)`` numbers:

- its class, one-hot over the object classes (the stream's own linear layer makes it a learned class embedding);
- where it is: its centre relative to the person's box centre (x, y) and its log height, in body heights; how much
  of it lies inside the person's box;
- each wrist's distance to its box (in body heights, ``LIMB_DISTANCE_CAP`` when the wrist is not seen);
- ``held``: a seen wrist within ``HOLD_REACH`` body heights of it (inside its box counts).

A slot with no object has its ``none`` flag set and every other number 0, so "nothing near" is never a fake object.
Everything is relative to the person's height, so the same scene gives the same numbers at any resolution.

Example:
    >>> person = Person(1, (0, 0, 10, 20))
    >>> vector = objects_vector(person, [SceneObject("cup", (12, 8, 14, 11), 0.8)], ("cup", "knife"))
    >>> vector.shape, vector[:2].tolist(), float(vector[2 + NONE]), float(vector[10 + 2 + NONE])  # a cup; no second
    ((20,), [1.0, 0.0], 0.0, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from behavior.features.people import LIMB_DISTANCE_CAP, Person, box_distance, box_gap, centre_height, seen_keypoints
from behavior.io.frames import SceneObject

NEAREST = 2  # objects per person and frame, nearest first
NEAR = 1.0  # objects further than this many body heights from the person's box are not theirs
HOLD_REACH = 0.1  # a wrist this close to an object's box (body heights) holds it
WRISTS = (9, 10)  # COCO left and right wrist
# the numbers of a slot after its one-hot class, in order:
NONE, DX, DY, LOG_SCALE, OVERLAP, LEFT_WRIST, RIGHT_WRIST, HELD = range(8)
GEOMETRY = 8


def slot_dim(classes: Sequence[str]) -> int:
    """Numbers per object slot: the one-hot class, then the geometry above.

    Example:
        >>> slot_dim(("cup", "knife", "chair"))
        11
    """
    return len(classes) + GEOMETRY


def objects_dim(classes: Sequence[str]) -> int:
    """Length of the objects stream's vector for these object classes."""
    return NEAREST * slot_dim(classes)


def near_objects(person: Person, objects: Sequence[SceneObject]) -> list[SceneObject]:
    """The objects within ``NEAR`` body heights of the person's box, nearest first (at most ``NEAREST``)."""
    height = centre_height(person.box)[2]
    gaps = [(box_gap(person.box, o.box) / height, k) for k, o in enumerate(objects)]
    return [objects[k] for gap, k in sorted(gaps) if gap <= NEAR][:NEAREST]


def object_slot(person: Person, item: SceneObject, classes: Sequence[str]) -> np.ndarray:
    """One object's slot as seen from ``person``."""
    cx, cy, height = centre_height(person.box)
    ox, oy, object_height = centre_height(item.box)
    slot = np.zeros(slot_dim(classes), np.float32)
    slot[classes.index(item.name)] = 1.0
    geometry = slot[len(classes):]
    geometry[DX], geometry[DY] = (ox - cx) / height, (oy - cy) / height
    geometry[LOG_SCALE] = math.log(object_height / height)
    geometry[OVERLAP] = _inside_share(item.box, person.box)
    seen = seen_keypoints(person.keypoints)
    for k, wrist in zip((LEFT_WRIST, RIGHT_WRIST), WRISTS, strict=True):
        reach = LIMB_DISTANCE_CAP
        if seen[wrist]:
            reach = min(box_distance(tuple(person.keypoints[wrist, :2]), item.box) / height, LIMB_DISTANCE_CAP)
        geometry[k] = reach
    geometry[HELD] = float(min(geometry[LEFT_WRIST], geometry[RIGHT_WRIST]) <= HOLD_REACH)
    return slot


def objects_vector(person: Person, objects: Sequence[SceneObject], classes: Sequence[str]) -> np.ndarray:
    """The objects stream of one person in one frame: ``NEAREST`` slots, empty ones flagged ``none``.

    Objects of classes outside ``classes`` are not read.
    """
    known = [o for o in objects if o.name in classes]
    slots = [object_slot(person, o, classes) for o in near_objects(person, known)]
    while len(slots) < NEAREST:
        empty = np.zeros(slot_dim(classes), np.float32)
        empty[len(classes) + NONE] = 1.0
        slots.append(empty)
    return np.concatenate(slots)


def _inside_share(box: tuple[float, float, float, float], other: tuple[float, float, float, float]) -> float:
    """The share of ``box``'s area that lies inside ``other``."""
    w = max(0.0, min(box[2], other[2]) - max(box[0], other[0]))
    h = max(0.0, min(box[3], other[3]) - max(box[1], other[1]))
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)
    return w * h / area
