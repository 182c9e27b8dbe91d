"""COCO instances-with-keypoints files: built from records, read with pycocotools, and turned back into
instance dicts so user COCO data can enter the pipeline at any step."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

from surgpose.files import write_json
from surgpose.geometry import xywh_to_xyxy, xyxy_to_xywh
from surgpose.schema import CLASSES, class_id, coco_categories


def records_to_coco(records: list[dict], amodal: bool = False) -> dict:
    """COCO dict of `records` with polygon masks (visible part, or whole instrument with `amodal`)."""
    images, annotations = [], []
    for image_id, rec in enumerate(records, start=1):
        images.append({"id": image_id, "file_name": rec["image"], "width": rec["width"], "height": rec["height"]})
        for inst in rec["instances"]:
            polygons = inst["polygons_amodal"] if amodal else inst["polygons"]
            box = inst["bbox_amodal"] if amodal else inst["bbox"]
            kps = [float(v) for kp in inst["keypoints"] for v in kp]
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": class_id(inst["class"]) + 1,
                "bbox": xyxy_to_xywh(box), "area": float(inst["area_amodal"] if amodal else inst["area"]),
                "iscrowd": 0, "segmentation": [np.asarray(p, float).ravel().tolist() for p in polygons],
                "keypoints": [int(v) if i % 3 == 2 else v for i, v in enumerate(kps)],
                "num_keypoints": sum(1 for kp in inst["keypoints"] if kp[2] > 0),
            })
    return {"info": {"description": "synthetic surgical instruments"}, "images": images,
            "annotations": annotations, "categories": coco_categories()}


def write_coco(path: str | os.PathLike, coco: dict) -> Path:
    return write_json(path, coco)


def load_coco(path: str | os.PathLike) -> COCO:
    """pycocotools COCO object, with a one-line error for unreadable or non-COCO files."""
    try:
        return COCO(str(path))
    except Exception as err:  # pycocotools raises bare exceptions and asserts
        raise ValueError(f"cannot read COCO file {path}: {err}") from None


def coco_to_instances(coco: COCO) -> dict[str, tuple[dict, list[dict]]]:
    """`{file_name: (image_info, [instance dict, ...])}` from a COCO object (categories matched by name)."""
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    unknown = sorted(set(names.values()) - set(CLASSES))
    if unknown:
        raise ValueError(f"COCO categories {unknown} are not in the schema ({', '.join(CLASSES)})")
    out = {}
    for img in coco.loadImgs(coco.getImgIds()):
        instances = []
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img["id"], iscrowd=None)):
            seg = ann.get("segmentation") or []
            polygons = [np.asarray(p, float).reshape(-1, 2).tolist() for p in seg if isinstance(seg, list)]
            kps = np.asarray(ann.get("keypoints") or [0] * 15, float).reshape(-1, 3)
            instances.append({"class": names[ann["category_id"]], "bbox": xywh_to_xyxy(ann["bbox"]),
                              "keypoints": [[x, y, int(v)] for x, y, v in kps.tolist()], "polygons": polygons})
        out[img["file_name"]] = (img, instances)
    return out


def coco_to_yolo(coco_path: str | os.PathLike, images_dir: str | os.PathLike, out_dir: str | os.PathLike,
                 split: str, task: str) -> int:
    """Write a YOLO `pose` or `segment` split (images linked, labels, data.yaml) from a COCO file;
    returns the number of images."""
    from surgpose.yolo import write_data_yaml, write_split

    images_dir = Path(images_dir)
    items = []
    for file_name, (img, instances) in coco_to_instances(load_coco(coco_path)).items():
        path = images_dir / file_name
        if not path.is_file():
            raise ValueError(f"image {path} listed in {coco_path} does not exist")
        items.append((path, img["width"], img["height"], instances))
    write_split(out_dir, split, items, task)
    write_data_yaml(out_dir, task)
    return len(items)
