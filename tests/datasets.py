"""Tiny test data: drawn instrument-like shapes as a Phase 1 dataset (pose + seg) and a short clip.

Each instrument is drawn with coloured keypoint markers (tip_left red, tip_right blue) so tests can
check that labels stay on their markers through augmentation. `tiny_dataset` is the one entry point;
swap its body for real rendered data without touching the tests.
"""
from __future__ import annotations

import functools
import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np

from surgpose import schema
from surgpose.files import write_image, write_json
from surgpose.schema import Layout

#: Marker colours (BGR) drawn at the two tips.
TIP_LEFT_BGR, TIP_RIGHT_BGR = (0, 0, 255), (255, 0, 0)
STEEL_BGR = (200, 200, 205)


def instrument_keypoints(cls: str, centre: tuple[float, float], angle: float, length: float,
                         opening: float = 0.3) -> np.ndarray:
    """(5, 2) keypoints in schema order for an instrument pointing along `angle` (radians), tips first."""
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    half = length / 2
    if cls == "needle_holder":  # short jaws, box lock near the tips, long shanks to finger rings
        local = [(-0.06 * length * (1 + opening), -half), (0.06 * length * (1 + opening), -half), (0, -0.2 * length),
                 (-0.2 * length, half), (0.2 * length, half)]
    else:  # tweezers: tips apart, arms join at the back end, grips mid-arm
        local = [(-0.12 * length * (1 + opening), -half), (0.12 * length * (1 + opening), -half), (0, half),
                 (-0.1 * length, 0.05 * length), (0.1 * length, 0.05 * length)]
    return np.asarray(local) @ rot.T + np.asarray(centre)


def draw_instrument(image: np.ndarray, mask: np.ndarray, cls: str, kpts: np.ndarray, width: int) -> None:
    """Draw the instrument (steel strokes, rings, tip markers) into `image` and its silhouette into `mask`."""
    p = np.round(kpts).astype(int)
    strokes = [(0, 2), (1, 2), (2, 3), (2, 4)] if cls == "needle_holder" else [(0, 3), (3, 2), (1, 4), (4, 2)]
    for target, colour in ((image, STEEL_BGR), (mask, 255)):
        for a, b in strokes:
            cv2.line(target, tuple(p[a]), tuple(p[b]), colour, width, cv2.LINE_AA)
        if cls == "needle_holder":
            for k in (3, 4):
                cv2.circle(target, tuple(p[k]), 2 * width, colour, max(1, width // 2), cv2.LINE_AA)
    for k, colour in ((0, TIP_LEFT_BGR), (1, TIP_RIGHT_BGR)):
        cv2.circle(image, tuple(p[k]), width, colour, -1)
        cv2.circle(mask, tuple(p[k]), width, 255, -1)


def background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Smooth coloured clutter: drapes, skin and shadow at low frequency, plus sensor grain."""
    w, h = size
    low = rng.uniform(40, 160, (4, 4, 3)).astype(np.float32)
    img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    return (img + rng.normal(0, 4, img.shape)).clip(0, 255).astype(np.uint8)


def scene(rng: np.random.Generator, size: tuple[int, int], t: float | None = None) -> tuple[np.ndarray, list[dict]]:
    """One image with one needle holder and one tweezers, and their label-record instances.

    With `t` (seconds) the instruments move smoothly along fixed paths, for video frames.
    """
    w, h = size
    image = background(rng, size)
    instances = []
    for i, cls in enumerate(schema.CLASSES):
        if t is None:
            centre = ((0.27 + 0.46 * i + rng.uniform(-0.05, 0.05)) * w, rng.uniform(0.35, 0.65) * h)
            angle, length = rng.uniform(-math.pi, math.pi), rng.uniform(0.4, 0.55) * min(w, h)
        else:
            centre = (w * (0.35 + 0.3 * i + 0.1 * math.sin(t + i)), h * (0.5 + 0.15 * math.cos(0.7 * t + i)))
            angle, length = 0.4 * math.sin(0.5 * t) + i * 0.8, 0.5 * min(w, h)
        kpts = instrument_keypoints(cls, centre, angle, length)
        mask = np.zeros((h, w), np.uint8)
        draw_instrument(image, mask, cls, kpts, width=max(2, min(w, h) // 40))
        contour = max(cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0], key=cv2.contourArea)
        inside = (kpts >= 0).all(1) & (kpts < (w, h)).all(1)
        ys, xs = np.nonzero(mask)
        instances.append({
            "class": cls,
            "bbox": [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)],
            "keypoints": [[float(x), float(y), schema.VIS_VISIBLE if ok else schema.VIS_OUTSIDE]
                          for (x, y), ok in zip(kpts, inside)],
            "polygons": [contour.reshape(-1, 2).astype(float).tolist()],
            "area": int(len(xs)),
        })
    return image, instances


def read_video(path: Path) -> list[np.ndarray]:
    """Every frame of a video, decoded with OpenCV."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (ok := cap.read())[0]:
        frames.append(ok[1])
    return frames


def write_clip(path: Path, frames: int = 24, fps: float = 12.0, size: tuple[int, int] = (192, 144)) -> Path:
    """A short mp4 of moving instruments."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for k in range(frames):
        writer.write(scene(np.random.default_rng(0), size, t=k / fps)[0])  # same background in every frame
    writer.release()
    return path


def tiny_dataset(root: Path, n_train: int = 8, n_val: int = 4, size: tuple[int, int] = (192, 144)) -> dict[str, Path]:
    """A Phase 1 output folder built from drawn scenes: per-image records and composited images, turned into
    `yolo_data` and `yolo_data_seg` by `data_generation/build_datasets.py`, plus `clip.mp4`. Built once per root.

    Returns {"pose": pose data.yaml, "seg": seg data.yaml, "clip": mp4}.
    """
    from data_generation import build_datasets

    root = Path(root)
    paths = {"pose": root / Layout.YOLO_POSE / "data.yaml", "seg": root / Layout.YOLO_SEG / "data.yaml",
             "clip": root / "clip.mp4"}
    if all(p.exists() for p in paths.values()):
        return paths
    rng = np.random.default_rng(0)
    total = n_train + n_val
    for index in range(total):
        image, instances = scene(rng, size)
        name = f"{index:06d}.jpg"
        write_image(root / Layout.COMPOSITED / "train" / name, image)
        write_json(root / Layout.KEYPOINTS / f"{index:06d}.json",
                   {"image": name, "width": size[0], "height": size[1], "index": index, "instances": instances})
    build_datasets.run(str(root), val_fraction=n_val / total, viz=False)
    write_clip(paths["clip"])
    return paths


@functools.cache
def trained_run(base: Path, task: str) -> Path:
    """One short real training per task ('pose' or 'segment') and test session, shared by the test modules."""
    import train

    data = tiny_dataset(base / "tiny")
    pose = task == "pose"   # a nano network from scratch, small and quick (the pretrained YOLOv8s: test_pretrained.py)
    return train.run(data=data["pose" if pose else "seg"], model="yolo11n-pose.yaml" if pose else "yolo11n-seg.yaml",
                     epochs=1, imgsz=64, batch=4, project=base / "runs", name=task, exist_ok=True)


def real_format_folder(tiny_root: Path, out: Path) -> Path:
    """The tiny drawn dataset as a real-footage folder (`images/` + `keypoints.json`, the format of
    ../shared/real/oss_dev): kp0, kp1 the tips, kp2 our joint (a nub stand-in for tweezers); the first
    image's tweezers have unordered points only, as some real labels do."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    images = {}
    for k, path in enumerate(sorted((Path(tiny_root) / Layout.KEYPOINTS).glob("*.json"))):
        rec = json.loads(path.read_text())
        shutil.copyfile(Path(tiny_root) / Layout.COCO / "images" / rec["image"], out / "images" / rec["image"])
        tools = {}
        for inst in rec["instances"]:
            points = [[round(x, 1), round(y, 1), v] for x, y, v in inst["keypoints"][:3]]
            ordered = not (k == 0 and inst["class"] == "tweezers")
            tools[inst["class"]] = {"keypoints_unordered": [points[1], points[0], *points[2:]],
                                    **({"keypoints_ordered": points} if ordered else {})}
        images[rec["image"]] = {"width": rec["width"], "height": rec["height"], "video": "tiny", "tools": tools}
    write_json(out / "keypoints.json", {"images": images})
    return out


#: Class names of `detection_export`, as a Roboflow export spells them (one for each of ours, scissors beside).
DETECTION_NAMES = ["Babcock Tissue Forceps", "Mayo Needle Holder", "DeBakey Dissector", "Metzenbaum Scissors"]


def detection_export(root: Path, n: int = 6, size: tuple[int, int] = (192, 144)) -> Path:
    """A YOLO detection dataset laid out as a Roboflow export (data.yaml with `../train/images`, train/images,
    train/labels): drawn scenes with their needle holder ('Mayo Needle Holder') and tweezers ('DeBakey Dissector')
    boxed, a 'Metzenbaum Scissors' box in every other image, and a last image holding only scissors."""
    root = Path(root)
    rng = np.random.default_rng(1)
    ids = {"needle_holder": 1, "tweezers": 2}
    for index in range(n):
        image, instances = scene(rng, size)
        lines = []
        for inst in instances if index < n - 1 else []:
            x1, y1, x2, y2 = inst["bbox"]
            lines.append(f"{ids[inst['class']]} {(x1 + x2) / 2 / size[0]:.6f} {(y1 + y2) / 2 / size[1]:.6f} "
                         f"{(x2 - x1) / size[0]:.6f} {(y2 - y1) / size[1]:.6f}")
        if index % 2 or index == n - 1:
            lines.append("3 0.2 0.8 0.2 0.15")
        name = f"tool_{index}_jpg.rf.{index:04x}"
        write_image(root / "train" / "images" / f"{name}.jpg", image)
        (root / "train" / "labels").mkdir(parents=True, exist_ok=True)
        (root / "train" / "labels" / f"{name}.txt").write_text("".join(f"{line}\n" for line in lines))
    (root / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\n"
        f"nc: {len(DETECTION_NAMES)}\nnames: {json.dumps(DETECTION_NAMES)}\n\n"
        "roboflow:\n  workspace: test\n  project: test\n  version: 1\n  license: CC BY 4.0\n")
    return root


#: Keypoint order of `coco_keypoints_export`'s categories: a label tool's own, not ours.
EXPORT_KEYPOINT_ORDER = ["joint", "handle_right", "tip_right", "handle_left", "tip_left"]


def coco_keypoints_export(root: Path, n: int = 6, size: tuple[int, int] = (192, 144), polygons: bool = True,
                          unlabelled: int = 0) -> tuple[Path, Path, list[list[dict]]]:
    """A COCO keypoints file as CVAT's "COCO Keypoints 1.0" export lays it out
    (annotations/person_keypoints_default.json, images/default/): drawn scenes, categories with our keypoint names
    in another order (`EXPORT_KEYPOINT_ORDER`), each tip_right of the first image marked occluded (v 1), the
    tweezers of the second without keypoints (boxed only), polygons when asked, and `unlabelled` more images
    with no annotation.

    Returns (json path, image folder, each image's instance dicts in our keypoint order, as labelled)."""
    root = Path(root)
    rng = np.random.default_rng(2)
    order = [schema.KEYPOINTS.index(name) for name in EXPORT_KEYPOINT_ORDER]
    images, annotations, truth = [], [], []
    for index in range(n + unlabelled):
        image, instances = scene(rng, size)
        name = f"frame_{index:06d}.jpg"
        write_image(root / "images" / "default" / name, image)
        images.append({"id": index + 1, "file_name": name, "width": size[0], "height": size[1]})
        if index >= n:
            continue
        labelled = []
        for inst in instances:
            kpts = [list(kp) for kp in inst["keypoints"]]
            if index == 0:
                kpts[schema.KEYPOINTS.index("tip_right")][2] = schema.VIS_OCCLUDED
            if index == 1 and inst["class"] == "tweezers":
                kpts = [[0.0, 0.0, 0]] * schema.NUM_KEYPOINTS
            x1, y1, x2, y2 = inst["bbox"]
            annotations.append({
                "id": len(annotations) + 1, "image_id": index + 1, "category_id": schema.class_id(inst["class"]) + 1,
                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
                "segmentation": [np.ravel(p).tolist() for p in inst["polygons"]] if polygons else [],
                "keypoints": [v for k in order for v in kpts[k]],
                "num_keypoints": sum(kp[2] > 0 for kp in kpts), "attributes": {"occluded": False}})
            labelled.append({**inst, "keypoints": kpts})
        truth.append(labelled)
    categories = [{"id": i + 1, "name": cls, "supercategory": "", "keypoints": EXPORT_KEYPOINT_ORDER,
                   "skeleton": [[EXPORT_KEYPOINT_ORDER.index(schema.KEYPOINTS[a]) + 1,
                                 EXPORT_KEYPOINT_ORDER.index(schema.KEYPOINTS[b]) + 1] for a, b in schema.SKELETON]}
                  for i, cls in enumerate(schema.CLASSES)]
    path = root / "annotations" / "person_keypoints_default.json"
    write_json(path, {"licenses": [], "info": {}, "categories": categories, "images": images,
                      "annotations": annotations})
    return path, root / "images" / "default", truth


def hand_format_folder(tiny_root: Path, out: Path) -> Path:
    """The tiny drawn dataset as a hand-box folder (`images/` + `hands.json`, the format of ../shared/real/apas_dev):
    each instrument held by a hand boxed around its middle, and an empty hand in a corner of every image."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    images = {}
    for path in sorted((Path(tiny_root) / Layout.KEYPOINTS).glob("*.json")):
        rec = json.loads(path.read_text())
        shutil.copyfile(Path(tiny_root) / Layout.COCO / "images" / rec["image"], out / "images" / rec["image"])
        hands = []
        for inst in rec["instances"]:
            x1, y1, x2, y2 = inst["bbox"]
            cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * 0.6, (y2 - y1) * 0.6
            hand = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
            hands.append({"side": "right", "tool": inst["class"], "box": hand})
        hands.append({"side": "left", "tool": "none", "box": [0.0, 0.0, 12.0, 12.0]})
        images[rec["image"]] = {"width": rec["width"], "height": rec["height"], "video": "tiny", "hands": hands}
    write_json(out / "hands.json", {"boxes": "one per hand, [x1, y1, x2, y2] pixels", "images": images})
    return out
