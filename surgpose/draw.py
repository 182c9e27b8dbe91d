"""Overlays of instance dicts, labels and predictions alike: translucent masks, boxes, class labels with
confidences, skeleton and keypoints, all coloured from the schema.

An instance with a `score` is a prediction: its keypoints' third value is a confidence, drawn when at or
above `kpt_conf_thresh`. Otherwise it is a label: visible keypoints (v=2) are filled discs, hidden ones
(v=1) rings, and v=0 is not drawn. Sizes are tuned for 960x544 and scale with the image.
"""
from __future__ import annotations

import cv2
import numpy as np

from surgpose.schema import CLASS_COLORS, CLASSES, KEYPOINT_COLORS, KEYPOINTS, SKELETON, VIS_OCCLUDED, class_id

MASK_ALPHA = 0.4
FONT = cv2.FONT_HERSHEY_SIMPLEX
BLACK, WHITE = (0, 0, 0), (255, 255, 255)


def draw_instances(image: np.ndarray, instances: list[dict], draw_masks: bool = True, draw_kpts: bool = True,
                   draw_labels: bool = True, kpt_conf_thresh: float = 0.3, legend: bool = False) -> np.ndarray:
    """Draw onto `image` (BGR, modified in place and returned), masks first so boxes, skeletons and text
    stay crisp on top; `legend` adds a key of class and keypoint colours along the bottom edge."""
    s = max(image.shape[:2]) / 960
    thick, radius = max(1, round(2 * s)), max(3, round(5 * s))
    instances = sorted(instances, key=lambda inst: inst.get("score", 0.0))   # the most confident drawn on top
    if draw_masks:
        overlay = image.copy()
        outlines = []
        for inst in instances:
            pts = _polygons(inst)
            if pts:
                cv2.fillPoly(overlay, pts, _color(inst))
                outlines.append((pts, _color(inst)))
        cv2.addWeighted(overlay, MASK_ALPHA, image, 1 - MASK_ALPHA, 0, dst=image)
        for pts, color in outlines:
            cv2.polylines(image, pts, True, color, 1, cv2.LINE_AA)
    for inst in instances:
        if inst.get("bbox"):
            x1, y1, x2, y2 = (int(round(v)) for v in inst["bbox"])
            cv2.rectangle(image, (x1, y1), (x2, y2), _color(inst), thick)
        if draw_kpts and inst.get("keypoints"):
            _keypoints(image, inst["keypoints"], "score" in inst, kpt_conf_thresh, thick, radius)
    if draw_labels:
        for inst in instances:
            if inst.get("bbox"):
                text = inst["class"] + (f" {inst['score']:.2f}" if "score" in inst else "")
                x1, y1 = (int(round(v)) for v in inst["bbox"][:2])
                _tag(image, text, (x1, y1), _color(inst), s)
    if legend:
        _legend(image, s, radius)
    return image


def _color(inst: dict) -> tuple[int, int, int]:
    return CLASS_COLORS[class_id(inst["class"])]


def _polygons(inst: dict) -> list[np.ndarray]:
    polys = inst.get("polygons") or ([inst["polygon"]] if inst.get("polygon") else [])
    return [np.round(np.asarray(p, float)).astype(np.int32).reshape(-1, 1, 2) for p in polys if len(p) >= 3]


def _keypoints(image: np.ndarray, keypoints: list, is_prediction: bool, thresh: float, thick: int,
               radius: int) -> None:
    shown = [kp[2] >= thresh if is_prediction else kp[2] > 0 for kp in keypoints]
    pts = [(int(round(kp[0])), int(round(kp[1]))) for kp in keypoints]
    for a, b in SKELETON:  # dark under-stroke keeps the white line readable on bright metal
        if shown[a] and shown[b]:
            cv2.line(image, pts[a], pts[b], BLACK, thick + 2, cv2.LINE_AA)
            cv2.line(image, pts[a], pts[b], WHITE, thick, cv2.LINE_AA)
    for i, kp in enumerate(keypoints):
        if shown[i]:
            hollow = not is_prediction and kp[2] == VIS_OCCLUDED
            _dot(image, pts[i], radius, KEYPOINT_COLORS[i], hollow, thick)


def _dot(image: np.ndarray, centre: tuple[int, int], radius: int, color, hollow: bool, thick: int) -> None:
    """Keypoint marker with a black rim: a disc, or a ring for a hidden keypoint."""
    if hollow:
        cv2.circle(image, centre, radius, BLACK, thick + 2, cv2.LINE_AA)
        cv2.circle(image, centre, radius, color, thick, cv2.LINE_AA)
    else:
        cv2.circle(image, centre, radius + 1, BLACK, -1, cv2.LINE_AA)
        cv2.circle(image, centre, radius, color, -1, cv2.LINE_AA)


def _text_size(text: str, s: float) -> tuple[int, int, int, float, int]:
    scale, th = max(0.35, 0.5 * s), max(1, round(s))
    (w, h), base = cv2.getTextSize(text, FONT, scale, th)
    return w, h, base, scale, th


def _tag(image: np.ndarray, text: str, org: tuple[int, int], color, s: float) -> None:
    """Text on a filled box in `color`, sitting on top of `org` (below it at the image's top edge)."""
    w, h, base, scale, th = _text_size(text, s)
    pad = max(2, round(3 * s))
    x = min(max(org[0], 0), max(0, image.shape[1] - w - 2 * pad))
    y = org[1] if org[1] >= h + base + 2 * pad else org[1] + h + base + 2 * pad
    cv2.rectangle(image, (x, y - h - base - 2 * pad), (x + w + 2 * pad, y), color, -1)
    ink = BLACK if sum(color) > 400 else WHITE
    cv2.putText(image, text, (x + pad, y - base - pad), FONT, scale, ink, th, cv2.LINE_AA)


def _legend(image: np.ndarray, s: float, radius: int) -> None:
    """One row (wrapped if needed) along the bottom: class swatches, keypoint discs, the hidden-ring."""
    entries = [(name, "box", CLASS_COLORS[i]) for i, name in enumerate(CLASSES)]
    entries += [(name, "dot", KEYPOINT_COLORS[i]) for i, name in enumerate(KEYPOINTS)]
    entries.append(("hidden", "ring", WHITE))
    _, h, base, scale, th = _text_size("Ag", s)
    line_h, gap, marker = h + base + round(8 * s), round(14 * s), 2 * radius + round(6 * s)
    rows, row, x, width = [], [], 0, image.shape[1] - 2 * gap
    for name, kind, color in entries:
        w = marker + _text_size(name, s)[0] + gap
        if row and x + w > width:
            rows.append(row)
            row, x = [], 0
        row.append((x, name, kind, color))
        x += w
    rows.append(row)
    top = image.shape[0] - len(rows) * line_h - gap // 2
    panel = image[max(0, top - gap // 2):]
    panel[:] = (panel * 0.35).astype(np.uint8)  # darken the strip behind the key
    for r, row in enumerate(rows):
        cy = top + r * line_h + line_h // 2
        for x, name, kind, color in row:
            cx = gap + x + radius
            if kind == "box":
                cv2.rectangle(image, (cx - radius, cy - radius), (cx + radius, cy + radius), color, -1)
            else:
                _dot(image, (cx, cy), radius, color, kind == "ring", max(1, round(2 * s)))
            cv2.putText(image, name, (gap + x + marker, cy + h // 2), FONT, scale, WHITE, th, cv2.LINE_AA)
