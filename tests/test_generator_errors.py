"""Bad input gets a one-line error, a non-zero exit, and never a dataset that looks complete."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT


def generate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "synthetic_data_generator.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def bad_camera(tmp_path):
    path = tmp_path / "camera.json"
    path.write_text("{not json")
    return path


@pytest.mark.parametrize("case", ["count", "fraction", "no_val", "camera", "backgrounds", "hdri", "shard", "size",
                                  "tools", "out", "range", "lights", "tilt", "pool"])
def test_bad_input_one_line_error(case, tmp_path, bad_camera):
    empty = tmp_path / "empty"
    empty.mkdir()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = tmp_path / "out"
    args = {
        "count": (["--num_images", "0"], "--num_images"),
        "fraction": (["--val_fraction", "1.5"], "--val_fraction"),
        "camera": (["--camera", str(bad_camera)], "camera.json"),
        "backgrounds": (["--backgrounds", str(empty)], "no images"),
        "hdri": (["--hdri", str(empty)], "--hdri"),
        "shard": (["--shard", "4/4"], "--shard"),
        "size": (["--width", "3"], "--width"),
        "tools": (["--tools_dir", str(empty)], str(empty)),
        "out": (["--out", str(blocker / "sub")], "not writable"),
        "no_val": (["--val_fraction", "0"], "Ultralytics needs a val split"),
        "range": (["--tools", "2", "1"], "--tools MIN MAX: MIN 2 is above MAX 1"),
        "lights": (["--lights", "0", "2"], "--lights: MIN must be at least 1"),
        "tilt": (["--max_tilt", "-5"], "--max_tilt"),
        "pool": (["--tools", "5", "6"], "--tools MIN 5 is more than the 4 instruments"),
    }[case]
    proc = generate("--num_images", "2", "--out", str(out), *args[0])
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert args[1] in lines[0]
    assert not (out / "yolo_data" / "data.yaml").exists()
    assert not (out / "generator_config.json").exists()   # nothing recorded: the corrected command may run
