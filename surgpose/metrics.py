"""Scoring predictions against sparse real-footage labels (`keypoints.json`, as in `../shared/real/oss_dev`).

Real frames carry a few points per tool, not boxes: needle holder kp0/kp1 jaw tips and kp2 joint (box-lock
pivot); tweezers kp0/kp1 arm tips and kp2 a nub part-way down one arm (not our `joint`, so tweezers are
judged on their tips only). Left/right is unreliable, some tools are `keypoints_unordered` only (which
point is a tip is unknown) and labels were recovered from painted dots (about 5 px off). The metrics are
built for those labels; no Ultralytics here, so they run anywhere.

Matching, per image and class:

* A **GT tool** is a labelled tool with at least one point that has v > 0 and lies inside the image.
  A tool labelled with every point out of frame is *out of view*: the body may still show, so the
  best-scoring unmatched prediction of its class is ignored (neither hit nor false detection).
* A prediction (score >= `conf`) **covers** a GT tool when its box, padded by `BOX_PAD` (2 %) of the
  image diagonal on every side, contains a strict majority of the tool's in-frame points (1 of 1,
  2 of 2, 2 of 3), and its diagonal is at most `max_box` (`MAX_BOX`, 75 %) of the image diagonal:
  the labels have no boxes, so without a cap one box around the whole frame would "find" every tool.
  (On `oss_dev` the boxes that find a tool span 19-56 % of the diagonal.) A larger box is a false detection.
* Predictions are taken by descending score, as a user would trust them; each takes the unmatched GT
  tool of its class that it covers best (most points inside, then nearest box centre). Each prediction
  matches at most one tool and each tool at most one prediction.

Metrics, per class and over all classes (`all`):

* `recall`: matched GT tools / GT tools (ordered and unordered-only tools alike).
* `tip_pck@2%`, `tip_pck@5%`: fraction of GT tips (v > 0, in frame, of tools with `keypoints_ordered`)
  whose predicted tip lies within 2 % / 5 % of the image diagonal (about 44 / 110 px at 1920x1080).
  The two tips are matched order-free (the assignment with the smaller total distance). Tips of
  undetected tools, or of detections without keypoints, are misses. `tips` is the denominator.
* `joint_pck@2%`, `joint_pck@5%`: the same for the needle-holder joint (GT kp2 against predicted
  `joint`); `joints` is the denominator, None for tweezers.
* `median_tip_err_px`: median pixel distance over matched tips of detected tools (None without any).
* `fp_per_image`: predictions matched to no GT tool (nor ignored), per labelled image.
* `outcomes`: how each GT tool went, for error analysis: `found` (tips within 5 %, or no tips to judge),
  `tips_off` (found, but a tip beyond 5 % or no keypoints), `other_class` (missed, but a prediction of
  another class covers it: a tweezers boxed as a needle holder) and `no_box` (nothing covers it).

Predicted keypoints are used whatever their confidence: the position is the model's answer.
`real_score` folds this into one number for model selection.
"""
from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path
from typing import Any

from surgpose import schema

#: Box padding (fraction of the image diagonal) when deciding whether a box covers a tool's points.
BOX_PAD = 0.02

#: Largest box (diagonal, fraction of the image diagonal) that can find a tool; see the module docstring.
MAX_BOX = 0.75

#: PCK thresholds as fractions of the image diagonal.
PCK_THRESHOLDS: tuple[float, ...] = (0.02, 0.05)

#: Keypoint indices in our predictions.
TIP_IDX = (schema.KEYPOINTS.index("tip_left"), schema.KEYPOINTS.index("tip_right"))
JOINT_IDX = schema.KEYPOINTS.index("joint")

#: Labelled tool class whose kp2 is our `joint` (the tweezers' kp2 is a nub, not comparable).
JOINT_CLASS = "needle_holder"

ALL = "all"

#: What became of a GT tool (see `outcomes` in the module docstring).
OUTCOMES = ("found", "tips_off", "other_class", "no_box")


def pck_key(kind: str, t: float) -> str:
    """Metric key such as `tip_pck@5%`."""
    return f"{kind}_pck@{t * 100:g}%"


def _in_frame(p: list[float], w: float, h: float) -> bool:
    return p[2] > 0 and 0 <= p[0] <= w and 0 <= p[1] <= h


def _point(p: list[float], w: float, h: float) -> list[float] | None:
    return [float(p[0]), float(p[1])] if _in_frame(p, w, h) else None


def _check_points(points: Any, where: str) -> list[list[float]]:
    if not isinstance(points, list) or not all(isinstance(p, (list, tuple)) and len(p) == 3 for p in points):
        raise ValueError(f"{where}: expected a list of [x, y, v] points, got {points!r}")
    return [[float(x), float(y), float(v)] for x, y, v in points]


def parse_real_labels(document: dict, source: str = "keypoints.json") -> dict[str, dict]:
    """Normalise a `keypoints.json` document: `{file name: {width, height, diagonal, tools, out_of_view}}`.

    Each tool is `{class, ordered, points: in-frame [x, y] of every labelled point, tips: [[x, y] | None] * 2
    (ordered tools) or None, joint: [x, y] | None (ordered needle holders)}`.
    """
    images = document.get("images") if isinstance(document, dict) else None
    if not isinstance(images, dict):
        raise ValueError(f"{source}: expected {{'images': {{file name: {{width, height, tools}}}}}}")
    labels = {}
    for name, rec in images.items():
        where = f"{source}: {name}"
        try:
            w, h, tools = float(rec["width"]), float(rec["height"]), rec["tools"]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{where}: needs width, height and tools") from None
        if not isinstance(tools, dict):
            raise ValueError(f"{where}: tools must map a class to its points, got {tools!r}")
        gt, out_of_view = [], []
        for cls, tool in tools.items():
            if cls not in schema.CLASSES:
                raise ValueError(f"{where}: unknown tool {cls!r}; expected one of {', '.join(schema.CLASSES)}")
            if not isinstance(tool, dict):
                raise ValueError(f"{where} {cls}: expected {{keypoints_unordered, keypoints_ordered}}, got {tool!r}")
            ordered = tool.get("keypoints_ordered")
            ordered = None if ordered is None else _check_points(ordered, f"{where} {cls}")
            if ordered is not None and len(ordered) != 3:
                raise ValueError(f"{where} {cls}: keypoints_ordered needs 3 points (tip, tip, joint/nub)")
            unordered = tool.get("keypoints_unordered")
            unordered = _check_points((ordered or []) if unordered is None else unordered, f"{where} {cls}")
            points = [[x, y] for x, y, v in unordered if _in_frame([x, y, v], w, h)]
            if not points:
                out_of_view.append(cls)
                continue
            gt.append({
                "class": cls,
                "ordered": ordered is not None,
                "points": points,
                "tips": None if ordered is None else [_point(p, w, h) for p in ordered[:2]],
                "joint": _point(ordered[2], w, h) if ordered is not None and cls == JOINT_CLASS else None,
            })
        labels[name] = {"width": w, "height": h, "diagonal": math.hypot(w, h), "tools": gt,
                        "out_of_view": out_of_view}
    return labels


def load_real_labels(real_dir: str | os.PathLike) -> dict[str, dict]:
    """Labels of a real-footage folder (`DIR/keypoints.json`, images in `DIR/images/`), see `parse_real_labels`."""
    real_dir = Path(real_dir)
    if not real_dir.is_dir():
        raise FileNotFoundError(f"real data folder not found: {real_dir}")
    path = real_dir / "keypoints.json"
    if not path.is_file():
        raise FileNotFoundError(f"{real_dir} has no keypoints.json (expected DIR/keypoints.json and DIR/images/)")
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"cannot parse {path}: {e}") from None
    return parse_real_labels(document, str(path))


def _covered(box: list[float], points: list[list[float]], pad: float) -> int:
    x1, y1, x2, y2 = box
    return sum(x1 - pad <= x <= x2 + pad and y1 - pad <= y <= y2 + pad for x, y in points)


def _dist(a: list[float], b: list[float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def tip_errors(gt_tips: list[list[float] | None], pred_tips: list[list[float]]) -> list[float | None]:
    """Pixel error of each GT tip (None where the GT tip is not labelled in frame), order-free: the
    assignment of the two predicted tips with the smaller total distance over the labelled tips."""
    best = None
    for order in ((0, 1), (1, 0)):
        errs = [None if g is None else _dist(g, pred_tips[j]) for g, j in zip(gt_tips, order)]
        total = sum(e for e in errs if e is not None)
        if best is None or total < best[0]:
            best = (total, errs)
    return best[1]


def match_image(instances: list[dict], label: dict, conf: float = 0.25, max_box: float = MAX_BOX) -> dict:
    """Match one image's predictions to its GT tools (see module docstring); per-tool errors and false detections."""
    pad = BOX_PAD * label["diagonal"]
    largest = max_box * label["diagonal"]
    preds = sorted((p for p in instances if p["score"] >= conf and p["class"] in schema.CLASSES),
                   key=lambda p: -p["score"])
    tools = label["tools"]

    def covered(pred: dict, tool: dict) -> int:
        """How many of the tool's points the box covers, when it covers most of them and is not too big; else 0."""
        x1, y1, x2, y2 = pred["bbox"]
        if math.hypot(x2 - x1, y2 - y1) > largest:   # too big: finds none
            return 0
        n = _covered(pred["bbox"], tool["points"], pad)
        return n if 2 * n > len(tool["points"]) else 0

    owner: list[dict | None] = [None] * len(tools)
    unmatched = []
    for pred in preds:
        best, best_key = None, None
        x1, y1, x2, y2 = pred["bbox"]
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        for k, tool in enumerate(tools):
            if owner[k] is not None or tool["class"] != pred["class"] or not (n := covered(pred, tool)):
                continue
            mx = sum(p[0] for p in tool["points"]) / len(tool["points"])
            my = sum(p[1] for p in tool["points"]) / len(tool["points"])
            key = (-n / len(tool["points"]), math.hypot(mx - cx, my - cy))
            if best_key is None or key < best_key:
                best, best_key = k, key
        if best is None:
            unmatched.append(pred)
        else:
            owner[best] = pred
    ignored = []
    for cls in label["out_of_view"]:
        extra = next((p for p in unmatched if p["class"] == cls), None)  # highest score first
        if extra is not None:
            unmatched.remove(extra)
            ignored.append(extra)
    results = []
    for tool, pred in zip(tools, owner):
        kpts = pred["keypoints"] if pred is not None and pred.get("keypoints") else None
        tips: list[float | None] = []  # one entry per tip labelled in frame; None: missed
        if tool["tips"] is not None:
            errs = tip_errors(tool["tips"], [kpts[i][:2] for i in TIP_IDX]) if kpts else [None, None]
            tips = [None if e is None else round(e, 2) for e, g in zip(errs, tool["tips"]) if g is not None]
        joint = _dist(tool["joint"], kpts[JOINT_IDX][:2]) if tool["joint"] is not None and kpts else None
        if pred is None:
            as_other = any(p["class"] != tool["class"] and covered(p, tool) for p in preds)
            outcome = "other_class" if as_other else "no_box"
        else:
            within = max(PCK_THRESHOLDS) * label["diagonal"]
            outcome = "found" if all(e is not None and e <= within for e in tips) else "tips_off"
        results.append({"class": tool["class"], "ordered": tool["ordered"], "detected": pred is not None,
                        "score": None if pred is None else pred["score"], "tip_err_px": tips,
                        "joint_labelled": tool["joint"] is not None,
                        "joint_err_px": None if joint is None else round(joint, 2), "outcome": outcome})
    return {"tools": results,
            "false_detections": {cls: sum(p["class"] == cls for p in unmatched) for cls in schema.CLASSES},
            "ignored": len(ignored)}


def _summary(tools: list[tuple[dict, float]], false_detections: int, n_images: int, joint: bool) -> dict:
    """Metrics over (tool result of `match_image`, image diagonal) pairs."""
    n = len(tools)
    detected = sum(t["detected"] for t, _ in tools)
    tips = [(e, d) for t, d in tools for e in t["tip_err_px"]]
    joints = [(t["joint_err_px"], d) for t, d in tools if t["joint_labelled"]]
    tip_errs = [e for e, _ in tips if e is not None]
    out: dict[str, Any] = {"gt_tools": n, "detected": detected, "recall": detected / n if n else None,
                           "ordered_tools": sum(t["ordered"] for t, _ in tools), "tips": len(tips)}
    for th in PCK_THRESHOLDS:
        out[pck_key("tip", th)] = _pck(tips, th)
    out["joints"] = len(joints) if joint else None
    for th in PCK_THRESHOLDS:
        out[pck_key("joint", th)] = _pck(joints, th) if joint else None
    out["median_tip_err_px"] = round(statistics.median(tip_errs), 2) if tip_errs else None
    out["matched_tips"] = len(tip_errs)
    out["false_detections"] = false_detections
    out["fp_per_image"] = false_detections / n_images if n_images else None
    out["outcomes"] = {kind: sum(t["outcome"] == kind for t, _ in tools) for kind in OUTCOMES}
    return out


def _pck(errors: list[tuple[float | None, float]], t: float) -> float | None:
    """Fraction of (error, diagonal) pairs with an error within t * diagonal (None errors are misses)."""
    return sum(e is not None and e <= t * d for e, d in errors) / len(errors) if errors else None


def score_real(predictions: dict[str, list[dict]], labels: dict[str, dict], conf: float = 0.25,
               max_box: float = MAX_BOX) -> dict:
    """Score predictions (`{file name: [instance, ...]}` in original pixels, or a whole predictions.json
    document) against `load_real_labels` output; every labelled image needs an entry (possibly empty).

    Returns `{images, conf, box_pad, max_box, pck_thresholds, ignored_detections, classes: {class: metrics},
    all: metrics, per_image: {file name: match_image(...)}, score: real_score(...)}`.
    """
    if "images" in predictions and "keypoint_names" in predictions:
        if list(predictions["keypoint_names"]) != list(schema.KEYPOINTS):
            raise ValueError(f"predictions have keypoints {predictions['keypoint_names']}, "
                             f"expected {list(schema.KEYPOINTS)}")
        predictions = predictions["images"]
    missing = sorted(set(labels) - set(predictions))
    if missing:
        raise ValueError(f"no predictions for {len(missing)} of {len(labels)} labelled images "
                         f"(e.g. {', '.join(missing[:3])}): predict the whole labelled folder")
    per_image = {}
    for name in sorted(labels):
        per_image[name] = match_image(predictions[name], labels[name], conf, max_box)
    n_images = len(labels)
    classes = {}
    for cls in schema.CLASSES:
        tools = [(t, labels[name]["diagonal"]) for name, m in per_image.items() for t in m["tools"]
                 if t["class"] == cls]
        fd = sum(m["false_detections"][cls] for m in per_image.values())
        classes[cls] = _summary(tools, fd, n_images, joint=cls == JOINT_CLASS)
    all_tools = [(t, labels[name]["diagonal"]) for name, m in per_image.items() for t in m["tools"]]
    overall = _summary(all_tools, sum(c["false_detections"] for c in classes.values()), n_images, joint=True)
    metrics = {"images": n_images, "conf": conf, "box_pad": BOX_PAD, "max_box": max_box,
               "pck_thresholds": list(PCK_THRESHOLDS),
               "ignored_detections": sum(m["ignored"] for m in per_image.values()),
               "classes": classes, ALL: overall, "per_image": per_image}
    metrics["score"] = real_score(metrics)
    return metrics


def real_score(metrics: dict) -> float:
    """One number for model selection: the mean over classes with GT tools of (recall + tip PCK@5%) / 2,
    so finding the tool and putting its tips within 5 % of the diagonal weigh the same; a class without
    scorable tips counts its recall alone. 0 when nothing is labelled."""
    key = pck_key("tip", max(PCK_THRESHOLDS))
    parts = []
    for m in metrics["classes"].values():
        if not m["gt_tools"]:
            continue
        parts.append(m["recall"] if m[key] is None else (m["recall"] + m[key]) / 2)
    return sum(parts) / len(parts) if parts else 0.0
