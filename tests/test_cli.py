"""Every phase script ends a run on bad input with one `error: ...` line instead of a traceback."""
from __future__ import annotations

import pytest

import curate_and_split
import evaluate
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


def test_other_key_value_arguments_reach_ultralytics():
    assert train.parse_opt(["--data", "d.yaml", "cos_lr=True", "mosaic=0.5"]).overrides == {"cos_lr": True,
                                                                                          "mosaic": 0.5}
    assert refine.parse_opt(["--base_weights", "w.pt", "patience=3"]).overrides == {"patience": 3}
