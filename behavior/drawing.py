"""Annotation drawn with OpenCV's built-in Hershey fonts: no font file, so nothing to download.

(Ultralytics' own annotator may fetch Arial.ttf on first use; this module never calls it.)
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX


def palette(n: int) -> list[tuple[int, int, int]]:
    """``n`` well-separated BGR colors, the same for the same ``n`` (one per class)."""
    colors = []
    for i in range(max(n, 1)):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.75, 0.95)
        colors.append((int(b * 255), int(g * 255), int(r * 255)))
    return colors


def draw_box(
    image: np.ndarray, box: tuple[float, float, float, float], text: str, color: tuple[int, int, int]
) -> np.ndarray:
    """Draw a box with a filled caption above it (inside the image), in place; returns ``image``."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    thickness = max(1, round(min(h, w) / 400))
    scale = max(0.4, min(h, w) / 1000)
    cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness + 1)
    if text:
        (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
        top = y1 - th - base - 4 if y1 - th - base - 4 >= 0 else y1
        x = min(max(x1, 0), max(w - tw - 4, 0))
        cv2.rectangle(image, (x, top), (x + tw + 4, top + th + base + 4), color, -1)
        luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
        ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
        cv2.putText(image, text, (x + 2, top + th + 2), FONT, scale, ink, thickness, cv2.LINE_AA)
    return image
