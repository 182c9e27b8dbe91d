"""Label formats: YOLO lines round-trip, confidences are required where promised, the split is
deterministic and leak-free, polygons agree with their masks, COCO round-trips through pycocotools,
bad records and label files fail with errors naming them, overlays draw what the schema says."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from surgpose import schema
from surgpose.coco import coco_to_instances, load_coco, records_to_coco, write_coco
from surgpose.draw import draw_instances
from surgpose.files import write_json
from surgpose.geometry import clip_keypoints, mask_bbox, mask_to_polygons, polygons_to_mask
from surgpose.records import instances_with_masks, load_record, load_records, split_for
from surgpose.yolo import parse_pose_line, parse_seg_line, pose_line, read_labels, seg_line, write_data_yaml


def instance(score: float | None = None) -> dict:
    mask = np.zeros((100, 200), np.uint8)
    cv2.fillPoly(mask, [np.array([[20, 30], [150, 20], [160, 40], [30, 60]], np.int32)], 1)
    inst = {"class": "tweezers", "bbox": mask_bbox(mask), "polygons": mask_to_polygons(mask),
            "keypoints": [[150.0, 25.0, 2], [155.0, 35.0, 1], [25.0, 45.0, 2], [80.0, 35.0, 2], [0.0, 0.0, 0]],
            "area": int(mask.sum())}
    if score is not None:
        inst["score"] = score
    return inst


def test_pose_line_round_trip_with_and_without_confidence():
    inst = instance()
    back = parse_pose_line(pose_line(inst, 200, 100), 200, 100)
    assert back["class"] == "tweezers" and "score" not in back
    assert np.allclose(back["bbox"], inst["bbox"], atol=0.01)
    assert np.allclose(back["keypoints"], inst["keypoints"], atol=0.01)
    scored = parse_pose_line(pose_line(instance(0.87), 200, 100, with_conf=True), 200, 100, require_conf=True)
    assert scored["score"] == pytest.approx(0.87)


def test_missing_confidence_is_an_error_when_required():
    with pytest.raises(ValueError, match="confidence"):
        parse_pose_line(pose_line(instance(), 200, 100), 200, 100, require_conf=True)
    with pytest.raises(ValueError, match="confidence"):
        parse_seg_line(seg_line(instance(), 200, 100), 200, 100, require_conf=True)


def test_seg_line_round_trip_and_mask_area():
    inst = instance(0.5)
    back = parse_seg_line(seg_line(inst, 200, 100, with_conf=True), 200, 100)
    assert back["score"] == pytest.approx(0.5)
    area = polygons_to_mask([back["polygon"]], 100, 200).sum()
    assert abs(area - inst["area"]) / inst["area"] < 0.05


@pytest.mark.parametrize("n,fraction", [(4, 0.25), (10, 0.1), (37, 0.2), (5, 0.5)])
def test_split_has_one_val_per_block_and_is_deterministic(n, fraction):
    splits = [split_for(i, n, 0, fraction) for i in range(n)]
    assert splits == [split_for(i, n, 0, fraction) for i in range(n)]
    assert splits.count("val") == -(-n // round(1 / fraction))
    assert [split_for(i, n, 1, fraction) for i in range(n)] != splits or n <= 2
    assert all(split_for(i, n, 0, 0.0) == "train" for i in range(n))


def test_coco_round_trip_through_pycocotools(tmp_path):
    inst = {**instance(), "bbox_amodal": instance()["bbox"], "polygons_amodal": instance()["polygons"],
            "area_amodal": instance()["area"]}
    record = {"image": "a.jpg", "width": 200, "height": 100, "index": 0, "instances": [inst]}
    path = write_coco(tmp_path / "c.json", records_to_coco([record]))
    coco = load_coco(path)
    ann = coco.loadAnns(coco.getAnnIds())[0]
    assert ann["num_keypoints"] == 4 and ann["category_id"] == 2
    assert abs(coco.annToMask(ann).sum() - inst["area"]) / inst["area"] < 0.08
    (_, back), = coco_to_instances(coco).values()
    assert back[0]["class"] == "tweezers"
    assert np.allclose(back[0]["keypoints"], inst["keypoints"])


def test_unreadable_coco_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    with pytest.raises(ValueError, match="bad.json"):
        load_coco(bad)


def test_label_files_errors_name_file_and_line(tmp_path):
    good = pose_line(instance(), 200, 100)
    for bad, match in [("7" + good[1:], "class"), (good.replace(" ", " x ", 1), "non-numeric"),
                       (" ".join(good.split()[:-2]), "values")]:
        path = tmp_path / "labels.txt"
        path.write_text(f"{good}\n{bad}\n")
        with pytest.raises(ValueError, match=rf"labels\.txt:2: .*{match}"):
            read_labels(path, "pose", 200, 100)
    path.write_text(f"{seg_line(instance(0.4), 200, 100, with_conf=True)}\n")
    assert read_labels(path, "segment", 200, 100, require_conf=True)[0]["score"] == pytest.approx(0.4)
    path.write_text(f"{seg_line(instance(), 200, 100)}\n")
    with pytest.raises(ValueError, match=r"labels\.txt:1: .*confidence"):
        read_labels(path, "segment", 200, 100, require_conf=True)


def test_seg_line_keeps_every_piece_of_a_cut_instrument():
    mask = np.zeros((100, 200), np.uint8)
    cv2.rectangle(mask, (10, 40), (80, 55), 1, -1)
    cv2.rectangle(mask, (120, 45), (190, 60), 1, -1)
    inst = {"class": "needle_holder", "polygons": mask_to_polygons(mask)}
    assert len(inst["polygons"]) == 2
    back = polygons_to_mask([parse_seg_line(seg_line(inst, 200, 100), 200, 100)["polygon"]], 100, 200)
    assert back[mask > 0].all() and (back & ~mask.astype(bool)).sum() < 0.05 * mask.sum()  # thin bridge only


def test_lines_stay_inside_the_image():
    inst = {**instance(0.9), "bbox": [-5.0, -2.0, 210.0, 50.0], "polygon": [[-3, 5], [205, 5], [100, 120]]}
    inst["keypoints"][0] = [201.0, -1.0, 0.7]
    pose = [float(v) for v in pose_line(inst, 200, 100, with_conf=True).split()[1:-1]]
    values = pose[:4] + [v for i, v in enumerate(pose[4:]) if i % 3 != 2]  # not the visibilities
    values += [float(v) for v in seg_line(inst, 200, 100).split()[1:]]
    assert min(values) >= 0 and max(values) <= 1


def test_clip_keypoints_follows_the_label_convention():
    kps = [[10, 20, 2], [250, 20, 2], [10, -1, 1], [30, 40, 0], [199, 99, 1]]
    assert clip_keypoints(kps, 200, 100) == [[10.0, 20.0, 2], [0.0, 0.0, 0], [0.0, 0.0, 0], [0.0, 0.0, 0],
                                             [199.0, 99.0, 1]]


def record(**changes) -> dict:
    inst = {**instance(), "bbox_amodal": instance()["bbox"], "polygons_amodal": instance()["polygons"],
            "area_amodal": 5000}
    return {"image": "000000.jpg", "width": 200, "height": 100, "index": 0, "instances": [inst], **changes}


@pytest.mark.parametrize("bad,match", [
    ({"width": "200"}, "width"),
    ({"instances": [{"class": "scalpel"}]}, "lacks"),
    ({"instances": [{**instance(), "class": "scalpel"}]}, "scalpel"),
    ({"instances": [{**instance(), "keypoints": [[0, 0, 0]] * 4}]}, "keypoints"),
    ({"instances": [{**instance(), "polygons": [[[0, 0], [1, 1]]]}]}, "polygons"),
])
def test_bad_records_name_the_file(tmp_path, bad, match):
    path = tmp_path / "000000.json"
    write_json(path, record(**bad))
    with pytest.raises(ValueError, match=rf"000000\.json.*{match}"):
        load_record(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"000000\.json"):
        load_record(path)


def test_records_load_in_index_order_and_reject_duplicates(tmp_path):
    write_json(tmp_path / "b.json", record(index=1, image="b.jpg"))
    write_json(tmp_path / "a.json", record(index=2, image="a.jpg"))
    assert [r["index"] for r in load_records(tmp_path)] == [1, 2]
    write_json(tmp_path / "c.json", record(index=2, image="c.jpg"))
    with pytest.raises(ValueError, match="share index 2"):
        load_records(tmp_path)


def test_amodal_masks_replace_the_visible_ones():
    rec = record()
    assert instances_with_masks(rec, amodal=False)[0]["area"] == rec["instances"][0]["area"]
    assert instances_with_masks(rec, amodal=True)[0]["area"] == 5000
    del rec["instances"][0]["polygons_amodal"]
    with pytest.raises(ValueError, match="000000.jpg.*polygons_amodal"):
        instances_with_masks(rec, amodal=True)


def test_split_blocks_and_bad_arguments():
    splits = [split_for(i, 95, 7, 0.1) for i in range(95)]
    for start in range(0, 95, 10):
        assert splits[start:start + 10].count("val") == 1
    assert len({tuple(split_for(i, 95, s, 0.1) for i in range(95)) for s in range(5)}) > 1
    assert all(split_for(i, 3, 0, 1.0) == "val" for i in range(3))
    with pytest.raises(ValueError, match="val_fraction"):
        split_for(0, 10, 0, 1.5)
    with pytest.raises(ValueError, match="index 10"):
        split_for(10, 10, 0, 0.1)


def test_user_coco_with_rle_crowd_and_loose_keypoints(tmp_path):
    from pycocotools import mask as mask_utils

    mask = np.zeros((100, 200), np.uint8)
    cv2.rectangle(mask, (20, 30), (120, 50), 1, -1)
    rle = mask_utils.encode(np.asfortranarray(mask))
    rle["counts"] = rle["counts"].decode()
    kps = [30, 40, 2, 500, 40, 2, 60, 40, 1, 90, 45, 0, 110, 40, 2]
    ann = {"id": 1, "image_id": 5, "category_id": 7, "bbox": [20, 30, 101, 21], "area": 2121,
           "segmentation": rle, "keypoints": kps, "iscrowd": 0}
    crowd = {**ann, "id": 2, "iscrowd": 1}
    coco = {"images": [{"id": 5, "file_name": "x.jpg", "width": 200, "height": 100}],
            "annotations": [ann, crowd], "categories": [{"id": 7, "name": "tweezers"}]}
    write_json(tmp_path / "user.json", coco)
    (_, instances), = coco_to_instances(load_coco(tmp_path / "user.json")).values()
    assert len(instances) == 1 and instances[0]["class"] == "tweezers"
    assert instances[0]["keypoints"] == [[30.0, 40.0, 2], [0.0, 0.0, 0], [60.0, 40.0, 1], [0.0, 0.0, 0],
                                         [110.0, 40.0, 2]]
    assert polygons_to_mask(instances[0]["polygons"], 100, 200).sum() == mask.sum()
    coco["categories"] = [{"id": 7, "name": "scalpel"}]
    write_json(tmp_path / "user.json", coco)
    with pytest.raises(ValueError, match="scalpel"):
        coco_to_instances(load_coco(tmp_path / "user.json"))


def test_data_yaml_carries_the_schema(tmp_path):
    pose = yaml.safe_load(write_data_yaml(tmp_path / "p", "pose").read_text())
    assert "path" not in pose and pose["train"] == "images/train"  # relative to the yaml: datasets can move
    assert pose["names"] == dict(enumerate(schema.CLASSES)) and pose["kpt_shape"] == [5, 3]
    assert pose["flip_idx"] == list(schema.FLIP_IDX) and pose["kpt_oks_sigmas"] == list(schema.KPT_OKS_SIGMAS)
    assert pose["kpt_names"] == {i: list(schema.KEYPOINTS) for i in range(len(schema.CLASSES))}
    seg = yaml.safe_load(write_data_yaml(tmp_path / "s", "segment").read_text())
    assert "kpt_shape" not in seg and seg["names"] == pose["names"]


def test_draw_labels_and_predictions():
    blank = np.full((100, 200, 3), 60, np.uint8)
    inst = instance()
    inst["keypoints"][0] = [150.0, 25.0, 2]
    inst["keypoints"][1] = [60.0, 80.0, 0]  # outside the mask and box: must leave no mark
    inst["keypoints"][3] = [80.0, 35.0, 1]  # hidden: a ring, centre untouched by its colour
    out = draw_instances(blank.copy(), [inst], draw_masks=False, draw_labels=False)
    assert tuple(out[25, 150]) == schema.KEYPOINT_COLORS[0]
    assert (out[75:86, 55:66] == 60).all()
    assert tuple(out[35, 80]) != schema.KEYPOINT_COLORS[3]
    masked = draw_instances(blank.copy(), [inst], draw_kpts=False, draw_labels=False)
    assert (masked[polygons_to_mask(inst["polygons"], 100, 200)] != 60).any(axis=1).mean() > 0.9
    pred = {"class": "needle_holder", "score": 0.9, "bbox": [10, 10, 100, 90], "polygon": [],
            "keypoints": [[50, 50, 0.9], [60, 60, 0.1], [0, 0, 0.0], [0, 0, 0.0], [0, 0, 0.0]]}
    out = draw_instances(blank.copy(), [pred, {**pred, "keypoints": []}], kpt_conf_thresh=0.5, legend=True)
    assert tuple(out[50, 50]) == schema.KEYPOINT_COLORS[0] and tuple(out[60, 60]) != schema.KEYPOINT_COLORS[1]
    unsure = {**pred, "class": "tweezers", "score": 0.3}   # the same place, less confident (listed after, as predicted)
    out = draw_instances(blank.copy(), [pred, unsure], draw_kpts=False)
    assert tuple(out[11, 11]) == schema.CLASS_COLORS[schema.class_id("needle_holder")], "the surer tag on top"


def test_tags_never_hide_each_other_nor_keypoints():
    """Overlapping instances in a 640x368 frame: "tweezers 0.49" used to cover "needle_holder 0.30" (only ".30"
    left) when one instrument was boxed twice. Each tag now sits at a corner of its own box, inside the frame."""
    from surgpose.draw import tag_layout

    boxes = [[100, 5, 300, 120], [105, 8, 290, 110], [110, 10, 200, 60], [100, 5, 300, 125], [500, 300, 639, 367]]
    instances = [{"class": schema.CLASSES[k % 2], "score": 0.9 - 0.1 * k, "bbox": b} for k, b in enumerate(boxes)]
    markers = [(95, 0, 107, 12), (290, 110, 302, 122)]   # keypoint discs at two corners of the first box
    s = 640 / 960
    rects = tag_layout((368, 640, 3), instances, markers, s)
    overlap = lambda a, b: max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    for k, r in enumerate(rects):
        assert 0 <= r[0] < r[2] <= 640 and 0 <= r[1] < r[3] <= 368
        assert not any(overlap(r, m) for m in markers), (k, r)
        assert not any(overlap(r, o) for o in rects[:k]), (k, r, rects[:k])
        x1, y1, x2, y2 = boxes[k]   # touching its own box: on a corner's row or column, within the box's span
        assert (r[0] in (x1, x2 - (r[2] - r[0])) or r[0] in (0, 640 - (r[2] - r[0]))) and r[0] <= x2 and r[2] >= x1
        assert r[1] <= y2 and r[3] >= y1
    image = draw_instances(np.zeros((368, 640, 3), np.uint8), instances, draw_masks=False, draw_kpts=False)
    for inst, (x1, y1, x2, y2) in zip(instances, tag_layout(image.shape, instances, [], s)):   # no keypoints drawn
        # each tag drawn in its class colour where the layout put it
        patch = image[y1:y2, x1:x2].reshape(-1, 3)
        assert (patch == schema.CLASS_COLORS[schema.class_id(inst["class"])]).all(axis=1).mean() > 0.5
