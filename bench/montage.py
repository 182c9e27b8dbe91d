"""A picture to compare generators and real footage by eye: one row of frames per folder, side by side.

    python bench/montage.py --rows data/old_hands data/new_hands --out docs/hands_before_after.jpg
    python bench/montage.py --rows data/new_hands ../shared/real/oss_dev/images ../shared/real/apas_dev/images \
        --out bench/results/renders_and_real.jpg          # real frames: keep such pictures out of git

A row is a generated dataset (its `composited/` training images) or any folder of images; `--per_row` frames
are taken evenly spread over it (the same positions in every generated dataset, so the same seed shows the same
frame indices), scaled to `--height` and labelled with the folder's name.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from surgpose.files import write_image  # noqa: E402
from surgpose.schema import Layout  # noqa: E402
from surgpose.video_io import IMAGE_SUFFIXES  # noqa: E402


def images_of(folder: Path) -> list[Path]:
    """A dataset's training images by name, or a folder's images."""
    composited = folder / Layout.COMPOSITED
    root = composited if composited.is_dir() else folder
    paths = sorted((p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: p.name)
    if not paths:
        raise SystemExit(f"error: {folder} holds no images")
    return paths


def row(folder: Path, per_row: int, height: int, width: int, label: str | None = None) -> np.ndarray:
    paths = images_of(folder)
    picks = [paths[i] for i in np.linspace(0, len(paths) - 1, per_row).astype(int)]
    tiles = []
    for path in picks:
        image = cv2.imread(str(path))
        scale = min(height / image.shape[0], width / image.shape[1])
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
        tile = np.zeros((height, width, 3), np.uint8)
        y, x = (height - image.shape[0]) // 2, (width - image.shape[1]) // 2
        tile[y:y + image.shape[0], x:x + image.shape[1]] = image
        tiles.append(tile)
    strip = np.hstack(tiles)
    label = label or str(folder)
    cv2.putText(strip, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(strip, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return strip


def run(rows: list[str], out: str, per_row: int = 4, height: int = 216, width: int = 384,
        labels: list[str] | None = None) -> Path:
    if labels and len(labels) != len(rows):
        raise SystemExit(f"error: {len(labels)} --labels for {len(rows)} --rows")
    picture = np.vstack([row(Path(folder), per_row, height, width, labels[i] if labels else None)
                         for i, folder in enumerate(rows)])
    return write_image(out, picture, 88)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", nargs="+", required=True, help="datasets or image folders, one row each")
    p.add_argument("--out", required=True, help="the picture (.jpg)")
    p.add_argument("--per_row", type=int, default=4)
    p.add_argument("--height", type=int, default=216, help="tile height in pixels")
    p.add_argument("--width", type=int, default=384, help="tile width in pixels")
    p.add_argument("--labels", nargs="+", help="a caption per row (default: the folder)")
    opt = p.parse_args()
    print(f"wrote {run(opt.rows, opt.out, opt.per_row, opt.height, opt.width, opt.labels)}")


if __name__ == "__main__":
    main()
