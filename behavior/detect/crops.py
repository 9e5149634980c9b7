"""Person crops: the one function that turns a frame and a box into the CNN's input image.

Extraction (training data) and prediction both call ``crop_person``, so a person seen at
prediction time is cut exactly as the training crops were.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections import deque
from pathlib import Path

import cv2
import numpy as np

from behavior.io import files

PAD_VALUE = (0, 0, 0)  # where a crop leaves the frame


def crop_region(
    box: tuple[float, float, float, float], margin: float, aspect: float = 1.0
) -> tuple[int, int, int, int]:
    """Return the integer region ``x0, y0, x1, y1`` to cut around ``box``.

    The region is centred on the box, has the output's aspect ratio (square for 224x224),
    and adds ``margin`` x the box's longer side of context on each side. It may extend
    beyond the frame; ``crop_person`` pads there.

    Example:
        >>> crop_region((10, 20, 30, 60), margin=0.0)
        (0, 20, 40, 60)
    """
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    pad = 2.0 * margin * max(w, h)
    out_w = max(w + pad, (h + pad) * aspect)
    out_h = out_w / aspect
    x0 = int(round(cx - out_w / 2))
    y0 = int(round(cy - out_h / 2))
    return x0, y0, x0 + max(int(round(out_w)), 1), y0 + max(int(round(out_h)), 1)


def clip_box(box: tuple[float, ...], width: int, height: int) -> tuple[float, float, float, float]:
    """Clip ``x1, y1, x2, y2`` to a ``width`` x ``height`` frame (tracker boxes may leave it)."""
    x1, y1, x2, y2 = box
    return (min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height))


def crop_person(
    frame: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int], margin: float
) -> np.ndarray:
    """Cut a person out of ``frame`` (H, W, 3) as a ``size`` = (width, height) image.

    The region comes from ``crop_region``; parts outside the frame are padded with
    ``PAD_VALUE``; the result keeps the frame's channel order.
    """
    width, height = size
    x0, y0, x1, y1 = crop_region(box, margin, width / height)
    fh, fw = frame.shape[:2]
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, fw), min(y1, fh)
    if ix1 <= ix0 or iy1 <= iy0:
        return np.full((height, width, frame.shape[2]), PAD_VALUE, dtype=frame.dtype)
    region = frame[iy0:iy1, ix0:ix1]
    if (ix0, iy0, ix1, iy1) != (x0, y0, x1, y1):
        region = cv2.copyMakeBorder(
            region, iy0 - y0, y1 - iy1, ix0 - x0, x1 - ix1, cv2.BORDER_CONSTANT, value=PAD_VALUE
        )
    shrinking = region.shape[1] > width
    return cv2.resize(region, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


DIFFERENCE_GAIN = 3.0  # frame differences are faint; amplified they fill more of the CNN's input range


def motion_image(current: np.ndarray, previous: np.ndarray | None, gain: float = DIFFERENCE_GAIN) -> np.ndarray:
    """What CNN_INPUT "difference" feeds the CNN: ``|current - previous| * gain`` as uint8.

    It shows where a person moved between two kept frames rather than how they look, which
    carries across videos better than appearance. A track's first crop has no predecessor
    and gives a black image.

    Example:
        >>> a = np.zeros((2, 2, 3), np.uint8); b = np.full((2, 2, 3), 10, np.uint8)
        >>> int(motion_image(b, a)[0, 0, 0]), int(motion_image(b, None).max())
        (30, 0)
    """
    if previous is None or previous.shape != current.shape:
        return np.zeros_like(current)
    diff = cv2.absdiff(current, previous)
    return cv2.convertScaleAbs(diff, alpha=gain)


def letterbox(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fit the whole ``frame`` into ``size`` = (width, height), keeping its aspect, padding the rest."""
    width, height = size
    fh, fw = frame.shape[:2]
    scale = min(width / fw, height / fh)
    nw, nh = max(int(round(fw * scale)), 1), max(int(round(fh * scale)), 1)
    resized = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (height - nh) // 2, (width - nw) // 2
    return cv2.copyMakeBorder(
        resized, top, height - nh - top, left, width - nw - left, cv2.BORDER_CONSTANT, value=PAD_VALUE
    )


def scene_crop(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The whole frame as stage 1 saves it for INPUTS "scene_video" (letterboxed, as whole-frame mode cuts it)."""
    return letterbox(frame, size)


class JpegWriter:
    """Encode and write JPEGs on background threads so the caller never waits on the disk.

    At most ``max_pending`` images are in flight; ``close()`` waits for all of them and
    raises the first write error, if any.

    Example:
        >>> with JpegWriter(quality=95) as writer:  # doctest: +SKIP
        ...     writer.submit(Path("person_1/frame_000001.jpg"), crop)
    """

    def __init__(self, quality: int = 95, workers: int = 1, max_pending: int = 64) -> None:
        self._params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        self._pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="jpeg")
        self._pending: deque[cf.Future] = deque()
        self._max_pending = max_pending
        self.written = 0

    def _write(self, path: Path, image: np.ndarray) -> None:
        ok, data = cv2.imencode(".jpg", image, self._params)
        if not ok:
            raise ValueError(f"JPEG encoding failed for {path}")
        with files.writing(path):  # a full disk is an OutputError naming the file, never a partial JPEG left
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as f:
                f.write(data.tobytes())

    def submit(self, path: Path, image: np.ndarray) -> None:
        """Queue ``image`` (BGR, as from OpenCV) to be saved as an RGB JPEG at ``path``."""
        while len(self._pending) >= self._max_pending:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._write, Path(path), image))
        self.written += 1

    def close(self) -> None:
        """Wait for every queued image; re-raise the first failure."""
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> JpegWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:  # already failing: stop quickly, keep the original error
            self._pending.clear()
            self._pool.shutdown(wait=True, cancel_futures=True)
