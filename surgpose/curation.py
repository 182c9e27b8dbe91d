"""Curation of pseudo-labels into a leakage-free YOLO dataset: the logic behind `curate_and_split.py`.

**Input**: pairs VIDEO::LABELS_DIR. VIDEO is a video file (frames are decoded in order with OpenCV, as
`video.py` reads them) or a folder of frames. LABELS_DIR is either

* a `video.py` (or `predict.py`) output folder: pose labels in `labels/`, segmentation labels in
  `labels_seg/`; with its `run.json` the label file names (`frame_stem`), the processing stride, the frame
  size and the preprocessing (CLAHE) come from the record, and the frames are preprocessed the same way;
* or a plain folder of pose label files named `<video stem>_<frame:06d>.txt` (no preprocessing unless
  `pre_clahe` says so).

For a folder of frames, label files are matched by image stem; the frame index is read from the stem when
`run.json` names the pattern, else it is the image's position in the sorted folder. The `images/` folder that
`video.py --save_frames` writes holds frames already preprocessed: paired with its own output folder, they
are taken as they are. Every label line must end with the instance confidence (`video.py` writes it); a
file without is an error naming the file. When two pairs would write the same file names, every output
stem gets an `s<k>_` prefix (k: the pair's position).

**Pipeline**, run for each task present (pose, segmentation) on its own label files; every rejection is
counted in the report, per reason, per class and per video:

1. Instance filters (an instance gets the first reason that applies):
   `low_conf` (score below `min_conf_nh` / `min_conf_t`), `small_box` (box area below `min_box_area` of the
   image), `small_mask` (seg: polygon area below `min_mask_area`), `low_kpt_conf` (pose: mean confidence of
   tip_left, tip_right and joint below `min_kpt_conf`), `class_conflict` (the box overlaps a higher-scoring
   instance of the other class with IoU >= `class_iou`: the teacher named one instrument twice, as Ultralytics'
   NMS runs per class, and the lower call must not be taught), `double_box` (the box and that of a
   higher-scoring instance of the same class nest, the smaller lying at least `double_box_cover` inside the
   larger: one instrument boxed twice, the jaws alone beside the whole tool, which NMS at IoU 0.7 lets
   through; the instrument is labelled by the other box, so this rejection never makes a frame ambiguous),
   `unstable` (temporal consistency: fewer than `min_track` of the labelled frames within +-`temporal_window`
   processed frames hold an instance of the same class, itself passing the filters above, with box IoU >=
   `min_iou` and keypoints confident in both (>= `kpt_vis_conf`) moved on average by at most `max_kpt_shift`
   of the box diagonal).
   Kept keypoints are written visible (v=2) when their confidence is >= `kpt_vis_conf`, else as not
   labelled (0 0 0), so an unsure keypoint is ignored by the loss instead of taught.
2. Frame decision (only frames at every `stride`-th labelled position are considered; the others still
   serve as temporal neighbours): `ambiguous` when a rejected instance (other than a `double_box`) scores
   >= `ignore_frac` x its class threshold: writing the frame without that instrument would teach the model
   that a real instrument is background, so the whole frame goes; instances below that score are treated as
   background. Then `no_instance` when nothing is kept, and `missing_class` when some class has no kept
   instance: by default a frame must show every class (needle holder and tweezers), because an instrument the
   teacher missed altogether leaves no trace to catch otherwise; `require_any` keeps frames with any kept
   instance.
3. `unreadable` (the frame cannot be decoded), `near_duplicate`: the 32x32 grey thumbnail of the decoded
   frame differs from that of the last frame kept from the same video by a mean absolute difference below
   `dup_thresh` grey levels (0 turns it off).
4. Split (see `assign_splits`): `split_gap` for train frames within `gap` processed frames of a val frame.
5. `video_cap`: at most `max_per_video` frames per video, one drawn (seeded) from each of that many equal
   stretches of the video's remaining frames, so the cap samples evenly in time. `balance`: while the
   most frequent class has more than `balance` times the instances of the rarest, frames with more
   instances of the former than of the latter are dropped (seeded order). 0 turns either off.

**Output** (`out_ds`): the primary dataset (pose when pose labels exist, else segmentation) in
`images/{train,val}`, `labels/{train,val}` and `data.yaml`; a segmentation dataset beside pose ones in
`seg/` with its own `data.yaml` and hard links to the same images. Images are the decoded frames with
exactly the preprocessing the labels were made on, as JPEG. `curation.json` is the report; with
`save_frames`, `review/<task>/<outcome>/<stem>.jpg` holds every considered frame with its pseudo-labels
drawn, filed under `train`, `val` or its rejection reason, to tune the rules by eye. A run rewrites
`out_ds` as a whole (a folder holding anything else is refused); until it has finished, the folder has
no `curation.json` or `data.yaml`, so an interrupted rerun never passes for a finished dataset.

**Report** (`curation.json`): `out_ds`; `datasets` {task: data.yaml}; `sources` [{pair, video, labels, name,
kind, run_json, size, fps, stride (frame-index step of the labels), frame_stem, preprocess {clahe,
clahe_clip, clahe_tile, from, in_frames}, tasks, frames_labelled, ...}]; `rules` (every `CurationRules`
field: keyword arguments of `curate_and_split.run`, so a run can be repeated from them); `options`;
`split` {split_by, val_fraction, seed, and val_videos/train_videos or blocks/gap_frames per video};
`tasks` {task: {data, frames {labelled, skipped_stride, considered, kept, train, val, rejected {reason: n}},
instances {total, passed, written, rejected {reason: n}, per_class {class: same}}, per_video {name:
{labelled, considered, train, val, rejected}}, instances_per_split {split: {class: n}}}}; `warnings`.
Counts add up: labelled = skipped_stride + considered, considered = kept + sum(rejected), kept = train +
val; for instances (of considered frames) total = passed + sum(rejected), written <= passed.
"""
from __future__ import annotations

import bisect
import json
import math
import random
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from surgpose import yolo
from surgpose.files import write_image, write_json
from surgpose.inference import LABEL_DIRS, box_cover, box_iou, clahe, stem_pattern
from surgpose.schema import CLASSES, KEYPOINTS, VIS_OUTSIDE, VIS_VISIBLE
from surgpose.video_io import IMAGE_SUFFIXES

#: The report written into the dataset folder.
REPORT = "curation.json"
#: Folder (inside the primary dataset) of the segmentation dataset when pose labels exist too.
SEG_SUBDIR = "seg"
#: Instance rejection reasons, in the order they are tested.
INSTANCE_REASONS = ("low_conf", "small_box", "small_mask", "low_kpt_conf", "class_conflict", "double_box",
                    "unstable")
#: Frame rejection reasons, in pipeline order.
FRAME_REASONS = ("ambiguous", "no_instance", "missing_class", "unreadable", "near_duplicate", "split_gap",
                 "video_cap", "balance")
SPLITS = ("train", "val")
SPLIT_BY = ("auto", "video", "block")
#: Keypoints whose mean confidence decides `low_kpt_conf`: the landmarks a pose model is judged on.
CORE_KEYPOINTS = tuple(KEYPOINTS.index(k) for k in ("tip_left", "tip_right", "joint"))
#: Near-duplicate thumbnail side (pixels).
THUMB = 32
#: Frame rate assumed for a folder of frames without run.json (only block lengths in seconds use it).
DEFAULT_FPS = 25.0
#: Where the pipeline stages frames before linking them into the datasets (removed at the end).
STAGING = ".frames"

#: Fewer kept training frames than this draw a warning: a student fine-tuned on a handful of pseudo-labelled
#: frames (1-12 on the provided clips, mixed 1:1 with synthetic ones) scored within the seed spread of its
#: teacher, and one frame's mistake (a binder clip labelled as an instrument) is repeated every batch.
FEW_TRAIN_FRAMES = 20


def few_frames_warning(n_train: int) -> str | None:
    """The warning (with advice) for a curated dataset of `n_train` training frames, or None when enough."""
    if n_train >= FEW_TRAIN_FRAMES:
        return None
    return (f"only {n_train} training frame{'s' if n_train != 1 else ''} kept (fewer than {FEW_TRAIN_FRAMES}): "
            "a student learns little from so few; add videos, pseudo-label every frame (--stride 1), "
            "or lower --min_conf_nh/--min_conf_t and check the review overlays (--save_frames)")


def _rule(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class CurationRules:
    """Every curation threshold, with its default; `curate_and_split.py` makes one flag of each field."""

    min_conf_nh: float = _rule(0.5, "needle_holder instances below this confidence are rejected (low_conf)")
    min_conf_t: float = _rule(0.5, "tweezers instances below this confidence are rejected (low_conf)")
    ignore_frac: float = _rule(0.5, "a rejected instance scoring >= ignore_frac x its class threshold makes the "
                                    "frame ambiguous and drops it (an unlabelled instrument teaches background); "
                                    "below, it is treated as background; >= 1/threshold: never")
    min_box_area: float = _rule(0.001, "smallest box area, as a fraction of the image area (small_box)")
    min_mask_area: float = _rule(0.0005, "smallest mask (polygon) area, as a fraction of the image (small_mask)")
    min_kpt_conf: float = _rule(0.5, "smallest mean confidence of tip_left, tip_right and joint (low_kpt_conf)")
    class_iou: float = _rule(0.5, "an instance whose box overlaps a higher-scoring instance of the other class "
                                  "with this IoU or more is rejected (class_conflict: one instrument named twice)")
    double_box_cover: float = _rule(0.8, "an instance whose box and a higher-scoring same-class box nest, the "
                                         "smaller lying at least this fraction inside the larger, is rejected "
                                         "(double_box: one instrument boxed twice); above 1: off")
    kpt_vis_conf: float = _rule(0.5, "keypoints at or above this confidence are written visible (2), others "
                                     "as not labelled (0); also the keypoints compared over time")
    temporal_window: int = _rule(2, "temporal consistency looks this many processed frames either side")
    min_track: int = _rule(2, "an instance needs a matching instance in at least this many neighbouring "
                              "frames (unstable); 0 turns the check off (e.g. for unrelated images)")
    min_iou: float = _rule(0.5, "box IoU a matching instance in a neighbouring frame must reach")
    max_kpt_shift: float = _rule(0.2, "largest mean shift of confident keypoints to a match, as a fraction of "
                                      "the box diagonal")
    require_any: bool = _rule(False, "keep frames with any kept instance (default: every class must be kept "
                                     "in the frame, so an instrument the teacher missed cannot become background)")
    stride: int = _rule(1, "consider every N-th labelled frame (all labelled frames still serve as temporal "
                           "neighbours)")
    dup_thresh: float = _rule(1.0, "near_duplicate: mean absolute difference (grey levels) of 32x32 "
                                   "thumbnails to the last kept frame of the video below this; 0: off")
    max_per_video: int = _rule(0, "at most this many frames per video, sampled evenly in time; 0: no cap")
    balance: float = _rule(0.0, "cap the majority class at this factor times the minority class's instances "
                                "by dropping frames it dominates; 0: off")
    split: float = _rule(0.2, "fraction of frames for validation")
    split_by: str = _rule("auto", "video: whole videos go to val (needs >= 2 videos); block: contiguous time "
                                  "blocks of each video; auto: video with >= 2 videos, else block")
    block_s: float = _rule(10.0, "length of a split block, seconds")
    block_frames: int = _rule(0, "length of a split block in processed frames (overrides --block_s)")
    gap: int | None = _rule(None, "train frames within this many processed frames of a val frame are dropped "
                                  "(split_gap); default: --temporal_window")
    seed: int = _rule(0, "seed of the split, cap and balance draws")

    def __post_init__(self) -> None:
        for name in ("min_conf_nh", "min_conf_t", "min_iou", "class_iou", "kpt_vis_conf", "min_kpt_conf"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be within [0, 1], got {getattr(self, name)}")
        for name in ("ignore_frac", "double_box_cover", "min_box_area", "min_mask_area", "max_kpt_shift",
                     "dup_thresh", "block_s", "temporal_window", "min_track", "max_per_video", "block_frames"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if self.min_track > 2 * self.temporal_window:
            raise ValueError(f"min_track {self.min_track} needs more than the {2 * self.temporal_window} "
                             f"neighbours a temporal_window of {self.temporal_window} gives")
        if self.balance and self.balance < 1:
            raise ValueError(f"balance is a factor >= 1 (or 0: off), got {self.balance}")
        if not 0 <= self.split < 1:
            raise ValueError(f"split (val fraction) must be within [0, 1), got {self.split}")
        if self.split_by not in SPLIT_BY:
            raise ValueError(f"split_by must be one of {', '.join(SPLIT_BY)}, got {self.split_by!r}")
        if self.gap is not None and self.gap < 0:
            raise ValueError(f"gap must be >= 0, got {self.gap}")

    def min_conf(self, cls: str) -> float:
        return {"needle_holder": self.min_conf_nh, "tweezers": self.min_conf_t}[cls]

    def ignore_conf(self, cls: str) -> float:
        """Rejected instances scoring below this are background; at or above, they make the frame ambiguous."""
        return self.ignore_frac * self.min_conf(cls)

    @property
    def gap_frames(self) -> int:
        return self.temporal_window if self.gap is None else self.gap

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata["help"] for f in fields(cls)}


# ---------------------------------------------------------------------------------------------- sources


@dataclass
class Frame:
    """One labelled frame of a source."""

    index: int                       # video frame index (or position in a folder of frames)
    stem: str                        # label file stem
    image: Path | None = None        # the image file, for a folder of frames
    labels: dict[str, Path] = field(default_factory=dict)  # task -> label file


@dataclass
class Source:
    """One VIDEO::LABELS_DIR pair, resolved."""

    pair: str
    video: Path
    labels_dir: Path
    kind: str                        # "video" or "images"
    name: str
    size: tuple[int, int]            # (width, height) of the frames the labels were made on
    fps: float
    step: int                        # frame-index distance of consecutive processed frames
    preprocess: dict
    frame_stem: str | None
    run_json: bool
    frames: list[Frame]
    tasks: list[str]
    prefix: str = ""                 # added to output file stems when two sources share names

    def out_stem(self, frame: Frame) -> str:
        return self.prefix + frame.stem

    def describe(self) -> dict:
        return {"pair": self.pair, "video": str(self.video.resolve()), "labels": str(self.labels_dir.resolve()),
                "name": self.name, "kind": self.kind, "run_json": self.run_json, "size": list(self.size),
                "fps": self.fps, "stride": self.step, "frame_stem": self.frame_stem, "preprocess": self.preprocess,
                "tasks": self.tasks, "frames_labelled": len(self.frames),
                "first_frame": self.frames[0].index, "last_frame": self.frames[-1].index,
                "stem_prefix": self.prefix}


def parse_pair(text: str) -> tuple[Path, Path]:
    """`VIDEO::LABELS_DIR` -> (video, labels dir), with a clear error for anything else."""
    video, sep, labels = str(text).partition("::")
    if not sep or not video.strip() or not labels.strip() or "::" in labels:
        raise ValueError(f"--pair {text!r}: expected VIDEO::LABELS_DIR (a video file or a folder of frames, then "
                         "a video.py output folder or a folder of label files)")
    return Path(video), Path(labels)


def same_file(a: Path, b: Path, head: int = 1 << 20) -> bool:
    """Whether two existing files hold the same bytes as far as a renamed copy goes: the same size and first MiB."""
    if not (a.is_file() and b.is_file()) or a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        return fa.read(head) == fb.read(head)


def _read_run(labels: Path) -> dict | None:
    path = labels / "run.json"
    if not path.is_file():
        return None
    try:
        run = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(run, dict):
        raise ValueError(f"{path} is not a video.py run record")
    return run


def open_source(pair: str, pre_clahe: bool = False, clahe_clip: float = 2.0,
                warnings: list[str] | None = None) -> Source:
    """Resolve one pair: its frames, label files, frame size, preprocessing. Raises clear errors for a missing
    video or folder, an undecodable video, labels written without confidences and no matching label files."""
    warnings = [] if warnings is None else warnings
    video, labels = parse_pair(pair)
    if not video.exists():
        raise FileNotFoundError(f"video not found: {video} (--pair {pair})")
    if not labels.is_dir():
        raise FileNotFoundError(f"labels folder not found: {labels} (--pair {pair})")
    run = _read_run(labels)
    if run is not None and run.get("label_conf") is False:
        raise ValueError(f"{labels}/run.json: video.py wrote these labels without confidences (--no-label_conf); "
                         "curation needs them: rerun video.py with --label_conf")
    dirs = {task: labels / d for task, d in LABEL_DIRS.items() if (labels / d).is_dir()}
    if not dirs:
        if run is not None:
            raise FileNotFoundError(f"{labels} has a run.json but no {LABEL_DIRS['pose']}/ or "
                                    f"{LABEL_DIRS['segment']}/ label folder")
        dirs = {"pose": labels}

    if run is not None:
        pre = run.get("preprocess") or {}
        recorded = bool(pre.get("clahe"))
        if pre_clahe and not recorded:
            raise ValueError(f"--pre_clahe given, but {labels}/run.json says the labels were made on frames "
                             "without CLAHE: the saved frames must be what the model saw")
        preprocess = {"clahe": recorded, "clahe_clip": pre.get("clahe_clip") if recorded else None,
                      "clahe_tile": pre.get("clahe_tile", 8), "from": "run.json"}
    else:
        preprocess = {"clahe": bool(pre_clahe), "clahe_clip": float(clahe_clip) if pre_clahe else None,
                      "clahe_tile": 8, "from": "flags"}

    # video.py --save_frames wrote the frames after preprocessing: they must not be preprocessed again
    saved = (run or {}).get("outputs", {}).get("images")
    preprocess["in_frames"] = bool(saved and video.is_dir() and video.resolve() == (labels / saved).resolve())
    labelled = Path(run["video"]) if run and run.get("video") else None
    if (labelled and labelled.name != video.resolve().name and not preprocess["in_frames"]
            and not same_file(labelled, video)):
        raise ValueError(f"{labels} holds video.py's labels of {labelled.name}, not of {video.name}: each --pair "
                         "is VIDEO::LABELS_DIR of that video (a swapped pair would label one video's frames with "
                         "another's boxes); a video renamed since: give it its old name, or rerun video.py on it")
    if video.is_dir():
        kind, name = "images", video.name
        images = sorted(p for p in video.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise FileNotFoundError(f"no images in frame folder {video} (--pair {pair})")
        first = cv2.imread(str(images[0]))
        if first is None:
            raise ValueError(f"cannot read image {images[0]}")
        size = (first.shape[1], first.shape[0])
        fps = float(run.get("fps") or DEFAULT_FPS) if run else DEFAULT_FPS
        frame_stem = run.get("frame_stem") if run else None
        pattern = stem_pattern(frame_stem) if frame_stem else None
        found = []
        for pos, image in enumerate(images):
            files = {t: d / f"{image.stem}.txt" for t, d in dirs.items() if (d / f"{image.stem}.txt").is_file()}
            if files:
                found.append((pos, image, files))
        matches = [pattern.fullmatch(image.stem) if pattern else None for _, image, _ in found]
        by_name = all(matches)  # frame indices from the names only when every labelled image has one
        frames = [Frame(int(m[1]) if by_name else pos, image.stem, image, files)
                  for (pos, image, files), m in zip(found, matches)]
        looked_for = f"<image stem>.txt for the {len(images)} images of {video}"
    else:
        kind, name = "video", video.stem
        cap = cv2.VideoCapture(str(video))
        ok, first = cap.read() if cap.isOpened() else (False, None)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 30.0)
        cap.release()
        if not ok:
            raise ValueError(f"cannot decode video {video}: corrupt, empty or an unsupported codec")
        size = (first.shape[1], first.shape[0])
        frame_stem = (run or {}).get("frame_stem") or f"{video.stem}_{{frame:06d}}"
        pattern = stem_pattern(frame_stem)
        by_index: dict[int, Frame] = {}
        for task, d in dirs.items():
            for f in d.glob("*.txt"):
                if m := pattern.fullmatch(f.stem):
                    by_index.setdefault(int(m[1]), Frame(int(m[1]), f.stem)).labels[task] = f
        frames = [by_index[i] for i in sorted(by_index)]
        looked_for = f"{frame_stem.replace('{frame:06d}', '<frame:06d>')}.txt"
    if run and run.get("size") and list(run["size"]) != list(size):
        raise ValueError(f"{labels} holds labels of {run['size'][0]}x{run['size'][1]} frames, but {video} is "
                         f"{size[0]}x{size[1]}: --pair {pair} joins labels to frames of another video")
    if not frames:
        raise FileNotFoundError(f"no label files matching {looked_for} in {', '.join(map(str, dirs.values()))} "
                                f"(--pair {pair})")

    if run is not None:
        if run.get("size") and tuple(run["size"]) != size:
            raise ValueError(f"{labels}/run.json: the labels were made on {run['size'][0]}x{run['size'][1]} frames, "
                             f"but {video} is {size[0]}x{size[1]}: wrong video for these labels?")
        if run.get("video") and kind == "video" and Path(run["video"]).name != video.name:
            warnings.append(f"{labels}/run.json names video {Path(run['video']).name}, paired with {video.name}")
        if run.get("complete") is False:
            warnings.append(f"{labels}: video.py did not finish (run.json complete=false); using the "
                            f"{len(frames)} frames it labelled")
    indices = [f.index for f in frames]
    step = int((run or {}).get("stride") or 0) if kind == "video" else 0
    if not step:
        step = max(1, int(np.median(np.diff(indices)))) if len(indices) > 1 else 1
    tasks = [t for t in yolo.TASKS if any(t in f.labels for f in frames)]
    return Source(pair=str(pair), video=video, labels_dir=labels, kind=kind, name=name, size=size, fps=fps,
                  step=step, preprocess=preprocess, frame_stem=frame_stem, run_json=run is not None, frames=frames,
                  tasks=tasks)


def _make_unique(sources: list[Source]) -> None:
    """Unique report names; a `s<k>_` stem prefix on every source when two would write the same file names."""
    seen: Counter = Counter()
    for s in sources:
        seen[s.name] += 1
        if seen[s.name] > 1:
            s.name = f"{s.name}#{seen[s.name]}"
    stems = [f.stem for s in sources for f in s.frames]
    if len(stems) != len(set(stems)):
        for k, s in enumerate(sources):
            s.prefix = f"s{k}_"


def iter_frames(source: Source, wanted: Sequence[int], desc: str = "", progress_every: int = 0,
                log=print) -> Iterator[tuple[Frame, np.ndarray | None]]:
    """The frames of `source` at frame indices `wanted` (sorted), decoded as `video.py` does (in order), with
    the source's preprocessing applied; None for a frame that cannot be decoded."""
    by_index = {f.index: f for f in source.frames}
    wanted = sorted(set(wanted))
    bar = tqdm(total=len(wanted), desc=desc or source.name, unit="frame", leave=False)
    start = time.perf_counter()
    cap = cv2.VideoCapture(str(source.video)) if source.kind == "video" else None
    pos, ended = 0, False
    try:
        for n, index in enumerate(wanted):
            frame = by_index[index]
            image = None
            if cap is not None:
                while not ended and pos < index:
                    ended = not cap.grab()
                    pos += 1
                if not ended:
                    ok, image = cap.read()
                    pos += 1
                    ended = not ok
                    image = image if ok else None
            else:
                image = cv2.imread(str(frame.image))
            if image is not None and (image.shape[1], image.shape[0]) != source.size and cap is not None:
                raise ValueError(f"{source.video}: frame {index} is {image.shape[1]}x{image.shape[0]}, "
                                 f"expected {source.size[0]}x{source.size[1]}")
            if image is not None and source.preprocess["clahe"] and not source.preprocess["in_frames"]:
                image = clahe(image, source.preprocess["clahe_clip"], source.preprocess.get("clahe_tile", 8))
            bar.update()
            if progress_every and (n + 1) % progress_every == 0:
                log(f"{desc or source.name}: {n + 1}/{len(wanted)} frames, "
                    f"{(n + 1) / (time.perf_counter() - start):.1f} frames/s")
            yield frame, image
    finally:
        bar.close()
        if cap is not None:
            cap.release()


def thumbnail(image: np.ndarray) -> np.ndarray:
    """32x32 grey thumbnail, the near-duplicate signature of a frame."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)


# ------------------------------------------------------------------------------------------ label stage


@dataclass
class FrameState:
    """One labelled frame of one task on its way through the pipeline."""

    source: int
    frame: Frame
    considered: bool
    instances: list[dict]            # instances that can matter (background ones are only counted)
    reasons: list[str | None]        # per instance: None (kept) or its rejection reason
    background: Counter              # class -> low_conf instances below the ignore score (forgotten)
    outcome: str | None = None       # None while in the running, then "stride" (not considered), a frame
                                     # rejection reason, or "train" / "val"

    def kept(self) -> list[dict]:
        return [inst for inst, r in zip(self.instances, self.reasons) if r is None]

    def class_counts(self) -> Counter:
        return Counter(inst["class"] for inst in self.kept())


def polygon_area(polygon: Sequence[Sequence[float]]) -> float:
    p = np.asarray(polygon, float).reshape(-1, 2)
    return 0.5 * abs(float(np.dot(p[:, 0], np.roll(p[:, 1], 1)) - np.dot(p[:, 1], np.roll(p[:, 0], 1))))


def static_reason(inst: dict, task: str, rules: CurationRules, width: int, height: int) -> str | None:
    """The first per-instance filter (not the temporal one) that rejects `inst`, or None."""
    if inst["score"] < rules.min_conf(inst["class"]):
        return "low_conf"
    x1, y1, x2, y2 = inst["bbox"]
    if max(0.0, x2 - x1) * max(0.0, y2 - y1) < rules.min_box_area * width * height:
        return "small_box"
    if task == "segment" and polygon_area(inst["polygon"]) < rules.min_mask_area * width * height:
        return "small_mask"
    if task == "pose" and np.mean([inst["keypoints"][k][2] for k in CORE_KEYPOINTS]) < rules.min_kpt_conf:
        return "low_kpt_conf"
    return None


def overlapping_calls(instances: list[dict], reasons: list[str | None], rules: CurationRules) -> None:
    """Mark passing instances that a higher-scoring instance (whatever its own fate) shows to be a second call
    of one instrument: `class_conflict` when of the other class with box IoU >= `class_iou` (the teacher
    called it both names), `double_box` when of the same class with nested boxes (`double_box_cover`)."""
    rank = [(inst["score"], -k) for k, inst in enumerate(instances)]  # ties: the earlier line wins
    for k, inst in enumerate(instances):
        if reasons[k] is not None:
            continue
        for j, other in enumerate(instances):
            if rank[j] <= rank[k]:
                continue
            if other["class"] != inst["class"] and box_iou(other["bbox"], inst["bbox"]) >= rules.class_iou:
                reasons[k] = "class_conflict"
                break
            if other["class"] == inst["class"] and box_cover(other["bbox"], inst["bbox"]) >= rules.double_box_cover:
                reasons[k] = "double_box"
                break


def read_task_labels(path: Path, task: str, width: int, height: int) -> list[dict]:
    """Instances of a label file with confidences (an error naming the file when a line has none); seg
    instances get the bounding box of their polygon."""
    instances = yolo.read_labels(path, task, width, height, require_conf=True)
    for inst in instances:
        if task == "segment":
            p = np.asarray(inst["polygon"], float)
            inst["bbox"] = [*p.min(0).tolist(), *p.max(0).tolist()]
    return instances


def matches(a: dict, b: dict, rules: CurationRules) -> bool:
    """Whether `b` (a neighbouring frame's instance) continues `a`: same class, overlapping box, keypoints
    (those confident in both) close relative to the box size."""
    if a["class"] != b["class"] or box_iou(a["bbox"], b["bbox"]) < rules.min_iou:
        return False
    if a.get("keypoints") and b.get("keypoints"):
        ka, kb = np.asarray(a["keypoints"], float), np.asarray(b["keypoints"], float)
        both = (ka[:, 2] >= rules.kpt_vis_conf) & (kb[:, 2] >= rules.kpt_vis_conf)
        if both.any():
            diag = math.hypot(a["bbox"][2] - a["bbox"][0], a["bbox"][3] - a["bbox"][1]) or 1.0
            shift = np.linalg.norm(ka[both, :2] - kb[both, :2], axis=1).mean()
            return shift <= rules.max_kpt_shift * diag
    return True


def temporal_check(states: list[FrameState], window: int, rules: CurationRules) -> None:
    """Mark considered frames' instances that do not persist over neighbouring labelled frames `unstable`."""
    if rules.min_track == 0:
        return
    indices = [s.frame.index for s in states]
    passing = [[inst for inst, r in zip(s.instances, s.reasons) if r is None] for s in states]
    for i, state in enumerate(states):
        if not state.considered or not passing[i]:
            continue
        lo = bisect.bisect_left(indices, indices[i] - window)
        hi = bisect.bisect_right(indices, indices[i] + window)
        neighbours = [passing[j] for j in range(lo, hi) if j != i]
        for k, (inst, reason) in enumerate(zip(state.instances, state.reasons)):
            if reason is None:
                support = sum(any(matches(inst, other, rules) for other in insts) for insts in neighbours)
                if support < rules.min_track:
                    state.reasons[k] = "unstable"


def frame_decision(state: FrameState, rules: CurationRules) -> str | None:
    """The frame-level rejection of a considered frame after the instance filters, or None."""
    for inst, reason in zip(state.instances, state.reasons):
        if reason not in (None, "double_box") and inst["score"] >= rules.ignore_conf(inst["class"]):
            return "ambiguous"
    kept = state.class_counts()
    if not kept:
        return "no_instance"
    if not rules.require_any and any(kept[c] == 0 for c in CLASSES):
        return "missing_class"
    return None


def label_stage(source: Source, si: int, task: str, rules: CurationRules, considered: set[int],
                progress_every: int = 0, log=print) -> list[FrameState]:
    """Parse, filter and decide every labelled frame of one task of one source."""
    width, height = source.size
    states = []
    frames = [f for f in source.frames if task in f.labels]
    for n, frame in enumerate(tqdm(frames, desc=f"{source.name} {task} labels", unit="file", leave=False)):
        instances, reasons, background = [], [], Counter()
        for inst in read_task_labels(frame.labels[task], task, width, height):
            reason = static_reason(inst, task, rules, width, height)
            if reason == "low_conf" and inst["score"] < rules.ignore_conf(inst["class"]):
                background[inst["class"]] += 1  # noise: counted, then forgotten (keeps memory flat)
                continue
            instances.append(inst)
            reasons.append(reason)
        overlapping_calls(instances, reasons, rules)
        states.append(FrameState(si, frame, frame.index in considered, instances, reasons, background))
        if progress_every and (n + 1) % progress_every == 0:
            log(f"{source.name} {task}: {n + 1}/{len(frames)} label files read")
    temporal_check(states, rules.temporal_window * source.step, rules)
    for state in states:
        state.outcome = frame_decision(state, rules) if state.considered else "stride"
    return states


# ------------------------------------------------------------------------------------------------ split


def _val_videos(sources: list[Source], split: float, seed: int) -> set[str]:
    """Whole videos for val: the set whose share of labelled frames is closest to `split` (ties drawn with
    `seed`; beyond 12 videos, videos are added in a seeded order while the share gets closer); at least one
    video in each split."""
    weight: Counter = Counter()
    for s in sources:
        weight[str(s.video.resolve())] += len(s.frames)
    videos, total = sorted(weight), sum(weight.values())
    rng = random.Random(seed)
    if len(videos) <= 12:
        subsets = [[v for b, v in enumerate(videos) if mask >> b & 1] for mask in range(1, 2 ** len(videos) - 1)]
        error = [abs(sum(weight[v] for v in sub) / total - split) for sub in subsets]
        return set(rng.choice([sub for sub, e in zip(subsets, error) if e <= min(error) + 1e-9]))
    rng.shuffle(videos)
    val, share = [], 0.0
    for v in videos[:-1]:
        new = share + weight[v] / total
        if not val or abs(new - split) < abs(share - split):
            val.append(v)
            share = new
    return set(val)


def assign_splits(sources: list[Source], rules: CurationRules, warnings: list[str]) -> tuple[dict, dict]:
    """Split of every labelled frame, `{(source, frame index): "train" | "val" | "gap"}`, and its description.

    By video: whole videos go to val (no frame of a val video is in train). By block: each video is cut into
    contiguous blocks of `block_frames` processed frames (or `block_s` seconds), a seeded draw sends
    round(split x blocks) of them (at least one) to val, and train frames within `gap` processed frames of a
    val frame are dropped, so neighbouring, near-identical frames never straddle train and val. A video too
    short for ceil(1/split) blocks gets that many shorter blocks (with a warning). The split depends on the
    labelled frames only, not on which frames the filters keep: every task gets the same split.
    """
    distinct = {str(s.video.resolve()) for s in sources}
    split_by = rules.split_by
    if split_by == "auto":
        split_by = "video" if len(distinct) >= 2 else "block"
    elif split_by == "video" and len(distinct) < 2:
        warnings.append("--split_by video needs at least 2 videos: splitting by time blocks instead")
        split_by = "block"
    info: dict[str, Any] = {"split_by": split_by, "val_fraction": rules.split, "seed": rules.seed}
    assignment: dict[tuple[int, int], str] = {}
    if rules.split == 0:
        warnings.append("split 0: every frame goes to train and val is empty")
        for si, s in enumerate(sources):
            assignment.update({(si, f.index): "train" for f in s.frames})
        info["split_by"] = "none"
        return assignment, info
    if split_by == "video":
        val = _val_videos(sources, rules.split, rules.seed)
        for si, s in enumerate(sources):
            part = "val" if str(s.video.resolve()) in val else "train"
            assignment.update({(si, f.index): part for f in s.frames})
        info["val_videos"] = sorted(s.name for s in sources if str(s.video.resolve()) in val)
        info["train_videos"] = sorted(s.name for s in sources if str(s.video.resolve()) not in val)
        return assignment, info
    info.update(blocks={}, gap_frames={})
    for si, s in enumerate(sources):
        n = len(s.frames)
        size = rules.block_frames or max(1, round(rules.block_s * s.fps / s.step))
        want = max(2, math.ceil(1 / rules.split - 1e-9))  # fewer blocks could not give a val share near split
        if math.ceil(n / size) < want and n >= 2:
            size = math.ceil(n / min(n, want))
            warnings.append(f"{s.name}: {n} processed frames make fewer than {want} blocks; using blocks of "
                            f"{size} frames")
        n_blocks = math.ceil(n / size)
        n_val = min(n_blocks - 1, max(1, round(rules.split * n_blocks))) if n_blocks > 1 else 0
        if n_val == 0:
            warnings.append(f"{s.name}: a single frame cannot be split; it goes to train")
        val_blocks = sorted(random.Random(f"{rules.seed}:{si}:{s.name}").sample(range(n_blocks), n_val))
        parts = ["val" if (pos // size) in val_blocks else "train" for pos in range(n)]
        val_idx = [f.index for f, p in zip(s.frames, parts) if p == "val"]
        gap = rules.gap_frames * s.step
        for f, part in zip(s.frames, parts):
            if part == "train" and val_idx:
                k = bisect.bisect_left(val_idx, f.index)
                near = min(abs(val_idx[j] - f.index) for j in (k - 1, k) if 0 <= j < len(val_idx))
                if near <= gap:
                    part = "gap"
            assignment[(si, f.index)] = part
        info["blocks"][s.name] = {"frames_per_block": size, "blocks": n_blocks,
                                  "val": [[s.frames[b * size].index, s.frames[min(n, (b + 1) * size) - 1].index]
                                          for b in val_blocks]}
        info["gap_frames"][s.name] = gap
    return assignment, info


# ---------------------------------------------------------------------------------------- cap, balance


def cap_per_video(states: list[FrameState], cap: int, seed: int, si: int) -> None:
    """Keep at most `cap` of a video's remaining frames: one seeded pick in each of `cap` equal stretches."""
    alive = [s for s in states if s.outcome is None]
    if not cap or len(alive) <= cap:
        return
    rng = random.Random(f"cap:{seed}:{si}")
    edges = [-(-j * len(alive) // cap) for j in range(cap + 1)]  # ceil(j n / cap): stretch j has r cap // n == j
    chosen = {rng.randrange(a, b) for a, b in zip(edges, edges[1:])}
    for k, s in enumerate(alive):
        if k not in chosen:
            s.outcome = "video_cap"


def balance_classes(states: list[FrameState], factor: float, seed: int, warnings: list[str], task: str) -> None:
    """Drop frames dominated by the majority class (seeded order) until it has at most `factor` times the
    instances of the minority class."""
    if not factor:
        return
    alive = [s for s in states if s.outcome is None]
    counts = Counter({c: 0 for c in CLASSES})
    for s in alive:
        counts.update(s.class_counts())
    if min(counts.values()) == 0:
        warnings.append(f"{task}: cannot balance classes, no kept {min(counts, key=counts.get)} instance")
        return
    order = alive[:]
    random.Random(f"balance:{seed}").shuffle(order)
    for s in order:
        major, minor = max(counts, key=counts.get), min(counts, key=counts.get)
        if counts[major] <= factor * counts[minor]:
            return
        c = s.class_counts()
        if c[major] > c[minor]:
            s.outcome = "balance"
            counts.subtract(c)
    major, minor = max(counts, key=counts.get), min(counts, key=counts.get)
    if counts[major] > factor * counts[minor]:
        warnings.append(f"{task}: classes still {counts[major]} {major} vs {counts[minor]} {minor} after dropping "
                        "every frame the majority class dominates")


# ------------------------------------------------------------------------------------------------ output


def output_instance(inst: dict, task: str, rules: CurationRules) -> dict:
    """A label instance: keypoints visible (2) when confident, else not labelled (0 0 0)."""
    if task == "segment":
        return {"class": inst["class"], "polygon": inst["polygon"]}
    kpts = [[x, y, VIS_VISIBLE] if c >= rules.kpt_vis_conf else [0.0, 0.0, VIS_OUTSIDE]
            for x, y, c in inst["keypoints"]]
    return {"class": inst["class"], "bbox": inst["bbox"], "keypoints": kpts}


def dataset_dir(out_ds: Path, task: str, tasks: list[str]) -> Path:
    """The primary task's dataset is `out_ds` itself; segmentation beside pose goes to `out_ds/seg`."""
    return out_ds if task == tasks[0] else out_ds / SEG_SUBDIR


def review_image(image: np.ndarray, state: FrameState, kpt_conf: float) -> np.ndarray:
    """A frame with its pseudo-labels drawn, rejected instances tagged with their reason, outcome at the bottom."""
    from surgpose.draw import draw_instances

    out = draw_instances(image.copy(), state.instances, draw_masks=True, kpt_conf_thresh=kpt_conf)
    s = max(out.shape[:2]) / 960
    scale, th = max(0.35, 0.5 * s), max(1, round(s))
    for inst, reason in zip(state.instances, state.reasons):
        if reason:
            x1, y2 = int(inst["bbox"][0]), int(inst["bbox"][3])
            cv2.putText(out, reason, (max(0, x1), min(out.shape[0] - 2, y2 + 12)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (0, 0, 255), th, cv2.LINE_AA)
    cv2.putText(out, state.outcome, (4, out.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, scale * 1.4, (0, 255, 255), th + 1,
                cv2.LINE_AA)
    return out


# ------------------------------------------------------------------------------------------------ report


def _counts_template() -> dict:
    return {"total": 0, "passed": 0, "written": 0, "rejected": {r: 0 for r in INSTANCE_REASONS}}


def task_report(task: str, states: list[FrameState], sources: list[Source]) -> dict:
    """Counts of one task: instances per class and reason; frames per reason, split and video. For
    instances: total = passed + sum(rejected), written = passed instances in the frames written. For frames:
    considered = kept + sum(rejected), kept = train + val."""
    per_class = {c: _counts_template() for c in CLASSES}
    frames: dict[str, Any] = {"labelled": len(states), "skipped_stride": 0, "considered": 0, "kept": 0,
                              "rejected": {r: 0 for r in FRAME_REASONS}, "train": 0, "val": 0}
    per_video = {s.name: {"labelled": 0, "considered": 0, "train": 0, "val": 0,
                          "rejected": {r: 0 for r in FRAME_REASONS}} for s in sources if task in s.tasks}
    written = {split: {c: 0 for c in CLASSES} for split in SPLITS}
    for st in states:
        video = per_video[sources[st.source].name]
        video["labelled"] += 1
        if not st.considered:
            frames["skipped_stride"] += 1
            continue
        frames["considered"] += 1
        video["considered"] += 1
        for cls, n in st.background.items():
            per_class[cls]["total"] += n
            per_class[cls]["rejected"]["low_conf"] += n
        for inst, reason in zip(st.instances, st.reasons):
            counts = per_class[inst["class"]]
            counts["total"] += 1
            if reason is None:
                counts["passed"] += 1
                if st.outcome in SPLITS:
                    counts["written"] += 1
                    written[st.outcome][inst["class"]] += 1
            else:
                counts["rejected"][reason] += 1
        if st.outcome in SPLITS:
            frames["kept"] += 1
            frames[st.outcome] += 1
            video[st.outcome] += 1
        else:
            frames["rejected"][st.outcome] += 1
            video["rejected"][st.outcome] += 1
    instances = _counts_template()
    for counts in per_class.values():
        for key in ("total", "passed", "written"):
            instances[key] += counts[key]
        for reason, n in counts["rejected"].items():
            instances["rejected"][reason] += n
    return {"frames": frames, "instances": {**instances, "per_class": per_class}, "per_video": per_video,
            "instances_per_split": written}


def summary(report: dict) -> str:
    """A short human-readable table of a curation report."""
    lines = []
    for task, t in report["tasks"].items():
        f = t["frames"]
        lines.append(f"{task}: {f['labelled']} labelled frames, {f['considered']} considered -> {f['kept']} kept "
                     f"(train {f['train']}, val {f['val']}) -> {t['data']}")
        rejected = ", ".join(f"{r} {n}" for r, n in f["rejected"].items() if n) or "none"
        lines.append(f"  frames rejected: {rejected}")
        reasons = [r for r in INSTANCE_REASONS if task == "pose" and r != "small_mask"
                   or task == "segment" and r != "low_kpt_conf"]
        header = f"  {'instances':<14}{'total':>7}{'passed':>8}{'written':>8}" + "".join(f"{r:>16}" for r in reasons)
        lines.append(header)
        for cls, c in t["instances"]["per_class"].items():
            lines.append(f"  {cls:<14}{c['total']:>7}{c['passed']:>8}{c['written']:>8}"
                         + "".join(f"{c['rejected'][r]:>16}" for r in reasons))
        for name, v in t["per_video"].items():
            lines.append(f"  {name}: train {v['train']}, val {v['val']} of {v['considered']} considered")
    for w in report["warnings"]:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- pipeline


def check_out_ds(out_ds: Path) -> None:
    """Refuse a folder that holds anything but this script's output: a run rewrites all of `out_ds`."""
    if out_ds.is_dir() and any(out_ds.iterdir()) and not ((out_ds / REPORT).is_file() or (out_ds / STAGING).is_dir()):
        raise ValueError(f"{out_ds} holds files that curate_and_split.py did not write, and a run rewrites its "
                         "--out_ds (images/, labels/, data.yaml, seg/, review/): choose a new or empty folder")


def curate(pairs: Sequence[str], out_ds: str | Path, rules: CurationRules, pre_clahe: bool = False,
           clahe_clip: float = 2.0, save_frames: bool = False, jpg_quality: int = 95, progress_every: int = 0,
           log=print) -> dict:
    """Run the whole pipeline (module docstring) and write the datasets and `curation.json`; return the report."""
    if isinstance(pairs, (str, Path)):
        pairs = [str(pairs)]
    if not pairs:
        raise ValueError("give at least one --pair VIDEO::LABELS_DIR")
    if not 1 <= jpg_quality <= 100:
        raise ValueError(f"jpg_quality must be within 1..100, got {jpg_quality}")
    out_ds = Path(out_ds)
    check_out_ds(out_ds)
    warnings: list[str] = []
    sources = [open_source(p, pre_clahe, clahe_clip, warnings) for p in pairs]
    _make_unique(sources)
    tasks = [t for t in yolo.TASKS if any(t in s.tasks for s in sources)]

    # 1-2: labels
    states: dict[str, list[FrameState]] = {t: [] for t in tasks}
    for si, s in enumerate(sources):
        considered = {f.index for f in s.frames[::rules.stride]}
        for task in s.tasks:
            states[task] += label_stage(s, si, task, rules, considered, progress_every, log)

    # 3: decode what is left, near-duplicates
    for si, s in enumerate(sources):
        alive = {t: [st for st in states[t] if st.source == si and st.outcome is None] for t in tasks}
        wanted = sorted({st.frame.index for sts in alive.values() for st in sts})
        if rules.dup_thresh <= 0 or not wanted:
            continue
        thumbs = {frame.index: None if image is None else thumbnail(image)
                  for frame, image in iter_frames(s, wanted, f"{s.name} near-duplicates", progress_every, log)}
        for task, sts in alive.items():
            last = None
            for st in sts:
                th = thumbs[st.frame.index]
                if th is None:
                    st.outcome = "unreadable"
                elif last is not None and float(np.abs(th - last).mean()) < rules.dup_thresh:
                    st.outcome = "near_duplicate"
                else:
                    last = th

    # 4-5: split, gap, cap, balance
    assignment, split_info = assign_splits(sources, rules, warnings)
    for task in tasks:
        for st in states[task]:
            if st.outcome is None and assignment[(st.source, st.frame.index)] == "gap":
                st.outcome = "split_gap"
        for si in range(len(sources)):
            cap_per_video([st for st in states[task] if st.source == si], rules.max_per_video, rules.seed, si)
        balance_classes(states[task], rules.balance, rules.seed, warnings, task)
        for st in states[task]:
            if st.outcome is None:
                st.outcome = assignment[(st.source, st.frame.index)]

    # write: frames (staged once, hard-linked into each task's dataset), labels, data.yaml
    staging = out_ds / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)   # marks the folder as ours while it is rewritten (check_out_ds)
    # an interrupted rewrite must not pass for a finished dataset: the earlier report and data.yaml files go
    # first (written again last), and so does a segmentation dataset this run does not make
    for finished in (out_ds / REPORT, out_ds / "data.yaml", out_ds / SEG_SUBDIR / "data.yaml"):
        finished.unlink(missing_ok=True)
    if len(tasks) < 2:
        shutil.rmtree(out_ds / SEG_SUBDIR, ignore_errors=True)
    staged: dict[tuple[int, int], Path] = {}
    review = out_ds / "review"
    shutil.rmtree(review, ignore_errors=True)  # an earlier run's overlays would no longer match
    for si, s in enumerate(sources):
        mine = {t: {st.frame.index: st for st in states[t] if st.source == si and st.considered} for t in tasks}
        keep = {i for sts in mine.values() for i, st in sts.items() if st.outcome in SPLITS}
        wanted = {i for sts in mine.values() for i in sts} if save_frames else keep
        for frame, image in iter_frames(s, sorted(wanted), f"{s.name} frames", progress_every, log):
            stem = s.out_stem(frame)
            if image is None:
                for sts in mine.values():
                    if frame.index in sts and sts[frame.index].outcome in SPLITS:
                        sts[frame.index].outcome = "unreadable"
                continue
            if frame.index in keep:
                staged[(si, frame.index)] = write_image(staging / f"{stem}.jpg", image, jpg_quality)
            if save_frames:
                for task, sts in mine.items():
                    if (st := sts.get(frame.index)) is not None:
                        write_image(review / task / st.outcome / f"{stem}.jpg",
                                    review_image(image, st, rules.kpt_vis_conf), 90)
    datasets = {}
    for task in tasks:
        ds = dataset_dir(out_ds, task, tasks)
        for split in SPLITS:
            items = []
            for st in states[task]:
                if st.outcome == split:
                    width, height = sources[st.source].size
                    items.append((staged[(st.source, st.frame.index)], width, height,
                                  [output_instance(inst, task, rules) for inst in st.kept()]))
            for sub in ("images", "labels"):
                (ds / sub / split).mkdir(parents=True, exist_ok=True)
            yolo.write_split(ds, split, items, task)
        datasets[task] = str(yolo.write_data_yaml(ds, task))
    shutil.rmtree(staging, ignore_errors=True)

    report: dict[str, Any] = {
        "out_ds": str(out_ds.resolve()),
        "datasets": datasets,
        "sources": [s.describe() for s in sources],
        "rules": asdict(rules),
        "options": {"pre_clahe": pre_clahe, "clahe_clip": clahe_clip, "save_frames": save_frames,
                    "jpg_quality": jpg_quality},
        "split": split_info,
        "tasks": {task: {"data": datasets[task], **task_report(task, states[task], sources)} for task in tasks},
        "warnings": warnings,
    }
    for task, t in report["tasks"].items():
        if t["frames"]["kept"] == 0:
            warnings.append(f"{task}: no frame kept; loosen the rules (see the rejection counts)")
            continue
        if few := few_frames_warning(t["frames"]["train"]):
            warnings.append(f"{task}: {few}")
        if t["frames"]["val"] == 0 and rules.split > 0:
            warnings.append(f"{task}: no val frame kept; Ultralytics cannot validate on this dataset")
    write_json(out_ds / REPORT, report, indent=2)
    return report
