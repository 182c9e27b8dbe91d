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

**Hand-box labels** (`hands.json`, as in `../shared/real/apas_dev`): one box per hand and the tool it holds
(`needle_holder`, `tweezers`, `scissors` or `none`), no box around the tools. A prediction (score >= `conf`)
**belongs to the hand** whose box, grown by `HAND_GROW` (25 %) of its width and height on every side (a held
tool sticks out of the hand), covers the largest share of the prediction's box, if that share is over half;
else it is **near no hand**. Per tool of ours: `recall` (share of the hands holding it that own a box of its
class), `as_other` (hands holding it that own no box of its class but one of the other class); false alarms:
the share of empty hands and of hands holding scissors that own any box (`false_alarms`); `far_per_image`:
boxes near no hand per frame (instruments lying on the table, or false detections: the labels cannot tell).
`real_score` is then the mean recall over the tools.
"""
from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Iterator
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

#: Growth of a hand box on every side, as a share of its width and height, before predictions are matched to
#: hands (hand-box labels): a held instrument sticks out of the hand.
HAND_GROW = 0.25

#: What a hand holds in hand-box labels: one of our classes, or these, which must get no box.
OTHER_HAND_TOOLS = ("scissors", "none")

#: The label files a real-footage folder can hold.
KEYPOINT_LABELS, HAND_LABELS = "keypoints.json", "hands.json"

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


def _image_entries(document: dict, source: str, key: str) -> Iterator[tuple[str, str, float, float, Any]]:
    """(file name, where for errors, width, height, the entry's `key`) of each image of a label document."""
    images = document.get("images") if isinstance(document, dict) else None
    if not isinstance(images, dict):
        raise ValueError(f"{source}: expected {{'images': {{file name: {{width, height, {key}}}}}}}")
    for name, rec in images.items():
        where = f"{source}: {name}"
        try:
            w, h, entry = float(rec["width"]), float(rec["height"]), rec[key]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{where}: needs width, height and {key}") from None
        yield name, where, w, h, entry


def parse_real_labels(document: dict, source: str = "keypoints.json") -> dict[str, dict]:
    """Normalise a `keypoints.json` document: `{file name: {width, height, diagonal, tools, out_of_view}}`.

    Each tool is `{class, ordered, points: in-frame [x, y] of every labelled point, tips: [[x, y] | None] * 2
    (ordered tools) or None, joint: [x, y] | None (ordered needle holders)}`.
    """
    labels = {}
    for name, where, w, h, tools in _image_entries(document, source, "tools"):
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


def parse_hand_labels(document: dict, source: str = HAND_LABELS) -> dict[str, dict]:
    """Normalise a `hands.json` document: `{file name: {width, height, diagonal, hands: [{tool, box, side}]}}`."""
    tools = (*schema.CLASSES, *OTHER_HAND_TOOLS)
    labels = {}
    for name, where, w, h, hands in _image_entries(document, source, "hands"):
        if not isinstance(hands, list):
            raise ValueError(f"{where}: hands must be a list of {{tool, box}}, got {hands!r}")
        parsed = []
        for hand in hands:
            if not isinstance(hand, dict) or hand.get("tool") not in tools:
                raise ValueError(f"{where}: a hand's tool must be one of {', '.join(tools)}, got {hand!r}")
            box = hand.get("box")
            if not isinstance(box, list) or len(box) != 4 or not box[0] < box[2] or not box[1] < box[3]:
                raise ValueError(f"{where}: a hand's box must be [x1, y1, x2, y2] with x1 < x2, y1 < y2, got {box!r}")
            parsed.append({"tool": hand["tool"], "box": [float(v) for v in box], "side": hand.get("side")})
        labels[name] = {"width": w, "height": h, "diagonal": math.hypot(w, h), "hands": parsed}
    return labels


def load_real_labels(real_dir: str | os.PathLike) -> dict[str, dict]:
    """Labels of a real-footage folder (images in `DIR/images/`): `DIR/keypoints.json` (see `parse_real_labels`)
    or `DIR/hands.json` (see `parse_hand_labels`)."""
    real_dir = Path(real_dir)
    if not real_dir.is_dir():
        raise FileNotFoundError(f"real data folder not found: {real_dir}")
    found = [real_dir / f for f in (KEYPOINT_LABELS, HAND_LABELS) if (real_dir / f).is_file()]
    if not found:
        raise FileNotFoundError(f"{real_dir} has no {KEYPOINT_LABELS} or {HAND_LABELS} (expected one of them and "
                                "DIR/images/)")
    if len(found) > 1:
        raise ValueError(f"{real_dir} holds both {KEYPOINT_LABELS} and {HAND_LABELS}: keep one label file per folder")
    path = found[0]
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"cannot parse {path}: {e}") from None
    parse = parse_real_labels if path.name == KEYPOINT_LABELS else parse_hand_labels
    return parse(document, str(path))


def is_hand_labels(labels: dict[str, dict]) -> bool:
    """Whether `load_real_labels` read hand boxes (hands.json) rather than keypoints."""
    return any("hands" in rec for rec in labels.values())


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


def _per_image_predictions(predictions: dict, labels: dict[str, dict]) -> dict[str, list[dict]]:
    """`{file name: instances}` of a predictions dict or predictions.json document, one entry per labelled image."""
    if "images" in predictions and "keypoint_names" in predictions:
        if list(predictions["keypoint_names"]) != list(schema.KEYPOINTS):
            raise ValueError(f"predictions have keypoints {predictions['keypoint_names']}, "
                             f"expected {list(schema.KEYPOINTS)}")
        predictions = predictions["images"]
    missing = sorted(set(labels) - set(predictions))
    if missing:
        raise ValueError(f"no predictions for {len(missing)} of {len(labels)} labelled images "
                         f"(e.g. {', '.join(missing[:3])}): predict the whole labelled folder")
    return predictions


def score_real(predictions: dict[str, list[dict]], labels: dict[str, dict], conf: float = 0.25,
               max_box: float = MAX_BOX) -> dict:
    """Score predictions (`{file name: [instance, ...]}` in original pixels, or a whole predictions.json
    document) against `load_real_labels` output; every labelled image needs an entry (possibly empty).
    Hand-box labels are scored by `score_hands` (`max_box` does not apply to them).

    Returns `{format: "keypoints", images, conf, box_pad, max_box, pck_thresholds, ignored_detections,
    classes: {class: metrics}, all: metrics, per_image: {file name: match_image(...)}, score: real_score(...)}`.
    """
    if is_hand_labels(labels):
        return score_hands(predictions, labels, conf)
    predictions = _per_image_predictions(predictions, labels)
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
    metrics = {"format": "keypoints", "images": n_images, "conf": conf, "box_pad": BOX_PAD, "max_box": max_box,
               "pck_thresholds": list(PCK_THRESHOLDS),
               "ignored_detections": sum(m["ignored"] for m in per_image.values()),
               "classes": classes, ALL: overall, "per_image": per_image}
    metrics["score"] = real_score(metrics)
    return metrics


def grown(box: list[float], grow: float) -> list[float]:
    """`box` with `grow` of its width and height added on every side."""
    x1, y1, x2, y2 = box
    dx, dy = grow * (x2 - x1), grow * (y2 - y1)
    return [x1 - dx, y1 - dy, x2 + dx, y2 + dy]


def covered_share(box: list[float], cover: list[float]) -> float:
    """Share of `box`'s area inside `cover`."""
    w = min(box[2], cover[2]) - max(box[0], cover[0])
    h = min(box[3], cover[3]) - max(box[1], cover[1])
    area = (box[2] - box[0]) * (box[3] - box[1])
    return max(w, 0.0) * max(h, 0.0) / area if area > 0 else 0.0


def hand_of(box: list[float], hands: list[dict], grow: float = HAND_GROW) -> int | None:
    """Index of the hand a predicted box belongs to (the hand whose grown box covers the largest share of it, over
    half), None when it is near no hand."""
    shares = [covered_share(box, grown(hand["box"], grow)) for hand in hands]
    best = max(range(len(hands)), key=lambda i: shares[i], default=None)
    return best if best is not None and shares[best] > 0.5 else None


def match_hands(instances: list[dict], label: dict, conf: float = 0.25, grow: float = HAND_GROW) -> dict:
    """The boxes (score >= conf) each hand of one image owns, per class, and how many belong to no hand."""
    owned = [dict.fromkeys(schema.CLASSES, 0) for _ in label["hands"]]
    far = 0
    for pred in instances:
        if pred["score"] < conf or pred["class"] not in schema.CLASSES:
            continue
        k = hand_of(pred["bbox"], label["hands"], grow)
        if k is None:
            far += 1
        else:
            owned[k][pred["class"]] += 1
    return {"hands": [{"tool": hand["tool"], "boxes": boxes} for hand, boxes in zip(label["hands"], owned)],
            "far": far}


def score_hands(predictions: dict[str, list[dict]], labels: dict[str, dict], conf: float = 0.25,
                grow: float = HAND_GROW) -> dict:
    """Score predictions against hand-box labels (see the module docstring).

    Returns `{format: "hands", images, conf, hand_grow, classes: {class: {gt_tools, recall, found, as_other,
    as_other_share}}, false_alarms: {scissors|none: {hands, boxed, rate, boxes}}, boxes_near_no_hand,
    far_per_image, per_image: {file name: match_hands(...)}, score: real_score(...)}`.
    """
    predictions = _per_image_predictions(predictions, labels)
    per_image = {name: match_hands(predictions[name], labels[name], conf, grow) for name in sorted(labels)}
    hands = [hand for m in per_image.values() for hand in m["hands"]]
    classes = {}
    for cls in schema.CLASSES:
        holding = [h for h in hands if h["tool"] == cls]
        found = sum(h["boxes"][cls] > 0 for h in holding)
        other = sum(h["boxes"][cls] == 0 and any(n for c, n in h["boxes"].items() if c != cls) for h in holding)
        n = len(holding)
        classes[cls] = {"gt_tools": n, "found": found, "recall": found / n if n else None, "as_other": other,
                        "as_other_share": other / n if n else None}
    alarms = {}
    for tool in OTHER_HAND_TOOLS:
        holding = [h for h in hands if h["tool"] == tool]
        boxed = sum(any(h["boxes"].values()) for h in holding)
        alarms[tool] = {"hands": len(holding), "boxed": boxed, "rate": boxed / len(holding) if holding else None,
                        "boxes": sum(sum(h["boxes"].values()) for h in holding)}
    far = sum(m["far"] for m in per_image.values())
    metrics = {"format": "hands", "images": len(labels), "conf": conf, "hand_grow": grow, "classes": classes,
               "false_alarms": alarms, "boxes_near_no_hand": far,
               "far_per_image": far / len(labels) if labels else None, "per_image": per_image}
    metrics["score"] = real_score(metrics)
    return metrics


def real_summary(metrics: dict) -> dict:
    """The few figures of a `score_real` result that curves plot: `{conf, score, recall_<class>, and
    tip_pck<T>%_<class> (T: the largest PCK threshold, in %), fp_per_image (keypoint labels) or
    alarm_<scissors|none>, far_per_image (hand boxes)}`."""
    summary = {"conf": metrics["conf"], "score": metrics["score"],
               **{f"recall_{c}": m["recall"] for c, m in metrics["classes"].items()}}
    if metrics["format"] == "hands":
        return {**summary, **{f"alarm_{t}": m["rate"] for t, m in metrics["false_alarms"].items()},
                "far_per_image": metrics["far_per_image"]}
    top = max(PCK_THRESHOLDS)
    return {**summary, **{f"tip_pck{top * 100:g}%_{c}": m[pck_key("tip", top)] for c, m in metrics["classes"].items()},
            "fp_per_image": metrics[ALL]["fp_per_image"]}


def real_score(metrics: dict) -> float:
    """One number for model selection: the mean over classes with GT tools of (recall + tip PCK@5%) / 2,
    so finding the tool and putting its tips within 5 % of the diagonal weigh the same; a class without
    scorable tips (all of them with hand-box labels) counts its recall alone. 0 when nothing is labelled."""
    key = pck_key("tip", max(PCK_THRESHOLDS))
    parts = []
    for m in metrics["classes"].values():
        if not m["gt_tools"]:
            continue
        parts.append(m["recall"] if m.get(key) is None else (m["recall"] + m[key]) / 2)
    return sum(parts) / len(parts) if parts else 0.0


def kernel_inception_distance(x: Any, y: Any, subsets: int = 50, subset_size: int = 200,
                              seed: int = 0) -> tuple[float, float]:
    """Kernel inception distance (Binkowski et al., 2018) between two feature sets (n, d) and (m, d): the
    unbiased squared MMD with the cubic polynomial kernel k(a, b) = (a.b / d + 1)^3, averaged over `subsets`
    random subsets of `subset_size` rows of each (fewer when a set is smaller), as in the paper's code.
    Returns (mean, standard deviation over subsets); 0 in expectation for samples of one distribution, and
    unlike FID unbiased at small sample sizes."""
    import numpy as np

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(len(x), len(y)) < 2:
        raise ValueError(f"need two feature sets of the same width with 2+ rows each, got {x.shape} and {y.shape}")
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(x), len(y))
    d = x.shape[1]
    values = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), size, replace=False)]
        b = y[rng.choice(len(y), size, replace=False)]
        kxx, kyy, kxy = ((p @ q.T / d + 1) ** 3 for p, q in ((a, a), (b, b), (a, b)))
        off = size * (size - 1)
        values.append((kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))
