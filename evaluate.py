"""Score one or several models (or predict.py outputs) side by side, on real labelled frames or a labelled dataset.

    python evaluate.py --weights a/best.pt b/best.pt --real ../shared/real/oss_dev
    python evaluate.py --weights out/predictions.json --real ../shared/real/oss_dev --conf 0.4
    python evaluate.py --weights best.pt --data output/yolo_data/data.yaml
    python evaluate.py --weights best.pt --data output/coco_data/annotations_val.json

`--weights` takes PyTorch/exported weights or `predictions.json` files written by predict.py (scored as
they are; predict them with a conf at or below --conf and every --sweep value).

--real DIR: a folder with `images/` and one label file (rules: surgpose/metrics.py):
  keypoints.json (keypoints per tool, the format of ../shared/real/oss_dev): per class detection recall, tip
  PCK at 2 % and 5 % of the image diagonal (tips matched order-free), needle-holder joint PCK, median tip error
  (px) and false detections per image; `score` = mean over classes of (recall + tip PCK@5%) / 2, for picking a
  model. A box finds a tool when it holds most of its labelled points and spans at most --max_box of the image
  diagonal.
  hands.json (one box per hand and the tool it holds, the format of ../shared/real/apas_dev): per tool the
  share of hands holding it that get a box of its class (`found`, also the score's recall) or only one of the
  other class (`as other`); the share of empty hands and of hands holding scissors that get any box (false
  alarms); boxes near no hand per frame. A box belongs to the hand whose box, grown by 25 % of its width and
  height on every side (held tools stick out of hands), covers the largest share of it, over half; else it is
  near no hand.
  --sweep CONF ...: the model predicts once, at the lowest of them and --conf, and is also scored at each
  CONF: recall against false boxes per image as the threshold moves, a table and a plot (<out>_sweep.png).
  Compare models there at matched false alarms: one that finds more at 0.25 may only be surer, not better.
  One --scales size only (fused scores of several sizes depend on the threshold they were predicted at).

--data: a YOLO data.yaml (Ultralytics val: box and pose or mask mAP50 / mAP50-95) or a COCO json
(the Detector at conf 0.001 scored by pycocotools: bbox, keypoints with the schema's OKS sigmas on
Ultralytics' scale, box area x 0.53, so both routes report one pose mAP, and segm for segmentation models;
images from --images or beside the json).

Prints one table row per weights x class and writes everything to --out (default ./evaluation.json).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from surgpose import offline

offline.configure()

import numpy as np  # noqa: E402

from surgpose import schema  # noqa: E402
from surgpose.cli import positive_float, unit_interval, user_errors_in_one_line  # noqa: E402
from surgpose.files import write_json  # noqa: E402
from surgpose.geometry import xyxy_to_xywh  # noqa: E402
from surgpose.inference import (  # noqa: E402
    DOUBLE_BOX_COVER,
    EXPORTS,
    Detector,
    add_model_args,
    check_weights,
    load_model,
    predict_images,
    repeated,
)
from surgpose.metrics import (  # noqa: E402
    ALL, HAND_GROW, MAX_BOX, OTHER_HAND_TOOLS, PCK_THRESHOLDS, load_real_labels, pck_key, real_summary, score_real)

#: Confidence threshold for mAP: the whole precision-recall curve is needed (as Ultralytics val does).
MAP_CONF = 0.001

#: OKS scale of a labelled instrument as a fraction of its box area (Ultralytics' pose validation uses 0.53).
OKS_BOX_AREA = 0.53


def sweep_misuse(sweep: Sequence[float], real: str | Path | None, scales: Sequence[float]) -> str | None:
    """Why `sweep` cannot go with these options (None: it can), for the command line and `run` alike."""
    if sweep and real is None:
        return "--sweep goes with --real (mAP already covers every threshold)"
    if sweep and len(scales) > 1:
        return "--sweep takes one --scales size: fused scores depend on the threshold they were made at"
    return None


def is_predictions(path: str | Path) -> bool:
    """A predict.py `predictions.json` (scored as it is) rather than model weights."""
    return Path(path).suffix.lower() == ".json"


def load_predictions(path: str | Path) -> dict[str, list[dict]]:
    """`{file name: [instance, ...]}` from a predict.py `predictions.json`, keypoint order checked."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read predictions {path}: {e}") from None
    if not isinstance(document, dict) or not isinstance(document.get("images"), dict):
        raise ValueError(f"{path} is not a predict.py predictions.json (no 'images' mapping)")
    if document.get("complete") is False:
        raise ValueError(f"{path}: predict.py was interrupted after {len(document['images'])} images "
                         "(\"complete\": false); rerun it to score all of them")
    names = document.get("keypoint_names", list(schema.KEYPOINTS))
    if list(names) != list(schema.KEYPOINTS):
        raise ValueError(f"{path} has keypoints {names}, expected {list(schema.KEYPOINTS)}")
    classes = {inst.get("class") for instances in document["images"].values() for inst in instances}
    if not classes <= set(schema.CLASSES):   # they would count neither as finds nor as false detections
        raise ValueError(f"{path} has classes {sorted(map(str, classes - set(schema.CLASSES)))}, "
                         f"expected {', '.join(schema.CLASSES)}")
    return document["images"]


def predict_files(detector: Detector, files: dict[str, Path], pre_clahe: bool = False, clahe_clip: float = 2.0,
                  desc: str = "evaluate") -> dict[str, list[dict]]:
    """Run the detector on each image; `{key: instances}` in original pixels."""
    predicted = predict_images(detector, files.values(), pre_clahe, clahe_clip, desc)
    return {key: instances for key, (_, _, instances) in zip(files, predicted)}


def evaluate_real(
    weights: str | Path,
    real_dir: str | Path,
    imgsz: int = 640,
    conf: float = 0.25,
    device: str = "",
    iou: float = 0.7,
    max_det: int = 300,
    scales: Sequence[float] = (1.0,),
    export: str | None = None,
    pre_clahe: bool = False,
    clahe_clip: float = 2.0,
    double_box_cover: float = DOUBLE_BOX_COVER,
    labels: dict | None = None,
    max_box: float = MAX_BOX,
    sweep: Sequence[float] = (),
) -> dict[str, Any]:
    """Metrics of one model (or predictions.json) on a real labelled folder (see surgpose/metrics.py).

    The model runs on every labelled image of `DIR/images`; `labels` (from `load_real_labels`) saves
    re-reading them when several models are compared. With `sweep` (confidence thresholds) the result also
    holds `sweep`: a `real_summary` per threshold, from the same predictions (made at the lowest threshold).
    """
    real_dir = Path(real_dir)
    labels = load_real_labels(real_dir) if labels is None else labels
    (path,) = check_weights([weights])
    if is_predictions(path):
        predictions = load_predictions(path)
    else:
        image_dir = real_dir / "images"
        if not image_dir.is_dir():
            raise FileNotFoundError(f"{real_dir} has no images/ folder")
        files = {name: image_dir / name for name in sorted(labels)}
        missing = [n for n, p in files.items() if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} labelled images missing from {image_dir} "
                                    f"(e.g. {', '.join(missing[:3])})")
        detector = Detector(path, imgsz=imgsz, conf=min([conf, *sweep]), iou=iou, device=device, max_det=max_det,
                            scales=scales, export=export, double_box_cover=double_box_cover)
        predictions = predict_files(detector, files, pre_clahe, clahe_clip, desc=f"evaluate {path.name}")
    result = {"weights": str(weights), "source": "predictions" if is_predictions(path) else "model",
              **score_real(predictions, labels, conf, max_box)}
    if sweep:
        result["sweep"] = [real_summary(score_real(predictions, labels, c, max_box)) for c in sorted(set(sweep))]
    return result


def _val_metrics(results_dict: dict) -> dict[str, float]:
    """Ultralytics metric names to ours: box_map50, box_map50_95, pose_/mask_ likewise."""
    suffix = {"B": "box", "P": "pose", "M": "mask"}
    out = {}
    for key, value in results_dict.items():
        for tag, name in suffix.items():
            if key == f"metrics/mAP50({tag})":
                out[f"{name}_map50"] = float(value)
            elif key == f"metrics/mAP50-95({tag})":
                out[f"{name}_map50_95"] = float(value)
    return out


def evaluate_yolo(weights: str | Path, data: str | Path, imgsz: int = 640, batch: int = 16, device: str = "",
                  iou: float = 0.7, split: str = "val") -> dict[str, Any]:
    """Ultralytics val on a YOLO data.yaml: box mAP and pose or mask mAP (50 and 50-95)."""
    import tempfile

    if is_predictions(weights):
        raise ValueError(f"{weights}: a predictions.json can be scored with --real or a COCO --data json, "
                         "not a data.yaml; pass the weights")
    model = load_model(weights)
    with tempfile.TemporaryDirectory(prefix="surgpose_val_") as tmp:  # Ultralytics writes a run folder
        results = model.val(data=str(data), imgsz=imgsz, batch=batch, device=device, conf=MAP_CONF, iou=iou,
                            split=split, plots=False, project=tmp, name="val", verbose=False)
    return {"weights": str(weights), "task": model.task, **_val_metrics(results.results_dict)}


def coco_results(predictions: dict[str, list[dict]], images: list[dict], cat_ids: dict[str, int]) -> list[dict]:
    """COCO result entries (bbox, score, keypoints, polygon segmentation) for instances keyed by file name."""
    out = []
    for img in images:
        for inst in predictions.get(Path(img["file_name"]).name, []):
            if inst["class"] not in cat_ids:
                continue
            res = {"image_id": img["id"], "category_id": cat_ids[inst["class"]], "score": float(inst["score"]),
                   "bbox": xyxy_to_xywh(inst["bbox"])}
            if inst.get("keypoints"):
                res["keypoints"] = [float(v) for kp in inst["keypoints"] for v in kp]
            if len(inst.get("polygon") or []) >= 3:
                res["segmentation"] = [np.asarray(inst["polygon"], float).ravel().tolist()]
            out.append(res)
    return out


def with_box_areas(gt: Any) -> Any:
    """A copy of a pycocotools COCO whose `area` (the OKS scale) is box width x height x `OKS_BOX_AREA`, as
    Ultralytics' pose validation computes it, so both --data routes report one pose mAP; the mask area of
    our files is a ninth of a thin instrument's box on average and would make OKS far stricter."""
    from pycocotools.coco import COCO

    scaled = COCO()
    scaled.dataset = {**gt.dataset, "annotations": [{**a, "area": a["bbox"][2] * a["bbox"][3] * OKS_BOX_AREA}
                                                    for a in gt.dataset["annotations"]]}
    with contextlib.redirect_stdout(io.StringIO()):
        scaled.createIndex()
    return scaled


def _cocoeval(gt: Any, dt: Any, iou_type: str) -> dict[str, float | None]:
    from pycocotools.cocoeval import COCOeval

    ev = COCOeval(gt, dt, iou_type)
    if iou_type == "keypoints":
        ev.params.kpt_oks_sigmas = np.array(schema.KPT_OKS_SIGMAS)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    name = {"bbox": "box", "keypoints": "pose", "segm": "mask"}[iou_type]
    stat = [None if s < 0 else float(s) for s in ev.stats[:2]]  # -1: nothing to score
    return {f"{name}_map50": stat[1], f"{name}_map50_95": stat[0]}


def evaluate_coco(
    weights: str | Path,
    annotations: str | Path,
    images: str | Path | None = None,
    imgsz: int = 640,
    iou: float = 0.7,
    device: str = "",
    max_det: int = 300,
    scales: Sequence[float] = (1.0,),
    export: str | None = None,
    pre_clahe: bool = False,
    clahe_clip: float = 2.0,
    double_box_cover: float = DOUBLE_BOX_COVER,
) -> dict[str, Any]:
    """pycocotools mAP of a model (run at conf 0.001) or predictions.json on a COCO file: bbox always,
    keypoints when predictions and labels have them, segm when predictions have polygons."""
    from surgpose.coco import category_names, load_coco, resolve_coco_image

    annotations = Path(annotations)
    gt = load_coco(annotations)
    if not gt.dataset.get("annotations"):
        raise ValueError(f"{annotations} has no annotations to score against")
    with_keypoints = any("keypoints" in ann for ann in gt.dataset["annotations"])
    for ann in gt.dataset["annotations"]:  # fields COCOeval needs that hand-made files may omit
        ann.setdefault("iscrowd", 0)
        ann.setdefault("area", float(ann["bbox"][2] * ann["bbox"][3]))
        if with_keypoints:   # an instrument without keypoint labels: all absent, so OKS ignores it (COCO's rule)
            if not ann.get("keypoints"):
                ann["keypoints"], ann["num_keypoints"] = [0] * 3 * schema.NUM_KEYPOINTS, 0
            ann.setdefault("num_keypoints", sum(v > 0 for v in ann["keypoints"][2::3]))
    cat_ids = {name: cid for cid, name in category_names(gt).items()}
    imgs = gt.loadImgs(sorted(gt.getImgIds()))
    twins = repeated(Path(img["file_name"]).name for img in imgs)
    if twins:   # predictions are matched to images by file name
        raise ValueError(f"{annotations} names several images {', '.join(twins[:3])} (in other folders); "
                         "predictions could not tell them apart: score one folder's COCO file at a time")
    (path,) = check_weights([weights])
    task = None
    if is_predictions(path):
        predictions = load_predictions(path)
        missing = sorted({Path(img["file_name"]).name for img in imgs} - set(predictions))
        if missing:
            raise ValueError(f"{path} has no predictions for {len(missing)} of {len(imgs)} images of {annotations} "
                             f"(e.g. {', '.join(missing[:3])}): predict the whole image folder")
    else:
        files = {Path(img["file_name"]).name: resolve_coco_image(img["file_name"], annotations, images)
                 for img in imgs}
        detector = Detector(path, imgsz=imgsz, conf=MAP_CONF, iou=iou, device=device, max_det=max_det,
                            scales=scales, export=export, double_box_cover=double_box_cover)
        task = detector.tasks[0]
        predictions = predict_files(detector, files, pre_clahe, clahe_clip, desc=f"evaluate {path.name}")
    results = coco_results(predictions, imgs, cat_ids)
    metrics: dict[str, Any] = {"weights": str(weights), "task": task}
    if not results:
        return {**metrics, "box_map50": 0.0, "box_map50_95": 0.0}
    seg_results = [dict(r) for r in results if "segmentation" in r]  # before loadRes gives the rest box outlines
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
    metrics.update(_cocoeval(gt, dt, "bbox"))
    gt_kpts = [a.get("keypoints") for a in gt.dataset["annotations"]]
    if all("keypoints" in r for r in results) and any(gt_kpts):
        if any(len(k) != 3 * schema.NUM_KEYPOINTS for k in gt_kpts):
            raise ValueError(f"{annotations} keypoints are not {schema.NUM_KEYPOINTS} [x, y, v] triples "
                             f"({', '.join(schema.KEYPOINTS)})")
        metrics.update(_cocoeval(with_box_areas(gt), dt, "keypoints"))   # the same detections, OKS on box areas
    if seg_results and any(a.get("segmentation") for a in gt.dataset["annotations"]):
        with contextlib.redirect_stdout(io.StringIO()):
            seg_dt = gt.loadRes(seg_results)
        metrics.update(_cocoeval(gt, seg_dt, "segm"))
    return metrics


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]], text_cols: int = 2) -> str:
    """Columns aligned: the first `text_cols` (text) left, numbers right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        lines.append("  ".join(c.ljust(w) if i < text_cols else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)


def hands_table(results: list[dict]) -> str:
    """The printed summary of hand-box scores: per weights, a row per tool a hand holds, then `all`."""
    header = ["weights", "hand holds", "hands", "found", "as other", "any box", "far/img", "score"]
    rows = []
    for res in results:
        for cls, m in res["classes"].items():
            rows.append([res["weights"], cls, _fmt(m["gt_tools"]), _fmt(m["recall"]), _fmt(m["as_other_share"]),
                         "", "", ""])
        for tool, m in res["false_alarms"].items():
            rows.append([res["weights"], tool, _fmt(m["hands"]), "", "", _fmt(m["rate"]), "", ""])
        n_hands = sum(m["gt_tools"] for m in res["classes"].values()) + sum(
            res["false_alarms"][t]["hands"] for t in OTHER_HAND_TOOLS)
        rows.append([res["weights"], ALL, _fmt(n_hands), "", "", "", _fmt(res["far_per_image"], 2), _fmt(res["score"])])
    return _table(header, rows)


def sweep_table(results: list[dict]) -> str:
    """The printed sweep: per weights, a row per confidence threshold."""
    keys = [k for k in results[0]["sweep"][0] if k != "conf"]
    header = ["weights", "conf", *[k.replace("_per_image", "/img").replace("_needle_holder", " NH")
                                   .replace("_tweezers", " T").replace("_pck", "@") for k in keys]]
    rows = [[r["weights"], f"{point['conf']:g}", *[_fmt(point[k]) for k in keys]]
            for r in results for point in r["sweep"]]
    return _table(header, rows, text_cols=1)


def plot_sweep(document: dict, out: str | Path) -> None:
    """Recall of each class against false boxes per image, a line per weights, the --conf point starred."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = document["results"]
    false_key = "fp_per_image" if "fp_per_image" in results[0]["sweep"][0] else "far_per_image"
    names = [Path(r["weights"]).name for r in results]
    labels = names if len(set(names)) == len(names) else [r["weights"] for r in results]
    fig, axes = plt.subplots(1, len(schema.CLASSES), figsize=(5.2 * len(schema.CLASSES), 4), squeeze=False)
    for ax, cls in zip(axes[0], schema.CLASSES):
        for r, label in zip(results, labels):
            points = [p for p in r["sweep"] if p[f"recall_{cls}"] is not None]   # None: no such tool labelled
            line, = ax.plot([p[false_key] for p in points], [p[f"recall_{cls}"] for p in points], marker="o", ms=3,
                            label=label)
            at = real_summary(r)
            if at[f"recall_{cls}"] is not None:
                ax.plot(at[false_key], at[f"recall_{cls}"], marker="*", ms=12, color=line.get_color())
        ax.set_xlabel("false detections per image" if false_key == "fp_per_image" else "boxes near no hand per image")
        ax.set_ylabel(f"{cls} recall" if false_key == "fp_per_image" else f"hands holding a {cls} found")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    settings = document["settings"]
    fig.suptitle(f"{Path(document['real']).name}: confidence {settings['sweep'][0]:g}-{settings['sweep'][-1]:g} "
                 f"(star: --conf {settings['conf']:g})")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def format_table(document: dict) -> str:
    """The printed summary of a `run` document: one row per weights x class (real keypoints), per weights x hand
    tool (real hand boxes, `hands_table`) or per weights (mAP)."""
    if document["mode"] == "real" and document["results"][0].get("format") == "hands":
        return hands_table(document["results"])
    if document["mode"] == "real":
        header = ["weights", "class", "GT", "recall", "tips",
                  *[f"tip@{t * 100:g}%" for t in PCK_THRESHOLDS], "joints",
                  *[f"joint@{t * 100:g}%" for t in PCK_THRESHOLDS], "med px", "FP/img", "tips off", "as other",
                  "no box", "score"]
        rows = []
        for res in document["results"]:
            for cls, m in [*res["classes"].items(), (ALL, res[ALL])]:
                rows.append([res["weights"], cls, _fmt(m["gt_tools"]), _fmt(m["recall"]), _fmt(m["tips"]),
                             *[_fmt(m[pck_key("tip", t)]) for t in PCK_THRESHOLDS], _fmt(m["joints"]),
                             *[_fmt(m[pck_key("joint", t)]) for t in PCK_THRESHOLDS],
                             _fmt(m["median_tip_err_px"], 1), _fmt(m["fp_per_image"], 2),
                             *[_fmt(m["outcomes"][k]) for k in ("tips_off", "other_class", "no_box")],
                             _fmt(res["score"]) if cls == ALL else ""])
        return _table(header, rows)
    keys = [k for k in ("box_map50", "box_map50_95", "pose_map50", "pose_map50_95", "mask_map50", "mask_map50_95")
            if any(k in r for r in document["results"])]
    header = ["weights", "task", *[k.replace("_map", " mAP").replace("50_95", "50-95") for k in keys]]
    rows = [[r["weights"], r.get("task") or "-", *[_fmt(r.get(k)) for k in keys]] for r in document["results"]]
    return _table(header, rows)


def run(
    weights: Sequence[str | Path] | str | Path,
    real: str | Path | None = None,
    data: str | Path | None = None,
    images: str | Path | None = None,
    imgsz: int = 640,
    conf: float = 0.25,
    iou: float = 0.7,
    device: str = "",
    batch: int = 16,
    out: str | Path | None = None,
    max_det: int = 300,
    scales: Sequence[float] = (1.0,),
    export: str | None = None,
    pre_clahe: bool = False,
    clahe_clip: float = 2.0,
    double_box_cover: float = DOUBLE_BOX_COVER,
    split: str = "val",
    max_box: float = MAX_BOX,
    sweep: Sequence[float] = (),
    verbose: bool = True,
) -> dict[str, Any]:
    """Evaluate every weights on `real` (a keypoints.json folder) or `data` (YOLO data.yaml or COCO json).

    Returns `{mode, real, data, settings, results: [per weights], best}` (best: highest `score` with
    --real, highest pose/mask/box mAP50-95 otherwise); writes it to `out` when given and prints the table.
    `sweep` (with `real`) also scores each model at those confidence thresholds, plotted beside `out`.
    """
    weights = [weights] if isinstance(weights, (str, Path)) else list(weights)
    if (real is None) == (data is None):
        raise ValueError("pass exactly one of real (a keypoints.json folder) or data (data.yaml / COCO json)")
    if why := sweep_misuse(sweep, real, scales):
        raise ValueError(why)
    paths = check_weights(weights)
    export = None if export in (None, "none") else export
    common = dict(imgsz=imgsz, iou=iou, device=device, max_det=max_det, scales=scales, export=export,
                  pre_clahe=pre_clahe, clahe_clip=clahe_clip, double_box_cover=double_box_cover)
    if real is not None:
        mode = "real"
        labels = load_real_labels(real)
        results = [evaluate_real(w, real, conf=conf, labels=labels, max_box=max_box, sweep=sweep, **common)
                   for w in paths]
        best = max(results, key=lambda r: r["score"])["weights"]
    else:
        data = Path(data)
        if not data.is_file():
            raise FileNotFoundError(f"--data not found: {data}")
        if data.suffix.lower() in (".yaml", ".yml"):
            mode = "yolo"
            ignored = [flag for flag, given in (("--scales", tuple(scales) != (1.0,)), ("--export", export is not None),
                                                ("--pre_clahe", pre_clahe), ("--max_det", max_det != 300),
                                                ("--double_box_cover", double_box_cover != DOUBLE_BOX_COVER)) if given]
            if ignored:
                raise ValueError(f"{', '.join(ignored)}: Ultralytics val on a data.yaml takes none of these; "
                                 "score the dataset's COCO json (coco_data/annotations_val.json) to use them")
            results = [evaluate_yolo(w, data, imgsz=imgsz, batch=batch, device=device, iou=iou, split=split)
                       for w in paths]
        elif data.suffix.lower() == ".json":
            mode = "coco"
            results = [evaluate_coco(w, data, images=images, **common) for w in paths]
        else:
            raise ValueError(f"--data must be a YOLO data.yaml or a COCO .json, got {data}")
        for r, w in zip(results, weights):
            r["weights"] = str(w)

        def rank(r: dict) -> float:
            return next((r[k] for k in ("pose_map50_95", "mask_map50_95", "box_map50_95") if r.get(k) is not None), 0)
        best = max(results, key=rank)["weights"]
    document = {
        "mode": mode, "real": None if real is None else str(real), "data": None if data is None else str(data),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "settings": ({"conf": MAP_CONF, "imgsz": imgsz, "iou": iou, "device": device, "batch": batch, "split": split}
                     if mode == "yolo" else
                     {"conf": conf if mode == "real" else MAP_CONF, **common, "scales": list(scales),
                      **({"max_box": max_box, "sweep": sorted(set(sweep)), "predict_conf": min([conf, *sweep])}
                         if mode == "real" else {})}),
        "results": results, "best": best,
    }
    plot = None if out is None or not sweep else Path(out).with_name(f"{Path(out).stem}_sweep.png")
    if out is not None:
        write_json(out, document, indent=1)
    if plot is not None:
        plot_sweep(document, plot)
    if verbose:
        print(format_table(document))
        if sweep:
            print(sweep_table(results))
        for path in (out, plot):
            if path is not None:
                print(f"-> {path}")
    return document


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", nargs="+", required=True, help="weights (.pt, .onnx, *_openvino_model/) or "
                                                              "predict.py predictions.json files")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--real", help="folder with images/ and keypoints.json (e.g. ../shared/real/oss_dev) or "
                                    "hands.json (e.g. ../shared/real/apas_dev; a box belongs to the hand whose box, "
                                    f"grown by {HAND_GROW * 100:g} %% on every side, covers most of it)")
    src.add_argument("--data", help="YOLO data.yaml or COCO annotations .json")
    p.add_argument("--images", default=None, help="image folder of a COCO --data json (default: beside it)")
    add_model_args(p, exports=[fmt for fmt in EXPORTS if fmt != "int8"],  # calibrating on what is scored leaks
                   conf_help="confidence threshold for --real (mAP uses 0.001)")
    p.add_argument("--batch", type=int, default=16, help="batch size for Ultralytics val (data.yaml)")
    p.add_argument("--split", default="val", help="data.yaml split for Ultralytics val")
    p.add_argument("--max_box", type=positive_float, default=MAX_BOX,
                   help="--real keypoints.json: largest box (diagonal, fraction of the image's) that can find a tool; "
                        "raise it for close-ups where an instrument spans the frame")
    p.add_argument("--sweep", type=unit_interval, nargs="+", default=(), metavar="CONF",
                   help="--real: also score at each of these confidence thresholds (table, plot beside --out)")
    p.add_argument("--out", default="evaluation.json", help="JSON report (default ./evaluation.json)")
    opt = p.parse_args(argv)
    if opt.images and not opt.data:
        p.error("--images goes with a COCO --data json")
    if opt.data and opt.max_box != MAX_BOX:
        p.error("--max_box goes with --real (mAP matches boxes by IoU)")
    if why := sweep_misuse(opt.sweep, opt.real, opt.scales):
        p.error(why)
    return opt


@user_errors_in_one_line
def main(opt: argparse.Namespace) -> None:
    document = run(**vars(opt))
    print(f"best: {document['best']}")


if __name__ == "__main__":
    main(parse_opt())
