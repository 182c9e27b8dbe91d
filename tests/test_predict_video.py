"""predict.py and video.py on real (briefly trained) models: output formats, errors, interruption, tracking."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import predict
import video
from evaluate import load_predictions
from datasets import read_video, tiny_dataset, trained_run, write_clip
from surgpose import schema
from surgpose.console import shown
from surgpose.curation import open_source
from surgpose.inference import (
    AUTO_INT8_FRAMES,
    EXPORTS,
    MIN_CALIBRATION_FRAMES,
    SHIPPED_WEIGHTS,
    Calibration,
    Detector,
    KeypointSmoother,
    OneEuro,
    SHIPPED_SEG_WEIGHTS,
    Tracker,
    attach_masks,
    box_iou,
    clahe,
    export_weights,
    fuse_instances,
    int8_exports,
    nested_duplicates,
    load_model,
    mask_polygons,
    prune_int8_exports,
)
from surgpose.video_io import sample_frames
from surgpose.yolo import parse_pose_line, parse_seg_line

#: An untrained-for-long model scores around 0.005: a low threshold still exercises every output path.
LOW_CONF = 0.001


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.getbasetemp() / "tiny")


@pytest.fixture(scope="module")
def pose_weights(tmp_path_factory) -> Path:
    return trained_run(tmp_path_factory.getbasetemp(), "pose") / "weights" / "best.pt"


@pytest.fixture(scope="module")
def seg_weights(tmp_path_factory) -> Path:
    return trained_run(tmp_path_factory.getbasetemp(), "segment") / "weights" / "best.pt"


def own_copy(weights: Path, dst: Path) -> Path:
    """A copy of module-scoped weights at `dst`: exports land beside the weights, so each test needs its own."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(weights.read_bytes())
    return dst


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_instance(inst: dict, width: int, height: int, keypoints: bool, polygon: bool) -> None:
    """One instance in the shared format, in original-image pixels."""
    assert inst["class"] in schema.CLASSES and 0 <= inst["score"] <= 1
    x1, y1, x2, y2 = inst["bbox"]
    assert -1 <= x1 <= x2 <= width + 1 and -1 <= y1 <= y2 <= height + 1
    if keypoints:
        assert np.array(inst["keypoints"]).shape == (schema.NUM_KEYPOINTS, 3)
    else:
        assert inst["keypoints"] == []
    if polygon:
        poly = np.array(inst["polygon"])
        assert poly.ndim == 2 and poly.shape[1] == 2 and len(poly) >= 3
        assert (poly >= -1).all() and (poly <= (width + 1, height + 1)).all()
    else:
        assert inst["polygon"] == []


def check_document(doc: dict) -> None:
    assert doc["keypoint_names"] == list(schema.KEYPOINTS) and doc["classes"] == list(schema.CLASSES)
    assert isinstance(doc["images"], dict)


def check_labels(path: Path, task: str, instances: list[dict]) -> None:
    """A YOLO label file per image, one line per instance, each ending in that instance's confidence."""
    parse = parse_pose_line if task == "pose" else parse_seg_line
    labels = [parse(line, 100, 100, require_conf=True) for line in path.read_text().splitlines()]
    assert len(labels) == len(instances)
    assert sorted(round(lab["score"], 3) for lab in labels) == sorted(round(i["score"], 3) for i in instances)


def test_predict_pose_folder(data, pose_weights, tmp_path):
    images = data["pose"].parent / "images" / "val"
    doc = predict.run(weights=pose_weights, source=images, out_dir=tmp_path, imgsz=64, conf=LOW_CONF)
    assert doc == json.loads((tmp_path / "predictions.json").read_text())
    check_document(doc)
    assert sorted(doc["images"]) == sorted(p.name for p in images.iterdir())
    assert any(doc["images"].values()), "the low threshold should let some instances through"
    for name, instances in doc["images"].items():
        h, w = cv2.imread(str(images / name)).shape[:2]
        for inst in instances:
            check_instance(inst, w, h, keypoints=True, polygon=False)
        check_labels(tmp_path / "labels" / f"{Path(name).stem}.txt", "pose", instances)
        assert cv2.imread(str(tmp_path / "overlays" / name)).shape[:2] == (h, w)


def test_predict_int8_segmentation_calibrated_on_the_source(data, seg_weights, tmp_path, capsys):
    images = data["seg"].parent / "images" / "val"
    weights = own_copy(seg_weights, tmp_path / "w" / "seg.pt")
    doc = predict.run(weights=weights, source=images, out_dir=tmp_path / "out", imgsz=64, conf=LOW_CONF,
                      export="int8")
    assert [p.name.split("-")[0] for p in int8_exports(weights)] == ["images_val"], "named after the images' folder"
    assert "calibration images are few" in capsys.readouterr().err, "the cached model serves later runs on them"
    assert sorted(doc["images"]) == sorted(p.name for p in images.iterdir())
    instances = [i for insts in doc["images"].values() for i in insts]
    assert instances and all(i["polygon"] and not i["keypoints"] for i in instances)


def test_predict_pose_model_with_masks_of_a_seg_model(data, pose_weights, seg_weights, tmp_path):
    image = next((data["pose"].parent / "images" / "val").iterdir())
    doc = predict.run(weights=pose_weights, seg_weights=seg_weights, source=image, out_dir=tmp_path, imgsz=64,
                      conf=LOW_CONF)
    (instances,) = doc["images"].values()
    (alone,) = predict.run(weights=pose_weights, seg_weights="none", source=image, out_dir=tmp_path / "alone",
                           imgsz=64, conf=LOW_CONF)["images"].values()
    assert [{**i, "polygon": []} for i in instances] == alone, "masks change no detection"
    h, w = cv2.imread(str(image)).shape[:2]
    assert any(i["keypoints"] and i["polygon"] for i in instances), "a pose detection takes the mask of its instrument"
    for inst in instances:
        check_instance(inst, w, h, keypoints=bool(inst["keypoints"]), polygon=bool(inst["polygon"]))
    check_labels(tmp_path / "labels" / f"{image.stem}.txt", "pose", [i for i in instances if i["keypoints"]])
    check_labels(tmp_path / "labels_seg" / f"{image.stem}.txt", "segment", [i for i in instances if i["polygon"]])


def test_predict_glob_and_missing_source(data, pose_weights, tmp_path):
    pattern = str(data["pose"].parent / "images" / "*" / "00000[12].jpg")
    doc = predict.run(weights=pose_weights, source=pattern, out_dir=tmp_path, imgsz=64)
    assert list(doc["images"]) == ["000001.jpg", "000002.jpg"]
    with pytest.raises(FileNotFoundError, match="no images"):
        predict.run(weights=pose_weights, source=tmp_path / "nothing*.jpg", out_dir=tmp_path, imgsz=64)
    with pytest.raises(ValueError, match="is a video: run video.py"):
        predict.run(weights=pose_weights, source=data["clip"], out_dir=tmp_path, imgsz=64)


def check_video_outputs(out: Path, clip: Path, tasks: list[str], stride: int = 1) -> dict:
    record = json.loads((out / "run.json").read_text())
    source = read_video(clip)
    expected = list(range(0, len(source), stride))
    assert record["complete"] and record["frames_done"] == len(expected)
    annotated = read_video(out / "annotated.mp4")
    assert len(annotated) == len(expected) and annotated[0].shape == source[0].shape
    assert cv2.VideoCapture(str(out / "annotated.mp4")).get(cv2.CAP_PROP_FPS) == pytest.approx(
        record["fps"] / stride, rel=0.01)
    lines = read_jsonl(out / "predictions.jsonl")
    assert [line["frame"] for line in lines] == expected
    h, w = source[0].shape[:2]
    for line in lines:
        check_document(line)
        (name, instances), = line["images"].items()
        stem = Path(name).stem
        assert stem == record["frame_stem"].format(frame=line["frame"])
        for inst in instances:
            check_instance(inst, w, h, keypoints="pose" in tasks, polygon=bool(inst["polygon"]))
        for task in tasks:
            label_dir = "labels" if task == "pose" else "labels_seg"
            check_labels(out / label_dir / f"{stem}.txt", task,
                         [i for i in instances if i["keypoints" if task == "pose" else "polygon"]])
    return record


def test_video_pose(data, pose_weights, tmp_path):
    record = video.run(weights=pose_weights, video=data["clip"], out_dir=tmp_path, imgsz=64, conf=LOW_CONF,
                       export=None, stride=2)
    check_video_outputs(tmp_path, data["clip"], ["pose"], stride=2)
    assert record["model"]["tasks"] == ["pose"] and record["preprocess"]["clahe"] is False


def test_video_on_a_folder_of_frames(data, pose_weights, tmp_path):
    """Datasets often ship frames, not videos: a folder is read in file-name order like a video."""
    frames = read_video(data["clip"])
    for k, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"f{k:04d}.png"), frame)  # lossless: the model sees the decoded frames
    record = video.run(weights=pose_weights, video=tmp_path, out_dir=tmp_path / "out", imgsz=64, conf=LOW_CONF,
                       export=None, stride=3)
    assert record["complete"] and record["frames_done"] == len(range(0, len(frames), 3))
    assert record["size"] == [frames[0].shape[1], frames[0].shape[0]] and record["fps"] == 30.0
    assert len(read_video(tmp_path / "out" / "annotated.mp4")) == record["frames_done"]
    # outputs carry each image's own name (by position, train_000003 sat beside debug/'s 000003.jpg confusingly)
    assert sorted(p.stem for p in (tmp_path / "out" / "labels").iterdir()) == [
        f"f{k:04d}" for k in range(0, len(frames), 3)]
    assert [next(iter(line["images"])) for line in read_jsonl(tmp_path / "out" / "predictions.jsonl")] == [
        f"f{k:04d}.jpg" for k in range(0, len(frames), 3)]
    source = open_source(f"{tmp_path}::{tmp_path / 'out'}")   # Phase 3 pairs them with their images
    assert [(f.index, f.image.name) for f in source.frames] == [(k, f"f{k:04d}.png") for k in range(0, len(frames), 3)]
    assert source.step == 3
    cv2.imwrite(str(tmp_path / "f0000.jpg"), frames[0])
    with pytest.raises(ValueError, match="images f0000 differ only by extension"):
        video.run(weights=pose_weights, video=tmp_path, out_dir=tmp_path / "o3", export=None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="folder without images"):
        video.run(weights=pose_weights, video=tmp_path / "empty", out_dir=tmp_path / "o2", export=None)


def test_video_seg_clahe_frames_are_what_the_model_saw(data, seg_weights, tmp_path):
    record = video.run(weights=seg_weights, video=data["clip"], out_dir=tmp_path, imgsz=64, conf=LOW_CONF,
                       export=None, pre_clahe=True, clahe_clip=3.0, save_frames=True, retina_masks=True)
    check_video_outputs(tmp_path, data["clip"], ["segment"])
    assert record["preprocess"]["clahe"] and record["preprocess"]["clahe_clip"] == 3.0
    source = read_video(data["clip"])
    for k in (0, len(source) - 1):  # Phase 3 reproduces the frames from run.json
        saved = cv2.imread(str(tmp_path / "images" / f"{record['frame_stem'].format(frame=k)}.jpg"))
        expected = clahe(source[k], record["preprocess"]["clahe_clip"])
        assert np.abs(saved.astype(int) - expected).mean() < 2.0  # JPEG only
        assert np.abs(saved.astype(int) - source[k]).mean() > 2.0  # CLAHE did change it


def test_video_track_smooth_multiscale(data, pose_weights, tmp_path):
    video.run(weights=pose_weights, video=data["clip"], out_dir=tmp_path, imgsz=64, conf=LOW_CONF, export=None,
              smooth=True, scales=(0.75, 1.0, 1.5))
    record = check_video_outputs(tmp_path, data["clip"], ["pose"])
    assert record["track"] == "bytetrack.yaml" and record["model"]["imgsz"] == [64, 96]
    lines = read_jsonl(tmp_path / "predictions.jsonl")
    assert all("track_id" in i for line in lines for i in next(iter(line["images"].values())))


@pytest.mark.parametrize("fmt, made", [("openvino", "best_openvino_model"), ("onnx", "best.onnx"),
                                       ("int8", "best_int8")])
def test_video_exported_model(data, pose_weights, tmp_path, fmt, made):
    weights = own_copy(pose_weights, tmp_path / "w" / "best.pt")
    record = video.run(weights=weights, video=data["clip"], out_dir=tmp_path / "out", imgsz=64, conf=LOW_CONF,
                       export=fmt, max_frames=5, scales=(1.0, 1.5))  # one dynamic export serves both sizes
    assert record["frames_done"] == 5 and record["model"]["export"] == fmt
    float_export = ["best_openvino_model"] if fmt == "int8" else []  # int8 quantises the float export
    assert sorted(p.name for p in weights.parent.iterdir()) == sorted(["best.pt", made, *float_export])  # no staging
    export = weights.parent / made
    if fmt == "int8":   # one export per footage, in best_int8/, named after the clip
        (export,) = int8_exports(weights)
        assert sorted(p.name for p in export.parent.iterdir()) == [export.name] and export.name.startswith("clip-")
    again = video.run(weights=export, video=data["clip"], out_dir=tmp_path / "again", imgsz=64,
                      conf=LOW_CONF, max_frames=5, scales=(1.0, 1.5))  # the (dynamic) export itself as --weights
    assert again["frames_done"] == 5 and again["model"]["export"] is None  # run as given, not exported again
    if fmt != "int8":  # a float export predicts what PyTorch predicts
        plain = video.run(weights=weights, video=data["clip"], out_dir=tmp_path / "pt", imgsz=64, conf=LOW_CONF,
                          export="none", max_frames=5, scales=(1.0, 1.5))
        assert plain["frames_done"] == 5
        for a, b in zip(*(read_jsonl(tmp_path / d / "predictions.jsonl") for d in ("pt", "again"))):
            ia, ib = next(iter(a["images"].values())), next(iter(b["images"].values()))
            top = [i for i in ia if i["score"] > 2 * LOW_CONF][:3]
            assert top, "the test model should find something"
            for inst in top:
                match = max(ib, key=lambda j: box_iou(inst["bbox"], j["bbox"]) if j["class"] == inst["class"] else 0)
                assert box_iou(inst["bbox"], match["bbox"]) > 0.9
                assert abs(inst["score"] - match["score"]) < 0.01


def test_float_openvino_predicts_what_pytorch_predicts_in_a_fresh_process(data, pose_weights, tmp_path):
    """As a user runs it: one process per command, so the float32 choice is made before OpenVINO first loads
    (OpenVINO would run bf16 on CPUs with AVX512-BF16, and move keypoints by pixels on CPUs with AMX)."""
    import subprocess
    import sys

    weights = own_copy(pose_weights, tmp_path / "w" / "best.pt")
    common = ["--video", str(data["clip"]), "--imgsz", "64", "--conf", str(LOW_CONF), "--max_frames", "4", "--device", "cpu"]
    for backend in ("none", "openvino"):
        subprocess.run([sys.executable, "video.py", "--weights", str(weights), "--out_dir", str(tmp_path / backend),
                        "--export", backend, "--seg_weights", "none", *common],
                       check=True, capture_output=True, cwd=Path(video.__file__).parent)
    pairs = zip(*(read_jsonl(tmp_path / d / "predictions.jsonl") for d in ("none", "openvino")))
    found = 0
    for a, b in pairs:
        ia, ib = (next(iter(x["images"].values())) for x in (a, b))
        for inst in ia[:3]:   # the same box and keypoints among the other's (equal scores may swap places)
            assert min(max(np.abs(np.subtract(inst["bbox"], j["bbox"])).max(),
                           np.abs(np.subtract(inst["keypoints"], j["keypoints"])[:, :2]).max()) for j in ib) < 0.05
            found += 1
    assert found, "the test model should find something"


@pytest.mark.parametrize("max_frames, stride, chosen", [
    (None, 1, "int8"),
    (3, 1, "openvino"),   # a long clip, but 3 frames asked for
    (None, 2, "openvino")], ids=["whole", "max_frames", "stride"])
def test_video_auto_export_is_int8_when_the_frames_processed_repay_calibrating_it(pose_weights, tmp_path, capsys,
                                                                                  max_frames, stride, chosen):
    """--export auto decides from the frames that will be processed, not the clip's length (--max_frames 30 on a
    100-frame clip spent 80 s quantising); where the export is cached, and how to remove it, is said."""
    weights = own_copy(pose_weights, tmp_path / "w" / "best.pt")
    clip = write_clip(tmp_path / "clip.mp4", frames=AUTO_INT8_FRAMES, size=(64, 48))
    settings = dict(weights=weights, video=clip, imgsz=64, conf=LOW_CONF, device="cpu", max_frames=max_frames,
                    stride=stride)   # export="auto" is the default
    record = video.run(out_dir=tmp_path / "out", **settings)
    assert record["model"]["export"] == chosen
    assert record["frames_done"] == (max_frames or len(range(0, AUTO_INT8_FRAMES, stride)))
    made = int8_exports(weights) if chosen == "int8" else [weights.parent / f"best{EXPORTS[chosen]}"]
    assert len(made) == 1 and made[0].is_dir()
    assert bool(int8_exports(weights)) == (chosen == "int8")  # no INT8 from a few frames
    cached = sorted(shown(p) for p in weights.parent.iterdir() if p.name != "best.pt")   # paths as printed
    err = capsys.readouterr().err
    assert f"made {shown(made[0])}; exports of best.pt cached beside it take " in err
    removal = err[err.index("(remove: rm -r "):].split(")")[0].split()[3:]
    assert sorted(removal) == cached and (chosen != "int8" or shown(weights.parent / "best_int8") in removal)
    if chosen != "int8":   # the INT8 run's reuse: test_int8_exports_are_made_per_footage
        video.run(out_dir=tmp_path / "again", **settings)
        assert f"using the {chosen} export cached as {shown(made[0])}" in capsys.readouterr().err


def test_int8_exports_are_made_per_footage(pose_weights, tmp_path, capsys):
    """An INT8 model runs only on the footage it was calibrated on (one calibrated on another video lost 0.02 on
    oss_dev: model card): each video gets its own, a video seen before finds its own again, wherever it lies."""
    weights = own_copy(pose_weights, tmp_path / "w" / "best.pt")
    first = write_clip(tmp_path / "a" / "first.mp4", frames=MIN_CALIBRATION_FRAMES)
    second = write_clip(tmp_path / "b" / "second.mp4", frames=MIN_CALIBRATION_FRAMES, size=(160, 120))
    settings = dict(weights=weights, imgsz=64, conf=LOW_CONF, export="int8", max_frames=2)
    for n, clip in enumerate((first, second, first)):
        assert video.run(video=clip, out_dir=tmp_path / f"out{n}", **settings)["model"]["export"] == "int8"
        assert "calibration images are few" not in capsys.readouterr().err
    exports = int8_exports(weights)
    assert [p.name.split("-")[0] for p in exports] == ["first", "second"]
    moved = tmp_path / "elsewhere" / first.name
    moved.parent.mkdir()
    first.rename(moved)
    video.run(video=moved, out_dir=tmp_path / "moved", **settings)
    err = capsys.readouterr().err
    assert f"using the int8 export cached as {shown(exports[0])}" in err and "exporting" not in err
    assert int8_exports(weights) == exports
    video.run(video=second, out_dir=tmp_path / "again", **settings)   # now the most recently used
    prune_int8_exports(weights, keep=1)
    assert int8_exports(weights) == [exports[1]]


def test_fixed_size_export_refuses_scales(data, pose_weights, tmp_path):
    weights = own_copy(pose_weights, tmp_path / "best.pt")
    fixed = Path(load_model(weights).export(format="onnx", imgsz=64, dynamic=False, device="cpu"))
    with pytest.raises(ValueError, match="exported for one input size"):
        Detector(fixed, imgsz=64, scales=(1.0, 1.5))
    assert Detector(fixed, imgsz=64).predict(read_video(data["clip"])[0]) is not None  # one size is fine


def test_int8_export_needs_calibration_frames(pose_weights, tmp_path):
    weights = own_copy(pose_weights, tmp_path / "best.pt")
    for calibration in (None, Calibration("empty", "0" * 8, list)):  # none given, or none found
        with pytest.raises(ValueError, match="needs calibration images"):
            export_weights(weights, "int8", 64, calibration=calibration)
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


def test_sample_frames_spread_over_video_and_folder(data, tmp_path):
    frames = read_video(data["clip"])
    picked = sample_frames(data["clip"], 3)
    assert len(picked) == 3
    for got, index in zip(picked, (0, (len(frames) - 1) // 2, len(frames) - 1)):
        assert np.array_equal(got, frames[index])  # seeking lands on the very frame
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames[:5]):
        cv2.imwrite(str(folder / f"{i:03d}.png"), f)
    assert [np.array_equal(a, b) for a, b in zip(sample_frames(folder, 3), frames[0:5:2])] == [True] * 3
    assert len(sample_frames(folder, 50)) == 5  # never more than there are


def interrupt_after(images: int, monkeypatch) -> None:
    """Ctrl-C while the model works on the image after `images` finished ones."""
    calls = {"n": 0}
    original = Detector.predict

    def predict_then_interrupt(self, image):
        calls["n"] += 1
        if calls["n"] > images:
            raise KeyboardInterrupt
        return original(self, image)

    monkeypatch.setattr(Detector, "predict", predict_then_interrupt)


def test_video_interrupted_run_leaves_readable_outputs(data, pose_weights, tmp_path, monkeypatch):
    interrupt_after(5, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        video.run(weights=pose_weights, video=data["clip"], out_dir=tmp_path, imgsz=64, conf=LOW_CONF, export=None)
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["frames_done"] == 5 and not record["complete"]
    assert len(read_video(tmp_path / "annotated.mp4")) == 5
    lines = (tmp_path / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(x)["frame"] for x in lines] == [0, 1, 2, 3, 4]
    assert len(list((tmp_path / "labels").glob("*.txt"))) == 5


def test_video_resume_finishes_an_interrupted_run_as_one_run_would(data, pose_weights, tmp_path, monkeypatch):
    settings = dict(weights=pose_weights, video=data["clip"], imgsz=64, conf=LOW_CONF, export=None, stride=2)
    whole = video.run(out_dir=tmp_path / "whole", **settings)
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        interrupt_after(3, m)
        with pytest.raises(KeyboardInterrupt):
            video.run(out_dir=out, **settings)
    with (out / "predictions.jsonl").open("a") as f:
        f.write('{"frame": 6, "ima')  # a line cut short by a hard kill is redone
    with pytest.raises(ValueError, match="other settings \\(stride"):
        video.run(out_dir=out, resume=True, **{**settings, "stride": 3})
    with pytest.raises(ValueError, match="cannot continue tracks"):
        video.run(out_dir=out, resume=True, track="bytetrack.yaml", **settings)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        video.run(out_dir=tmp_path / "empty", resume=True, **settings)
    with monkeypatch.context() as m:   # interrupted again while the finished frames are replayed
        calls, view = [], video.model_view

        def view_then_interrupt(*args):
            calls.append(1)
            if len(calls) > 1:
                raise KeyboardInterrupt
            return view(*args)

        m.setattr(video, "model_view", view_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            video.run(out_dir=out, resume=True, **settings)
    assert [line["frame"] for line in read_jsonl(out / "predictions.jsonl")] == [0, 2, 4]   # none of them lost

    predicted = []
    original = Detector.predict
    monkeypatch.setattr(Detector, "predict", lambda self, image: predicted.append(1) or original(self, image))
    record = video.run(out_dir=out, resume=True, **settings)
    assert record["complete"] and record["resumed_frames"] == 3
    assert record["frames_done"] == whole["frames_done"] and len(predicted) == whole["frames_done"] - 3
    assert read_jsonl(out / "predictions.jsonl") == read_jsonl(tmp_path / "whole" / "predictions.jsonl")
    assert len(read_video(out / "annotated.mp4")) == whole["frames_done"]
    check_video_outputs(out, data["clip"], ["pose"], stride=2)
    for label in (tmp_path / "whole" / "labels").iterdir():
        assert (out / "labels" / label.name).read_text() == label.read_text()


def test_video_rerun_replaces_the_earlier_run(data, pose_weights, seg_weights, tmp_path):
    """Phase 3 reads every label file in the folder: a rerun with another model, stride or video must not
    leave the earlier run's labels there to be curated as its own."""
    out = tmp_path / "out"
    first = video.run(weights=seg_weights, video=data["clip"], out_dir=out, imgsz=64, conf=LOW_CONF, export=None,
                      save_frames=True)
    n_frames = first["frames_done"]
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot load weights"):  # a run that cannot start deletes nothing
        video.run(weights=garbage, video=data["clip"], out_dir=out, export=None)
    assert len(list((out / "labels_seg").iterdir())) == len(list((out / "images").iterdir())) == n_frames

    second = video.run(weights=pose_weights, video=data["clip"], out_dir=out, imgsz=64, conf=LOW_CONF,
                       export=None, stride=3, max_frames=2)
    stems = [second["frame_stem"].format(frame=k) for k in (0, 3)]
    assert sorted(p.stem for p in (out / "labels").iterdir()) == stems
    assert not list((out / "labels_seg").iterdir()) and not list((out / "images").iterdir())
    source = open_source(f"{data['clip']}::{out}")
    assert [f.index for f in source.frames] == [0, 3] and source.tasks == ["pose"] and source.step == 3

    frames = tmp_path / "frames"  # another video into the same folder
    frames.mkdir()
    for k, frame in enumerate(read_video(data["clip"])[:4]):
        cv2.imwrite(str(frames / f"f{k:04d}.png"), frame)
    third = video.run(weights=pose_weights, video=frames, out_dir=out, imgsz=64, conf=LOW_CONF, export=None)
    assert sorted(p.stem for p in (out / "labels").iterdir()) == [f"f{k:04d}" for k in range(4)] == third["frame_names"]
    video.run(weights=pose_weights, video=data["clip"], out_dir=out, imgsz=64, conf=LOW_CONF, export=None,
              max_frames=2)   # and back to a video: the folder run's image-named labels go
    assert sorted(p.stem for p in (out / "labels").iterdir()) == [second["frame_stem"].format(frame=k) for k in (0, 1)]


def test_predict_rerun_replaces_the_earlier_run_and_interruption_keeps_what_is_done(
        data, pose_weights, tmp_path, monkeypatch):
    images = data["pose"].parent / "images" / "val"
    names = sorted(p.name for p in images.iterdir())
    out = tmp_path / "out"
    predict.run(weights=pose_weights, source=images, out_dir=out, imgsz=64, conf=LOW_CONF)
    doc = predict.run(weights=pose_weights, source=images / names[0], out_dir=out, imgsz=64, conf=LOW_CONF)
    assert list(doc["images"]) == [names[0]] and doc["complete"]
    assert [p.name for p in (out / "overlays").iterdir()] == [names[0]]
    assert [p.name for p in (out / "labels").iterdir()] == [f"{Path(names[0]).stem}.txt"]

    interrupt_after(2, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        predict.run(weights=pose_weights, source=images, out_dir=out, imgsz=64, conf=LOW_CONF)
    partial = json.loads((out / "predictions.json").read_text())
    assert list(partial["images"]) == names[:2] and partial["complete"] is False
    assert sorted(p.name for p in (out / "overlays").iterdir()) == names[:2]
    with pytest.raises(ValueError, match="interrupted after 2 images"):
        load_predictions(out / "predictions.json")


def test_clear_errors(data, pose_weights, tmp_path):
    with pytest.raises(FileNotFoundError, match="video not found"):
        video.run(weights=pose_weights, video=tmp_path / "missing.mp4", out_dir=tmp_path, export=None)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="cannot decode video"):
        video.run(weights=pose_weights, video=corrupt, out_dir=tmp_path, export=None)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    for export in (None, "openvino"):  # an export names the user's file, not its staging copy, and makes nothing
        with pytest.raises(ValueError, match=f"cannot load weights {garbage}: "):
            video.run(weights=garbage, video=data["clip"], out_dir=tmp_path, export=export)
    assert not list(tmp_path.glob("garbage_*"))
    with pytest.raises(FileNotFoundError, match="weights not found"):
        load_model(tmp_path / "nope.pt")
    ckpt = torch.load(pose_weights, weights_only=False)
    ckpt["model"].names = {0: "scissors", 1: "tweezers"}
    foreign = tmp_path / "foreign.pt"
    torch.save(ckpt, foreign)
    with pytest.raises(ValueError, match="expects \\['needle_holder', 'tweezers'\\]"):
        video.run(weights=foreign, video=data["clip"], out_dir=tmp_path, export=None)
    ours = own_copy(pose_weights, tmp_path / "ours.pt")
    meta = export_weights(ours, "openvino", 64) / "metadata.yaml"  # an export's classes come from its metadata
    meta.write_text(meta.read_text().replace("needle_holder", "scissors"))
    with pytest.raises(ValueError, match="predict classes \\['scissors', 'tweezers'\\]"):
        load_model(meta.parent)


def instance(cls: str, score: float, box: list[float], kpt_offset: float = 0.0, polygon: bool = False) -> dict:
    x1, y1, x2, y2 = box
    kpts = [[x1 + kpt_offset + 2 * k, y1 + kpt_offset, 0.9] for k in range(schema.NUM_KEYPOINTS)]
    return {"class": cls, "score": score, "bbox": box, "keypoints": [] if polygon else kpts,
            "polygon": [[x1, y1], [x2, y1], [x2, y2]] if polygon else []}


def test_fusion_merges_matches_and_keeps_the_rest():
    a = [instance("tweezers", 0.9, [10, 10, 50, 50]), instance("needle_holder", 0.8, [100, 100, 150, 140])]
    b = [instance("tweezers", 0.7, [12, 10, 52, 50], kpt_offset=2.0), instance("tweezers", 0.6, [200, 0, 240, 30])]
    fused = fuse_instances([a, b])
    assert len(fused) == 3  # the overlapping tweezers became one
    tw = max((f for f in fused if f["class"] == "tweezers"), key=lambda f: f["score"])
    assert tw["score"] == pytest.approx((0.9 + 0.7) / 2)
    assert tw["bbox"][0] == pytest.approx((10 * 0.9 + 12 * 0.7) / 1.6, abs=0.01)
    assert tw["keypoints"][0][0] == pytest.approx((10 * 0.9 + 14 * 0.7) / 1.6, abs=0.01)  # x1 + offset
    singles = sorted(f["score"] for f in fused if f is not tw)
    assert singles == pytest.approx([0.3, 0.4])  # seen by one source of two


def test_masks_go_to_the_pose_detections_they_overlap():
    found = [instance("tweezers", 0.6, [10, 10, 50, 50]), instance("needle_holder", 0.9, [100, 100, 150, 140]),
             instance("tweezers", 0.5, [300, 300, 340, 340])]
    masks = [instance("needle_holder", 0.8, [11, 10, 50, 51], polygon=True),      # other class, same instrument
             instance("needle_holder", 0.7, [101, 100, 150, 141], polygon=True),
             instance("needle_holder", 0.95, [100, 100, 150, 141], polygon=True),  # the better overlap wins
             instance("tweezers", 0.9, [320, 320, 380, 380], polygon=True),        # IoU 0.14: no mask
             instance("tweezers", 0.9, [500, 0, 540, 30], polygon=True)]           # nothing there: not added
    with_masks = attach_masks(found, masks)
    assert [{**m, "polygon": []} for m in with_masks] == found   # class, score, box, keypoints as found
    assert [m["polygon"] for m in with_masks] == [masks[0]["polygon"], masks[2]["polygon"], []]
    twins = [instance("tweezers", 0.9, [10, 10, 50, 50]), instance("tweezers", 0.4, [10, 10, 50, 50])]
    assert [bool(m["polygon"]) for m in attach_masks(twins, masks[:1])] == [True, False]   # one mask, used once


def test_shipped_segmentation_model_is_the_default_beside_a_pose_model(data, pose_weights, seg_weights, tmp_path):
    if not SHIPPED_SEG_WEIGHTS.is_file():
        pytest.skip("models/seg_weights.pt is not shipped")
    image = next((data["pose"].parent / "images" / "val").iterdir())
    options = dict(source=image, imgsz=64, conf=LOW_CONF, export=None)
    for name, weights, seg in (("auto", pose_weights, "auto"), ("off", pose_weights, "none"),
                               ("seg", seg_weights, "auto")):
        predict.run(weights=weights, seg_weights=seg, out_dir=tmp_path / name, **options)
    assert (tmp_path / "auto" / "labels_seg").is_dir() and not (tmp_path / "off" / "labels_seg").exists()
    assert not (tmp_path / "seg" / "labels").exists()   # a segmentation --weights gets no second model
    args = predict.parse_opt(["--weights", "w.pt", "--source", "s", "--out_dir", "o"])
    assert args.seg_weights == "auto"


def test_nested_boxes_of_one_class_are_one_instrument_boxed_twice():
    whole = instance("needle_holder", 0.8, [100, 100, 300, 200])
    jaws = instance("needle_holder", 0.5, [250, 140, 300, 180])       # inside the whole tool's box
    other = instance("tweezers", 0.4, [250, 140, 300, 180])           # another class: not a duplicate
    apart = instance("needle_holder", 0.3, [280, 150, 400, 220])      # overlaps, but not nested
    assert nested_duplicates([jaws, whole, other, apart]) == [True, False, False, False]
    assert nested_duplicates([jaws, whole], cover=1.01) == [False, False]   # above 1: off
    assert nested_duplicates([dict(jaws, score=0.8), whole]) == [False, True]   # a tie: the earlier wins


def test_tracking_and_one_euro_smoothing():
    tracker, smoother = Tracker("bytetrack.yaml"), KeypointSmoother(min_cutoff=1.0, beta=0.0)
    rng = np.random.default_rng(0)
    frame = np.zeros((240, 320, 3), np.uint8)
    raw, smooth, ids = [], [], set()
    for k in range(30):
        x = 50 + 2 * k
        inst = instance("tweezers", 0.9, [x, 60, x + 60, 120])
        inst["keypoints"] = [[px + rng.normal(0, 3), py + rng.normal(0, 3), c] for px, py, c in inst["keypoints"]]
        raw.append(np.array(inst["keypoints"])[:, :2] - (x, 60))
        (out,) = smoother.update(tracker.update([inst], frame), t=k / 30)
        ids.add(out["track_id"])
        smooth.append(np.array(out["keypoints"])[:, :2] - (x, 60))
    assert len(ids - {None}) == 1  # one instrument, one track
    jitter = lambda a: np.abs(np.diff(np.array(a[10:]), axis=0)).mean()  # noqa: E731
    assert jitter(smooth) < 0.6 * jitter(raw)
    f = OneEuro(min_cutoff=1.0, beta=0.0)
    f(np.zeros((1, 2)), 0.0)
    assert 0 < f(np.ones((1, 2)), 1 / 30)[0, 0] < 1  # lags a step change: low-pass


@pytest.mark.parametrize("name", ["laufer_P016_balloon1.mp4", "skin_suturing_frames.mp4"])
def test_video_on_real_clips(real_dir, pose_weights, tmp_path, name):
    clip = real_dir / "clips" / name
    if not clip.exists():
        pytest.skip(f"{clip} not present")
    record = video.run(weights=pose_weights, video=clip, out_dir=tmp_path, imgsz=128, conf=LOW_CONF, export=None,
                       stride=10, max_frames=4, track="bytetrack.yaml")
    assert record["frames_done"] == 4 and record["complete"]
    assert len(read_video(tmp_path / "annotated.mp4")) == 4
    lines = [json.loads(x) for x in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert [x["frame"] for x in lines] == [0, 10, 20, 30]
    w, h = record["size"]
    for line in lines:
        for inst in next(iter(line["images"].values())):
            check_instance(inst, w, h, keypoints=True, polygon=False)


def test_predict_on_real_frames(real_dir, seg_weights, tmp_path):
    images = sorted((real_dir / "oss_dev" / "images").glob("*.jpg"))[:2]
    if not images:
        pytest.skip("no real frames")
    for image in images:
        doc = predict.run(weights=seg_weights, source=image, out_dir=tmp_path, imgsz=128, conf=LOW_CONF)
        h, w = cv2.imread(str(image)).shape[:2]
        for inst in doc["images"][image.name]:
            check_instance(inst, w, h, keypoints=False, polygon=True)


def test_video_of_any_rate_and_name_and_frames_of_one_size(data, pose_weights, tmp_path):
    """A 200 fps clip read every 3rd frame (66.67 fps out: the MPEG-4 writer refused it), a file name with braces
    (frame names were made with str.format), and a folder of frames of two sizes (annotated.mp4 dropped those)."""
    fast = write_clip(tmp_path / "case{1}.mp4", frames=9, fps=200.0)
    record = video.run(weights=pose_weights, video=fast, out_dir=tmp_path / "fast", imgsz=64, conf=LOW_CONF,
                       export=None, stride=3)
    assert record["complete"] and record["frames_done"] == 3
    assert len(read_video(tmp_path / "fast" / "annotated.mp4")) == 3
    assert (tmp_path / "fast" / "labels" / "case{1}_000003.txt").is_file()
    frames = tmp_path / "frames"
    frames.mkdir()
    for k, image in enumerate(read_video(data["clip"])[:3]):
        cv2.imwrite(str(frames / f"{k:03d}.png"), image if k < 2 else cv2.resize(image, (96, 72)))
    with pytest.raises(ValueError, match=r"frame 2 is 96x72, the first was 192x144; a video's frames must be"):
        video.run(weights=pose_weights, video=frames, out_dir=tmp_path / "mixed", imgsz=64, export=None)


def test_predict_leaves_a_datasets_labels_and_same_stem_images_alone(data, pose_weights, tmp_path):
    """`--source data/images --out_dir data` would write over data/labels/, the user's ground truth; a.jpg and
    a.png would share labels/a.txt."""
    images = data["pose"].parent / "images" / "val"
    dataset = tmp_path / "dataset"
    (dataset / "labels").mkdir(parents=True)
    truth = dataset / "labels" / f"{next(images.iterdir()).stem}.txt"
    truth.write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(ValueError, match="holds labels/ that predict.py did not write"):
        predict.run(weights=pose_weights, source=images, out_dir=dataset, imgsz=64)
    assert truth.read_text() == "0 0.5 0.5 0.1 0.1\n"
    twins = tmp_path / "twins"
    twins.mkdir()
    image = cv2.imread(str(next(images.iterdir())))
    cv2.imwrite(str(twins / "a.jpg"), image)
    cv2.imwrite(str(twins / "a.png"), image)
    with pytest.raises(ValueError, match=r"images a\.\* differ only by extension"):
        predict.run(weights=pose_weights, source=twins, out_dir=tmp_path / "out", imgsz=64)


def test_predict_names_image_types_opencv_cannot_read(tmp_path):
    """Ultralytics counts HEIC, AVIF or MPO as images; OpenCV stopped halfway through such a folder."""
    (tmp_path / "a.jpg").write_bytes(cv2.imencode(".jpg", np.zeros((32, 32, 3), np.uint8))[1].tobytes())
    (tmp_path / "b.HEIC").write_bytes(b"phone photo")
    with pytest.raises(ValueError, match=r"OpenCV cannot read \.heic images; convert them to JPEG or PNG"):
        predict.list_images(tmp_path)
    assert predict.list_images(tmp_path / "a.jpg") == [tmp_path / "a.jpg"]


def test_mask_polygons_drop_specks_and_keep_pieces_in_original_pixels():
    import torch
    from ultralytics.engine.results import Masks

    mask = np.zeros((1, 64, 96), np.uint8)
    mask[0, 10:50, 10:20] = 1     # one arm of an open forceps (400 px)
    mask[0, 10:50, 40:46] = 1     # the other arm (240 px): a piece worth keeping
    mask[0, 60:62, 80:82] = 1     # a speck (4 px) far away
    (polygon,) = mask_polygons(Masks(torch.from_numpy(mask), orig_shape=(128, 192)))   # the image is 2x the mask
    assert polygon[:, 0].min() == pytest.approx(20, abs=1) and polygon[:, 0].max() == pytest.approx(90, abs=1)
    assert polygon[:, 1].max() == pytest.approx(98, abs=1)   # the speck at y 120-124 is gone
    filled = np.zeros((128, 192), np.uint8)
    cv2.fillPoly(filled, [np.round(polygon).astype(np.int32)], 1)
    assert filled[20:100, 20:40].mean() > 0.9 and filled[20:100, 80:92].mean() > 0.9 and not filled[40:90, 50:70].any()
