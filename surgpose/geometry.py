"""Mask, polygon and box helpers in image pixels."""
from __future__ import annotations

import cv2
import numpy as np


def mask_to_polygons(mask: np.ndarray, min_area: float = 4.0) -> list[list[list[float]]]:
    """External contours of a binary mask as polygons `[[x, y], ...]`, specks under `min_area` dropped."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        if cv2.contourArea(contour) < min_area:
            continue
        contour = cv2.approxPolyDP(contour, 0.5, True)
        if len(contour) >= 3:
            polygons.append(contour.reshape(-1, 2).astype(float).tolist())
    return polygons


def polygons_to_mask(polygons: list, height: int, width: int) -> np.ndarray:
    """Rasterise polygons `[[x, y], ...]` into a boolean mask."""
    mask = np.zeros((height, width), np.uint8)
    pts = [np.round(np.asarray(p, float).reshape(-1, 2)).astype(np.int32) for p in polygons if len(p) >= 3]
    if pts:
        cv2.fillPoly(mask, pts, 1)
    return mask.astype(bool)


def mask_bbox(mask: np.ndarray) -> list[float] | None:
    """`[x1, y1, x2, y2]` enclosing the mask's pixels, or None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def xyxy_to_xywh(box) -> list[float]:
    x1, y1, x2, y2 = box
    return [x1, y1, x2 - x1, y2 - y1]


def xywh_to_xyxy(box) -> list[float]:
    x, y, w, h = box
    return [x, y, x + w, y + h]
