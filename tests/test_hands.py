"""Committed gloved hands: complete, up to date, adult-sized and in the renderer's hand frame."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from data_generation.generate_hands import GLOVE, POSES, SLEEVE, Hand, load_hands, make_hands, run
from surgpose.schema import CLASSES

ROOT = Path(__file__).resolve().parents[1]
HANDS = ROOT / "hands"


@pytest.fixture(scope="module")
def hands() -> dict:
    return {h.name: h for h in load_hands(HANDS)}


def test_every_pose_for_both_sides_with_its_class(hands):
    assert {"grip_needle_holder", "pinch_tweezers", "relaxed", "open"} <= set(POSES)
    assert sorted(hands) == sorted(f"{p}_{s}" for p in POSES for s in ("left", "right"))
    for hand in hands.values():
        assert hand.for_class == POSES[hand.pose].for_class
        assert hand.for_class in (*CLASSES, None)
    assert hands["grip_needle_holder_left"].for_class == "needle_holder"
    assert hands["pinch_tweezers_right"].for_class == "tweezers"


def test_committed_files_are_small_and_match_the_generator(hands, tmp_path):
    assert all(p.stat().st_size < 300_000 for p in HANDS.glob("*.obj"))
    for fresh in make_hands():
        assert np.abs(hands[fresh.name].vertices - fresh.vertices).max() < 1e-6
        assert np.array_equal(hands[fresh.name].faces, fresh.faces)
        assert np.array_equal(hands[fresh.name].face_material, fresh.face_material)   # via sleeve_start_face
    run(out=str(tmp_path))   # deterministic: a regenerated folder is byte-identical
    for path in HANDS.iterdir():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_left_hands_mirror_right_hands_with_the_thumb_on_their_own_side(hands):
    for pose in POSES:
        left, right = hands[f"{pose}_left"], hands[f"{pose}_right"]
        assert np.allclose(left.vertices, right.vertices * [1, -1, 1], atol=2e-6)
    open_right = hands["open_right"].vertices
    assert open_right[:, 1].max() > -open_right[:, 1].min() + 0.02   # spread thumb toward +y


def glove_and_sleeve(hand: Hand) -> tuple[np.ndarray, np.ndarray]:
    """The vertices of the glove's faces and of the sleeve's."""
    return tuple(hand.vertices[np.unique(hand.faces[hand.face_material == m])] for m in (GLOVE, SLEEVE))


def test_adult_size(hands):
    for hand in hands.values():
        glove, sleeve = glove_and_sleeve(hand)
        size = np.ptp(glove, axis=0)
        assert 0.2 < size[0] < 0.4 and 0.06 < size[1] < 0.25 and size[2] < 0.2
        # the sleeve carries the forearm 45 cm back from the glove, out of most frames, rising gently
        assert 0.3 < glove[:, 0].min() - sleeve[:, 0].min() < 0.45
        assert sleeve[:, 0].max() > glove[:, 0].min()                  # no gap at the cuff
        assert 0.05 < np.ptp(sleeve[:, 2]) < 0.2
    # open hand centred under the palm (wrist about 4.7 cm behind): middle fingertip 18-19 cm from the wrist
    assert 0.18 <= hands["open_right"].vertices[:, 0].max() + 0.047 <= 0.195


def test_holding_hands_sit_above_and_behind_the_grip_point(hands):
    for hand in hands.values():
        v = hand.vertices
        if hand.for_class:
            assert np.linalg.norm(v, axis=1).min() < 0.015      # fingertips at the handle
            assert abs(v[:, 2].min()) < 0.025                   # reach down to the tool, not far below
            assert v[:, 0].max() < 0.1                          # instrument tips stay uncovered
            assert v[:, 0].mean() < 0                           # the hand's bulk is behind the grip
        else:
            assert v[:, 2].min() == pytest.approx(0.0, abs=1e-6)   # resting on the plane
        assert np.median(v[:, 2]) > 0.02                        # back of the hand up, toward the camera
        assert v[:, 0].min() < -0.1                             # the forearm comes from -x


def test_pieces_are_closed_with_outward_normals(hands):
    hand = hands["grip_needle_holder_right"]
    pieces = trimesh.Trimesh(hand.vertices, hand.faces, process=False).split(only_watertight=False)
    assert len(pieces) == 3 + 5 * 3 + 1   # palm, wrist, cuff, three segments per digit; the sleeve
    assert all(p.is_watertight and p.volume > 0 for p in pieces)
    sleeve = trimesh.Trimesh(hand.vertices, hand.faces[hand.face_material == SLEEVE])
    assert sleeve.is_watertight and sleeve.volume > 0            # the sleeve is one closed piece of its own
    start = int(np.argmax(hand.face_material == SLEEVE))
    assert (hand.face_material[start:] == SLEEVE).all() and (hand.face_material[:start] == GLOVE).all()


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_hands(tmp_path / "absent")
    with pytest.raises(ValueError, match="no .obj"):
        load_hands(tmp_path)
    (tmp_path / "glove.obj").write_bytes((HANDS / "open_left.obj").read_bytes())
    with pytest.raises(ValueError, match=re.escape("glove.")):
        load_hands(tmp_path)
    (tmp_path / "glove.json").write_text(json.dumps({"side": "middle", "units": "m"}))
    with pytest.raises(ValueError, match=re.escape("glove.json")):
        load_hands(tmp_path)
    (tmp_path / "glove.json").write_text(json.dumps({"side": "left"}))
    (tmp_path / "glove.obj").write_text("v 0 0 0\nv 0.1 0 0\nv 0 0.1 0\nf 1 2 9\n")   # a face past the vertices
    with pytest.raises(ValueError, match=r"glove\.obj: (cannot read this mesh|a face points past)"):
        load_hands(tmp_path)
    (tmp_path / "glove.obj").write_bytes("# Cr\u00e9\u00e9 par\n".encode("latin-1") + (HANDS / "open_left.obj").read_bytes())
    assert len(load_hands(tmp_path)) == 1   # a Latin-1 comment is only a comment
    (tmp_path / "glove.obj").write_text("".join(
        " ".join(["v", *(f"{float(c) * 1000:.3f}" for c in line.split()[1:])]) + "\n" if line.startswith("v ") else line + "\n"
        for line in (HANDS / "open_left.obj").read_text().splitlines()))   # millimetres, sidecar says metres
    with pytest.raises(ValueError, match=r"glove\.obj: mesh is 6\d\d m across; check 'units' in glove\.json"):
        load_hands(tmp_path)
    (tmp_path / "glove.obj").write_bytes((HANDS / "open_left.obj").read_bytes())
    for bad in (-1, 10**6, 2.5, "12"):
        (tmp_path / "glove.json").write_text(json.dumps({"side": "left", "sleeve_start_face": bad}))
        with pytest.raises(ValueError, match=r"glove\.json: sleeve_start_face must be a face index from 0 to \d+"):
            load_hands(tmp_path)


def test_user_hand_in_cm_with_an_offset_grip_point(hands, tmp_path):
    text = (HANDS / "relaxed_right.obj").read_text().splitlines()
    scaled = [" ".join(["v", *(f"{float(c) * 100 + 5:.6f}" for c in line.split()[1:])]) if line.startswith("v ")
              else line for line in text]
    (tmp_path / "mine.obj").write_text("\n".join(scaled) + "\n")
    (tmp_path / "mine.json").write_text(json.dumps({"name": "mine", "pose": "relaxed", "side": "right",
                                                    "units": "cm", "grip_point": [5, 5, 5], "for_class": None}))
    (mine,) = load_hands(tmp_path)
    assert isinstance(mine, Hand) and (mine.side, mine.for_class) == ("right", None)
    assert np.allclose(mine.vertices, hands["relaxed_right"].vertices, atol=1e-6)
    assert (mine.face_material == GLOVE).all()     # a sidecar without sleeve_start_face: all glove


def test_cli_runs_as_a_script(tmp_path):
    subprocess.run([sys.executable, "data_generation/generate_hands.py", "--out", str(tmp_path)],
                   cwd=ROOT, check=True, capture_output=True)
    assert len(load_hands(tmp_path)) == 2 * len(POSES)
