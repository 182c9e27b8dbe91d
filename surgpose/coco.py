"""COCO instances-with-keypoints files: built from records, read with pycocotools, and turned back into
instance dicts so a user's COCO data can enter the pipeline (YOLO conversion, overlays).

Image ids are the record's frame index + 1 in every file (train, val and all), so ids agree across them.
"""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

from surgpose.files import write_json
from surgpose.geometry import clip_keypoints, mask_to_polygons, xywh_to_xyxy, xyxy_to_xywh
from surgpose.records import instances_with_masks
from surgpose.schema import CLASSES, KEYPOINTS, NUM_KEYPOINTS, class_id, coco_categories
from surgpose.yolo import write_data_yaml, write_split


def records_to_coco(records: list[dict], amodal: bool = False) -> dict:
    """COCO dict of `records` with polygon masks of the visible part, or of the whole instrument with
    `amodal`. Instances without any polygon (visible only as specks) are left out: COCO tools need a mask."""
    images, annotations = [], []
    for rec in records:
        image_id = rec["index"] + 1
        images.append({"id": image_id, "file_name": rec["image"], "width": rec["width"], "height": rec["height"]})
        for inst in instances_with_masks(rec, amodal):
            if not inst["polygons"]:
                continue
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": class_id(inst["class"]) + 1,
                "bbox": xyxy_to_xywh(inst["bbox"]), "area": float(inst["area"]), "iscrowd": 0,
                "segmentation": [np.asarray(p, float).ravel().tolist() for p in inst["polygons"]],
                "keypoints": [v for x, y, vis in inst["keypoints"] for v in (float(x), float(y), int(vis))],
                "num_keypoints": sum(1 for kp in inst["keypoints"] if kp[2] > 0),
            })
    return {"info": {"description": "synthetic surgical instruments"}, "images": images,
            "annotations": annotations, "categories": coco_categories()}


def write_coco(path: str | os.PathLike, coco: dict) -> Path:
    """Write a COCO dict atomically (a reader never sees half a file)."""
    return write_json(path, coco)


def load_coco(path: str | os.PathLike) -> COCO:
    """pycocotools COCO object (its progress prints silenced), with a one-line error for unreadable or
    non-COCO files."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(path))
    except Exception as err:  # pycocotools raises bare exceptions and asserts
        raise ValueError(f"cannot read COCO file {path}: {type(err).__name__}: {err}") from None


def category_names(coco: COCO) -> dict[int, str]:
    """`{category id: class name}`; a category outside the schema is an error (its tools would silently
    count for nothing)."""
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    unknown = sorted(set(names.values()) - set(CLASSES))
    if unknown:
        raise ValueError(f"COCO categories {unknown} are not in the schema ({', '.join(CLASSES)})")
    return names


def keypoint_order(category: dict) -> list[int]:
    """Where each of our keypoints sits in the annotations of `category`: label tools (CVAT, Label Studio) name
    the points of a skeleton and may list them in another order. Without names, ours is assumed."""
    names = category.get("keypoints") or list(KEYPOINTS)
    if sorted(names) != sorted(KEYPOINTS):
        raise ValueError(f"category {category.get('name')!r} has keypoints {list(names)}; expected the names "
                         f"{', '.join(KEYPOINTS)} (any order)")
    return [list(names).index(name) for name in KEYPOINTS]


def coco_to_instances(coco: COCO, any_category: bool = False) -> dict[str, tuple[dict, list[dict]]]:
    """`{file_name: (image_info, [instance dict, ...])}`, categories matched to the schema by name (with
    `any_category`, each instance keeps its category's own name, for the caller to map).

    Crowd regions are skipped; RLE masks become polygons; keypoints are put in our order by the category's
    keypoint names and follow our convention (absent or off-image points are `[0, 0, 0]`), all absent for
    annotations without keypoints.
    """
    categories = coco.loadCats(coco.getCatIds())
    names = {c["id"]: c["name"] for c in categories} if any_category else category_names(coco)
    orders = {c["id"]: keypoint_order(c) for c in categories}
    out = {}
    for img in coco.loadImgs(sorted(coco.getImgIds())):
        instances = []
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img["id"])):
            if ann.get("iscrowd"):
                continue
            kps = ann.get("keypoints") or [0] * (3 * NUM_KEYPOINTS)
            if len(kps) != 3 * NUM_KEYPOINTS:
                raise ValueError(f"annotation {ann['id']} has {len(kps)} keypoint values, "
                                 f"expected {3 * NUM_KEYPOINTS} ([x, y, v] for {NUM_KEYPOINTS} keypoints)")
            if len(ann.get("bbox") or ()) != 4:
                raise ValueError(f"annotation {ann['id']} has no [x, y, width, height] bbox")
            seg = ann.get("segmentation") or []
            polygons = ([np.asarray(p, float).reshape(-1, 2).tolist() for p in seg if len(p) >= 6]
                        if isinstance(seg, list) else mask_to_polygons(coco.annToMask(ann)))
            points = np.reshape(kps, (-1, 3))[orders[ann["category_id"]]]
            instances.append({
                "class": names[ann["category_id"]], "bbox": xywh_to_xyxy(ann["bbox"]),
                "keypoints": clip_keypoints(points.tolist(), img["width"], img["height"]),
                "polygons": polygons})
        out[img["file_name"]] = (img, instances)
    return out


def resolve_coco_image(file_name: str, annotations: Path, images: str | Path | None) -> Path:
    """An image of a COCO file: in `images`, or where file_name points, beside the json or in its images/."""
    name = Path(file_name).name
    if images is not None:
        candidates = [Path(images) / file_name, Path(images) / name]
    else:
        root = annotations.parent
        candidates = [Path(file_name), root / file_name, root / "images" / file_name, root / "images" / name]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise FileNotFoundError(f"image {file_name} of {annotations} not found (looked in "
                                f"{', '.join(str(p.parent) for p in candidates)}); pass --images DIR")
    return found


def read_instances(coco: COCO, coco_path: str | os.PathLike, any_category: bool = False) -> dict:
    """`coco_to_instances`, its errors naming the file."""
    try:
        return coco_to_instances(coco, any_category)
    except KeyError as err:
        raise ValueError(f"{coco_path}: an image or annotation lacks the field {err}") from None
    except ValueError as err:
        raise ValueError(f"{coco_path}: {err}") from None


def load_instances(coco_path: str | os.PathLike, images_dir: str | os.PathLike) -> list[tuple[Path, dict, list[dict]]]:
    """`(image path, image info, instance dicts)` per image of a COCO file; errors name the file, and every
    image must exist (checked before any work starts)."""
    entries = read_instances(load_coco(coco_path), coco_path)
    items = [(Path(images_dir) / name, img, instances) for name, (img, instances) in entries.items()]
    missing = [str(path) for path, _, _ in items if not path.is_file()]
    if missing:
        raise ValueError(f"{len(missing)} image(s) listed in {coco_path} do not exist, first: {missing[0]}")
    return items


def coco_to_yolo(coco_path: str | os.PathLike, images_dir: str | os.PathLike, out_dir: str | os.PathLike,
                 split: str, task: str) -> int:
    """Write one split of a YOLO `pose` or `segment` dataset (images hard-linked, labels, data.yaml) from a
    COCO file; returns the number of images."""
    items = [(path, img["width"], img["height"], instances)
             for path, img, instances in load_instances(coco_path, images_dir)]
    write_split(out_dir, split, items, task)
    write_data_yaml(out_dir, task)
    return len(items)
