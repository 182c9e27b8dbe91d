"""curate_and_split.py: every filter on constructed pseudo-label sequences, leakage-free splits, frames saved
with the labels' preprocessing, Ultralytics-loadable output, and a real video.py run curated end to end."""
from __future__ import annotations

import inspect
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from ultralytics.data.utils import check_det_dataset, verify_image_label

import curate_and_split
import video
from datasets import read_video, scene, trained_run, write_clip
from surgpose import schema, yolo
from surgpose.curation import FRAME_REASONS, INSTANCE_REASONS, REPORT, CurationRules
from surgpose.inference import clahe

SIZE, FPS, FRAMES = (192, 144), 12.0, 24
NH, TW = 0, 1  # instance order in every drawn scene: needle holder, tweezers


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.getbasetemp() / "curation" / "clip.mp4", frames=FRAMES, fps=FPS, size=SIZE)


def predictions(n: int = FRAMES, score: float = 0.9, kpt_conf: float = 0.9) -> list[list[dict]]:
    """Per frame of `write_clip`'s clip, its drawn instruments as predictions (score, keypoint confidences,
    one polygon): what a perfect teacher would say."""
    out = []
    for k in range(n):
        _, instances = scene(np.random.default_rng(0), SIZE, t=k / FPS)
        out.append([{"class": inst["class"], "score": score, "bbox": list(inst["bbox"]),
                     "keypoints": [[x, y, kpt_conf] for x, y, _ in inst["keypoints"]],
                     "polygon": inst["polygons"][0]} for inst in instances])
    return out


def write_plain(folder: Path, stem: str, frames: list[list[dict]], with_conf: bool = True) -> Path:
    """A plain folder of pose label files `<stem>_<frame:06d>.txt`."""
    for k, instances in enumerate(frames):
        yolo.write_labels(folder / f"{stem}_{k:06d}.txt", [yolo.pose_line(i, *SIZE, with_conf) for i in instances])
    return folder


def write_video_py_dir(folder: Path, clip: Path, frames: list[list[dict]], stride: int = 1,
                       clahe_clip: float | None = None, tasks=("pose",), with_conf: bool = True) -> Path:
    """A folder laid out as video.py writes it: labels/, labels_seg/ and run.json (only the keys curation reads
    are video.py's; the rest of the record is irrelevant here)."""
    frame_stem = video.FRAME_STEM.replace("{video}", clip.stem)
    for k in range(0, len(frames), stride):
        stem = frame_stem.format(frame=k)
        if "pose" in tasks:
            yolo.write_labels(folder / "labels" / f"{stem}.txt",
                              [yolo.pose_line(i, *SIZE, with_conf) for i in frames[k]])
        if "segment" in tasks:
            yolo.write_labels(folder / "labels_seg" / f"{stem}.txt",
                              [yolo.seg_line(i, *SIZE, with_conf) for i in frames[k]])
    (folder / "run.json").write_text(json.dumps({
        "video": str(clip.resolve()), "fps": FPS, "size": list(SIZE), "frame_count": len(frames), "stride": stride,
        "frame_stem": frame_stem, "label_conf": with_conf, "complete": True,
        "preprocess": {"clahe": clahe_clip is not None, "clahe_clip": clahe_clip, "clahe_tile": 8}}))
    return folder


def labels_of(ds: Path) -> dict[str, dict[str, Path]]:
    """{split: {stem: label file}} of a written dataset."""
    return {split: {p.stem: p for p in (ds / "labels" / split).glob("*.txt")} for split in ("train", "val")}


def frame_index(stem: str) -> int:
    return int(re.search(r"(\d+)$", stem)[1])


def check_report(report: dict, ds: Path) -> None:
    """Counts add up and match the files written; the data.yaml loads with Ultralytics."""
    assert json.loads((ds / REPORT).read_text()) == report
    for task, t in report["tasks"].items():
        f, inst = t["frames"], t["instances"]
        assert f["labelled"] == f["skipped_stride"] + f["considered"]
        assert f["considered"] == f["kept"] + sum(f["rejected"].values())
        assert f["kept"] == f["train"] + f["val"]
        assert set(f["rejected"]) == set(FRAME_REASONS)
        assert sum(v["train"] + v["val"] for v in t["per_video"].values()) == f["kept"]
        assert sum(v["considered"] for v in t["per_video"].values()) == f["considered"]
        for counts in [inst, *inst["per_class"].values()]:
            assert counts["total"] == counts["passed"] + sum(counts["rejected"].values())
            assert counts["written"] <= counts["passed"]
            assert set(counts["rejected"]) == set(INSTANCE_REASONS)
        task_ds = Path(t["data"]).parent
        files = labels_of(task_ds)
        for split in ("train", "val"):
            assert len(files[split]) == f[split]
            assert sorted(p.stem for p in (task_ds / "images" / split).iterdir()) == sorted(files[split])
            lines = [line.split() for p in files[split].values() for line in p.read_text().splitlines()]
            assert all(len(line) == yolo.POSE_VALUES if task == "pose" else len(line) % 2 == 1 for line in lines)
            for c, name in enumerate(schema.CLASSES):
                assert sum(int(line[0]) == c for line in lines) == t["instances_per_split"][split][name]
        assert sum(t["instances_per_split"][s][c] for s in ("train", "val") for c in schema.CLASSES) == inst["written"]
        data = check_det_dataset(t["data"])
        assert data["nc"] == len(schema.CLASSES) and (task != "pose" or data["kpt_shape"] == [5, 3])
        some = next(iter(files["train"].values()), None)
        if some is not None:  # Ultralytics' own label check accepts the files
            image = task_ds / "images" / "train" / f"{some.stem}.jpg"
            result = verify_image_label((str(image), str(some), "", task == "pose", 2, 5, 3, False))
            assert result[-1] == "" and result[6] == 1, result[-1]


def test_run_signature_matches_rules_and_cli():
    params = inspect.signature(curate_and_split.run).parameters
    for name, value in vars(CurationRules()).items():
        assert params[name].default == value, name
    opt = curate_and_split.parse_opt(["--pair", "a.mp4::b", "--out_ds", "o"])
    assert set(vars(opt)) == set(params)
    assert all(getattr(opt, n) == p.default for n, p in params.items() if n not in ("pair", "out_ds"))


def test_instance_filters_ambiguity_and_visibility(clip, tmp_path):
    frames = predictions()
    frames[4][NH]["score"] = 0.1                                   # low_conf, below 0.5 x 0.5: background
    frames[8][TW]["score"] = 0.4                                   # low_conf but above: the frame is ambiguous
    x, y = frames[12][NH]["keypoints"][0][:2]
    frames[12][NH]["bbox"] = [x - 2, y - 2, x + 2, y + 2]          # small_box
    for k in (0, 1, 2):
        frames[16][TW]["keypoints"][k][2] = 0.2                    # low_kpt_conf
    frames[20].append({**frames[20][TW], "bbox": [5.0, 5.0, 60.0, 50.0],  # a one-frame flicker: unstable
                       "keypoints": [[10.0 + 8 * k, 10.0, 0.9] for k in range(5)]})
    frames[6][NH]["keypoints"][3][2] = 0.3                         # one unsure keypoint: written not labelled
    labels = write_plain(tmp_path / "labels", clip.stem, frames)
    ds = tmp_path / "ds"
    report = curate_and_split.run(pair=[f"{clip}::{labels}"], out_ds=ds, require_any=True, dup_thresh=0)
    check_report(report, ds)
    pose = report["tasks"]["pose"]
    nh, tw = pose["instances"]["per_class"]["needle_holder"], pose["instances"]["per_class"]["tweezers"]
    assert nh["total"] == FRAMES and tw["total"] == FRAMES + 1
    assert {r: n for r, n in nh["rejected"].items() if n} == {"low_conf": 1, "small_box": 1}
    assert {r: n for r, n in tw["rejected"].items() if n} == {"low_conf": 1, "low_kpt_conf": 1, "unstable": 1}
    assert pose["frames"]["rejected"]["ambiguous"] == 4  # frames 8, 12, 16, 20; not 4 (background there)
    assert pose["frames"]["rejected"]["missing_class"] == 0  # require_any

    (a, b), = report["split"]["blocks"][clip.stem]["val"]
    gap = report["split"]["gap_frames"][clip.stem]
    assert not any(a - gap <= k <= b + gap for k in (4, 6)), "the test expects frames 4 and 6 outside the gaps"
    files = {stem: p for split in labels_of(ds).values() for stem, p in split.items()}
    assert not any(f"{clip.stem}_{k:06d}" in files for k in (8, 12, 16, 20))
    lines = files[f"{clip.stem}_000004"].read_text().splitlines()
    assert [line.split()[0] for line in lines] == [str(TW)]  # background needle holder left out, frame kept
    (nh_line,) = [line.split() for line in files[f"{clip.stem}_000006"].read_text().splitlines() if line[0] == "0"]
    vis = [int(v) for v in nh_line[7::3]]
    assert vis == [2, 2, 2, 0, 2] and nh_line[14:16] == ["0", "0"]  # handle_left: x y v = 0 0 0

    strict = curate_and_split.run(pair=[f"{clip}::{labels}"], out_ds=tmp_path / "strict", dup_thresh=0)
    assert strict["tasks"]["pose"]["frames"]["rejected"]["missing_class"] == 1  # frame 4: no needle holder
    lenient = curate_and_split.run(pair=[f"{clip}::{labels}"], out_ds=tmp_path / "lenient", dup_thresh=0,
                                   ignore_frac=2.0, min_track=0)
    assert lenient["tasks"]["pose"]["frames"]["rejected"]["ambiguous"] == 0
    assert lenient["tasks"]["pose"]["instances"]["rejected"]["unstable"] == 0


def test_one_instrument_named_twice(clip, tmp_path):
    """Ultralytics' NMS runs per class, so a teacher can call one instrument both classes: the lower call is a
    class_conflict, never written, and while it scores like an instrument the frame is ambiguous."""
    frames = predictions()
    x1, y1, x2, y2 = frames[8][NH]["bbox"]
    shifted = [x1 + 0.05 * (x2 - x1), y1, x2 + 0.05 * (x2 - x1), y2]  # IoU ~0.9 with the needle holder
    frames[8].append({**frames[8][NH], "class": schema.CLASSES[TW], "score": 0.7, "bbox": shifted})
    frames[12].append({**frames[12][TW], "class": schema.CLASSES[NH], "score": 0.95})  # outranks the tweezers
    labels = write_plain(tmp_path / "labels", clip.stem, frames)
    common = dict(pair=[f"{clip}::{labels}"], require_any=True, dup_thresh=0, min_track=0)

    strict = curate_and_split.run(out_ds=tmp_path / "strict", **common)
    check_report(strict, tmp_path / "strict")
    pose = strict["tasks"]["pose"]
    assert pose["instances"]["rejected"]["class_conflict"] == 2
    assert pose["instances"]["per_class"]["tweezers"]["rejected"]["class_conflict"] == 2  # the copy, the original
    assert pose["frames"]["rejected"]["ambiguous"] == 2
    written = {stem for split in labels_of(tmp_path / "strict").values() for stem in split}
    assert not {f"{clip.stem}_{k:06d}" for k in (8, 12)} & written

    lenient = curate_and_split.run(out_ds=tmp_path / "lenient", ignore_frac=2.0, **common)
    check_report(lenient, tmp_path / "lenient")
    files = {stem: p for split in labels_of(tmp_path / "lenient").values() for stem, p in split.items()}
    classes = {k: sorted(line.split()[0] for line in files[f"{clip.stem}_{k:06d}"].read_text().splitlines())
               for k in (8, 12) if f"{clip.stem}_{k:06d}" in files}
    assert classes, "the test expects frame 8 or 12 outside the split gap"
    assert classes.get(8, ["0", "1"]) == ["0", "1"]   # the needle holder and the real tweezers, not the copy
    assert classes.get(12, ["0", "0"]) == ["0", "0"]  # the higher call wins: the tweezers goes as needle holder

    loose = curate_and_split.run(out_ds=tmp_path / "loose", class_iou=0.95, **common)
    assert loose["tasks"]["pose"]["instances"]["rejected"]["class_conflict"] == 1  # frame 12's identical boxes


def test_one_instrument_boxed_twice(clip, tmp_path):
    """A second, nested box of the same class on one instrument (NMS at IoU 0.7 lets the jaws alone through beside
    the whole tool) is a double_box: never written, and the frame stays, labelled by the other box."""
    frames = predictions()
    x1, y1, x2, y2 = frames[8][NH]["bbox"]
    jaws = [x1, y1, (x1 + x2) / 2, (y1 + y2) / 2]                      # inside the needle holder's box, IoU 0.25
    frames[8].append({**frames[8][NH], "score": 0.7, "bbox": jaws})
    x1, y1, x2, y2 = frames[12][TW]["bbox"]
    frames[12].append({**frames[12][TW], "score": 0.95, "bbox": [x1 - 4, y1 - 4, x2 + 4, y2 + 4]})  # outranks it
    labels = write_plain(tmp_path / "labels", clip.stem, frames)
    common = dict(pair=[f"{clip}::{labels}"], dup_thresh=0, min_track=0, split=0)

    report = curate_and_split.run(out_ds=tmp_path / "ds", **common)
    check_report(report, tmp_path / "ds")
    pose = report["tasks"]["pose"]
    assert pose["instances"]["rejected"]["double_box"] == 2
    assert pose["instances"]["per_class"]["tweezers"]["rejected"]["double_box"] == 1  # the original, outranked
    assert pose["frames"]["rejected"]["ambiguous"] == 0
    files = {stem: p for split in labels_of(tmp_path / "ds").values() for stem, p in split.items()}
    lines = {k: [line.split() for line in files[f"{clip.stem}_{k:06d}"].read_text().splitlines()] for k in (8, 12)}
    assert sorted(line[0] for line in lines[8]) == ["0", "1"] and sorted(line[0] for line in lines[12]) == ["0", "1"]
    (tweezers,) = [line for line in lines[12] if line[0] == "1"]
    assert float(tweezers[3]) * SIZE[0] == pytest.approx(x2 - x1 + 8, abs=0.5)  # the higher, larger box is kept

    off = curate_and_split.run(out_ds=tmp_path / "off", double_box_cover=2.0, **common)
    assert off["tasks"]["pose"]["instances"]["rejected"]["double_box"] == 0
    written = (tmp_path / "off" / "labels" / "train" / f"{clip.stem}_000008.txt").read_text().split("\n")
    assert sorted(line[0] for line in written if line) == ["0", "0", "1"]  # the jaws box taught as a second tool
    with pytest.raises(ValueError, match="double_box_cover"):
        curate_and_split.run(out_ds=tmp_path / "bad", double_box_cover=-0.1, **common)


def test_near_duplicates_and_per_video_cap(clip, tmp_path):
    source = read_video(clip)
    frames = predictions()
    folder, labels = tmp_path / "frames", tmp_path / "labels"
    folder.mkdir()
    for k in range(12):  # every frame twice, as lossless PNG: the copy is an exact duplicate
        for copy in (0, 1):
            stem = f"shot_{2 * k + copy:04d}"
            cv2.imwrite(str(folder / f"{stem}.png"), source[k])
            yolo.write_labels(labels / f"{stem}.txt", [yolo.pose_line(i, *SIZE, True) for i in frames[k]])
    ds = tmp_path / "ds"
    report = curate_and_split.run(pair=[f"{folder}::{labels}"], out_ds=ds, dup_thresh=0.5, split=0.25, seed=1)
    check_report(report, ds)
    f = report["tasks"]["pose"]["frames"]
    assert f["rejected"]["near_duplicate"] == 12
    kept = [frame_index(s) for split in labels_of(ds).values() for s in split]
    assert kept and all(k % 2 == 0 for k in kept)  # first of each pair kept (the copy differs by 0)

    capped = curate_and_split.run(pair=[f"{folder}::{labels}"], out_ds=tmp_path / "capped", dup_thresh=0.5,
                                  split=0.25, seed=1, max_per_video=3)
    check_report(capped, tmp_path / "capped")
    g = capped["tasks"]["pose"]["frames"]
    assert g["kept"] == 3 and g["rejected"]["video_cap"] == f["kept"] - 3
    chosen = sorted(frame_index(s) for split in labels_of(tmp_path / "capped").values() for s in split)
    ranks = [sorted(kept).index(k) for k in chosen]  # one from each third of the frames left
    assert [r * 3 // len(kept) for r in ranks] == [0, 1, 2]


def test_class_balance(clip, tmp_path):
    frames = predictions()
    for k in range(12):  # a second, steady pair of tweezers in the first half: tweezers outnumber 36 to 24
        extra = {**frames[k][TW], "bbox": [4.0, 4.0, 70.0, 60.0],
                 "keypoints": [[10.0 + 10 * j, 10.0 + 5 * j, 0.9] for j in range(5)]}
        frames[k].append(extra)
    labels = write_plain(tmp_path / "labels", clip.stem, frames)
    ds = tmp_path / "ds"
    report = curate_and_split.run(pair=[f"{clip}::{labels}"], out_ds=ds, dup_thresh=0, balance=1.2)
    check_report(report, ds)
    pose = report["tasks"]["pose"]
    written = {c: pose["instances"]["per_class"][c]["written"] for c in schema.CLASSES}
    assert pose["frames"]["rejected"]["balance"] > 0
    assert written["tweezers"] <= 1.2 * written["needle_holder"]
    assert written["tweezers"] + 2 > 1.2 * (written["needle_holder"] + 1)  # no frame dropped needlessly
    unbalanced = curate_and_split.run(pair=[f"{clip}::{labels}"], out_ds=tmp_path / "off", dup_thresh=0)
    off = unbalanced["tasks"]["pose"]["instances"]["per_class"]
    assert off["tweezers"]["written"] > 1.2 * off["needle_holder"]["written"]


@pytest.mark.parametrize("stride", [1, 2])
def test_block_split_is_leakage_free(clip, tmp_path, stride):
    labels = write_video_py_dir(tmp_path / "out", clip, predictions(), stride=stride)
    for seed in (0, 1, 2):
        ds = tmp_path / f"ds{seed}"
        report = curate_and_split.run(pair=[f"{clip}::{labels}"], out_ds=ds, dup_thresh=0, split=0.3, seed=seed,
                                      block_frames=3, temporal_window=1, min_track=1)
        check_report(report, ds)
        assert report["split"]["split_by"] == "block" and report["sources"][0]["stride"] == stride
        files = labels_of(ds)
        train = [frame_index(s) for s in files["train"]]
        val = [frame_index(s) for s in files["val"]]
        assert train and val
        window = 1 * stride  # temporal_window in processed frames, as frame indices
        assert min(abs(v - t) for v in val for t in train) > window
        assert report["tasks"]["pose"]["frames"]["rejected"]["split_gap"] > 0


def test_video_split_keeps_videos_whole(clip, tmp_path):
    pairs = []
    for name in ("left", "right", "third"):
        other = tmp_path / f"{name}.mp4"
        other.write_bytes(clip.read_bytes())
        pairs.append(f"{other}::{write_plain(tmp_path / name, name, predictions())}")
    ds = tmp_path / "ds"
    report = curate_and_split.run(pair=pairs, out_ds=ds, dup_thresh=0, split=0.3)
    check_report(report, ds)
    assert report["split"]["split_by"] == "video"
    files = labels_of(ds)
    videos = {split: {s.rsplit("_", 1)[0] for s in files[split]} for split in files}
    assert videos["val"] == set(report["split"]["val_videos"]) and len(videos["val"]) == 1
    assert not videos["train"] & videos["val"] and len(videos["train"]) == 2
    per_video = report["tasks"]["pose"]["per_video"]
    assert all((v["train"] == 0) != (v["val"] == 0) for v in per_video.values())

    short = write_plain(tmp_path / "short", "short", predictions(4))  # 4 of 24 frames: the share nearest 0.2
    (tmp_path / "short.mp4").write_bytes(clip.read_bytes())
    for seed in range(3):
        pick = curate_and_split.run(pair=[pairs[0], f"{tmp_path / 'short.mp4'}::{short}"], out_ds=tmp_path / "pick",
                                    dup_thresh=0, split=0.2, seed=seed, min_track=1)
        assert pick["split"]["val_videos"] == ["short"]

    one = curate_and_split.run(pair=pairs[:1], out_ds=tmp_path / "one", dup_thresh=0, split_by="video")
    assert one["split"]["split_by"] == "block" and any("at least 2 videos" in w for w in one["warnings"])


def test_pose_and_seg_from_video_py_folder_with_clahe(clip, tmp_path):
    labels = write_video_py_dir(tmp_path / "out", clip, predictions(), clahe_clip=3.0, tasks=("pose", "segment"))
    ds = tmp_path / "ds"
    report = curate_and_split.run(pair=[f"{clip}::{labels}"], out_ds=ds, dup_thresh=0, jpg_quality=98,
                                  save_frames=True)
    check_report(report, ds)
    assert report["datasets"] == {"pose": str(ds / "data.yaml"), "segment": str(ds / "seg" / "data.yaml")}
    assert report["sources"][0]["preprocess"]["clahe"] and report["sources"][0]["preprocess"]["clahe_clip"] == 3.0
    assert not (ds / ".frames").exists()
    source = read_video(clip)
    for image in (ds / "images" / "train").glob("*.jpg"):
        saved = cv2.imread(str(image)).astype(int)
        k = frame_index(image.stem)
        assert np.abs(saved - clahe(source[k], 3.0)).mean() < 1.5  # JPEG only
        assert np.abs(saved - source[k]).mean() > 3.0  # CLAHE did change it
        seg_image = ds / "seg" / "images" / "train" / image.name
        assert seg_image.samefile(image)  # one frame, hard-linked into both datasets
    review = list((ds / "review").rglob("*.jpg"))
    assert len(review) == 2 * FRAMES and {p.parent.name for p in review} <= {"train", "val", *FRAME_REASONS}

    saved = labels / "images"  # video.py --save_frames: the frames the model saw, CLAHE already applied
    saved.mkdir()
    for image in (ds / "images" / "train").glob("*.jpg"):
        cv2.imwrite(str(saved / f"{image.stem}.png"), clahe(source[frame_index(image.stem)], 3.0))
    run = json.loads((labels / "run.json").read_text())
    (labels / "run.json").write_text(json.dumps({**run, "outputs": {"images": "images"}}))
    again = curate_and_split.run(pair=[f"{saved}::{labels}"], out_ds=tmp_path / "again", dup_thresh=0, min_track=0,
                                 jpg_quality=98)
    assert again["sources"][0]["preprocess"]["in_frames"]
    for image in (tmp_path / "again" / "images" / "train").glob("*.jpg"):
        expected = clahe(source[frame_index(image.stem)], 3.0)
        saved_again = cv2.imread(str(image)).astype(int)
        assert np.abs(saved_again - expected).mean() < 1.5  # once,
        assert np.abs(saved_again - clahe(expected, 3.0)).mean() > 2.0  # not twice

    plain = write_video_py_dir(tmp_path / "plain", clip, predictions())
    with pytest.raises(ValueError, match="without CLAHE"):
        curate_and_split.run(pair=[f"{clip}::{plain}"], out_ds=tmp_path / "x", pre_clahe=True)


def test_labels_without_confidence_and_bad_inputs(clip, tmp_path):
    no_conf = write_plain(tmp_path / "noconf", clip.stem, predictions(3), with_conf=False)
    with pytest.raises(ValueError, match=r"clip_000000\.txt:1: pose label line has no confidence column"):
        curate_and_split.run(pair=[f"{clip}::{no_conf}"], out_ds=tmp_path / "ds")
    seg = write_video_py_dir(tmp_path / "seg", clip, predictions(3), tasks=("segment",))
    for p in (seg / "labels_seg").glob("*.txt"):  # drop the confidences, keep run.json claiming them
        p.write_text("".join(" ".join(line.split()[:-1]) + "\n" for line in p.read_text().splitlines()))
    with pytest.raises(ValueError, match=r"labels_seg/clip_000000\.txt:1: segmentation label line has no confidence"):
        curate_and_split.run(pair=[f"{clip}::{seg}"], out_ds=tmp_path / "ds")
    flagged = write_video_py_dir(tmp_path / "flagged", clip, predictions(3), with_conf=False)
    with pytest.raises(ValueError, match="without confidences"):
        curate_and_split.run(pair=[f"{clip}::{flagged}"], out_ds=tmp_path / "ds")

    good = write_plain(tmp_path / "good", clip.stem, predictions(3))
    with pytest.raises(ValueError, match="expected VIDEO::LABELS_DIR"):
        curate_and_split.run(pair=[f"{clip}:{good}"], out_ds=tmp_path / "ds")
    with pytest.raises(FileNotFoundError, match="video not found"):
        curate_and_split.run(pair=[f"{tmp_path / 'missing.mp4'}::{good}"], out_ds=tmp_path / "ds")
    with pytest.raises(FileNotFoundError, match="labels folder not found"):
        curate_and_split.run(pair=[f"{clip}::{tmp_path / 'nolabels'}"], out_ds=tmp_path / "ds")
    other = write_plain(tmp_path / "other", "another_video", predictions(3))
    with pytest.raises(FileNotFoundError, match=r"no label files matching clip_<frame:06d>\.txt"):
        curate_and_split.run(pair=[f"{clip}::{other}"], out_ds=tmp_path / "ds")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="cannot decode video"):
        curate_and_split.run(pair=[f"{corrupt}::{good}"], out_ds=tmp_path / "ds")
    with pytest.raises(ValueError, match="split"):
        curate_and_split.run(pair=[f"{clip}::{good}"], out_ds=tmp_path / "ds", split=1.5)
    # swapped pairs: video.py's run.json names the video its labels belong to, and the frame size
    of_clip = write_video_py_dir(tmp_path / "of_clip", clip, predictions(3))
    another = write_clip(tmp_path / "another.mp4", frames=3, fps=FPS, size=SIZE)
    with pytest.raises(ValueError, match="holds video.py's labels of clip.mp4, not of another.mp4"):
        curate_and_split.run(pair=[f"{another}::{of_clip}"], out_ds=tmp_path / "ds")
    larger = write_clip(tmp_path / "larger" / "clip.mp4", frames=3, fps=FPS, size=(SIZE[0] * 2, SIZE[1] * 2))
    with pytest.raises(ValueError, match=f"labels of {SIZE[0]}x{SIZE[1]} frames, but .* is {2 * SIZE[0]}x"):
        curate_and_split.run(pair=[f"{larger}::{of_clip}"], out_ds=tmp_path / "ds")
    assert not (tmp_path / "ds").exists()  # every error came before anything was written
    renamed = tmp_path / "case01.mp4"   # the labelled video, copied under another name
    renamed.write_bytes(clip.read_bytes())
    report = curate_and_split.run(pair=[f"{renamed}::{of_clip}"], out_ds=tmp_path / "renamed_ds")
    assert report["sources"][0]["video"] == str(renamed)


def test_cli_and_rerun_from_report_rules(clip, tmp_path, capsys):
    labels = write_plain(tmp_path / "labels", clip.stem, predictions())
    ds = tmp_path / "ds"
    report = curate_and_split.main(curate_and_split.parse_opt(
        ["--pair", f"{clip}::{labels}", "--out_ds", str(ds), "--min_conf_nh", "0.6", "--dup_thresh", "0",
         "--split", "0.25", "--split_by", "block", "--seed", "3", "--stride", "2", "--progress_every", "5"]))
    out = capsys.readouterr().out
    assert "pose: 24 labelled frames, 12 considered" in out and "report:" in out
    check_report(report, ds)
    assert report["rules"]["min_conf_nh"] == 0.6 and report["tasks"]["pose"]["frames"]["skipped_stride"] == 12
    before = {p.relative_to(ds): p.read_bytes() for p in ds.rglob("*.txt")}
    again = curate_and_split.run(pair=[f"{clip}::{labels}"], out_ds=ds, **report["rules"])  # as refine.py does
    assert again["tasks"] == report["tasks"]
    assert {p.relative_to(ds): p.read_bytes() for p in ds.rglob("*.txt")} == before
    with pytest.raises(SystemExit):
        curate_and_split.parse_opt(["--help"])
    assert "--require_any" in capsys.readouterr().out


def test_real_video_run_then_curate(clip, tmp_path, tmp_path_factory):
    weights = trained_run(tmp_path_factory.getbasetemp(), "pose") / "weights" / "best.pt"
    out = tmp_path / "video"
    record = video.run(weights=weights, video=clip, out_dir=out, imgsz=64, conf=0.001, export=None, stride=2,
                       pre_clahe=True, clahe_clip=3.0)
    assert record["complete"]
    ds = tmp_path / "ds"
    report = curate_and_split.run(pair=[f"{clip}::{out}"], out_ds=ds, min_conf_nh=0.0, min_conf_t=0.0,
                                  min_box_area=0, min_kpt_conf=0, min_track=0, require_any=True, dup_thresh=0,
                                  split=0.3, block_frames=3)
    check_report(report, ds)
    pose = report["tasks"]["pose"]
    assert pose["frames"]["labelled"] == len(range(0, FRAMES, 2)) and pose["frames"]["kept"] > 0
    assert report["sources"][0]["stride"] == 2 and report["sources"][0]["preprocess"]["clahe_clip"] == 3.0
    source = read_video(clip)
    for image in (ds / "images" / "train").glob("*.jpg"):
        k = frame_index(image.stem)
        assert k % 2 == 0
        assert np.abs(cv2.imread(str(image)).astype(int) - clahe(source[k], 3.0)).mean() < 2.0
    strict = curate_and_split.run(pair=[f"{clip}::{out}"], out_ds=tmp_path / "strict")  # default rules
    check_report(strict, tmp_path / "strict")


def test_out_ds_is_rewritten_whole_and_nothing_else_is_touched(clip, tmp_path):
    both = write_video_py_dir(tmp_path / "both", clip, predictions(), tasks=("pose", "segment"))
    ds = tmp_path / "ds"
    curate_and_split.run(pair=[f"{clip}::{both}"], out_ds=ds, dup_thresh=0)
    assert (ds / "seg" / "data.yaml").is_file()
    pose_only = write_plain(tmp_path / "pose", clip.stem, predictions())
    report = curate_and_split.run(pair=[f"{clip}::{pose_only}"], out_ds=ds, dup_thresh=0)   # rerun, pose only
    check_report(report, ds)
    assert not (ds / "seg").exists()   # the earlier run's segmentation dataset would train on old labels

    interrupted = tmp_path / "interrupted"   # a rerun cut short while writing: staging left, report gone
    shutil.copytree(ds, interrupted)
    (interrupted / "curation.json").unlink()
    (interrupted / "data.yaml").unlink()
    (interrupted / ".frames").mkdir()
    check_report(curate_and_split.run(pair=[f"{clip}::{pose_only}"], out_ds=interrupted, dup_thresh=0), interrupted)

    mine = tmp_path / "mine"   # e.g. Phase 1's yolo_data, given by mistake
    (mine / "images" / "train").mkdir(parents=True)
    (mine / "images" / "train" / "000001.jpg").write_bytes(b"not ours")
    with pytest.raises(ValueError, match="curate_and_split.py did not write"):
        curate_and_split.run(pair=[f"{clip}::{pose_only}"], out_ds=mine)
    assert (mine / "images" / "train" / "000001.jpg").read_bytes() == b"not ours"


def test_too_few_kept_training_frames_are_a_warning_with_advice(clip, tmp_path, capsys):
    """A round of refine.py on 1 kept frame trained without a word; curation and refine now say so."""
    labels = write_plain(tmp_path / "labels", clip.stem, predictions())
    few = curate_and_split.run(pair=f"{clip}::{labels}", out_ds=tmp_path / "few", dup_thresh=0, split=0.2,
                               max_per_video=6, min_track=1)
    n_train = few["tasks"]["pose"]["frames"]["train"]
    assert 0 < n_train < 20
    warning = f"pose: only {n_train} training frames kept (fewer than 20)"
    assert any(w.startswith(warning) for w in few["warnings"]) and f"warning: {warning}" in capsys.readouterr().out
    enough = curate_and_split.run(pair=f"{clip}::{labels}", out_ds=tmp_path / "enough", dup_thresh=0, split=0,
                                  min_track=1)
    assert enough["tasks"]["pose"]["frames"]["train"] >= 20
    assert not any("training frame" in w for w in enough["warnings"])
