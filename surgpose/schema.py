"""The one source of truth for classes, keypoints and dataset folder layout.

Everything that names a class or a keypoint (data.yaml files, COCO categories, drawing code, docs)
reads it from here.
"""
from __future__ import annotations

#: Class names, indexed by YOLO class id (COCO category id is index + 1).
CLASSES: tuple[str, ...] = ("needle_holder", "tweezers")

#: Keypoint names, in label order, for both classes.
#: needle holder: jaw tips, box-lock pivot, finger-ring centres;
#: tweezers: arm tips, closed back end, centre of each arm's grip.
KEYPOINTS: tuple[str, ...] = ("tip_left", "tip_right", "joint", "handle_left", "handle_right")

#: Index of each keypoint's mirror image, for horizontal-flip augmentation.
FLIP_IDX: tuple[int, ...] = (1, 0, 2, 4, 3)

#: Skeleton edges as 0-based keypoint index pairs (tips and handles hang off the joint).
SKELETON: tuple[tuple[int, int], ...] = ((0, 2), (1, 2), (2, 3), (2, 4))

#: COCO-style OKS sigmas per keypoint: tips and joint are sharp landmarks, ring/grip centres less so.
KPT_OKS_SIGMAS: tuple[float, ...] = (0.025, 0.025, 0.035, 0.05, 0.05)

#: Keypoint visibility codes (COCO / YOLO-pose convention).
VIS_OUTSIDE, VIS_OCCLUDED, VIS_VISIBLE = 0, 1, 2

#: Drawing colours (BGR) per class and per keypoint.
CLASS_COLORS: tuple[tuple[int, int, int], ...] = ((255, 128, 0), (0, 200, 255))
KEYPOINT_COLORS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 255), (0, 255, 0), (255, 255, 255), (255, 0, 255), (255, 255, 0))

NUM_KEYPOINTS = len(KEYPOINTS)


def class_id(name: str) -> int:
    """YOLO class id of a class name, with a clear error for unknown names."""
    try:
        return CLASSES.index(name)
    except ValueError:
        raise ValueError(f"unknown class {name!r}; expected one of {', '.join(CLASSES)}") from None


def coco_categories() -> list[dict]:
    """COCO `categories` carrying keypoint names and a 1-based skeleton."""
    return [
        {"id": i + 1, "name": name, "supercategory": "instrument",
         "keypoints": list(KEYPOINTS), "skeleton": [[a + 1, b + 1] for a, b in SKELETON]}
        for i, name in enumerate(CLASSES)
    ]


class Layout:
    """Folder layout of a generated dataset (`output/` in the README)."""

    RENDERS = "renders"            # per-frame RGBA renders and instance/depth maps (intermediate)
    KEYPOINTS = "keypoints"        # per-image JSON record: instances, keypoints, polygons
    COCO = "coco_data"             # images + annotations_{train,val}.json + coco_annotations.json
    COMPOSITED = "composited"      # composited/{train,val}/<image>.jpg: the training images
    YOLO_POSE = "yolo_data"        # images/{train,val}, labels/{train,val}, data.yaml
    YOLO_SEG = "yolo_data_seg"     # images/{train,val}, labels/{train,val}, data.yaml, viz_{train,val}
    DEBUG = "debug"                # overlays written with --debug
    SPLITS = ("train", "val")
