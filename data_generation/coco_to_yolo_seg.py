"""COCO file -> YOLO-seg dataset split (images hard-linked, labels, data.yaml).

    python data_generation/coco_to_yolo_seg.py --coco annotations_train.json --images DIR --out DIR --split train
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from surgpose.coco import coco_to_yolo  # noqa: E402


def run(coco: str, images: str, out: str, split: str = "train") -> int:
    return coco_to_yolo(coco, images, out, split, "segment")


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--coco", required=True, help="COCO instances file (categories named as in the schema)")
    p.add_argument("--images", required=True, help="folder of the images the COCO file lists")
    p.add_argument("--out", required=True, help="YOLO dataset folder")
    p.add_argument("--split", default="train", choices=["train", "val"])
    return p.parse_args(argv)


def main(opt: argparse.Namespace) -> None:
    try:
        n = run(**vars(opt))
    except ValueError as err:
        sys.exit(f"error: {err}")
    print(f"{n} images written to {opt.out} ({opt.split})")


if __name__ == "__main__":
    main(parse_opt())
