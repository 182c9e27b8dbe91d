"""The README's quick start as a new user meets it: the shipped model without --weights from any folder, a console
that shows the toolkit's own messages only (the libraries' go to a log file), and make demo's video."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import pytest

import video
from conftest import ROOT
from datasets import read_video, tiny_dataset, trained_run, write_clip
from surgpose.console import LOG_NAME
from surgpose.inference import MIN_CALIBRATION_FRAMES, SHIPPED_WEIGHTS

#: What third-party messages look like on a console (Ultralytics, NNCF, torch, OpenVINO, Python warnings).
THIRD_PARTY = ("WARNING", "Warning", "warn", "INFO", "NNCF", "nncf", "Ultralytics", "deprecated", "CUDA", "OpenVINO",
               "━", "torch")


def run_script(script: str, args: list[str], cwd: Path) -> tuple[str, str]:
    """Run a phase script as a user does, from `cwd`, with an Ultralytics config folder never used before (its
    first-run notice included); returns the console (stdout and stderr together) and stdout."""
    env = {**os.environ, "YOLO_CONFIG_DIR": str(cwd / "fresh_config")}
    done = subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr, done.stdout


def third_party_lines(console: str) -> list[str]:
    """Console lines (progress bars split at their carriage returns) that a library printed."""
    lines = console.replace("\r", "\n").splitlines()
    return [line for line in lines if any(mark in line for mark in THIRD_PARTY)]


@pytest.fixture(scope="module")
def pose_weights(tmp_path_factory) -> Path:
    return trained_run(tmp_path_factory.getbasetemp(), "pose") / "weights" / "best.pt"


def test_shipped_model_is_the_default_from_any_folder(tmp_path):
    """`python predict.py --source DIR --out_dir OUT` run from outside the repository: the shipped pose model (and
    its masks) with no --weights, a quiet console and the paths printed as typed."""
    assert video.parse_opt(["--video", "v.mp4", "--out_dir", "o"]).weights == str(SHIPPED_WEIGHTS)
    frames = tmp_path / "my frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "a.jpg"), read_video(tiny_dataset(tmp_path / "tiny")["clip"])[0])
    console, stdout = run_script("predict.py", ["--source", "my frames", "--out_dir", "out"], tmp_path)
    assert (tmp_path / "out" / "predictions.json").is_file() and (tmp_path / "out" / "labels" / "a.txt").is_file()
    assert stdout.strip().splitlines()[-1].endswith("-> out/predictions.json" + (
        f" (library messages in out/{LOG_NAME})" if (tmp_path / "out" / LOG_NAME).exists() else ""))
    assert not third_party_lines(console), console
    assert str(tmp_path) not in console, "paths are printed relative to the working folder, as typed"


def test_first_int8_run_prints_only_our_messages(pose_weights, tmp_path):
    """The noisiest first run (float and INT8 exports: torch.jit's FutureWarnings, Ultralytics' settings notice and
    'half is deprecated', NNCF's banner, torch-version notice and progress bars): each export is one line of
    ours, the rest is in OUT/libraries.log, which the last line names."""
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "best.pt").write_bytes(pose_weights.read_bytes())
    write_clip(tmp_path / "clip.mp4", frames=MIN_CALIBRATION_FRAMES)
    console, stdout = run_script("video.py", ["--weights", "w/best.pt", "--video", "clip.mp4", "--out_dir", "out",
                                              "--imgsz", "64", "--export", "int8", "--seg_weights", "none",
                                              "--device", "cpu"], tmp_path)
    assert not third_party_lines(console), console
    exports = [line for line in console.splitlines() if line.startswith("exporting")]
    assert len(exports) == 1 and " made w/best_int8/clip-" in exports[0] and "(remove: rm -r " in exports[0]
    assert stdout.strip().splitlines()[-1].endswith(f"-> out (library messages in out/{LOG_NAME})")
    assert str(tmp_path) not in console
    log = (tmp_path / "out" / LOG_NAME).read_text()
    for said in ("Creating new Ultralytics Settings", "FutureWarning", "NNCF", "Statistics collection"):
        assert said in log


def test_a_folder_of_frames_plays_at_folder_fps(pose_weights, tmp_path):
    """make demo's 7 frames at 2 fps: a video that plays for seconds, not 0.2 s."""
    (tmp_path / "frames").mkdir()
    for k, frame in enumerate(read_video(write_clip(tmp_path / "clip.mp4", frames=7))):
        cv2.imwrite(str(tmp_path / "frames" / f"{k:02d}.png"), frame)
    record = video.run(weights=pose_weights, video=tmp_path / "frames", out_dir=tmp_path / "out", imgsz=64,
                       export=None, folder_fps=2)
    cap = cv2.VideoCapture(str(tmp_path / "out" / "annotated.mp4"))
    assert record["fps"] == 2 and cap.get(cv2.CAP_PROP_FPS) == 2 and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 7
    with pytest.raises(ValueError, match="plays at its own rate"):
        video.run(weights=pose_weights, video=tmp_path / "clip.mp4", out_dir=tmp_path / "o2", folder_fps=2)
    assert "--folder_fps 2" in (ROOT / "Makefile").read_text(), "make demo plays its frames at 2 fps"


def test_library_loggers_and_warnings_go_to_the_log(tmp_path):
    """torch's child loggers ("No CUDA runtime is found" comes from torch.utils.cpp_extension), Python warnings
    and a library logger imported after `quiet_libraries` (NNCF's, set up at its import) all land in the log."""
    code = f"""
        import logging, warnings
        from surgpose import console
        console.quiet_libraries()
        import torch
        logging.getLogger("ultralytics").warning("held until the log is named")
        console.log_to({str(tmp_path / LOG_NAME)!r})
        logging.getLogger("torch.utils.cpp_extension").warning("No CUDA runtime is found")
        warnings.warn("`torch.jit.trace` is deprecated", FutureWarning)
        with console.library_output():
            late = logging.getLogger("nncf")
            late.addHandler(logging.StreamHandler())   # what NNCF does when it is imported
            print("a progress bar")
        late.warning("NNCF provides best results with torch==2.5")
        print("ours")
        """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout == "ours\n" and done.stderr == "", done.stderr
    log = (tmp_path / LOG_NAME).read_text()
    for said in ("held until the log is named", "No CUDA runtime", "FutureWarning", "a progress bar", "NNCF provides"):
        assert said in log
