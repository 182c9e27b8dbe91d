"""Per-frame scene sampling: deterministic by seed, cameras within their ranges, instruments in view, hands
that hold instruments as on real footage."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT
from data_generation.generate_tools import make_distractor, make_tool
from data_generation.grasps import MAX_PENETRATION, penetration, tool_shape
from data_generation.hand_model import load_hand_model
from data_generation.scene import HELD_OPENING, MAX_HELD_TIPS_HEIGHT, SceneRanges, bone_points, placement_centre, sample_frame
from surgpose.camera import DEFAULT_INTRINSICS, project
from surgpose.schema import CLASSES


def pool(seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [make_tool(CLASSES[i % 2], rng) for i in range(4)]


@pytest.fixture(scope="module")
def hand():
    return load_hand_model(ROOT / "hands")


@pytest.fixture(scope="module")
def frames(hand) -> tuple[list, list]:
    """60 frames with hands and scissors, as one chunk after another draws them."""
    tools, scissors = pool(), [make_distractor(np.random.default_rng(9))]
    ranges = SceneRanges(distractor_probability=0.5)
    rng, grasps = np.random.default_rng(11), {}
    return tools, [sample_frame(rng, i, DEFAULT_INTRINSICS, tools, hand, ranges, scissors, grasps) for i in range(60)]


def in_view(point: np.ndarray, spec) -> bool:
    (u, v), = project(point[None], DEFAULT_INTRINSICS.K, spec.world_to_cam)[0]
    return 0 <= u < DEFAULT_INTRINSICS.width and 0 <= v < DEFAULT_INTRINSICS.height


def test_same_seed_same_frame(hand):
    tools = pool()
    a, b = (sample_frame(np.random.default_rng(7), 3, DEFAULT_INTRINSICS, tools, hand) for _ in range(2))
    assert np.array_equal(a.cam2world, b.cam2world)
    assert [(t.tool, t.opening) for t in a.tools] == [(t.tool, t.opening) for t in b.tools]
    assert all(np.array_equal(x.pose, y.pose) for x, y in zip(a.tools, b.tools))
    assert [h.kind for h in a.hands] == [h.kind for h in b.hands]
    assert all(np.array_equal(x.posed.vertices, y.posed.vertices) for x, y in zip(a.hands, b.hands))


def test_ranges_hold_over_many_frames():
    tools, ranges = pool(), SceneRanges(max_tilt_deg=30.0, oblique_probability=0.3)
    rng = np.random.default_rng(1)
    tilts, centres_in_view, counts = [], [], []
    for i in range(200):
        spec = sample_frame(rng, i, DEFAULT_INTRINSICS, tools, None, ranges)
        view = spec.cam2world[:3, 2]
        tilts.append(np.degrees(np.arccos(-view[2])))
        counts.append(len(spec.tools))
        centres_in_view += [in_view(placement_centre(t, tools), spec) for t in spec.tools]
        assert all(0 <= t.opening <= 1 for t in spec.tools)
        if len(spec.tools) >= 2:                                  # a needle holder and a tweezers come first
            assert {tools[t.tool].class_name for t in spec.tools} == set(CLASSES)
    tilts = np.array(tilts)
    oblique = tilts > 30.0 + 1e-6
    assert 0.2 < oblique.mean() < 0.4 and tilts[oblique].min() >= 35 - 1e-6 and tilts.max() <= 60 + 1e-6
    assert np.median(tilts[~oblique]) < 15                       # overhead views: mostly top-down
    assert min(counts) >= ranges.min_tools and max(counts) <= ranges.max_tools and set(counts) == {1, 2, 3}
    assert np.mean(centres_in_view) > 0.97


def test_closeups_come_nearer_than_the_distance_range_and_only_when_asked():
    """Close-ups are overhead frames at 0.55-1x the nearest distance, in about the share asked for; off (the
    default), no camera comes nearer than the range."""
    tools = pool()

    def cameras(ranges: SceneRanges) -> np.ndarray:
        rng = np.random.default_rng(4)
        return np.array([sample_frame(rng, i, DEFAULT_INTRINSICS, tools, None, ranges).cam2world
                         for i in range(120)])

    plain = cameras(SceneRanges(oblique_probability=0.0))
    near = cameras(SceneRanges(oblique_probability=0.0, closeup_probability=0.5))
    lowest = SceneRanges().camera_distance[0]

    def distance(cams: np.ndarray) -> np.ndarray:
        return -cams[:, 2, 3] / cams[:, 2, 2]                  # along the optical axis to the field

    assert distance(plain).min() >= lowest - 1e-9
    closeups = distance(near) < lowest
    assert 0.35 < closeups.mean() < 0.65 and distance(near).min() >= 0.55 * lowest - 1e-9


def test_held_instruments_as_on_real_footage(hand, frames):
    tools, specs = frames
    held = {c: [] for c in CLASSES}
    sides = {c: [] for c in CLASSES}
    for spec in specs:
        holding = {h.holds: h for h in spec.hands if h.holds is not None}
        assert len({h.side for h in spec.hands}) == len(spec.hands) <= 2   # a surgeon's two hands at most
        for slot, placement in enumerate(spec.tools):
            cls = tools[placement.tool].class_name
            held[cls].append(slot in holding)
            if slot in holding:
                sides[cls].append(holding[slot].side)
                tips = placement.pose[:3, :3] @ tools[placement.tool].keypoints(placement.opening)[:2].mean(0) \
                    + placement.pose[:3, 3]
                assert in_view(tips, spec)                       # held instruments work in the middle of the view
                assert tips[2] <= MAX_HELD_TIPS_HEIGHT + 1e-9     # their tips reach down to the field
    assert 0.7 < np.mean(held["needle_holder"]) <= 0.9           # held where a grasp fits (SceneRanges.held_probability: 0.9, 0.4)
    assert 0.25 < np.mean(held["tweezers"]) < 0.55
    assert np.mean(np.array(sides["needle_holder"]) == "right") > 0.75
    assert np.mean(np.array(sides["tweezers"]) == "left") > 0.75
    kinds = {h.kind for spec in specs for h in spec.hands}
    assert {"ring_grip", "pen_grip", "pinch", "rest"} <= kinds


def test_hands_reach_in_from_the_surgeon_and_keep_off_the_metal(hand, frames):
    tools, specs = frames
    clear = []
    for spec in specs:
        for h in spec.hands:
            assert h.posed.vertices[:, 2].min() > -0.002         # above the field
            end = h.sleeve[0][-20:].mean(0)                      # the arm rises off the field, away from the work
            assert end[2] > 0.2 and np.linalg.norm(end[:2]) > np.linalg.norm(h.posed.vertices.mean(0)[:2])
            for slot, placement in enumerate(spec.tools):
                if slot == h.holds:
                    continue
                points = tool_shape(tools[placement.tool], placement.opening, 300).points
                world = points @ placement.pose[:3, :3].T + placement.pose[:3, 3]
                clear.append(penetration(hand, h.posed, world) <= MAX_PENETRATION + 1e-9)
        if len(spec.hands) == 2:                                   # two hands never overlap, nor grip into each other
            a, b = spec.hands
            assert penetration(hand, b.posed, bone_points(a.posed)) == 0.0
            assert penetration(hand, a.posed, bone_points(b.posed)) == 0.0
    assert np.mean(clear) > 0.95                                 # instruments on the field lie clear of the hands


def test_scissors_in_hand_or_on_the_field(hand, frames):
    tools, specs = frames
    shown = [spec for spec in specs if spec.distractors]
    assert 0.3 < len(shown) / len(specs) < 0.7
    held = [spec for spec in shown if any(h.holds is None and h.kind == "ring_grip" for h in spec.hands)]
    assert 0 < len(held) < len(shown)
    scissors = [make_distractor(np.random.default_rng(9))]
    for spec in shown:
        assert in_view(placement_centre(spec.distractors[0], scissors), spec)


def test_forceps_let_go_lie_fully_open(hand):
    tools = pool()
    ranges = SceneRanges(articulation=(0.0, 0.8))
    free, gripped = [], []
    rng, grasps = np.random.default_rng(3), {}
    for i in range(40):
        spec = sample_frame(rng, i, DEFAULT_INTRINSICS, tools, hand, ranges, grasps=grasps)
        holding = {h.holds for h in spec.hands}
        for slot, placement in enumerate(spec.tools):
            if tools[placement.tool].class_name == "tweezers":
                (gripped if slot in holding else free).append(placement.opening)
    assert len(free) > 5 and len(gripped) > 5
    assert set(free) == {0.8}
    assert max(gripped) <= HELD_OPENING["tweezers"]                 # pinched partly shut in the fingers


def test_held_openings_stay_in_any_articulation_range(hand):
    """An --articulation range above the held caps still draws (its minimum), never a numpy range error."""
    tools, rng, grasps = pool(), np.random.default_rng(4), {}
    ranges = SceneRanges(articulation=(0.7, 1.0))
    for i in range(6):
        spec = sample_frame(rng, i, DEFAULT_INTRINSICS, tools, hand, ranges, grasps=grasps)
        assert all(0.7 <= t.opening <= 1.0 for t in spec.tools)


def test_resized_camera_keeps_square_pixels_and_the_view_centre():
    same = DEFAULT_INTRINSICS.resized(480, 272)          # the same aspect: the same view at half the size
    assert (same.fx, same.fy, same.cx, same.cy) == (415.0, 415.0, 240.0, 136.0)
    square = DEFAULT_INTRINSICS.resized(640, 640)        # another aspect: the centre of the view, not stretched
    assert square.fx == square.fy == pytest.approx(830 * 640 / 544)
    assert (square.cx, square.cy) == pytest.approx((320.0, 320.0))
    centre_ray = np.array([[0.0, 0.0, 1.0]])             # a point on the optical axis stays at the image centre
    uv, _ = project(centre_ray, square.K, np.eye(4))
    assert uv[0] == pytest.approx([320.0, 320.0])
