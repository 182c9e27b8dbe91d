"""COCO file -> one split of a YOLO-seg dataset (images hard-linked, labels, data.yaml).

    python data_generation/coco_to_yolo_seg.py --coco annotations_train.json --images DIR --out DIR --split train

Categories are matched to the schema by name; an instance's polygons are joined into one outline.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_generation import coco_to_yolo_pose as pose  # noqa: E402


def run(coco: str, images: str, out: str, split: str = "train") -> int:
    """Convert; returns the number of images written."""
    return pose.run(coco, images, out, split, task="segment")


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    return pose.parse_opt(argv, __doc__)


def main(opt: argparse.Namespace) -> None:
    pose.main(opt, task="segment")


if __name__ == "__main__":
    main(parse_opt())
