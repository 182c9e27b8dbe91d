"""Phase 3: curate video pseudo-labels into a YOLO dataset with a leakage-free train/val split.

    python curate_and_split.py --pair clip1.mp4::out/clip1 --pair clip2.mp4::out/clip2 --out_ds curated/
    python curate_and_split.py --pair clip.mp4::out/clip --out_ds curated/ --min_conf_nh 0.6 --max_per_video 300
    python curate_and_split.py --pair frames/::labels/ --out_ds curated/ --pre_clahe --min_track 0

--pair VIDEO::LABELS_DIR (repeatable). VIDEO is a video file or a folder of frames. LABELS_DIR is a video.py
output folder (labels/, labels_seg/, run.json: label names, stride and CLAHE preprocessing are read from the
record and the frames are extracted with the same preprocessing) or a plain folder of pose label files named
<video stem>_<frame:06d>.txt (frames from a folder: <image stem>.txt); no preprocessing then unless
--pre_clahe. Every label line must end with the instance confidence (video.py writes it); a file without
is an error.

Rules, in order, each rejection counted per reason, class and video in the report:
  instances  low_conf (--min_conf_nh / --min_conf_t), small_box (--min_box_area), small_mask (seg,
             --min_mask_area), low_kpt_conf (pose, mean of tips + joint, --min_kpt_conf), class_conflict
             (overlaps a higher-scoring instance of the other class, box IoU >= --class_iou), double_box (its
             box and a higher-scoring same-class box nest, --double_box_cover; never makes a frame ambiguous),
             unstable (must recur in --min_track of the frames within +-temporal_window processed frames, box
             IoU >= --min_iou, confident keypoints within --max_kpt_shift x box diagonal). Kept keypoints below
             --kpt_vis_conf are written as not labelled (0 0 0), the others visible (2).
  frames     ambiguous: a rejected instance scoring >= --ignore_frac x its class threshold drops the frame
             (an unlabelled instrument would be taught as background); no_instance; missing_class: by
             default every class must be kept in a frame, --require_any keeps frames with any kept instance;
             near_duplicate (--dup_thresh); split_gap; video_cap (--max_per_video, even in time); balance.
Split (--split val fraction): --split_by video puts whole videos in val; block cuts each video into time
blocks (--block_s / --block_frames) and drops train frames within --gap processed frames of val ones, so
near-identical neighbours never straddle train and val; auto: video with >= 2 videos, else block.

Writes OUT_DS/: images/{train,val}/<stem>.jpg (the preprocessed frames, --jpg_quality), labels/{train,val}
(YOLO labels without confidences), data.yaml, curation.json (sources, rules, counts, split); pose is the
primary dataset, segmentation labels beside pose ones make OUT_DS/seg/ (own data.yaml, same images hard
linked); segmentation alone is written in OUT_DS/. --save_frames also writes review overlays of every
considered frame to OUT_DS/review/<task>/<train|val|reason>/ for tuning the rules by eye.
"""
from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

from surgpose import offline

offline.configure()

from surgpose.cli import user_errors_in_one_line  # noqa: E402
from surgpose.curation import REPORT, SPLIT_BY, CurationRules, curate, summary  # noqa: E402

__all__ = ["REPORT", "run", "parse_opt", "main"]


def run(
    pair: Sequence[str] | str,
    out_ds: str | Path,
    min_conf_nh: float = 0.5,
    min_conf_t: float = 0.5,
    ignore_frac: float = 0.5,
    min_box_area: float = 0.001,
    min_mask_area: float = 0.0005,
    min_kpt_conf: float = 0.5,
    class_iou: float = 0.5,
    double_box_cover: float = 0.8,
    kpt_vis_conf: float = 0.5,
    temporal_window: int = 2,
    min_track: int = 2,
    min_iou: float = 0.5,
    max_kpt_shift: float = 0.2,
    require_any: bool = False,
    stride: int = 1,
    dup_thresh: float = 1.0,
    max_per_video: int = 0,
    balance: float = 0.0,
    split: float = 0.2,
    split_by: str = "auto",
    block_s: float = 10.0,
    block_frames: int = 0,
    gap: int | None = None,
    seed: int = 0,
    pre_clahe: bool = False,
    clahe_clip: float = 2.0,
    save_frames: bool = False,
    jpg_quality: int = 95,
    progress_every: int = 0,
) -> dict[str, Any]:
    """Curate the pairs into `out_ds`; return the report (also written to `out_ds/curation.json`).

    Keyword names are the command-line flags; the rule defaults are `surgpose.curation.CurationRules`'s.
    `pre_clahe`/`clahe_clip` apply to label folders without run.json (a run.json's record wins).
    """
    rules = CurationRules(min_conf_nh=min_conf_nh, min_conf_t=min_conf_t, ignore_frac=ignore_frac,
                          min_box_area=min_box_area, min_mask_area=min_mask_area, min_kpt_conf=min_kpt_conf,
                          class_iou=class_iou, double_box_cover=double_box_cover, kpt_vis_conf=kpt_vis_conf,
                          temporal_window=temporal_window, min_track=min_track, min_iou=min_iou,
                          max_kpt_shift=max_kpt_shift, require_any=require_any, stride=stride, dup_thresh=dup_thresh,
                          max_per_video=max_per_video, balance=balance, split=split, split_by=split_by,
                          block_s=block_s, block_frames=block_frames, gap=gap, seed=seed)
    report = curate([pair] if isinstance(pair, (str, Path)) else list(pair), out_ds, rules, pre_clahe=pre_clahe,
                    clahe_clip=clahe_clip, save_frames=save_frames, jpg_quality=jpg_quality,
                    progress_every=progress_every)
    print(summary(report))
    return report


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pair", action="append", required=True, metavar="VIDEO::LABELS_DIR",
                   help="a video (or folder of frames) and its labels (video.py output or label folder); repeatable")
    p.add_argument("--out_ds", required=True, help="output dataset folder")
    helps, defaults = CurationRules.help(), CurationRules()
    for f in fields(CurationRules):
        default = getattr(defaults, f.name)
        text = f"{helps[f.name]} (default: {default})"
        if isinstance(default, bool):
            p.add_argument(f"--{f.name}", action="store_true", help=helps[f.name])
        elif f.name == "split_by":
            p.add_argument("--split_by", choices=SPLIT_BY, default=default, help=text)
        elif f.name == "gap":
            p.add_argument("--gap", type=int, default=None, help=helps[f.name])
        else:
            p.add_argument(f"--{f.name}", type=type(default), default=default, help=text)
    p.add_argument("--pre_clahe", action="store_true",
                   help="CLAHE on the frames of label folders without run.json (with one, its record is used: "
                        "CLAHE and its clip as the labels were made; --pre_clahe on labels made without is an error)")
    p.add_argument("--clahe_clip", type=float, default=2.0, help="CLAHE clip limit for --pre_clahe")
    p.add_argument("--save_frames", action="store_true",
                   help="also save review overlays of every considered frame, filed by outcome, in OUT_DS/review/ "
                        "(the dataset's own frames are always saved)")
    p.add_argument("--jpg_quality", type=int, default=95, help="JPEG quality of the saved frames")
    p.add_argument("--progress_every", type=int, default=0, help="also log a progress line every N frames")
    return p.parse_args(argv)


@user_errors_in_one_line
def main(opt: argparse.Namespace) -> dict[str, Any]:
    report = run(**vars(opt))
    print(f"report: {Path(report['out_ds']) / REPORT}")
    return report


if __name__ == "__main__":
    main(parse_opt())
