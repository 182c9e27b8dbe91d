"""Paste transparent RGBA renders onto backgrounds: procedural surgical fields or your own photos.

Lets user data enter at the compositing step: any folder of RGBA PNGs (e.g. `output/renders`) becomes
a folder of JPEGs of the same names and sizes. Each image's randomness comes from the seed and the
image's name only, so an interrupted run, run again, reproduces the same images.

Usage:
    python data_generation/paste_on_backgrounds.py --renders output/renders --out output/composited
    python data_generation/paste_on_backgrounds.py --renders R --out O --backgrounds photos/ --seed 1 \\
        --coco output/coco_data/coco_annotations.json --jpg_quality 95
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from data_generation.backgrounds import list_backgrounds, load_background, procedural_background  # noqa: E402
from data_generation.composite import camera_effects, composite, kelvin_to_rgb  # noqa: E402
from surgpose.files import write_image  # noqa: E402


def image_rng(seed: int, stem: str) -> np.random.Generator:
    """A generator that depends only on the run's seed and the image's name (not on run order)."""
    digest = hashlib.sha256(f"{seed}/{stem}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def paste(render_bgra: np.ndarray, background: np.ndarray, rng: np.random.Generator,
          light_rgb: np.ndarray | None = None) -> np.ndarray:
    """Composite with randomly drawn, plausible shadow, spotlight and camera effects.

    Used when nothing is known about the scene's lights beyond their colour; the renderer, which
    knows them, calls `composite` with the real values."""
    h, w = background.shape[:2]
    angle, distance = rng.uniform(0, 2 * np.pi), rng.uniform(4, 20)
    spot = rng.random() < 0.5
    image = composite(render_bgra, background, rng, light_rgb=light_rgb,
                      shadow_offset=(distance * np.cos(angle), distance * np.sin(angle)),
                      shadow_strength=rng.uniform(0.25, 0.5), shadow_blur=3 + 0.6 * distance,
                      spot_center=tuple(rng.uniform([0.25 * w, 0.25 * h], [0.75 * w, 0.75 * h])) if spot else None,
                      spot_radius=rng.uniform(0.4, 0.9) * max(w, h) if spot else None)
    return camera_effects(image, rng,
                          motion_blur=rng.uniform(1, 5) if rng.random() < 0.15 else 0.0,
                          defocus=rng.uniform(0.5, 1.5) if rng.random() < 0.15 else 0.0,
                          noise=rng.uniform(0.5, 3.0))


def select_renders(renders: Path, coco: Path | None) -> list[Path]:
    """The PNGs in `renders`, or only those whose stems the COCO file lists (all of which must exist)."""
    if not renders.is_dir():
        raise ValueError(f"renders folder not found: {renders}")
    files = sorted(p for p in renders.glob("*.png") if not p.name.startswith("."))
    if not files:
        raise ValueError(f"no PNG renders in {renders}")
    if coco is None:
        return files
    if not coco.is_file():
        raise ValueError(f"COCO file not found: {coco}")
    try:
        wanted = {Path(image["file_name"]).stem for image in json.loads(coco.read_text())["images"]}
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{coco} is not a COCO file with an 'images' list of file_name entries "
                         f"({type(e).__name__}: {e})") from None
    by_stem = {p.stem: p for p in files}
    missing = sorted(wanted - by_stem.keys())
    if missing:
        raise ValueError(f"{len(missing)} of {len(wanted)} images listed in {coco} have no render in {renders} "
                         f"(first: {missing[0]})")
    return [by_stem[stem] for stem in sorted(wanted)]


def run(renders: str | os.PathLike, out: str | os.PathLike, backgrounds: str | os.PathLike | None = None,
        seed: int = 0, coco: str | os.PathLike | None = None, jpg_quality: int = 95,
        kelvin: float | None = None) -> list[Path]:
    """Write `out/<stem>.jpg` for each RGBA render; returns the written paths.

    PNGs without an 8-bit alpha channel (instance or depth maps beside the renders) are skipped.
    Raises ValueError for unusable input."""
    renders, out = Path(renders), Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the pasted images")
    files = select_renders(renders, Path(coco) if coco else None)
    photos = list_backgrounds(backgrounds) if backgrounds else []
    light = kelvin_to_rgb(kelvin) if kelvin else None
    written, skipped = [], []
    for path in tqdm(files, desc="pasting on backgrounds", unit="img"):
        render = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if render is None or render.ndim != 3 or render.shape[2] != 4 or render.dtype != np.uint8:
            skipped.append(path.name)
            continue
        rng = image_rng(seed, path.stem)
        h, w = render.shape[:2]
        background = (load_background(photos[rng.integers(len(photos))], w, h, rng) if photos
                      else procedural_background(w, h, rng))
        written.append(write_image(out / f"{path.stem}.jpg", paste(render, background, rng, light), jpg_quality))
    if skipped:
        print(f"skipped {len(skipped)} PNG(s) without an 8-bit alpha channel, e.g. {skipped[0]}")
    if not written:
        raise ValueError(f"no 8-bit RGBA PNG renders in {renders}")
    print(f"wrote {len(written)} images to {out}")
    return written


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", required=True, help="folder of RGBA PNG renders (transparent background)")
    parser.add_argument("--out", required=True, help="output folder for <stem>.jpg")
    parser.add_argument("--backgrounds", default=None, help="folder of background photos (default: procedural)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (combined with each image's name)")
    parser.add_argument("--coco", default=None, help="COCO json: paste only the images it lists")
    parser.add_argument("--jpg_quality", type=int, default=95, help="JPEG quality 1-100")
    parser.add_argument("--kelvin", type=float, default=None,
                        help="colour temperature of the renders' lights, to tint backgrounds alike (default: white)")
    opt = parser.parse_args(argv)
    if not 1 <= opt.jpg_quality <= 100:
        parser.error(f"--jpg_quality must be in 1..100, got {opt.jpg_quality}")
    if opt.kelvin is not None and not 1000 <= opt.kelvin <= 40000:
        parser.error(f"--kelvin must be in 1000..40000, got {opt.kelvin}")
    return opt


def main(opt: argparse.Namespace) -> None:
    try:
        run(**vars(opt))
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"paste_on_backgrounds: error: {e}") from None


if __name__ == "__main__":
    main(parse_opt())
