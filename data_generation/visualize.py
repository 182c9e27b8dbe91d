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

from surgpose.coco import coco_to_instances, load_coco  # noqa: E402
from surgpose.draw import draw_instances  # noqa: E402
from surgpose.files import write_image  # noqa: E402


def run(coco: str, images: str, out: str, max: int | None = None) -> int:  # noqa: A002 (CLI name)
    entries = list(coco_to_instances(load_coco(coco)).items())[:max]
    for file_name, (_, instances) in tqdm(entries, desc="visualize", unit="img"):
        image = cv2.imread(str(Path(images) / file_name))
        if image is None:
            raise ValueError(f"cannot read image {Path(images) / file_name}")
        write_image(Path(out) / Path(file_name).with_suffix(".jpg").name,
                    draw_instances(image, instances, legend=True), 90)
    return len(entries)


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--coco", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--max", type=int, help="at most this many images")
    return p.parse_args(argv)


def main(opt: argparse.Namespace) -> None:
    try:
        n = run(**vars(opt))
    except ValueError as err:
        sys.exit(f"error: {err}")
    print(f"{n} overlays written to {opt.out}")


if __name__ == "__main__":
    main(parse_opt())
