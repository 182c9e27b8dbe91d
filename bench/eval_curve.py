"""Real-frame scores of a long training, epoch by epoch: the curve that says whether more CPU hours still help.

    python bench/eval_curve.py --run runs/pose/campaign --real ../shared/real/oss_dev ../shared/real/apas_dev \
        --every 2 --start models/synthetic_weights.pt --out models/training_curve_real.png

Scores each `weights/epoch<N>.pt` the run saved (`save_period=1` or more) with `evaluate.py --real` on every
labelled set, caches each score beside the checkpoint (`epoch<N>.<set>.json`, so a rerun after more epochs only
scores the new ones), and plots score, recall and false detections per image against the epoch. Prints the
table too.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import evaluate  # noqa: E402  (configures offline mode)
from surgpose.metrics import real_summary  # noqa: E402

EPOCH = re.compile(r"epoch(\d+)\.pt$")


def checkpoints(run: Path, every: int) -> list[tuple[int, Path]]:
    """(epoch, path) of the run's saved epochs, every `every`-th, oldest first (Ultralytics counts from 0)."""
    found = sorted((int(m.group(1)), p) for p in (run / "weights").glob("epoch*.pt") if (m := EPOCH.search(p.name)))
    if not found:
        raise SystemExit(f"error: {run}/weights holds no epoch<N>.pt (train with save_period=1)")
    return [(e, p) for e, p in found if (e + 1) % every == 0 or (e, p) == found[-1]]


def score(path: Path, real: Path, device: str, cache_dir: Path | None = None) -> dict:
    """evaluate.py's summary for one checkpoint on one labelled set, cached beside the checkpoint (or in
    cache_dir)."""
    cache = (cache_dir or path.parent) / f"{path.stem}.{real.name}.json"
    if cache.is_file() and cache.stat().st_mtime >= path.stat().st_mtime:
        return json.loads(cache.read_text())
    summary = real_summary(evaluate.run(path, real=real, device=device, out=None, verbose=False)["results"][0])
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(summary))
    return summary


def run(run: str, real: list[str], every: int = 1, device: str = "cpu", out: str | None = None,
        start: str | None = None) -> dict:
    """{epoch: {set: summary}}; epoch 0 is the start model when `start` names it."""
    points = {}
    if start:
        points[0] = {Path(r).name: score(Path(start), Path(r), device, Path(run) / "weights") for r in real}
    for epoch, path in checkpoints(Path(run), every):
        points[epoch + 1] = {Path(r).name: score(path, Path(r), device) for r in real}
    if out:
        plot(points, Path(out), Path(run).name)
    return points


def plot(points: dict, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = sorted(points)
    sets = sorted(points[epochs[0]])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for name in sets:
        rows = [points[e][name] for e in epochs]
        axes[0].plot(epochs, [r["score"] for r in rows], marker="o", label=name)
        for key in sorted(k for k in rows[0] if k.startswith("recall_")):
            axes[1].plot(epochs, [r[key] for r in rows], marker="o", label=f"{name} {key[7:]}")
        false = "fp_per_image" if "fp_per_image" in rows[0] else "far_per_image"
        axes[2].plot(epochs, [r[false] for r in rows], marker="o", label=f"{name} {false}")
    for ax, label in zip(axes, ("score", "recall", "false boxes per image")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{title}: real-frame scores by epoch (conf 0.25, imgsz 640)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a training run folder (runs/<project>/<name>)")
    p.add_argument("--real", nargs="+", required=True, help="labelled real sets (keypoints.json or hands.json)")
    p.add_argument("--every", type=int, default=1, help="score every N-th saved epoch (and the last)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", help="the plot (.png)")
    p.add_argument("--start", help="the weights the run started from, scored as epoch 0")
    opt = p.parse_args()
    points = run(opt.run, opt.real, opt.every, opt.device, opt.out, opt.start)
    for epoch, sets in points.items():
        print(f"epoch {epoch}: " + " | ".join(f"{name} " + ", ".join(f"{k} {v:.3f}" for k, v in m.items() if v is not None)
                                             for name, m in sets.items()))


if __name__ == "__main__":
    main()
