import json
import re

import numpy as np
import pytest

from behavior.errors import InputError
from behavior.io.annotations import AnnotatedPerson, read_annotations, read_track_labels
from behavior.io.frames import SceneObject, TrackLabel


def posetrack(tmp_path, annotations, images=None, categories=None, name="clip.json"):
    data = {"images": images if images is not None else [{"id": 10, "frame_index": 0}, {"id": 11, "frame_index": 5}],
            "annotations": annotations,
            "categories": categories or [{"id": 1, "name": "person"}, {"id": 44, "name": "bottle"}]}
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_posetrack_people_keypoints_and_objects(tmp_path):
    keypoints = [0.0] * 51
    keypoints[10 * 3:10 * 3 + 3] = [30.0, 40.0, 0.9]  # the right wrist, labeled
    path = posetrack(tmp_path, [
        {"image_id": 10, "track_id": 3, "bbox": [10, 20, 50, 120], "category_id": 1, "keypoints": keypoints},
        {"image_id": 11, "track_id": 3, "bbox": [12, 20, 50, 120], "category_id": 1},
        {"image_id": 11, "bbox": [28, 38, 6, 12], "category_id": 44, "score": 0.8},
    ])
    found = read_annotations(path)
    assert found.source == "posetrack" and sorted(found.people) == [0, 5]
    [first] = found.people[0]
    assert (first.track_id, first.box) == (3, (10.0, 20.0, 60.0, 140.0))
    assert first.keypoints.shape == (17, 3) and first.keypoints[10].tolist() == [30.0, 40.0, 0.9]
    assert np.isnan(first.keypoints[0]).all()  # not labeled: not a made-up position
    assert found.people[5] == [AnnotatedPerson(3, (12.0, 20.0, 62.0, 140.0), None)]
    assert found.objects[5] == [SceneObject("bottle", (28.0, 38.0, 34.0, 50.0), 0.8)]


def test_frames_without_an_index_are_numbered_by_their_position(tmp_path):
    path = posetrack(tmp_path, [{"image_id": "b", "track_id": 1, "bbox": [0, 0, 5, 5], "category_id": 1}],
                     images=[{"id": "a"}, {"id": "b"}])
    assert list(read_annotations(path).people) == [1]


def test_mot_gt_keeps_the_pedestrians_it_scores(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1,1,10,20,30,60,1,1,1.0\n"   # a pedestrian in the first frame (1-based)
                    "1,2,50,20,30,60,0,1,1.0\n"   # flagged 0: ignored by MOTChallenge
                    "2,3,90,20,30,60,1,7,1.0\n"   # a static person: not a pedestrian
                    "2,1,12,20,30,60\n")          # tracker output: six columns
    found = read_annotations(path)
    assert found.source == "mot"
    assert {f: [(p.track_id, p.box) for p in people] for f, people in found.people.items()} == {
        0: [(1, (10.0, 20.0, 40.0, 80.0))], 1: [(1, (12.0, 20.0, 42.0, 80.0))]}


def test_track_labels_whole_tracks_and_frame_ranges(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("video,track_id,label,start_frame,end_frame\nkick_1,3,kick,10,40\nkick_1,4,none,,\n")
    assert read_track_labels(path) == {"kick_1": [TrackLabel(3, "kick", 10, 40), TrackLabel(4, "none")]}
    short = tmp_path / "short.csv"
    short.write_text("video,track_id,label\nwalk_2,1,walking\n")
    assert read_track_labels(short) == {"walk_2": [TrackLabel(1, "walking")]}


@pytest.mark.parametrize("annotations, message", [
    ([{"image_id": 10, "track_id": 1, "bbox": [0, 0, 5, 5], "category_id": 1, "keypoints": [1.0] * 50}],
     "annotation 0: keypoints must be 51 numbers (17 x, y, confidence), got 50"),
    ([{"image_id": 10, "track_id": 1, "bbox": [0, 0, 0, 5], "category_id": 1}],
     "annotation 0: a box needs a positive width and height"),
    ([{"image_id": 10, "track_id": 1, "bbox": [0, 0, 5], "category_id": 1}],
     "annotation 0: a box must be 4 numbers x, y, width, height"),
    ([{"image_id": 99, "track_id": 1, "bbox": [0, 0, 5, 5], "category_id": 1}],
     "annotation 0: image_id 99 is not one of the images"),
    ([{"image_id": 10, "bbox": [0, 0, 5, 5], "category_id": 1}],
     "annotation 0: a person needs an integer track_id"),
    ([{"image_id": 10, "track_id": 1, "bbox": [0, 0, 5, 5], "category_id": 7}],
     "annotation 0: category_id 7 is not one of the categories"),
])
def test_a_malformed_posetrack_file_is_one_line(tmp_path, annotations, message):
    with pytest.raises(InputError, match="^" + re.escape(f"annotations {tmp_path / 'clip.json'}, {message}")) as error:
        read_annotations(posetrack(tmp_path, annotations))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("name, text, message", [
    ("clip.json", "{not json", "not JSON"),
    ("clip.json", '{"images": []}', "needs 'images' and 'annotations' lists"),
    ("clip.json", '{"images": [{"id": 1, "frame_index": "x"}], "annotations": []}', "each image needs an id"),
    ("gt.txt", "1,1,10,20,30\n", "line 1: expected frame (from 1), id, x, y, width, height"),
    ("gt.txt", "0,1,10,20,30,60\n", "line 1: expected frame (from 1)"),
    ("gt.txt", "1,1,10,20,abc,60\n", "line 1: expected numbers"),
    ("clip.xml", "<x/>", "unknown format"),
])
def test_malformed_annotation_files_are_one_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=re.escape(message)):
        read_annotations(path)


@pytest.mark.parametrize("text, message", [
    ("name,track,label\nv,1,kick\n", "the header must be video,track_id,label"),
    ("video,track_id,label\nv,one,kick\n", "line 2: track_id, start_frame and end_frame must be integers"),
    ("video,track_id,label,start_frame,end_frame\nv,1,kick,40,10\n", "line 2: a frame range needs 0 <= start_frame"),
    ("video,track_id,label,start_frame,end_frame\nv,1,kick,40,\n", "line 2: a frame range needs"),
    ("video,track_id,label\nv,1\n", "line 2: a row needs a video, a track_id and a label"),
    ("video,track_id,label\n,1,kick\n", "line 2: a row needs a video and a label"),
])
def test_malformed_track_labels_are_one_line(tmp_path, text, message):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=re.escape(message)):
        read_track_labels(path)
