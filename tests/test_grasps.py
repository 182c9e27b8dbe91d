"""Hands closed around the parametric instruments: fingers where each grasp puts them, none inside the metal."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT
from data_generation.generate_tools import make_distractor, make_tool
from data_generation.grasps import (GRASPS, MAX_PENETRATION, ContactProblem, carried, free_hand, grasp_tool, pad,
                                    penetration, tip, tool_shape)
from data_generation.hand_model import ANGLES, MIRROR, load_hand_model, rodrigues


@pytest.fixture(scope="module")
def hand():
    return load_hand_model(ROOT / "hands")


def in_tool_frame(grasp, name: str, model) -> np.ndarray:
    """A bone's tail (its fingertip for `<digit>_3`) in the instrument's frame."""
    p = grasp.posed.tails[model.index[name]]
    return grasp.hand_in_tool[:3, :3] @ p + grasp.hand_in_tool[:3, 3]


def pad_in_tool_frame(grasp, digit: str, model) -> np.ndarray:
    """The middle of a fingertip's pad in the instrument's frame."""
    bone, point = pad(model, digit, 0.55)
    p = carried(model, grasp.posed.transforms, bone, point)
    return grasp.hand_in_tool[:3, :3] @ p + grasp.hand_in_tool[:3, 3]


def grasps(hand, kind: str, tools: list, openings, side: str = "right") -> list:
    rng = np.random.default_rng(0)
    out = []
    for tool, opening in zip(tools, openings):
        shape = tool_shape(tool, opening)
        out.append((grasp_tool(hand, shape, kind, side, rng), shape))
    return out


def deepest(hand, grasp, shape) -> float:
    inv = np.linalg.inv(grasp.hand_in_tool)
    return penetration(hand, grasp.posed, shape.points @ inv[:3, :3].T + inv[:3, 3])


def test_needle_holder_ring_grip(hand):
    rng = np.random.default_rng(1)
    tools = [make_tool("needle_holder", rng) for _ in range(4)]
    for grasp, shape in grasps(hand, "ring_grip", tools, (0.0, 0.2, 0.3, 0.1)):
        assert grasp is not None
        thumb_ring, finger_ring = sorted(shape.keypoints[3:], key=lambda k: -k[1])
        thumb, ring = in_tool_frame(grasp, "thumb_3", hand), in_tool_frame(grasp, "ring_3", hand)
        assert np.linalg.norm(thumb[:2] - thumb_ring[:2]) < 0.015    # the thumb in its ring...
        assert np.linalg.norm(ring[:2] - finger_ring[:2]) < 0.015    # ...the ring finger at the other
        index = in_tool_frame(grasp, "index_3", hand)
        assert thumb_ring[0] < index[0] < shape.keypoints[2, 0] + 0.02   # index along the shanks, short of the jaws
        assert deepest(hand, grasp, shape) <= MAX_PENETRATION
        wrist = grasp.hand_in_tool[:3, 3]
        assert wrist[0] < thumb_ring[0] and wrist[2] > 0             # the hand behind the rings, above the tool


def test_tweezers_pen_grip(hand):
    rng = np.random.default_rng(2)
    tools = [make_tool("tweezers", rng) for _ in range(4)]
    for grasp, shape in grasps(hand, "pen_grip", tools, (0.0, 0.3, 0.5, 0.2)):
        assert grasp is not None
        thumb, index = pad_in_tool_frame(grasp, "thumb", hand), pad_in_tool_frame(grasp, "index", hand)
        assert thumb[1] > 0.002 and index[1] < -0.002                 # thumb and index pads on either arm
        tips_x = shape.keypoints[:2, 0].mean()
        beyond = tips_x - max(thumb[0], index[0])
        assert 0.02 < beyond < 0.12                                   # the tips stick out past the fingers
        assert deepest(hand, grasp, shape) <= MAX_PENETRATION


def test_scissors_in_a_ring_grip_and_the_left_hand_mirrors_the_right(hand):
    scissors = make_distractor(np.random.default_rng(0))
    shape = tool_shape(scissors, 0.3)
    left = grasp_tool(hand, shape, "ring_grip", "left", np.random.default_rng(100))
    assert left is not None and left.side == "left"
    right_space = MIRROR @ left.hand_in_tool @ MIRROR                 # the same grasp on the mirrored instrument
    assert np.allclose(left.posed.mirrored().vertices, hand.pose(left.angles).vertices)
    thumb = left.hand_in_tool[:3, :3] @ left.posed.tails[hand.index["thumb_3"]] + left.hand_in_tool[:3, 3]
    assert thumb[1] < 0                                               # a left thumb takes the -y ring
    assert right_space[:3, 3][2] > 0
    assert deepest(hand, left, shape) <= MAX_PENETRATION


def test_free_hands(hand):
    rng = np.random.default_rng(5)
    for _ in range(3):
        pinch = free_hand(hand, "pinch", "right", rng)
        t = pinch.posed.transforms
        thumb_bone, thumb_point = tip(hand, "thumb")
        thumb = t[hand.index[thumb_bone], :3, :3] @ thumb_point + t[hand.index[thumb_bone], :3, 3]
        index = pinch.posed.tails[hand.index["index_3"]]
        assert np.linalg.norm(thumb - index) < 0.02                  # thumb and index tips together
    rest = free_hand(hand, "rest", "left", rng)
    assert rest.side == "left" and rest.posed.tails[hand.index["thumb_3"]][1] < 0


def test_palm_grip_holds_the_rings_in_the_palm(hand):
    rng = np.random.default_rng(6)
    found = [grasp_tool(hand, tool_shape(make_tool("needle_holder", rng), 0.1), "palm_grip", "right", rng)
             for _ in range(4)]
    assert sum(g is not None for g in found) >= 1               # scene.py falls back to the ring grip otherwise
    for grasp in filter(None, found):
        wrist = grasp.hand_in_tool[:3, 3]
        assert wrist[0] < 0 and wrist[2] > 0                    # behind the rings and above them


def test_a_warm_start_meets_the_contacts_as_well(hand):
    rng = np.random.default_rng(7)
    shape = tool_shape(make_tool("tweezers", rng), 0.3)
    cold = grasp_tool(hand, shape, "pen_grip", "left", rng)
    warm = grasp_tool(hand, tool_shape(make_tool("tweezers", np.random.default_rng(7)), 0.4), "pen_grip", "left",
                      rng, start=cold)
    assert cold is not None and warm is not None and warm.error < 0.008


def test_contact_jacobian_matches_finite_differences(hand):
    """The solver's analytic derivatives of every contact point, against central differences."""
    rng = np.random.default_rng(8)
    shape = tool_shape(make_tool("needle_holder", rng), 0.2)
    template, free, contacts, _ = GRASPS["ring_grip"](hand, shape, rng)
    problem = ContactProblem(hand, contacts, free)
    pose = np.eye(4)
    pose[:3, :3] = rodrigues(np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8]), 0.7)
    pose[:3, 3] = [0.01, -0.02, 0.03]
    hit, jac, centre = problem.hits(template, pose, jacobian=True)
    h = 1e-4
    for col, angle in enumerate(problem.free):
        plus, minus = template.copy(), template.copy()
        plus[angle] += h
        minus[angle] -= h
        numeric = (problem.hits(plus, pose) - problem.hits(minus, pose)).ravel() / (2 * h)
        assert np.allclose(jac[:, 6 + col], numeric, atol=1e-7), ANGLES[angle]
    for axis in range(3):                                       # a small turn about the contacts' centre
        turn = np.eye(4)
        turn[:3, :3] = rodrigues(np.eye(3)[axis], h)
        turn[:3, 3] = centre - turn[:3, :3] @ centre
        numeric = (problem.hits(template, turn @ pose) - hit).ravel() / h
        assert np.allclose(jac[:, axis], numeric, atol=1e-5)
