"""Overlays of a COCO file's masks, boxes and keypoints, for checking labels by eye.

    python data_generation/visualize.py --coco coco_annotations.json --images DIR --out DIR [--max 50]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
from tqdm import tqdm  # noqa: E402

from surgpose.coco import load_instances  # noqa: E402
from surgpose.draw import draw_instances  # noqa: E402
from surgpose.files import write_image  # noqa: E402


def run(coco: str, images: str, out: str, max_images: int | None = None) -> int:
    """Write `<out>/<image stem>.jpg` overlays for the first `max_images` images; returns how many."""
    items = load_instances(coco, images)[:max_images]
    for path, _, instances in tqdm(items, desc="visualize", unit="img"):
        image = cv2.imread(str(path))
        if image is None:
            raise ValueError(f"cannot read image {path}")
        write_image(Path(out) / f"{path.stem}.jpg", draw_instances(image, instances, legend=True), 90)
    return len(items)


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--coco", required=True, help="COCO instances file (categories named as in the schema)")
    p.add_argument("--images", required=True, help="folder of the images the COCO file lists")
    p.add_argument("--out", required=True, help="folder for the overlays")
    p.add_argument("--max", dest="max_images", type=int, metavar="N", help="at most this many images")
    return p.parse_args(argv)


def main(opt: argparse.Namespace) -> None:
    try:
        n = run(**vars(opt))
    except ValueError as err:
        sys.exit(f"error: {err}")
    print(f"{n} overlays written to {opt.out}")


if __name__ == "__main__":
    main(parse_opt())
