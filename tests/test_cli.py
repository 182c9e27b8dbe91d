"""Every phase script ends a run on bad input with one `error: ...` line instead of a traceback."""
from __future__ import annotations

import pytest

import curate_and_split
import evaluate
import import_labels
import predict
import refine
import train
import video


@pytest.mark.parametrize("script, argv, message", [
    (predict, ["--weights", "{t}/w.pt", "--source", "{t}/none.jpg", "--out_dir", "{t}/o"], "no images found at"),
    (video, ["--weights", "{t}/w.pt", "--video", "{t}/none.mp4", "--out_dir", "{t}/o"], "video not found"),
    (train, ["--data", "{t}/none.yaml", "--epochs", "1"], "does not exist"),
    (curate_and_split, ["--out_ds", "{t}/o", "--pair", "{t}/none.mp4::{t}/labels"], "video not found"),
    (refine, ["--base_weights", "{t}/none.pt", "--data", "{t}/none.yaml"], "weights not found"),
    (evaluate, ["--weights", "{t}/none.pt", "--real", "{t}"], "weights not found"),
    (import_labels, ["--source", "{t}/none", "--out", "{t}/o"], "/none not found"),
], ids=lambda v: getattr(v, "__name__", None))
def test_bad_input_ends_with_one_line(script, argv, message, tmp_path):
    opt = script.parse_opt([a.format(t=tmp_path) for a in argv])
    with pytest.raises(SystemExit) as exit_info:
        script.main(opt)
    text = str(exit_info.value.code)
    assert text.startswith("error: ") and message in text and "\n" not in text


@pytest.mark.parametrize("script, argv, message", [
    (train, ["--data", "d.yaml", "epochs=5", "cos_lr=True"], "not as KEY=VALUE: epochs= (use --epochs)"),
    (train, ["--data", "d.yaml", "augmentations=[]"], "augmentations= (train.py sets it)"),
    (refine, ["--base_weights", "w.pt", "optimizer=SGD", "lr0=0.1", "patience=3"],
     "not as KEY=VALUE: optimizer= (refine.py sets it), lr0= (use --lr0)"),
], ids=["train-option", "train-fixed", "refine"])
def test_key_value_arguments_that_would_clash_are_refused_before_any_work(script, argv, message, capsys,
                                                                         monkeypatch):
    """Passed on to Ultralytics beside the script's own value, such a key ended in a TypeError: at once in
    train.py, after the teacher's pseudo-labelling and curation in refine.py."""
    monkeypatch.setattr("sys.argv", [f"{script.__name__}.py"])
    with pytest.raises(SystemExit) as exit_info:
        script.parse_opt(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("script, argv, message", [
    (train, ["--data", "d.yaml", "lr=0.1"], "not Ultralytics train arguments: lr= (did you mean lrf or lr0?)"),
    (refine, ["--base_weights", "w.pt", "mosaic=abc"], "'mosaic=abc' is of invalid type str"),
    (refine, ["--base_weights", "w.pt", "--synthetic_fraction", "1.5"], "--synthetic_fraction: must be in [0, 1)"),
    (refine, ["--base_weights", "w.pt", "--lr0", "-1"], "--lr0: must be above 0, got -1"),
    (refine, ["--base_weights", "w.pt", "--stride", "-3"], "--stride: must be above 0, got -3"),
    (refine, ["--base_weights", "w.pt", "--teacher_conf", "5"], "--teacher_conf: must be in [0, 1], got 5"),
    (refine, ["--base_weights", "w.pt", "--val_split", "1"], "--val_split: must be in [0, 1), got 1"),
    (train, ["--data", "d.yaml", "--epochs", "1e2"], "--epochs: expected a whole number, got '1e2'"),
    (train, ["--data", "d.yaml", "--imgsz", "-5"], "--imgsz: must be above 0, got -5"),
    (predict, ["--weights", "w.pt", "--source", "s", "--out_dir", "o", "--scales", "0"], "--scales: must be above 0"),
    (predict, ["--weights", "w.pt", "--source", "s", "--out_dir", "o", "--conf", "25"], "--conf: must be in [0, 1]"),
    (video, ["--weights", "w.pt", "--video", "v.mp4", "--out_dir", "o", "--stride", "0"], "--stride: must be above 0"),
    (video, ["--weights", "w.pt", "--video", "v.mp4", "--out_dir", "o", "--max_frames", "0"], "--max_frames: must be"),
    (video, ["--weights", "w.pt", "--video", "v.mp4", "--out_dir", "o", "--kpt_conf", "5"], "--kpt_conf: must be in"),
    (evaluate, ["--weights", "w.pt", "--real", "r", "--imgsz", "0"], "--imgsz: must be above 0, got 0"),
], ids=["typo", "type", "share", "lr0", "refine-stride", "teacher_conf", "val_split", "epochs", "train-imgsz", "scales", "conf", "stride", "max_frames", "kpt_conf",
        "evaluate-imgsz"])
def test_wrong_values_stop_at_the_command_line(script, argv, message, capsys, monkeypatch):
    """They ran quietly with a clamped value (size 32, stride 1, 0 frames after wiping the earlier run), or
    stopped in a traceback after work (refine.py: after scoring the teacher, its rounds' settings recorded)."""
    monkeypatch.setattr("sys.argv", [f"{script.__name__}.py"])
    with pytest.raises(SystemExit) as exit_info:
        script.parse_opt(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_other_key_value_arguments_reach_ultralytics():
    assert train.parse_opt(["--data", "d.yaml", "cos_lr=True", "mosaic=0.5"]).overrides == {"cos_lr": True,
                                                                                          "mosaic": 0.5}
    assert refine.parse_opt(["--base_weights", "w.pt", "patience=3"]).overrides == {"patience": 3}
    # keys Ultralytics takes beyond its defaults, and train.run's own, which refine.py passes on
    assert train.parse_opt(["--data", "d.yaml", "save_dir=out"]).overrides == {"save_dir": "out"}
    assert refine.parse_opt(["--base_weights", "w.pt", "base_strength=0.2", "max_strength=0.5"]).overrides == {
        "base_strength": 0.2, "max_strength": 0.5}


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("script, argv", [
    (train, ["--data", "d.yaml"]), (refine, ["--base_weights", "w.pt"]),
    (predict, ["--weights", "w.pt", "--source", "s", "--out_dir", "o"]),
    (video, ["--weights", "w.pt", "--video", "v.mp4", "--out_dir", "o"]), (evaluate, ["--weights", "w.pt", "--real", "r"]),
], ids=lambda v: getattr(v, "__name__", None))
def test_a_gpu_this_machine_lacks_is_one_line(script, argv, capsys, monkeypatch):
    """Ultralytics answered --device 0 without CUDA with a many-line diagnostic, after loading the model."""
    monkeypatch.setattr("sys.argv", [f"{script.__name__}.py"])
    for device, message in (("0", "0: this machine has no CUDA GPU; use --device cpu"),
                            ("cuda:1", "cuda:1: this machine has no CUDA GPU"),
                            ("gpu", "expected '', cpu, mps or CUDA indices")):
        with pytest.raises(SystemExit) as exit_info:
            script.parse_opt([*argv, "--device", device])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and f"argument --device: {message}" in err and err.count("error") == 1
    assert script.parse_opt([*argv, "--device", "cpu"]).device == "cpu"


def test_runs_dir_nests_a_project_under_runs_once(tmp_path, monkeypatch):
    """`--project runs/x` used to land in runs/runs/x, since the scripts put every project under runs/."""
    from surgpose.cli import runs_dir

    monkeypatch.chdir(tmp_path)
    assert runs_dir("campaign") == tmp_path / "runs" / "campaign"
    assert runs_dir("runs/campaign") == tmp_path / "runs" / "campaign"
    assert runs_dir("runsx") == tmp_path / "runs" / "runsx"
    assert runs_dir(tmp_path / "elsewhere") == tmp_path / "elsewhere"
