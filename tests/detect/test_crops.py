import cv2
import numpy as np
import pytest

from behavior.detect.crops import JpegWriter, crop_person, crop_region, letterbox, motion_image
from behavior.io.files import OutputError


def test_region_is_square_and_centred_with_margin():
    x0, y0, x1, y1 = crop_region((100, 50, 140, 150), margin=0.1)
    assert x1 - x0 == y1 - y0 == 120  # longer side 100, plus 10% on each side
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == (120, 100)


def test_region_follows_output_aspect():
    x0, y0, x1, y1 = crop_region((0, 0, 10, 100), margin=0.0, aspect=0.5)
    assert (x1 - x0, y1 - y0) == (50, 100)


def test_crop_pads_outside_the_frame():
    frame = np.full((100, 100, 3), 200, np.uint8)
    crop = crop_person(frame, (0, 0, 50, 100), size=(64, 64), margin=0.0)
    assert crop.shape == (64, 64, 3)
    assert crop[:, :8].max() == 0  # left quarter lies outside the frame: padded black
    assert crop[:, 24:].min() == 200


def test_crop_keeps_the_person_content():
    frame = np.zeros((200, 200, 3), np.uint8)
    frame[50:150, 80:120] = (0, 0, 255)  # a red "person" (BGR)
    crop = crop_person(frame, (80, 50, 120, 150), size=(32, 32), margin=0.0)
    assert tuple(crop[16, 16]) == (0, 0, 255)


def test_crop_outside_the_frame_entirely():
    crop = crop_person(np.zeros((10, 10, 3), np.uint8), (50, 50, 60, 60), size=(16, 16), margin=0.1)
    assert crop.shape == (16, 16, 3)


@pytest.mark.parametrize("shape", [(480, 640), (640, 480), (100, 100)])
def test_letterbox_keeps_aspect(shape):
    frame = np.full((*shape, 3), 255, np.uint8)
    out = letterbox(frame, (224, 224))
    assert out.shape == (224, 224, 3)
    filled = (out[..., 0] > 0).sum()
    assert filled == pytest.approx(224 * 224 * min(shape) / max(shape), rel=0.03)


def test_jpeg_writer_writes_rgb_jpegs(tmp_path):
    from PIL import Image

    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 2] = 255  # red in OpenCV's BGR
    with JpegWriter(quality=95) as writer:
        for i in range(10):
            writer.submit(tmp_path / "p" / f"frame_{i:06d}.jpg", red)
    assert writer.written == 10
    image = Image.open(tmp_path / "p" / "frame_000000.jpg")
    assert image.mode == "RGB" and image.size == (32, 32)
    r, g, b = image.getpixel((16, 16))
    assert r > 240 and g < 15 and b < 15
    assert cv2.imread(str(tmp_path / "p" / "frame_000009.jpg")) is not None


def test_jpeg_writer_reports_write_errors(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    writer = JpegWriter()
    writer.submit(blocker / "x.jpg", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(OutputError, match=r"cannot write .*file/x.jpg: "):  # one line naming the file
        writer.close()


def test_motion_image_shows_what_moved():
    previous = np.zeros((8, 8, 3), np.uint8)
    current = previous.copy()
    current[2:4, 2:4] = 50
    image = motion_image(current, previous)
    assert image.dtype == np.uint8 and image.shape == current.shape
    assert (image[2:4, 2:4] == 150).all() and image.sum() == 150 * 4 * 3
    assert motion_image(np.full((8, 8, 3), 200, np.uint8), previous).max() == 255  # saturates, never wraps
    assert not motion_image(current, None).any()  # a track's first crop
    assert not motion_image(current, np.zeros((4, 4, 3), np.uint8)).any()
