"""Assemble COCO, YOLO-pose and YOLO-seg datasets from the per-image records of a generated folder.

This is also the merge step after sharded runs. Idempotent: a rerun leaves identical files and removes
those of images no longer present; the data.yaml files are written last, so a dataset that has one is
complete. In a folder the generator made, the split (--seed, --val_fraction, --num_images) and --amodal
default to what it recorded in generator_config.json.

    python data_generation/build_datasets.py --out output [--seed 0 --val_fraction 0.1 --amodal]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
from tqdm import tqdm  # noqa: E402

from data_generation.generator import CONFIG_NAME, check_rendered, record_amodal, recorded_settings  # noqa: E402
from surgpose.coco import records_to_coco, write_coco  # noqa: E402
from surgpose.draw import draw_instances  # noqa: E402
from surgpose.files import link_or_copy, write_image  # noqa: E402
from surgpose.records import instances_with_masks, load_records, split_for  # noqa: E402
from surgpose.schema import Layout  # noqa: E402
from surgpose.yolo import write_data_yaml, write_split  # noqa: E402


def composited_path(out: Path, record: dict) -> Path | None:
    """Where the record's composited image is now (in either split folder), or None."""
    return next((p for s in Layout.SPLITS if (p := out / Layout.COMPOSITED / s / record["image"]).is_file()), None)


def place_composited(out: Path, record: dict, split: str) -> Path:
    """The record's composited image in its split folder, moved there if an earlier run with another split
    (seed, val_fraction) put it in the other one; a copy left in the other folder is removed."""
    target = out / Layout.COMPOSITED / split / record["image"]
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(composited_path(out, record), target)
    for other in Layout.SPLITS:
        if other != split:
            (out / Layout.COMPOSITED / other / record["image"]).unlink(missing_ok=True)
    return target


def remove_stale(folder: Path, keep: set[str]) -> None:
    """Delete files in `folder` whose names are not in `keep` (images of frames no longer present)."""
    for path in folder.glob("*"):
        if path.is_file() and path.name not in keep:
            path.unlink()


def run(out: str = "output", seed: int = 0, val_fraction: float = 0.1, amodal: bool = False,
        num_images: int | None = None, viz: bool = True) -> dict[str, list[dict]]:
    """Build the datasets in `out` from `out/keypoints/*.json`; returns the records per split.

    `num_images` must be the generator's (it places each val block); by default the highest frame index + 1.
    """
    out = Path(out)
    records = load_records(out / Layout.KEYPOINTS)
    if not records:
        raise ValueError(f"no records in {out / Layout.KEYPOINTS}: render frames first")
    missing = [rec["image"] for rec in records if composited_path(out, rec) is None]
    if missing:
        raise ValueError(f"{len(missing)} composited image(s) missing from {out / Layout.COMPOSITED}/"
                         f"{{{','.join(Layout.SPLITS)}}}, first: {missing[0]}")
    total = num_images or records[-1]["index"] + 1
    splits: dict[str, list[dict]] = {s: [] for s in Layout.SPLITS}
    for rec in records:
        splits[split_for(rec["index"], total, seed, val_fraction)].append(rec)
    empty = sum(not rec["instances"] for rec in records)
    if 2 * empty > len(records):   # a camera far away, instruments out of view, --min_visible_px too high
        print(f"warning: {empty} of {len(records)} frames have no labelled instrument; check the camera "
              "(--camera_distance, --camera) and --min_visible_px", file=sys.stderr)
    if not all(splits.values()):   # Ultralytics trains on one and validates on the other
        raise ValueError(f"{len(records)} frames split as {len(splits['train'])} train and {len(splits['val'])} val "
                         f"(--num_images {total}, --val_fraction {val_fraction:g}): each split needs a frame")
    for dataset in (Layout.YOLO_POSE, Layout.YOLO_SEG):
        (out / dataset / "data.yaml").unlink(missing_ok=True)

    coco_images = out / Layout.COCO / "images"
    for split, recs in splits.items():
        items = []
        for rec in tqdm(recs, desc=f"datasets ({split})", unit="img", leave=False):
            image = place_composited(out, rec, split)
            link_or_copy(image, coco_images / rec["image"])
            items.append((image, rec["width"], rec["height"], instances_with_masks(rec, amodal)))
            if viz:
                overlay = draw_instances(cv2.imread(str(image)), items[-1][3], legend=True)
                write_image(out / Layout.YOLO_SEG / f"viz_{split}" / rec["image"], overlay, 90)
        if viz:
            remove_stale(out / Layout.YOLO_SEG / f"viz_{split}", {rec["image"] for rec in recs})
        write_split(out / Layout.YOLO_POSE, split, items, "pose")
        write_split(out / Layout.YOLO_SEG, split, items, "segment")
        write_coco(out / Layout.COCO / f"annotations_{split}.json", records_to_coco(recs, amodal))
    remove_stale(coco_images, {rec["image"] for rec in records})
    write_coco(out / Layout.COCO / "coco_annotations.json", records_to_coco(records, amodal))
    write_data_yaml(out / Layout.YOLO_POSE, "pose")
    write_data_yaml(out / Layout.YOLO_SEG, "segment")
    return splits


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="output", help="generated folder holding keypoints/ and composited/")
    p.add_argument("--seed", type=int, help="the generator's --seed (places the val frames; default: recorded, else 0)")
    p.add_argument("--val_fraction", type=float,
                   help="one val frame per round(1/F) frames (default: recorded, else 0.1)")
    p.add_argument("--amodal", action=argparse.BooleanOptionalAction, default=None,
                   help="whole-instrument masks instead of visible parts (default: recorded, else off)")
    p.add_argument("--num_images", type=int,
                   help="the generator's --num_images (default: recorded, else highest index + 1)")
    p.add_argument("--no_viz", dest="viz", action="store_false", help="skip the viz_train/viz_val overlays")
    return p.parse_args(argv)


def with_recorded_defaults(opt: argparse.Namespace) -> dict:
    """The options as given; those left out as the generator recorded them in `--out`, else run()'s defaults."""
    given = {k: v for k, v in vars(opt).items() if v is not None}
    if (Path(opt.out) / CONFIG_NAME).is_file():
        recorded = recorded_settings(opt.out)
        if "num_images" not in given:   # the generator's run: every frame must be there, as --merge checks
            check_rendered(Path(opt.out), recorded.num_images,
                           "render them first, or pass --num_images to build from the frames there are")
        given = {"seed": recorded.seed, "val_fraction": recorded.val_fraction, "amodal": recorded.amodal,
                 "num_images": recorded.num_images, **given}
    return given


def main(opt: argparse.Namespace) -> None:
    try:
        options = with_recorded_defaults(opt)
        splits = run(**options)
        if (Path(opt.out) / CONFIG_NAME).is_file():
            record_amodal(Path(opt.out), options.get("amodal", False))
    except ValueError as err:   # GeneratorError is one
        sys.exit(f"error: {err}")
    print(f"datasets ready in {opt.out}: " + ", ".join(f"{len(v)} {k}" for k, v in splits.items()))


if __name__ == "__main__":
    main(parse_opt())
