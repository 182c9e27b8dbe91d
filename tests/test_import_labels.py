"""import_labels.py: a Roboflow-like detection export, a CVAT-like COCO keypoints export and a YOLO-pose folder
become our datasets (read back from the written files); bad input is one error line and leaves nothing behind;
the CVAT label template is the schema's."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from pycocotools.coco import COCO

import import_labels
import train
from datasets import EXPORT_KEYPOINT_ORDER, coco_keypoints_export, detection_export
from surgpose import schema
from surgpose.yolo import is_box_only, read_labels

ROOT = Path(__file__).resolve().parents[1]
PHOTO_MAP = ["Mayo Needle Holder=needle_holder", "DeBakey Dissector=tweezers", "Metzenbaum Scissors=background"]


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("exports")
    coco, images, truth = coco_keypoints_export(base / "coco", n=6)
    return {"det": detection_export(base / "det", n=6), "coco": coco, "images": images, "truth": truth}


def labels_of(dataset: Path, task: str = "pose") -> dict[str, list[dict]]:
    """{image name: instance dicts} of both splits, read back from the written label files (unit image size)."""
    out = {}
    for label in sorted(dataset.glob("labels/*/*.txt")):
        (image,) = dataset.glob(f"images/{label.parent.name}/{label.stem}.*")
        out[image.name] = read_labels(label, task, 1, 1)
    return out


def test_detection_export_becomes_box_only_pose_data(exports, tmp_path):
    report = import_labels.run(source=exports["det"], out=tmp_path / "photos", map=PHOTO_MAP, val_fraction=0.34)
    got = labels_of(tmp_path / "photos")
    assert len(got) == 6 and report["pose"] == {"data": str(tmp_path / "photos" / "data.yaml"), "train": 4, "val": 2}
    source = {p.stem: p.read_text().split("\n") for p in (exports["det"] / "train" / "labels").glob("*.txt")}
    for name, instances in got.items():
        lines = [line.split() for line in source[Path(name).stem] if line]
        ours = [line for line in lines if line[0] != "3"]   # the scissors boxes are dropped, their images kept
        ids = {"1": "needle_holder", "2": "tweezers"}
        assert [inst["class"] for inst in instances] == [ids[line[0]] for line in ours]
        for inst, line in zip(instances, ours):
            x1, y1, x2, y2 = inst["bbox"]
            centre_size = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
            assert np.allclose(centre_size, [float(v) for v in line[1:]], atol=2e-6)
            assert inst["keypoints"] == [[0.0, 0.0, 0]] * schema.NUM_KEYPOINTS
            assert is_box_only(np.asarray(inst["keypoints"]))
    assert sum(not instances for instances in got.values()) == 1   # the scissors-only image: a negative
    assert report["background_boxes_dropped"] == 3 and report["instances"]["tweezers"] == {"total": 5, "box_only": 5}
    assert report["segment"] is None and not (tmp_path / "photos" / "seg").exists()   # boxes only: no masks
    assert report["notes"] == ["val: ../valid/images not found or empty", "test: ../test/images not found or empty"]
    data = train.read_dataset(tmp_path / "photos" / "data.yaml")   # Ultralytics reads it, schema checked
    assert data["kpt_shape"] == [5, 3] and data["flip_idx"] == list(schema.FLIP_IDX)

    skipped = import_labels.run(source=exports["det"] / "data.yaml", out=tmp_path / "no_scissors", val_fraction=0,
                                map=PHOTO_MAP[:2], unmapped="skip")
    assert skipped["images_skipped"] == 3 and skipped["pose"]["train"] == 3 and skipped["pose"]["val"] == 0


def test_coco_keypoints_export_keeps_keypoints_in_our_order(exports, tmp_path):
    """Keypoints arrive in the label tool's own order and are put in ours by name; occluded stays 1, a tool boxed
    without keypoints becomes box-only, polygons make the segmentation dataset."""
    report = import_labels.run(source=exports["coco"], images=exports["images"], out=tmp_path / "frames",
                               val_fraction=0.2)
    assert report["kind"] == "coco keypoints" and report["map"] == {c: c for c in schema.CLASSES}
    coco = COCO(str(exports["coco"]))
    assert coco.loadCats(1)[0]["keypoints"] == EXPORT_KEYPOINT_ORDER != list(schema.KEYPOINTS)
    got = labels_of(tmp_path / "frames")
    for k, truth in enumerate(exports["truth"]):
        instances = got[f"frame_{k:06d}.jpg"]
        assert [i["class"] for i in instances] == [t["class"] for t in truth]
        for inst, want in zip(instances, truth):
            assert np.allclose(inst["bbox"], np.asarray(want["bbox"]) / [192, 144, 192, 144], atol=1e-5)
            for (x, y, v), (wx, wy, wv) in zip(inst["keypoints"], want["keypoints"]):
                assert v == wv and (v == 0 or np.allclose([x * 192, y * 144], [wx, wy], atol=1e-3))
    assert got["frame_000000.jpg"][0]["keypoints"][1][2] == schema.VIS_OCCLUDED
    assert is_box_only(np.asarray(got["frame_000001.jpg"][1]["keypoints"]))
    assert report["instances"]["tweezers"]["box_only"] == 1 and report["instances"]["needle_holder"]["box_only"] == 0
    seg = labels_of(tmp_path / "frames" / "seg", "segment")
    assert report["segment"]["train"] + report["segment"]["val"] == 6 == len(seg)
    assert all(len(inst["polygon"]) >= 3 for instances in seg.values() for inst in instances)
    assert train.read_dataset(tmp_path / "frames" / "seg" / "data.yaml").get("kpt_shape") is None

    # a YOLO-pose folder, kpt_names in another order: our own import written back with them reversed, read again
    pose = tmp_path / "pose_export"
    shutil.copytree(tmp_path / "frames", pose, ignore=shutil.ignore_patterns("seg", "import.json"))
    reverse = list(reversed(range(schema.NUM_KEYPOINTS)))
    for label in pose.glob("labels/*/*.txt"):
        rows = [line.split() for line in label.read_text().splitlines()]
        label.write_text("".join(" ".join(r[:5] + [v for k in reverse for v in r[5 + 3 * k:8 + 3 * k]]) + "\n"
                                 for r in rows))
    data = yaml.safe_load((pose / "data.yaml").read_text())
    data["kpt_names"] = {c: [schema.KEYPOINTS[k] for k in reverse] for c in data["kpt_names"]}
    (pose / "data.yaml").write_text(yaml.safe_dump(data))
    again = import_labels.run(source=pose, out=tmp_path / "again", val_fraction=0.2)
    reread = labels_of(tmp_path / "again")
    assert again["kind"] == "pose" and reread.keys() == got.keys()
    for name, instances in got.items():   # the same up to the 6 decimals of a label file
        assert [i["class"] for i in reread[name]] == [i["class"] for i in instances]
        for a, b in zip(reread[name], instances):
            assert np.allclose(a["bbox"], b["bbox"], atol=2e-6)
            assert np.allclose(a["keypoints"], b["keypoints"], atol=2e-6)


def test_unlabelled_images_stop_unless_told(exports, tmp_path):
    coco, images, _ = coco_keypoints_export(tmp_path / "export", n=3, unlabelled=2, polygons=False)
    with pytest.raises(ValueError, match="2 images have no labels .*--unlabelled skip"):
        import_labels.run(source=coco, images=images, out=tmp_path / "out")
    assert import_labels.run(source=coco, images=images, out=tmp_path / "skip", unlabelled="skip")["pose"]["train"] == 2
    negative = import_labels.run(source=coco, images=images, out=tmp_path / "neg", unlabelled="negative",
                                 val_fraction=0)
    assert negative["pose"]["train"] == 5 and negative["segment"] is None


def broken(exports: dict, tmp: Path, what: str) -> list[str]:
    """Arguments of an import that must fail, after breaking a copy of the detection export as `what` says."""
    src = shutil.copytree(exports["det"], tmp / "src")
    labels = sorted((src / "train" / "labels").glob("*.txt"))
    args = ["--source", str(src), "--out", str(tmp / "out"), *[a for m in PHOTO_MAP for a in ("--map", m)]]
    if what == "unknown name":
        args += ["--map", "Mayo Needel Holder=needle_holder"]
    elif what == "unknown class":
        args += ["--map", "Babcock Tissue Forceps=clamp"]
    elif what == "no class of ours":
        args = args[:4] + ["--unmapped", "background"]
    elif what == "unmapped":
        args = args[:4]
    elif what == "no label":
        labels[0].unlink()
    elif what == "no image":
        next((src / "train" / "images").glob("*.jpg")).unlink()
    elif what == "text":
        labels[1].write_text("1 0.5 0.5 0.2 abc\n")
    elif what == "values":
        labels[1].write_text("1 0.5 0.5 0.2 0.1\n2 0.5 0.5 0.2\n")
    elif what == "class id":
        labels[1].write_text("7 0.5 0.5 0.2 0.1\n")
    elif what == "outside":
        labels[1].write_text("1 0.5 0.5 1.7 0.1\n")
    elif what == "foreign out":
        (tmp / "out").mkdir()
        (tmp / "out" / "notes.txt").write_text("mine")
    return args


@pytest.mark.parametrize("what, message", [
    ("unknown name", r"--map names classes the source does not have: \['Mayo Needel Holder'\]"),
    ("unknown class", r"'clamp' is not one of needle_holder, tweezers, background, skip"),
    ("no class of ours", r"the class map names no class of ours"),
    ("unmapped", r"classes without a --map: \['DeBakey Dissector', 'Mayo Needle Holder', 'Metzenbaum Scissors'\]"),
    ("no label", r"1 images have no labels \(first: .*tool_0_jpg"),
    ("no image", r"1 label files have no image \(first: .*tool_0_jpg"),
    ("text", r"tool_1_jpg.*\.txt:1: a non-numeric value"),
    ("values", r"tool_1_jpg.*\.txt:2: 4 values; expected 5"),
    ("class id", r"tool_1_jpg.*\.txt:1: class 7 is not one of the 4 in data.yaml"),
    ("outside", r"tool_1_jpg.*\.txt:1: coordinates outside 0..1"),
    ("foreign out", r"exists and holds no earlier import"),
])
def test_bad_input_is_one_error_line_and_nothing_is_written(exports, tmp_path, what, message):
    opt = import_labels.parse_opt(broken(exports, tmp_path, what))
    with pytest.raises(SystemExit) as stop:
        import_labels.main(opt)
    text = str(stop.value.code)
    assert text.startswith("error: ") and "\n" not in text and re.search(message, text), text
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out", "src"] if what == "foreign out" else ["src"])


def test_a_rerun_replaces_its_own_earlier_import(exports, tmp_path):
    first = import_labels.run(source=exports["det"], out=tmp_path / "photos", map=PHOTO_MAP, val_fraction=0.5)
    again = import_labels.run(source=exports["det"], out=tmp_path / "photos", map=PHOTO_MAP[:2], unmapped="skip",
                              val_fraction=0)
    assert first["pose"]["val"] == 3 and again["pose"] == {**again["pose"], "train": 3, "val": 0}
    assert len(list((tmp_path / "photos" / "images").rglob("*.jpg"))) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]   # no temporary or replaced folder left


def test_cvat_template_is_the_schema(tmp_path):
    """Each class a skeleton with our keypoints in order, joined as our skeleton; the file in docs/ is this one."""
    labels = import_labels.cvat_label_template()
    assert [label["name"] for label in labels] == list(schema.CLASSES)
    for label in labels:
        assert label["type"] == "skeleton" and [s["name"] for s in label["sublabels"]] == list(schema.KEYPOINTS)
        nodes = re.findall(r'data-node-id="(\d+)" data-label-name="(\w+)"', label["svg"])
        assert [(int(i) - 1, name) for i, name in nodes] == list(enumerate(schema.KEYPOINTS))
        edges = re.findall(r'data-node-from="(\d+)" stroke-width="0.5" data-node-to="(\d+)"', label["svg"])
        assert [(int(a) - 1, int(b) - 1) for a, b in edges] == list(schema.SKELETON)
    import_labels.main(import_labels.parse_opt(["--cvat_labels", str(tmp_path / "cvat.json")]))
    assert json.loads((tmp_path / "cvat.json").read_text()) == labels
    assert json.loads((ROOT / "docs" / "cvat_labels.json").read_text()) == labels, \
        "docs/cvat_labels.json is stale: python import_labels.py --cvat_labels docs/cvat_labels.json"
