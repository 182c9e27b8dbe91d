"""Phase 2/3: run a trained model over a video; annotated video, per-frame YOLO labels and JSON lines.

    python video.py --video clip.mp4 --out_dir out/          # the shipped models/synthetic_weights.pt
    python video.py --weights runs/pose/train/weights/best.pt --video clip.mp4 --out_dir out/
    python video.py --weights best.pt --video clip.mp4 --out_dir out/ --track bytetrack.yaml --smooth
    python video.py --weights best.pt --video clip.mp4 --out_dir out/ --scales 0.75 1 1.25 --pre_clahe

On CPU the default `--export auto` runs the fastest backend: the float32 OpenVINO export of the weights
(PyTorch's predictions, about 2x faster; made once, cached beside them), and on inputs of 1800 frames or more
an OpenVINO INT8 export quantised (head kept in float) on 128 frames of this very footage, cached per
footage (about a minute per model, once per footage; about 2.5-4x PyTorch's speed on 2 cores, keypoints
nearly unchanged: README figures). `--export int8`, `openvino` or `none` choose explicitly; a GPU runs PyTorch.
Beside a pose model, the shipped `models/seg_weights.pt` draws masks on the pose model's detections
(`--seg_weights auto`, the command-line default; `none` turns it off, `run()` has none unless given).
Writes, in OUT/:
  annotated.mp4       every processed frame with the predictions drawn (same size; fps / stride)
  labels/, labels_seg/  `<video>_<frame>.txt` YOLO pose / segmentation labels with a trailing confidence
                      (a folder of frames: each image's own name, `000002.txt` for `000002.jpg`)
  predictions.jsonl   one line per processed frame, in the predict.py format plus "frame" and "time_s"
  run.json            video, model, preprocessing (CLAHE) and progress, so Phase 3 can reproduce the frames
  images/             with --save_frames: the frames the model saw (after --pre_clahe; JPEG, quality 95)
  libraries.log       on the command line: what Ultralytics, torch, OpenVINO and NNCF print (not the console)
Labels and JSON lines are written as each frame finishes, the video and run.json are closed on Ctrl-C or
`kill` too: an interrupted run stays readable for the frames done (run.json says "complete": false), and
the same command with `--resume` continues it. OUT holds one run: a rerun into it without `--resume` first
removes the earlier run's per-frame labels and frames.
"""
from __future__ import annotations

import argparse
import json
import signal
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

from surgpose import console, offline

offline.configure()
if __name__ == "__main__":   # a command-line run: the libraries' messages go to a log file in --out_dir
    console.quiet_libraries()   # before they are imported, which is when some of them speak

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from surgpose.cli import positive_float, positive_int, user_errors_in_one_line  # noqa: E402
from surgpose.console import shown  # noqa: E402
from surgpose.draw import draw_instances  # noqa: E402
from surgpose.files import write_image, write_json, write_text  # noqa: E402
from surgpose.inference import (  # noqa: E402
    DOUBLE_BOX_COVER,
    LABEL_DIRS,
    TRACKERS,
    Detector,
    KeypointSmoother,
    Tracker,
    add_inference_args,
    model_view,
    predictions_document,
    resolve_export,
    remove_stale_outputs,
    repeated,
    save_labels,
    stem_pattern,
    video_calibration,
)
from surgpose.video_io import FOLDER_FPS, VideoReader, Worker, video_writer  # noqa: E402

#: Per-frame file stem: `<video stem>_<frame index>`; Phase 3 finds the frame by this index.
FRAME_STEM = "{video}_{frame:06d}"


def frame_name(record: dict[str, Any], index: int) -> str:
    """The file stem of frame `index`'s outputs: a folder's image keeps its own name, a video's frame is
    `<video>_<index>`."""
    if record.get("frame_names"):
        return record["frame_names"][index]
    return record["frame_stem"].replace("{frame:06d}", f"{index:06d}")   # not .format: a video may be "a{1}"


def names_a_frame(record: dict[str, Any]) -> Callable[[str], bool]:
    """Whether a file stem is one of a run's frame names (a folder's image names, or the video's pattern)."""
    if record.get("frame_names"):
        return set(record["frame_names"]).__contains__
    return stem_pattern(record["frame_stem"]).fullmatch


def replace_earlier_run(out: Path, record: dict[str, Any], keep: Path) -> None:
    """Remove the per-frame files an earlier run left in `out` (its own frame names, from its run.json, and
    this run's), so that `out` holds this run only: Phase 3 reads every label file it finds there."""
    runs = [names_a_frame(record)]
    try:
        runs.append(names_a_frame(json.loads((out / "run.json").read_text())))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # no earlier run here, or not one of video.py's
    removed = remove_stale_outputs(out, [*LABEL_DIRS.values(), "images"],
                                   lambda stem: any(names(stem) for names in runs), keep=[keep])
    if removed:
        print(f"{shown(out)}: replacing an earlier run ({removed} of its per-frame files removed)")


#: Run-record keys that describe progress, not the run: they may differ when --resume continues it.
PROGRESS_KEYS = ("frames_done", "complete", "seconds", "fps_processed", "resumed_frames")


def earlier_frames(out: Path, record: dict[str, Any]) -> tuple[dict[int, list[dict]], list[str]]:
    """`{frame index: instances}` of the frames an interrupted run in `out` finished, and their lines of
    predictions.jsonl, for `--resume`, which refuses a run made with other settings (video, model, stride, ...)."""
    try:
        earlier = json.loads((out / "run.json").read_text())
        lines = (out / "predictions.jsonl").read_text().splitlines()
    except (OSError, ValueError):
        raise FileNotFoundError(f"nothing to resume in {out}: no readable run.json and predictions.jsonl") from None
    differ = [k for k in record if k not in PROGRESS_KEYS and earlier.get(k) != json.loads(json.dumps(record[k]))]
    if differ:
        raise ValueError(f"{out} holds a run with other settings ({', '.join(differ)}); rerun without --resume "
                         "to replace it")
    done, kept = {}, []
    for line in lines:
        try:
            entry = json.loads(line)
            (done[int(entry["frame"])],) = entry["images"].values()
        except (ValueError, KeyError, TypeError, AttributeError):
            break  # a line cut short by a hard kill: that frame and any after it are redone
        kept.append(line)
    return done, kept


def run(
    weights: str | Path,
    video: str | Path,
    out_dir: str | Path,
    seg_weights: str | Path | None = None,
    imgsz: int = 640,
    conf: float = 0.25,
    iou: float = 0.7,
    device: str = "",
    max_det: int = 300,
    retina_masks: bool = False,
    scales: Sequence[float] = (1.0,),
    double_box_cover: float = DOUBLE_BOX_COVER,
    export: str | None = "auto",
    pre_clahe: bool = False,
    clahe_clip: float = 2.0,
    draw_kpts: bool = True,
    kpt_conf: float = 0.5,
    label_conf: bool = True,
    stride: int = 1,
    track: str | None = None,
    smooth: bool = False,
    save_frames: bool = False,
    max_frames: int | None = None,
    progress_every: int = 0,
    resume: bool = False,
    folder_fps: float | None = None,
) -> dict[str, Any]:
    """Process `video`; return the run record (also written to `OUT/run.json`).

    `resume` continues an interrupted run in `out_dir`: the frames it finished are redrawn and relabelled from
    its predictions.jsonl without running the model, the rest are predicted. `folder_fps` is the frame rate of
    a folder of frames (default 30; `make demo` plays its 7 frames at 2 fps so that they can be seen).
    """
    out = Path(out_dir)
    if folder_fps is not None and not Path(video).is_dir():
        raise ValueError(f"--folder_fps sets the rate of a folder of frames; {video} plays at its own rate")
    reader = VideoReader(video, stride=stride, folder_fps=folder_fps or FOLDER_FPS)  # fails fast on a missing video
    if twice := repeated(reader.names or []):
        raise ValueError(f"{video}: images {', '.join(twice[:3])} differ only by extension; their outputs would "
                         "share one name (rename or move one)")
    total = min(filter(None, (len(reader), max_frames)), default=None)  # frames to process; may be unknown
    detector = Detector(weights, seg_weights, imgsz=imgsz, conf=conf, iou=iou, device=device, max_det=max_det,
                        retina_masks=retina_masks, scales=scales, double_box_cover=double_box_cover,
                        export=resolve_export(export, device, calibration_frames=total or 0),
                        frame_shape=reader.size[::-1],
                        calibration=video_calibration(video, pre_clahe, clahe_clip))
    if smooth and not track:
        track = TRACKERS[0]  # smoothing follows tracks
    tracker = Tracker(track) if track else None
    smoother = KeypointSmoother(kpt_conf=kpt_conf) if smooth else None
    record: dict[str, Any] = {
        "video": str(Path(video).resolve()),
        "fps": reader.fps,
        "size": list(reader.size),
        "frame_count": reader.frame_count,
        "stride": reader.stride,
        "frame_stem": None if reader.names else FRAME_STEM.replace("{video}", Path(video).stem),
        "frame_names": reader.names,
        "preprocess": {"clahe": pre_clahe, "clahe_clip": clahe_clip if pre_clahe else None, "clahe_tile": 8,
                       "space": "LAB lightness of the BGR frame (surgpose.inference.clahe)"},
        "model": detector.describe(),
        "track": track,
        "smooth": smooth,
        "label_conf": label_conf,
        "outputs": {"video": "annotated.mp4", "predictions": "predictions.jsonl",
                    "images": "images" if save_frames else None},
        "frames_done": 0,
        "complete": False,
    }
    if resume:
        if track:
            raise ValueError("--resume cannot continue tracks (--track, --smooth): rerun without --resume")
        done, kept = earlier_frames(out, record)
        record["resumed_frames"] = len(done)
    # the writer may refuse the video's rate or size: it opens before anything of an earlier run is replaced
    writer = video_writer(out / "annotated.mp4", reader.fps / reader.stride, reader.size)
    if resume:   # the finished frames' lines stay as they are: an interruption while they are replayed loses none
        write_text(out / "predictions.jsonl", "".join(f"{line}\n" for line in kept))
    else:
        done = {}
        replace_earlier_run(out, record, keep=Path(video))
    write_json(out / "run.json", record, indent=2)

    lines = (out / "predictions.jsonl").open("a" if resume else "w")
    worker = Worker()
    frames_done = 0

    def emit(index: int, seen: np.ndarray, instances: list[dict]) -> None:
        """Everything a processed frame writes (runs on the worker thread, in frame order)."""
        nonlocal frames_done
        stem = frame_name(record, index)
        save_labels(out, stem, instances, detector.tasks, seen.shape, label_conf)
        if save_frames:
            write_image(out / "images" / f"{stem}.jpg", seen)
        if index not in done:   # a replayed frame's line is in the file already
            document = predictions_document({f"{stem}.jpg": instances})
            lines.write(json.dumps({"frame": index, "time_s": round(index / reader.fps, 4), **document}) + "\n")
            lines.flush()
        has_masks = any(inst["polygon"] for inst in instances)  # else skip the full-frame mask blend
        writer.write(draw_instances(seen, instances, draw_masks=has_masks, draw_kpts=draw_kpts, draw_labels=True,
                                    kpt_conf_thresh=kpt_conf))
        frames_done += 1

    start = time.perf_counter()
    bar = tqdm(total=total, desc=Path(video).name, unit="frame")
    complete = False
    try:
        for n, (index, frame) in enumerate(reader):
            if n == max_frames:
                break
            seen = model_view(frame, pre_clahe, clahe_clip)
            instances = done.get(index)
            if instances is None:
                instances = detector.predict(seen)
                if tracker:
                    tracker.update(instances, seen)
                if smoother:
                    smoother.update(instances, index / reader.fps)
            worker.submit(partial(emit, index, seen, instances))
            bar.update()
            if progress_every and (n + 1) % progress_every == 0:
                bar.write(f"frame {n + 1}/{total or '?'}: {(n + 1) / (time.perf_counter() - start):.1f} fps")
        complete = True
    finally:
        bar.close()
        reader.close()
        try:
            worker.close()
        finally:
            writer.release()
            lines.close()
            seconds = time.perf_counter() - start
            record.update(frames_done=frames_done, complete=complete, seconds=round(seconds, 2),
                          fps_processed=round(frames_done / max(seconds, 1e-9), 2))
            write_json(out / "run.json", record, indent=2)
    return record


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_inference_args(p, default_export="auto")
    p.add_argument("--video", required=True,
                   help="input video file, or a folder of same-size frames (file-name order, at --folder_fps)")
    p.add_argument("--folder_fps", type=positive_float, default=None,
                   help=f"frame rate of a folder of frames: annotated.mp4's rate and time_s (default {FOLDER_FPS:g})")
    p.add_argument("--out_dir", required=True, help="output folder")
    p.add_argument("--stride", type=positive_int, default=1, help="process every N-th frame")
    p.add_argument("--track", nargs="?", const=TRACKERS[0], default=None,
                   help=f"track instances with an Ultralytics tracker ({', '.join(TRACKERS)}); adds track_id")
    p.add_argument("--smooth", action="store_true", help="One-Euro filter keypoints along each track (implies --track)")
    p.add_argument("--save_frames", action="store_true", help="also save the frames the model saw as images/*.jpg")
    p.add_argument("--max_frames", type=positive_int, default=None, help="stop after this many processed frames")
    p.add_argument("--progress_every", type=int, default=0, help="also log a progress line every N frames")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in --out_dir (same command otherwise; not with --track)")
    return p.parse_args(argv)


@user_errors_in_one_line
def main(opt: argparse.Namespace) -> None:
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` finishes outputs like Ctrl-C does
    console.log_to(Path(opt.out_dir) / console.LOG_NAME, append=opt.resume)
    try:
        record = run(**vars(opt))
    except KeyboardInterrupt:
        raise SystemExit(f"interrupted: outputs for the frames done are in {shown(opt.out_dir)}; add --resume to the "
                         "same command to continue") from None
    print(f"{record['frames_done']} frames at {record['fps_processed']} fps -> {shown(opt.out_dir)}"
          + console.written_to())


if __name__ == "__main__":
    main(parse_opt())
