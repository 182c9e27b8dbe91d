"""Phase 3: self-training on unlabelled real video, without forgetting the synthetic domain.

    python refine.py --base_weights models/synthetic_weights.pt --videos ../shared/real/clips/*.mp4 \\
        --synthetic_data output/yolo_data/data.yaml --eval_real ../shared/real/oss_dev --rounds 2
    python refine.py --data curated/data.yaml --base_weights best.pt --synthetic_data output/yolo_data/data.yaml

Each round, the current best model (the teacher) pseudo-labels the real videos with `video.py`, the labels
go through the curation rules of `curate_and_split.py`, and a student is fine-tuned from the teacher on
those frames mixed with a share of synthetic images (`--synthetic_fraction`), with a low learning rate and
the early layers frozen. The student replaces the teacher only when it scores better on a trustworthy
signal: keypoint-labelled real frames (`--eval_real`, scored as in `evaluate.py`), or else the synthetic
validation split, never a validation split made of its own pseudo-labels.
`--data` starts round 1 from a dataset already curated by `curate_and_split.py` (its videos and rules are
reused for later rounds); without `--self_train` every round trains on that dataset.

Writes `runs/<project>/<name>/`: `round<k>/` (pseudo-labels, curated data, mixed data.yaml, training run),
`refine.json` (every round's scores and which weights won) and `weights/best.pt`, the chosen model.
Rerunning the same command skips the rounds already finished.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Sequence

from surgpose import offline

offline.configure()

import curate_and_split  # noqa: E402
import evaluate  # noqa: E402
import train  # noqa: E402
import video  # noqa: E402
from surgpose.cli import (  # noqa: E402
    available_device, check_share, non_negative_int, positive_float, positive_int, runs_dir, share, unit_interval,
    user_errors_in_one_line)
from surgpose.curation import few_frames_warning  # noqa: E402
from surgpose.files import write_json  # noqa: E402
from surgpose.inference import load_model, repeated  # noqa: E402
from surgpose.metrics import real_score  # noqa: E402

#: train.run arguments every round sets itself (see `run`), beyond refine.py's own options.
SET_BY_REFINE = ("model", "exist_ok", "optimizer", "warmup_epochs", "resume", *train.SET_BY_RUN)


def score(weights: str | Path, eval_real: str | Path | None, synthetic_data: str | Path | None, imgsz: int,
          device: str, preprocess: dict | None = None) -> dict[str, Any]:
    """The selection signal: real keypoint-labelled frames when given (seen as the pseudo-labelled frames were:
    with CLAHE when they had it), else synthetic validation pose mAP; both at the training size."""
    if eval_real:
        clahe = clahe_flags(preprocess)
        metrics = evaluate.evaluate_real(weights, eval_real, imgsz=imgsz, device=device, **clahe)
        return {"signal": "eval_real", "imgsz": imgsz, "pre_clahe": clahe["pre_clahe"], "score": real_score(metrics),
                "metrics": metrics}
    if synthetic_data:
        metrics = evaluate.evaluate_yolo(weights, synthetic_data, imgsz=imgsz, device=device)
        main = "pose_map50_95" if "pose_map50_95" in metrics else "mask_map50_95"
        return {"signal": "synthetic_val", "imgsz": imgsz, "score": metrics[main], "metrics": metrics}
    raise ValueError("refine.py needs --eval_real or --synthetic_data to choose between teacher and student: "
                     "a validation split of its own pseudo-labels cannot tell whether a round helped")


def clahe_flags(preprocess: dict | None) -> dict[str, Any]:
    """video.py's and evaluate.py's CLAHE arguments for a recorded preprocessing (`{clahe, clahe_clip}`)."""
    pre = preprocess or {}
    return {"pre_clahe": bool(pre.get("clahe")), "clahe_clip": pre.get("clahe_clip") or 2.0}


def label_dirs(videos: Sequence[str | Path], out_dir: Path) -> list[Path]:
    """One pseudo-label folder per video, named after it; videos of one name from different folders
    (`caseA/endo.mp4`, `caseB/endo.mp4`) get numbered ones, or the second run would replace the first's labels."""
    stems = [Path(v).stem for v in videos]
    shared = set(repeated(stems))
    return [out_dir / (f"{stem}_{k}" if stem in shared else stem) for k, stem in enumerate(stems)]


def pseudo_label(teacher: Path, sources: Sequence[dict], out_dir: Path, imgsz: int, device: str,
                 teacher_conf: float) -> list[str]:
    """Run the teacher over every source video (video.py, labels with confidences) at the source's own stride
    and preprocessing; return curation pairs."""
    videos = [s["video"] for s in sources]
    pairs = []
    for source, labels in zip(sources, label_dirs(videos, out_dir)):
        video.run(weights=teacher, video=source["video"], out_dir=labels, imgsz=imgsz, conf=teacher_conf,
                  device=device, export=None, stride=source["stride"], **clahe_flags(source["preprocess"]))
        pairs.append(f"{source['video']}::{labels}")
    return pairs


def curated_sources(data: str | Path) -> tuple[list[dict], dict]:
    """Each video curated into a data.yaml by `curate_and_split.py`, with the frame stride and preprocessing its
    pseudo-labels had (`{video, stride, preprocess: {clahe, clahe_clip}}`), and the curation rules."""
    report_path = Path(data).parent / curate_and_split.REPORT
    if not report_path.is_file():
        raise FileNotFoundError(f"{report_path} not found: --self_train with --data needs a dataset written by "
                                "curate_and_split.py (or pass --videos)")
    report = json.loads(report_path.read_text())
    sources = []
    for source in report["sources"]:
        pre = source.get("preprocess") or {}
        sources.append({"video": source["video"], "stride": int(source.get("stride") or 1),
                        "preprocess": {"clahe": bool(pre.get("clahe")), "clahe_clip": pre.get("clahe_clip")}})
    return sources, report.get("rules", {})


def dataset_digest(data: str | Path) -> str:
    """A fingerprint of a round-1 dataset: its curation report (which frames and labels it kept), else its
    data.yaml, so that re-curating into the same folder is not mistaken for the data earlier rounds trained on."""
    report = Path(data).parent / curate_and_split.REPORT
    return hashlib.sha1((report if report.is_file() else Path(data)).read_bytes()).hexdigest()[:12]


def run(
    base_weights: str | Path,
    data: str | Path | None = None,
    videos: Sequence[str | Path] = (),
    synthetic_data: str | Path | None = None,
    synthetic_fraction: float = 0.3,
    eval_real: str | Path | None = None,
    rounds: int = 2,
    epochs: int = 20,
    topup_epochs: int = 10,
    self_train: bool = True,
    self_min_conf_nh: float = 0.5,
    self_min_conf_t: float = 0.5,
    teacher_conf: float = 0.1,
    stride: int | None = None,
    pre_clahe: bool = False,
    clahe_clip: float = 2.0,
    imgsz: int = 640,
    batch: int = 16,
    device: str = "",
    lr0: float = 0.0005,
    freeze: int = 10,
    val_split: float | None = None,
    seed: int = 0,
    project: str = "refine",
    name: str = "train",
    **train_overrides: Any,
) -> dict[str, Any]:
    """Run the self-training rounds; return the record written to `runs/<project>/<name>/refine.json`."""
    base_weights = Path(base_weights)
    load_model(base_weights)  # clear errors for missing or foreign weights and wrong values before any work
    check_share("synthetic_fraction", synthetic_fraction)
    ultralytics_args = {k: v for k, v in train_overrides.items() if k != "trainer"}   # trainer: a code hook
    train.check_overrides({**ultralytics_args, "lr0": lr0})
    rules: dict = {}
    sources = [{"video": str(v), "stride": stride or 1,
                "preprocess": {"clahe": pre_clahe, "clahe_clip": clahe_clip if pre_clahe else None}} for v in videos]
    if data and not videos and self_train:
        sources, rules = curated_sources(data)
        sources = [{**s, "stride": stride or s["stride"]} for s in sources]   # each at its own, unless --stride
    val_split = rules.get("split", 0.2) if val_split is None else val_split
    check_share("val_split", val_split)
    if not data and not sources:
        raise ValueError("give --videos to pseudo-label, or --data (a dataset from curate_and_split.py)")
    if data and synthetic_data and Path(data).resolve() == Path(synthetic_data).resolve():
        raise ValueError(f"--data and --synthetic_data are both {data}: --data takes real frames (curated "
                         "pseudo-labels or your own labels), mixed with the synthetic ones")
    for s in sources:
        if not Path(s["video"]).exists():
            raise FileNotFoundError(f"video not found: {s['video']}")
    clahe = next((s["preprocess"] for s in sources if s["preprocess"]["clahe"]), None)   # what scoring sees
    out = runs_dir(project) / name
    state_path = out / "refine.json"
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.is_file() else {}
    if state and state.get("base_weights") != str(base_weights.resolve()):
        raise ValueError(f"{out} holds a refinement of {state.get('base_weights')}; choose another --name")
    # what the rounds were made with: a rerun goes on only with the same (more --rounds, another --device are fine)
    settings = json.loads(json.dumps({
        "data": data and Path(data).resolve(), "data_digest": data and dataset_digest(data),
        "sources": [{**s, "video": Path(s["video"]).resolve()} for s in sources],
        "synthetic_data": synthetic_data and Path(synthetic_data).resolve(), "synthetic_fraction": synthetic_fraction,
        "eval_real": eval_real and Path(eval_real).resolve(), "epochs": epochs, "topup_epochs": topup_epochs,
        "self_train": self_train, "self_min_conf_nh": self_min_conf_nh, "self_min_conf_t": self_min_conf_t,
        "teacher_conf": teacher_conf, "imgsz": imgsz, "batch": batch,
        "lr0": lr0, "freeze": freeze, "val_split": val_split, "seed": seed,
        "train": ultralytics_args}, default=str))
    recorded = state.get("settings", {})   # a setting added since a run was made cannot be compared with it
    differ = [f"{k}: {recorded[k]} recorded, {v} now" for k, v in settings.items()
              if k in recorded and recorded[k] != v]
    if differ:
        raise ValueError(f"{out} holds rounds made with other settings ({'; '.join(differ)}); rerun with the same "
                         "ones to go on, or choose another --name")
    if not state:
        state = {"base_weights": str(base_weights.resolve()), "settings": settings, "rounds": [],
                 "teacher": score(base_weights, eval_real, synthetic_data, imgsz, device, clahe)}
        state["best"] = {"round": 0, "weights": str(base_weights.resolve()), "score": state["teacher"]["score"]}
        write_json(state_path, state, indent=2)
    print(f"round 0 (base): {state['teacher']['signal']} score {state['teacher']['score']:.4f}")
    for done in state["rounds"]:
        print(f"round {done['round']}: made before ({'student kept' if done['kept'] else 'teacher kept'})")

    for k in range(len(state["rounds"]) + 1, rounds + 1):
        work = out / f"round{k}"
        teacher = Path(state["best"]["weights"])
        if self_train and sources and (k > 1 or not data):
            if not (work / "curated" / curate_and_split.REPORT).is_file():   # else made before an interruption
                pairs = pseudo_label(teacher, sources, work / "pseudo", imgsz, device, teacher_conf)
                curate_and_split.run(pair=pairs, out_ds=work / "curated", **{
                    **rules, "min_conf_nh": self_min_conf_nh, "min_conf_t": self_min_conf_t, "split": val_split,
                    "seed": seed + k})
            real_yaml = work / "curated" / "data.yaml"
        else:
            real_yaml = Path(data)
        n_real = len(train.image_list(train.read_dataset(real_yaml)["train"]))
        if not n_real:
            print(f"round {k}: {real_yaml} holds no training frame (curation kept none); stopping (teacher kept)")
            state["rounds"].append({"round": k, "teacher": str(teacher), "data": str(real_yaml), "kept": False,
                                    "stopped": "no pseudo-labelled frame passed curation"})
            write_json(state_path, state, indent=2)
            break
        if few := few_frames_warning(n_real):
            print(f"warning: round {k}: {real_yaml}: {few}")
        mixed = train.mix_datasets(real_yaml, synthetic_data, synthetic_fraction, seed + k, work / "mixed",
                                   flag="synthetic_fraction")
        last = work / "train" / "weights" / "last.pt"
        if last.is_file() and train.finished(last):   # trained before an interruption, not yet scored
            run_dir = last.parent.parent
        elif last.is_file():
            run_dir = train.run(resume=last, device=device, **train_overrides)
        else:
            run_dir = train.run(data=mixed, model=teacher, epochs=epochs if k == 1 else topup_epochs, imgsz=imgsz,
                                batch=batch, device=device, project=out, name=f"round{k}/train", exist_ok=True,
                                seed=seed + k, optimizer="AdamW", lr0=lr0, freeze=freeze, warmup_epochs=0,
                                **train_overrides)
        student = run_dir / "weights" / "best.pt"
        result = score(student, eval_real, synthetic_data, imgsz, device, clahe)
        better = result["score"] > state["best"]["score"]
        state["rounds"].append({"round": k, "teacher": str(teacher), "student": str(student), "data": str(real_yaml),
                                "mixed": str(mixed), **result, "kept": better})
        if better:
            state["best"] = {"round": k, "weights": str(student), "score": result["score"]}
        write_json(state_path, state, indent=2)
        print(f"round {k}: {result['signal']} score {result['score']:.4f} "
              f"({'student kept' if better else 'teacher kept: the student did not improve'})")

    final = out / "weights" / "best.pt"
    final.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(state["best"]["weights"], final)
    state["final"] = str(final)
    write_json(state_path, state, indent=2)
    return state


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; trailing KEY=VALUE pairs go to Ultralytics' trainer unchanged."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base_weights", required=True, help="the synthetic-only model to start from (.pt)")
    p.add_argument("--data", default=None, help="a data.yaml written by curate_and_split.py (round 1's data)")
    p.add_argument("--videos", nargs="*", default=[], help="unlabelled real videos to pseudo-label")
    p.add_argument("--synthetic_data", default=None, help="Phase 1 data.yaml mixed into every round")
    p.add_argument("--synthetic_fraction", type=share, default=0.3,
                   help="share of training images that are synthetic")
    p.add_argument("--eval_real", default=None,
                   help="keypoint-labelled real frames (images/ + keypoints.json) that choose the final weights")
    p.add_argument("--rounds", type=positive_int, default=2, help="teacher-student rounds")
    p.add_argument("--epochs", type=positive_int, default=20, help="epochs of the first round")
    p.add_argument("--topup_epochs", type=positive_int, default=10, help="epochs of each later round")
    p.add_argument("--self_train", action=argparse.BooleanOptionalAction, default=True,
                   help="relabel the videos with the current best model every round")
    p.add_argument("--self_min_conf_nh", type=unit_interval, default=0.5, help="pseudo-label confidence, needle holder")
    p.add_argument("--self_min_conf_t", type=unit_interval, default=0.5, help="pseudo-label confidence, tweezers")
    p.add_argument("--teacher_conf", type=unit_interval, default=0.1,
                   help="detection threshold of the teacher's video pass (curation decides what is kept)")
    p.add_argument("--stride", type=positive_int, default=None,
                   help="pseudo-label every N-th frame (default: each video's stride recorded with --data, else 1)")
    p.add_argument("--pre_clahe", action="store_true", help="CLAHE on frames before the teacher (with --videos)")
    p.add_argument("--clahe_clip", type=float, default=2.0)
    p.add_argument("--imgsz", type=positive_int, default=640)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", type=available_device, default="", help="'' auto, cpu, 0")
    p.add_argument("--lr0", type=positive_float, default=0.0005,
                   help="AdamW learning rate: low, to fine-tune conservatively")
    p.add_argument("--freeze", type=non_negative_int, default=10, help="freeze the first N layers (10: the whole backbone)")
    p.add_argument("--val_split", type=share, default=None,
                   help="share of curated frames held out in later rounds (whole videos, or time blocks for a single "
                        "video; default: as curate_and_split.py recorded with --data, else 0.2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--project", default="refine")
    p.add_argument("--name", default="train")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="other Ultralytics train arguments")
    opt = p.parse_args(argv)
    opt.overrides = train.parse_overrides(p, opt.overrides, options=vars(opt), fixed=SET_BY_REFINE)
    return opt


@user_errors_in_one_line
def main(opt: argparse.Namespace) -> None:
    overrides = vars(opt).pop("overrides")
    try:
        state = run(**vars(opt), **overrides)
    except KeyboardInterrupt:
        raise SystemExit("interrupted: rerun the same command to go on (finished rounds are kept, the round in "
                         "progress picks up its pseudo-labels, curation and training)") from None
    best = state["best"]
    print(f"chosen: round {best['round']} ({best['score']:.4f}) -> {state['final']}")


if __name__ == "__main__":
    main(parse_opt())
