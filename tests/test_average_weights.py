"""average_weights.py on the shipped checkpoints: the share-weighted mean of every tensor, a finished
checkpoint Ultralytics loads, and one-line errors for what cannot be averaged."""
from __future__ import annotations

import cv2
import pytest
import torch
from ultralytics import YOLO
from ultralytics.utils.patches import torch_load

import average_weights
import train
from conftest import ROOT
from surgpose.schema import CLASSES

SYNTHETIC = ROOT / "models" / "synthetic_weights.pt"
REFINED = ROOT / "models" / "refined_weights.pt"
SEGMENTATION = ROOT / "models" / "seg_weights.pt"


def _state(path) -> dict[str, torch.Tensor]:
    return average_weights.read_network(path)[0].state_dict()


def _variant(path, tmp_path, name: str, **changes) -> str:
    """A copy of the checkpoint at `path` with some of its keys changed (Ultralytics' own format otherwise)."""
    ckpt = torch_load(path, map_location="cpu")
    ckpt.update(changes)
    torch.save(ckpt, tmp_path / name)
    return str(tmp_path / name)


def test_the_average_is_the_share_weighted_mean_of_every_tensor(tmp_path):
    out = average_weights.run([SYNTHETIC, REFINED], tmp_path / "soup.pt", shares=[0.25, 0.75])
    a, b, mean = _state(SYNTHETIC), _state(REFINED), _state(out)
    assert mean.keys() == a.keys()
    differing = 0
    for key, value in mean.items():
        if value.is_floating_point():
            expected = (0.25 * a[key].double() + 0.75 * b[key].double()).half().float()
            assert torch.equal(value, expected), key
            differing += not torch.equal(a[key], b[key])
        else:
            assert torch.equal(value, a[key]), key
    assert differing > 100   # two different models, so the test can tell a mean from a copy
    ckpt = torch_load(out, map_location="cpu")
    assert [(s["weights"], s["share"]) for s in ckpt["averaged_from"]] == [(str(SYNTHETIC), 0.25), (str(REFINED), 0.75)]
    assert ckpt["optimizer"] is None and ckpt["ema"] is None and train.finished(out)
    assert not {"train_metrics", "train_results", "git"} & ckpt.keys()   # no figures of a source as its own


def test_an_unfinished_checkpoint_contributes_its_ema_weights(tmp_path):
    shipped = torch_load(SYNTHETIC, map_location="cpu")
    unfinished = _variant(SYNTHETIC, tmp_path, "last.pt", model=None, ema=shipped["model"], epoch=3, optimizer={},
                          train_metrics={"fitness": 0.9})
    from_unfinished = average_weights.run([unfinished, REFINED], tmp_path / "a.pt")
    from_finished = average_weights.run([SYNTHETIC, REFINED], tmp_path / "b.pt")
    expected, found = _state(from_finished), _state(from_unfinished)
    assert all(torch.equal(found[key], value) for key, value in expected.items())
    assert "train_metrics" not in torch_load(from_unfinished, map_location="cpu")


def test_a_checkpoint_averaged_with_itself_predicts_as_before(tmp_path):
    out = average_weights.run([SYNTHETIC, SYNTHETIC, SYNTHETIC], tmp_path / "same.pt", shares=[0.333, 0.333, 0.333])
    frame = cv2.imread(str(ROOT / "docs" / "synthetic_images.jpg"))   # a montage of renders
    before, after = (YOLO(str(w)).predict(frame, conf=0.01, device="cpu", verbose=False)[0] for w in (SYNTHETIC, out))
    assert list(YOLO(str(out)).names.values()) == list(CLASSES)
    assert len(after.boxes) == len(before.boxes) > 0
    assert torch.equal(after.boxes.data, before.boxes.data)
    assert torch.equal(after.keypoints.data, before.keypoints.data)


@pytest.mark.parametrize("argv, message", [
    (["--weights", "{s}", "--out", "{t}/o.pt"], "at least two checkpoints"),
    (["--weights", "{s}", "{r}", "--shares", "0.5", "--out", "{t}/o.pt"], "1 shares for 2 checkpoints"),
    (["--weights", "{s}", "{r}", "--shares", "0.7", "0.7", "--out", "{t}/o.pt"], "sum to 1, not 0.7 + 0.7"),
    (["--weights", "{s}", "{r}", "--out", "{t}/o.pth"], "--out must name a .pt file"),
    (["--weights", "{s}", "{t}/none.pt", "--out", "{t}/o.pt"], "weights not found"),
    (["--weights", "{s}", "{t}/text.pt", "--out", "{t}/o.pt"], "as an Ultralytics checkpoint"),
    (["--weights", "{s}", "{t}/empty.pt", "--out", "{t}/o.pt"], "as an Ultralytics checkpoint"),
    (["--weights", "{s}", "{t}/classes.pt", "--out", "{t}/o.pt"], "predicts classes ['a', 'b']; this project's are"),
    (["--weights", "{s}", "{g}", "--out", "{t}/o.pt"], "is another network than"),
], ids=["one", "shares-count", "shares-sum", "out-suffix", "missing", "not-a-checkpoint", "no-network",
        "other-classes", "pose-and-seg"])
def test_what_cannot_be_averaged_is_one_line_and_writes_nothing(argv, message, tmp_path):
    (tmp_path / "text.pt").write_text("not a checkpoint")
    torch.save({"model": None}, tmp_path / "empty.pt")
    other = torch_load(REFINED, map_location="cpu")["model"]
    other.names = {0: "a", 1: "b"}
    _variant(REFINED, tmp_path, "classes.pt", model=other)
    before = sorted(tmp_path.iterdir())
    opt = average_weights.parse_opt([a.format(s=SYNTHETIC, r=REFINED, g=SEGMENTATION, t=tmp_path) for a in argv])
    with pytest.raises(SystemExit) as exit_info:
        average_weights.main(opt)
    text = str(exit_info.value.code)
    assert text.startswith("error: ") and message in text and "\n" not in text
    assert sorted(tmp_path.iterdir()) == before


def test_a_negative_share_stops_at_the_command_line(capsys):
    with pytest.raises(SystemExit):
        average_weights.parse_opt(["--weights", "a.pt", "b.pt", "--shares", "1.2", "-0.2", "--out", "o.pt"])
    assert "must be 0 or more, got -0.2" in capsys.readouterr().err
