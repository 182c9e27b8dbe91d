"""Per-frame scene sampling: deterministic by seed, camera within its tilt range, instruments in view."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT
from data_generation.generate_hands import load_hands
from data_generation.generate_tools import make_distractor, make_tool
from data_generation.scene import SceneRanges, grip_pose, placement_centre, sample_frame
from surgpose.camera import DEFAULT_INTRINSICS, project
from surgpose.schema import CLASSES


def pool(seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [make_tool(CLASSES[i % 2], rng) for i in range(4)]


def test_same_seed_same_frame():
    tools = pool()
    a = sample_frame(np.random.default_rng(7), 3, DEFAULT_INTRINSICS, tools, [])
    b = sample_frame(np.random.default_rng(7), 3, DEFAULT_INTRINSICS, tools, [])
    assert np.array_equal(a.cam2world, b.cam2world)
    assert [(t.tool, t.opening) for t in a.tools] == [(t.tool, t.opening) for t in b.tools]
    assert all(np.array_equal(x.pose, y.pose) for x, y in zip(a.tools, b.tools))


def test_ranges_hold_over_many_frames():
    tools, ranges = pool(), SceneRanges(max_tilt_deg=30.0)
    rng = np.random.default_rng(1)
    tilts, centres_in_view, counts = [], [], []
    for i in range(200):
        spec = sample_frame(rng, i, DEFAULT_INTRINSICS, tools, [], ranges)
        view = spec.cam2world[:3, 2]
        tilts.append(np.degrees(np.arccos(-view[2])))
        counts.append(len(spec.tools))
        for t in spec.tools:
            (u, v), = project(placement_centre(t, tools)[None], DEFAULT_INTRINSICS.K, spec.world_to_cam)[0]
            centres_in_view.append(0 <= u < DEFAULT_INTRINSICS.width and 0 <= v < DEFAULT_INTRINSICS.height)
            assert 0 <= t.opening <= 1
    assert max(tilts) <= 30.0 + 1e-6 and np.median(tilts) < 15  # mostly top-down
    assert min(counts) >= ranges.min_tools and max(counts) <= ranges.max_tools
    assert set(counts) == {1, 2, 3}
    assert np.mean(centres_in_view) > 0.97


def test_grip_pose_sits_between_the_handles():
    tools = pool()
    spec = sample_frame(np.random.default_rng(2), 0, DEFAULT_INTRINSICS, tools, [])
    placement = spec.tools[0]
    tool = tools[placement.tool]
    kps = tool.keypoints(placement.opening)
    expected = placement.pose[:3, :3] @ ((kps[3] + kps[4]) / 2) + placement.pose[:3, 3]
    assert np.allclose(grip_pose(tool, placement)[:3, 3], expected)


def test_distractors_are_drawn_last_and_lie_clear_of_the_instruments():
    tools, scissors = pool(), [make_distractor(np.random.default_rng(s)) for s in range(2)]
    ranges = SceneRanges(distractor_probability=0.5)
    shown, gaps = 0, []
    for i in range(100):
        plain = sample_frame(np.random.default_rng(i), i, DEFAULT_INTRINSICS, tools, [], ranges)
        spec = sample_frame(np.random.default_rng(i), i, DEFAULT_INTRINSICS, tools, [], ranges, scissors)
        assert [(t.tool, t.opening) for t in spec.tools] == [(t.tool, t.opening) for t in plain.tools]
        assert all(np.array_equal(x.pose, y.pose) for x, y in zip(spec.tools, plain.tools))
        assert not plain.distractors and len(spec.distractors) <= 1
        for d in spec.distractors:
            shown += 1
            centre = placement_centre(d, scissors)
            (u, v), = project(centre[None], DEFAULT_INTRINSICS.K, spec.world_to_cam)[0]
            assert 0 <= u < DEFAULT_INTRINSICS.width and 0 <= v < DEFAULT_INTRINSICS.height
            gaps += [np.linalg.norm(centre[:2] - placement_centre(t, tools)[:2]) for t in spec.tools]
    assert 35 <= shown <= 65
    assert np.mean(np.array(gaps) > 0.045) > 0.9


def test_forceps_let_go_lie_fully_open():
    """Real forceps spring wide open on the table; only a gripping hand closes them."""
    tools, hands = pool(), load_hands(ROOT / "hands")
    ranges = SceneRanges(articulation=(0.0, 0.8))
    free, held = [], []
    for i in range(60):
        spec = sample_frame(np.random.default_rng(i), i, DEFAULT_INTRINSICS, tools, hands, ranges)
        gripped = {hand.holds for hand in spec.hands}
        for slot, placement in enumerate(spec.tools):
            if tools[placement.tool].class_name == "tweezers":
                (held if slot in gripped else free).append(placement.opening)
    assert len(free) > 5 and len(held) > 5
    assert set(free) == {0.8}
    assert min(held) < 0.5 and max(held) <= 0.8


def test_resized_camera_keeps_square_pixels_and_the_view_centre():
    same = DEFAULT_INTRINSICS.resized(480, 272)          # the same aspect: the same view at half the size
    assert (same.fx, same.fy, same.cx, same.cy) == (415.0, 415.0, 240.0, 136.0)
    square = DEFAULT_INTRINSICS.resized(640, 640)        # another aspect: the centre of the view, not stretched
    assert square.fx == square.fy == pytest.approx(830 * 640 / 544)
    assert (square.cx, square.cy) == pytest.approx((320.0, 320.0))
    centre_ray = np.array([[0.0, 0.0, 1.0]])             # a point on the optical axis stays at the image centre
    uv, _ = project(centre_ray, square.K, np.eye(4))
    assert uv[0] == pytest.approx([320.0, 320.0])
