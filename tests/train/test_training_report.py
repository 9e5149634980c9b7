"""Training's report page: the videos it got wrong, each with a strip of the sequence that misled it."""

import base64

import cv2
import numpy as np

from behavior.data import mil
from behavior.io.sequence_file import read_sequences
from behavior.train.report_page import STRIP_HEIGHT, wrong_videos


def test_a_misread_video_shows_the_sequence_that_spoke_loudest_for_the_wrong_class(small_sequences):
    frames, sequences = small_sequences
    table = read_sequences(sequences)
    rows = table.select("test")
    bags = mil.table_bags(table, rows)
    probs = np.tile([0.2, 0.8], (len(rows), 1))  # every sequence says "walk"
    probs[rows.index(bags[0].rows[-1])] = [0.05, 0.95]  # the fight video's last sequence the loudest
    clips = np.tile([0.3, 0.7], (len(bags), 1))
    wrong = wrong_videos(table, rows, probs, bags, clips, frames)
    assert [(w["video"], w["label"], w["predicted"]) for w in wrong] == [(bags[0].video, "fight", "walk")]
    assert wrong[0]["probs"] == {"fight": 0.3, "walk": 0.7}
    jpeg = base64.b64decode(wrong[0]["strip"].removeprefix("data:image/jpeg;base64,"))
    strip = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert strip.shape[0] == STRIP_HEIGHT and strip.shape[1] >= 4 * STRIP_HEIGHT  # the sequence's crops side by side
