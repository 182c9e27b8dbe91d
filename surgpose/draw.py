"""Overlays of instances (labels or predictions): masks, boxes, labels with confidences, skeleton and
keypoints, coloured from the schema. Occluded keypoints (v=1) are drawn hollow; v=0 is skipped."""
from __future__ import annotations

import cv2
import numpy as np

from surgpose.schema import CLASS_COLORS, CLASSES, KEYPOINT_COLORS, KEYPOINTS, SKELETON


def draw_instances(image: np.ndarray, instances: list[dict], draw_masks: bool = True, draw_kpts: bool = True,
                   draw_labels: bool = True, kpt_conf_thresh: float = 0.3, legend: bool = False) -> np.ndarray:
    """Draw onto `image` (BGR, modified in place and returned)."""
    scale = max(image.shape[:2]) / 960
    thick, radius = max(1, round(2 * scale)), max(2, round(4 * scale))
    if draw_masks:
        overlay = image.copy()
        for inst in instances:
            polys = inst.get("polygons") or ([inst["polygon"]] if inst.get("polygon") else [])
            pts = [np.round(np.asarray(p, float)).astype(np.int32) for p in polys if len(p) >= 3]
            if pts:
                cv2.fillPoly(overlay, pts, CLASS_COLORS[CLASSES.index(inst["class"])])
        cv2.addWeighted(overlay, 0.35, image, 0.65, 0, dst=image)
    for inst in instances:
        color = CLASS_COLORS[CLASSES.index(inst["class"])]
        if inst.get("bbox"):
            x1, y1, x2, y2 = (int(round(v)) for v in inst["bbox"])
            cv2.rectangle(image, (x1, y1), (x2, y2), color, thick)
            if draw_labels:
                text = inst["class"] + (f" {inst['score']:.2f}" if "score" in inst else "")
                _label(image, text, (x1, y1), color, scale)
        if draw_kpts and inst.get("keypoints"):
            _keypoints(image, inst["keypoints"], "score" in inst, kpt_conf_thresh, color, thick, radius)
    if legend:
        for i, name in enumerate(KEYPOINTS):
            org = (8, int(20 * scale) * (i + 1))
            cv2.circle(image, (org[0] + radius, org[1] - radius), radius, KEYPOINT_COLORS[i], -1)
            _label(image, name, (org[0] + 3 * radius, org[1] + 4), (40, 40, 40), scale * 0.8)
    return image


def _shown(kp, is_prediction: bool, thresh: float) -> bool:
    return kp[2] >= thresh if is_prediction else kp[2] > 0


def _keypoints(image, keypoints, is_prediction, thresh, color, thick, radius) -> None:
    for a, b in SKELETON:
        if _shown(keypoints[a], is_prediction, thresh) and _shown(keypoints[b], is_prediction, thresh):
            pa = tuple(int(round(v)) for v in keypoints[a][:2])
            pb = tuple(int(round(v)) for v in keypoints[b][:2])
            cv2.line(image, pa, pb, color, thick, cv2.LINE_AA)
    for i, kp in enumerate(keypoints):
        if not _shown(kp, is_prediction, thresh):
            continue
        centre = (int(round(kp[0])), int(round(kp[1])))
        hollow = not is_prediction and kp[2] == 1
        cv2.circle(image, centre, radius + 1, (0, 0, 0), -1 if not hollow else thick + 1, cv2.LINE_AA)
        cv2.circle(image, centre, radius, KEYPOINT_COLORS[i], thick if hollow else -1, cv2.LINE_AA)


def _label(image, text: str, org: tuple[int, int], color, scale: float) -> None:
    font, fs, th = cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, max(1, round(scale))
    (w, h), base = cv2.getTextSize(text, font, fs, th)
    x, y = org[0], max(org[1], h + base + 2)
    cv2.rectangle(image, (x, y - h - base - 2), (x + w + 4, y), color, -1)
    cv2.putText(image, text, (x + 2, y - base), font, fs, (255, 255, 255) if sum(color) < 400 else (0, 0, 0), th,
                cv2.LINE_AA)
