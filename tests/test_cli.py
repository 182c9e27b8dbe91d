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
