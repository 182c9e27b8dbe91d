"""YOLO label lines (pose and segmentation, optionally with confidences), label folders and data.yaml.

Pose: `cls cx cy w h x1 y1 v1 ... x5 y5 v5 [conf]`; segmentation: `cls x1 y1 x2 y2 ... [conf]`; every
coordinate normalised to the image size. As in Ultralytics' `save_conf`, a trailing value is the
instance confidence and, in predictions, a keypoint's third value is its confidence (its visibility in
labels). Parsing gives instance dicts (see `surgpose.records`) in pixels, with `score` when a line has a
confidence; `polygon` (one) for segmentation lines.

**Box-only instances** (an instrument whose box is labelled but not its keypoints: real photographs with
boxes only, annotations without keypoints) have all five keypoints `0 0 0`, as every converter here writes
unlabelled points. `is_box_only` recognises them, also inside Ultralytics' training batches: mosaic, affine,
flips and clipping move the five points together, so they stay one point with visibility 0, while an
instrument with labelled keypoints never has all five at one point. Training keeps them out of the keypoint
losses (train.py); a stock Ultralytics run reads them as five keypoints outside the image.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from surgpose.files import link_or_copy, write_text
from surgpose.schema import CLASSES, FLIP_IDX, KEYPOINTS, KPT_OKS_SIGMAS, NUM_KEYPOINTS, class_id

#: Values in a pose line without the trailing confidence.
POSE_VALUES = 1 + 4 + 3 * NUM_KEYPOINTS
TASKS = ("pose", "segment")


#: Largest spread (in the keypoints' units) of five points that still counts as one point: far below a pixel,
#: far above the rounding of Ultralytics' float32 affine transforms.
ONE_POINT = 1e-3


def is_box_only(keypoints: Any, tol: float = ONE_POINT) -> Any:
    """Which instances of `keypoints` (numpy array or torch tensor, shape (..., K, 3)) are box-only: every
    keypoint unlabelled (visibility 0) and all at one point (see the module docstring). Returns a bool array
    of shape (...)."""
    unlabelled = (keypoints[..., 2] == 0).all(-1)
    together = (abs(keypoints[..., :2] - keypoints[..., :1, :2]) <= tol).all(-1).all(-1)
    return unlabelled & together


def _fmt(values: list) -> str:
    return " ".join(f"{v:.6f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v) for v in values)


def _unit(v: float) -> float:
    """Normalised coordinate clipped to the image: Ultralytics rejects a label more than 1% outside it."""
    return min(max(float(v), 0.0), 1.0)


def pose_line(instance: dict, width: int, height: int, with_conf: bool = False) -> str:
    """One YOLO-pose line for an instance dict (xyxy box, keypoints [x, y, v_or_conf])."""
    x1, x2 = (_unit(v / width) for v in instance["bbox"][::2])
    y1, y2 = (_unit(v / height) for v in instance["bbox"][1::2])
    values: list = [class_id(instance["class"]), (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
    for x, y, v in instance["keypoints"]:
        values += [_unit(x / width), _unit(y / height), v if isinstance(v, int) else float(v)]
    if with_conf:
        values.append(float(instance["score"]))
    return _fmt(values)


def _outline(instance: dict) -> np.ndarray | None:
    """The one polygon YOLO-seg keeps per instance: a prediction's `polygon`, or a label's `polygons` joined
    by thin bridges as Ultralytics' own COCO converter does, so an instrument cut in two by a hand keeps
    both pieces in its mask."""
    if "polygon" in instance:
        return np.asarray(instance["polygon"], float).reshape(-1, 2) if len(instance["polygon"]) >= 3 else None
    polygons = [np.asarray(p, float).reshape(-1, 2) for p in instance.get("polygons") or [] if len(p) >= 3]
    if len(polygons) < 2:
        return polygons[0] if polygons else None
    from surgpose import offline

    offline.configure()
    from ultralytics.data.converter import merge_multi_segment

    return np.concatenate(merge_multi_segment(polygons), axis=0)


def seg_line(instance: dict, width: int, height: int, with_conf: bool = False) -> str | None:
    """One YOLO-seg line for an instance dict; None for an instance without a polygon."""
    poly = _outline(instance)
    if poly is None:
        return None
    values: list = [class_id(instance["class"])] + [_unit(v) for v in (poly / [width, height]).ravel()]
    if with_conf:
        values.append(float(instance["score"]))
    return _fmt(values)


def _numbers(line: str, kind: str) -> list[float]:
    try:
        nums = [float(v) for v in line.split()]
    except ValueError:
        raise ValueError(f"{kind} label line has a non-numeric value: {line.strip()[:80]!r}") from None
    if not nums or not nums[0].is_integer() or not 0 <= nums[0] < len(CLASSES):
        raise ValueError(f"{kind} label line starts with class {line.split()[:1]}, expected 0..{len(CLASSES) - 1}")
    return nums


def _missing_conf(kind: str) -> ValueError:
    return ValueError(f"{kind} label line has no confidence column: write it with confidences "
                      "(predict.py does; Ultralytics: save_conf=True)")


def parse_pose_line(line: str, width: int, height: int, require_conf: bool = False) -> dict:
    """Inverse of `pose_line`: an instance dict in pixels, with `score` when the line has a confidence."""
    nums = _numbers(line, "pose")
    if len(nums) not in (POSE_VALUES, POSE_VALUES + 1):
        raise ValueError(f"pose label line has {len(nums)} values, expected {POSE_VALUES} (+1 confidence)")
    if require_conf and len(nums) == POSE_VALUES:
        raise _missing_conf("pose")
    cx, cy, w, h = nums[1] * width, nums[2] * height, nums[3] * width, nums[4] * height
    kps = np.asarray(nums[5:POSE_VALUES]).reshape(NUM_KEYPOINTS, 3)
    inst = {"class": CLASSES[int(nums[0])], "bbox": [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2],
            "keypoints": [[x * width, y * height, v] for x, y, v in kps.tolist()]}
    if len(nums) == POSE_VALUES + 1:
        inst["score"] = nums[-1]
    return inst


def parse_seg_line(line: str, width: int, height: int, require_conf: bool = False) -> dict:
    """Inverse of `seg_line`: `{"class", "polygon", ["score"]}` in pixels. A polygon has an even number of
    coordinates, so an odd count after the class means a trailing confidence."""
    nums = _numbers(line, "segmentation")
    has_conf = len(nums) % 2 == 0
    coords = nums[1:-1] if has_conf else nums[1:]
    if len(coords) < 6:
        raise ValueError(f"segmentation label line has {len(coords) // 2} points, a polygon needs 3")
    if require_conf and not has_conf:
        raise _missing_conf("segmentation")
    inst = {"class": CLASSES[int(nums[0])],
            "polygon": (np.asarray(coords).reshape(-1, 2) * [width, height]).tolist()}
    if has_conf:
        inst["score"] = nums[-1]
    return inst


def read_labels(path: str | os.PathLike, task: str, width: int, height: int,
                require_conf: bool = False) -> list[dict]:
    """Instance dicts of a label file (`task` 'pose' or 'segment'); errors name the file and line."""
    parse = {"pose": parse_pose_line, "segment": parse_seg_line}[task]
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if line.strip():
            try:
                out.append(parse(line, width, height, require_conf))
            except ValueError as err:
                raise ValueError(f"{path}:{n}: {err}") from None
    return out


def write_labels(path: str | os.PathLike, lines: list[str | None]) -> bool:
    """Atomically write a label file (empty for an image without instances; None lines skipped). Returns
    False, writing nothing, when the file already holds these lines, so reruns keep files untouched."""
    path = Path(path)
    text = "".join(f"{line}\n" for line in lines if line)
    if path.is_file() and path.read_text() == text:
        return False
    write_text(path, text)
    return True


def write_data_yaml(dataset_dir: str | os.PathLike, task: str) -> Path:
    """data.yaml for a `pose` or `segment` dataset laid out as images/{train,val}, labels/{train,val}.

    Ultralytics 8.4 reads `kpt_oks_sigmas` (OKS in the pose loss and in validation mAP; without it a
    non-COCO skeleton gets 1/num_keypoints for every keypoint) and `kpt_names` (stored in the model).
    There is no `path` key: Ultralytics then resolves the splits beside the data.yaml, so a dataset still
    trains after it is moved or copied to another machine.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    dataset_dir = Path(dataset_dir)
    data: dict = {"train": "images/train", "val": "images/val",
                  "names": dict(enumerate(CLASSES))}
    if task == "pose":
        data.update({"kpt_shape": [NUM_KEYPOINTS, 3], "flip_idx": list(FLIP_IDX),
                     "kpt_names": {i: list(KEYPOINTS) for i in range(len(CLASSES))},
                     "kpt_oks_sigmas": list(KPT_OKS_SIGMAS)})
    return write_text(dataset_dir / "data.yaml", yaml.safe_dump(data, sort_keys=False))


def write_split(dataset_dir: str | os.PathLike, split: str, items: list[tuple[Path, int, int, list[dict]]],
                task: str) -> None:
    """Write images (hard links) and labels of one split; `items` are (image path, width, height, instance
    dicts). Files of images no longer in `items` are removed, and Ultralytics' label cache is dropped when
    any label changed (it is keyed on file sizes only, so it could outlive an edit)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    dataset_dir = Path(dataset_dir)
    line = pose_line if task == "pose" else seg_line
    keep, changed = {"images": set(), "labels": set()}, False
    for image, width, height, instances in items:
        image = Path(image)
        keep["images"].add(image.name)
        keep["labels"].add(f"{image.stem}.txt")
        link_or_copy(image, dataset_dir / "images" / split / image.name)
        changed |= write_labels(dataset_dir / "labels" / split / f"{image.stem}.txt",
                                [line(inst, width, height) for inst in instances])
    for sub, names in keep.items():
        for stale in (dataset_dir / sub / split).glob("*"):
            if stale.name not in names:
                stale.unlink()
                changed = True
    if changed:
        (dataset_dir / "labels" / f"{split}.cache").unlink(missing_ok=True)
