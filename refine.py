"""Phase 4: self-training on unlabelled real video, without forgetting the synthetic domain.

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
import json
import random
import shutil
from pathlib import Path
from typing import Any, Sequence

from surgpose import offline

offline.configure()

import yaml  # noqa: E402

import curate_and_split  # noqa: E402
import evaluate  # noqa: E402
import train  # noqa: E402
import video  # noqa: E402
from surgpose.cli import user_errors_in_one_line  # noqa: E402
from surgpose.files import write_json, write_text  # noqa: E402
from surgpose.inference import load_model, repeated  # noqa: E402
from surgpose.metrics import real_score  # noqa: E402

#: train.run arguments every round sets itself (see `run`), beyond refine.py's own options.
SET_BY_REFINE = ("model", "exist_ok", "optimizer", "warmup_epochs", "resume", *train.SET_BY_RUN)


def mix_datasets(real_yaml: str | Path, synthetic_yaml: str | Path | None, synthetic_fraction: float, seed: int,
                 out_dir: str | Path) -> Path:
    """A data.yaml whose train list is the real (pseudo-labelled) train images plus a random share of synthetic
    ones, so that `synthetic_fraction` of the images are synthetic; val is the synthetic val split (labels we
    trust) plus the pseudo-labelled val frames."""
    if not 0 <= synthetic_fraction < 1:
        raise ValueError(f"--synthetic_fraction must be in [0, 1), got {synthetic_fraction}")
    real = train.read_dataset(real_yaml)
    train_images, val_images = train.image_list(real["train"]), train.image_list(real["val"])
    if not train_images:
        raise ValueError(f"{real_yaml} has no training images: curation kept no frame (lower the thresholds)")
    if synthetic_yaml:
        synthetic = train.read_dataset(synthetic_yaml)
        if synthetic.get("kpt_shape") != real.get("kpt_shape"):
            raise ValueError(f"{synthetic_yaml} and {real_yaml} are not the same task (kpt_shape differs)")
        pool = train.image_list(synthetic["train"])
        wanted = round(len(train_images) * synthetic_fraction / (1 - synthetic_fraction))
        train_images += random.Random(seed).sample(pool, min(wanted, len(pool)))
        val_images = train.image_list(synthetic["val"]) + val_images
    out = Path(out_dir)
    write_text(out / "train.txt", "".join(f"{p}\n" for p in train_images))
    write_text(out / "val.txt", "".join(f"{p}\n" for p in val_images))
    keep = {k: real[k] for k in ("names", "kpt_shape", "flip_idx", "kpt_names", "kpt_oks_sigmas") if k in real}
    return write_text(out / "data.yaml", yaml.safe_dump({"train": "train.txt", "val": "val.txt", **keep},
                                                        sort_keys=False))


def score(weights: str | Path, eval_real: str | Path | None, synthetic_data: str | Path | None, imgsz: int,
          device: str) -> dict[str, Any]:
    """The selection signal: real keypoint-labelled frames when given, else synthetic validation pose mAP."""
    if eval_real:
        metrics = evaluate.evaluate_real(weights, eval_real, imgsz=imgsz, device=device)
        return {"signal": "eval_real", "score": real_score(metrics), "metrics": metrics}
    if synthetic_data:
        metrics = evaluate.evaluate_yolo(weights, synthetic_data, imgsz=imgsz, device=device)
        main = "pose_map50_95" if "pose_map50_95" in metrics else "mask_map50_95"
        return {"signal": "synthetic_val", "score": metrics[main], "metrics": metrics}
    raise ValueError("refine.py needs --eval_real or --synthetic_data to choose between teacher and student: "
                     "a validation split of its own pseudo-labels cannot tell whether a round helped")


def label_dirs(videos: Sequence[str | Path], out_dir: Path) -> list[Path]:
    """One pseudo-label folder per video, named after it; videos of one name from different folders
    (`caseA/endo.mp4`, `caseB/endo.mp4`) get numbered ones, or the second run would replace the first's labels."""
    stems = [Path(v).stem for v in videos]
    shared = set(repeated(stems))
    return [out_dir / (f"{stem}_{k}" if stem in shared else stem) for k, stem in enumerate(stems)]


def pseudo_label(teacher: Path, videos: Sequence[str | Path], out_dir: Path, imgsz: int, device: str,
                 teacher_conf: float, preprocess: dict, stride: int = 1) -> list[str]:
    """Run the teacher over every video (video.py, labels with confidences); return curation pairs."""
    pairs = []
    for source, labels in zip(videos, label_dirs(videos, out_dir)):
        video.run(weights=teacher, video=source, out_dir=labels, imgsz=imgsz, conf=teacher_conf, device=device,
                  export=None, pre_clahe=preprocess.get("clahe", False),
                  clahe_clip=preprocess.get("clahe_clip") or 2.0, stride=stride)
        pairs.append(f"{source}::{labels}")
    return pairs


def curated_sources(data: str | Path) -> tuple[list[str], dict, dict, int]:
    """Videos, curation rules, preprocessing and frame stride recorded by `curate_and_split.py` beside a
    curated data.yaml."""
    report_path = Path(data).parent / curate_and_split.REPORT
    if not report_path.is_file():
        raise FileNotFoundError(f"{report_path} not found: --self_train with --data needs a dataset written by "
                                "curate_and_split.py (or pass --videos)")
    report = json.loads(report_path.read_text())
    sources = report["sources"]
    preprocess = next((s.get("preprocess") or {} for s in sources if s.get("preprocess")), {})
    stride = max((int(s.get("stride") or 1) for s in sources), default=1)
    return [s["video"] for s in sources], report.get("rules", {}), preprocess, stride


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
    val_split: float = 0.2,
    seed: int = 0,
    project: str = "refine",
    name: str = "train",
    **train_overrides: Any,
) -> dict[str, Any]:
    """Run the self-training rounds; return the record written to `runs/<project>/<name>/refine.json`."""
    base_weights = Path(base_weights)
    load_model(base_weights)  # clear error for missing or foreign weights before any work
    rules: dict = {}
    preprocess = {"clahe": pre_clahe, "clahe_clip": clahe_clip}
    if data and not videos and self_train:
        videos, rules, preprocess, recorded_stride = curated_sources(data)
        stride = stride or recorded_stride
    if not data and not videos:
        raise ValueError("give --videos to pseudo-label, or --data (a dataset from curate_and_split.py)")
    for v in videos:
        if not Path(v).exists():
            raise FileNotFoundError(f"video not found: {v}")
    out = (Path("runs") / project / name).resolve()
    state_path = out / "refine.json"
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.is_file() else {}
    if state and state.get("base_weights") != str(base_weights.resolve()):
        raise ValueError(f"{out} holds a refinement of {state.get('base_weights')}; choose another --name")
    # what the rounds were made with: a rerun goes on only with the same (more --rounds, another --device are fine)
    settings = json.loads(json.dumps({
        "data": data and Path(data).resolve(), "videos": [Path(v).resolve() for v in videos],
        "synthetic_data": synthetic_data and Path(synthetic_data).resolve(), "synthetic_fraction": synthetic_fraction,
        "eval_real": eval_real and Path(eval_real).resolve(), "epochs": epochs, "topup_epochs": topup_epochs,
        "self_train": self_train, "self_min_conf_nh": self_min_conf_nh, "self_min_conf_t": self_min_conf_t,
        "teacher_conf": teacher_conf, "stride": stride, "preprocess": preprocess, "imgsz": imgsz, "batch": batch,
        "lr0": lr0, "freeze": freeze, "val_split": val_split, "seed": seed,
        "train": {k: v for k, v in train_overrides.items() if k != "trainer"}}, default=str))  # trainer: a code hook
    differ = [f"{k}: {state['settings'].get(k)} recorded, {v} now" for k, v in settings.items()
              if "settings" in state and state["settings"].get(k) != v]
    if differ:
        raise ValueError(f"{out} holds rounds made with other settings ({'; '.join(differ)}); rerun with the same "
                         "ones to go on, or choose another --name")
    if not state:
        state = {"base_weights": str(base_weights.resolve()), "settings": settings, "rounds": [],
                 "teacher": score(base_weights, eval_real, synthetic_data, imgsz, device)}
        state["best"] = {"round": 0, "weights": str(base_weights.resolve()), "score": state["teacher"]["score"]}
        write_json(state_path, state, indent=2)
    print(f"round 0 (base): {state['teacher']['signal']} score {state['teacher']['score']:.4f}")

    for k in range(len(state["rounds"]) + 1, rounds + 1):
        work = out / f"round{k}"
        teacher = Path(state["best"]["weights"])
        if self_train and videos and (k > 1 or not data):
            if not (work / "curated" / curate_and_split.REPORT).is_file():   # else made before an interruption
                pairs = pseudo_label(teacher, videos, work / "pseudo", imgsz, device, teacher_conf, preprocess,
                                     stride or 1)
                curate_and_split.run(pair=pairs, out_ds=work / "curated", **{
                    **rules, "min_conf_nh": self_min_conf_nh, "min_conf_t": self_min_conf_t, "split": val_split,
                    "seed": seed + k})
            real_yaml = work / "curated" / "data.yaml"
        else:
            real_yaml = Path(data)
        if not train.image_list(train.read_dataset(real_yaml)["train"]):
            print(f"round {k}: curation kept no frame of the teacher's pseudo-labels; stopping (teacher kept)")
            state["rounds"].append({"round": k, "teacher": str(teacher), "data": str(real_yaml), "kept": False,
                                    "stopped": "no pseudo-labelled frame passed curation"})
            write_json(state_path, state, indent=2)
            break
        mixed = mix_datasets(real_yaml, synthetic_data, synthetic_fraction, seed + k, work / "mixed")
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
        result = score(student, eval_real, synthetic_data, imgsz, device)
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
    p.add_argument("--synthetic_fraction", type=float, default=0.3, help="share of training images that are synthetic")
    p.add_argument("--eval_real", default=None,
                   help="keypoint-labelled real frames (images/ + keypoints.json) that choose the final weights")
    p.add_argument("--rounds", type=int, default=2, help="teacher-student rounds")
    p.add_argument("--epochs", type=int, default=20, help="epochs of the first round")
    p.add_argument("--topup_epochs", type=int, default=10, help="epochs of each later round")
    p.add_argument("--self_train", action=argparse.BooleanOptionalAction, default=True,
                   help="relabel the videos with the current best model every round")
    p.add_argument("--self_min_conf_nh", type=float, default=0.5, help="pseudo-label confidence, needle holder")
    p.add_argument("--self_min_conf_t", type=float, default=0.5, help="pseudo-label confidence, tweezers")
    p.add_argument("--teacher_conf", type=float, default=0.1,
                   help="detection threshold of the teacher's video pass (curation decides what is kept)")
    p.add_argument("--stride", type=int, default=None,
                   help="pseudo-label every N-th frame (default: the stride recorded with --data, else 1)")
    p.add_argument("--pre_clahe", action="store_true", help="CLAHE on frames before the teacher (with --videos)")
    p.add_argument("--clahe_clip", type=float, default=2.0)
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="", help="'' auto, cpu, 0")
    p.add_argument("--lr0", type=float, default=0.0005, help="AdamW learning rate: low, to fine-tune conservatively")
    p.add_argument("--freeze", type=int, default=10, help="freeze the first N layers (10: the whole backbone)")
    p.add_argument("--val_split", type=float, default=0.2, help="share of curated frames held out (whole videos, or time blocks for a single video)")
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
    state = run(**vars(opt), **overrides)
    best = state["best"]
    print(f"chosen: round {best['round']} ({best['score']:.4f}) -> {state['final']}")


if __name__ == "__main__":
    main(parse_opt())
