import numpy as np
import pytest
from conftest import SHARED_ASSETS  # noqa: I001

from behavior.detect.tracking import PersonTracker
from behavior.settings import DetectorSettings
from tools import mot


@pytest.fixture(scope="module")
def mot17_mini():
    folder = SHARED_ASSETS / "mot" / "MOT17-mini"
    if not folder.is_dir():
        pytest.fail(f"MOT17-mini not found at {folder}: these tests need ../shared/assets", pytrace=False)
    return folder


def test_iou_and_distractor_removal():
    a = np.array([[0.0, 0, 10, 10]])
    b = np.array([[0.0, 0, 10, 10], [5, 0, 10, 10], [50, 50, 5, 5]])
    assert mot._iou(a, b).round(3).tolist() == [[1.0, 0.333, 0.0]]
    hyp = np.array([[1, 0, 0, 10, 10], [2, 50, 50, 5, 5]], float)
    kept = mot._drop_distractor_matches(hyp, np.array([[1.0, 0, 10, 10]]))
    assert kept[:, 0].tolist() == [2.0]


def test_perfect_tracks_score_one(mot17_mini):
    seq = mot.load_sequence(mot.find_sequences(mot17_mini)[0])
    tracks = {}
    for frame in range(1, len(seq.images) + 1):
        rows = seq.gt[(seq.gt[:, 0] == frame) & (seq.gt[:, 7] == 1) & (seq.gt[:, 6] == 1)]
        tracks[frame] = rows[:, [1, 2, 3, 4, 5]]
    import motmetrics as mm

    acc = mot.score_sequence(seq, tracks)
    summary = mm.metrics.create().compute(acc, metrics=["mota", "idf1", "num_switches"])
    assert summary["mota"].iloc[0] == pytest.approx(1.0) and summary["idf1"].iloc[0] == pytest.approx(1.0)


def test_real_tracker_on_mot17_mini(mot17_mini, weights_dir):
    folders = mot.find_sequences(mot17_mini)
    assert len(folders) == 7
    table = mot.evaluate_sequences(folders, PersonTracker(DetectorSettings()))
    overall = table.loc["OVERALL"]
    assert overall["num_frames"] == 39  # the images present, not seqinfo's full length
    assert 0.1 < overall["mota"] < 1 and 0.3 < overall["idf1"] < 1 and overall["precision"] > 0.6
