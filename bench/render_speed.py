"""Seconds per synthetic image with the generator's default settings, split into render / label /
composite / write (each worker logs its own steps), plus the end-to-end wall time.

    python bench/render_speed.py --num_images 30 [--width 960 --height 544] [--workers 1] [-- extra generator flags]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data_generation.generator import run as generate  # noqa: E402


def run(num_images: int = 30, width: int | None = None, height: int | None = None, workers: int = 1,
        keep: str | None = None, **kwargs) -> dict:
    out = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="render_speed_"))
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    generate(out=str(out), num_images=num_images, width=width, height=height, workers=workers, **kwargs)
    wall = time.perf_counter() - start
    rows = [json.loads(line) for p in (out / "logs").glob("timings_*.jsonl") for line in p.read_text().splitlines()]
    steps = {k: sum(r[k] for r in rows) / len(rows) for k in ("render", "label", "composite", "write")}
    result = {"images": num_images, "workers": workers, "wall_s_per_image": wall / num_images,
              **{f"{k}_s": v for k, v in steps.items()},
              "projected_1000_images_min": wall / num_images * 1000 / 60}
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num_images", type=int, default=30)
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--samples", type=int)
    p.add_argument("--denoise", action="store_true")
    p.add_argument("--keep", help="keep the dataset in this folder")
    opt = p.parse_args()
    extra = {k: v for k, v in (("samples", opt.samples), ("denoise", opt.denoise or None)) if v is not None}
    r = run(opt.num_images, opt.width, opt.height, opt.workers, opt.keep, **extra)
    print(f"{r['images']} images, {r['workers']} worker(s): {r['wall_s_per_image']:.2f} s per image end to end "
          f"(1000 images: {r['projected_1000_images_min']:.1f} min)")
    print(f"per image in the workers: render {r['render_s']:.2f} s | label {r['label_s']:.3f} s | "
          f"composite {r['composite_s']:.3f} s | write {r['write_s']:.3f} s")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
