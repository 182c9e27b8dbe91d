"""Projection and visibility: exact through the camera, occlusion tested against a depth/owner render."""
from __future__ import annotations

import numpy as np

from data_generation.annotate import BACKGROUND, OTHER, amodal_mask, keypoint_visibility
from surgpose.camera import DEFAULT_INTRINSICS, Intrinsics, blender_cam2world, look_at, project
from surgpose.schema import VIS_OCCLUDED, VIS_OUTSIDE, VIS_VISIBLE

INTR = Intrinsics(200, 100, 150.0, 150.0, 100.0, 50.0)
TOP_DOWN = np.linalg.inv(look_at([0, 0, 1.0], [0, 0, 0]))  # world_to_cam, camera 1 m above the field


def test_projection_is_exact_pinhole():
    uv, z = project(np.array([[0, 0, 0], [0.1, 0, 0], [0, 0, 0.5]]), INTR.K, TOP_DOWN)
    assert np.allclose(z, [1.0, 1.0, 0.5])
    assert np.allclose(uv[0], [100, 50])
    assert np.isclose(abs(uv[1, 0] - 100) + abs(uv[1, 1] - 50), 15.0)  # 0.1 m at 1 m, f=150 px
    assert np.allclose(uv[2], [100, 50])


def test_blender_camera_looks_down_its_minus_z():
    cam = look_at([0.1, -0.2, 0.5], [0, 0, 0], roll=0.7)
    blender = blender_cam2world(cam)
    forward = -blender[:3, 2]
    assert np.allclose(forward, cam[:3, 2])
    assert np.allclose(blender[:3, 1], -cam[:3, 1])


def make_scene(hand_depth: float | None = None, self_depth: float | None = None):
    """A field at 1 m, an instrument owner 0 around the centre, optionally a hand or its own surface above."""
    owner = np.full((100, 200), BACKGROUND, np.int32)
    depth = np.full((100, 200), 1.0, np.float32)
    owner[40:60, 80:120] = 0
    depth[40:60, 80:120] = 0.98
    if hand_depth is not None:
        owner[45:55, 95:105] = OTHER
        depth[45:55, 95:105] = hand_depth
    if self_depth is not None:
        depth[45:55, 95:105] = self_depth
    return owner, depth


def test_visible_occluded_by_hand_and_outside():
    owner, depth = make_scene(hand_depth=0.9)
    uv = np.array([[100.0, 50.0], [85.0, 45.0], [250.0, 50.0], [100.0, -3.0]])
    z = np.full(4, 0.98)
    vis = keypoint_visibility(uv, z, 0, owner, depth)
    assert vis.tolist() == [VIS_OCCLUDED, VIS_VISIBLE, VIS_OUTSIDE, VIS_OUTSIDE]


def test_hand_behind_the_keypoint_does_not_hide_it():
    owner, depth = make_scene(hand_depth=1.05)
    vis = keypoint_visibility(np.array([[100.0, 50.0]]), np.array([0.98]), 0, owner, depth)
    assert vis.tolist() == [VIS_VISIBLE]


def test_self_occlusion_beyond_thickness_tolerance():
    owner, depth = make_scene(self_depth=0.95)  # own surface 3 cm in front of the keypoint
    hidden = keypoint_visibility(np.array([[100.0, 50.0]]), np.array([0.98]), 0, owner, depth)
    owner, depth = make_scene(self_depth=0.978)  # 2 mm: the keypoint sits inside the instrument
    inside = keypoint_visibility(np.array([[100.0, 50.0]]), np.array([0.98]), 0, owner, depth)
    assert hidden.tolist() == [VIS_OCCLUDED] and inside.tolist() == [VIS_VISIBLE]


def test_amodal_mask_rasterises_the_projected_mesh():
    square = np.array([[[-0.1, -0.1, 0], [0.1, -0.1, 0], [0.1, 0.1, 0]],
                       [[-0.1, -0.1, 0], [0.1, 0.1, 0], [-0.1, 0.1, 0]]])
    mask = amodal_mask(square, DEFAULT_INTRINSICS, TOP_DOWN)
    side = 0.2 * DEFAULT_INTRINSICS.fx
    assert abs(mask.sum() - side * side) / (side * side) < 0.03
    ys, xs = np.nonzero(mask)
    assert abs(xs.mean() - DEFAULT_INTRINSICS.cx) < 1 and abs(ys.mean() - DEFAULT_INTRINSICS.cy) < 1
