"""End to end through the real BlenderProc path: tiny renders, validated with pycocotools and with
Ultralytics' own dataset loading; resume after a kill; same seed, same annotations."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from conftest import ROOT
from surgpose.schema import CLASSES, KEYPOINTS

TINY = ["--num_images", "4", "--width", "160", "--height", "96", "--samples", "2", "--chunk_size", "2",
        "--val_fraction", "0.25", "--seed", "3", "--camera_distance", "0.3", "0.4"]


def run_generator(out: Path, *extra: str, settings: list[str] = TINY, timeout: float = 600
                  ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "synthetic_data_generator.py"), "--out", str(out), *settings,
                           *extra], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def generate(out: Path, *extra: str, settings: list[str] = TINY) -> subprocess.CompletedProcess:
    proc = run_generator(out, *extra, settings=settings)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def refused(out: Path, *extra: str, settings: list[str] = TINY) -> str:
    """The error of a run that must stop before rendering anything."""
    proc = run_generator(out, *extra, settings=settings, timeout=120)
    assert proc.returncode != 0, proc.stdout[-3000:]
    return proc.stderr


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "output"
    generate(out, "--debug")
    return out


def test_layout_and_records(dataset):
    for sub in ("coco_data/images", "composited/train", "composited/val", "keypoints", "renders", "debug",
                "yolo_data/labels/train", "yolo_data_seg/viz_val"):
        assert (dataset / sub).is_dir(), sub
    records = [json.loads(p.read_text()) for p in sorted((dataset / "keypoints").glob("*.json"))]
    assert len(records) == 4
    assert len(list((dataset / "composited" / "val").glob("*.jpg"))) == 1
    n_instances = 0
    for rec in records:
        image = cv2.imread(str(next((dataset / "composited").glob(f"*/{rec['image']}"))))
        assert image.shape == (96, 160, 3)
        render = cv2.imread(str(dataset / "renders" / rec["render"]), cv2.IMREAD_UNCHANGED)
        assert render.shape == (96, 160, 4)
        for inst in rec["instances"]:
            n_instances += 1
            assert inst["class"] in CLASSES and len(inst["keypoints"]) == len(KEYPOINTS)
            assert inst["area"] <= inst["area_amodal"]
            alpha = render[..., 3] > 0
            x1, y1, x2, y2 = (int(v) for v in inst["bbox"])
            assert alpha[y1:y2, x1:x2].any()  # the visible mask lies on rendered pixels
            for x, y, v in inst["keypoints"]:
                assert v in (0, 1, 2)
                if v:
                    assert 0 <= x < 160 and 0 <= y < 96
    assert n_instances >= 3


def test_coco_reads_back_with_pycocotools(dataset):
    from pycocotools.coco import COCO

    coco = COCO(str(dataset / "coco_data" / "coco_annotations.json"))
    cats = coco.loadCats(coco.getCatIds())
    assert [c["name"] for c in cats] == list(CLASSES)
    assert all(c["keypoints"] == list(KEYPOINTS) and c["skeleton"] for c in cats)
    records = {json.loads(p.read_text())["image"]: json.loads(p.read_text())
               for p in (dataset / "keypoints").glob("*.json")}
    for img in coco.loadImgs(coco.getImgIds()):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
        assert len(anns) == len(records[img["file_name"]]["instances"])
        assert (dataset / "coco_data" / "images" / img["file_name"]).is_file()
        for ann, inst in zip(anns, records[img["file_name"]]["instances"]):
            mask = coco.annToMask(ann).astype(bool)  # thin instruments at 160x96: only the location is checked
            x, y, w, h = ann["bbox"]
            inside = np.zeros_like(mask)
            inside[max(int(y) - 1, 0):int(y + h) + 2, max(int(x) - 1, 0):int(x + w) + 2] = True
            assert mask.any() and not (mask & ~inside).any()
            assert len(ann["keypoints"]) == 15
    train = json.loads((dataset / "coco_data" / "annotations_train.json").read_text())
    val = json.loads((dataset / "coco_data" / "annotations_val.json").read_text())
    assert len(train["images"]) == 3 and len(val["images"]) == 1
    assert not {i["file_name"] for i in train["images"]} & {i["file_name"] for i in val["images"]}


@pytest.mark.parametrize("folder,task", [("yolo_data", "pose"), ("yolo_data_seg", "segment")])
def test_ultralytics_loads_the_datasets(dataset, folder, task):
    from ultralytics.data import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(dataset / folder / "data.yaml"))
    assert data["names"] == dict(enumerate(CLASSES))
    ds = YOLODataset(img_path=data["train"], data=data, task=task, imgsz=160, augment=False)
    labels = [lb for lb in ds.labels if len(lb["cls"])]
    assert labels
    for lb in labels:
        if task == "pose":
            assert lb["keypoints"].shape == (len(lb["cls"]), 5, 3)
        else:
            assert len(lb["segments"]) == len(lb["cls"])
    batch = ds[0]
    assert batch["img"].shape[0] == 3


def test_killed_run_resumes_to_identical_annotations(dataset, tmp_path):
    out = tmp_path / "resumed"
    cmd = [sys.executable, str(ROOT / "synthetic_data_generator.py"), "--out", str(out), *TINY, "--chunk_size", "1",
           "--debug"]
    # chunk_size differs from the reference run, so resume is checked on its own identity
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((out / "keypoints").glob("*.json"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list((out / "keypoints").glob("*.json")))
    assert 1 <= done_before < 4 and not (out / "yolo_data" / "data.yaml").exists()
    generate(out, "--chunk_size", "1", "--debug")
    recs = sorted((out / "keypoints").glob("*.json"))
    assert [p.stem for p in recs] == ["000000", "000001", "000002", "000003"]
    assert not list(out.rglob(".*.tmp")) and not [p for p in out.rglob(".*") if p.is_file()]
    for p in (out / "composited").rglob("*.jpg"):
        assert cv2.imread(str(p)) is not None
    # a fresh run with the same seed and settings gives the same annotations as the resumed one
    fresh = tmp_path / "fresh"
    generate(fresh, "--chunk_size", "1")
    a = json.loads((out / "coco_data" / "coco_annotations.json").read_text())
    b = json.loads((fresh / "coco_data" / "coco_annotations.json").read_text())
    assert a["annotations"] == b["annotations"] and a["images"] == b["images"]


@pytest.mark.parametrize("flag, key", [(["--seed", "4"], "seed"), (["--samples", "3"], "samples"),
                                       (["--no_hands"], "hands_dir"), (["--no_effects"], "effects"),
                                       (["--camera_distance", "0.3", "0.5"], "ranges.camera_distance")])
def test_rerun_with_other_settings_is_refused(dataset, flag, key):
    """Frames rendered another way are never mixed into a dataset: neither other annotations nor another look.
    The error names the setting (the range, not just "ranges") with its recorded and requested values."""
    error = refused(dataset, *flag)
    assert f"({key}: " in error and " recorded, " in error and error.count(" now") == 1, error


@contextmanager
def copy_with_identity(dataset: Path, dest: Path) -> Iterator[dict]:
    """A copy of `dataset` in `dest` whose recorded identity the caller edits, as an older or other run wrote it."""
    shutil.copytree(dataset, dest)
    config = dest / "generator_config.json"
    data = json.loads(config.read_text())
    yield data["identity"]
    config.write_text(json.dumps(data))


def test_folder_of_an_older_version_resumes_when_its_new_ranges_keep_their_defaults(dataset, tmp_path):
    old = tmp_path / "old"
    with copy_with_identity(dataset, old) as identity:
        del identity["ranges"]["distractor_probability"]   # written before scissors existed
        for look in ("samples", "hands_dir", "effects"):   # recorded in its settings only
            del identity[look]
    generate(old)
    assert "ranges" in refused(old, "--distractor_probability", "0.5")
    assert "samples" in refused(old, "--samples", "3")


def test_folder_developed_another_way_is_not_resumed(dataset, tmp_path):
    """Frames developed with another view transform (or none recorded: before it was part of the identity) must
    not be mixed with new ones."""
    for name, film in (("filmic", {"view_transform": "Filmic", "exposure_ev": 0.0}), ("unrecorded", None)):
        old = tmp_path / name
        with copy_with_identity(dataset, old) as identity:
            assert identity.pop("film") == {"view_transform": "Standard", "exposure_ev": -1.5}
            if film:
                identity["film"] = film
        error = refused(old)
        assert "film" in error, error


def test_input_folders_are_compared_by_what_they_hold(dataset, tmp_path):
    """The hands of hands/ gained sleeves under the same folder name: a folder started with the old ones must
    not resume with the new (nor one that recorded no contents at all)."""
    changed = tmp_path / "changed"
    with copy_with_identity(dataset, changed) as identity:
        identity["inputs"]["hands_dir"] = "0123456789ab"
    assert "inputs.hands_dir: 0123456789ab recorded, " in refused(changed)
    unrecorded = tmp_path / "unrecorded"
    with copy_with_identity(dataset, unrecorded) as identity:
        del identity["inputs"]
    assert "inputs: what the input folders held was not recorded" in refused(unrecorded)


def test_a_frame_whose_image_was_deleted_is_rendered_again(dataset, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(dataset, out)
    image = next((out / "composited" / "train").glob("*.jpg"))
    image.unlink()
    generate(out)
    assert image.is_file()
    a = json.loads((out / "coco_data" / "coco_annotations.json").read_text())
    assert a["annotations"] == json.loads((dataset / "coco_data" / "coco_annotations.json").read_text())["annotations"]


def test_runs_from_another_folder_with_relative_paths(tmp_path):
    """The render workers run in the repository; relative --out and --hands_dir are the user's, not the repo's."""
    shutil.copytree(ROOT / "hands", tmp_path / "my_hands")
    proc = subprocess.run([sys.executable, str(ROOT / "synthetic_data_generator.py"), "--out", "rel", "--hands_dir",
                           "my_hands", *TINY], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "rel" / "yolo_data" / "data.yaml").is_file() and not (ROOT / "rel").exists()
    recorded = json.loads((tmp_path / "rel" / "generator_config.json").read_text())["settings"]
    assert recorded["hands_dir"] == str(tmp_path / "my_hands")


HDRI = ROOT.parent / "shared" / "hdri"


def test_full_scene_renders_opaque_frames(tmp_path):
    out = tmp_path / "full"
    generate(out, "--full_scene")
    render = cv2.imread(str(next((out / "renders").glob("*.png"))), cv2.IMREAD_UNCHANGED)
    assert render.shape[2] == 3 or (render[..., 3] == 255).all()  # the work surface fills the frame
    assert (out / "yolo_data" / "data.yaml").is_file()


def test_amodal_masks_with_two_workers(tmp_path, dataset):
    out = tmp_path / "amodal"
    extra = ["--amodal", "--workers", "2"] + (["--hdri", str(HDRI)] if HDRI.is_dir() else [])
    generate(out, *extra)
    modal = json.loads((dataset / "coco_data" / "coco_annotations.json").read_text())["annotations"]
    amodal = json.loads((out / "coco_data" / "coco_annotations.json").read_text())["annotations"]
    assert len(modal) == len(amodal)  # same seed: same instruments; only the masks differ
    assert all(a["area"] >= m["area"] for m, a in zip(modal, amodal))
    assert sum(a["area"] for a in amodal) > sum(m["area"] for m in modal)


def test_shards_at_the_same_time_then_merge_equal_a_single_run(tmp_path, dataset):
    """A job array's shards render into one folder at the same time; none may touch another's files."""
    out = tmp_path / "sharded"
    shards = [subprocess.Popen([sys.executable, str(ROOT / "synthetic_data_generator.py"), "--out", str(out), *TINY,
                                "--shard", shard, "--debug"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for shard in ("0/2", "1/2")]
    for proc in shards:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
        hint = stdout
    assert not (out / "yolo_data" / "data.yaml").exists()
    assert sorted(p.name for p in (out / "logs").glob("*.log")) == ["shard0of2_worker_0.log", "shard1of2_worker_0.log"]
    assert "no rendered frames to merge" in refused(tmp_path / "nothing", "--merge", settings=[])
    assert f"--out {out} --merge" in hint
    generate(out, "--merge", settings=[])  # as the hint says: the settings come from the folder
    assert not (out / ".tmp").exists() and not list(out.rglob(".*.tmp"))
    a = json.loads((out / "coco_data" / "coco_annotations.json").read_text())
    b = json.loads((dataset / "coco_data" / "coco_annotations.json").read_text())
    assert a["annotations"] == b["annotations"]


def test_user_meshes_from_tools_dir(tmp_path):
    tools = tmp_path / "tools"
    subprocess.run([sys.executable, str(ROOT / "data_generation" / "generate_tools.py"), "--out", str(tools),
                    "--count", "2"], cwd=ROOT, check=True, capture_output=True)
    out = tmp_path / "user"
    generate(out, "--tools_dir", str(tools), "--no_hands")
    records = [json.loads(p.read_text()) for p in (out / "keypoints").glob("*.json")]
    assert sum(len(r["instances"]) for r in records) >= 2


def test_scissors_are_rendered_but_never_labelled(tmp_path):
    out = tmp_path / "scissors"
    generate(out, "--distractor_probability", "1", "--tools", "1", "1", "--no_hands")
    records = [json.loads(p.read_text()) for p in sorted((out / "keypoints").glob("*.json"))]
    assert all(r["meta"]["distractors"] == 1 for r in records)
    coco = json.loads((out / "coco_data" / "coco_annotations.json").read_text())
    assert {c["name"] for c in coco["categories"]} == set(CLASSES)
    unlabelled = []
    for rec in records:
        render = cv2.imread(str(out / "renders" / rec["render"]), cv2.IMREAD_UNCHANGED)
        labelled = np.zeros(render.shape[:2], np.uint8)
        for inst in rec["instances"]:
            for poly in inst["polygons_amodal"]:
                cv2.fillPoly(labelled, [np.round(poly).astype(np.int32)], 1)
        labelled = cv2.dilate(labelled, np.ones((5, 5), np.uint8))
        unlabelled.append(int(((render[..., 3] > 128) & (labelled == 0)).sum()))
    # the scissors are in the picture (on the film, outside every instrument's full silhouette)
    assert sum(u > 30 for u in unlabelled) >= 3, unlabelled
