"""evaluate.py and surgpose.metrics: real-label scoring with known answers, then real (briefly trained) models
on a real-format folder built from the tiny drawn dataset, on its YOLO data.yaml and on its COCO json."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

import evaluate
import predict
from conftest import ROOT
from datasets import hand_format_folder, real_format_folder, tiny_dataset, trained_run
from surgpose import schema
from surgpose.files import write_json
from surgpose.metrics import (hand_of, load_real_labels, parse_hand_labels, parse_real_labels, real_score, real_summary,
                              score_real)
from surgpose.schema import Layout

#: An untrained-for-long model scores around 0.005: a low threshold still exercises every path.
LOW_CONF = 0.001

# ---------------------------------------------------------------- score_real on constructed labels

W, H = 800, 600  # diagonal 1000 px: 2 % = 20 px, 5 % = 50 px
NH = {"keypoints_ordered": [[100, 100, 2], [120, 100, 2], [110, 150, 2]]}
TW = {"keypoints_ordered": [[400, 300, 2], [420, 300, 2], [410, 360, 1]]}


def tool(points: list[list[float]], ordered: bool = True) -> dict:
    """A labelled tool: unordered points always, ordered ones when `ordered`."""
    return {"keypoints_unordered": [points[1], points[0], *points[2:]],
            **({"keypoints_ordered": points} if ordered else {})}


def labels_of(images: dict[str, dict]) -> dict:
    return parse_real_labels({"images": {name: {"width": W, "height": H, "tools": tools}
                                         for name, tools in images.items()}})


def perfect(cls: str, points: list[list[float]], dx: float = 0.0, swap: bool = False, score: float = 0.9,
            keypoints: bool = True) -> dict:
    """A prediction on a labelled tool: a box around its points, tips (and joint) moved by `dx` px."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    kpts = [[0.0, 0.0, 0.1] for _ in schema.KEYPOINTS]
    tips = [points[1], points[0]] if swap else points[:2]
    for i, p in enumerate(tips):
        kpts[i] = [p[0] + dx, p[1], 0.9]
    kpts[schema.KEYPOINTS.index("joint")] = [points[2][0] + dx, points[2][1], 0.9]
    return {"class": cls, "score": score, "bbox": [min(xs), min(ys), max(xs), max(ys)],
            "keypoints": kpts if keypoints else [], "polygon": []}


def scene_labels() -> dict:
    return labels_of({"a.jpg": {"needle_holder": tool(NH["keypoints_ordered"]),
                                "tweezers": tool(TW["keypoints_ordered"])}})


def test_perfect_predictions():
    m = score_real({"a.jpg": [perfect("needle_holder", NH["keypoints_ordered"]),
                              perfect("tweezers", TW["keypoints_ordered"])]}, scene_labels())
    for cls in schema.CLASSES:
        c = m["classes"][cls]
        assert (c["gt_tools"], c["recall"], c["tips"], c["tip_pck@2%"], c["tip_pck@5%"]) == (1, 1.0, 2, 1.0, 1.0)
        assert c["median_tip_err_px"] == 0.0 and c["false_detections"] == 0 and c["fp_per_image"] == 0.0
    nh, tw = m["classes"]["needle_holder"], m["classes"]["tweezers"]
    assert (nh["joints"], nh["joint_pck@2%"], nh["joint_pck@5%"]) == (1, 1.0, 1.0)
    assert tw["joints"] is None and tw["joint_pck@5%"] is None, "the tweezers' kp2 is a nub, not a joint"
    assert m["all"]["gt_tools"] == 2 and m["all"]["tips"] == 4 and m["images"] == 1
    assert m["score"] == real_score(m) == 1.0


def test_swapped_tips_count_order_free():
    m = score_real({"a.jpg": [perfect("needle_holder", NH["keypoints_ordered"], swap=True),
                              perfect("tweezers", TW["keypoints_ordered"], swap=True)]}, scene_labels())
    assert m["all"]["tip_pck@2%"] == 1.0 and m["all"]["median_tip_err_px"] == 0.0


def test_three_percent_off_misses_at_two_hits_at_five():
    m = score_real({"a.jpg": [perfect("needle_holder", NH["keypoints_ordered"], dx=30),
                              perfect("tweezers", TW["keypoints_ordered"], dx=30)]}, scene_labels())
    a = m["all"]
    assert a["recall"] == 1.0 and a["tip_pck@2%"] == 0.0 and a["tip_pck@5%"] == 1.0
    assert a["median_tip_err_px"] == pytest.approx(30.0)
    nh = m["classes"]["needle_holder"]
    assert nh["joint_pck@2%"] == 0.0 and nh["joint_pck@5%"] == 1.0
    assert m["score"] == 1.0, "score = mean over classes of (recall + tip PCK@5%) / 2"


def test_missing_class_is_a_miss():
    m = score_real({"a.jpg": [perfect("needle_holder", NH["keypoints_ordered"])]}, scene_labels())
    tw = m["classes"]["tweezers"]
    assert (tw["recall"], tw["tips"], tw["tip_pck@5%"], tw["matched_tips"], tw["median_tip_err_px"]) == \
        (0.0, 2, 0.0, 0, None)
    assert m["classes"]["needle_holder"]["recall"] == 1.0
    assert m["all"]["recall"] == 0.5 and m["all"]["tip_pck@5%"] == 0.5
    assert m["score"] == pytest.approx((1.0 + 0.0) / 2)


def test_false_box_and_duplicates_count_per_image():
    labels = labels_of({"a.jpg": {"needle_holder": tool(NH["keypoints_ordered"]),
                                  "tweezers": tool(TW["keypoints_ordered"])},
                        "b.jpg": {"tweezers": tool(TW["keypoints_ordered"])}})
    scissors = {"class": "needle_holder", "score": 0.8, "bbox": [600, 400, 700, 500],
                "keypoints": [[650, 450, 0.9]] * 5, "polygon": []}
    duplicate = perfect("tweezers", TW["keypoints_ordered"], dx=5, score=0.5)
    m = score_real({"a.jpg": [perfect("needle_holder", NH["keypoints_ordered"]),
                              perfect("tweezers", TW["keypoints_ordered"]), scissors],
                    "b.jpg": [perfect("tweezers", TW["keypoints_ordered"]), duplicate]}, labels)
    assert m["classes"]["needle_holder"]["false_detections"] == 1
    assert m["classes"]["tweezers"]["false_detections"] == 1, "one prediction per tool; the lower score is false"
    assert m["classes"]["tweezers"]["median_tip_err_px"] == 0.0, "the best-scoring prediction is the match"
    assert m["all"]["fp_per_image"] == 1.0 and m["all"]["recall"] == 1.0
    assert m["per_image"]["a.jpg"]["false_detections"] == {"needle_holder": 1, "tweezers": 0}


def test_unordered_tools_count_for_recall_not_pck():
    labels = labels_of({"a.jpg": {"needle_holder": tool(NH["keypoints_ordered"], ordered=False),
                                  "tweezers": tool(TW["keypoints_ordered"][:2], ordered=False)}})
    m = score_real({"a.jpg": [perfect("needle_holder", NH["keypoints_ordered"], dx=100)]}, labels)
    nh, tw = m["classes"]["needle_holder"], m["classes"]["tweezers"]
    assert (nh["gt_tools"], nh["recall"], nh["ordered_tools"], nh["tips"], nh["tip_pck@5%"]) == (1, 1.0, 0, 0, None)
    assert nh["joints"] == 0 and nh["joint_pck@5%"] is None
    assert (tw["gt_tools"], tw["recall"], tw["tips"]) == (1, 0.0, 0)
    assert m["score"] == pytest.approx(0.5), "classes without scorable tips count their recall"


def test_visibility_frame_conf_and_keypointless_detections():
    nh = [[100, 100, 2], [-5, 100, 1], [110, 150, 0]]  # one tip off the image, joint out of frame
    tw_out = [[900, 300, 2], [920, 300, 0], [-10, -10, 2]]  # labelled but every point outside the image
    labels = labels_of({"a.jpg": {"needle_holder": tool(nh), "tweezers": tool(tw_out)}})
    assert labels["a.jpg"]["tools"][0]["points"] == [[100.0, 100.0]]
    assert labels["a.jpg"]["out_of_view"] == ["tweezers"]
    body = {"class": "tweezers", "score": 0.7, "bbox": [700, 250, 799, 350], "keypoints": [], "polygon": []}
    m = score_real({"a.jpg": [perfect("needle_holder", nh, keypoints=False), body]}, labels)
    c = m["classes"]["needle_holder"]
    assert (c["recall"], c["tips"], c["tip_pck@5%"], c["joints"]) == (1.0, 1, 0.0, 0), \
        "a detection without keypoints finds the tool but misses its tips"
    assert m["classes"]["tweezers"]["gt_tools"] == 0 and m["classes"]["tweezers"]["false_detections"] == 0
    assert m["ignored_detections"] == 1, "a prediction on an out-of-view labelled tool is neither hit nor false"
    low = score_real({"a.jpg": [perfect("needle_holder", nh, score=0.1)]}, labels, conf=0.25)
    assert low["classes"]["needle_holder"]["recall"] == 0.0


def test_matching_needs_the_box_to_cover_the_points():
    far = perfect("needle_holder", NH["keypoints_ordered"])
    far["bbox"] = [0, 0, 90, 90]  # padded by 2 % (20 px) it reaches only tip 0 at (100, 100): 1 of 3 points
    m = score_real({"a.jpg": [far]}, scene_labels())
    assert m["classes"]["needle_holder"]["recall"] == 0.0 and m["classes"]["needle_holder"]["false_detections"] == 1
    far["bbox"] = [0, 0, 105, 135]  # padded by 20 px: reaches every point
    assert score_real({"a.jpg": [far]}, scene_labels())["classes"]["needle_holder"]["recall"] == 1.0


def test_a_box_spanning_the_frame_finds_nothing():
    """The labels have no boxes: a box around the whole frame holds every point, so boxes above `max_box` of
    the image diagonal cannot find a tool; they count as false detections."""
    whole = perfect("needle_holder", NH["keypoints_ordered"])
    whole["bbox"] = [0, 0, W, H]   # diagonal 1000 px, the image's
    m = score_real({"a.jpg": [whole]}, scene_labels())
    nh = m["classes"]["needle_holder"]
    assert (nh["recall"], nh["tip_pck@5%"], nh["false_detections"]) == (0.0, 0.0, 1) and m["max_box"] == 0.75
    assert score_real({"a.jpg": [whole]}, scene_labels(), max_box=1.0)["classes"]["needle_holder"]["recall"] == 1.0
    whole["bbox"] = [0, 0, 560, 420]   # diagonal 700 px: an instrument lying across most of the frame
    assert score_real({"a.jpg": [whole]}, scene_labels())["classes"]["needle_holder"]["recall"] == 1.0


def test_label_and_prediction_errors(tmp_path):
    with pytest.raises(ValueError, match="no predictions for 1 of 1"):
        score_real({}, scene_labels())
    with pytest.raises(FileNotFoundError, match="not found"):
        load_real_labels(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="keypoints.json"):
        load_real_labels(tmp_path)
    with pytest.raises(ValueError, match="unknown tool 'scissors'"):
        parse_real_labels({"images": {"a.jpg": {"width": W, "height": H, "tools": {"scissors": tool(
            NH["keypoints_ordered"])}}}})
    for tools, message in (([], "tools must map a class"), ({"tweezers": None}, "tweezers: expected")):
        with pytest.raises(ValueError, match=message):
            parse_real_labels({"images": {"a.jpg": {"width": W, "height": H, "tools": tools}}})
    ordered_only = {"keypoints_unordered": None, "keypoints_ordered": NH["keypoints_ordered"]}
    assert len(labels_of({"a.jpg": {"needle_holder": ordered_only}})["a.jpg"]["tools"][0]["points"]) == 3


def test_on_oss_dev_labels(real_dir):
    """The shared real labels parse; tools labelled entirely out of frame are out of view, not GT."""
    labels = load_real_labels(real_dir / "oss_dev")
    assert len(labels) == 36
    tools = [t for lab in labels.values() for t in lab["tools"]]
    assert {t["class"] for t in tools} == set(schema.CLASSES)
    assert all(t["points"] for t in tools)
    assert sum(len(lab["out_of_view"]) for lab in labels.values()) >= 1


# ---------------------------------------------------------------- evaluate.py on real models and files


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    return tiny_dataset(tmp_path_factory.getbasetemp() / "tiny")


@pytest.fixture(scope="module")
def pose_weights(tmp_path_factory) -> Path:
    return trained_run(tmp_path_factory.getbasetemp(), "pose") / "weights" / "best.pt"


@pytest.fixture(scope="module")
def real_folder(tiny, tmp_path_factory) -> Path:
    return real_format_folder(tiny["pose"].parent.parent, tmp_path_factory.mktemp("real_format"))


def perfect_predictions(real: Path) -> dict:
    """A predictions.json document that puts every tool and tip where the labels say."""
    images = {}
    for name, lab in load_real_labels(real).items():
        images[name] = []
        for t in lab["tools"]:
            pts = t["tips"] + [t["joint"] or t["points"][-1]] if t["tips"] else t["points"] + [t["points"][-1]] * 2
            images[name].append(perfect(t["class"], [p or [0, 0] for p in pts]))
    return {"keypoint_names": list(schema.KEYPOINTS), "classes": list(schema.CLASSES), "images": images}


def test_run_real_predictions_json_and_model(real_folder, pose_weights, tmp_path, capsys):
    """predictions.json from predict.py scores exactly as evaluating the same model directly."""
    pred_dir = tmp_path / "pred"
    predict.run(weights=pose_weights, source=real_folder / "images", out_dir=pred_dir, imgsz=64, conf=LOW_CONF)
    write_json(tmp_path / "perfect.json", perfect_predictions(real_folder))
    weights = [pred_dir / "predictions.json", pose_weights, tmp_path / "perfect.json"]
    out = tmp_path / "eval" / "evaluation.json"
    capsys.readouterr()
    doc = evaluate.run(weights, real=real_folder, imgsz=64, conf=LOW_CONF, device="cpu", out=out)
    assert json.loads(out.read_text()) == json.loads(json.dumps(doc))
    assert doc["mode"] == "real" and doc["real"] == str(real_folder) and doc["settings"]["conf"] == LOW_CONF
    from_json, from_model, best = doc["results"]
    assert (from_json["source"], from_model["source"]) == ("predictions", "model")
    assert from_json["weights"] == str(weights[0]) and from_model["weights"] == str(pose_weights)
    for key in ("classes", "all", "score"):
        assert from_json[key] == from_model[key]
    names = {p.name for p in (real_folder / "images").iterdir()}
    n_images = len(names)
    for res in doc["results"]:
        assert res["images"] == n_images and set(res["per_image"]) == names
        assert 0 <= res["score"] <= 1 and 0 <= res["all"]["recall"] <= 1
        tw = res["classes"]["tweezers"]
        assert tw["gt_tools"] == n_images and tw["ordered_tools"] == n_images - 1, "one tweezers unordered-only"
    assert best["score"] == 1.0 and best["all"]["recall"] == 1.0 and best["all"]["tip_pck@2%"] == 1.0
    assert doc["best"] == str(weights[2])

    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("weights"))
    table = lines[header:header + 1 + 3 * (len(schema.CLASSES) + 1)]
    assert table[0].split()[:4] == ["weights", "class", "GT", "recall"] and "tip@5%" in table[0]
    assert len({len(line) for line in table}) == 1, "columns are aligned"
    assert [line.split()[1] for line in table[1:]] == [*schema.CLASSES, "all"] * 3
    assert table[-1].split()[-1] == "1.000"


def test_cli_real_and_errors(real_folder, tmp_path, capsys):
    write_json(tmp_path / "perfect.json", perfect_predictions(real_folder))
    out = tmp_path / "e.json"
    evaluate.main(evaluate.parse_opt(["--weights", str(tmp_path / "perfect.json"), "--real", str(real_folder),
                                      "--out", str(out)]))
    assert "best:" in capsys.readouterr().out and json.loads(out.read_text())["results"][0]["score"] == 1.0
    for argv in ([], ["--real", "x", "--data", "y"]):
        with pytest.raises(SystemExit):
            evaluate.parse_opt(["--weights", "w.pt", *argv])
    with pytest.raises(SystemExit, match="weights not found"):
        evaluate.main(evaluate.parse_opt(["--weights", str(tmp_path / "nope.pt"), "--real", str(real_folder)]))
    with pytest.raises(ValueError, match="exactly one"):
        evaluate.run([tmp_path / "perfect.json"])
    with pytest.raises(FileNotFoundError, match="keypoints.json"):
        evaluate.run([tmp_path / "perfect.json"], real=tmp_path)
    with pytest.raises(ValueError, match="not a predict.py"):
        evaluate.run([out], real=real_folder)
    renamed = perfect_predictions(real_folder)   # another model's classes would score 0 with no false detection
    for instances in renamed["images"].values():
        for inst in instances:
            inst["class"] = {"needle_holder": "needle_driver"}.get(inst["class"], inst["class"])
    write_json(tmp_path / "renamed.json", renamed)
    with pytest.raises(ValueError, match=r"has classes \['needle_driver'\], expected needle_holder, tweezers"):
        evaluate.run([tmp_path / "renamed.json"], real=real_folder)
    with pytest.raises(SystemExit):
        evaluate.parse_opt(["--weights", "w.pt", "--data", "d.yaml", "--max_box", "1"])
    assert "--max_box goes with --real" in capsys.readouterr().err


def test_sweep_scores_one_prediction_at_every_threshold(real_folder, pose_weights, tmp_path, capsys):
    """Each sweep point is what a run at that --conf gives (the model predicts once, at the lowest threshold),
    also where the threshold drops some of the model's boxes; recall falls as the threshold passes the
    instruments' scores; the table has a row per threshold and the plot is written beside --out. The shipped
    model stands for a model whose scores spread (the briefly trained one gives one score to every box)."""
    shipped = ROOT / "models" / "synthetic_weights.pt"
    predict.run(weights=shipped, source=real_folder / "images", out_dir=tmp_path / "pred", imgsz=160,
                conf=LOW_CONF)
    predicted = evaluate.load_predictions(tmp_path / "pred" / "predictions.json")
    scores = sorted({i["score"] for instances in predicted.values() for i in instances})
    assert len(scores) >= 2
    middle = (scores[len(scores) // 2 - 1] + scores[len(scores) // 2]) / 2   # between two of the model's scores
    graded = perfect_predictions(real_folder)
    for k, inst in enumerate(i for instances in graded["images"].values() for i in instances):
        inst["score"] = 0.3 if k % 2 else 0.9
    write_json(tmp_path / "graded.json", graded)
    out = tmp_path / "e.json"
    capsys.readouterr()
    doc = evaluate.run([tmp_path / "graded.json", shipped], real=real_folder, imgsz=160, conf=0.25,
                       sweep=[0.5, LOW_CONF, middle, 0.95], device="cpu", out=out)
    printed = capsys.readouterr().out
    assert doc["settings"]["sweep"] == sorted([0.5, LOW_CONF, middle, 0.95])
    assert doc["settings"]["predict_conf"] == LOW_CONF
    graded_result, model_result = doc["results"]
    assert [p["conf"] for p in graded_result["sweep"]] == sorted([LOW_CONF, middle, 0.5, 0.95])
    recall = {p["conf"]: p["recall_needle_holder"] + p["recall_tweezers"] for p in graded_result["sweep"]}
    assert recall[LOW_CONF] == 2.0 and 0 < recall[0.5] < 2.0 and recall[0.95] == 0.0
    assert {p["fp_per_image"] for p in graded_result["sweep"]} == {0.0}
    for conf in (LOW_CONF, middle):
        alone = evaluate.run([shipped], real=real_folder, imgsz=160, conf=conf, device="cpu", verbose=False)
        assert next(p for p in model_result["sweep"] if p["conf"] == conf) == real_summary(alone["results"][0])
    at_conf = evaluate.run([shipped], real=real_folder, imgsz=160, conf=0.25, device="cpu", verbose=False)
    assert {k: model_result[k] for k in ("classes", "all", "score")} == \
        {k: at_conf["results"][0][k] for k in ("classes", "all", "score")}
    plot = tmp_path / "e_sweep.png"
    assert plot.is_file() and cv2.imread(str(plot)).shape[1] > 500 and f"-> {plot}" in printed
    rows = [line.split() for line in printed.splitlines() if line.startswith(str(tmp_path / "graded.json"))]
    assert [float(r[1]) for r in rows[-4:]] == sorted([LOW_CONF, middle, 0.5, 0.95]), "a sweep row per threshold"
    with pytest.raises(ValueError, match="--sweep goes with --real"):
        evaluate.run([pose_weights], data=tmp_path / "d.yaml", sweep=[0.5])
    with pytest.raises(ValueError, match="--sweep takes one --scales size"):
        evaluate.run([pose_weights], real=real_folder, scales=(1.0, 1.5), sweep=[0.5])
    for argv in (["--data", "d.yaml", "--sweep", "0.5"], ["--real", "r", "--scales", "1", "1.5", "--sweep", "0.5"]):
        with pytest.raises(SystemExit):
            evaluate.parse_opt(["--weights", "w.pt", *argv])
    assert "--sweep goes with --real" in capsys.readouterr().err


def test_data_yaml_pose_map(tiny, pose_weights, tmp_path, capsys):
    doc = evaluate.run([pose_weights], data=tiny["pose"], imgsz=64, batch=4, device="cpu", out=tmp_path / "e.json")
    (res,) = doc["results"]
    assert doc["mode"] == "yolo" and res["task"] == "pose"
    for key in ("box_map50", "box_map50_95", "pose_map50", "pose_map50_95"):
        assert 0 <= res[key] <= 1
    assert "mask_map50" not in res
    assert "pose mAP50-95" in capsys.readouterr().out
    with pytest.raises(ValueError, match="not a data.yaml"):
        evaluate.run([tmp_path / "e.json"], data=tiny["pose"])
    with pytest.raises(ValueError, match="--scales, --pre_clahe: Ultralytics val on a data.yaml takes none"):
        evaluate.run([pose_weights], data=tiny["pose"], scales=(1.0, 1.2), pre_clahe=True)


def test_coco_json_pose_map(tiny, pose_weights, tmp_path):
    coco = tiny["pose"].parent.parent / Layout.COCO / "annotations_val.json"
    doc = evaluate.run([pose_weights], data=coco, imgsz=64, device="cpu")
    (res,) = doc["results"]
    assert doc["mode"] == "coco" and res["task"] == "pose"
    for key in ("box_map50", "box_map50_95", "pose_map50", "pose_map50_95"):
        assert res[key] is None or 0 <= res[key] <= 1

    # Ground truth as predictions: perfect mAP, through the predictions.json path.
    gt = json.loads(coco.read_text())
    names = {c["id"]: c["name"] for c in gt["categories"]}
    files = {img["id"]: img["file_name"] for img in gt["images"]}
    images: dict[str, list] = {name: [] for name in files.values()}
    for ann in gt["annotations"]:
        x, y, w, h = ann["bbox"]
        k = ann["keypoints"]
        outline = max(ann["segmentation"], key=len)
        images[files[ann["image_id"]]].append({
            "class": names[ann["category_id"]], "score": 0.9, "bbox": [x, y, x + w, y + h],
            "keypoints": [[k[i], k[i + 1], 0.9] for i in range(0, len(k), 3)],
            "polygon": [outline[i:i + 2] for i in range(0, len(outline), 2)]})
    write_json(tmp_path / "gt.json", {"keypoint_names": list(schema.KEYPOINTS), "images": images})
    (res,) = evaluate.run([tmp_path / "gt.json"], data=coco, verbose=False)["results"]
    assert res["box_map50"] == pytest.approx(1.0) and res["pose_map50_95"] == pytest.approx(1.0)
    assert res["mask_map50"] > 0.9, "largest outline of each ground-truth mask"

    # OKS is scaled by the box (as Ultralytics' val), not by the file's `area` (our files: the visible mask's).
    shifted = {name: [{**inst, "keypoints": [[x + 1.5, y, c] for x, y, c in inst["keypoints"]]} for inst in insts]
               for name, insts in images.items()}
    write_json(tmp_path / "shifted.json", {"keypoint_names": list(schema.KEYPOINTS), "images": shifted})
    tiny_areas = {**gt, "annotations": [{**a, "area": a["area"] / 100} for a in gt["annotations"]]}
    write_json(coco.parent / "tiny_areas.json", tiny_areas)   # beside the images
    pose = [evaluate.run([tmp_path / "shifted.json"], data=d, verbose=False)["results"][0]["pose_map50_95"]
            for d in (coco, coco.parent / "tiny_areas.json")]
    assert pose[0] == pose[1] < 1.0, "a 1.5 px shift costs OKS at the strict thresholds, whatever the area field"

    # Annotations without keypoints beside ones with them: ignored by OKS, as in COCO.
    unlabelled = {**gt, "annotations": [{k: v for k, v in a.items() if k not in ("keypoints", "num_keypoints")}
                                        if i == 0 else {**a, "keypoints": []} if i == 1 else a
                                        for i, a in enumerate(gt["annotations"])]}
    write_json(coco.parent / "unlabelled.json", unlabelled)
    (res,) = evaluate.run([tmp_path / "gt.json"], data=coco.parent / "unlabelled.json", verbose=False)["results"]
    assert res["pose_map50_95"] == pytest.approx(1.0)
    renamed = {**gt, "categories": [{**c, "name": c["name"].replace("_", " ")} for c in gt["categories"]]}
    write_json(coco.parent / "renamed.json", renamed)
    with pytest.raises(ValueError, match=r"COCO categories \['needle holder'\] are not in the schema"):
        evaluate.run([tmp_path / "gt.json"], data=coco.parent / "renamed.json", verbose=False)
    del images[files[gt["images"][0]["id"]]]
    write_json(tmp_path / "part.json", {"keypoint_names": list(schema.KEYPOINTS), "images": images})
    with pytest.raises(ValueError, match="no predictions for 1 of"):
        evaluate.run([tmp_path / "part.json"], data=coco, verbose=False)
    first = gt["images"][0]
    twice = {**gt, "images": gt["images"] + [{**first, "id": 999, "file_name": "v2/" + first["file_name"]}]}
    write_json(tmp_path / "twice.json", twice)   # one file name in two folders: predictions cannot tell them apart
    with pytest.raises(ValueError, match="names several images .* score one folder's COCO file at a time"):
        evaluate.run([tmp_path / "gt.json"], data=tmp_path / "twice.json", verbose=False)


def test_segmentation_model_mask_map(tiny, tmp_path_factory):
    seg_weights = trained_run(tmp_path_factory.getbasetemp(), "segment") / "weights" / "best.pt"
    (res,) = evaluate.run([seg_weights], data=tiny["seg"], imgsz=64, batch=4, device="cpu", verbose=False)["results"]
    assert res["task"] == "segment" and 0 <= res["mask_map50_95"] <= 1 and "pose_map50" not in res
    coco = tiny["seg"].parent.parent / Layout.COCO / "annotations_val.json"
    (res,) = evaluate.run([seg_weights], data=coco, imgsz=64, device="cpu", verbose=False)["results"]
    assert res["task"] == "segment" and "pose_map50" not in res
    assert "mask_map50" in res or res["box_map50"] == 0.0, "masks are scored whenever the model finds anything"


def test_oss_dev_format(real_dir, pose_weights, tmp_path):
    """Brief weights on the shared real frames: only the report's shape is checked (the model is untrained)."""
    doc = evaluate.run([pose_weights], real=real_dir / "oss_dev", imgsz=64, conf=LOW_CONF, device="cpu",
                       out=tmp_path / "e.json", verbose=False)
    (res,) = doc["results"]
    assert res["images"] == 36 and set(res["classes"]) == set(schema.CLASSES)
    nh = res["classes"]["needle_holder"]
    assert nh["gt_tools"] > 0 and nh["tips"] > 0 and nh["joints"] > 0
    assert 0 <= res["score"] <= 1 and res["all"]["fp_per_image"] >= 0


def test_outcomes_say_how_each_tool_was_missed():
    """Error analysis: a tweezers boxed as a needle holder, one not boxed at all, tips 60 px off (beyond 5 %)."""
    labels = labels_of({"a.jpg": {"needle_holder": tool(NH["keypoints_ordered"]), "tweezers": tool(TW["keypoints_ordered"])},
                        "b.jpg": {"needle_holder": tool(NH["keypoints_ordered"]), "tweezers": tool(TW["keypoints_ordered"])}})
    m = score_real({"a.jpg": [perfect("needle_holder", NH["keypoints_ordered"]),
                              perfect("needle_holder", TW["keypoints_ordered"], score=0.8)],
                    "b.jpg": [perfect("needle_holder", NH["keypoints_ordered"], dx=60)]}, labels)
    assert m["classes"]["tweezers"]["outcomes"] == {"found": 0, "tips_off": 0, "other_class": 1, "no_box": 1}
    assert m["classes"]["needle_holder"]["outcomes"] == {"found": 1, "tips_off": 1, "other_class": 0, "no_box": 0}
    assert [t["outcome"] for t in m["per_image"]["a.jpg"]["tools"]] == ["found", "other_class"]
    assert m["all"]["outcomes"]["other_class"] == 1 and sum(m["all"]["outcomes"].values()) == m["all"]["gt_tools"]


# ---------------------------------------------------------------- hand-box labels (apas_dev format)

HANDS = {"a.jpg": {"width": W, "height": H, "hands": [
    {"side": "right", "tool": "needle_holder", "box": [100, 100, 200, 200]},
    {"side": "left", "tool": "tweezers", "box": [400, 100, 500, 200]},
    {"side": "right", "tool": "none", "box": [100, 400, 200, 500]},
    {"side": "left", "tool": "scissors", "box": [400, 400, 500, 500]}]},
    "b.jpg": {"width": W, "height": H, "hands": [{"side": "left", "tool": "none", "box": [600, 100, 700, 200]}]}}


def box(cls: str, xyxy: list[float], score: float = 0.9) -> dict:
    return {"class": cls, "score": score, "bbox": xyxy, "keypoints": [], "polygon": []}


def test_hand_boxes_known_answers():
    """A needle holder sticking out of its hand (inside the grown hand box only), a tweezers hand boxed as a needle
    holder, an empty hand with a box, a box near no hand, one below the confidence threshold."""
    labels = parse_hand_labels({"images": HANDS})
    sticking_out = [120, 60, 260, 180]   # 38 % inside the hand box, 66 % inside the grown one
    assert hand_of(sticking_out, labels["a.jpg"]["hands"], grow=0.0) is None
    m = score_real({"a.jpg": [box("needle_holder", sticking_out), box("needle_holder", [410, 110, 490, 190]),
                              box("tweezers", [110, 410, 190, 490]), box("tweezers", [420, 420, 480, 480], score=0.1),
                              box("tweezers", [600, 300, 700, 350])],
                    "b.jpg": []}, labels, conf=0.25)
    assert m["format"] == "hands" and m["images"] == 2
    assert m["classes"]["needle_holder"] == {"gt_tools": 1, "found": 1, "recall": 1.0, "as_other": 0,
                                             "as_other_share": 0.0}
    assert m["classes"]["tweezers"]["recall"] == 0.0 and m["classes"]["tweezers"]["as_other_share"] == 1.0
    assert m["false_alarms"]["none"] == {"hands": 2, "boxed": 1, "rate": 0.5, "boxes": 1}
    assert m["false_alarms"]["scissors"]["rate"] == 0.0   # its only box is below conf
    assert m["boxes_near_no_hand"] == 1 and m["far_per_image"] == 0.5
    assert m["score"] == real_score(m) == 0.5


def test_a_box_between_two_hands_goes_to_the_one_covering_more_of_it():
    hands = [{"tool": "needle_holder", "box": [100, 100, 200, 200]}, {"tool": "tweezers", "box": [260, 100, 360, 200]}]
    assert hand_of([150, 120, 250, 180], hands) == 0          # 0.75 in the left hand's grown box, 0.15 in the right's
    assert hand_of([210, 120, 310, 180], hands) == 1          # mirrored
    assert hand_of([190, 120, 270, 180], hands) is None       # 0.44 in each: near no hand


def test_hand_label_errors(tmp_path):
    for hand, message in (({"tool": "scalpel", "box": [0, 0, 1, 1]}, "tool must be one of"),
                          ({"tool": "none", "box": [5, 0, 1, 1]}, "box must be")):
        with pytest.raises(ValueError, match=message):
            parse_hand_labels({"images": {"a.jpg": {"width": W, "height": H, "hands": [hand]}}})
    (tmp_path / "keypoints.json").write_text("{}")
    (tmp_path / "hands.json").write_text("{}")
    with pytest.raises(ValueError, match="holds both keypoints.json and hands.json"):
        load_real_labels(tmp_path)


def test_run_on_hand_boxes_side_by_side(tiny, pose_weights, tmp_path, capsys):
    """A model and perfect predictions on a hand-box folder: one table for both, perfect first."""
    folder = hand_format_folder(tiny["pose"].parent.parent, tmp_path / "hands")
    labels = load_real_labels(folder)
    perfect_doc = {"images": {name: [box(h["tool"], h["box"]) for h in lab["hands"] if h["tool"] in schema.CLASSES]
                              for name, lab in labels.items()}, "keypoint_names": list(schema.KEYPOINTS)}
    write_json(tmp_path / "perfect.json", perfect_doc)
    capsys.readouterr()
    doc = evaluate.run([pose_weights, tmp_path / "perfect.json"], real=folder, imgsz=64, conf=LOW_CONF, device="cpu",
                       out=tmp_path / "e.json", sweep=[LOW_CONF, 0.5])
    table = capsys.readouterr().out
    model, best = doc["results"]
    assert doc["best"] == str(tmp_path / "perfect.json") and best["score"] == 1.0
    assert best["false_alarms"]["none"]["rate"] == 0.0 and best["far_per_image"] == 0.0
    assert model["format"] == "hands" and set(model["per_image"]) == set(labels)
    for row in ("needle_holder", "tweezers", "scissors", "none", "all"):
        assert row in table
    assert "far/img" in table and "1.000" in table
    perfect_at = {p["conf"]: p for p in best["sweep"]}       # the perfect boxes score 0.9: found at both
    assert perfect_at[0.5]["score"] == 1.0 and perfect_at[0.5]["alarm_none"] == 0.0
    assert perfect_at[0.5]["far_per_image"] == 0.0 and (tmp_path / "e_sweep.png").is_file()


def test_on_apas_dev_labels(real_dir):
    labels = load_real_labels(real_dir / "apas_dev")
    tools = [h["tool"] for lab in labels.values() for h in lab["hands"]]
    assert len(labels) == 118 and {t: tools.count(t) for t in set(tools)} == {
        "needle_holder": 89, "tweezers": 39, "scissors": 28, "none": 79}
