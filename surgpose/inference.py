"""Inference shared by `predict.py` and `video.py`: one model interface, one instance format.

`Detector` loads a pose and/or segmentation model (PyTorch weights or an Ultralytics export), checks
its classes against the schema, runs it at one or several scales and returns instance dicts in
original-image pixels (see `surgpose.schema` and the README). Instances found at several scales are fused
by box overlap (weighted fusion, not a union); beside a pose model, a segmentation model only lends its
masks to the pose model's detections (`attach_masks`), so masks never change what is detected.
`Tracker` puts Ultralytics' trackers on those fused instances and `KeypointSmoother` filters keypoints
along each track with a One-Euro filter.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import logging
import math
import os
import re
import shlex
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from surgpose import console, schema, yolo
from surgpose.cli import available_device, number, positive_float, positive_int, unit_interval
from surgpose.console import shown
from surgpose.video_io import FrameFolder, sample_frames, spread

#: Exports that `Detector` can run, by the suffix each gets beside `<stem>.pt`. Ultralytics makes them with
#: `dynamic=True`: any input size, so a 4:3 video runs at 640x480 rather than padded to 640x640 and one
#: export serves every `--scales` size. `int8` is the OpenVINO export quantised by NNCF (see quantize_openvino),
#: one per footage: `<stem>_int8/<footage>-<key>_int8_openvino_model/` (see Calibration).
EXPORTS = {"onnx": ".onnx", "openvino": "_openvino_model", "int8": "_int8_openvino_model"}

#: Folder beside `<stem>.pt` that holds its INT8 exports, one per footage.
INT8_FOLDER = "_int8"

#: INT8 exports kept per weights (the least recently used beyond these are removed when one is made).
KEEP_INT8_EXPORTS = 4

#: Frames sampled for INT8 calibration (Ultralytics recommends a few hundred; 128 keeps the export near a minute).
CALIBRATION_FRAMES = 128

#: Why an INT8 export cannot be made without frames of the footage it will run on.
NO_CALIBRATION = "--export int8 needs calibration images (video.py and predict.py take them from the input)"

#: Fewest frames an INT8 export should be calibrated on: fewer draw a warning.
MIN_CALIBRATION_FRAMES = 32

#: Fewest frames for `--export auto` to quantise on the CPU. Each footage is calibrated anew (an INT8 model
#: calibrated on one video lost 0.02 on oss_dev, one calibrated on oss_dev's own frames nothing: model card),
#: which costs about a minute per model; INT8 then saves about 30 ms a frame (pose) to 100 ms (pose and masks)
#: over float OpenVINO: it repays itself over roughly a minute of 30 fps video.
AUTO_INT8_FRAMES = 1800

#: Largest outline change allowed when simplifying predicted mask polygons (original pixels).
POLYGON_TOLERANCE_PX = 1.0

#: Inference drops an instance whose box and a higher-scoring box of the same class nest, the smaller lying at
#: least this fraction inside the larger: one instrument boxed twice (the jaws alone beside the whole tool),
#: which Ultralytics' per-class NMS at IoU 0.7 lets through. Curation's `double_box` rule, at inference; chosen
#: on oss_dev (README, Phase 2); above 1: off.
DOUBLE_BOX_COVER = 0.9
#: The shipped pose model that scores best on real frames (models/README.md), `--weights`' default (found from
#: the repository, so scripts run from any folder).
SHIPPED_WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "synthetic_weights.pt"
#: The shipped segmentation model that `--seg_weights auto` puts beside a pose model.
SHIPPED_SEG_WEIGHTS = SHIPPED_WEIGHTS.with_name("seg_weights.pt")

#: Pieces of one predicted mask smaller than this fraction of its largest piece are dropped (`mask_polygons`).
MIN_MASK_PIECE = 0.1

#: Trackers that run on plain detections (the others hook into Ultralytics' predictor internals).
TRACKERS = ("bytetrack.yaml", "botsort.yaml")


def add_model_args(parser: argparse.ArgumentParser, exports: Sequence[str] = tuple(EXPORTS),
                   default_export: str | None = None, conf_help: str = "confidence threshold") -> None:
    """Model and preprocessing flags of every script that runs a model (`predict.py`, `video.py`,
    `evaluate.py`)."""
    parser.add_argument("--imgsz", type=positive_int, default=640, help="inference size (pixels)")
    parser.add_argument("--conf", type=unit_interval, default=0.25, help=conf_help)
    parser.add_argument("--iou", type=unit_interval, default=0.7, help="NMS IoU threshold")
    parser.add_argument("--device", type=available_device, default="", help="'' auto, cpu, 0, mps")
    parser.add_argument("--max_det", type=positive_int, default=300, help="maximum detections per image")
    parser.add_argument("--double_box_cover", type=number(float, 0.0, low_open=False), default=DOUBLE_BOX_COVER,
                        help="drop a box nested this much inside a higher-scoring box of the same class (one "
                             "instrument boxed twice); above 1: keep all")
    parser.add_argument("--scales", type=positive_float, nargs="+", default=[1.0],
                        help="multi-scale inference: imgsz multipliers whose results are fused, e.g. 0.75 1 1.25")
    help_auto = (f"auto: on CPU int8 when the input has {AUTO_INT8_FRAMES}+ frames, else openvino; PyTorch on GPU"
                 if "int8" in exports else "auto: openvino on CPU, PyTorch on GPU")
    help_int8 = ("; int8: OpenVINO quantised on frames of this input (one export per footage), head kept in float "
                 "(fastest on CPU)" if "int8" in exports else
                 "; to score an INT8 model, pass the *_int8_openvino_model/ that video.py or predict.py made")
    parser.add_argument("--export", choices=[*exports, "none", "auto"], default=default_export or "none",
                        help="run an Ultralytics export of .pt weights (made once, cached beside them); " + help_auto
                             + help_int8)
    parser.add_argument("--pre_clahe", action="store_true", help="CLAHE on each image before the model")
    parser.add_argument("--clahe_clip", type=float, default=2.0, help="CLAHE clip limit for --pre_clahe")


def add_inference_args(parser: argparse.ArgumentParser, default_export: str | None = None) -> None:
    """Model, preprocessing and drawing flags shared by `predict.py` and `video.py`."""
    parser.add_argument("--weights", default=str(SHIPPED_WEIGHTS),
                        help="pose or segmentation .pt, .onnx or *_openvino_model/ (default: the shipped "
                             f"{SHIPPED_WEIGHTS.relative_to(SHIPPED_WEIGHTS.parents[1])})")
    parser.add_argument("--seg_weights", default="auto",
                        help="segmentation model whose masks are drawn on the pose model's detections; auto: "
                             f"{SHIPPED_SEG_WEIGHTS.relative_to(SHIPPED_SEG_WEIGHTS.parents[1])} beside a pose "
                             "--weights when it is there; none: no masks (faster)")
    add_model_args(parser, default_export=default_export)
    parser.add_argument("--retina_masks", action="store_true", help="masks at full image resolution")
    parser.add_argument("--draw_kpts", action=argparse.BooleanOptionalAction, default=True,
                        help="draw keypoints and skeleton on overlays")
    parser.add_argument("--kpt_conf", type=unit_interval, default=0.5,
                        help="keypoints below this confidence are not drawn")
    parser.add_argument("--label_conf", action=argparse.BooleanOptionalAction, default=True,
                        help="end each YOLO label line with the instance confidence (curation reads it)")


def resolve_export(export: str | None, device: str = "", calibration_frames: int = 0) -> str | None:
    """`auto` means the fastest backend that fits: PyTorch on a GPU; on the CPU OpenVINO INT8 when the input
    is long enough (AUTO_INT8_FRAMES) to repay calibrating an export on it, else float OpenVINO."""
    if export == "auto":
        import torch

        on_cpu = device == "cpu" or (device in ("", None) and not torch.cuda.is_available())
        if not on_cpu:
            return None
        return "int8" if calibration_frames >= AUTO_INT8_FRAMES else "openvino"
    return None if export in (None, "none") else export


def prefer_fp32_openvino(int8: bool = False) -> None:
    """Keep OpenVINO's CPU plugin in float32 where it would pick bf16: a float export then predicts what
    PyTorch predicts, and where bf16 is also slower, so does an INT8 model's float head.

    On CPUs with AVX512-BF16 OpenVINO 2024 runs float models in bf16 by default. Without AMX tiles that
    measured 1.3-1.5x *slower* than float32 (nano seg, 640x480: 57 vs 40 ms on 2 Xeon cores); with AMX it is
    faster, but moves keypoints by up to 47 px on `oss_dev` (the refined model of 2026-11), so the float export
    is kept in float32 there too, while INT8 (chosen for speed) keeps AMX. Capping oneDNN's ISA below bf16 is how
    Ultralytics itself steers OpenVINO on Windows; a user's own ONEDNN_MAX_CPU_ISA wins, and the cap only
    acts before OpenVINO's CPU plugin first loads in the process.
    """
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text() if cpuinfo.exists() else ""
    if "avx512_bf16" in flags and not (int8 and "amx_bf16" in flags):
        os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_VNNI")


def clahe(image: np.ndarray, clip_limit: float = 2.0, tile: int = 8) -> np.ndarray:
    """Contrast-limited histogram equalisation of the lightness of a BGR image (colours kept)."""
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(tile, tile)).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)


def model_view(image: np.ndarray, pre_clahe: bool = False, clahe_clip: float = 2.0) -> np.ndarray:
    """The image as the model sees it: after the optional CLAHE preprocessing."""
    return clahe(image, clahe_clip) if pre_clahe else image


def read_images(files: Iterable[str | Path], pre_clahe: bool = False,
                clahe_clip: float = 2.0) -> Iterator[tuple[Path, np.ndarray]]:
    """`(path, image the model sees)` for each image file; an unreadable image is an error naming it."""
    for path in map(Path, files):
        image = cv2.imread(str(path))
        if image is None:
            raise ValueError(f"cannot read image {path}")
        yield path, model_view(image, pre_clahe, clahe_clip)


def predict_images(detector: "Detector", files: Iterable[str | Path], pre_clahe: bool = False,
                   clahe_clip: float = 2.0, desc: str = "predict") -> Iterator[tuple[Path, np.ndarray, list[dict]]]:
    """`(path, image the model saw, instances)` for each image file, with a progress bar."""
    from tqdm import tqdm

    for path, seen in read_images(tqdm(list(files), desc=desc, unit="img"), pre_clahe, clahe_clip):
        yield path, seen, detector.predict(seen)


@dataclass(frozen=True)
class Calibration:
    """The frames an INT8 export is calibrated on, and the footage they stand for.

    INT8 activation ranges fit the frames they were measured on: calibrated on a side-view simulator clip,
    the shipped model lost 0.02 on oss_dev's top-down frames, calibrated on those frames nothing (model card).
    So each footage gets its own export, named by `name`: `footage` (the video's or folder's name, for people)
    and `key`, a digest of the calibration files and the preprocessing, so that the same footage finds its
    export again, wherever it lies, and other footage never runs with it.
    """

    footage: str
    key: str
    frames: Callable[[], list[np.ndarray]]   # decoded only when an export is made

    @property
    def name(self) -> str:
        return f"{self.footage}-{self.key}"


def footage_key(files: Iterable[Path], pre_clahe: bool, clahe_clip: float) -> str:
    """8 hex digits naming calibration files by their names, sizes and first 64 KiB (cheap, and unchanged
    when the footage is moved or copied), and the preprocessing the model sees them through."""
    digest = hashlib.sha256(repr((pre_clahe, clahe_clip if pre_clahe else None)).encode())
    for path in files:
        with open(path, "rb") as f:
            digest.update(f"{path.name}\0{path.stat().st_size}\0".encode() + f.read(1 << 16))
    return digest.hexdigest()[:8]


def footage_label(name: str) -> str:
    """A footage name fit for a folder name: letters, digits, '-' and '_', at most 40 characters."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:40] or "footage"


def image_calibration(files: Sequence[str | Path], pre_clahe: bool = False, clahe_clip: float = 2.0) -> Calibration:
    """INT8 calibration on `files`: up to CALIBRATION_FRAMES of them, spread evenly, preprocessed as the model
    will see them; the footage is named after their folder and its parent (`oss_dev_images`)."""
    picked = [Path(files[i]) for i in spread(len(files), CALIBRATION_FRAMES)] if files else []
    folders = {"_".join(p.resolve().parts[-3:-1]) for p in picked}
    return Calibration(footage_label(folders.pop() if len(folders) == 1 else "images"),
                       footage_key(picked, pre_clahe, clahe_clip),
                       lambda: [seen for _, seen in read_images(picked, pre_clahe, clahe_clip)])


def video_calibration(video: str | Path, pre_clahe: bool = False, clahe_clip: float = 2.0) -> Calibration:
    """INT8 calibration on a video (CALIBRATION_FRAMES frames spread over it) or a folder of frames (as
    `image_calibration`, so a folder is one footage for predict.py and video.py alike), preprocessed as the
    model will see them."""
    path = Path(video)
    if path.is_dir():
        return image_calibration(FrameFolder(path).files, pre_clahe, clahe_clip)
    return Calibration(footage_label(path.stem), footage_key([path], pre_clahe, clahe_clip),
                       lambda: [model_view(f, pre_clahe, clahe_clip) for f in sample_frames(path, CALIBRATION_FRAMES)])


def stride_multiple(size: float, stride: int = 32) -> int:
    """Nearest input size the network accepts."""
    return max(stride, int(round(size / stride)) * stride)


def export_path(weights: Path, fmt: str, calibration: Calibration | None = None) -> Path:
    """Where the `fmt` export of `weights` is cached: beside them; INT8 ones per footage in `<stem>_int8/`."""
    if fmt == "int8":
        if calibration is None:
            raise ValueError(NO_CALIBRATION)
        return weights.with_name(weights.stem + INT8_FOLDER) / (calibration.name + EXPORTS["int8"])
    return weights.with_name(weights.stem + EXPORTS[fmt])


def export_weights(weights: str | Path, fmt: str, imgsz: int, device: str = "cpu",
                   calibration: Calibration | None = None) -> Path:
    """Export PyTorch weights (offline) once per format, and for INT8 once per footage; reuse an export while
    it is newer than the weights. Says, in one line, which export runs and how to remove the cache.

    `int8` quantises the float OpenVINO export (made too, if missing) on `calibration`'s frames.
    """
    if fmt not in EXPORTS:
        raise ValueError(f"unknown export format {fmt!r}; choose from {', '.join(EXPORTS)}")
    weights = Path(weights)
    if weights.suffix != ".pt":
        raise ValueError(f"--export needs PyTorch .pt weights, got {weights}")
    target = export_path(weights, fmt, calibration)
    if is_current(target, weights):
        os.utime(target)   # recently used: kept when older INT8 exports are pruned
        print(f"using the {fmt} export cached as {shown(target)}; {removal_hint(weights)}", file=sys.stderr)
        return target
    load_model(weights)  # missing, unreadable or foreign weights: an error naming the user's file, not a copy
    images = None
    if fmt == "int8":   # export_path has refused int8 without a calibration
        images = calibration.frames()
        if not images:
            raise ValueError(NO_CALIBRATION)
        if len(images) < MIN_CALIBRATION_FRAMES:
            print(f"warning: {len(images)} calibration images are few (at least {MIN_CALIBRATION_FRAMES} advised): "
                  f"later runs on {calibration.footage} reuse this INT8 model; delete {shown(target)} to calibrate "
                  "it again on more", file=sys.stderr)
    doing = f"calibrating on {len(images)} frames of {calibration.footage}, about a minute" if images else "once"
    print(f"exporting {shown(weights)} to {fmt} ({doing}) ...", end=" ", file=sys.stderr, flush=True)
    try:
        with console.library_output():   # NNCF's progress bars, Ultralytics' and torch's export chatter
            if images is None:
                ultralytics_export(weights, fmt, imgsz, device, target)
            else:
                fp32 = export_path(weights, "openvino")
                if not is_current(fp32, weights):   # the float export INT8 starts from, made on the way
                    ultralytics_export(weights, "openvino", imgsz, device, fp32)
                target.parent.mkdir(exist_ok=True)
                with staging(target) as staged:
                    quantize_openvino(fp32, staged, images, imgsz)
                prune_int8_exports(weights)
    except BaseException:
        print(file=sys.stderr)   # an error or Ctrl-C starts a line of its own
        raise
    print(f"made {shown(target)}; {removal_hint(weights)}", file=sys.stderr)
    return target


def is_current(export: Path, weights: Path) -> bool:
    """Whether a cached export exists and was made after the weights last changed."""
    return export.exists() and export.stat().st_mtime >= weights.stat().st_mtime


@contextlib.contextmanager
def staging(target: Path) -> Iterator[Path]:
    """A path in a hidden folder beside `target` to make it in, moved into place when done: an interruption
    leaves no half-written export where a later run would take it for a finished one."""
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export_") as tmp:
        staged = Path(tmp) / target.name
        yield staged
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        shutil.move(staged, target)


def ultralytics_export(weights: Path, fmt: str, imgsz: int, device: str, target: Path) -> None:
    """Ultralytics' export of `weights` to `fmt` (dynamic input size, float), made at `target`."""
    from ultralytics.utils import LOGGER

    with staging(target) as staged:
        model = load_model(shutil.copy2(weights, staged.parent))
        level = LOGGER.level
        LOGGER.setLevel(logging.WARNING)  # its summary names the staging folder and commands that don't apply
        try:
            made = model.export(format=fmt, dynamic=True, imgsz=imgsz, device=device, half=False, verbose=False)
        finally:
            LOGGER.setLevel(level)
        if Path(made) != staged:   # Ultralytics names it as we do; in case a version names it otherwise
            shutil.move(made, staged)


def prune_int8_exports(weights: Path, keep: int = KEEP_INT8_EXPORTS) -> None:
    """Remove all but the `keep` most recently used INT8 exports of `weights` (one per footage, about 10-15 MB
    each): a lab running one model over many videos would otherwise fill its disk with them."""
    exports = sorted(int8_exports(weights), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in exports[keep:]:
        shutil.rmtree(old)


def int8_exports(weights: Path) -> list[Path]:
    """The INT8 exports (one per footage) cached for `weights`."""
    folder = weights.with_name(weights.stem + INT8_FOLDER)
    return sorted(folder.glob("*" + EXPORTS["int8"])) if folder.is_dir() else []


def disk_size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def removal_hint(weights: Path) -> str:
    """Where the exports of `weights` are cached, their size, and the command that removes them (they are made
    again when needed, and whenever the weights change)."""
    cached = [p for p in (export_path(weights, fmt) for fmt in EXPORTS if fmt != "int8") if p.exists()]
    if int8_exports(weights):
        cached.append(weights.with_name(weights.stem + INT8_FOLDER))
    size = sum(map(disk_size, cached)) / 1e6
    return (f"exports of {weights.name} cached beside it take {size:.0f} MB "
            f"(remove: rm -r {' '.join(shlex.quote(shown(p)) for p in cached)})")


def export_metadata(path: Path) -> dict:
    """The metadata an Ultralytics export carries (`names`, `imgsz`, `args` such as `dynamic`), read without
    compiling the network; {} for PyTorch weights or an export without it."""
    if path.is_dir():
        meta = path / "metadata.yaml"
        return (yaml.safe_load(meta.read_text()) or {}) if meta.is_file() else {}
    if path.suffix == ".onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        return {k: ast.literal_eval(v) if k in ("names", "imgsz", "args") else v for k, v in props.items()}
    return {}


def takes_any_size(weights: Path) -> bool:
    """Whether weights run at any input size: PyTorch weights, or an export made with `dynamic=True`."""
    return weights.suffix == ".pt" or bool((export_metadata(weights).get("args") or {}).get("dynamic"))


def quantize_openvino(fp32_dir: Path, out_dir: Path, images: Sequence[np.ndarray], imgsz: int) -> Path:
    """INT8 copy of a float OpenVINO export, calibrated by NNCF on `images`, with the head kept in float.

    Ultralytics' own INT8 export also quantises the head's convolutions; on the shipped pose model that
    doubled the median needle-holder tip error on oss_dev (35 -> 65 px, tip PCK@2% 0.38 -> 0.25), while a
    float head kept it (39 px, 0.37) for 1.25x the INT8 latency, still about 2x float OpenVINO.
    """
    import nncf
    import openvino as ov
    from ultralytics.data.augment import LetterBox

    logging.getLogger("nncf").setLevel(logging.WARNING)  # its per-layer INFO lines bury everything else
    xml = next(fp32_dir.glob("*.xml"))
    model = ov.Core().read_model(xml)
    ops = model.get_ordered_ops()
    sigmoids = [op.get_friendly_name() for op in ops if op.get_type_name() == "Sigmoid"]
    head = sigmoids[-1].split("/", 1)[0]  # e.g. __module.model.23: the last layer, as Ultralytics finds it
    in_head = [op.get_friendly_name() for op in ops if op.get_friendly_name().startswith((f"{head}/", f"{head}."))]
    letterbox = LetterBox((imgsz, imgsz), auto=True, stride=32)  # what the predictor does to a frame

    def to_input(image: np.ndarray) -> np.ndarray:
        chw = letterbox(image=image)[..., ::-1].transpose(2, 0, 1)
        return np.ascontiguousarray(chw[None], dtype=np.float32) / 255

    quantized = nncf.quantize(model, nncf.Dataset(list(images), to_input), preset=nncf.QuantizationPreset.MIXED,
                              subset_size=len(images), ignored_scope=nncf.IgnoredScope(names=in_head))
    out_dir.mkdir(parents=True)
    ov.save_model(quantized, out_dir / xml.name)
    shutil.copy2(fp32_dir / "metadata.yaml", out_dir)
    return out_dir


def check_weights(weights: Sequence[str | Path]) -> list[Path]:
    """All weights exist, checked before any slow work (an evaluation, an export) starts."""
    paths = [Path(w) for w in weights]
    if not paths:
        raise ValueError("no --weights given")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"weights not found: {', '.join(missing)}")
    return paths


def load_model(weights: str | Path) -> Any:
    """An Ultralytics model for our schema, with a clear error for missing, unreadable or foreign weights."""
    from ultralytics import YOLO

    path = Path(weights)
    if not path.exists():
        raise FileNotFoundError(f"weights not found: {path}")
    try:
        model = YOLO(str(path))
        names = export_metadata(path).get("names") or model.names  # for an export, model.names compiles it
        names = [names[i] for i in sorted(names)]
    except Exception as e:  # Ultralytics raises many types for bad files; the user needs one message
        first_line = next(iter(str(e).splitlines()), "")  # Ultralytics appends download advice that can't apply
        raise ValueError(f"cannot load weights {path}: {type(e).__name__}: {first_line}") from e
    if names != list(schema.CLASSES):
        raise ValueError(f"weights {path} predict classes {names}, but this toolkit expects {list(schema.CLASSES)} "
                         "(surgpose/schema.py): train on a data.yaml written by Phase 1")
    if model.task not in ("pose", "segment"):
        raise ValueError(f"weights {path} are a {model.task!r} model; expected a pose or segmentation model")
    return model


def simplify(polygon: np.ndarray, tolerance_px: float = POLYGON_TOLERANCE_PX) -> np.ndarray:
    """Drop contour points that change the outline by less than `tolerance_px` (mask contours step per
    pixel: hundreds of points that make labels, JSON and drawing slow, for no accuracy)."""
    if len(polygon) < 4:
        return polygon
    return cv2.approxPolyDP(polygon.astype(np.float32).reshape(-1, 1, 2), tolerance_px, True).reshape(-1, 2)


def mask_polygons(masks: Any) -> list[np.ndarray]:
    """One polygon per Ultralytics mask, in original-image pixels, as `Masks.xy` gives it (the outer contours of
    its pieces joined by Ultralytics' zero-width bridges), less the pieces under MIN_MASK_PIECE of the largest:
    specks a segmentation model sheds around thin metal, which joined to the instrument drew as stray lines."""
    from ultralytics.data.converter import merge_multi_segment
    from ultralytics.utils.ops import scale_coords

    polygons = []
    for mask in masks.data.byte().cpu().numpy():
        pieces = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]
        areas = [cv2.contourArea(piece) for piece in pieces]
        least = MIN_MASK_PIECE * max(areas, default=0.0)
        kept = [piece.reshape(-1, 2) for piece, area in zip(pieces, areas) if area >= least]
        if len(kept) > 1:
            kept = [np.concatenate(merge_multi_segment(kept))]
        xy = kept[0] if kept else np.zeros((0, 2))
        polygons.append(scale_coords(mask.shape, xy.astype(np.float32), masks.orig_shape))
    return polygons


def results_to_instances(result: Any) -> list[dict]:
    """Ultralytics `Results` to instance dicts in original-image pixels (keypoints or polygon per task)."""
    boxes = result.boxes.data.cpu().numpy()
    kpts = result.keypoints.data.cpu().numpy() if result.keypoints is not None else None
    if kpts is not None and kpts.shape[1:] != (schema.NUM_KEYPOINTS, 3):
        raise ValueError(f"model predicts keypoints of shape {kpts.shape[1:]}, expected ({schema.NUM_KEYPOINTS}, 3)")
    polygons = [simplify(p) for p in mask_polygons(result.masks)] if result.masks is not None else None
    names = result.names
    return [
        {
            "class": names[int(box[5])],
            "score": round(float(box[4]), 4),
            "bbox": [round(float(v), 2) for v in box[:4]],
            "keypoints": [] if kpts is None else [[round(float(x), 2), round(float(y), 2), round(float(c), 4)]
                                                  for x, y, c in kpts[i]],
            "polygon": [] if polygons is None else np.round(polygons[i], 1).tolist(),
        }
        for i, box in enumerate(boxes)
    ]


#: Label folder per task (pose labels where Phase 1 keeps them, segmentation beside them).
LABEL_DIRS = {"pose": "labels", "segment": "labels_seg"}


def save_labels(out_dir: Path, stem: str, instances: list[dict], tasks: Sequence[str], shape: tuple[int, ...],
                with_conf: bool = True) -> None:
    """One YOLO label file per task for an image (empty when nothing was found), written atomically."""
    h, w = shape[:2]
    for task in tasks:
        line, part = (yolo.pose_line, "keypoints") if task == "pose" else (yolo.seg_line, "polygon")
        yolo.write_labels(Path(out_dir) / LABEL_DIRS[task] / f"{stem}.txt",
                          [line(inst, w, h, with_conf) for inst in instances if inst[part]])


def repeated(names: Iterable[str]) -> list[str]:
    """The names that occur more than once, sorted: files that would share an output named after them."""
    return sorted(name for name, count in Counter(names).items() if count > 1)


def stem_pattern(frame_stem: str) -> re.Pattern:
    """Regex of the file stems a `frame_stem` format such as `clip_{frame:06d}` produces; group 1 is the index."""
    m = re.fullmatch(r"(.*)\{frame(?::[^}]*)?\}(.*)", frame_stem, re.S)
    if not m:
        raise ValueError(f"frame_stem {frame_stem!r} has no {{frame}} field")
    return re.compile(re.escape(m[1]) + r"(\d+)" + re.escape(m[2]))


def remove_stale_outputs(out_dir: Path, folders: Iterable[str], belongs: Callable[[str], bool],
                         keep: Iterable[Path] = ()) -> int:
    """Delete the per-image files in `out_dir`'s `folders` whose stem `belongs` names; return how many.

    An output folder holds one run: a rerun with another model, stride or source would otherwise leave the
    earlier run's labels beside the new ones, and Phase 3 would read them as this run's. Folders in `keep`
    are never touched (the input images, should they live inside `out_dir`).
    """
    kept = {Path(k).resolve() for k in keep}
    removed = 0
    for name in folders:
        folder = Path(out_dir) / name
        if not folder.is_dir() or folder.resolve() in kept:
            continue
        for f in folder.iterdir():
            if f.is_file() and belongs(f.stem):
                f.unlink()
                removed += 1
    return removed


def predictions_document(images: dict[str, list[dict]]) -> dict:
    """The one prediction format of `predict.py` and `video.py` (JSON lines carry one image each)."""
    return {"keypoint_names": list(schema.KEYPOINTS), "classes": list(schema.CLASSES), "images": images}


def box_area(a: Sequence[float]) -> float:
    """Area of an xyxy box."""
    return (a[2] - a[0]) * (a[3] - a[1])


def box_intersection(a: Sequence[float], b: Sequence[float]) -> float:
    """Area shared by two xyxy boxes."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two xyxy boxes."""
    inter = box_intersection(a, b)
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def box_cover(a: Sequence[float], b: Sequence[float]) -> float:
    """Fraction of the smaller of two xyxy boxes that lies inside the other (1: nested)."""
    smaller = min(box_area(a), box_area(b))
    return box_intersection(a, b) / smaller if smaller > 0 else 0.0


def nested_duplicates(instances: Sequence[dict], cover: float = DOUBLE_BOX_COVER) -> list[bool]:
    """For each instance, whether a higher-scoring instance of its class has a box nesting with its own (the
    smaller at least `cover` inside the larger): a second box on one instrument (ties: the earlier wins)."""
    rank = [(inst.get("score", 0.0), -k) for k, inst in enumerate(instances)]
    return [any(rank[j] > rank[k] and other["class"] == inst["class"] and box_cover(other["bbox"], inst["bbox"]) >= cover
                for j, other in enumerate(instances)) for k, inst in enumerate(instances)]


def _fuse_cluster(members: list[dict], n_sources: int) -> dict:
    """Score-weighted average of boxes and keypoints; polygon of the best member that has one."""
    scores = np.array([m["score"] for m in members])
    fused = {
        "class": members[0]["class"],
        "score": round(float(scores.sum() / n_sources), 4),  # absent from a source counts as score 0
        "bbox": [round(float(v), 2) for v in np.average([m["bbox"] for m in members], axis=0, weights=scores)],
        "keypoints": [],
        "polygon": [],
    }
    with_kpts = [m for m in members if m["keypoints"]]
    if with_kpts:
        k = np.array([m["keypoints"] for m in with_kpts], dtype=float)  # (M, K, 3)
        w = k[..., 2] * np.array([m["score"] for m in with_kpts])[:, None] + 1e-9
        xy = (k[..., :2] * w[..., None]).sum(0) / w.sum(0)[:, None]
        fused["keypoints"] = [[round(float(x), 2), round(float(y), 2), round(float(c), 4)]
                              for (x, y), c in zip(xy, k[..., 2].mean(0))]
    with_poly = [m for m in members if m["polygon"]]
    if with_poly:
        fused["polygon"] = max(with_poly, key=lambda m: m["score"])["polygon"]
    return fused


def attach_masks(detections: list[dict], masked: list[dict], iou_thr: float = 0.55) -> list[dict]:
    """`detections` (a pose model's), each with the polygon of the segmentation instance whose box overlaps
    it most (IoU at least `iou_thr`, either class, each used once, best-scoring detections first).

    The pose model alone decides what is found, where, with which class and score: a segmentation model
    trained apart would otherwise move boxes and scores and change recall and false detections.
    """
    free = list(masked)
    with_masks = {}
    for k in sorted(range(len(detections)), key=lambda k: -detections[k]["score"]):
        ious = [box_iou(m["bbox"], detections[k]["bbox"]) for m in free]
        best = int(np.argmax(ious)) if ious else -1
        if best >= 0 and ious[best] >= iou_thr:
            with_masks[k] = {**detections[k], "polygon": free.pop(best)["polygon"]}
    return [with_masks.get(k, inst) for k, inst in enumerate(detections)]


def fuse_instances(sources: Sequence[list[dict]], iou_thr: float = 0.55) -> list[dict]:
    """Weighted fusion of instance lists that see the same image (scales of one model).

    Each instance joins the best-overlapping cluster of its class that holds nothing from its own
    source yet; a cluster's score is the sum of member scores over the number of sources, so a
    detection that only one source makes is down-weighted instead of duplicated.
    """
    if len(sources) == 1:
        return list(sources[0])
    ranked = sorted(((inst, s) for s, insts in enumerate(sources) for inst in insts), key=lambda x: -x[0]["score"])
    clusters: list[tuple[list[dict], set[int]]] = []
    for inst, src in ranked:
        best, best_iou = None, iou_thr
        for members, seen in clusters:
            if members[0]["class"] == inst["class"] and src not in seen:
                iou = box_iou(_fuse_cluster(members, 1)["bbox"], inst["bbox"])
                if iou >= best_iou:
                    best, best_iou = (members, seen), iou
        if best is None:
            clusters.append(([inst], {src}))
        else:
            best[0].append(inst)
            best[1].add(src)
    fused = [_fuse_cluster(members, len(sources)) for members, _ in clusters]
    return sorted(fused, key=lambda f: -f["score"])


class Detector:
    """Pose and/or segmentation inference at one or more scales, with fusion, in original pixels."""

    def __init__(self, weights: str | Path, seg_weights: str | Path | None = None, imgsz: int = 640,
                 conf: float = 0.25, iou: float = 0.7, device: str = "", max_det: int = 300,
                 retina_masks: bool = False, scales: Sequence[float] = (1.0,), export: str | None = None,
                 fuse_iou: float = 0.55, calibration: Calibration | None = None,
                 frame_shape: tuple[int, int] | None = None, double_box_cover: float = DOUBLE_BOX_COVER):
        """`frame_shape` (height, width) of the images to come, when known (a video), warms the models up on
        that shape: a dynamic export compiles per input shape, about 0.1 s that the first frame would pay."""
        self.sizes = list(dict.fromkeys(stride_multiple(imgsz * s) for s in scales))  # distinct sizes only
        self.options = dict(conf=conf, iou=iou, device=device, max_det=max_det, retina_masks=retina_masks,
                            verbose=False)
        self.conf, self.double_box_cover = conf, double_box_cover
        export = resolve_export(export, device)
        self.fuse_iou = fuse_iou
        check_weights([w for w in (weights, seg_weights) if w not in (None, "auto", "none")])
        self.models = [self._model(weights, export, device, stride_multiple(imgsz), calibration)]
        if seg_weights == "auto":
            seg_weights = SHIPPED_SEG_WEIGHTS if self.models[0].task == "pose" and SHIPPED_SEG_WEIGHTS.is_file() else None
        elif seg_weights == "none":
            seg_weights = None
        if seg_weights:
            self.models.append(self._model(seg_weights, export, device, stride_multiple(imgsz), calibration))
        self.weights = [str(w) for w in (weights, seg_weights) if w]
        self.export = export if any(w.endswith(".pt") for w in self.weights) else None  # exports run as given
        self.tasks = [m.task for m in self.models]
        if seg_weights and self.tasks != ["pose", "segment"]:
            raise ValueError(f"--weights must be a pose model and --seg_weights a segmentation model, got {self.tasks}")
        for model in self.models:  # build predictors now: the first frame should not pay for set-up
            for size in self.sizes:
                model.predict(np.zeros((*(frame_shape or (size, size)), 3), np.uint8), imgsz=size, **self.options)

    def _model(self, weights: str | Path, export: str | None, device: str, imgsz: int,
               calibration: Calibration | None) -> Any:
        path = Path(weights)
        if export and path.suffix == ".pt":
            path = export_weights(path, export, imgsz, device or "cpu", calibration)
        elif len(self.sizes) > 1 and not takes_any_size(path):
            raise ValueError(f"{weights} was exported for one input size, so --scales cannot run it: export with "
                             "dynamic=True, or pass the .pt with --export")
        if path.is_dir() and path.name.endswith("openvino_model"):
            prefer_fp32_openvino(int8=path.name.endswith(EXPORTS["int8"]))
        return load_model(path)

    def predict(self, image: np.ndarray) -> list[dict]:
        """Instances for one BGR image: each model at each scale, fused, above the confidence threshold, with
        the segmentation model's masks on the pose model's detections."""
        found, *masked = [fuse_instances([results_to_instances(model.predict(image, imgsz=size, **self.options)[0])
                                          for size in self.sizes], self.fuse_iou)
                          for model in self.models]
        if masked:
            found = attach_masks(found, masked[0], self.fuse_iou)
        fused = [inst for inst in found if inst["score"] >= self.conf]
        return [inst for inst, twice in zip(fused, nested_duplicates(fused, self.double_box_cover)) if not twice]

    def describe(self) -> dict:
        """What ran, for the run record."""
        return {"weights": self.weights, "export": self.export, "tasks": self.tasks, "imgsz": self.sizes,
                "double_box_cover": self.double_box_cover,
                **{k: v for k, v in self.options.items() if k != "verbose"}}


class Tracker:
    """An Ultralytics tracker (ByteTrack or BoT-SORT) run on fused instances: adds `track_id`."""

    def __init__(self, cfg: str = "bytetrack.yaml"):
        from ultralytics.trackers.track import TRACKER_MAP
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        args = IterableSimpleNamespace(**YAML.load(check_yaml(cfg)))
        if args.tracker_type not in ("bytetrack", "botsort"):
            raise ValueError(f"tracker {cfg!r} ({args.tracker_type}) needs Ultralytics' predictor; use {TRACKERS}")
        args.with_reid = False  # ReID would need a classifier download; motion + IoU is enough here
        self.tracker = TRACKER_MAP[args.tracker_type](args=args)

    def update(self, instances: list[dict], image: np.ndarray) -> list[dict]:
        """Set `track_id` (an int, or None until a track is confirmed) on each instance."""
        from ultralytics.engine.results import Boxes

        data = np.array([[*i["bbox"], i["score"], schema.class_id(i["class"])] for i in instances],
                        dtype=np.float32).reshape(-1, 6)
        tracks = self.tracker.update(Boxes(data, image.shape[:2]), image)
        ids = {int(t[-1]): int(t[4]) for t in tracks}
        for k, inst in enumerate(instances):
            inst["track_id"] = ids.get(k)
        return instances


class OneEuro:
    """One-Euro filter (Casiez et al. 2012) on an array: smooth when slow, responsive when fast."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.02, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.t = 0.0

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float, valid: np.ndarray | None = None) -> np.ndarray:
        """Filtered `x` at time `t` (seconds); rows where `valid` is False pass through and leave the state."""
        x = np.asarray(x, dtype=float)
        valid = np.ones(len(x), bool) if valid is None else valid
        if self.x is None:
            self.x, self.dx, self.t = x.copy(), np.zeros_like(x), t
            return x
        dt = max(t - self.t, 1e-6)
        dx = (x - self.x) / dt
        dx_hat = self.dx + self._alpha(self.d_cutoff, dt) * (dx - self.dx)
        cutoff = self.min_cutoff + self.beta * np.linalg.norm(dx_hat, axis=-1, keepdims=True)
        x_hat = self.x + self._alpha(cutoff, dt) * (x - self.x)
        self.x = np.where(valid[:, None], x_hat, self.x)
        self.dx = np.where(valid[:, None], dx_hat, self.dx)
        self.t = t
        return np.where(valid[:, None], x_hat, x)


class KeypointSmoother:
    """Per-track One-Euro filtering of keypoint positions (confident keypoints only)."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.02, kpt_conf: float = 0.5, forget_s: float = 2.0):
        self.params = dict(min_cutoff=min_cutoff, beta=beta)
        self.kpt_conf = kpt_conf
        self.forget_s = forget_s
        self.filters: dict[int, OneEuro] = {}

    def update(self, instances: list[dict], t: float) -> list[dict]:
        """Replace tracked instances' keypoint xy by their filtered values at time `t` (seconds)."""
        for inst in instances:
            if inst.get("track_id") is None or not inst["keypoints"]:
                continue
            k = np.array(inst["keypoints"], dtype=float)
            f = self.filters.setdefault(inst["track_id"], OneEuro(**self.params))
            xy = f(k[:, :2], t, valid=k[:, 2] >= self.kpt_conf)
            inst["keypoints"] = [[round(float(x), 2), round(float(y), 2), c] for (x, y), c in
                                 zip(xy, k[:, 2].tolist())]
        self.filters = {tid: f for tid, f in self.filters.items() if t - f.t <= self.forget_s}
        return instances
