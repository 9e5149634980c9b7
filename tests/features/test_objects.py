import numpy as np
import pytest

from behavior.features.objects import (
    DX,
    HELD,
    HOLD_REACH,
    LEFT_WRIST,
    NEAR,
    NEAREST,
    NONE,
    OVERLAP,
    RIGHT_WRIST,
    objects_dim,
    objects_vector,
    slot_dim,
)
from behavior.features.people import KEYPOINTS, LIMB_DISTANCE_CAP, Person
from behavior.io.frames import SceneObject

CLASSES = ("cup", "knife", "chair")
C = len(CLASSES)


def slots(vector: np.ndarray) -> list[np.ndarray]:
    return list(vector.reshape(NEAREST, slot_dim(CLASSES)))


def person_with_wrists(left=None, right=None, box=(0.0, 0.0, 10.0, 20.0)) -> Person:
    keypoints = np.full((KEYPOINTS, 3), np.nan)
    for index, point in ((9, left), (10, right)):
        if point is not None:
            keypoints[index] = (*point, 0.9)
    return Person(1, box, keypoints)


def test_an_object_in_the_right_hand_is_held():
    person = person_with_wrists(right=(11.0, 9.0))  # the right wrist inside the knife's box
    first, second = slots(objects_vector(person, [SceneObject("knife", (10.5, 8.0, 13.0, 11.0), 0.7)], CLASSES))
    assert first[:C].tolist() == [0.0, 1.0, 0.0] and first[C + NONE] == 0.0
    assert first[C + HELD] == 1.0 and first[C + RIGHT_WRIST] == 0.0
    assert first[C + LEFT_WRIST] == LIMB_DISTANCE_CAP  # the left wrist is not seen
    assert first[C + DX] == pytest.approx((11.75 - 5.0) / 20.0)
    assert second[C + NONE] == 1.0 and not second[:C].any() and not np.delete(second, C + NONE).any()


def test_no_object_gives_the_none_flag_and_zeros():
    vector = objects_vector(person_with_wrists(right=(11.0, 9.0)), [], CLASSES)
    assert vector.shape == (objects_dim(CLASSES),)
    for slot in slots(vector):
        assert slot[C + NONE] == 1.0 and np.count_nonzero(slot) == 1


def test_an_object_out_of_reach_is_near_but_not_held():
    person = person_with_wrists(left=(0.0, 9.0), right=(10.0, 9.0))
    [cup, _] = slots(objects_vector(person, [SceneObject("cup", (14.0, 8.0, 16.0, 11.0), 0.8)], CLASSES))
    assert cup[C + NONE] == 0.0 and cup[C + HELD] == 0.0
    assert cup[C + RIGHT_WRIST] == pytest.approx(4.0 / 20.0) and cup[C + RIGHT_WRIST] > HOLD_REACH
    assert cup[C + OVERLAP] == 0.0


def test_nearest_first_far_ones_and_other_classes_left_out():
    person = Person(1, (0.0, 0.0, 10.0, 20.0))
    objects = [SceneObject("chair", (12.0, 10.0, 18.0, 20.0), 0.9),  # 2 px away
               SceneObject("cup", (10.0, 5.0, 12.0, 8.0), 0.8),  # touching the box
               SceneObject("knife", (11.0, 0.0, 13.0, 2.0), 0.6),  # 1 px away: a third object, beyond NEAREST
               SceneObject("cup", (10.0 + 20.0 * NEAR + 1, 0.0, 40.0, 5.0), 0.9),  # beyond NEAR
               SceneObject("dog", (0.0, 0.0, 5.0, 5.0), 0.9)]  # not an object class of the model
    first, second = slots(objects_vector(person, objects, CLASSES))
    assert [CLASSES[int(s[:C].argmax())] for s in (first, second)] == ["cup", "knife"]


def test_the_same_scene_at_another_resolution_gives_the_same_numbers():
    def scene(scale: float) -> np.ndarray:
        person = person_with_wrists(left=(1.0 * scale, 10.0 * scale), right=(11.0 * scale, 9.0 * scale),
                                    box=(0.0, 0.0, 10.0 * scale, 20.0 * scale))
        items = [SceneObject("knife", (10.5 * scale, 8.0 * scale, 13.0 * scale, 11.0 * scale), 0.7),
                 SceneObject("chair", (2.0 * scale, 12.0 * scale, 14.0 * scale, 22.0 * scale), 0.9)]
        return objects_vector(person, items, CLASSES)

    assert np.allclose(scene(1.0), scene(3.0), atol=1e-6)
