"""Mask, polygon, box and keypoint helpers in image pixels.

Polygons are lists of `[x, y]` vertices in OpenCV's convention (pixel centres at integer coordinates),
so `polygons_to_mask(mask_to_polygons(m))` gives back `m` up to the slight simplification.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from surgpose.schema import VIS_OUTSIDE

#: Largest distance (px) between a mask's contour and its simplified polygon: halves the vertex count of
#: stair-stepped edges without moving the outline by more than half a pixel.
SIMPLIFY_EPSILON_PX = 0.5


def mask_to_polygons(mask: np.ndarray, min_area: float = 4.0) -> list[list[list[float]]]:
    """External contours of a binary mask as polygons `[[x, y], ...]`, specks under `min_area` px² dropped
    (they carry no shape and break polygon consumers that need three distinct vertices)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        if cv2.contourArea(contour) < min_area:
            continue
        contour = cv2.approxPolyDP(contour, SIMPLIFY_EPSILON_PX, True)
        if len(contour) >= 3:
            polygons.append(contour.reshape(-1, 2).astype(float).tolist())
    return polygons


def polygons_to_mask(polygons: Sequence, height: int, width: int) -> np.ndarray:
    """Rasterise polygons `[[x, y], ...]` into a boolean mask (the inverse of `mask_to_polygons`)."""
    mask = np.zeros((height, width), np.uint8)
    pts = [np.round(np.asarray(p, float).reshape(-1, 2)).astype(np.int32) for p in polygons if len(p) >= 3]
    if pts:
        cv2.fillPoly(mask, pts, 1)
    return mask.astype(bool)


def polygon_area(polygon: Sequence) -> float:
    """Area (px²) enclosed by one polygon `[[x, y], ...]`."""
    return float(cv2.contourArea(np.asarray(polygon, np.float32).reshape(-1, 2)))


def mask_bbox(mask: np.ndarray) -> list[float] | None:
    """`[x1, y1, x2, y2]` enclosing the mask's pixels (x2, y2 exclusive), or None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def xyxy_to_xywh(box: Sequence[float]) -> list[float]:
    """Corner box to COCO's `[x, y, width, height]`."""
    x1, y1, x2, y2 = box
    return [x1, y1, x2 - x1, y2 - y1]


def xywh_to_xyxy(box: Sequence[float]) -> list[float]:
    """COCO's `[x, y, width, height]` to a corner box."""
    x, y, w, h = box
    return [x, y, x + w, y + h]


def clip_keypoints(keypoints: Sequence[Sequence[float]], width: int, height: int) -> list[list]:
    """Ground-truth keypoints in our convention: a point outside the image, or marked absent, becomes
    `[0, 0, 0]` (user files mark absent points with arbitrary coordinates, and YOLO rejects them off-image)."""
    return [[float(x), float(y), int(v)] if v > VIS_OUTSIDE and 0 <= x <= width - 1 and 0 <= y <= height - 1
            else [0.0, 0.0, VIS_OUTSIDE] for x, y, v in keypoints]
