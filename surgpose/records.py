"""Per-image label records (`output/keypoints/<image>.json`) and the deterministic train/val split.

A record: `{"image", "render", "width", "height", "index", "camera": {"K", "world_to_cam"},
"instances": [instance dict + "bbox_amodal", "polygons_amodal", "area", "area_amodal", "opening"],
"meta"}`. An instance dict is the one format used for labels and predictions alike:
`{"class", "score" (predictions), "bbox": [x1, y1, x2, y2], "keypoints": [[x, y, v_or_conf] * 5],
"polygons": [[[x, y], ...], ...]}` in image pixels.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

from surgpose.schema import CLASSES, NUM_KEYPOINTS

REQUIRED = ("image", "width", "height", "index", "instances")


def load_record(path: str | os.PathLike) -> dict:
    """Read and check one record; errors name the file."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
        missing = [k for k in REQUIRED if k not in record]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        for inst in record["instances"]:
            if inst["class"] not in CLASSES:
                raise ValueError(f"unknown class {inst['class']!r}")
            if len(inst["keypoints"]) != NUM_KEYPOINTS:
                raise ValueError(f"{len(inst['keypoints'])} keypoints, expected {NUM_KEYPOINTS}")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"bad record {path}: {err}") from None
    return record


def load_records(folder: str | os.PathLike) -> list[dict]:
    """All records of a folder, ordered by frame index."""
    return sorted((load_record(p) for p in Path(folder).glob("*.json")), key=lambda r: r["index"])


def split_for(index: int, num_images: int, seed: int, val_fraction: float) -> str:
    """'train' or 'val'. Every block of round(1/val_fraction) consecutive frames holds exactly one val
    frame, placed by (seed, block); a final partial block picks among the frames it has, so even tiny
    datasets get a val image. Depends only on its arguments: workers and shards agree."""
    if val_fraction <= 0:
        return "train"
    block = max(1, round(1 / val_fraction))
    start = index - index % block
    size = min(block, num_images - start)
    return "val" if index - start == random.Random(f"{seed}:{start}").randrange(size) else "train"
