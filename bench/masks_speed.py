"""CPU cost of masks in `video.py`: the pose model alone against pose + segmentation model, on the same clip
and backend (`--export int8` by default: OpenVINO INT8, the fastest on a CPU, which `--export auto` picks for
inputs of 1800 frames or more), interleaved and repeated.

    python bench/masks_speed.py --weights models/refined_weights.pt --seg_weights models/seg_weights.pt \
        --video ../shared/real/clips/laufer_P016_balloon1.mp4

Prints end-to-end frames per second (drawing, labels, JSON lines and the annotated video included, model
loading and export excluded) and writes them to `bench/results/masks_speed.json`.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from video_speed import cut_clip, write_results  # noqa: E402  (also configures offline mode and quiet logs)

import video  # noqa: E402


def run(weights: str | Path, seg_weights: str | Path, video_path: str | Path, imgsz: int = 640, frames: int = 150,
        conf: float = 0.25, export: str = "int8", repeats: int = 3) -> dict:
    """Medians of `repeats` interleaved `video.run`s without and with the segmentation model."""
    runs: dict[str, list[float]] = {"pose": [], "pose_and_seg": []}
    with tempfile.TemporaryDirectory() as tmp:
        clip = cut_clip(Path(video_path), Path(tmp) / "clip.mp4", frames)
        for _ in range(repeats):
            for name, seg in (("pose", "none"), ("pose_and_seg", seg_weights)):
                record = video.run(weights=weights, seg_weights=seg, video=clip, out_dir=Path(tmp) / name,
                                   imgsz=imgsz, conf=conf, device="cpu", export=export)
                runs[name].append(record["fps_processed"])
                print(f"  {name:13s} {record['fps_processed']:6.1f} fps ({record['model']['export']})")
    median = {name: statistics.median(v) for name, v in runs.items()}
    print(f"imgsz {imgsz}, {frames} frames, median of {repeats}: pose alone {median['pose']:.1f} fps, pose + masks "
          f"{median['pose_and_seg']:.1f} fps ({median['pose_and_seg'] / median['pose']:.2f}x)")
    return {"median": median, "runs": runs}


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="pose .pt weights")
    p.add_argument("--seg_weights", required=True, help="segmentation .pt weights")
    p.add_argument("--video", required=True, dest="video_path")
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--frames", type=int, default=150, help="frames of the video to use")
    p.add_argument("--conf", type=float, default=0.25)
    p.add_argument("--export", default="int8", help="video.py's --export for both runs")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repetitions; medians are reported")
    return p.parse_args(argv)


def main(opt: argparse.Namespace) -> None:
    write_results("masks_speed", opt, run(**vars(opt)))


if __name__ == "__main__":
    main(parse_opt())
