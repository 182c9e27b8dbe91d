"""Per-image label records (`output/keypoints/<stem>.json`) and the deterministic train/val split.

**Instance dict**, the one format for labels and predictions alike, in original-image pixels:
`{"class": "needle_holder", "score": 0.91 (predictions only), "bbox": [x1, y1, x2, y2],
"keypoints": [[x, y, v_or_conf] * 5], "polygons": [[[x, y], ...], ...]}`. Label visibility `v`: 2 visible,
1 inside the image but hidden, 0 outside the image (then x = y = 0). Predictions carry one `"polygon"`
(the largest) instead of `"polygons"`, and a keypoint confidence instead of `v`.

**Record**, one per rendered image:
`{"image": "000042.jpg", "render": "000042.png", "width": 960, "height": 544, "index": 42,
"camera": {"K": 3x3, "world_to_cam": 4x4}, "instances": [...], "meta": {...}}` where each instance is an
instance dict of the visible (modal) part plus `"bbox_amodal"`, `"polygons_amodal"`, `"area"` (visible
pixels), `"area_amodal"` and `"opening"` (0 closed .. 1 wide open).
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

from surgpose.schema import CLASSES, NUM_KEYPOINTS

#: Keys every record must have, with their JSON types.
RECORD_KEYS = {"image": str, "width": int, "height": int, "index": int, "instances": list}
#: Keys every record instance must have (the amodal ones are checked when amodal masks are asked for).
INSTANCE_KEYS = ("class", "bbox", "keypoints", "polygons", "area")


def check_record(record: dict) -> None:
    """Raise ValueError describing the first problem of a record, so a bad file fails at load time
    instead of deep inside a converter."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    for key, kind in RECORD_KEYS.items():
        if not isinstance(record.get(key), kind):
            raise ValueError(f"{key!r} missing or not {kind.__name__}")
    for i, inst in enumerate(record["instances"]):
        missing = [k for k in INSTANCE_KEYS if k not in inst]
        if missing:
            raise ValueError(f"instance {i} lacks {', '.join(missing)}")
        if inst["class"] not in CLASSES:
            raise ValueError(f"instance {i}: unknown class {inst['class']!r} (expected {', '.join(CLASSES)})")
        if len(inst["bbox"]) != 4:
            raise ValueError(f"instance {i}: bbox must be [x1, y1, x2, y2]")
        if len(inst["keypoints"]) != NUM_KEYPOINTS or any(len(kp) != 3 for kp in inst["keypoints"]):
            raise ValueError(f"instance {i}: keypoints must be {NUM_KEYPOINTS} [x, y, v] triples")
        if any(len(p) < 3 or any(len(xy) != 2 for xy in p) for p in inst["polygons"]):
            raise ValueError(f"instance {i}: polygons must be lists of at least 3 [x, y] points")


def load_record(path: str | os.PathLike) -> dict:
    """Read and check one record; errors name the file."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
        check_record(record)
    except (OSError, ValueError, TypeError) as err:  # JSONDecodeError is a ValueError
        raise ValueError(f"bad record {path}: {err}") from None
    return record


def load_records(folder: str | os.PathLike) -> list[dict]:
    """All records of a folder, ordered by frame index; two records claiming one index or image is an error
    (it would put one image in the datasets twice)."""
    records = sorted((load_record(p) for p in sorted(Path(folder).glob("*.json"))), key=lambda r: r["index"])
    for key in ("index", "image"):
        seen: dict = {}
        for rec in records:
            if rec[key] in seen:
                raise ValueError(f"records in {folder} share {key} {rec[key]!r} ({seen[rec[key]]} and {rec['image']})")
            seen[rec[key]] = rec["image"]
    return records


def instances_with_masks(record: dict, amodal: bool) -> list[dict]:
    """The record's instances with the chosen mask as `bbox`/`polygons`/`area`: the visible part, or with
    `amodal` the whole instrument."""
    if not amodal:
        return record["instances"]
    out = []
    for i, inst in enumerate(record["instances"]):
        try:
            out.append({**inst, "bbox": inst["bbox_amodal"], "polygons": inst["polygons_amodal"],
                        "area": inst["area_amodal"]})
        except KeyError as err:
            raise ValueError(f"record of {record['image']}: instance {i} has no {err.args[0]} (amodal masks "
                             "were not rendered for it)") from None
    return out


def split_for(index: int, num_images: int, seed: int, val_fraction: float) -> str:
    """'train' or 'val'. Every block of round(1/val_fraction) consecutive frames holds exactly one val
    frame, placed by (seed, block); a final partial block picks among the frames it has, so even tiny
    datasets get a val image. Depends only on its arguments: workers, shards and the merge step agree."""
    if not 0 <= val_fraction <= 1:
        raise ValueError(f"val_fraction must be within [0, 1], got {val_fraction}")
    if not 0 <= index < num_images:
        raise ValueError(f"frame index {index} is outside 0..{num_images - 1} (num_images={num_images})")
    if val_fraction == 0:
        return "train"
    block = max(1, round(1 / val_fraction))
    start = index - index % block
    size = min(block, num_images - start)
    return "val" if index - start == random.Random(f"{seed}:{start}").randrange(size) else "train"
