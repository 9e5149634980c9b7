import numpy as np
import pytest

from behavior import metrics


def test_known_confusion():
    # true: 4 fight, 2 walk; predicted: 3 fight right, 1 fight called walk, walks both right
    m = metrics.evaluate([0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1], ["fight", "walk"])
    assert m["confusion_matrix"] == [[3, 1], [0, 2]]
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert m["per_class"]["fight"] == pytest.approx({"precision": 1.0, "recall": 0.75, "f1": 6 / 7, "support": 4})
    assert m["per_class"]["walk"]["precision"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((6 / 7 + 0.8) / 2)
    assert m["mean_class_accuracy"] == pytest.approx((0.75 + 1.0) / 2)


def test_absent_class_does_not_count_in_macro_scores():
    m = metrics.evaluate([0, 0], [0, 0], ["a", "b"])
    assert m["macro_f1"] == 1.0 and m["per_class"]["b"]["support"] == 0


def test_people_labels_counts_actors_and_bystanders():
    clips = [(0, {"person_1": [0.9, 0.1], "person_2": [0.2, 0.8]}),  # fighter and bystander
             (0, {"person_1": [0.7, 0.3], "person_2": [0.6, 0.4]}),  # everyone fights
             (0, {"person_0": [0.4, 0.6]}),  # one (whole-frame) instance, missed
             (1, {"person_1": [0.1, 0.9], "person_2": [0.3, 0.7]})]
    out = metrics.people_labels(clips, ["fight", "noFight"], background=1)
    assert out["fight"] == {"clips": 3, "someone": 2, "everyone": 1, "several_people": 2, "some_not_all": 1,
                            "background": False}
    assert out["noFight"]["everyone"] == 1 and out["noFight"]["background"]
    table = metrics.people_labels_table(out)
    assert "noFight (background)" in table and "1/2 (50%)" in table


def test_report_files(tmp_path):
    m = metrics.evaluate([0, 1, 1], [0, 1, 0], ["x", "y"])
    metrics.write_report(tmp_path, m, m, {"split": "test"})
    assert (tmp_path / "confusion_matrix.csv").read_text().splitlines() == ["true\\predicted,x,y", "x,1,0", "y,1,1"]
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert "macro-F1" in (tmp_path / "classification_report.txt").read_text()
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_acc": 0.5, "val_acc": 0.4,
                "val_macro_f1": 0.3, "lr": 1e-3} for e in (1, 2, 3)]
    assert metrics.plot_curves(tmp_path / "curves.png", history).stat().st_size > 1000


def test_predictions_csv_lists_each_sequence(tmp_path):
    probs = np.array([[0.2, 0.8], [0.6, 0.4]])
    out = metrics.write_predictions(tmp_path / "predictions.csv", ["a/p1/0", "a/p2/0"], [1, 1], probs, ["x", "y"])
    assert out.read_text().splitlines() == ["sequence_id,label,predicted,p_x,p_y", "a/p1/0,y,y,0.200000,0.800000",
                                            "a/p2/0,y,x,0.600000,0.400000"]


def test_class_names_in_any_script_plot_and_align(tmp_path, caplog):
    """打架 in a confusion matrix: drawn with a font that has it, or, where no font here has it, one warning line
    from the tool instead of matplotlib's warning per glyph; console tables align by display width."""
    import warnings

    from behavior.report import display_width, format_table

    report = metrics.evaluate([0, 1, 1], [0, 1, 0], ["打架", "walk"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics.plot_confusion(tmp_path / "cm.png", report, "打架 or not")
    assert (tmp_path / "cm.png").stat().st_size > 1000
    assert not [w for w in caught if "Glyph" in str(w.message)]
    table = format_table(["class", "videos"], [["打架", 3], ["walk", 12]])
    assert len({display_width(line) for line in table.splitlines()}) == 1
