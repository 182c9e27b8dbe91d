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
        markers = [_square(kp, radius + 1) for inst in instances if draw_kpts
                   for kp in _shown_keypoints(inst, kpt_conf_thresh)]
        _place_tags(image, [inst for inst in reversed(instances) if inst.get("bbox")], markers, s)
    if legend:
        _legend(image, s, radius)
    return image


def _color(inst: dict) -> tuple[int, int, int]:
    return CLASS_COLORS[class_id(inst["class"])]


def _polygons(inst: dict) -> list[np.ndarray]:
    polys = inst.get("polygons") or ([inst["polygon"]] if inst.get("polygon") else [])
    return [np.round(np.asarray(p, float)).astype(np.int32).reshape(-1, 1, 2) for p in polys if len(p) >= 3]


def _is_shown(kp: list, is_prediction: bool, thresh: float) -> bool:
    """A predicted keypoint at or above the confidence threshold, a labelled one unless v=0."""
    return kp[2] >= thresh if is_prediction else kp[2] > 0


def _shown_keypoints(inst: dict, thresh: float) -> list[list]:
    return [kp for kp in inst.get("keypoints") or [] if _is_shown(kp, "score" in inst, thresh)]


def _keypoints(image: np.ndarray, keypoints: list, is_prediction: bool, thresh: float, thick: int,
               radius: int) -> None:
    shown = [_is_shown(kp, is_prediction, thresh) for kp in keypoints]
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


Rect = tuple[int, int, int, int]   # x1, y1, x2, y2


def _square(kp: list, half: int) -> Rect:
    x, y = int(round(kp[0])), int(round(kp[1]))
    return x - half, y - half, x + half, y + half


def _overlap(a: Rect, b: Rect) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def _tag_box(inst: dict, s: float) -> tuple[str, int, int, int, int, float, int]:
    """A tag's text and measurements: (text, width, height, padding, baseline, font scale, thickness)."""
    text = inst["class"] + (f" {inst['score']:.2f}" if "score" in inst else "")
    w, h, base, scale, th = _text_size(text, s)
    pad = max(2, round(3 * s))
    return text, w + 2 * pad, h + base + 2 * pad, pad, base, scale, th


def tag_layout(shape: tuple[int, ...], instances: list[dict], markers: list[Rect], s: float) -> list[Rect]:
    """Where each instance's tag goes (in the order given: most confident first): at the first of its box's
    corners (above its top-left, then inside it, then the other corners) where it hides no earlier tag and no
    keypoint marker, clamped into the image; where every corner collides, at the one that hides least. Tags of
    nested boxes (one instrument named twice) so never cover each other, and each stays at its own box."""
    height, width = shape[:2]
    taken, rects = list(markers), []
    for inst in instances:
        _, tw, tall, *_ = _tag_box(inst, s)
        x1, y1, x2, y2 = (int(round(v)) for v in inst["bbox"])
        corners = [(x1, y1 - tall), (x1, y1), (x2 - tw, y1 - tall), (x2 - tw, y1), (x1, y2), (x1, y2 - tall),
                   (x2 - tw, y2), (x2 - tw, y2 - tall)]
        options = [(x, y, x + tw, y + tall) for x, y in
                   ((min(max(x, 0), max(0, width - tw)), min(max(y, 0), max(0, height - tall))) for x, y in corners)]
        hidden = [sum(_overlap(r, t) for t in taken) for r in options]
        rects.append(options[hidden.index(min(hidden))])
        taken.append(rects[-1])
    return rects


def _place_tags(image: np.ndarray, instances: list[dict], markers: list[Rect], s: float) -> None:
    """Text on a filled box in each instance's colour, where `tag_layout` puts it."""
    for inst, (x1, y1, x2, y2) in zip(instances, tag_layout(image.shape, instances, markers, s)):
        text, _, _, pad, base, scale, th = _tag_box(inst, s)
        color = _color(inst)
        cv2.rectangle(image, (x1, y1), (x2, y2), color, -1)
        cv2.putText(image, text, (x1 + pad, y2 - base - pad), FONT, scale, BLACK if sum(color) > 400 else WHITE, th,
                    cv2.LINE_AA)


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
