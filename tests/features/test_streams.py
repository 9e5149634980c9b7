"""The per-frame stream definitions on synthetic boxes and keypoints: what each number means."""

import math

import numpy as np
import pytest
import torch

from behavior.features.objects import HELD, slot_dim
from behavior.features.people import KEYPOINTS, LIMB_DISTANCE_CAP, LIMBS, TARGETS, Person, limb_extension
from behavior.features.streams import (
    DIMS,
    FLIP_INDEX,
    INTERACTION_DIM,
    MOTION_DIM,
    POSE_DIM,
    REACH_DIM,
    REACHED_DIM,
    StreamState,
    flip_vectors,
    vector_dim,
)
from behavior.io.frames import SceneObject

POSE = ("pose",)
INTERACTION = ("interaction",)
REACH = ("reach",)


def skeleton(cx: float, cy: float, h: float, conf: float = 0.9) -> np.ndarray:
    """A standing person's 17 keypoints around (cx, cy) for a box of height h, in source pixels."""
    offsets = np.array([[0, -0.4], [-0.03, -0.42], [0.03, -0.42], [-0.06, -0.4], [0.06, -0.4], [-0.12, -0.25],
                        [0.12, -0.25], [-0.15, -0.05], [0.15, -0.05], [-0.16, 0.1], [0.16, 0.1], [-0.08, 0.05],
                        [0.08, 0.05], [-0.08, 0.25], [0.08, 0.25], [-0.08, 0.45], [0.08, 0.45]])
    points = np.empty((KEYPOINTS, 3), np.float32)
    points[:, :2] = offsets * h + [cx, cy]
    points[:, 2] = conf
    return points


def box_at(cx: float, cy: float, h: float) -> tuple[float, float, float, float]:
    return (cx - h / 4, cy - h / 2, cx + h / 4, cy + h / 2)


def pose_parts(vec: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """has_pose, confidences (17,), positions (17, 2), velocities (17, 2) of a pose vector."""
    return (float(vec[0]), vec[1:1 + KEYPOINTS], vec[1 + KEYPOINTS:1 + 3 * KEYPOINTS].reshape(KEYPOINTS, 2),
            vec[1 + 3 * KEYPOINTS:].reshape(KEYPOINTS, 2))


def test_dimensions_add_up():
    assert DIMS == {"motion": MOTION_DIM, "pose": POSE_DIM, "interaction": INTERACTION_DIM, "reach": REACH_DIM,
                    "reached": REACHED_DIM}
    assert vector_dim(("appearance",)) == 0
    state = StreamState(("appearance", "motion", "pose", "interaction", "reach", "reached"))
    vec = state.step([Person(1, box_at(50, 50, 40), skeleton(50, 50, 40))], 0.0)[0]
    assert vec.shape == (MOTION_DIM + POSE_DIM + INTERACTION_DIM + REACH_DIM + REACHED_DIM,)
    assert vec.dtype == np.float32


def test_a_person_moving_right_has_positive_x_velocity():
    """The whole skeleton moves right within a box that stays put (the arm swings): keypoint x velocity > 0."""
    state = StreamState(POSE)
    box = box_at(100, 100, 80)
    state.step([Person(1, box, skeleton(100, 100, 80))], 0.0)
    moved = skeleton(100, 100, 80)
    moved[:, 0] += 8  # 0.1 body heights in 0.1 s
    _, _, _, vel = pose_parts(state.step([Person(1, box, moved)], 0.1)[0])
    assert vel[:, 0] == pytest.approx(np.full(KEYPOINTS, 1.0), rel=1e-4)
    assert vel[:, 1] == pytest.approx(np.zeros(KEYPOINTS), abs=1e-5)
    motion = StreamState(("motion",))
    motion.step([Person(1, box_at(100, 100, 80))], 0.0)
    assert motion.step([Person(1, box_at(108, 100, 80))], 0.1)[0][0] == pytest.approx(1.0)


def test_pose_is_the_same_at_any_resolution_position_and_frame_rate():
    """Relative to the box and per second: the same movement twice as large, elsewhere, at half the frame rate."""
    def run(scale: float, shift: float, dt: float) -> np.ndarray:
        state = StreamState(POSE)
        box = box_at(100 * scale + shift, 100 * scale, 80 * scale)
        state.step([Person(1, box, skeleton(100 * scale + shift, 100 * scale, 80 * scale))], 0.0)
        moved = skeleton(100 * scale + shift, 100 * scale, 80 * scale)
        moved[9, :2] += np.array([8.0, -4.0]) * scale * dt / 0.1  # the left wrist moves at a fixed speed
        return state.step([Person(1, box, moved)], dt)[0]

    base, other = run(1.0, 0.0, 0.1), run(2.5, 300.0, 0.2)
    assert pose_parts(other)[3] == pytest.approx(pose_parts(base)[3], abs=1e-4)  # velocities
    assert pose_parts(other)[2][:9] == pytest.approx(pose_parts(base)[2][:9], abs=1e-4)  # positions of still joints


def test_missing_keypoints_are_flagged_never_zeros_that_look_like_a_pose():
    state = StreamState(POSE)
    box = box_at(100, 100, 80)
    none = state.step([Person(1, box, None)], 0.0)[0]
    assert not none.any()  # has_pose 0, every confidence 0: nothing reads as a pose
    partial = skeleton(100, 100, 80)
    partial[9] = np.nan  # the left wrist was not found
    partial[10, 2] = 0.1  # the right wrist is too unsure
    has_pose, conf, pos, vel = pose_parts(state.step([Person(1, box, partial)], 0.1)[0])
    assert has_pose == 1.0 and conf[9] == 0.0 and conf[10] == 0.0 and conf[0] == pytest.approx(0.9)
    assert not pos[9].any() and not pos[10].any() and pos[0].any()
    assert not vel.any()  # no keypoint was seen in the frame before
    moved = skeleton(100, 100, 80)
    moved[:, 1] -= 4
    _, _, _, vel = pose_parts(state.step([Person(1, box, moved)], 0.2)[0])
    assert not vel[9].any() and vel[0, 1] == pytest.approx(-0.5, rel=1e-4)  # only keypoints seen in both frames


def test_two_people_approaching_have_a_negative_closing_speed():
    state = StreamState(INTERACTION)
    first = state.step([Person(1, box_at(100, 100, 80)), Person(2, box_at(300, 100, 80))], 0.0)
    assert first[0][5] == 0.0  # no earlier frame: no speed
    vec = state.step([Person(1, box_at(120, 100, 80)), Person(2, box_at(280, 100, 80))], 0.5)
    assert vec[0][5] == pytest.approx((160 - 200) / 80 / 0.5) and vec[1][5] == pytest.approx(vec[0][5])
    assert vec[0][1] == pytest.approx(2.0) and vec[1][1] == pytest.approx(-2.0)  # the other is right / left
    assert vec[0][4] == pytest.approx(2.0) and vec[0][0] == 0.0  # distance in body heights; not alone
    apart = state.step([Person(1, box_at(100, 100, 80)), Person(2, box_at(300, 100, 80))], 1.0)
    assert apart[0][5] > 0


def test_a_lone_person_gets_the_alone_flag_not_a_fake_neighbour():
    vec = StreamState(INTERACTION).step([Person(1, box_at(100, 100, 80), skeleton(100, 100, 80))], 0.0)[0]
    assert vec[0] == 1.0 and not vec[1:].any()


def test_limbs_reaching_another_body_and_people_within_reach():
    me = skeleton(100, 100, 80)
    me[10, :2] = (135, 95)  # the right wrist inside the other's box: a punch landing
    people = [Person(1, box_at(100, 100, 80), me), Person(2, box_at(150, 100, 80)),
              Person(3, box_at(600, 100, 80))]
    vec = StreamState(INTERACTION).step(people, 0.0)[0]
    limbs = dict(zip(LIMBS, vec[6:10], strict=True))
    assert limbs[10] == 0.0 and 0 < limbs[9] < LIMB_DISTANCE_CAP
    assert vec[10] == 1.0  # person 2 is within reach, person 3 is not
    unseen = StreamState(INTERACTION).step([Person(1, box_at(100, 100, 80)), people[1]], 0.0)[0]
    assert (unseen[6:10] == LIMB_DISTANCE_CAP).all()  # limbs not seen read as far, not as touching


def test_a_fist_closing_on_the_other_head_tells_the_puncher_from_the_punched():
    """The puncher's wrist closes on the other's head; the one punched has no limb closing in."""
    puncher, punched = skeleton(100, 100, 80), skeleton(160, 100, 80)
    people = [Person(1, box_at(100, 100, 80), puncher), Person(2, box_at(160, 100, 80), punched)]
    state = StreamState(REACH)
    state.step(people, 0.0)
    extended = puncher.copy()
    extended[10, :2] = punched[0, :2] + (0, 8)  # the right wrist 8 px (0.1 body height) under the other's nose
    out = state.step([Person(1, people[0].box, extended), people[1]], 0.25)
    me, other = out[0], out[1]
    assert me[0] == 1.0 and me[2] == pytest.approx(0.1, abs=1e-3)  # right wrist: 0.1 body heights from the head
    before = min(math.hypot(*(puncher[10, :2] - punched[k, :2])) for k in TARGETS) / 80  # at the first frame
    assert me[6] == pytest.approx((0.1 - before) / 0.25, abs=1e-3) and me[6] < 0  # closing in, per second
    assert not other[5:].any()  # the one punched: no limb moved


def test_limb_extension_points_at_the_one_who_acts():
    """The kicker's ankle reaches out towards the other (on either side); the one kicked, standing, reaches no
    further than their own shoulders; alone or without keypoints nobody reaches anyone."""
    kicker, kicked = skeleton(100, 100, 80), skeleton(160, 100, 80)
    kicker[16, :2] = (100 + 0.5 * 80, 120)  # the right ankle half a body height out towards the other person
    a, b = Person(1, box_at(100, 100, 80), kicker), Person(2, box_at(160, 100, 80), kicked)
    assert limb_extension(a, [b]) == pytest.approx(0.5, abs=1e-3)
    assert limb_extension(b, [a]) == pytest.approx(0.16, abs=1e-3)  # a wrist hanging by the side, towards a
    mirrored = kicker.copy()
    mirrored[:, 0] = 200 - kicker[:, 0]  # the same kick with the other person on the left
    assert limb_extension(Person(1, box_at(100, 100, 80), mirrored), [Person(2, box_at(40, 100, 80))]) == \
        pytest.approx(0.5, abs=1e-3)
    assert limb_extension(a, [Person(2, box_at(40, 100, 80))]) == pytest.approx(0.16, abs=1e-3)  # reaching away
    assert limb_extension(a, []) == 0.0 and limb_extension(Person(1, a.box), [b]) == 0.0


def test_reached_remembers_the_strike_after_it():
    """The kicker's ankle comes close to the other's torso for one frame: the closest distance and the furthest
    extension stay in the vectors of the frames after, while the one kicked never reached out."""
    kicker, kicked = skeleton(100, 100, 80), skeleton(160, 100, 80)
    a_box, b_box = box_at(100, 100, 80), box_at(160, 100, 80)
    kick = kicker.copy()
    kick[16, :2] = kicked[12, :2] + (-4, 0)  # the right ankle 4 px (0.05 body height) from the other's right hip
    state = StreamState(("reached",))
    before = state.step([Person(1, a_box, kicker), Person(2, b_box, kicked)], 0.0)
    during = state.step([Person(1, a_box, kick), Person(2, b_box, kicked)], 0.1)
    after = state.step([Person(1, a_box, kicker), Person(2, b_box, kicked)], 0.2)
    assert during[0][3] == pytest.approx(0.05, abs=1e-3) and during[0][3] < before[0][3]  # right ankle: closest
    assert during[0][7] == pytest.approx((kick[16, 0] - 100) / 80, abs=1e-3)  # and furthest out (torso at x 100)
    assert during[0][7] > before[0][7]
    assert after[0] == pytest.approx(during[0])  # remembered
    assert (after[1][4:] <= before[1][4:] + 1e-6).all()  # the one kicked reached out no further than standing
    alone = StreamState(("reached",)).step([Person(1, a_box, kicker)], 0.0)[0]
    assert (alone[:4] == LIMB_DISTANCE_CAP).all() and not alone[4:].any()


def test_reach_without_a_partner_or_limbs_reads_far_and_still():
    alone = StreamState(REACH).step([Person(1, box_at(100, 100, 80), skeleton(100, 100, 80))], 0.0)[0]
    assert alone[0] == 0.0 and (alone[1:5] == LIMB_DISTANCE_CAP).all() and not alone[5:].any()
    no_pose = StreamState(REACH).step([Person(1, box_at(100, 100, 80), skeleton(100, 100, 80)),
                                       Person(2, box_at(120, 100, 80))], 0.0)[0]
    assert no_pose[0] == 0.0 and no_pose[2] == 0.0  # no keypoints for the other: their box; the wrist is inside it
    unseen = StreamState(REACH).step([Person(1, box_at(100, 100, 80)), Person(2, box_at(150, 100, 80))], 0.0)[0]
    assert (unseen[1:5] == LIMB_DISTANCE_CAP).all()


def test_flip_mirrors_every_stream():
    """The vectors of a mirrored scene are the flipped vectors of the scene (objects included: a cup held in the
    right hand is held in the left one, on the other side)."""
    width = 640.0
    inputs = ("motion", "pose", "interaction", "reach", "reached", "objects")
    classes = ("cup", "chair")

    def mirror(points: np.ndarray) -> np.ndarray:
        out = points.copy()
        out[:, 0] = width - points[:, 0]
        return out[list(FLIP_INDEX)]

    def mbox(box):
        return (width - box[2], box[1], width - box[0], box[3])

    rng = np.random.default_rng(0)
    frames = []
    for t in range(3):
        a, b = skeleton(200 + 10 * t, 100, 80), skeleton(260 - 5 * t, 110, 90)
        a[:, :2] += rng.normal(0, 3, (KEYPOINTS, 2))
        wrist = a[10, :2]
        objects = [SceneObject("cup", (wrist[0] - 3, wrist[1] - 3, wrist[0] + 4, wrist[1] + 5), 0.9),
                   SceneObject("chair", (150, 120, 185, 190), 0.7)]
        frames.append(([Person(1, box_at(200 + 10 * t, 100, 80), a), Person(2, box_at(260 - 5 * t, 110, 90), b)],
                       objects))
    plain, mirrored = StreamState(inputs, classes), StreamState(inputs, classes)
    for t, (people, objects) in enumerate(frames):
        v = np.stack(plain.step(people, t * 0.1, objects))
        m = np.stack(mirrored.step([Person(p.track, mbox(p.box), mirror(p.keypoints)) for p in people], t * 0.1,
                                   [SceneObject(o.name, mbox(o.box), o.conf) for o in objects]))
        flipped = flip_vectors(torch.from_numpy(v), inputs, classes).numpy()
        assert flipped == pytest.approx(m, abs=1e-4)
    assert v[0, -2 * slot_dim(classes):].reshape(2, -1)[:, len(classes) + HELD].tolist() == [1.0, 0.0]  # cup held
    twice = flip_vectors(flip_vectors(torch.from_numpy(v), inputs, classes), inputs, classes).numpy()
    assert twice == pytest.approx(v)


def test_forget_drops_a_track():
    state = StreamState(("motion", "pose", "interaction", "reach", "reached"))
    state.step([Person(1, box_at(100, 100, 80), skeleton(100, 100, 80)), Person(2, box_at(200, 100, 80))], 0.0)
    state.forget(1)
    assert 1 not in state.motion and 1 not in state.pose and 1 not in state.distances and 1 not in state.reach
    assert 1 not in state.reached
    assert math.isfinite(float(state.step([Person(1, box_at(50, 100, 80))], 1.0)[0].sum()))


