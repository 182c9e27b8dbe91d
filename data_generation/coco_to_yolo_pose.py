"""COCO file -> one split of a YOLO-pose dataset (images hard-linked, labels, data.yaml).

    python data_generation/coco_to_yolo_pose.py --coco annotations_train.json --images DIR --out DIR --split train

Categories are matched to the schema by name; keypoints must follow the schema's order.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from surgpose.coco import coco_to_yolo  # noqa: E402


def run(coco: str, images: str, out: str, split: str = "train", task: str = "pose") -> int:
    """Convert; returns the number of images written."""
    return coco_to_yolo(coco, images, out, split, task)


def parse_opt(argv: list[str] | None = None, doc: str | None = __doc__) -> argparse.Namespace:
    """Arguments shared with `coco_to_yolo_seg.py` (which passes its own `doc`)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--coco", required=True, help="COCO instances file (categories named as in the schema)")
    p.add_argument("--images", required=True, help="folder of the images the COCO file lists")
    p.add_argument("--out", required=True, help="YOLO dataset folder (images/, labels/, data.yaml)")
    p.add_argument("--split", default="train", choices=["train", "val"])
    return p.parse_args(argv)


def main(opt: argparse.Namespace, task: str = "pose") -> None:
    try:
        n = run(**vars(opt), task=task)
    except ValueError as err:
        sys.exit(f"error: {err}")
    print(f"{n} images written to {opt.out} ({task}, {opt.split})")


if __name__ == "__main__":
    main(parse_opt())
