"""Phase 2 training: real 1-2 epoch Ultralytics runs on a tiny drawn dataset, and the augmentation proofs."""
from __future__ import annotations

import csv
import random
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
import yaml
from ultralytics.cfg import get_cfg
from ultralytics.data import build_yolo_dataset
from ultralytics.data.utils import check_det_dataset
from ultralytics.models.yolo.pose import PoseTrainer
from ultralytics.models.yolo.segment import SegmentationTrainer

import train
from datasets import TIP_LEFT_BGR, TIP_RIGHT_BGR, tiny_dataset, trained_run
from surgpose.augment import OperatingRoom, find_operating_room, ramped
from surgpose.schema import CLASSES

#: Ultralytics' own augmentations off: any change to a training image then comes from ours.
NO_ULTRALYTICS_AUG = dict(mosaic=0.0, fliplr=0.0, hsv_h=0.0, hsv_s=0.0, hsv_v=0.0, translate=0.0, scale=0.0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.getbasetemp() / "tiny")


def test_operating_room_transform():
    rng = np.random.default_rng(0)
    image = rng.integers(60, 200, (96, 128, 3), dtype=np.uint8)
    t = OperatingRoom(base_strength=0.0, max_strength=1.0)
    assert np.array_equal(t(image=image)["image"], image), "strength 0 must be the identity"
    t.strength = 1.0
    diffs = [np.abs(t(image=image)["image"].astype(int) - image).mean() for _ in range(10)]
    assert np.mean(diffs) > 5, diffs
    restored = A.from_dict(A.to_dict(t))  # how Ultralytics stores it in checkpoints
    assert isinstance(restored, OperatingRoom) and restored.strength == 1.0 and restored.max_strength == 1.0
    assert [ramped(0.2, 0.8, p) for p in (0, 0.5, 1, 2)] == pytest.approx([0.2, 0.5, 0.8, 0.8])


def test_augmentation_reaches_training_batches(data, tmp_path):
    """The tensors the model trains on differ from the clean images by our augmentation, as ramped."""
    seen: dict[int, dict[str, torch.Tensor]] = {}

    class Spy(PoseTrainer):  # Ultralytics' documented custom-trainer hook; records each batch it trains on
        def preprocess_batch(self, batch):
            for f, im in zip(batch["im_file"], batch["img"]):
                seen.setdefault(self.epoch, {})[f] = im.clone()
            return super().preprocess_batch(batch)

    train.run(data=data["pose"], epochs=2, imgsz=64, batch=4, project=tmp_path, name="spy",
                         base_strength=0.0, max_strength=1.0, trainer=Spy, plots=False, val=False,
                         **NO_ULTRALYTICS_AUG)
    assert sorted(seen) == [0, 1] and seen[0].keys() == seen[1].keys()
    # epoch 1 at strength 0 is Ultralytics' deterministic letterbox; epoch 2 at strength 1 is not
    diffs = [(seen[0][f].float() - seen[1][f].float()).abs().mean().item() for f in seen[0]]
    assert np.median(diffs) > 3, diffs


def _augmented_samples(data_yaml, task: str, n: int = 12, **hyp):
    """Training samples through the full Ultralytics train pipeline plus ours at full strength."""
    cfg = get_cfg(overrides=dict(task=task, imgsz=128, mosaic=1.0, fliplr=1.0, degrees=25.0, scale=0.3, **hyp))
    cfg.augmentations = [OperatingRoom(base_strength=1.0, max_strength=1.0)]
    info = check_det_dataset(str(data_yaml))
    dataset = build_yolo_dataset(cfg, info["train"], batch=4, data=info, mode="train")
    assert len(list(find_operating_room(dataset.transforms))) == 1
    random.seed(0), np.random.seed(0), torch.manual_seed(0)  # Ultralytics draws from all three
    return [dataset[i % len(dataset)] for i in range(n)]


def _mean_colour(img: np.ndarray, x: float, y: float, r: int = 1) -> np.ndarray:
    h, w = img.shape[:2]
    xi, yi = int(np.clip(x, r, w - 1 - r)), int(np.clip(y, r, h - 1 - r))
    return img[yi - r:yi + r + 1, xi - r:xi + r + 1].reshape(-1, 3).mean(0)


def test_keypoints_follow_geometric_augmentation(data):
    """Mosaic, rotation, scale and a certain horizontal flip: each tip label still sits on its marker,
    and the flip swaps left and right (flip_idx), so tip_left lands on the (mirrored) right-tip marker."""
    red, blue = np.argmax(TIP_LEFT_BGR), np.argmax(TIP_RIGHT_BGR)  # BGR channel of each marker
    checked = swapped = unswapped = 0
    for sample in _augmented_samples(data["pose"], "pose", n=24):
        img = sample["img"].numpy().transpose(1, 2, 0)[..., ::-1]  # CHW RGB -> HWC BGR
        h, w = img.shape[:2]
        for kpts in sample["keypoints"].numpy():
            (xl, yl, vl), (xr, yr, vr) = kpts[0], kpts[1]
            if min(vl, vr) <= 0:
                continue
            left, right = _mean_colour(img, xl * w, yl * h), _mean_colour(img, xr * w, yr * h)
            checked += 1
            # flipped: the tip_left label now marks the physical right tip, drawn blue
            swapped += left[blue] - left[red] > 20 and right[red] - right[blue] > 20
            unswapped += left[red] - left[blue] > 20 and right[blue] - right[red] > 20
    # the rest are markers hidden by the other instrument, cropped, or washed out by blur and glare
    assert checked >= 20 and swapped >= 0.5 * checked and unswapped <= 0.05 * checked, (swapped, unswapped, checked)


def test_masks_follow_geometric_augmentation(data):
    """The instance masks still cover the drawn steel after mosaic, rotation, scaling and flips:
    inside the mask the image is much more steel-like (bright, grey) than outside, unlike a mirrored mask."""
    aligned, mirrored = [], []
    for sample in _augmented_samples(data["seg"], "segment", n=24, overlap_mask=True, mask_ratio=1):
        img = sample["img"].numpy().transpose(1, 2, 0).astype(float)
        steel = img.mean(2) - (img.max(2) - img.min(2))
        steel = (steel - steel.mean()) / steel.std()
        mask = sample["masks"].numpy()[0] > 0
        for m, out in ((mask, aligned), (mask[:, ::-1], mirrored)):
            out.append(steel[m].mean() - steel[~m].mean())
    assert min(aligned) > 0.4 and np.median(aligned) > np.median(mirrored) + 1.0, (aligned, mirrored)


def test_train_pose_one_epoch(data, tmp_path_factory):
    run_dir = trained_run(tmp_path_factory.getbasetemp(), "pose")
    for name in ("weights/best.pt", "weights/last.pt", "results.csv", "results.png", "args.yaml"):
        assert (run_dir / name).is_file(), name
    rows = list(csv.DictReader((run_dir / "results.csv").open()))
    assert len(rows) == 1 and "metrics/mAP50(P)" in rows[0]
    args = yaml.safe_load((run_dir / "args.yaml").read_text())
    assert args["task"] == "pose" and args["nbs"] <= 8  # capped so a tiny dataset still steps every epoch
    ckpt = torch.load(run_dir / "weights" / "best.pt", weights_only=False)
    assert list(ckpt["model"].names.values()) == list(CLASSES)
    assert tuple(ckpt["model"].kpt_shape) == (5, 3)


def test_train_seg_and_resume(data, tmp_path):
    """A segmentation run killed after its first epoch resumes from last.pt and finishes, ramp included."""
    strengths: dict[int, float] = {}

    class Recording(SegmentationTrainer):
        def preprocess_batch(self, batch):
            (transform,) = find_operating_room(self.train_loader.dataset.transforms)
            strengths[self.epoch] = transform.strength
            return super().preprocess_batch(batch)

    class Interrupted(Recording):
        def save_model(self):
            super().save_model()
            raise KeyboardInterrupt  # as if Ctrl-C hit right after the first checkpoint

    with pytest.raises(train.TrainingInterrupted) as stop:
        train.run(data=data["seg"], epochs=3, imgsz=64, batch=4, project=tmp_path, name="seg",
                  base_strength=0.2, max_strength=0.6, trainer=Interrupted, plots=False)
    last = tmp_path / "seg" / "weights" / "last.pt"
    assert stop.value.last == last, "train.py's message names the checkpoint to --resume"
    ckpt = torch.load(last, weights_only=False)
    assert ckpt["epoch"] == 0 and ckpt["train_args"]["augmentations"][0]["transform"]["max_strength"] == 0.6
    run_dir = train.run(resume=last, trainer=Recording)
    assert run_dir == tmp_path / "seg"
    assert len(list(csv.DictReader((run_dir / "results.csv").open()))) == 3
    assert strengths == pytest.approx({0: 0.2, 1: 0.4, 2: 0.6})
    assert torch.load(run_dir / "weights" / "best.pt", weights_only=False)["train_args"]["task"] == "segment"
    # resuming it again (a bash chain rerun): Ultralytics would fall back to training coco8 (a download)
    with pytest.raises(ValueError, match="finished: nothing to resume.*--model .*last.pt --epochs N"):
        train.run(resume=last)

    class StoppedAtOnce(SegmentationTrainer):
        def preprocess_batch(self, batch):
            raise KeyboardInterrupt   # before this run's first checkpoint

    with pytest.raises(train.TrainingInterrupted) as stop:   # the finished run's last.pt is no checkpoint of this one
        train.run(data=data["seg"], epochs=3, imgsz=64, batch=4, project=tmp_path, name="seg", exist_ok=True,
                  trainer=StoppedAtOnce, plots=False)
    assert stop.value.last is None and stop.value.advice() == "before the first checkpoint; rerun the command"


def test_datasets_of_another_schema_or_format_are_refused_before_training(data, tmp_path):
    ours = yaml.safe_load(open(data["pose"]))
    ours["path"] = str((Path(data["pose"]).parent / ours.get("path", ".")).resolve())   # the copies live elsewhere
    other = tmp_path / "coco17.yaml"   # e.g. a COCO-keypoints dataset: 17 keypoints
    other.write_text(yaml.safe_dump({**ours, "kpt_shape": [17, 3]}))
    with pytest.raises(ValueError, match=r"kpt_shape \[17, 3\]; this project's is \[5, 3\]"):
        train.run(data=other, epochs=1, imgsz=64, project=tmp_path)
    classes = tmp_path / "classes.yaml"
    classes.write_text(yaml.safe_dump({**ours, "names": {0: "needle_holder", 1: "forceps"}}))
    with pytest.raises(ValueError, match=r"has classes \['needle_holder', 'forceps'\]"):
        train.run(data=classes, epochs=1, imgsz=64, project=tmp_path)
    (tmp_path / "no_names.yaml").write_text("train: images/train\nval: images/val\n")
    (tmp_path / "coco.json").write_text("{}")
    for wrong in ("no_names.yaml", "coco.json"):
        with pytest.raises(ValueError, match="is not a YOLO data.yaml"):
            train.run(data=tmp_path / wrong, epochs=1, imgsz=64, project=tmp_path)
    assert not list(tmp_path.glob("*/weights"))


def test_task_mismatch_is_a_clear_error(data, tmp_path):
    with pytest.raises(ValueError, match="pose.*segment|segment.*pose"):
        train.run(data=data["seg"], model="yolo11n-pose.yaml", epochs=1, imgsz=64, project=tmp_path)


def test_missing_or_broken_weights_are_one_line_errors_not_downloads(data, tmp_path):
    """Ultralytics would try to download a missing yolo11n-pose.pt (five tracebacks offline) and raise a TypeError
    or OSError for an empty or truncated checkpoint."""
    with pytest.raises(FileNotFoundError, match="yolo11n-pose.pt not found: nothing is downloaded"):
        train.run(data=data["pose"], model="yolo11n-pose.pt", epochs=1, imgsz=64, project=tmp_path)
    (tmp_path / "empty.pt").write_bytes(b"")
    shipped = Path(train.__file__).parent / "models" / "refined_weights.pt"
    (tmp_path / "cut.pt").write_bytes(shipped.read_bytes()[:4096])   # a copy cut short
    for broken in ("empty.pt", "cut.pt"):
        with pytest.raises(ValueError, match=f"cannot load {tmp_path / broken}"):
            train.run(resume=tmp_path / broken)
        with pytest.raises(ValueError, match=f"cannot load {tmp_path / broken}"):
            train.run(data=data["pose"], model=tmp_path / broken, epochs=1, imgsz=64, project=tmp_path)


def test_parse_opt_passes_ultralytics_overrides():
    opt = train.parse_opt(["--data", "d.yaml", "--epochs", "3", "mosaic=0.5", "cos_lr=True"])
    assert opt.epochs == 3 and opt.overrides == {"mosaic": 0.5, "cos_lr": True}


def test_keypoint_loss_trains_with_a_loose_tolerance_and_validation_keeps_the_schema(data):
    """The schema's tight OKS sigmas give a tip a few grid cells off no gradient at all; the loss therefore
    uses 1/K while the validator scores with data.yaml's sigmas."""
    from types import SimpleNamespace

    from ultralytics.nn.tasks import PoseModel
    from ultralytics.utils.loss import KeypointLoss

    from surgpose.schema import KPT_OKS_SIGMAS, NUM_KEYPOINTS

    gt = torch.zeros(1, NUM_KEYPOINTS, 3)
    gt[..., 2] = 2
    pred = torch.full((1, NUM_KEYPOINTS, 2), 5.0, requires_grad=True)  # 5 grid cells off, box area 40 cells²
    for sigmas, alive in ((KPT_OKS_SIGMAS, False), ([train.LOSS_SIGMA] * NUM_KEYPOINTS, True)):
        pred.grad = None
        KeypointLoss(torch.tensor(sigmas))(pred, gt, gt[..., 2] > 0, torch.tensor([[40.0]])).backward()
        assert (pred.grad.abs().max() > 1e-4) == alive

    model = PoseModel("yolo11n-pose.yaml", nc=len(CLASSES), data_kpt_shape=(NUM_KEYPOINTS, 3), verbose=False)
    model.args = get_cfg()
    model.kpt_oks_sigmas = list(KPT_OKS_SIGMAS)  # what Ultralytics sets from data.yaml
    train.training_keypoint_loss(SimpleNamespace(model=model))
    sigmas = model.init_criterion().keypoint_loss.sigmas
    assert torch.allclose(sigmas, torch.full((NUM_KEYPOINTS,), train.LOSS_SIGMA))
    assert check_det_dataset(str(data["pose"]))["kpt_oks_sigmas"] == list(KPT_OKS_SIGMAS)  # validation's
