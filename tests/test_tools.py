"""Parametric instruments: real articulation, documented dimensions, sidecar IO and its errors."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from data_generation.generate_tools import (
    apply, load_tool, load_tools_dir, make_distractor, make_tool, rotation, run, write_obj)
from surgpose.schema import CLASSES, KEYPOINTS

ROOT = Path(__file__).resolve().parents[1]
OPENINGS = np.linspace(0, 1, 11)
TIP_L, TIP_R, JOINT, HANDLE_L, HANDLE_R = range(5)


def tools(class_name: str, n: int = 12):
    build = make_distractor if class_name == "scissors" else lambda rng: make_tool(class_name, rng)
    return [build(np.random.default_rng(seed)) for seed in range(n)]


def part_vertices(tool, index: int, opening: float) -> np.ndarray:
    return apply(tool.part_transforms(opening)[index], tool.parts[index].vertices)


@pytest.mark.parametrize("class_name", CLASSES)
def test_opening_moves_tips_and_handles_apart_around_a_fixed_joint(class_name):
    for tool in tools(class_name):
        kps = np.array([tool.keypoints(o) for o in OPENINGS])
        tip_gap = np.linalg.norm(kps[:, TIP_L] - kps[:, TIP_R], axis=1)
        handle_gap = np.linalg.norm(kps[:, HANDLE_L] - kps[:, HANDLE_R], axis=1)
        assert np.all(np.diff(tip_gap) > 0)
        assert np.all(np.diff(handle_gap) > 0)
        assert np.allclose(kps[:, JOINT], 0.0)
        assert np.all(kps[1:, TIP_L, 1] > 0) and np.all(kps[1:, TIP_R, 1] < 0)
        assert np.all(kps[:, HANDLE_L, 1] > 0) and np.all(kps[:, HANDLE_R, 1] < 0)
        assert np.all(kps[:, TIP_L, 0] > 0)  # tips toward +x


@pytest.mark.parametrize("class_name", CLASSES)
def test_keypoints_stay_on_the_geometry_of_their_part(class_name):
    for tool in tools(class_name, 6):
        for opening in (0.0, 0.4, 1.0):
            kps = tool.keypoints(opening)
            for k in (TIP_L, TIP_R):
                own = part_vertices(tool, tool.keypoint_parts[k], opening)
                assert np.linalg.norm(own - kps[k], axis=1).min() < 1e-3
                assert kps[k, 0] > own[:, 0].max() - 1e-3  # the tip is the part's far end
            merged = np.asarray(tool.mesh(opening).vertices)
            assert np.linalg.norm(merged - kps[TIP_L], axis=1).min() < 1e-3
        opened = tool.keypoints(1.0)
        other = part_vertices(tool, tool.keypoint_parts[TIP_R], 1.0)
        assert np.linalg.norm(other - opened[TIP_L], axis=1).min() > 3e-3  # left tip is not on the right part


def test_tweezers_dimensions_within_documented_ranges():
    grip_widths = []
    for tool in tools("tweezers", 30):
        rest = np.asarray(tool.mesh(0.0).vertices)
        length = np.ptp(rest[:, 0])
        assert 0.015 <= np.linalg.norm(np.subtract(*tool.keypoints(1.0)[:2])) <= 0.028
        arm = tool.parts[0].vertices
        section = trimesh.intersections.mesh_plane(trimesh.Trimesh(arm, tool.parts[0].faces, process=False),
                                                   [1, 0, 0], tool.keypoints_rest[HANDLE_L])
        grip_w = np.ptp(section.reshape(-1, 3)[:, 1])   # arm width at the grip
        assert (0.0079 <= grip_w <= 0.0102 and 0.11 <= length <= 0.18) or (0.0039 <= grip_w <= 0.0061
                                                                          and 0.15 <= length <= 0.20)
        grip_widths.append(grip_w)
        tip = arm[arm[:, 0] > tool.keypoints_rest[TIP_L, 0] - 3e-4]
        assert 0.0009 <= np.ptp(tip[:, 1]) <= 0.0016
        assert 0.001 - 1e-6 <= np.ptp(arm[arm[:, 0] > 0.9 * length][:, 2]) <= 0.0015 + 1e-6
        assert sum(len(p.faces) for p in tool.parts) < 20000
    assert 8 <= sum(w < 0.007 for w in grip_widths) <= 22   # both kinds, about half each


def test_needle_holder_dimensions_within_documented_ranges():
    for tool in tools("needle_holder", 30):
        rest = np.asarray(tool.mesh(0.0).vertices)
        assert 0.12 <= np.ptp(rest[:, 0]) <= 0.20
        assert 30 <= tool.max_opening_deg <= 40
        tips = tool.keypoints(1.0)[:2]
        angle = np.degrees(np.arccos(tips[0] @ tips[1] / np.linalg.norm(tips, axis=1).prod()))
        rest_angle = np.degrees(2 * np.arctan2(tool.keypoints_rest[TIP_L, 1], tool.keypoints_rest[TIP_L, 0]))
        assert angle - rest_angle == pytest.approx(tool.max_opening_deg, abs=0.01)
        assert 0.015 <= tool.keypoints_rest[TIP_L, 0] <= 0.031   # jaws plus half the box lock
        for k in (HANDLE_L, HANDLE_R):   # finger-ring centres: the ring's hole around them
            own = tool.parts[tool.keypoint_parts[k]].vertices
            inner = np.linalg.norm((own - tool.keypoints_rest[k])[:, :2], axis=1).min()
            assert 0.0079 <= inner <= 0.0102
        assert sum(len(p.faces) for p in tool.parts) < 20000
        assert set(np.unique(np.concatenate([p.face_material for p in tool.parts]))) <= {0, 1}


@pytest.mark.parametrize("class_name", [*CLASSES, "scissors"])
def test_every_piece_is_closed_with_outward_normals(class_name):
    for tool in tools(class_name, 4):
        for part in tool.parts:
            for piece in trimesh.Trimesh(part.vertices, part.faces, process=False).split(only_watertight=False):
                assert piece.is_watertight and piece.is_winding_consistent
                assert piece.volume > 0


def test_export_load_round_trip(tmp_path):
    for i, class_name in enumerate(CLASSES):
        tool = make_tool(class_name, np.random.default_rng(i))
        path = tmp_path / f"{class_name}.obj"
        tool.export(path, opening=0.5)
        loaded = load_tool(path)
        assert loaded.class_name == class_name
        assert np.allclose(loaded.keypoints(0.0), tool.keypoints(0.5), atol=2e-6)
        assert loaded.max_opening_deg == 0 and len(loaded.parts) == 1
        assert np.allclose(loaded.keypoints(1.0), loaded.keypoints(0.0))
        assert len(loaded.parts[0].faces) == sum(len(p.faces) for p in tool.parts)
        assert np.abs(np.asarray(tool.mesh(0.5).bounds) - loaded.mesh(0.0).bounds).max() < 2e-6


def test_user_mesh_in_mm_and_any_pose_is_moved_into_the_tool_frame(tmp_path):
    tool = make_tool("needle_holder", np.random.default_rng(3))
    mesh, kps = tool.mesh(0.3), tool.keypoints(0.3)
    pose = rotation([0.1, -0.2, 0.05], [0.3, -0.5, 0.8], 2.0)
    path = tmp_path / "user_holder.obj"
    write_obj(path, apply(pose, np.asarray(mesh.vertices)) * 1000, np.asarray(mesh.faces))
    path.with_suffix(".json").write_text(json.dumps({
        "class": "needle_holder", "units": "mm",
        "keypoints": {k: (apply(pose, p[None])[0] * 1000).tolist() for k, p in zip(KEYPOINTS, kps)}}))
    loaded = load_tool(path)
    assert np.allclose(loaded.keypoints(0.0), kps, atol=1e-5)
    assert np.allclose(loaded.mesh(0.0).bounds, mesh.bounds, atol=1e-5)


GOOD = {"class": "tweezers", "units": "m", "keypoints": {k: [0.01 * i, 0.002 * (-1) ** i, 0.0]
                                                       for i, k in enumerate(KEYPOINTS)}}


@pytest.mark.parametrize("sidecar", [
    None,
    "{not json",
    json.dumps([1, 2]),
    json.dumps({**GOOD, "class": "scalpel"}),
    json.dumps({**GOOD, "units": "inch"}),
    json.dumps({k: v for k, v in GOOD.items() if k != "keypoints"}),
    json.dumps({**GOOD, "keypoints": {k: v for k, v in GOOD["keypoints"].items() if k != "joint"}}),
    json.dumps({**GOOD, "keypoints": {**GOOD["keypoints"], "tip_left": [1.0, 2.0]}}),
    json.dumps({**GOOD, "keypoints": {**GOOD["keypoints"], "tip_right": ["a", 0, 0]}}),
    json.dumps({**GOOD, "keypoints": {k: [0, 0, 0] for k in KEYPOINTS}}),
    json.dumps({**GOOD, "keypoints": {**GOOD["keypoints"], "tip_left": [5.0, 5.0, 5.0]}}),
], ids=["missing", "not-json", "not-object", "unknown-class", "unknown-units", "no-keypoints",
        "missing-keypoint", "two-coordinates", "not-numbers", "no-axis", "keypoint-off-the-mesh"])
def test_bad_sidecar_raises_value_error_naming_the_file(tmp_path, sidecar):
    path = tmp_path / "my_tool.obj"
    make_tool("tweezers", np.random.default_rng(0)).export(path)
    if sidecar is None:
        path.with_suffix(".json").unlink()
    else:
        path.with_suffix(".json").write_text(sidecar)
    with pytest.raises(ValueError, match=re.escape("my_tool.")):
        load_tool(path)


def test_wrong_units_are_caught_by_the_size_check(tmp_path):
    path = tmp_path / "huge.obj"   # millimetre mesh and keypoints, sidecar claiming metres
    tool = make_tool("tweezers", np.random.default_rng(0))
    write_obj(path, np.asarray(tool.mesh(0.0).vertices) * 1000, np.asarray(tool.mesh(0.0).faces))
    path.with_suffix(".json").write_text(json.dumps({
        "class": "tweezers", "units": "m",
        "keypoints": {k: (p * 1000).tolist() for k, p in zip(KEYPOINTS, tool.keypoints_rest)}}))
    with pytest.raises(ValueError, match="huge.obj.*units"):
        load_tool(path)


def test_tools_dir_errors(tmp_path):
    with pytest.raises(ValueError, match="no .obj"):
        load_tools_dir(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_tools_dir(tmp_path / "absent")
    with pytest.raises(ValueError, match="unknown class"):
        make_tool("scalpel", np.random.default_rng(0))
    (path,) = run(out=str(tmp_path / "upper"), count=1)
    path.rename(path.with_suffix(".OBJ"))   # as some exporters name them
    assert [t.class_name for t in load_tools_dir(tmp_path / "upper")] == [CLASSES[0]]


def test_cli_exports_both_classes_as_a_script_and_a_module(tmp_path):
    paths = run(out=str(tmp_path / "a"), count=4, seed=0, opening=0.5)
    assert sorted({load_tool(p).class_name for p in paths}) == sorted(CLASSES)
    assert all(p.with_suffix(".json").is_file() for p in paths)
    out = tmp_path / "b"
    subprocess.run([sys.executable, "data_generation/generate_tools.py", "--out", str(out), "--count", "2",
                    "--seed", "0", "--opening", "0.5"], cwd=ROOT, check=True, capture_output=True)
    assert [p.name for p in sorted(out.glob("*.obj"))] == [p.name for p in paths[:2]]
    assert (out / paths[0].name).read_bytes() == paths[0].read_bytes()   # same seed, same tool
    assert len(load_tools_dir(out)) == 2


def test_scissors_are_long_bladed_ringed_look_alikes_outside_the_schema():
    for scissors in tools("scissors", 20):
        assert scissors.class_name not in CLASSES
        rest = np.asarray(scissors.mesh(0.0).vertices)
        length = np.ptp(rest[:, 0])
        assert 0.13 <= length <= 0.19
        assert 0.32 * length <= scissors.keypoints_rest[TIP_L, 0] <= 0.47 * length   # blades, not short jaws
        assert 30 <= scissors.max_opening_deg <= 50
        gaps = [np.linalg.norm(np.subtract(*scissors.keypoints(o)[:2])) for o in OPENINGS]
        assert np.all(np.diff(gaps) > 0)
