"""Boxes and captions on video frames, drawn offline: nothing is ever downloaded.

ASCII captions use OpenCV's built-in Hershey font (fast, no font file). Captions with other
characters (``Schlägerei``, ``драка``, ``打架``) are rendered with Pillow in a TrueType font that
has their glyphs: DejaVu Sans, which ships inside matplotlib (a dependency), else any font on
the system that covers them. Ultralytics' own annotator, which may fetch Arial.ttf on first use,
is never called.
"""

from __future__ import annotations

import colorsys
import logging
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from behavior.features.people import SKELETON
from behavior.fonts import font_for
from behavior.io.frames import SceneObject

log = logging.getLogger(__name__)

FONT = cv2.FONT_HERSHEY_SIMPLEX


def palette(n: int) -> list[tuple[int, int, int]]:
    """``n`` well-separated BGR colors, the same for the same ``n`` (one per class)."""
    colors = []
    for i in range(max(n, 1)):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.75, 0.95)
        colors.append((int(b * 255), int(g * 255), int(r * 255)))
    return colors


@cache
def _truetype(path: Path, size: int):  # noqa: ANN202  (a PIL font)
    from PIL import ImageFont

    return ImageFont.truetype(str(path), size)


def _text_size(text: str, scale: float, thickness: int) -> tuple[int, int, int]:
    """Width, height above the baseline and depth below it of a caption, in pixels."""
    if text.isascii():
        (w, h), base = cv2.getTextSize(text, FONT, scale, thickness)
        return w, h, base
    font = _truetype(font_for(text), max(int(round(30 * scale)), 10))
    left, top, right, bottom = font.getbbox(text)
    ascent, _ = font.getmetrics()
    return right - left, ascent, max(bottom - ascent, 0)


def _put_text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float, thickness: int,
              ink: tuple[int, int, int]) -> None:
    """Draw ``text`` with its baseline starting at ``origin`` (x, y), in place."""
    if text.isascii():
        cv2.putText(image, text, origin, FONT, scale, ink, thickness, cv2.LINE_AA)
        return
    from PIL import Image, ImageDraw

    font = _truetype(font_for(text), max(int(round(30 * scale)), 10))
    left, top, right, bottom = font.getbbox(text, anchor="ls")
    x0, y0 = max(origin[0] + left, 0), max(origin[1] + top, 0)
    x1, y1 = min(origin[0] + right, image.shape[1]), min(origin[1] + bottom, image.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    patch = Image.fromarray(np.ascontiguousarray(image[y0:y1, x0:x1, ::-1]))
    ImageDraw.Draw(patch).text((origin[0] - x0, origin[1] - y0), text, font=font, anchor="ls",
                               fill=(ink[2], ink[1], ink[0]))
    image[y0:y1, x0:x1] = np.asarray(patch)[:, :, ::-1]


Rect = tuple[int, int, int, int]  # x1, y1, x2, y2 of a caption


def text_scale(image: np.ndarray) -> tuple[float, int]:
    """Caption scale and stroke for a frame of this size: about 13 px high at 240 p, 28 at 720 p."""
    side = min(image.shape[:2])
    return max(0.45, side / 700), max(1, round(side / 400))


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _free_spot(x: int, top: int, size: tuple[int, int], image_height: int, taken: list[Rect]) -> Rect:
    """Where a caption of ``size`` goes: at ``top``, or moved down past the captions already ``taken``."""
    w, h = size
    rect = (x, top, x + w, top + h)
    while any(_overlaps(rect, other) for other in taken) and rect[3] + h <= image_height:
        below = max(other[3] for other in taken if _overlaps(rect, other))
        rect = (x, below, x + w, below + h)
    return rect


def draw_box(
    image: np.ndarray, box: tuple[float, float, float, float], text: str, color: tuple[int, int, int],
    taken: list[Rect] | None = None,
) -> np.ndarray:
    """Draw a box with a filled caption above it, in place; returns ``image``. The caption stays inside the frame
    and, given the captions already ``taken`` in this frame (the list grows), clear of them."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    scale, thickness = text_scale(image)
    cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness + 1)
    if text:
        tw, th, base = _text_size(text, scale, thickness)
        size = (tw + 4, th + base + 4)
        top = y1 - size[1] if y1 - size[1] >= 0 else max(y1, 0)
        x = min(max(x1, 0), max(w - size[0], 0))
        rect = _free_spot(x, top, size, h, taken if taken is not None else [])
        cv2.rectangle(image, rect[:2], rect[2:], color, -1)
        luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
        ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
        _put_text(image, text, (rect[0] + 2, rect[1] + th + 2), scale, thickness, ink)
        if taken is not None:
            taken.append(rect)
    return image


def draw_banner(image: np.ndarray, text: str) -> Rect:
    """A dark caption in the frame's top-left corner (the time and the video's label so far), in place; its rect."""
    scale, thickness = text_scale(image)
    tw, th, base = _text_size(text, scale, thickness)
    pad = max(4, th // 3)
    rect = (0, 0, tw + 2 * pad, th + base + 2 * pad)
    cv2.rectangle(image, rect[:2], rect[2:], (30, 30, 30), -1)
    _put_text(image, text, (pad, pad + th), scale, thickness, (255, 255, 255))
    return rect


def draw_skeleton(image: np.ndarray, keypoints: np.ndarray, color: tuple[int, int, int], min_conf: float = 0.3,
                  ) -> None:
    """Draw a person's COCO skeleton (keypoints (17, 3) in the image's pixels) in place; unseen joints are skipped."""
    seen = np.isfinite(keypoints).all(axis=1) & (np.nan_to_num(keypoints[:, 2]) >= min_conf)
    points = [(int(round(x)), int(round(y))) for x, y in np.nan_to_num(keypoints[:, :2])]
    thickness = max(1, round(min(image.shape[:2]) / 360))
    for a, b in SKELETON:
        if seen[a] and seen[b]:
            cv2.line(image, points[a], points[b], color, thickness, cv2.LINE_AA)
    for k in np.flatnonzero(seen):
        cv2.circle(image, points[k], thickness + 1, color, -1, cv2.LINE_AA)


class Annotator:
    """Draws each person's box and label (and skeleton, with DRAW_POSE) onto a frame, one color per class.

    Example:
        >>> Annotator(["fight", "walk"], draw_pose=False).annotate(image, detections, states, {})  # doctest: +SKIP
    """

    def __init__(self, classes: list[str], draw_pose: bool) -> None:
        self.classes, self.draw_pose = classes, draw_pose
        self.colors = palette(len(classes))

    def annotate(self, image: np.ndarray, dets: list, states: dict, keypoints: dict[int, np.ndarray | None],
                 objects: dict[int, list[SceneObject]] | None = None, banner: str = "") -> None:
        """Draw one frame's people in place: "person_2 walking 0.92", or "..." before their first label, captions
        clear of each other; the objects beside each person that the objects stream reads (INPUTS "objects");
        and ``banner`` in the top-left corner."""
        taken = [draw_banner(image, banner)] if banner else []  # captions stay clear of it and of each other
        for d in sorted(dets, key=lambda d: d.box[1]):
            for item in (objects or {}).get(d.track_id, []):
                draw_box(image, item.box, item.name, (160, 160, 160))
            st = states[d.track_id]
            if st.probs is None:
                draw_box(image, d.box, "...", (200, 200, 200), taken)
            else:
                k = int(st.probs.argmax())
                draw_box(image, d.box, f"{st.name} {self.classes[k]} {st.probs[k]:.2f}", self.colors[k], taken)
            skeleton = keypoints.get(d.track_id)
            if self.draw_pose and skeleton is not None:
                draw_skeleton(image, skeleton, (255, 255, 255))
