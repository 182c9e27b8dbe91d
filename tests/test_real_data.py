"""Real images in training: the box-only mark through Ultralytics' augmentation pipeline, the pose loss that keeps
box-only instruments out of its keypoint terms (real Ultralytics loss, real batches), and the shared mixing."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from ultralytics.cfg import get_cfg
from ultralytics.data import build_yolo_dataset
from ultralytics.data.utils import check_det_dataset
from ultralytics.models.yolo.pose import PoseTrainer
from ultralytics.nn.tasks import PoseModel
from ultralytics.utils.torch_utils import unwrap_model

import import_labels
import train
from datasets import coco_keypoints_export, detection_export, tiny_dataset
from surgpose.augment import OperatingRoom
from surgpose.schema import CLASSES, NUM_KEYPOINTS
from surgpose.yolo import is_box_only

NH, TW = CLASSES.index("needle_holder"), CLASSES.index("tweezers")
#: Ultralytics' geometric augmentations, strong: instruments are cut by the mosaic and image borders, rotated,
#: scaled and flipped.
HEAVY = dict(mosaic=1.0, degrees=30.0, translate=0.3, scale=0.6, fliplr=0.5)


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    """Needle holders with keypoints (a COCO keypoints export, its tweezers mapped to background) and tweezers
    with boxes only (a detection export, its needle holders mapped to background): in any batch, the class says
    which kind an instrument is."""
    base = tmp_path_factory.mktemp("real_sets")
    coco, images, _ = coco_keypoints_export(base / "coco_export", n=8)
    import_labels.run(source=coco, images=images, out=base / "labelled", map=["tweezers=background"],
                      val_fraction=0.25)
    det = detection_export(base / "det_export", n=8)
    import_labels.run(source=det, out=base / "photos", map=["Mayo Needle Holder=background",
                                                           "DeBakey Dissector=tweezers"],
                      unmapped="background", val_fraction=0.25)
    return {"labelled": base / "labelled" / "data.yaml", "photos": base / "photos" / "data.yaml",
            "mixed": train.mix_datasets(base / "labelled" / "data.yaml", base / "photos" / "data.yaml", 0.5, 0,
                                        base / "mixed"),
            "tiny": tiny_dataset(tmp_path_factory.getbasetemp() / "tiny")["pose"]}


def training_batches(data_yaml: Path, n: int, batch: int = 8, seed: int = 0) -> list[dict]:
    """Batches as Ultralytics' training loader collates them: mosaic, affine, flips and our OperatingRoom."""
    cfg = get_cfg(overrides=dict(task="pose", imgsz=96, **HEAVY))
    cfg.augmentations = [OperatingRoom(base_strength=1.0, max_strength=1.0)]
    info = check_det_dataset(str(data_yaml))
    dataset = build_yolo_dataset(cfg, info["train"], batch=batch, data=info, mode="train")
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)   # Ultralytics draws from all three
    samples = [dataset[i % len(dataset)] for i in range(n * batch)]
    return [dataset.collate_fn(samples[k:k + batch]) for k in range(0, len(samples), batch)]


def test_the_box_only_mark_survives_mosaic_affine_flips_and_operating_room(sets):
    counts = {"box_only_tweezers": 0, "tweezers": 0, "labelled_needle_holders": 0, "needle_holders": 0}
    for batch in training_batches(sets["mixed"], n=4):
        kpts, cls = batch["keypoints"], batch["cls"].view(-1).long()
        box_only = is_box_only(kpts)
        counts["tweezers"] += int((cls == TW).sum())
        counts["box_only_tweezers"] += int((box_only & (cls == TW)).sum())
        counts["needle_holders"] += int((cls == NH).sum())
        counts["labelled_needle_holders"] += int((~box_only & (cls == NH)).sum())
        # a needle holder reads as box-only only when the crop left none of its keypoints in the image
        assert not (box_only & (cls == NH) & (kpts[..., 2] > 0).any(-1)).any()
    assert counts["tweezers"] >= 8 and counts["box_only_tweezers"] == counts["tweezers"], counts
    assert counts["labelled_needle_holders"] >= 0.8 * counts["needle_holders"] >= 8, counts


def keypoint_gradients(criterion, model: PoseModel, batch: dict) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Loss items, the gradient of the loss at each anchor's keypoint outputs, and which anchors the assigner gave
    a box-only instrument (-1 none, 0 labelled, 1 box-only)."""
    model.zero_grad()
    preds = criterion.parse_output(model(batch["img"].float() / 255))
    preds["kpts"].retain_grad()
    loss, items = criterion(preds, batch)
    loss.sum().backward()
    detached = {k: v.detach() if isinstance(v, torch.Tensor) else [f.detach() for f in v] for k, v in preds.items()}
    (fg, gt_idx, *_), _, _ = criterion.get_assigned_targets_and_loss(detached, batch)
    bs = batch["img"].shape[0]
    imgsz = torch.tensor(batch["img"].shape[2:], dtype=torch.float32)
    box_only = is_box_only(criterion._batch_keypoints(batch, bs, imgsz)).gather(1, gt_idx)
    kind = torch.where(fg, box_only.long(), torch.full_like(gt_idx, -1))
    grad = preds["kpts"].grad   # None: no keypoint output reached the loss at all
    return items, (torch.zeros_like(preds["kpts"]) if grad is None else grad).abs().sum(1), kind


def test_box_only_instances_add_nothing_to_the_keypoint_losses_labelled_ones_still_train(sets):
    """A real yolo11n-pose on real training batches: the anchors assigned to a box-only instrument get exactly zero
    gradient from the keypoint position and visibility (kobj) losses, those of labelled instruments do not; Ultralytics'
    own loss pushes the box-only ones' keypoint confidences (kobj) toward 0."""
    model = PoseModel("yolo11n-pose.yaml", nc=len(CLASSES), data_kpt_shape=(NUM_KEYPOINTS, 3), verbose=False)
    model.args = get_cfg()
    model.train()
    ours, stock = train.labelled_keypoints_criterion(model), model.init_criterion()
    assert isinstance(ours, train.LabelledKeypointsOnly) and not isinstance(stock, train.LabelledKeypointsOnly)
    seen = {0: 0, 1: 0}
    for batch in training_batches(sets["mixed"], n=3, seed=1):
        items, grad, kind = keypoint_gradients(ours, model, batch)
        _, stock_grad, stock_kind = keypoint_gradients(stock, model, batch)
        assert torch.equal(kind, stock_kind)   # one assignment: only the keypoint terms differ
        assert (grad[kind == 1] == 0).all() and (grad[kind == 0] > 0).all()
        assert (stock_grad[kind == 1] > 0).all()   # the fact of Ultralytics' loss this guards against
        seen[0], seen[1] = seen[0] + int((kind == 0).sum()), seen[1] + int((kind == 1).sum())
    assert seen[0] > 20 and seen[1] > 20, seen

    photos_only = training_batches(sets["photos"], n=1, seed=2)[0]
    items, _, kind = keypoint_gradients(ours, model, photos_only)
    assert (kind == 1).any() and not (kind == 0).any()
    assert items["pose_loss"] == 0 and items["kobj_loss"] == 0 and items["box_loss"] > 0
    stock_items, _, _ = keypoint_gradients(stock, model, photos_only)
    assert stock_items["kobj_loss"] > 0 and stock_items["box_loss"] == items["box_loss"]

    synthetic = training_batches(sets["tiny"], n=1, seed=3)[0]   # no box-only instrument: Ultralytics' loss exactly
    items, _, _ = keypoint_gradients(ours, model, synthetic)
    stock_items, _, _ = keypoint_gradients(stock, model, synthetic)
    assert all(torch.equal(items[k], stock_items[k]) for k in items)


def test_mixing_makes_up_the_share_and_keeps_box_only_images_out_of_validation(sets, tmp_path):
    labelled, photos = (check_det_dataset(str(sets[k])) for k in ("labelled", "photos"))
    base_train = train.image_list(labelled["train"])
    pool = set(train.image_list(photos["train"]))
    for fraction in (0.5, 0.8):   # 0.8: four times the base, more than the photos hold: they repeat
        written = train.mix_datasets(sets["labelled"], sets["photos"], fraction, 0, tmp_path / str(fraction))
        mixed = yaml.safe_load(written.read_text())
        listed = (tmp_path / str(fraction) / mixed["train"]).read_text().split()
        extra = listed[len(base_train):]
        assert listed[:len(base_train)] == base_train and set(extra) <= pool
        assert len(extra) == round(len(base_train) * fraction / (1 - fraction))
        assert (len(extra) > len(pool)) == (fraction == 0.8) and set(extra) == pool
    val = (tmp_path / "0.8" / "val.txt").read_text().split()
    photo_val = train.image_list(photos["val"])
    assert set(train.image_list(labelled["val"])) <= set(val)
    assert all(train.validates(p, "pose") for p in val) and not all(train.validates(p, "pose") for p in photo_val)
    assert set(val) & set(photo_val) == {p for p in photo_val if train.validates(p, "pose")}
    with pytest.raises(ValueError, match=r"--real_fraction must be in \[0, 1\), got 1"):
        train.mix_datasets(sets["labelled"], sets["photos"], 1.0, 0, tmp_path / "bad")


def test_train_mixes_real_data_and_trains_with_the_labelled_keypoints_loss(sets, tmp_path):
    seen = {"criterion": [], "box_only": 0, "instances": 0}

    class Spy(PoseTrainer):   # Ultralytics' custom-trainer hook: what the first batches hold, which loss runs
        def preprocess_batch(self, batch):
            seen["criterion"].append(type(getattr(unwrap_model(self.model), "criterion", None)))
            seen["box_only"] += int(is_box_only(batch["keypoints"]).sum())
            seen["instances"] += len(batch["cls"])
            return super().preprocess_batch(batch)

    run_dir = train.run(data=sets["tiny"], real_data=[sets["photos"]], real_fraction=0.5, model="yolo11n-pose.yaml",
                        epochs=1, imgsz=64, batch=4, project=tmp_path, name="mix", trainer=Spy, plots=False,
                        val=False, workers=0)
    assert (run_dir / "weights" / "last.pt").is_file()
    args = yaml.safe_load((run_dir / "args.yaml").read_text())
    assert Path(args["data"]).parent.parent == tmp_path / "mixed_data"
    listed = (Path(args["data"]).parent / "train.txt").read_text().split()
    assert sum("/photos/" in p for p in listed) == 8 and len(listed) == 16   # 8 synthetic, as many real
    assert all(issubclass(c, train.LabelledKeypointsOnly) for c in seen["criterion"]) and seen["criterion"]
    assert 0 < seen["box_only"] < seen["instances"]
