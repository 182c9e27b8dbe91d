"""Dataset assembly and the standalone converters, on records built from drawn masks.

`build_datasets` must agree with the records through every reader that matters: pycocotools for COCO,
our own parsers and Ultralytics' dataset code for YOLO; it must be deterministic, idempotent and
clean up after frames that disappear. The CLIs must give the same labels from the COCO files.
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from data_generation import build_datasets
from data_generation.generator import CONFIG_NAME
from data_generation.settings import GeneratorSettings
from surgpose import schema
from surgpose.coco import load_coco
from surgpose.files import write_image, write_json
from surgpose.geometry import mask_bbox, mask_to_polygons, polygons_to_mask
from surgpose.records import split_for
from surgpose.schema import Layout
from surgpose.yolo import read_labels

ROOT = Path(__file__).resolve().parents[1]
W, H, N = 320, 192, 10


def bar(p0: np.ndarray, p1: np.ndarray, half_width: float) -> np.ndarray:
    """Quadrilateral of a bar from p0 to p1."""
    d = (p1 - p0) / np.linalg.norm(p1 - p0)
    n = np.array([-d[1], d[0]]) * half_width
    return np.round([p0 + n, p1 + n, p1 - n, p0 - n]).astype(np.int32)


def frame(index: int) -> tuple[np.ndarray, dict]:
    """An image and its record: one instrument per class as a long bar, a 'hand' cutting the bar in two
    on even frames (two visible pieces, hidden joint), and the handles off the image every third frame."""
    rng = np.random.default_rng(index)
    image = rng.integers(40, 90, (H, W, 3), dtype=np.uint8)
    instances = []
    for k, cls in enumerate(schema.CLASSES):
        angle = rng.uniform(-0.3, 0.3)
        d = np.array([math.cos(angle), math.sin(angle)])
        start = np.array([40.0, H * (0.3 + 0.4 * k)])
        if index % 3 == 0 and k == 1:
            start[0] += 120  # handles beyond the right edge
        p0, p1 = start, start + 220 * d
        amodal = np.zeros((H, W), np.uint8)
        cv2.fillPoly(amodal, [bar(p0, p1, 8)], 1)
        modal = amodal.copy()
        if index % 2 == 0:
            hand = bar(p0 + 70 * d, p0 + 110 * d, 20)
            cv2.fillPoly(modal, [hand], 0)
        n = np.array([-d[1], d[0]])
        kpts = [p0 + 3 * n, p0 - 3 * n, p0 + 90 * d, p1 + 4 * n - 6 * d, p1 - 4 * n - 6 * d]
        keypoints = []
        for x, y in kpts:
            if not (0 <= x <= W - 1 and 0 <= y <= H - 1):
                keypoints.append([0.0, 0.0, schema.VIS_OUTSIDE])
            else:
                vis = schema.VIS_VISIBLE if modal[int(round(y)), int(round(x))] else schema.VIS_OCCLUDED
                keypoints.append([float(x), float(y), vis])
        image[modal.astype(bool)] = (200, 200, 205)
        if index % 2 == 0:
            cv2.fillPoly(image, [hand], (180, 120, 60))
        instances.append({
            "class": cls, "bbox": mask_bbox(modal), "keypoints": keypoints, "polygons": mask_to_polygons(modal),
            "bbox_amodal": mask_bbox(amodal), "polygons_amodal": mask_to_polygons(amodal),
            "area": int(modal.sum()), "area_amodal": int(amodal.sum()), "opening": 0.5})
    name = f"{index:06d}.jpg"
    record = {"image": name, "render": f"{index:06d}.png", "width": W, "height": H, "index": index,
              "camera": {"K": np.eye(3).tolist(), "world_to_cam": np.eye(4).tolist()},
              "instances": instances, "meta": {"test": True}}
    return image, record


def make_output(root: Path, n: int = N) -> dict[int, dict]:
    """A generator output folder: records and composited images, all in composited/train."""
    records = {}
    for index in range(n):
        image, record = frame(index)
        write_image(root / Layout.COMPOSITED / "train" / record["image"], image)
        write_json(root / Layout.KEYPOINTS / f"{index:06d}.json", record)
        records[index] = record
    return records


def snapshot(root: Path) -> dict[str, str]:
    """Content hash of every file under root."""
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict[int, dict], dict[str, list[dict]]]:
    root = tmp_path_factory.mktemp("out")
    records = make_output(root)
    splits = build_datasets.run(str(root), seed=3, val_fraction=0.25)
    return root, records, splits


def test_split_follows_split_for_and_moves_images(built):
    root, records, splits = built
    for split in Layout.SPLITS:
        expected = sorted(r["image"] for i, r in records.items() if split_for(i, N, 3, 0.25) == split)
        assert sorted(r["image"] for r in splits[split]) == expected
        assert sorted(p.name for p in (root / Layout.COMPOSITED / split).iterdir()) == expected
        for dataset in (Layout.YOLO_POSE, Layout.YOLO_SEG):
            assert sorted(p.name for p in (root / dataset / "images" / split).iterdir()) == expected
    assert len(splits["val"]) == math.ceil(N / 4)


def test_coco_files_through_pycocotools(built):
    root, records, splits = built
    all_coco = load_coco(root / Layout.COCO / "coco_annotations.json")
    assert len(all_coco.getImgIds()) == N and len(all_coco.getAnnIds()) == N * len(schema.CLASSES)
    cats = all_coco.loadCats(all_coco.getCatIds())
    assert [c["name"] for c in cats] == list(schema.CLASSES)
    assert all(c["keypoints"] == list(schema.KEYPOINTS) for c in cats)
    assert all(c["skeleton"] == [[a + 1, b + 1] for a, b in schema.SKELETON] for c in cats)
    ids = {}
    for split in Layout.SPLITS:
        coco = load_coco(root / Layout.COCO / f"annotations_{split}.json")
        ids[split] = set(coco.getImgIds())
        assert sorted(img["file_name"] for img in coco.loadImgs(coco.getImgIds())) == \
            sorted(r["image"] for r in splits[split])
        for img in coco.loadImgs(coco.getImgIds()):
            assert (root / Layout.COCO / "images" / img["file_name"]).is_file()
            record = records[img["id"] - 1]
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
            assert len(anns) == len(record["instances"])
            for ann, inst in zip(anns, record["instances"]):
                assert schema.CLASSES[ann["category_id"] - 1] == inst["class"]
                assert np.allclose(np.reshape(ann["keypoints"], (-1, 3)), inst["keypoints"])
                assert ann["num_keypoints"] == sum(v > 0 for _, _, v in inst["keypoints"])
                assert ann["iscrowd"] == 0 and len(ann["segmentation"]) == len(inst["polygons"])
                assert abs(coco.annToMask(ann).sum() - inst["area"]) / inst["area"] < 0.12
    assert not ids["train"] & ids["val"] and ids["train"] | ids["val"] == set(all_coco.getImgIds())


def test_yolo_labels_parse_back_to_the_records(built):
    root, records, splits = built
    for split, recs in splits.items():
        for rec in recs:
            stem = Path(rec["image"]).stem
            pose = read_labels(root / Layout.YOLO_POSE / "labels" / split / f"{stem}.txt", "pose", W, H)
            seg = read_labels(root / Layout.YOLO_SEG / "labels" / split / f"{stem}.txt", "segment", W, H)
            assert len(pose) == len(seg) == len(rec["instances"])
            for p, s, inst in zip(pose, seg, rec["instances"]):
                assert p["class"] == s["class"] == inst["class"] and "score" not in p
                assert np.allclose(p["bbox"], inst["bbox"], atol=0.01)
                assert np.allclose(p["keypoints"], inst["keypoints"], atol=0.01)
                truth = polygons_to_mask(inst["polygons"], H, W)
                back = polygons_to_mask([s["polygon"]], H, W)
                assert (truth & back).sum() / (truth | back).sum() > 0.9  # both pieces of a cut instrument


def test_viz_overlays_exist(built):
    root, _, splits = built
    for split, recs in splits.items():
        names = sorted(p.name for p in (root / Layout.YOLO_SEG / f"viz_{split}").iterdir())
        assert names == sorted(r["image"] for r in recs)
        assert cv2.imread(str(root / Layout.YOLO_SEG / f"viz_{split}" / names[0])).shape == (H, W, 3)


@pytest.mark.parametrize("task", ["pose", "segment"])
def test_ultralytics_loads_both_datasets(built, task):
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    root, records, splits = built
    folder = Layout.YOLO_POSE if task == "pose" else Layout.YOLO_SEG
    data = check_det_dataset(root / folder / "data.yaml")
    assert data["names"] == dict(enumerate(schema.CLASSES))
    if task == "pose":
        assert data["kpt_shape"] == [schema.NUM_KEYPOINTS, 3] and data["flip_idx"] == list(schema.FLIP_IDX)
        assert data["kpt_oks_sigmas"] == list(schema.KPT_OKS_SIGMAS)
    cfg = get_cfg(overrides={"task": task, "imgsz": W})
    for split in Layout.SPLITS:
        ds = build_yolo_dataset(cfg, data[split], 2, data, mode="train" if split == "train" else "val")
        assert len(ds.labels) == len(splits[split])
        for label in ds.labels:
            rec = records[int(Path(label["im_file"]).stem)]
            assert len(label["cls"]) == len(rec["instances"])
            if task == "pose":
                kpts = label["keypoints"]
                assert kpts.shape == (len(rec["instances"]), schema.NUM_KEYPOINTS, 3)
                truth = np.array([inst["keypoints"] for inst in rec["instances"]])
                assert np.allclose(kpts[..., :2] * (W, H), truth[..., :2], atol=0.01)
                assert np.array_equal(kpts[..., 2], truth[..., 2])
            else:
                assert len(label["segments"]) == len(rec["instances"])
                assert all(s.ndim == 2 and s.shape[1] == 2 and len(s) >= 3 for s in label["segments"])
        item = ds[0]  # the full transform pipeline (mosaic, flips with flip_idx for pose, formatting)
        assert item["img"].shape[0] == 3
        if task == "pose":
            assert item["keypoints"].shape[1:] == (schema.NUM_KEYPOINTS, 3)
        else:
            assert item["masks"].ndim == 3


def test_rerun_is_identical_and_removes_stale_frames(tmp_path):
    make_output(tmp_path, n=6)
    build_datasets.run(str(tmp_path), val_fraction=0.5)
    first = snapshot(tmp_path)
    build_datasets.run(str(tmp_path), val_fraction=0.5)
    assert snapshot(tmp_path) == first

    with pytest.raises(ValueError, match="6 frames split as 0 train and 6 val .* each split needs a frame"):
        build_datasets.run(str(tmp_path), val_fraction=0.9)
    build_datasets.run(str(tmp_path), val_fraction=0.5)
    gone = tmp_path / Layout.KEYPOINTS / "000004.json"
    gone.unlink()
    build_datasets.run(str(tmp_path), val_fraction=0.5, num_images=6)
    derived = [k for k in snapshot(tmp_path) if not k.startswith(Layout.COMPOSITED)]  # the generator's own
    assert not [k for k in derived if Path(k).stem == "000004"]
    coco = load_coco(tmp_path / Layout.COCO / "coco_annotations.json")
    assert len(coco.getImgIds()) == 5


def test_new_split_moves_images_and_drops_the_label_cache(tmp_path):
    make_output(tmp_path, n=8)
    build_datasets.run(str(tmp_path), seed=0, val_fraction=0.25, viz=False)
    cache = tmp_path / Layout.YOLO_SEG / "labels" / "train.cache"
    cache.write_bytes(b"stale")  # what Ultralytics leaves beside the labels
    build_datasets.run(str(tmp_path), seed=0, val_fraction=0.25, viz=False)
    assert cache.exists(), "unchanged labels keep Ultralytics' cache"
    splits = build_datasets.run(str(tmp_path), seed=1, val_fraction=0.25, amodal=True, viz=False)
    assert not cache.exists()
    for split in Layout.SPLITS:
        expected = sorted(r["image"] for r in splits[split])
        assert sorted(p.name for p in (tmp_path / Layout.COMPOSITED / split).iterdir()) == expected
        assert sorted(p.name for p in (tmp_path / Layout.YOLO_POSE / "labels" / split).iterdir()) == \
            sorted(n.replace(".jpg", ".txt") for n in expected)
    coco = load_coco(tmp_path / Layout.COCO / "coco_annotations.json")
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[1]))[0]
    assert ann["area"] == frame(0)[1]["instances"][0]["area_amodal"]


def test_missing_image_and_bad_record_are_clear_errors(tmp_path):
    make_output(tmp_path, n=3)
    (tmp_path / Layout.COMPOSITED / "train" / "000001.jpg").unlink()
    with pytest.raises(ValueError, match="000001.jpg"):
        build_datasets.run(str(tmp_path))
    (tmp_path / Layout.KEYPOINTS / "000002.json").write_text('{"image": "000002.jpg"}')
    with pytest.raises(ValueError, match="000002.json"):
        build_datasets.run(str(tmp_path))
    result = cli("build_datasets.py", "--out", tmp_path)
    assert result.returncode != 0 and result.stderr.strip().startswith("error:") and "000002.json" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_in_a_generated_folder_splits_as_the_generator_recorded(tmp_path):
    """Without flags, build_datasets.py must not re-split a dataset the generator made with another seed."""
    make_output(tmp_path, n=8)
    settings = GeneratorSettings(out=str(tmp_path), num_images=8, seed=1, val_fraction=0.25, amodal=True)
    write_json(tmp_path / CONFIG_NAME, {"settings": settings.to_json()})
    expected = build_datasets.run(str(tmp_path), seed=1, val_fraction=0.25, amodal=True, num_images=8, viz=False)
    assert [r["image"] for r in expected["val"]] != \
        [r["image"] for r in build_datasets.run(str(tmp_path), viz=False)["val"]]   # run()'s own defaults differ
    result = cli("build_datasets.py", "--out", tmp_path, "--no_viz")
    assert result.returncode == 0, result.stderr
    for split in Layout.SPLITS:
        assert sorted(p.name for p in (tmp_path / Layout.COMPOSITED / split).iterdir()) == \
            sorted(r["image"] for r in expected[split])
    coco = load_coco(tmp_path / Layout.COCO / "coco_annotations.json")
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[1]))[0]
    assert ann["area"] == frame(0)[1]["instances"][0]["area_amodal"]   # --amodal as recorded
    assert cli("build_datasets.py", "--out", tmp_path, "--no_viz", "--seed", "0").returncode == 0
    assert sorted(p.name for p in (tmp_path / Layout.COMPOSITED / "val").iterdir()) == \
        sorted(r["image"] for r in build_datasets.run(str(tmp_path), seed=0, val_fraction=0.25, viz=False)["val"])

    # another --amodal is recorded, so a later merge or plain rerun keeps those masks instead of flipping them back
    assert cli("build_datasets.py", "--out", tmp_path, "--no_viz", "--no-amodal").returncode == 0
    assert json.loads((tmp_path / CONFIG_NAME).read_text())["settings"]["amodal"] is False
    assert cli("build_datasets.py", "--out", tmp_path, "--no_viz").returncode == 0
    ann = load_coco(tmp_path / Layout.COCO / "coco_annotations.json").loadAnns([1])[0]
    assert ann["area"] == frame(0)[1]["instances"][0]["area"]

    # a frame the generator has not rendered yet (a shard still running): no dataset that looks complete
    (tmp_path / Layout.KEYPOINTS / "000007.json").unlink()
    result = cli("build_datasets.py", "--out", tmp_path, "--no_viz")
    assert result.returncode != 0 and "1 of the 8 frames" in result.stderr and "not rendered yet" in result.stderr
    assert cli("build_datasets.py", "--out", tmp_path, "--no_viz", "--num_images", "8").returncode == 0


def cli(script: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "data_generation" / script), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("script,folder", [("coco_to_yolo_pose.py", Layout.YOLO_POSE),
                                           ("coco_to_yolo_seg.py", Layout.YOLO_SEG)])
def test_converter_cli_matches_build_datasets(built, tmp_path, script, folder):
    root, _, _ = built
    result = cli(script, "--coco", root / Layout.COCO / "annotations_val.json",
                 "--images", root / Layout.COCO / "images", "--out", tmp_path, "--split", "val")
    assert result.returncode == 0, result.stderr
    ours = sorted((tmp_path / "labels" / "val").iterdir())
    assert [p.name for p in ours] == sorted(p.name for p in (root / folder / "labels" / "val").iterdir())
    for path in ours:
        assert path.read_text() == (root / folder / "labels" / "val" / path.name).read_text()
    assert sorted(p.name for p in (tmp_path / "images" / "val").iterdir()) == \
        [p.name.replace(".txt", ".jpg") for p in ours]
    assert (tmp_path / "data.yaml").read_text().replace(str(tmp_path.resolve()), "X") == \
        (root / folder / "data.yaml").read_text().replace(str((root / folder).resolve()), "X")


@pytest.mark.parametrize("script", ["coco_to_yolo_pose.py", "coco_to_yolo_seg.py", "visualize.py"])
def test_cli_bad_input_is_one_line_error(built, tmp_path, script):
    root, _, _ = built
    missing = cli(script, "--coco", tmp_path / "nope.json", "--images", tmp_path, "--out", tmp_path / "o")
    assert missing.returncode != 0 and "nope.json" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and missing.stderr.startswith("error:")
    no_images = cli(script, "--coco", root / Layout.COCO / "annotations_val.json", "--images", tmp_path,
                    "--out", tmp_path / "o")
    assert no_images.returncode != 0 and no_images.stderr.startswith("error:")


def test_visualize_cli(built, tmp_path):
    root, _, _ = built
    result = cli("visualize.py", "--coco", root / Layout.COCO / "coco_annotations.json",
                 "--images", root / Layout.COCO / "images", "--out", tmp_path, "--max", 3)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000000.jpg", "000001.jpg", "000002.jpg"]


def test_ultralytics_trains_with_our_oks_sigmas_and_keypoint_names(built, tmp_path):
    """Ultralytics 8.4 reads `kpt_oks_sigmas`/`kpt_names` from data.yaml; without them a 5-keypoint skeleton
    would get a flat 1/5 sigma in the pose loss and in validation OKS."""
    from ultralytics.models.yolo.pose import PoseTrainer

    root, _, _ = built
    trainer = PoseTrainer(overrides={"model": "yolo11n-pose.yaml", "data": str(root / Layout.YOLO_POSE / "data.yaml"),
                                     "device": "cpu", "project": str(tmp_path), "verbose": False})
    trainer.model = trainer.get_model(cfg="yolo11n-pose.yaml", verbose=False)
    trainer.set_model_attributes()
    sigmas = trainer.model.init_criterion().keypoint_loss.sigmas
    assert np.allclose(sigmas.tolist(), schema.KPT_OKS_SIGMAS)
    assert trainer.model.kpt_names[0] == list(schema.KEYPOINTS)


def test_a_moved_dataset_still_resolves(built, tmp_path):
    """data.yaml has no absolute path: a dataset copied elsewhere (a cluster, a GPU machine) trains there."""
    from ultralytics.data.utils import check_det_dataset

    root, _, splits = built
    moved = shutil.copytree(root / Layout.YOLO_POSE, tmp_path / "elsewhere")
    data = check_det_dataset(str(moved / "data.yaml"))
    assert Path(data["train"]) == (moved / "images" / "train").resolve()
    assert len(list(Path(data["val"]).glob("*.jpg"))) == len(splits["val"])


def test_frames_without_instruments_are_worth_a_warning(tmp_path, capsys):
    """A camera 50 m away renders frames with nothing labelled: the dataset is made, with a warning."""
    records = make_output(tmp_path, n=6)
    build_datasets.run(str(tmp_path), val_fraction=0.5, viz=False)
    assert "warning" not in capsys.readouterr().err
    for index in range(4):
        write_json(tmp_path / Layout.KEYPOINTS / f"{index:06d}.json", {**records[index], "instances": []})
    build_datasets.run(str(tmp_path), val_fraction=0.5, viz=False)
    assert "warning: 4 of 6 frames have no labelled instrument" in capsys.readouterr().err
