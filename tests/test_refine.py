"""refine.py: the self-training loop on real components (video inference on a generated clip, curation,
short refine rounds mixing synthetic data, selection on real-format labelled frames)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from ultralytics.models.yolo.pose import PoseTrainer

import curate_and_split
import refine
import train
import video
from datasets import real_format_folder, tiny_dataset, trained_run

#: Rules under which a briefly trained model (scores ~0.005) still yields pseudo-labels.
PERMISSIVE = dict(min_conf_nh=0.0, min_conf_t=0.0, min_box_area=0, min_kpt_conf=0, min_track=0,
                  require_any=True, dup_thresh=0, split=0.3, block_frames=3)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    base = tmp_path_factory.getbasetemp()
    tiny = tiny_dataset(base / "tiny")
    weights = trained_run(base, "pose") / "weights" / "best.pt"
    real = real_format_folder(tiny["pose"].parent.parent, tmp_path_factory.mktemp("real_format"))
    return {"tiny": tiny, "weights": weights, "real": real}


def test_mixed_data_holds_the_synthetic_share(setup, tmp_path):
    clip = setup["tiny"]["clip"]
    video.run(weights=setup["weights"], video=clip, out_dir=tmp_path / "v", imgsz=64, conf=0.001, export=None)
    curate_and_split.run(pair=[f"{clip}::{tmp_path / 'v'}"], out_ds=tmp_path / "ds", **PERMISSIVE)
    mixed = train.mix_datasets(tmp_path / "ds" / "data.yaml", setup["tiny"]["pose"], 0.5, 0, tmp_path / "mix",
                               flag="synthetic_fraction")
    data = yaml.safe_load(mixed.read_text())
    listed = (tmp_path / "mix" / data["train"]).read_text().split()
    real = [p for p in listed if "/ds/" in p]
    assert len(real) == len(list((tmp_path / "ds" / "images" / "train").glob("*.jpg"))) > 0
    assert len(listed) - len(real) == len(real)  # half synthetic (the 8 synthetic train images repeat if need be)
    val = (tmp_path / "mix" / data["val"]).read_text().split()
    assert sum("/ds/" not in p for p in val) == 4  # the whole synthetic val split: labels we trust
    assert data["kpt_shape"] == [5, 3] and data["kpt_oks_sigmas"]
    with pytest.raises(ValueError, match="synthetic_fraction"):
        train.mix_datasets(tmp_path / "ds" / "data.yaml", setup["tiny"]["pose"], 1.0, 0, tmp_path / "bad",
                           flag="synthetic_fraction")


def two_rounds_on_curated_pseudo_labels(setup, tmp_path, **changes) -> dict:
    """refine.run arguments: round 1 on the teacher's curated pseudo-labels of the tiny clip, round 2 relabels it."""
    clip = setup["tiny"]["clip"]
    video.run(weights=setup["weights"], video=clip, out_dir=tmp_path / "v", imgsz=64, conf=0.001, export=None)
    curate_and_split.run(pair=[f"{clip}::{tmp_path / 'v'}"], out_ds=tmp_path / "ds", **PERMISSIVE)
    return dict(base_weights=setup["weights"], data=tmp_path / "ds" / "data.yaml", synthetic_data=setup["tiny"]["pose"],
                eval_real=setup["real"], rounds=2, epochs=1, topup_epochs=1, imgsz=64, batch=4, device="cpu",
                teacher_conf=0.001, self_min_conf_nh=0.0, self_min_conf_t=0.0, project=str(tmp_path / "runs"),
                name="r", workers=0, **changes)


def test_two_rounds_choose_by_real_labels_and_resume(setup, tmp_path, capsys):
    clip = setup["tiny"]["clip"]
    args = two_rounds_on_curated_pseudo_labels(setup, tmp_path)
    state = refine.run(**args)
    # the tiny clip's 24 frames, 30 % held out: too few to learn from, and said before each round trains
    said = capsys.readouterr().out
    assert f"warning: round 1: {args['data']}: only " in said and "training frames kept (fewer than 20)" in said
    out = tmp_path / "runs" / "r"
    assert [r["round"] for r in state["rounds"]] == [1, 2]
    assert state["rounds"][0]["data"] == str(tmp_path / "ds" / "data.yaml")  # round 1: the given curated data
    # round 2: the round-1 winner relabelled the clip under the rules recorded by curate_and_split
    report = json.loads((out / "round2" / "curated" / "curation.json").read_text())
    assert report["rules"]["min_track"] == 0 and report["sources"][0]["video"] == str(clip)
    assert (out / "round2" / "pseudo" / clip.stem / "run.json").is_file()
    scores = [state["teacher"]["score"]] + [r["score"] for r in state["rounds"]]
    assert all(r["signal"] == "eval_real" for r in state["rounds"])
    assert state["best"]["score"] == max(scores)  # the final model is the best scorer on the real labels
    assert (out / "weights" / "best.pt").is_file()
    assert json.loads((out / "refine.json").read_text())["best"] == state["best"]
    again = refine.run(**args)  # finished rounds are skipped, not retrained
    assert again["rounds"] == state["rounds"]
    with pytest.raises(ValueError, match=r"other settings \(eval_real: .* recorded, None now; lr0: 0.0005 recorded, "
                                         r"0.001 now\); rerun with the same"):
        refine.run(**{**args, "eval_real": None, "lr0": 0.001})   # new rounds would be scored another way
    assert json.loads((out / "refine.json").read_text())["rounds"] == state["rounds"]
    # the same --data folder curated again with other rules is other data: not resumed as if it were the same
    curate_and_split.run(pair=[f"{clip}::{tmp_path / 'v'}"], out_ds=tmp_path / "ds", **{**PERMISSIVE, "split": 0.5})
    with pytest.raises(ValueError, match=r"other settings \(data_digest: \w+ recorded, \w+ now"):
        refine.run(**args)


def test_an_interrupted_round_goes_on_where_it_stopped(setup, tmp_path):
    """Ctrl-C in a round's training resumes that training (not the round from its pseudo-labels); a round
    trained but not yet scored is scored without training again."""
    saved: list[int] = []

    class Recording(PoseTrainer):
        def save_model(self):
            super().save_model()
            saved.append(self.epoch)

    class Interrupted(Recording):
        def save_model(self):
            super().save_model()
            if "round2" in str(self.save_dir):
                raise KeyboardInterrupt   # as if Ctrl-C hit right after round 2's first checkpoint

    args = two_rounds_on_curated_pseudo_labels(setup, tmp_path, plots=False)
    args["topup_epochs"] = 2
    with pytest.raises(KeyboardInterrupt):
        refine.run(**args, trainer=Interrupted)
    round2 = tmp_path / "runs" / "r" / "round2"
    report = (round2 / "curated" / "curation.json").stat().st_mtime_ns
    saved.clear()
    state = refine.run(**args, trainer=Recording)
    assert saved == [1]                                       # round 2's epoch left, from its last.pt
    assert (round2 / "curated" / "curation.json").stat().st_mtime_ns == report   # pseudo-labels not redone
    assert len(list(csv.DictReader((round2 / "train" / "results.csv").open()))) == 2
    record = json.loads((tmp_path / "runs" / "r" / "refine.json").read_text())
    record["rounds"] = record["rounds"][:1]   # killed after round 2's training, before it was scored
    (tmp_path / "runs" / "r" / "refine.json").write_text(json.dumps(record))
    saved.clear()
    again = refine.run(**args, trainer=Recording)
    assert saved == [] and again["rounds"] == state["rounds"]


def test_videos_of_one_name_keep_their_own_pseudo_labels(setup, tmp_path):
    """caseA/clip.mp4 and caseB/clip.mp4: labelled into one folder, the second run replaced the first's labels
    and curation paired caseA's frames with caseB's labels."""
    videos = []
    for case in ("caseA", "caseB"):
        (tmp_path / case).mkdir()
        videos.append(tmp_path / case / setup["tiny"]["clip"].name)
        videos[-1].write_bytes(setup["tiny"]["clip"].read_bytes())
    sources = [{"video": str(v), "stride": 1, "preprocess": {"clahe": False}} for v in videos]
    pairs = refine.pseudo_label(Path(setup["weights"]), sources, tmp_path / "pseudo", 64, "cpu", 0.001)
    folders = [Path(p.split("::")[1]) for p in pairs]
    assert len(set(folders)) == 2
    for source, folder in zip(videos, folders):
        assert json.loads((folder / "run.json").read_text())["video"] == str(source)
        assert list((folder / "labels").glob("*.txt"))
    assert refine.label_dirs(["a/x.mp4", "b/y.mp4"], tmp_path) == [tmp_path / "x", tmp_path / "y"]


def test_later_rounds_relabel_each_video_as_it_was_curated(setup, tmp_path):
    """Every video at its own stride (a 5 fps clip at 1, 30 fps ones at 3): not all at the largest."""
    clip = setup["tiny"]["clip"]
    other = tmp_path / "other.mp4"
    other.write_bytes(clip.read_bytes())
    for source, stride in ((clip, 1), (other, 2)):
        video.run(weights=setup["weights"], video=source, out_dir=tmp_path / source.stem, imgsz=64, conf=0.001,
                  export=None, stride=stride)
    curate_and_split.run(pair=[f"{clip}::{tmp_path / clip.stem}", f"{other}::{tmp_path / other.stem}"],
                         out_ds=tmp_path / "ds", **PERMISSIVE)
    sources, rules = refine.curated_sources(tmp_path / "ds" / "data.yaml")
    assert [(Path(s["video"]).name, s["stride"]) for s in sources] == [("clip.mp4", 1), ("other.mp4", 2)]
    assert rules["split"] == PERMISSIVE["split"]
    refine.pseudo_label(setup["weights"], sources, tmp_path / "again", 64, "cpu", 0.001)
    assert [json.loads((tmp_path / "again" / name / "run.json").read_text())["stride"] for name in ("clip", "other")] \
        == [1, 2]


def test_clahe_of_the_curated_labels_reaches_relabelling_and_scoring(setup, tmp_path):
    """Videos pseudo-labelled on CLAHE frames are relabelled with it, at their clip, and the rounds are scored
    on CLAHE frames too."""
    pre = {"clahe": True, "clahe_clip": 3.0}
    refine.pseudo_label(setup["weights"], [{"video": str(setup["tiny"]["clip"]), "stride": 1, "preprocess": pre}],
                        tmp_path, 64, "cpu", 0.001)
    recorded = json.loads((tmp_path / "clip" / "run.json").read_text())["preprocess"]
    assert (recorded["clahe"], recorded["clahe_clip"]) == (True, 3.0)
    assert [refine.score(setup["weights"], setup["real"], None, 64, "cpu", p)["pre_clahe"] for p in (None, pre)] \
        == [False, True]


def test_clear_errors(setup, tmp_path):
    with pytest.raises(ValueError, match="--videos"):
        refine.run(base_weights=setup["weights"], synthetic_data=setup["tiny"]["pose"], project=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="video not found"):
        refine.run(base_weights=setup["weights"], videos=[tmp_path / "none.mp4"], project=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="weights not found"):
        refine.run(base_weights=tmp_path / "none.pt", videos=[setup["tiny"]["clip"]], project=str(tmp_path))
    with pytest.raises(ValueError, match="eval_real or --synthetic_data"):
        refine.run(base_weights=setup["weights"], videos=[setup["tiny"]["clip"]], project=str(tmp_path))
    # wrong values stop before the teacher is scored and the settings recorded (which would lock --name)
    for wrong, message in (({"synthetic_fraction": 1.5}, r"--synthetic_fraction must be in \[0, 1\)"),
                           ({"lr0": -1.0}, "'lr0=-1.0' is an invalid value"),
                           ({"lr": 0.1}, r"not Ultralytics train arguments: lr= \(did you mean"),
                           ({"val_split": 3.0}, r"--val_split must be in \[0, 1\), got 3.0")):
        with pytest.raises(ValueError, match=message):
            refine.run(base_weights=setup["weights"], videos=[setup["tiny"]["clip"]], eval_real=setup["real"],
                       project=str(tmp_path), name="wrong", **wrong)
    assert not (tmp_path / "wrong").exists()
    with pytest.raises(ValueError, match="--data and --synthetic_data are both"):
        refine.run(base_weights=setup["weights"], data=setup["tiny"]["pose"], synthetic_data=setup["tiny"]["pose"],
                   self_train=False, eval_real=setup["real"], project=str(tmp_path), name="same")
