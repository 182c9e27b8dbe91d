"""Phase 2: train a YOLO pose or segmentation model on a Phase 1 `data.yaml`, with operating-room augmentation.

    python train.py --data output/yolo_data/data.yaml --epochs 100 --imgsz 640   # yolov8s-pose, real-image start
    python train.py --data output/yolo_data_seg/data.yaml --model yolov8s-seg.yaml --freeze 10
    python train.py --data output/yolo_data/data.yaml --model yolo11n-pose.yaml --pretrained none  # from scratch
    python train.py --data output/yolo_data/data.yaml --model runs/pose/train/weights/best.pt  # fine-tune
    python train.py --resume runs/pose/train/weights/last.pt
    python train.py --data ... mosaic=0.5 degrees=20          # any other Ultralytics train argument
    python train.py --data output/yolo_data/data.yaml --real_data data/real_photos/data.yaml --real_fraction 0.3

`--real_data` (datasets written by import_labels.py) mixes real images into the training list so that
`--real_fraction` of it is real; their box-only instruments (no keypoints) train boxes and classes only.

The task comes from the data (`kpt_shape` means pose, otherwise segmentation) and must match the model.
Outputs land in `runs/<project>/<name>/`: `weights/{best,last}.pt`, `results.csv` and plots.
"""
from __future__ import annotations

import argparse
import difflib
import functools
import hashlib
import inspect
import json
import math
import random
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from surgpose import offline

offline.configure()

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from ultralytics import YOLO  # noqa: E402
from ultralytics.cfg import DEFAULT_CFG_DICT, check_cfg, smart_value  # noqa: E402
from ultralytics.cfg import _handle_deprecation as renamed_by_ultralytics  # noqa: E402  (as its train() does)
from ultralytics.utils import LOGGER  # noqa: E402
from ultralytics.data.utils import IMG_FORMATS, check_det_dataset, img2label_paths  # noqa: E402
from ultralytics.utils.loss import E2ELoss  # noqa: E402

from ultralytics.nn.tasks import load_checkpoint as torch_load_checkpoint  # noqa: E402
from ultralytics.utils.torch_utils import intersect_dicts, unwrap_model  # noqa: E402

from surgpose import pretrained as starts  # noqa: E402
from surgpose.augment import OperatingRoom, ramp_strength  # noqa: E402
from surgpose.cli import (  # noqa: E402
    available_device, check_share, non_negative_int, positive_int, runs_dir, share, user_errors_in_one_line)
from surgpose.files import write_text  # noqa: E402
from surgpose.schema import CLASSES, NUM_KEYPOINTS  # noqa: E402
from surgpose.yolo import POSE_VALUES, is_box_only  # noqa: E402

#: Ultralytics' nominal batch size: gradients accumulate up to it.
NOMINAL_BATCH = 64

#: Share of real images in training with --real_data, unless --real_fraction says otherwise.
REAL_FRACTION = 0.3

#: Ultralytics train arguments that `run` sets itself, beyond those it takes as options.
SET_BY_RUN = ("augmentations",)

#: Train arguments Ultralytics takes beyond its defaults (its check_dict_alignment allows these).
ULTRALYTICS_EXTRA_KEYS = ("augmentations", "save_dir")

#: OKS tolerance of the keypoint *loss* (Ultralytics' default for custom keypoints, 1/K). The schema's tight
#: sigmas score validation, but in the loss they saturate 1 - exp(-e) for a tip that starts a few grid cells
#: from its anchor: no gradient, and keypoints never learn from scratch (pose loss flat, pose mAP 0).
LOSS_SIGMA = 1 / NUM_KEYPOINTS


def training_keypoint_loss(trainer: Any) -> None:
    """on_pretrain_routine_end: the pose loss reads `model.kpt_oks_sigmas` (set from data.yaml), validation
    reads data.yaml itself; loosen the first only, and rebuild the loss with it, keeping box-only instances out
    of its keypoint terms (`LabelledKeypointsOnly`)."""
    model = unwrap_model(trainer.model)
    if getattr(model, "kpt_oks_sigmas", None) is not None:
        model.kpt_oks_sigmas = [LOSS_SIGMA] * NUM_KEYPOINTS
        model.criterion = labelled_keypoints_criterion(model, getattr(model, "criterion", None))


def add_training_callbacks(net: YOLO) -> YOLO:
    """The callbacks of every train.py run, fresh or resumed: the augmentation ramp and the keypoint loss."""
    net.add_callback("on_train_epoch_start", ramp_strength)
    net.add_callback("on_pretrain_routine_end", training_keypoint_loss)
    return net


class LabelledKeypointsOnly:
    """Mixin for Ultralytics' pose losses: the keypoint position loss and the keypoint-visibility (kobj) loss
    over the anchors of instruments whose keypoints are labelled, none of a box-only one's (`is_box_only`).

    Stock, visibility 0 keeps a keypoint out of the position loss, but kobj still trains its confidence toward
    0, so box-only real photographs would teach that keypoints on real instruments are invisible. Here their
    anchors leave both terms, sums and means alike; box, class and DFL losses are untouched. The mark is per
    instance and survives mosaic, affine, flips and clipping (surgpose/yolo.py), so mixed batches work.
    Without box-only instances the loss is Ultralytics' own."""

    def calculate_keypoints_loss(self, masks: Any, target_gt_idx: Any, keypoints: Any, *rest: Any) -> Any:
        labelled = masks & ~is_box_only(keypoints).gather(1, target_gt_idx)
        return super().calculate_keypoints_loss(labelled, target_gt_idx, keypoints, *rest)


@functools.cache
def _labelled_only(loss_class: type) -> type:
    return type(f"LabelledKeypointsOnly{loss_class.__name__}", (LabelledKeypointsOnly, loss_class), {})


def labelled_keypoints_criterion(model: Any, current: Any = None) -> Any:
    """The model's own pose criterion (v8PoseLoss, PoseLoss26, or either inside E2ELoss for end-to-end heads)
    with `LabelledKeypointsOnly` mixed in; the end-to-end schedule of a resumed run (`current`) carries over.
    Checkpoints never hold it: Ultralytics strips the criterion when it saves."""
    stock = model.init_criterion()
    if not isinstance(stock, E2ELoss):
        return _labelled_only(type(stock))(model)
    criterion = E2ELoss(model, _labelled_only(type(stock.one2many)))
    if isinstance(current, E2ELoss):
        criterion.updates, criterion.o2m, criterion.o2o = current.updates, current.o2m, current.o2o
    return criterion


def default_model(task: str) -> str:
    """The architecture the fetched real-image start fits (YOLOv8s), for this task."""
    return f"yolov8s-{'pose' if task == 'pose' else 'seg'}.yaml"


def pretrained_for(model: str | Path, pretrained: str | Path | None) -> Path | None:
    """The checkpoint to start `model` from: `pretrained` itself, None for 'none', and by default (None) the
    fetched real-image start when `model` is a .yaml it fits (a .pt is fine-tuned whole, a .yaml of another
    architecture is built from scratch)."""
    if isinstance(pretrained, str) and pretrained.lower() == "none":
        return None
    if Path(model).suffix != ".yaml":
        if pretrained is not None:
            raise ValueError(f"--pretrained goes with a .yaml --model; {model} is fine-tuned whole (drop --pretrained)")
        return None
    if pretrained is not None:
        if not Path(pretrained).is_file():
            raise FileNotFoundError(f"--pretrained {pretrained} not found")
        return Path(pretrained)
    start = starts.default_for(model)
    if start is None:
        return None
    path = starts.fetched(start)
    if path is None:
        raise FileNotFoundError(f"the real-image start for {Path(model).name} ({start.requirement}) is not in "
                                f"{starts.cache_dir()}: run make env (or python -m surgpose.pretrained), "
                                "or pass --pretrained none to train from scratch")
    return path


def transferable(net: YOLO, checkpoint: Path) -> tuple[int, int]:
    """How many tensors of `checkpoint` fit `net` built for this project's classes and keypoints, by name and shape
    as Ultralytics transfers them: (transferred, of the model's). Refused when the file is no YOLO checkpoint or
    nothing fits, before any training."""
    try:
        weights, _ = torch_load_checkpoint(str(checkpoint))
        source = weights.float().state_dict()
    except Exception as err:   # pickles of other things, truncated files, ...
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"--pretrained {checkpoint} is not an Ultralytics checkpoint: {first}") from None
    shape = {"data_kpt_shape": (NUM_KEYPOINTS, 3)} if net.task == "pose" else {}
    target = type(net.model)(net.model.yaml, nc=len(CLASSES), verbose=False, **shape).state_dict()
    fits = intersect_dicts(source, target)
    if not any(tensor.ndim >= 2 for tensor in fits.values()):   # BatchNorm vectors of one width fit by chance
        raise ValueError(f"--pretrained {checkpoint}: none of its layers fit {net.model.yaml.get('yaml_file', 'the model')}")
    return len(fits), len(target)


def data_task(data: dict) -> str:
    """'pose' for a keypoint data.yaml, else 'segment' (the two layouts Phase 1 writes)."""
    return "pose" if data.get("kpt_shape") else "segment"


def image_list(split_entry: str | list[str]) -> list[str]:
    """Absolute paths of the images behind a resolved data.yaml split entry (a folder, a list file or a list
    of either)."""
    paths: list[str] = []
    for entry in map(Path, split_entry if isinstance(split_entry, list) else [split_entry]):
        if entry.is_dir():
            paths += sorted(str(p.resolve()) for p in entry.rglob("*") if p.suffix[1:].lower() in IMG_FORMATS)
        elif entry.is_file():
            paths += [str(Path(line.strip()).resolve()) for line in entry.read_text().splitlines() if line.strip()]
    return paths


def validates(image: str | Path, task: str) -> bool:
    """Whether validation can score `image`: it holds an instrument (an empty image only adds false detections)
    and, for pose, no box-only one (pose mAP would count it as missed)."""
    label = Path(img2label_paths([str(image)])[0])
    rows = [line.split() for line in label.read_text().splitlines() if line.strip()] if label.is_file() else []
    if task != "pose" or not rows:
        return bool(rows)
    keypoints = np.asarray([row[5:] for row in rows if len(row) == POSE_VALUES], float).reshape(-1, NUM_KEYPOINTS, 3)
    return not is_box_only(keypoints).any()


def sampled(pool: Sequence[str], wanted: int, seed: int) -> list[str]:
    """`wanted` images of `pool`: a random sample, the whole pool repeated first when it holds fewer (so a few
    dozen labelled frames still make up their share)."""
    whole, rest = divmod(wanted, len(pool))
    return list(pool) * whole + random.Random(seed).sample(list(pool), rest)


def mix_datasets(base_yaml: str | Path, extra_yaml: str | Path | Sequence[str | Path] | None, extra_fraction: float,
                 seed: int, out_dir: str | Path, flag: str = "real_fraction") -> Path:
    """A data.yaml whose train list is every train image of `base_yaml` plus images of `extra_yaml` (one data.yaml
    or several) making up `extra_fraction` of it (`sampled`), and whose val list is the images of both val splits
    that validation can score (`validates`: a detection dataset's val split is mostly empty photos and box-only
    instruments). train.py mixes real images into synthetic ones with it, refine.py synthetic images into
    pseudo-labelled frames; `flag` names the share in errors."""
    check_share(flag, extra_fraction)
    base = read_dataset(base_yaml)
    train_images, val_images = image_list(base["train"]), image_list(base["val"])
    if not train_images:
        raise ValueError(f"{base_yaml} has no training images")
    extras = [extra_yaml] if isinstance(extra_yaml, (str, Path)) else list(extra_yaml or [])
    pool: list[str] = []
    for path in extras:
        extra = read_dataset(path)
        if data_task(extra) != data_task(base):
            raise ValueError(f"{path} is a {data_task(extra)} dataset, {base_yaml} a {data_task(base)} one: "
                             "mix datasets of one task")
        pool += image_list(extra["train"])
        val_images += image_list(extra["val"])
    if extras and not pool:
        raise ValueError(f"{', '.join(map(str, extras))}: no training images to mix in")
    if pool:
        train_images += sampled(pool, round(len(train_images) * extra_fraction / (1 - extra_fraction)), seed)
    val_images = [p for p in val_images if validates(p, data_task(base))]
    out = Path(out_dir)
    write_text(out / "train.txt", "".join(f"{p}\n" for p in train_images))
    write_text(out / "val.txt", "".join(f"{p}\n" for p in val_images))
    keep = {k: base[k] for k in ("names", "kpt_shape", "flip_idx", "kpt_names", "kpt_oks_sigmas") if k in base}
    return write_text(out / "data.yaml", yaml.safe_dump({"train": "train.txt", "val": "val.txt", **keep},
                                                        sort_keys=False))


def mixed_data_dir(runs: Path, data: str | Path, real_data: Sequence[str | Path], real_fraction: float,
                   seed: int) -> Path:
    """Where train.py writes a mix: named after what it mixes, so a rerun (or `--resume`) finds the same lists
    and two runs with other mixes never overwrite each other's."""
    what = json.dumps([str(Path(data).resolve()), [str(Path(r).resolve()) for r in real_data], real_fraction, seed])
    return runs / "mixed_data" / hashlib.sha1(what.encode()).hexdigest()[:12]


def nominal_batch(batch: int, n_train: int) -> int:
    """Ultralytics steps the optimiser every round(nbs / batch) batches: cap nbs at one epoch's images
    so that a tiny dataset still steps every epoch."""
    if batch < 1:  # auto batch (-1, or a GPU memory fraction): the size is unknown until Ultralytics measures
        return NOMINAL_BATCH
    return max(batch, min(NOMINAL_BATCH, batch * math.ceil(max(n_train, 1) / batch)))


def offline_amp(device: str = "") -> bool | str:
    """Mixed precision that needs no download: Ultralytics checks fp16 AMP by fetching a model, while bf16
    (no loss scaling, no check) runs where the GPU supports it; elsewhere (CPU included) full precision."""
    import torch

    on_gpu = str(device).lower() not in ("cpu", "mps") and torch.cuda.is_available()
    return "bf16" if on_gpu and torch.cuda.is_bf16_supported() else False


def run(
    data: str | Path | None = None,
    model: str | Path | None = None,
    pretrained: str | Path | None = None,
    freeze: int | None = None,
    epochs: int = 100,
    imgsz: int = 640,
    batch: int = 16,
    device: str = "",
    project: str | Path | None = None,
    name: str = "train",
    exist_ok: bool = False,
    warmup_epochs: float = 3.0,
    base_strength: float = 0.3,
    max_strength: float = 0.8,
    clahe_clip: float = 2.0,
    workers: int = 8,
    patience: int = 100,
    seed: int = 0,
    nbs: int | None = None,
    resume: str | Path | bool = False,
    real_data: str | Path | Sequence[str | Path] | None = None,
    real_fraction: float = REAL_FRACTION,
    **overrides: Any,
) -> Path:
    """Train (or resume) and return the run directory holding `weights/{best,last}.pt`; with `real_data`, on
    `data` mixed with those real images (`mix_datasets`, written under `runs/<project>/mixed_data/`)."""
    if resume:
        return _resume(resume, project, name, device, **overrides)
    if data is None:
        raise ValueError("--data is required (a data.yaml from Phase 1: yolo_data or yolo_data_seg)")
    source = read_dataset(data)
    task = data_task(source)
    runs = runs_dir(project or task)
    if real_data:
        real_data = [real_data] if isinstance(real_data, (str, Path)) else list(real_data)
        mixed = mix_datasets(data, real_data, real_fraction, seed,
                             mixed_data_dir(runs, data, real_data, real_fraction, seed))
        n_base = len(image_list(source["train"]))
        n_all = len(image_list(read_dataset(mixed)["train"]))
        print(f"real data: {n_all - n_base} real images beside the {n_base} of {data} ({real_fraction:g} of "
              f"{n_all}) -> {mixed}", flush=True)
        data = mixed
    data_dict = read_dataset(data)
    if task == "pose" and not data_dict.get("kpt_oks_sigmas"):
        LOGGER.warning(f"{data} has no kpt_oks_sigmas: Ultralytics' default for custom keypoints is very loose")
    model = model or default_model(task)
    if Path(model).suffix == ".pt" and not Path(model).is_file():
        raise FileNotFoundError(f"--model {model} not found: nothing is downloaded; build a model from a .yaml "
                                f"(e.g. {default_model(task)}) or fine-tune a .pt of your own")
    start = pretrained_for(model, pretrained)
    net = load_checkpoint(model)
    if net.task != task:
        raise ValueError(f"model {model} is a {net.task!r} model but {data} is a {task!r} dataset; "
                         f"use e.g. {default_model(task)}")
    if start is not None:
        done, of = transferable(net, start)
        print(f"pretrained: transferred {done} of {of} tensors from {start}", flush=True)
        overrides["pretrained"] = str(start)   # Ultralytics' trainer transfers them into the model it builds
    return train_until_done(
        add_training_callbacks(net),
        data=str(data),
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        device=device,
        project=str(runs),
        name=name,
        exist_ok=exist_ok,
        warmup_epochs=warmup_epochs,
        workers=workers,
        patience=patience,
        seed=seed,
        nbs=nbs or nominal_batch(batch, len(image_list(data_dict["train"]))),
        freeze=freeze,
        amp=overrides.pop("amp", offline_amp(device)),
        augmentations=[OperatingRoom(base_strength=base_strength, max_strength=max_strength, clahe_clip=clahe_clip)],
        **overrides,
    )


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: `last` is the checkpoint this run can resume from (None before its first);
    `finished` whether the epochs were all done (Ctrl-C hit the final validation)."""

    def __init__(self, last: Path | None, finished: bool = False):
        super().__init__()
        self.last, self.finished = last, finished

    def advice(self) -> str:
        if self.finished:
            return f"after the last epoch: the weights are in {self.last.parent}"
        if self.last:
            return f"go on with python train.py --resume {self.last}"
        return "before the first checkpoint; rerun the command"


def train_until_done(net: YOLO, resuming: bool = False, **train_args: Any) -> Path:
    """`net.train(...)`; the run directory, or `TrainingInterrupted` on Ctrl-C."""
    started = 0.0 if resuming else time.time()   # a fresh run's own checkpoint, not one left by an earlier run
    try:
        net.train(resume=resuming, **train_args)
    except KeyboardInterrupt:
        save_dir = getattr(net.trainer, "save_dir", None)
        last = Path(save_dir) / "weights" / "last.pt" if save_dir else None
        if last is None or not last.is_file() or last.stat().st_mtime < started:
            raise TrainingInterrupted(None) from None
        try:
            done = finished(last)
        except Exception:   # cut short while Ultralytics wrote it
            raise TrainingInterrupted(None) from None
        raise TrainingInterrupted(last, finished=done) from None
    return Path(net.trainer.save_dir)


def load_checkpoint(model: str | Path) -> YOLO:
    """An Ultralytics model from a .yaml or .pt, one-line errors for a file that is not a checkpoint."""
    try:
        return YOLO(str(model))
    except FileNotFoundError:
        raise
    except Exception as err:   # Ultralytics raises TypeError, OSError, ... for empty or truncated files
        raise ValueError(f"cannot load {model}: {str(err).strip().splitlines()[0]}") from None


def read_dataset(data: str | Path) -> dict:
    """Ultralytics' reading of a data.yaml, checked against the schema before any training: a dataset of other
    classes or keypoints would train to the end and make weights that predict.py and video.py refuse."""
    try:
        data_dict = check_det_dataset(str(data))
    except (SyntaxError, AssertionError) as err:   # Ultralytics' errors for a file that is no YOLO data.yaml
        raise ValueError(f"{data} is not a YOLO data.yaml: {str(err).strip().splitlines()[0]}") from None
    names = list(data_dict["names"].values())
    if names != list(CLASSES):
        raise ValueError(f"{data} has classes {names}; this project's are {list(CLASSES)} (surgpose/schema.py)")
    if "kpt_shape" in data_dict and list(data_dict["kpt_shape"]) != [NUM_KEYPOINTS, 3]:
        raise ValueError(f"{data} has kpt_shape {data_dict['kpt_shape']}; this project's is [{NUM_KEYPOINTS}, 3] "
                         "(surgpose/schema.py)")
    return data_dict


def finished(weights: str | Path | YOLO) -> bool:
    """Whether a `last.pt` comes from a run that ended: Ultralytics strips the training state then."""
    net = weights if isinstance(weights, YOLO) else YOLO(str(weights))
    return (net.ckpt or {}).get("epoch", -1) < 0


def _resume(resume: str | Path | bool, project: str | Path | None, name: str, device: str, **overrides: Any) -> Path:
    """Continue from `last.pt`; the augmentation and its ramp come back from the checkpoint's arguments."""
    last = Path(resume) if isinstance(resume, (str, Path)) else None
    if last is None:   # train.py's own runs (runs/<task> by default), not refine.py's rounds
        roots = [runs_dir(project)] if project else [runs_dir(task) for task in ("pose", "segment")]
        candidates = sorted((p for root in roots for p in root.glob(f"**/{name}/weights/last.pt")),
                            key=lambda p: p.stat().st_mtime)
        if not candidates:
            raise FileNotFoundError(f"no {name}/weights/last.pt under {' or '.join(map(str, roots))} to resume; "
                                    "pass --resume PATH/last.pt")
        last = candidates[-1]
    if not last.exists():
        raise FileNotFoundError(f"checkpoint to resume not found: {last}")
    net = load_checkpoint(last)
    if finished(net):
        raise ValueError(f"{last} is from a run that finished: nothing to resume; to train on from it, "
                         f"fine-tune: --model {last} --epochs N")
    return train_until_done(add_training_callbacks(net), resuming=True, **({"device": device} if device else {}), **overrides)


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; trailing KEY=VALUE pairs go to Ultralytics unchanged."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=str, help="data.yaml from Phase 1 (yolo_data or yolo_data_seg)")
    p.add_argument("--model", type=str, default=None,
                   help="model .yaml to build (default yolov8s-pose.yaml / yolov8s-seg.yaml) or .pt to fine-tune")
    p.add_argument("--pretrained", type=str, default=None,
                   help="checkpoint whose matching tensors start a .yaml model, or 'none' (default: the real-image "
                        "start that make env fetched, for the YOLOv8s architectures it fits)")
    p.add_argument("--freeze", type=non_negative_int, default=None,
                   help="keep the first N layers as they start (10: YOLOv8s' whole backbone)")
    p.add_argument("--epochs", type=positive_int, default=100)
    p.add_argument("--imgsz", type=positive_int, default=640)
    p.add_argument("--batch", type=int, default=16, help="images per batch (-1: fit to GPU memory)")
    p.add_argument("--device", type=available_device, default="", help="'' auto, cpu, 0, 0,1, mps")
    p.add_argument("--project", type=str, default=None,
                   help="runs/<project>/<name> (default: the task; runs/x and absolute paths are taken as given)")
    p.add_argument("--name", type=str, default="train")
    p.add_argument("--exist_ok", action="store_true", help="reuse runs/<project>/<name> instead of numbering")
    p.add_argument("--warmup_epochs", type=float, default=3.0)
    p.add_argument("--base_strength", type=float, default=0.3, help="operating-room augmentation at epoch 1")
    p.add_argument("--max_strength", type=float, default=0.8, help="operating-room augmentation at the last epoch")
    p.add_argument("--clahe_clip", type=float, default=2.0, help="largest CLAHE clip limit used in augmentation")
    p.add_argument("--workers", type=int, default=8, help="dataloader workers (Ultralytics uses 0 on CPU)")
    p.add_argument("--patience", type=int, default=100, help="epochs without improvement before stopping")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nbs", type=int, default=None, help="nominal batch size (default: 64, capped for tiny data)")
    p.add_argument("--resume", nargs="?", const=True, default=False,
                   help="resume the latest runs/<project>/<name>, or the given last.pt")
    p.add_argument("--real_data", action="append", default=None, metavar="DATA.yaml",
                   help="real images to mix into training (a dataset written by import_labels.py; repeat for "
                        "several)")
    p.add_argument("--real_fraction", type=share, default=None,
                   help=f"share of the training images that are real, with --real_data (default {REAL_FRACTION}): "
                        "--data is used whole, the real images are sampled (repeated when there are too few) to "
                        "make up the share")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="other Ultralytics train arguments")
    opt = p.parse_args(argv)
    if opt.real_fraction is not None and not opt.real_data:
        p.error("--real_fraction goes with --real_data")
    if opt.real_fraction is None:
        opt.real_fraction = REAL_FRACTION
    opt.overrides = parse_overrides(p, opt.overrides, options=vars(opt), fixed=SET_BY_RUN)
    return opt


def parse_overrides(parser: argparse.ArgumentParser, pairs: list[str], options: Iterable[str] = (),
                    fixed: Iterable[str] = ()) -> dict[str, Any]:
    """Trailing KEY=VALUE words as Ultralytics arguments (numbers and booleans typed as Ultralytics does).

    A key that is one of the script's own `options`, or that it sets itself (`fixed`), is refused before any
    work starts: passed on as well, it would end in a clash deep inside the run."""
    bad = [kv for kv in pairs if "=" not in kv]
    if bad:
        parser.error(f"expected KEY=VALUE after the options, got {bad}")
    overrides = {k: smart_value(v) for k, v in (kv.split("=", 1) for kv in pairs)}
    options, fixed = set(options), set(fixed)
    clashes = [f"{k}= (use --{k})" if k in options else f"{k}= ({parser.prog} sets it)"
               for k in overrides if k in options | fixed]
    if clashes:
        parser.error(f"not as KEY=VALUE: {', '.join(clashes)}")
    try:
        check_overrides(overrides)
    except ValueError as err:
        parser.error(str(err))
    return overrides


def check_overrides(overrides: dict[str, Any]) -> None:
    """Ultralytics train arguments checked as Ultralytics checks them, but before any work: a typo or a value out
    of range would otherwise stop the run late (after refine.py's pseudo-labels and records), in a traceback."""
    current = renamed_by_ultralytics(dict(overrides))   # old names (half=, label_smoothing=) mapped or dropped
    known = {*DEFAULT_CFG_DICT, *ULTRALYTICS_EXTRA_KEYS, *inspect.signature(run).parameters} - {"overrides"}
    unknown = [k for k in current if k not in known]
    if unknown:
        hints = [f"{k}=" + (f" (did you mean {' or '.join(near)}?)" if near else "")
                 for k in unknown for near in [difflib.get_close_matches(k, DEFAULT_CFG_DICT, n=2)]]
        raise ValueError(f"not Ultralytics train arguments: {', '.join(hints)}")
    try:
        check_cfg({k: v for k, v in current.items() if k in DEFAULT_CFG_DICT})
    except (TypeError, ValueError) as err:
        raise ValueError(str(err).strip().splitlines()[0]) from None


@user_errors_in_one_line
def main(opt: argparse.Namespace) -> None:
    overrides = vars(opt).pop("overrides")
    try:
        save_dir = run(**vars(opt), **overrides)
    except TrainingInterrupted as stop:
        raise SystemExit(f"interrupted: {stop.advice()}") from None
    print(f"weights: {save_dir / 'weights' / 'best.pt'}")


if __name__ == "__main__":
    main(parse_opt())
