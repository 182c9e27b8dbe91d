"""Bad input gets a one-line error, a non-zero exit, and never a dataset that looks complete."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
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
                                  "tools", "out", "out_file", "missing", "garbage", "fake_hdri", "one_frame",
                                  "inside", "fov", "range",
                                  "lights", "tilt", "closeup", "pool"])
def test_bad_input_one_line_error(case, tmp_path, bad_camera):
    wide_camera = tmp_path / "wide.json"   # focal lengths in mm, not pixels: Blender would fail in a worker
    wide_camera.write_text('{"width": 640, "height": 480, "fx": 4, "fy": 4, "cx": 320, "cy": 240}')
    garbage = tmp_path / "photos" / "photo.jpg"   # beside a good photo: a worker would fail when it drew this one
    garbage.parent.mkdir()
    garbage.write_text("garbage")
    cv2.imwrite(str(garbage.parent / "good.png"), np.zeros((8, 8, 3), np.uint8))
    fake_hdri = tmp_path / "maps" / "x.hdr"
    fake_hdri.parent.mkdir()
    fake_hdri.write_text("garbage")
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
        "out_file": (["--out", str(blocker)], f"--out {blocker} is a file"),
        "missing": (["--backgrounds", str(tmp_path / "none")], f"folder not found: {tmp_path / 'none'}"),
        "garbage": (["--backgrounds", str(garbage.parent)], "--backgrounds: 1 of 2 files are not the images"),
        "fake_hdri": (["--hdri", str(fake_hdri.parent)], "--hdri: 1 of 1 files are not the images"),
        "one_frame": (["--num_images", "1"], "--num_images must be at least 2 (a train and a val frame)"),
        "inside": (["--hands_dir", str(ROOT / "hands"), "--out", str(ROOT / "hands" / "synth")],
                   "lies inside --hands_dir"),
        "fov": (["--camera", str(wide_camera)], "give a 179 deg field of view (at most 160); are they in pixels?"),
        "no_val": (["--val_fraction", "0"], "Ultralytics needs a val split"),
        "range": (["--tools", "2", "1"], "--tools MIN MAX: MIN 2 is above MAX 1"),
        "lights": (["--lights", "0", "2"], "--lights: MIN must be at least 1"),
        "tilt": (["--max_tilt", "-5"], "--max_tilt"),
        "closeup": (["--closeup_probability", "1.5"], "--closeup_probability must be within 0..1"),
        "pool": (["--tools", "5", "6"], "--tools MIN 5 is more than the 4 instruments"),
    }[case]
    proc = generate("--num_images", "2", "--out", str(out), *args[0])
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert args[1] in lines[0]
    assert not (out / "yolo_data" / "data.yaml").exists()
    assert not (out / "generator_config.json").exists()   # nothing recorded: the corrected command may run


def test_a_record_that_is_not_one_is_a_one_line_error(tmp_path):
    (tmp_path / "generator_config.json").write_text("{not json")
    proc = generate("--num_images", "2", "--out", str(tmp_path))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and "generator_config.json is not a generator record" in lines[0]


@pytest.mark.parametrize("argv, message", [(["--seed", "-1"], "--seed: must be 0 or more"),
                                           (["--jpg_quality", "0"], "--jpg_quality: must be in [1, 100]"),
                                           (["--kelvin", "100", "200"], "--kelvin: must be in [1000, 40000]"),
                                           (["--no_hands", "--hands_dir", "hands"], "--no_hands and --hands_dir")])
def test_values_out_of_range_stop_at_the_command_line(argv, message, tmp_path):
    """They failed in a render worker after writing the record (seed), or ran quietly clamped (kelvin, quality)."""
    proc = generate("--num_images", "2", "--out", str(tmp_path / "out"), *argv)
    assert proc.returncode == 2 and message in proc.stderr and not (tmp_path / "out").exists()


def test_runs_starting_together_all_find_out_writable(tmp_path):
    """A job array's shards check one --out at the same time; one's check must not remove another's test file."""
    from concurrent.futures import ThreadPoolExecutor

    from data_generation.generator import check_writable

    out = tmp_path / "sharded"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: check_writable(out), range(2000)))   # raises on the first failed check
    assert out.is_dir() and not any(out.iterdir())   # nothing left behind in the dataset folder
