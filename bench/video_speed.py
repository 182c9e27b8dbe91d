"""CPU speed of video inference: `video.py` against plain Ultralytics, and PyTorch against exports.

    python bench/video_speed.py --weights runs/segment/train/weights/best.pt --video clip.mp4 --imgsz 320 640

For each size it prints frames per second of
  * plain `YOLO(weights).predict(video, stream=True)` (no drawing, no writing) with PyTorch, ONNX Runtime,
    OpenVINO and OpenVINO INT8 weights (exported offline, INT8 calibrated on frames of the video);
  * `video.py` (drawing, labels, JSON lines, annotated video) on the same models, and its ratio to plain.
Results also go to `bench/results/video_speed.json`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from surgpose import offline  # noqa: E402

os.environ.setdefault("YOLO_VERBOSE", "False")  # per-frame logs would distort the timings
os.environ.setdefault("TQDM_DISABLE", "1")  # so would video.py's progress bar
offline.configure()

import cv2  # noqa: E402
from ultralytics import YOLO  # noqa: E402

import video  # noqa: E402
from surgpose.inference import (  # noqa: E402
    EXPORTS,
    export_weights,
    prefer_fp32_openvino,
    resolve_export,
    video_calibration,
)

BACKENDS = ("pytorch", *EXPORTS)
# as video.py does for the float export; set before any OpenVINO model loads, so plain runs get it too (the
# backends share this process: on CPUs with AMX, video.py's INT8 alone runs faster than measured here)
prefer_fp32_openvino()


def cut_clip(src: Path, dst: Path, frames: int) -> Path:
    """The first `frames` frames of `src`, so every measurement decodes the same short clip."""
    cap = cv2.VideoCapture(str(src))
    ok, frame = cap.read()
    if not ok:
        raise ValueError(f"cannot read video {src}")
    writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), cap.get(cv2.CAP_PROP_FPS) or 30,
                             frame.shape[1::-1])
    for _ in range(frames):
        writer.write(frame)
        ok, frame = cap.read()
        if not ok:
            break
    writer.release()
    cap.release()
    return dst


def plain_fps(weights: Path, clip: Path, imgsz: int, conf: float, warmup: int = 3) -> float:
    """Frames per second of plain Ultralytics streaming over the clip (first frames are warm-up)."""
    model = YOLO(str(weights))
    n, start = 0, 0.0
    for n, _ in enumerate(model.predict(str(clip), stream=True, imgsz=imgsz, conf=conf, device="cpu",
                                                verbose=False), 1):
        if n == warmup:
            start = time.perf_counter()
    return (n - warmup) / (time.perf_counter() - start)


def video_py_fps(weights: Path, clip: Path, imgsz: int, conf: float, out: Path) -> float:
    """End-to-end frames per second of `video.run` (drawing and label writing on), excluding model loading."""
    record = video.run(weights=weights, video=clip, out_dir=out, imgsz=imgsz, conf=conf, device="cpu", export="none")
    return record["fps_processed"]


def run(weights: str | Path, video_path: str | Path, imgsz: list[int], frames: int = 300, conf: float = 0.25,
        repeats: int = 5) -> dict:
    """Measure everything, interleaved and repeated (shared machines are noisy); return fps per imgsz."""
    weights = Path(weights)
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = cut_clip(Path(video_path), Path(tmp) / "clip.mp4", frames)
        models = {"pytorch": weights, **{fmt: export_weights(weights, fmt, max(imgsz), "cpu", video_calibration(clip))
                                         for fmt in EXPORTS}}  # dynamic exports: one serves every size
        for size in imgsz:
            runs: dict[str, list[float]] = {}
            for _ in range(repeats):
                for b in BACKENDS:
                    runs.setdefault(f"plain_{b}", []).append(plain_fps(models[b], clip, size, conf))
                    runs.setdefault(f"video_py_{b}", []).append(
                        video_py_fps(models[b], clip, size, conf, Path(tmp) / f"out_{b}_{size}"))
            row = {k: statistics.median(v) for k, v in runs.items()}
            for b in BACKENDS:  # the ratio of each back-to-back pair: both runs saw the same machine state
                row[f"ratio_{b}"] = statistics.median(v / p for v, p in zip(runs[f"video_py_{b}"], runs[f"plain_{b}"]))
                row[f"speedup_{b}"] = row[f"plain_{b}"] / row["plain_pytorch"]
            results[size] = {"median": row, "runs": runs}
            print(f"\nimgsz {size} (median of {repeats}; speed-up: plain fps over plain PyTorch; vs plain: median "
                  "ratio of back-to-back runs)")
            print(f"  {'backend':9s} {'plain fps':>9s} {'ms/frame':>8s} {'speed-up':>8s} {'video.py fps':>12s} "
                  f"{'ms/frame':>8s} {'vs plain':>8s}")
            for b in BACKENDS:
                plain, vid = row[f"plain_{b}"], row[f"video_py_{b}"]
                print(f"  {b:9s} {plain:9.1f} {1000 / plain:8.1f} {row[f'speedup_{b}']:7.2f}x {vid:12.1f} "
                      f"{1000 / vid:8.1f} {row[f'ratio_{b}']:8.2f}")
            fastest = max(BACKENDS, key=lambda b: row[f"video_py_{b}"])
            default = resolve_export("auto", "cpu", frames) or "pytorch"
            print(f"  fastest video.py backend: {fastest}; video.py's default (--export auto) on the CPU: {default}")
    return results


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="PyTorch .pt weights (exports are made beside them)")
    p.add_argument("--video", required=True, dest="video_path")
    p.add_argument("--imgsz", type=int, nargs="+", default=[320, 640])
    p.add_argument("--frames", type=int, default=300, help="frames of the video to use")
    p.add_argument("--conf", type=float, default=0.25, help="confidence threshold (lower: more to draw and write)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repetitions; medians are reported")
    return p.parse_args(argv)


def write_results(name: str, opt: argparse.Namespace, results: dict) -> None:
    """`bench/results/<name>.json`: the arguments and the figures of one benchmark run."""
    out = ROOT / "bench" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(opt).items()}, "fps": results}, indent=2))
    print(f"\n-> {out}")


def main(opt: argparse.Namespace) -> None:
    write_results("video_speed", opt, run(**vars(opt)))


if __name__ == "__main__":
    main(parse_opt())
