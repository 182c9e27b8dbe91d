"""The README's "Your own frames: label, fine-tune, score" workflow end to end, with the commands as written there:
a label tool's export of a few frames (CVAT "COCO Keypoints 1.0" from our template) in, a fine-tuned model and its
score out (1 epoch at a tiny size)."""
from __future__ import annotations

import json

import evaluate
import import_labels
import train
from datasets import coco_keypoints_export, tiny_dataset, trained_run
from surgpose import schema


def run_script(script, argv: list[str]) -> None:
    """A phase script as its command line runs it."""
    script.main(script.parse_opt([str(a) for a in argv]))


def test_label_fine_tune_score(tmp_path_factory, tmp_path, capsys):
    base = tmp_path_factory.getbasetemp()
    synthetic = tiny_dataset(base / "tiny")["pose"]                      # stands for output/yolo_data/data.yaml
    shipped = trained_run(base, "pose") / "weights" / "best.pt"          # stands for models/synthetic_weights.pt
    export, images, _ = coco_keypoints_export(tmp_path / "cvat_export", n=8)
    template = {label["name"]: [s["name"] for s in label["sublabels"]] for label in import_labels.cvat_label_template()}
    categories = json.loads(export.read_text())["categories"]
    assert all(sorted(c["keypoints"]) == sorted(template[c["name"]]) for c in categories)   # the template's skeletons

    # 1. the label tool's export becomes our dataset
    run_script(import_labels, ["--source", export, "--images", images, "--out", tmp_path / "my_frames",
                               "--val_fraction", 0.25])
    assert "imported 8 images (coco keypoints): train 6, val 2" in capsys.readouterr().out

    # 2. fine-tune the shipped model on renders mixed with the labelled frames
    run_script(train, ["--model", shipped, "--data", synthetic, "--real_data", tmp_path / "my_frames" / "data.yaml",
                       "--real_fraction", 0.5, "--epochs", 1, "--imgsz", 64, "--batch", 4, "--freeze", 10,
                       "--warmup_epochs", 0, "--workers", 0, "--project", tmp_path / "runs", "--name", "my_frames",
                       "optimizer=AdamW", "lr0=0.0001", "plots=False"])
    out = capsys.readouterr().out
    assert "real data: 8 real images beside the 8 of" in out
    fine_tuned = tmp_path / "runs" / "my_frames" / "weights" / "best.pt"
    assert f"weights: {fine_tuned}" in out and fine_tuned.is_file()

    # 3. score before and after on the held-out labelled frames
    run_script(evaluate, ["--weights", shipped, fine_tuned, "--data", tmp_path / "my_frames" / "data.yaml",
                          "--imgsz", 64, "--device", "cpu", "--out", tmp_path / "evaluation.json"])
    document = json.loads((tmp_path / "evaluation.json").read_text())
    assert document["mode"] == "yolo" and [r["weights"] for r in document["results"]] == [str(shipped), str(fine_tuned)]
    for result in document["results"]:
        assert result["task"] == "pose" and 0 <= result["pose_map50_95"] <= 1 and 0 <= result["box_map50_95"] <= 1
    assert "pose mAP50-95" in capsys.readouterr().out
    assert list(train.read_dataset(tmp_path / "my_frames" / "data.yaml")["names"].values()) == list(schema.CLASSES)
