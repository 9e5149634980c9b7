"""What the network reads about each person per frame, besides their crop: motion, pose and interaction.

A *stream* is one kind of per-frame input. ``appearance`` is the crop's MobileNetV2 features
(``behavior.features.appearance``); the three others are small vectors computed here from boxes and keypoints,
by the same code in training (from stage 1's tracks.csv and the keypoint cache) and in prediction
(from the live tracks), so that a person gives the same numbers both ways:

- ``motion`` (4): the box centre's velocity and scale change per second, in body heights, and its aspect;
- ``pose`` (86): whether the person has keypoints, each keypoint's confidence, its position relative to
  the box centre in box heights, and its velocity per second; a keypoint not seen is 0 with confidence 0,
  never a position that looks real;
- ``interaction`` (11): the nearest other person (relative position and scale, distance and closing speed,
  how far this person's wrists and ankles are from their body) and how many people are within reach; a
  person alone gets the ``alone`` flag and zeros, never a made-up neighbour;
- ``reach`` (9): how far each of this person's wrists and ankles is from the nearest other person's head and
  torso keypoints (their box when they have no pose), in body heights, and how fast that distance changes per
  second: a fist or foot closing on someone's body. Only the acting person's limbs close in, unlike the
  symmetric interaction quantities (on UT-Interaction it helped the class more than who acts: docs/RESULTS.md);
- ``reached`` (8): the closest each wrist and ankle has come to another person's head and torso so far in the
  person's track, and the furthest it has reached out towards the nearest other person so far, in body heights:
  the moment of a strike, remembered in the seconds after it (a fist that landed, or a foot);
- ``objects`` (``objects.objects_dim``): the objects nearest the person, their class, where they are and whether a
  wrist holds one (``behavior.features.objects``), from the detector's non-person boxes of the same frame.

Every quantity is relative to the person's own box height and per second, so the same movement gives the
same numbers at any resolution, position and frame rate.

Example:
    >>> state = StreamState(("motion", "interaction"))
    >>> a, b = Person(1, (0, 0, 10, 20)), Person(2, (30, 0, 40, 20))
    >>> vectors = state.step([a, b], t=0.0)
    >>> vectors[0].shape, float(vectors[0][MOTION_DIM])  # the alone flag of person 1
    ((15,), 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache

import numpy as np
import torch

from behavior.features.objects import (
    DX,
    GEOMETRY,
    LEFT_WRIST,
    NEAREST,
    RIGHT_WRIST,
    objects_dim,
    objects_vector,
    slot_dim,
)
from behavior.features.people import (
    KEYPOINT_MIN_CONF,
    KEYPOINTS,
    LIMB_DISTANCE_CAP,
    LIMBS,
    LimbContact,
    Person,
    box_distance,
    box_gap,
    centre_distance,
    centre_height,
    limb_contact,
    limb_extensions,
    seen_keypoints,
)
from behavior.io.frames import SceneObject
from behavior.settings import STREAMS

MOTION_DIM = 4  # x and y velocity of the box centre, log scale change, aspect ratio
POSE_DIM = 1 + KEYPOINTS * 5  # has-pose flag, confidences, x/y relative to the box, x/y velocity
INTERACTION_DIM = 11  # alone, dx, dy, log scale, distance, closing speed, 4 limb distances, people within reach
REACH_DIM = 9  # partner has a pose; 4 limb-to-partner distances; their rates of change
REACHED_DIM = 8  # the 4 limbs' closest distance to another person's body so far; their furthest extension so far
DIMS = {"motion": MOTION_DIM, "pose": POSE_DIM, "interaction": INTERACTION_DIM,
        "reach": REACH_DIM, "reached": REACHED_DIM}  # appearance: features.FEATURE_DIM
VECTOR_STREAMS = (*DIMS, "objects")  # the streams of this module; "objects" is as long as its classes make it
KEYPOINT_STREAMS = frozenset({"pose", "interaction", "reach", "reached"})  # the streams that need the pose model

MOTION_CLIP = 5.0  # motion values are clipped to +-5 (body heights per second, log-scale per second)
POSE_VELOCITY_CLIP = 10.0  # keypoint velocities, body heights per second
REACH = 0.5  # another person whose box is closer than this many body heights is within reach
FLIP_INDEX = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)  # left <-> right keypoints
REACH_SPEED_CLIP = 10.0  # limb approach speeds, body heights per second

MotionState = tuple[float, float, float, float]  # time, centre x, centre y, height of the previous box
ReachState = tuple[float, int, np.ndarray]  # time, the partner's track, limb distances (NaN = limb not seen)
ReachedState = np.ndarray  # the ``reached`` vector so far: closest limb distances, then furthest extensions


def as_recorded(box: Sequence[float], t: float) -> tuple[tuple[float, float, float, float], float]:
    """A box and time as stage 1's tracks.csv records them (0.1 px, 1 ms): prediction feeds the streams these,
    so a live person gives exactly the numbers training read.

    Example:
        >>> as_recorded((1.04, 2.06, 3.0, 4.0), 0.06666)
        ((1.0, 2.1, 3.0, 4.0), 0.067)
    """
    x1, y1, x2, y2 = (round(float(v), 1) for v in box)
    return (x1, y1, x2, y2), round(float(t), 3)


def vector_streams(inputs: Sequence[str]) -> list[str]:
    """The non-appearance streams of ``inputs``, in the fixed order their vectors are concatenated."""
    return [s for s in STREAMS if s in inputs and s in VECTOR_STREAMS]


def stream_dims(inputs: Sequence[str], object_classes: Sequence[str] = ()) -> dict[str, int]:
    """The length of each vector stream of ``inputs``, in ``vector_streams`` order (``objects``' depends on the
    object classes it reads).

    Example:
        >>> stream_dims(("appearance", "objects", "motion"), ("cup", "knife"))
        {'motion': 4, 'objects': 20}
    """
    return {s: objects_dim(object_classes) if s == "objects" else DIMS[s] for s in vector_streams(inputs)}


def vector_dim(inputs: Sequence[str], object_classes: Sequence[str] = ()) -> int:
    """Length of the per-frame vector of the non-appearance streams in ``inputs``.

    Example:
        >>> vector_dim(("appearance", "motion", "pose"))
        90
    """
    return sum(stream_dims(inputs, object_classes).values())


def motion_step(
    box: tuple[float, float, float, float], t: float, prev: MotionState | None
) -> tuple[np.ndarray, MotionState]:
    """One box's motion features relative to the same person's previous box, and the new state.

    Centre velocity (x, y) in body heights per second, log scale change per second, aspect ratio.
    """
    x1, y1, x2, y2 = box
    w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    vec = np.zeros(MOTION_DIM, np.float32)
    vec[3] = w / h
    if prev is not None and t > prev[0]:
        dt = t - prev[0]
        vec[0] = (cx - prev[1]) / prev[3] / dt
        vec[1] = (cy - prev[2]) / prev[3] / dt
        vec[2] = math.log(h / prev[3]) / dt
    return np.clip(vec, -MOTION_CLIP, MOTION_CLIP), (t, cx, cy, h)


def relative_keypoints(keypoints: np.ndarray | None, box: tuple[float, float, float, float]
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints relative to the box centre in box heights (17, 2), and their confidences (17,), 0 where unseen."""
    rel = np.zeros((KEYPOINTS, 2), np.float32)
    conf = np.zeros(KEYPOINTS, np.float32)
    if keypoints is None:
        return rel, conf
    cx, cy, h = centre_height(box)
    seen = seen_keypoints(keypoints)
    rel[seen, 0] = (keypoints[seen, 0] - cx) / h
    rel[seen, 1] = (keypoints[seen, 1] - cy) / h
    conf[seen] = keypoints[seen, 2]
    return rel, conf


def pose_vector(rel: np.ndarray, conf: np.ndarray, t: float,
                prev: tuple[float, np.ndarray, np.ndarray] | None) -> np.ndarray:
    """The pose stream of one frame: has-pose flag, confidences, relative positions, velocities per second.

    ``prev`` is the same person's (time, rel, conf) at their previous kept frame; a keypoint's velocity
    is 0 unless it was seen in both frames.
    """
    vel = np.zeros((KEYPOINTS, 2), np.float32)
    if prev is not None and t > prev[0]:
        both = (conf > 0) & (prev[2] > 0)
        vel[both] = (rel[both] - prev[1][both]) / (t - prev[0])
    vel = np.clip(vel, -POSE_VELOCITY_CLIP, POSE_VELOCITY_CLIP)
    has_pose = np.float32(conf.any())
    return np.concatenate([[has_pose], conf, rel.reshape(-1), vel.reshape(-1)]).astype(np.float32)


def reach_step(contact: LimbContact, t: float, prev: ReachState | None) -> tuple[np.ndarray, ReachState | None]:
    """The reach stream of one person in one frame from their ``limb_contact``, and what to remember for the next
    frame.

    A limb's approach speed needs the same partner and the limb seen in both frames; otherwise it is 0.
    """
    vec = np.zeros(REACH_DIM, np.float32)
    vec[1:5] = LIMB_DISTANCE_CAP
    partner, distances = contact.partner, contact.distances
    if partner is None:
        return vec, None
    vec[0] = float(contact.partner_pose)
    seen = np.isfinite(distances)
    vec[1:5][seen] = distances[seen]
    if prev is not None and prev[1] == partner.track and t > prev[0]:
        both = np.isfinite(distances) & np.isfinite(prev[2])
        vec[5:][both] = np.clip((distances[both] - prev[2][both]) / (t - prev[0]), -REACH_SPEED_CLIP,
                                REACH_SPEED_CLIP)
    return vec, (t, partner.track, distances)


def reached_step(me: Person, contact: LimbContact, prev: ReachedState | None) -> ReachedState:
    """The reached stream of one person in one frame (it is also the state for the next frame): each limb's
    closest distance to the nearest other person's body and furthest extension towards them, over the track
    so far. A limb never seen near anyone reads LIMB_DISTANCE_CAP and 0.

    Example:
        >>> from behavior.features.people import TORSO
        >>> kp = np.full((KEYPOINTS, 3), np.nan)
        >>> kp[list(TORSO)] = (5, 10, 1.0)
        >>> kp[10] = (9, 8, 1.0)  # the right wrist, 4 px out towards the other person
        >>> a, b = Person(1, (0, 0, 10, 20), kp), Person(2, (30, 0, 40, 20))
        >>> first = reached_step(a, limb_contact(a, [b]), None)
        >>> round(float(first[1]), 2), round(float(first[5]), 2)  # right wrist: 1.05 heights away, 0.2 out
        (1.05, 0.2)
        >>> no_pose = Person(1, (0, 0, 10, 20))
        >>> later = reached_step(no_pose, limb_contact(no_pose, [b]), first)  # no pose now: the past is kept
        >>> bool((later == first).all()), reached_step(a, limb_contact(a, []), None)[:4].tolist()
        (True, [3.0, 3.0, 3.0, 3.0])
    """
    vec = prev.copy() if prev is not None else np.concatenate(
        [np.full(len(LIMBS), LIMB_DISTANCE_CAP, np.float32), np.zeros(len(LIMBS), np.float32)])
    if contact.partner is None:
        return vec
    seen = np.isfinite(contact.distances)
    vec[:4][seen] = np.minimum(vec[:4][seen], contact.distances[seen])
    vec[4:] = np.maximum(vec[4:], limb_extensions(me, contact.partner))
    return vec


def interaction_vector(me: Person, others: Sequence[Person], t: float,
                       prev: dict[int, tuple[float, float]]) -> tuple[np.ndarray, dict[int, tuple[float, float]]]:
    """The interaction stream of one person in one frame, and the distances to remember for the next frame.

    ``prev`` maps another person's track to (time, distance) as seen from ``me`` at its previous frame;
    the closing speed (body heights per second, negative when approaching) needs the same neighbour there.
    """
    vec = np.zeros(INTERACTION_DIM, np.float32)
    if not others:
        vec[0] = 1.0  # alone
        return vec, {}
    cx, cy, h = centre_height(me.box)
    seen = {o.track: (t, centre_distance(me, o)) for o in others}
    nearest = min(others, key=lambda o: seen[o.track][1])  # the first of equals, as nearest_other
    best = seen[nearest.track][1]
    ox, oy, oh = centre_height(nearest.box)
    vec[1], vec[2] = (ox - cx) / h, (oy - cy) / h
    vec[3] = math.log(oh / h)
    vec[4] = best
    before = prev.get(nearest.track)
    if before is not None and t > before[0]:
        vec[5] = (best - before[1]) / (t - before[0])
    for n, k in enumerate(LIMBS):
        point = me.keypoints[k] if me.keypoints is not None else None
        if point is not None and np.isfinite(point).all() and point[2] >= KEYPOINT_MIN_CONF:
            vec[6 + n] = min(box_distance((float(point[0]), float(point[1])), nearest.box) / h, LIMB_DISTANCE_CAP)
        else:
            vec[6 + n] = LIMB_DISTANCE_CAP
    vec[10] = sum(box_gap(me.box, o.box) / h < REACH for o in others)
    vec[[1, 2, 4]] = np.clip(vec[[1, 2, 4]], -10.0, 10.0)
    vec[3] = float(np.clip(vec[3], -MOTION_CLIP, MOTION_CLIP))
    vec[5] = float(np.clip(vec[5], -MOTION_CLIP, MOTION_CLIP))
    return vec, seen


class StreamState:
    """The per-video memory the streams need (each person's previous frame), fed one frame at a time.

    Training replays a video's tracks.csv through it, prediction its live tracks: the same code and order.
    """

    def __init__(self, inputs: Sequence[str], object_classes: Sequence[str] = ()) -> None:
        self.streams = vector_streams(inputs)
        self.object_classes = tuple(object_classes)
        self.limbs = bool({"reach", "reached"} & set(self.streams))  # the streams that read limb_contact
        self.motion: dict[int, MotionState] = {}
        self.pose: dict[int, tuple[float, np.ndarray, np.ndarray]] = {}
        self.distances: dict[int, dict[int, tuple[float, float]]] = {}
        self.reach: dict[int, ReachState | None] = {}
        self.reached: dict[int, ReachedState] = {}

    def step(self, people: Sequence[Person], t: float, objects: Sequence[SceneObject] = ()) -> list[np.ndarray]:
        """The concatenated stream vectors of every person in this frame (in ``people``'s order); ``objects`` are
        the frame's non-person detections (the ``objects`` stream)."""
        out = []
        for person in people:
            parts = []
            others = [p for p in people if p.track != person.track]
            contact = limb_contact(person, others) if self.limbs else None  # once for reach and reached
            for stream in self.streams:
                if stream == "motion":
                    vec, self.motion[person.track] = motion_step(person.box, t, self.motion.get(person.track))
                elif stream == "pose":
                    rel, conf = relative_keypoints(person.keypoints, person.box)
                    vec = pose_vector(rel, conf, t, self.pose.get(person.track))
                    self.pose[person.track] = (t, rel, conf)
                elif stream == "reach":
                    vec, self.reach[person.track] = reach_step(contact, t, self.reach.get(person.track))
                elif stream == "reached":
                    vec = self.reached[person.track] = reached_step(person, contact, self.reached.get(person.track))
                elif stream == "objects":
                    vec = objects_vector(person, objects, self.object_classes)
                else:
                    vec, self.distances[person.track] = interaction_vector(
                        person, others, t, self.distances.get(person.track, {}))
                parts.append(vec)
            out.append(np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32))
        return out

    def forget(self, track: int) -> None:
        """Drop a track that will not come back (prediction frees lost tracks)."""
        for memory in (self.motion, self.pose, self.distances, self.reach, self.reached):
            memory.pop(track, None)


def _objects_flip(offset: int, object_classes: Sequence[str]) -> tuple[list[int], list[float]]:
    """The objects stream mirrored: each slot's horizontal offset changes sign, its two wrists swap."""
    index: list[int] = []
    sign: list[float] = []
    wrists = {LEFT_WRIST: RIGHT_WRIST, RIGHT_WRIST: LEFT_WRIST}
    for slot in range(NEAREST):
        start = offset + slot * slot_dim(object_classes)
        index += [start + i for i in range(len(object_classes))]
        sign += [1.0] * len(object_classes)
        geometry = start + len(object_classes)
        index += [geometry + wrists.get(i, i) for i in range(GEOMETRY)]
        sign += [-1.0 if i == DX else 1.0 for i in range(GEOMETRY)]
    return index, sign


@cache
def _flip_permutation(streams: tuple[str, ...], object_classes: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Index and sign vectors that turn a vector of ``streams`` (``vector_streams``' order) into the one of the
    horizontally mirrored clip; built once per set of streams (every training item asks)."""
    index: list[int] = []
    sign: list[float] = []
    offset = 0
    for stream in streams:
        if stream == "motion":
            index += [offset + i for i in range(MOTION_DIM)]
            sign += [-1.0, 1.0, 1.0, 1.0]
        elif stream == "pose":
            index.append(offset)
            sign.append(1.0)
            index += [offset + 1 + FLIP_INDEX[k] for k in range(KEYPOINTS)]
            sign += [1.0] * KEYPOINTS
            for base in (1 + KEYPOINTS, 1 + 3 * KEYPOINTS):  # positions, then velocities: (17, 2)
                for k in range(KEYPOINTS):
                    index += [offset + base + 2 * FLIP_INDEX[k], offset + base + 2 * FLIP_INDEX[k] + 1]
                    sign += [-1.0, 1.0]
        elif stream == "reach":  # left and right limbs swap; distances and speeds do not change sign
            limbs = {1: 2, 2: 1, 3: 4, 4: 3, 5: 6, 6: 5, 7: 8, 8: 7}
            index += [offset + limbs.get(i, i) for i in range(REACH_DIM)]
            sign += [1.0] * REACH_DIM
        elif stream == "reached":  # left and right limbs swap; distances and extensions keep their sign
            limbs = {0: 1, 1: 0, 2: 3, 3: 2, 4: 5, 5: 4, 6: 7, 7: 6}
            index += [offset + limbs[i] for i in range(REACHED_DIM)]
            sign += [1.0] * REACHED_DIM
        elif stream == "objects":
            slots = _objects_flip(offset, object_classes)
            index += slots[0]
            sign += slots[1]
        else:
            limbs = {6: 7, 7: 6, 8: 9, 9: 8}
            index += [offset + limbs.get(i, i) for i in range(INTERACTION_DIM)]
            sign += [-1.0 if i == 1 else 1.0 for i in range(INTERACTION_DIM)]
        offset += stream_dims((stream,), object_classes)[stream]
    return torch.tensor(index, dtype=torch.long), torch.tensor(sign)


def flip_vectors(vectors: torch.Tensor, inputs: Sequence[str], object_classes: Sequence[str] = ()) -> torch.Tensor:
    """Stream vectors (..., D) of the mirrored clip: horizontal quantities change sign, left and right swap.

    Example:
        >>> v = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
        >>> flip_vectors(v, ("motion",)).tolist()
        [[-1.0, 2.0, 3.0, 4.0]]
    """
    index, sign = _flip_permutation(tuple(vector_streams(inputs)), tuple(object_classes))
    if index.numel() == 0:
        return vectors
    return vectors[..., index] * sign.to(vectors.dtype)
