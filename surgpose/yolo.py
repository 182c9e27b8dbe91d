"""YOLO label lines (pose and segmentation, optionally with confidences) and data.yaml files.

Pose: `cls cx cy w h x1 y1 v1 ... x5 y5 v5 [conf]`; segmentation: `cls x1 y1 x2 y2 ... [conf]`; all
coordinates normalised to the image size. As in Ultralytics' `save_conf`, a trailing value is the
instance confidence and, for predictions, a keypoint's third value is its confidence.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import yaml

from surgpose.files import write_text
from surgpose.schema import CLASSES, FLIP_IDX, KEYPOINTS, KPT_OKS_SIGMAS, NUM_KEYPOINTS, class_id

POSE_VALUES = 1 + 4 + 3 * NUM_KEYPOINTS


def _fmt(values) -> str:
    return " ".join(f"{v:.6f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v) for v in values)


def pose_line(instance: dict, width: int, height: int, with_conf: bool = False) -> str:
    """One YOLO-pose label line for an instance dict (xyxy box, keypoints [x, y, v_or_conf])."""
    x1, y1, x2, y2 = instance["bbox"]
    values: list = [class_id(instance["class"]), (x1 + x2) / 2 / width, (y1 + y2) / 2 / height,
                    (x2 - x1) / width, (y2 - y1) / height]
    for x, y, v in instance["keypoints"]:
        values += [float(x) / width, float(y) / height, v if isinstance(v, int) else float(v)]
    if with_conf:
        values.append(float(instance["score"]))
    return _fmt(values)


def seg_line(instance: dict, width: int, height: int, with_conf: bool = False) -> str | None:
    """One YOLO-seg line (the largest polygon); None for an instance without a polygon."""
    polygons = instance.get("polygons") or ([instance["polygon"]] if instance.get("polygon") else [])
    if not polygons:
        return None
    poly = np.asarray(max(polygons, key=lambda p: _area(np.asarray(p, float))), float)
    values: list = [class_id(instance["class"])] + (poly / [width, height]).ravel().tolist()
    if with_conf:
        values.append(float(instance["score"]))
    return _fmt(values)


def _area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def parse_pose_line(line: str, width: int, height: int, require_conf: bool = False) -> dict:
    """Inverse of `pose_line`: an instance dict in pixels (`score` when the line has a confidence)."""
    values = line.split()
    if len(values) not in (POSE_VALUES, POSE_VALUES + 1):
        raise ValueError(f"pose label line has {len(values)} values, expected {POSE_VALUES} (+1 confidence)")
    if require_conf and len(values) == POSE_VALUES:
        raise ValueError("pose label line has no confidence column (write labels with confidences)")
    nums = [float(v) for v in values]
    cx, cy, w, h = nums[1] * width, nums[2] * height, nums[3] * width, nums[4] * height
    kps = np.asarray(nums[5:POSE_VALUES], float).reshape(NUM_KEYPOINTS, 3)
    inst = {"class": CLASSES[int(nums[0])], "bbox": [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2],
            "keypoints": [[x * width, y * height, v] for x, y, v in kps.tolist()]}
    if len(values) == POSE_VALUES + 1:
        inst["score"] = nums[-1]
    return inst


def parse_seg_line(line: str, width: int, height: int, require_conf: bool = False) -> dict:
    """Inverse of `seg_line`: `{"class", "polygon", ["score"]}` in pixels."""
    nums = [float(v) for v in line.split()]
    has_conf = (len(nums) - 1) % 2 == 1
    if len(nums) < 7:
        raise ValueError(f"segmentation label line has {len(nums)} values, too few for a polygon")
    if require_conf and not has_conf:
        raise ValueError("segmentation label line has no confidence column (write labels with confidences)")
    coords = nums[1:-1] if has_conf else nums[1:]
    inst = {"class": CLASSES[int(nums[0])],
            "polygon": (np.asarray(coords).reshape(-1, 2) * [width, height]).tolist()}
    if has_conf:
        inst["score"] = nums[-1]
    return inst


def write_labels(path: str | os.PathLike, lines: list[str | None]) -> Path:
    """Atomically write a label file (an image without instances gets an empty file)."""
    return write_text(path, "".join(f"{line}\n" for line in lines if line))


def write_data_yaml(dataset_dir: str | os.PathLike, task: str) -> Path:
    """data.yaml for a `pose` or `segment` dataset laid out as images/{train,val}, labels/{train,val}."""
    if task not in ("pose", "segment"):
        raise ValueError(f"task must be 'pose' or 'segment', got {task!r}")
    dataset_dir = Path(dataset_dir).resolve()
    data: dict = {"path": str(dataset_dir), "train": "images/train", "val": "images/val",
                  "names": dict(enumerate(CLASSES))}
    if task == "pose":
        data.update({"kpt_shape": [NUM_KEYPOINTS, 3], "flip_idx": list(FLIP_IDX),
                     "kpt_names": {i: list(KEYPOINTS) for i in range(len(CLASSES))},
                     "kpt_oks_sigmas": list(KPT_OKS_SIGMAS)})
    return write_text(dataset_dir / "data.yaml", yaml.safe_dump(data, sort_keys=False))


def write_split(dataset_dir: str | os.PathLike, split: str, items: list[tuple[Path, int, int, list[dict]]],
                task: str) -> None:
    """Write images (hard links) and labels of one split; files of images not in `items` are removed so a
    rerun leaves no stale labels. `items`: (image path, width, height, instance dicts)."""
    from surgpose.files import link_or_copy

    dataset_dir = Path(dataset_dir)
    line = pose_line if task == "pose" else seg_line
    keep = set()
    for image, width, height, instances in items:
        keep.add(Path(image).stem)
        link_or_copy(image, dataset_dir / "images" / split / Path(image).name)
        write_labels(dataset_dir / "labels" / split / f"{Path(image).stem}.txt",
                     [line(inst, width, height) for inst in instances])
    for sub in ("images", "labels"):
        for stale in (dataset_dir / sub / split).glob("*"):
            if stale.stem not in keep:
                stale.unlink()
