import numpy as np

from behavior.drawing import draw_box, palette


def test_palette_is_distinct_and_stable():
    colors = palette(6)
    assert len(set(colors)) == 6 and colors == palette(6)


def test_draws_box_and_caption_without_fonts(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path))  # any font download would land here
    image = np.zeros((240, 320, 3), np.uint8)
    draw_box(image, (50, 60, 150, 200), "fighting 0.93", (0, 200, 255))
    assert (image[60, 50:150] > 0).any() and (image[200, 50:150] > 0).any()  # top and bottom edges
    assert (image[46:58, 52:100].any(axis=2)).mean() > 0.5  # filled caption above the box
    assert not image[:40].any()  # and nothing far above it
    assert list(tmp_path.iterdir()) == []


def test_caption_stays_inside_at_the_top_edge():
    image = np.zeros((100, 100, 3), np.uint8)
    draw_box(image, (80, 0, 99, 50), "walking 0.51", (255, 255, 255))
    assert image.shape == (100, 100, 3) and image.any()
