"""Seconds per synthetic image with the generator's default settings, split into scene sampling (hands and
grasps) / render / label / composite / write (each worker logs its own steps), plus the end-to-end wall time.

    python bench/render_speed.py --num_images 30 [--width 960 --height 544] [--workers 1] [--baseline REF]

`--baseline REF` renders the same frames count with the generator of a git commit (checked out into a
temporary worktree) in the same run, alternating with this tree's `--repeats` times, and prints both and
their ratio: a generator change's cost measured under the same machine load.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data_generation.generator import run as generate  # noqa: E402

STEPS = ("scene", "render", "label", "composite", "write")


def run(num_images: int = 30, width: int | None = None, height: int | None = None, workers: int = 1,
        keep: str | None = None, **kwargs) -> dict:
    out = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="render_speed_"))
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    generate(out=str(out), num_images=num_images, width=width, height=height, workers=workers, **kwargs)
    wall = time.perf_counter() - start
    rows = [json.loads(line) for p in (out / "logs").glob("timings_*.jsonl") for line in p.read_text().splitlines()]
    steps = {k: sum(r.get(k, 0.0) for r in rows) / len(rows) for k in STEPS}
    result = {"images": num_images, "workers": workers, "wall_s_per_image": wall / num_images,
              **{f"{k}_s": v for k, v in steps.items()},
              "projected_1000_images_min": wall / num_images * 1000 / 60}
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    return result


def run_at(ref: str, argv: list[str]) -> dict:
    """This script's figures for the generator of commit `ref` (its own bench script, in a temporary worktree)."""
    with tempfile.TemporaryDirectory(prefix="render_speed_baseline_") as tmp:
        tree = Path(tmp) / "tree"
        added = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), ref],
                               capture_output=True, text=True)
        if added.returncode:
            raise SystemExit(f"error: --baseline {ref}: not a commit of this repository ({added.stderr.strip()})")
        try:
            proc = subprocess.run([sys.executable, str(tree / "bench" / "render_speed.py"), *argv],
                                  capture_output=True, text=True, cwd=tree)
            if proc.returncode:
                last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
                raise SystemExit(f"error: the baseline {ref} failed: {last}")
            return json.loads(proc.stdout.strip().splitlines()[-1])
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


def describe(r: dict) -> str:
    parts = " | ".join(f"{k} {r[f'{k}_s']:.3f} s" for k in STEPS if f"{k}_s" in r)
    return (f"{r['wall_s_per_image']:.2f} s per image end to end (1000 images: {r['projected_1000_images_min']:.1f} min)"
            f"; per image in the workers: {parts}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num_images", type=int, default=30)
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--samples", type=int)
    p.add_argument("--denoise", action="store_true")
    p.add_argument("--keep", help="keep the dataset in this folder")
    p.add_argument("--baseline", metavar="REF", help="also time the generator of this git commit, in the same run")
    p.add_argument("--repeats", type=int, default=1, help="with --baseline: alternate baseline and this tree N times")
    opt = p.parse_args()
    extra = {k: v for k, v in (("samples", opt.samples), ("denoise", opt.denoise or None)) if v is not None}
    if not opt.baseline:
        r = run(opt.num_images, opt.width, opt.height, opt.workers, opt.keep, **extra)
        print(f"{r['images']} images, {r['workers']} worker(s): {describe(r)}")
        print(json.dumps(r))
        return
    argv = [f"--num_images={opt.num_images}", f"--workers={opt.workers}"]
    argv += [f"--{k}={v}" for k, v in (("width", opt.width), ("height", opt.height), ("samples", opt.samples)) if v]
    argv += ["--denoise"] if opt.denoise else []
    pairs = []
    for i in range(opt.repeats):   # alternate which goes first, so neither always meets a warmer machine
        first_baseline = i % 2 == 0
        a = run_at(opt.baseline, argv) if first_baseline else run(opt.num_images, opt.width, opt.height, opt.workers,
                                                                   **extra)
        b = run(opt.num_images, opt.width, opt.height, opt.workers, **extra) if first_baseline else run_at(opt.baseline,
                                                                                                         argv)
        pairs.append((a, b) if first_baseline else (b, a))
    ratios = [new["wall_s_per_image"] / old["wall_s_per_image"] for old, new in pairs]
    for i, (old, new) in enumerate(pairs):
        print(f"round {i + 1}: baseline {opt.baseline}: {describe(old)}")
        print(f"round {i + 1}: this tree: {describe(new)}")
    print(f"this tree / baseline, seconds per image end to end: {statistics.median(ratios):.2f}x "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})")
    print(json.dumps({"baseline": opt.baseline, "pairs": pairs, "ratio": statistics.median(ratios)}))


if __name__ == "__main__":
    main()
