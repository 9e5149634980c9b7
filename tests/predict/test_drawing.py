import numpy as np

from behavior.predict.drawing import draw_box, font_for, palette


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


def render(text: str) -> np.ndarray:
    image = np.zeros((120, 320, 3), np.uint8)
    return draw_box(image, (20, 60, 300, 110), text, (0, 200, 255))


def test_non_ascii_labels_are_drawn_with_their_own_glyphs():
    """OpenCV's Hershey font draws "ä" as "??"; captions in other scripts get a TrueType font that has them."""
    for label, stand_ins in (("Schlägerei", ("Schl?gerei", "Schl??gerei")), ("драка", ("?????", "?" * 10)),
                             ("καβγάς", ("??????", "?" * 12))):
        font = font_for(label)
        assert font is not None and font.is_file(), label
        caption = render(f"{label} 0.93")
        assert caption[35:60].any(), label  # the caption is drawn
        for stand_in in stand_ins:
            assert not np.array_equal(caption, render(f"{stand_in} 0.93")), f"{label} drawn as {stand_in}"


def test_labels_without_a_font_warn_once_and_still_draw(caplog, monkeypatch):
    from behavior import fonts

    monkeypatch.setattr(fonts, "_covered", lambda path: frozenset(range(128)))  # fonts with ASCII only
    fonts._font_covering.cache_clear()
    try:
        for conf in ("0.91", "0.92", "0.93"):
            assert render(f"打架 {conf}")[35:60].any()
        assert sum("no font on this machine has glyphs" in r.message for r in caplog.records) == 1
    finally:
        fonts._font_covering.cache_clear()


def test_skeleton_is_drawn_for_seen_joints_only():
    import numpy as np

    from behavior.predict.drawing import draw_skeleton

    image = np.zeros((100, 100, 3), np.uint8)
    keypoints = np.full((17, 3), np.nan, np.float32)
    keypoints[5] = (20, 20, 0.9)  # left shoulder
    keypoints[7] = (20, 60, 0.9)  # left elbow: the limb 5-7 is drawn
    keypoints[6] = (80, 20, 0.1)  # right shoulder, too unsure: nothing drawn around it
    draw_skeleton(image, keypoints, (255, 255, 255))
    assert image[40, 20].any() and not image[20, 80].any() and not image[20, 50].any()
    blank = np.zeros_like(image)
    draw_skeleton(blank, np.full((17, 3), np.nan, np.float32), (255, 255, 255))
    assert not blank.any()


def test_captions_keep_clear_of_each_other_and_of_the_banner():
    """Two people side by side at one height: the second caption moves below the first, not over it."""
    from behavior.predict.drawing import draw_banner, text_scale

    image = np.zeros((360, 480, 3), np.uint8)
    taken = [draw_banner(image, "0:01.5  video: fight")]
    draw_box(image, (10, 30, 200, 300), "#1 fight 0.93", (0, 0, 255), taken)
    draw_box(image, (60, 30, 260, 300), "#2 walk 0.71", (255, 0, 0), taken)
    banner, first, second = taken
    assert all(not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
               for a, b in ((banner, first), (banner, second), (first, second)))
    assert all(0 <= r[0] and r[2] <= 480 and 0 <= r[1] and r[3] <= 360 for r in taken)  # inside the frame
    assert text_scale(np.zeros((720, 1280, 3)))[0] > 2 * text_scale(np.zeros((240, 320, 3)))[0]  # scaled to size
