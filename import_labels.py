"""Import labelled real images into this project's dataset format, to mix into training (`train.py --real_data`)
or to fine-tune on: YOLO pose, plus segmentation where the labels have polygons.

    # a YOLO detection dataset (here a Roboflow export), its class names mapped to ours
    python import_labels.py --source ../shared/train_real/surgical_tools --out data/real_photos \\
        --map "Mayo Needle Holder=needle_holder" --map "8 Mayo Needle Holder=needle_holder" \\
        --map "DeBakey Dissector=tweezers" --map "Gillies Toothed Dissector=tweezers" \\
        --map 8=tweezers --map 9=tweezers --unmapped background
    # your own frames with keypoints: CVAT's "COCO Keypoints 1.0" export, or a YOLO-pose folder
    python import_labels.py --source export/annotations/person_keypoints_default.json \\
        --images export/images/default --out data/my_frames
    python import_labels.py --source my_pose_export/data.yaml --out data/my_frames
    # the CVAT label template: our two skeletons, for a CVAT project's raw label editor
    python import_labels.py --cvat_labels cvat_labels.json

--source is a COCO json (images, categories, annotations with a bbox, and keypoints and polygons where there
are any) or a YOLO dataset (its data.yaml, or the folder holding it; detection, pose or segmentation lines;
every split it lists that exists is read, and the images are split anew by --val_fraction).
Class names are mapped with --map NAME=CLASS, CLASS one of needle_holder, tweezers, background (an
instrument that must get no box: the box is dropped, the image kept, so the model learns it is not one of
ours) or skip (images holding one are left out). Names equal to ours map to themselves; any other name stops
the import unless --unmapped says what it becomes.
Keypoints are matched by name (a COCO category's `keypoints`, a data.yaml's `kpt_names`; without names, our
order). An instrument without labelled keypoints becomes a box-only instance (five keypoints `0 0 0`), which
training keeps out of the keypoint losses. A keypoint marked absent (v = 0) reads as outside the image, so
label every point inside it, hidden ones as occluded (v = 1).

Writes OUT/: images/{train,val} (hard links), labels/{train,val}, data.yaml (pose), seg/ with its own data.yaml
(the images whose instruments all have polygons; none for box-only data, where seg training would read each
instrument as background), import.json (what was read, mapped, dropped and written). OUT appears once the
import is complete; a rerun replaces an earlier import there, never another folder.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from surgpose import offline

offline.configure()

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402
from ultralytics.data.utils import IMG_FORMATS, img2label_paths  # noqa: E402

from surgpose import schema  # noqa: E402
from surgpose.cli import check_share, share, user_errors_in_one_line  # noqa: E402
from surgpose.coco import load_coco, read_instances, resolve_coco_image  # noqa: E402
from surgpose.curation import SEG_SUBDIR  # noqa: E402
from surgpose.files import write_json  # noqa: E402
from surgpose.geometry import clip_keypoints  # noqa: E402
from surgpose.yolo import write_data_yaml, write_split  # noqa: E402

#: What a source class can become besides one of ours.
BACKGROUND, SKIP = "background", "skip"
TARGETS = (*schema.CLASSES, BACKGROUND, SKIP)
#: What --unlabelled does with an image that has no labels at all (no label file, no COCO annotation).
UNLABELLED = ("error", "skip", "negative")
REPORT = "import.json"
SPLIT_KEYS = {"train": "train", "val": "val", "valid": "val", "test": "test"}


@dataclass
class Item:
    """One source image: its size and its instances in pixels, classes named as in the source; `instances` is
    None for an image without labels."""
    path: Path
    width: int
    height: int
    instances: list[dict] | None
    split: str = ""


# ------------------------------------------------------------------------------------------------ reading


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image header, one-line error for a file that is no image."""
    try:
        with Image.open(path) as im:
            return im.size
    except Exception as err:   # PIL raises several kinds for truncated or foreign files
        raise ValueError(f"cannot read image {path}: {err}") from None


def _numbers(line: str, where: str) -> list[float]:
    try:
        values = [float(v) for v in line.split()]
    except ValueError:
        raise ValueError(f"{where}: a non-numeric value in {line.strip()[:80]!r}") from None
    if not all(np.isfinite(values)):
        raise ValueError(f"{where}: a value that is not finite in {line.strip()[:80]!r}")
    return values


def parse_yolo_line(line: str, where: str, names: Sequence[str], kpt_shape: Sequence[int] | None,
                    kpt_order: dict[int, list[int]], width: int, height: int) -> dict:
    """One YOLO detection, pose or segmentation line as an instance dict in pixels (class named as in the
    source); errors name the file and line."""
    values = _numbers(line, where)
    cls = values[0]
    if not cls.is_integer() or not 0 <= cls < len(names):
        raise ValueError(f"{where}: class {line.split()[0]} is not one of the {len(names)} in data.yaml "
                         f"(0..{len(names) - 1})")
    cls = int(cls)
    coords = np.asarray(values[1:])
    if kpt_shape:
        nkpt, ndim = kpt_shape
        if len(values) != 5 + nkpt * ndim:
            raise ValueError(f"{where}: {len(values)} values; a pose line with kpt_shape {list(kpt_shape)} has "
                             f"{5 + nkpt * ndim}")
        xy = np.concatenate([coords[:4], coords[4:].reshape(nkpt, ndim)[:, :2].ravel()])
    elif len(values) != 5 and (len(values) < 7 or len(values) % 2 == 0):
        raise ValueError(f"{where}: {len(values)} values; expected 5 (class and box) or a polygon (class and 3 or "
                         "more x y pairs)")
    else:
        xy = coords
    if xy.min() < -0.01 or xy.max() > 1.01:
        raise ValueError(f"{where}: coordinates outside 0..1 (YOLO labels are normalised to the image size)")
    scale = np.array([width, height])
    inst: dict[str, Any] = {"class": names[cls], "keypoints": [[0.0, 0.0, schema.VIS_OUTSIDE]] * schema.NUM_KEYPOINTS,
                            "polygons": []}
    if len(values) == 5 or kpt_shape:
        (cx, cy), (w, h) = coords[:2] * scale, coords[2:4] * scale
        if w <= 0 or h <= 0:
            raise ValueError(f"{where}: a box of zero width or height")
        inst["bbox"] = [max(cx - w / 2, 0.0), max(cy - h / 2, 0.0), min(cx + w / 2, width), min(cy + h / 2, height)]
    else:
        polygon = coords.reshape(-1, 2) * scale
        inst["polygons"] = [polygon.tolist()]
        inst["bbox"] = [*polygon.min(0).tolist(), *polygon.max(0).tolist()]
    if kpt_shape:
        points = coords[4:].reshape(nkpt, ndim)[kpt_order.get(cls, list(range(nkpt)))]
        if ndim == 2:   # no visibility column: a point at 0 0 is absent, any other one visible
            points = np.column_stack([points, np.where(points.any(1), schema.VIS_VISIBLE, schema.VIS_OUTSIDE)])
        points[:, :2] *= scale
        inst["keypoints"] = clip_keypoints(points.tolist(), width, height)
    return inst


def _class_names(data: dict, path: Path) -> list[str]:
    names = data.get("names")
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if not isinstance(names, list) or not names:
        raise ValueError(f"{path} has no class names (names: [...])")
    return [str(n) for n in names]


def _kpt_orders(data: dict, names: list[str], path: Path) -> tuple[list[int] | None, dict[int, list[int]]]:
    """kpt_shape, and per class where each of our keypoints sits (from kpt_names; without them, our order)."""
    shape = data.get("kpt_shape")
    if not shape:
        return None, {}
    if len(shape) != 2 or shape[0] != schema.NUM_KEYPOINTS or shape[1] not in (2, 3):
        raise ValueError(f"{path} has kpt_shape {shape}; ours is [{schema.NUM_KEYPOINTS}, 3] "
                         f"({', '.join(schema.KEYPOINTS)}; [{schema.NUM_KEYPOINTS}, 2] without visibility)")
    kpt_names = data.get("kpt_names")
    if not kpt_names:
        return list(shape), {}
    per_class = kpt_names if isinstance(kpt_names, dict) else {i: kpt_names for i in range(len(names))}
    orders = {}
    for cls, point_names in per_class.items():
        if sorted(point_names) != sorted(schema.KEYPOINTS):
            raise ValueError(f"{path}: kpt_names {point_names} are not ours ({', '.join(schema.KEYPOINTS)}, any order)")
        orders[int(cls)] = [list(point_names).index(n) for n in schema.KEYPOINTS]
    return list(shape), orders


def _split_images(root: Path, entry: str | list, path: Path) -> list[Path]:
    """Images of one data.yaml split entry (folders or list files, relative to the data.yaml; Roboflow's exports
    write `../train/images` for a `train/images` beside it)."""
    images = []
    for e in entry if isinstance(entry, list) else [entry]:
        candidates = [root / e, root / str(e).removeprefix("../")]
        where = next((c for c in candidates if c.exists()), None)
        if where is None:
            continue
        if where.is_dir():
            images += sorted(p for p in where.rglob("*") if p.suffix[1:].lower() in IMG_FORMATS)
        else:
            lines = [line.strip() for line in where.read_text().splitlines() if line.strip()]
            images += [(where.parent / line).resolve() for line in lines]
    return images


def read_yolo(source: Path) -> tuple[list[str], list[Item], str, list[str]]:
    """Class names, images and labels of a YOLO dataset; the kind of labels; notes (splits not found)."""
    path = source / "data.yaml" if source.is_dir() else source
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --source takes a COCO json, a data.yaml or a folder holding one")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"cannot parse {path}: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a YOLO data.yaml")
    names = _class_names(data, path)
    kpt_shape, orders = _kpt_orders(data, names, path)
    root = path.parent / data["path"] if data.get("path") else path.parent
    items, notes = [], []
    for key, split in SPLIT_KEYS.items():
        if not data.get(key):
            continue
        images = _split_images(root, data[key], path)
        if not images:
            notes.append(f"{key}: {data[key]} not found or empty")
        for image in images:
            items.append(Item(image, 0, 0, None, split))
    if not items:
        raise FileNotFoundError(f"{path}: none of its splits ({', '.join(k for k in SPLIT_KEYS if data.get(k))}) "
                                "holds images")
    labels = img2label_paths([str(item.path) for item in items])
    stray = sorted({str(p) for d in {Path(lb).parent for lb in labels} if d.is_dir() for p in d.glob("*.txt")
                    if p.name != "classes.txt"} - set(labels))
    if stray:
        raise ValueError(f"{len(stray)} label files have no image (first: {stray[0]}): an image is missing or "
                         "misnamed")
    kinds = Counter()
    for item, label in zip(tqdm(items, desc="read labels", unit="img"), labels):
        item.width, item.height = image_size(item.path)
        if not Path(label).is_file():
            continue
        item.instances = []
        for n, line in enumerate(Path(label).read_text().splitlines(), start=1):
            if line.strip():
                inst = parse_yolo_line(line, f"{label}:{n}", names, kpt_shape, orders, item.width, item.height)
                kinds["polygon" if inst["polygons"] else "box"] += 1
                item.instances.append(inst)
    kind = "pose" if kpt_shape else ("segmentation" if kinds["polygon"] else "detection")
    if kinds["polygon"] and kinds["box"]:
        raise ValueError(f"{path}: its labels mix box lines and polygon lines; export one kind")
    return names, items, kind, notes


def read_coco(source: Path, images: str | Path | None) -> tuple[list[str], list[Item], str, list[str]]:
    """Category names, images and annotations of a COCO json (keypoints put in our order by name)."""
    coco = load_coco(source)
    entries = read_instances(coco, source, any_category=True)
    annotated = {img_id for img_id, anns in coco.imgToAnns.items() if anns}
    items = []
    for file_name, (img, instances) in tqdm(entries.items(), desc="read labels", unit="img"):
        path = resolve_coco_image(file_name, source, images)
        items.append(Item(path, int(img["width"]), int(img["height"]), instances if img["id"] in annotated else None))
    names = [c["name"] for c in coco.loadCats(coco.getCatIds())]
    with_keypoints = any(v > 0 for ann in coco.dataset["annotations"] for v in (ann.get("keypoints") or [])[2::3])
    return names, items, "coco keypoints" if with_keypoints else "coco", []


# ------------------------------------------------------------------------------------------------ mapping


def parse_map(pairs: Sequence[str]) -> dict[str, str]:
    """`NAME=CLASS` pairs (NAME as the source spells it) as a dict, CLASS checked."""
    mapping = {}
    for pair in pairs:
        name, sep, target = pair.rpartition("=")
        if not sep or not name:
            raise ValueError(f"--map {pair!r}: expected NAME=CLASS, CLASS one of {', '.join(TARGETS)}")
        if target not in TARGETS:
            raise ValueError(f"--map {pair!r}: {target!r} is not one of {', '.join(TARGETS)}")
        mapping[name] = target
    return mapping


def class_map(names: Sequence[str], used: set[str], given: dict[str, str], unmapped: str | None) -> dict[str, str]:
    """What each used source class becomes: as --map says, itself when it is one of ours, else `unmapped`."""
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ValueError(f"--map names classes the source does not have: {unknown}; its classes: {list(names)}")
    mapping = {}
    for name in names:
        mapping[name] = given.get(name) or (name if name in schema.CLASSES else unmapped)
    missing = sorted(n for n in used if mapping[n] is None)
    if missing:
        raise ValueError(f"classes without a --map: {missing}; map each with --map NAME=CLASS, or pass --unmapped "
                         f"{BACKGROUND} (boxes dropped, images kept) or --unmapped {SKIP} (images left out)")
    if not any(mapping[n] in schema.CLASSES for n in used):
        raise ValueError(f"the class map names no class of ours ({', '.join(schema.CLASSES)}) for the classes the "
                         f"source uses ({', '.join(sorted(used))}): nothing would be labelled")
    return mapping


def convert(items: list[Item], mapping: dict[str, str], unlabelled: str) -> tuple[list[Item], Counter]:
    """Items with classes mapped (background boxes dropped, images with a `skip` class or, as asked, without
    labels left out) and counts of what happened."""
    counts: Counter = Counter()
    bare = [item for item in items if item.instances is None]
    if bare and unlabelled == "error":
        raise ValueError(f"{len(bare)} images have no labels (first: {bare[0].path}): label them, or pass "
                         "--unlabelled skip (leave them out) or --unlabelled negative (images without instruments)")
    kept = []
    for item in items:
        if item.instances is None:
            counts[f"unlabelled_{unlabelled}"] += 1
            if unlabelled == "skip":
                continue
            item.instances = []
        targets = [mapping[inst["class"]] for inst in item.instances]
        if SKIP in targets:
            counts["skipped_images"] += 1
            continue
        counts["background_boxes_dropped"] += targets.count(BACKGROUND)
        item.instances = [{**inst, "class": t} for inst, t in zip(item.instances, targets) if t in schema.CLASSES]
        for inst in item.instances:
            counts[inst["class"]] += 1
            counts[f"{inst['class']}_box_only"] += all(v == schema.VIS_OUTSIDE for _, _, v in inst["keypoints"])
        kept.append(item)
    if not any(item.instances for item in kept):
        raise ValueError("no instrument of ours is left after mapping: check --map")
    return kept, counts


def assign_splits(items: list[Item], val_fraction: float, seed: int) -> None:
    """A seeded random `val_fraction` of the images (at least one when there is a share and two images) to val."""
    check_share("val_fraction", val_fraction)
    order = sorted(range(len(items)), key=lambda i: str(items[i].path))
    n_val = round(len(items) * val_fraction) if val_fraction else 0
    n_val = min(max(n_val, 1 if val_fraction and len(items) > 1 else 0), len(items) - 1)
    val = set(random.Random(seed).sample(order, n_val))
    for i, item in enumerate(items):
        item.split = "val" if i in val else "train"


# ------------------------------------------------------------------------------------------------ writing


def write_dataset(items: list[Item], out: Path, task: str) -> dict[str, int]:
    """images/, labels/ for both splits and data.yaml of one task; images per split."""
    written = {}
    for split in schema.Layout.SPLITS:
        for sub in ("images", "labels"):
            (out / sub / split).mkdir(parents=True, exist_ok=True)
        rows = [(it.path, it.width, it.height, it.instances) for it in items if it.split == split]
        write_split(out, split, tqdm(rows, desc=f"write {task} {split}", unit="img", leave=False), task)
        written[split] = len(rows)
    write_data_yaml(out, task)
    return written


def check_out(out: Path) -> None:
    """OUT must be new, empty or an earlier import (never someone else's folder)."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / REPORT).is_file())):
        raise ValueError(f"{out} exists and holds no earlier import ({REPORT}); choose a new or empty --out")


def replace_dir(tmp: Path, out: Path) -> None:
    """Put the finished import in place of OUT (an earlier import there is removed once the new one is in)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.replaced-{os.getpid()}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def duplicate_names(items: list[Item]) -> list[str]:
    """Image names that occur twice (images of two folders would overwrite each other in OUT)."""
    seen = Counter(item.path.name for item in items)
    return sorted(name for name, n in seen.items() if n > 1)


def run(
    source: str | Path | None = None,
    out: str | Path | None = None,
    images: str | Path | None = None,
    map: Sequence[str] = (),
    unmapped: str | None = None,
    unlabelled: str = "error",
    val_fraction: float = 0.1,
    seed: int = 0,
    cvat_labels: str | Path | None = None,
) -> dict[str, Any]:
    """Import `source` into `out` (see the module docstring) and return the report written to OUT/import.json;
    with `cvat_labels`, write the CVAT label template there instead."""
    if cvat_labels is not None:
        write_json(cvat_labels, cvat_label_template(), indent=2)
        return {"cvat_labels": str(cvat_labels)}
    if source is None or out is None:
        raise ValueError("--source and --out are required (or --cvat_labels PATH)")
    if unmapped not in (None, BACKGROUND, SKIP):
        raise ValueError(f"--unmapped must be {BACKGROUND} or {SKIP}, got {unmapped!r}")
    if unlabelled not in UNLABELLED:
        raise ValueError(f"--unlabelled must be one of {', '.join(UNLABELLED)}, got {unlabelled!r}")
    check_share("val_fraction", val_fraction)
    source, out = Path(source), Path(out)
    given = parse_map(map)
    check_out(out)
    if not source.exists():
        raise FileNotFoundError(f"--source {source} not found")
    if images is not None and source.suffix.lower() != ".json":
        raise ValueError("--images goes with a COCO json --source (YOLO datasets list their own images)")
    names, items, kind, notes = (read_coco(source, images) if source.suffix.lower() == ".json" else read_yolo(source))
    used = {inst["class"] for item in items for inst in item.instances or []}
    mapping = class_map(names, used, given, unmapped)
    items, counts = convert(items, mapping, unlabelled)
    if twins := duplicate_names(items):
        raise ValueError(f"{len(twins)} image names occur in several folders (first: {twins[0]}): they would overwrite "
                         "each other; import the folders one at a time")
    assign_splits(items, val_fraction, seed)
    seg_items = [item for item in items if all(inst["polygons"] for inst in item.instances)]
    with_polygons = any(inst["polygons"] for item in items for inst in item.instances)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.importing-", dir=out.parent))
    try:
        pose = write_dataset(items, tmp, "pose")
        seg = write_dataset(seg_items, tmp / SEG_SUBDIR, "segment") if with_polygons else None
        report = {
            "source": str(source.resolve()), "kind": kind, "images_from": str(images) if images else None,
            "map": {name: mapping[name] for name in names if name in used}, "unmapped": unmapped,
            "unlabelled": unlabelled, "val_fraction": val_fraction, "seed": seed, "notes": notes,
            "instances": {cls: {"total": counts[cls], "box_only": counts[f"{cls}_box_only"]} for cls in schema.CLASSES},
            "background_boxes_dropped": counts["background_boxes_dropped"],
            "images_skipped": counts["skipped_images"] + counts["unlabelled_skip"],
            "unlabelled_images": counts[f"unlabelled_{unlabelled}"],
            "pose": {"data": str(out / "data.yaml"), **pose},
            "segment": None if seg is None else {"data": str(out / SEG_SUBDIR / "data.yaml"), **seg,
                                                 "left_out": len(items) - len(seg_items)},
        }
        write_json(tmp / REPORT, report, indent=2)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def summary(report: dict) -> str:
    """The report in a few lines for the console."""
    pose = report["pose"]
    lines = [f"imported {pose['train'] + pose['val']} images ({report['kind']}): train {pose['train']}, "
             f"val {pose['val']} -> {pose['data']}"]
    for cls, n in report["instances"].items():
        lines.append(f"  {cls}: {n['total']} instances, {n['box_only']} of them box-only (no keypoints)")
    lines.append(f"  background boxes dropped {report['background_boxes_dropped']}, images left out "
                 f"{report['images_skipped']}")
    seg = report["segment"]
    lines.append(f"  segmentation: {seg['train'] + seg['val']} images -> {seg['data']} ({seg['left_out']} left out: "
                 "an instrument without a polygon)" if seg else "  segmentation: none (no polygons in the labels)")
    lines += [f"  note: {note}" for note in report["notes"]]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ label tool


#: Where each keypoint sits in the template's picture of each class (CVAT draws it; 0..100 both ways): the
#: instrument pointing up, tip_left on the left.
TEMPLATE_LAYOUT = {
    "needle_holder": {"tip_left": (45, 8), "tip_right": (55, 8), "joint": (50, 32), "handle_left": (36, 88),
                      "handle_right": (64, 88)},
    "tweezers": {"tip_left": (40, 8), "tip_right": (60, 8), "joint": (50, 92), "handle_left": (45, 58),
                 "handle_right": (55, 58)},
}


def _hex(bgr: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*reversed(bgr))


def cvat_label_template() -> list[dict]:
    """CVAT labels (the project's raw label editor): one skeleton per class of the schema, its points named and
    ordered as ours and joined as our skeleton. Exported as "COCO Keypoints 1.0", the annotations import here
    as they are: points marked outside become absent, occluded ones hidden (v = 1)."""
    labels = []
    for cls, colour in zip(schema.CLASSES, schema.CLASS_COLORS):
        layout = TEMPLATE_LAYOUT[cls]
        node = {name: i + 1 for i, name in enumerate(schema.KEYPOINTS)}
        edges = "".join(
            f'<line x1="{layout[schema.KEYPOINTS[a]][0]}" y1="{layout[schema.KEYPOINTS[a]][1]}" '
            f'x2="{layout[schema.KEYPOINTS[b]][0]}" y2="{layout[schema.KEYPOINTS[b]][1]}" stroke="black" '
            f'data-type="edge" data-node-from="{a + 1}" stroke-width="0.5" data-node-to="{b + 1}"></line>'
            for a, b in schema.SKELETON)
        nodes = "".join(
            f'<circle r="1.5" stroke="black" fill="#b3b3b3" cx="{layout[name][0]}" cy="{layout[name][1]}" '
            f'stroke-width="0.1" data-type="element node" data-element-id="{node[name]}" data-node-id="{node[name]}" '
            f'data-label-name="{name}"></circle>' for name in schema.KEYPOINTS)
        labels.append({"name": cls, "color": _hex(colour), "type": "skeleton", "attributes": [],
                       "sublabels": [{"name": name, "color": _hex(c), "attributes": [], "type": "points"}
                                     for name, c in zip(schema.KEYPOINTS, schema.KEYPOINT_COLORS)],
                       "svg": edges + nodes})
    return labels


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", help="COCO json, or a YOLO data.yaml (or the folder holding it)")
    p.add_argument("--out", help="dataset folder to write (new, empty or an earlier import)")
    p.add_argument("--images", default=None, help="image folder of a COCO --source (default: beside the json)")
    p.add_argument("--map", action="append", default=[], metavar="NAME=CLASS",
                   help=f"what a source class becomes: {', '.join(TARGETS)} (repeat for each class)")
    p.add_argument("--unmapped", choices=[BACKGROUND, SKIP], default=None,
                   help="what classes without a --map become (default: such classes stop the import)")
    p.add_argument("--unlabelled", choices=UNLABELLED, default="error",
                   help="images without any label: stop (default), leave out, or keep as images without instruments")
    p.add_argument("--val_fraction", type=share, default=0.1, help="share of the images held out for validation")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    p.add_argument("--cvat_labels", default=None, metavar="PATH",
                   help="write the CVAT label template (JSON for a project's raw label editor) and stop")
    opt = p.parse_args(argv)
    if opt.cvat_labels is None and (opt.source is None or opt.out is None):
        p.error("--source and --out are required (or --cvat_labels PATH)")
    return opt


@user_errors_in_one_line
def main(opt: argparse.Namespace) -> None:
    report = run(**vars(opt))
    print(f"CVAT label template -> {report['cvat_labels']}" if "cvat_labels" in report else summary(report))


if __name__ == "__main__":
    main(parse_opt())
