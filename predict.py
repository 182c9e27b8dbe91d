"""Phase 2/3: predict instruments on images; one JSON format for every model, plus YOLO labels and overlays.

    python predict.py --source frames/ --out_dir out/          # the shipped models/synthetic_weights.pt
    python predict.py --weights runs/pose/train/weights/best.pt --source frames/ --out_dir out/
    python predict.py --weights pose.pt --seg_weights seg.pt --source "shots/*.jpg" --out_dir out/

Beside a pose model, the shipped `models/seg_weights.pt` draws masks on the pose model's detections
(`--seg_weights auto`, the command-line default; `none` turns it off, `run()` has none unless given).
Writes `OUT/predictions.json` ({"keypoint_names", "classes", "images": {file name: [instance, ...]},
"complete"}, original-image pixels), YOLO labels with a trailing confidence (`OUT/labels/` pose,
`OUT/labels_seg/` segmentation) and overlays (`OUT/overlays/`). Interrupted (Ctrl-C, `kill`), it still writes
predictions.json for the images done, with "complete": false. OUT holds one run: a rerun into it first
removes the earlier run's labels and overlays. On the command line, what the libraries (Ultralytics, torch,
OpenVINO, NNCF) print goes to `OUT/libraries.log`, not the console.
"""
from __future__ import annotations

import argparse
import glob
import json
import signal
from pathlib import Path
from typing import Any, Sequence

from surgpose import console, offline

offline.configure()
if __name__ == "__main__":   # a command-line run: the libraries' messages go to a log file in --out_dir
    console.quiet_libraries()   # before they are imported, which is when some of them speak

from ultralytics.data.utils import IMG_FORMATS, VID_FORMATS  # noqa: E402

from surgpose.cli import user_errors_in_one_line  # noqa: E402
from surgpose.console import shown  # noqa: E402
from surgpose.draw import draw_instances  # noqa: E402
from surgpose.files import write_image, write_json  # noqa: E402
from surgpose.inference import (  # noqa: E402
    DOUBLE_BOX_COVER,
    LABEL_DIRS,
    Detector,
    add_inference_args,
    image_calibration,
    predict_images,
    predictions_document,
    remove_stale_outputs,
    repeated,
    resolve_export,
    save_labels,
)
from surgpose.video_io import IMAGE_SUFFIXES  # noqa: E402


def list_images(source: str | Path) -> list[Path]:
    """Images named by `source`: one file, a folder (not recursive) or a glob pattern; sorted, names unique."""
    path = Path(source)
    if path.suffix[1:].lower() in VID_FORMATS:
        raise ValueError(f"{source} is a video: run video.py --video {source} (predict.py reads images)")
    if path.is_dir():
        files = [p for p in path.iterdir() if p.suffix[1:].lower() in IMG_FORMATS]
    elif path.is_file():
        files = [path]
    else:
        files = [Path(p) for p in glob.glob(str(source), recursive=True) if Path(p).suffix[1:].lower() in IMG_FORMATS]
    unreadable = sorted({p.suffix.lower() for p in files} - set(IMAGE_SUFFIXES))
    if unreadable:   # Ultralytics lists them as images, but OpenCV cannot decode (or write an overlay of) them
        raise ValueError(f"{source}: OpenCV cannot read {', '.join(unreadable)} images; convert them to JPEG or PNG")
    if not files:
        raise FileNotFoundError(f"no images found at {source}")
    if repeated(p.name for p in files):
        raise ValueError(f"{source} matches several images with the same file name; predict one folder at a time")
    twins = repeated(p.stem for p in files)
    if twins:
        raise ValueError(f"{source}: images {', '.join(f'{t}.*' for t in twins[:3])} differ only by extension, and "
                         "labels are named by stem (labels/<stem>.txt); rename or move one of each")
    return sorted(files)


def replace_earlier_run(out: Path, files: list[Path]) -> None:
    """Remove the labels and overlays an earlier run left in `out` (the images of its predictions.json, and
    these), and that run's predictions.json, so that `out` describes this run only."""
    try:
        earlier = set(json.loads((out / "predictions.json").read_text())["images"])
    except (OSError, ValueError, KeyError, TypeError):
        earlier = set()
        foreign = [f"{d}/" for d in (*LABEL_DIRS.values(), "overlays")
                   if (out / d).is_dir() and any((out / d).iterdir())]
        if foreign:   # e.g. a dataset's own labels/ beside its images/
            raise ValueError(f"{out} holds {' and '.join(foreign)} that predict.py did not write (no predictions.json "
                             "beside them), and a run writes its own there: choose another --out_dir")
    stems = {Path(name).stem for name in earlier} | {p.stem for p in files}
    removed = remove_stale_outputs(out, [*LABEL_DIRS.values(), "overlays"], stems.__contains__,
                                   keep={p.parent for p in files})
    (out / "predictions.json").unlink(missing_ok=True)
    if removed:
        print(f"{shown(out)}: replacing an earlier run ({removed} of its label and overlay files removed)")


def run(
    weights: str | Path,
    source: str | Path,
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
    export: str | None = None,
    pre_clahe: bool = False,
    clahe_clip: float = 2.0,
    draw_kpts: bool = True,
    kpt_conf: float = 0.5,
    label_conf: bool = True,
) -> dict[str, Any]:
    """Predict every image of `source`; return the document written to `OUT/predictions.json`."""
    out = Path(out_dir)
    files = list_images(source)
    detector = Detector(weights, seg_weights, imgsz=imgsz, conf=conf, iou=iou, device=device, max_det=max_det,
                        retina_masks=retina_masks, scales=scales, double_box_cover=double_box_cover,
                        export=resolve_export(export, device, calibration_frames=len(files)),
                        calibration=image_calibration(files, pre_clahe, clahe_clip))
    replace_earlier_run(out, files)
    images: dict[str, list[dict]] = {}
    complete = False
    try:
        for path, seen, instances in predict_images(detector, files, pre_clahe, clahe_clip):
            images[path.name] = instances
            save_labels(out, path.stem, instances, detector.tasks, seen.shape, label_conf)
            write_image(out / "overlays" / path.name,
                        draw_instances(seen.copy(), instances, draw_masks=True, draw_kpts=draw_kpts,
                                       draw_labels=True, kpt_conf_thresh=kpt_conf))
        complete = True
    finally:  # an interrupted run keeps what it predicted, marked incomplete
        document = {**predictions_document(images), "complete": complete}
        write_json(out / "predictions.json", document)
    return document


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_inference_args(p)
    p.add_argument("--source", required=True, help="an image, a folder of images or a glob pattern (quote it)")
    p.add_argument("--out_dir", required=True, help="output folder")
    return p.parse_args(argv)


@user_errors_in_one_line
def main(opt: argparse.Namespace) -> None:
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` writes predictions.json like Ctrl-C does
    console.log_to(Path(opt.out_dir) / console.LOG_NAME)
    try:
        document = run(**vars(opt))
    except KeyboardInterrupt:
        raise SystemExit(f"interrupted: {shown(Path(opt.out_dir) / 'predictions.json')} holds the images done "
                         "(\"complete\": false)") from None
    n = sum(len(v) for v in document["images"].values())
    print(f"{n} instances in {len(document['images'])} images -> {shown(Path(opt.out_dir) / 'predictions.json')}"
          + console.written_to())


if __name__ == "__main__":
    main(parse_opt())
