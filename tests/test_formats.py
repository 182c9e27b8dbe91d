"""Label formats: YOLO lines round-trip, confidences are required where promised, the split is
deterministic and leak-free, polygons agree with their masks, COCO round-trips through pycocotools."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from surgpose.coco import coco_to_instances, load_coco, records_to_coco, write_coco
from surgpose.geometry import mask_bbox, mask_to_polygons, polygons_to_mask
from surgpose.records import split_for
from surgpose.yolo import parse_pose_line, parse_seg_line, pose_line, seg_line


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
