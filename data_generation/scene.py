"""Per-frame scene sampling: camera, instrument poses and articulation, hands, lights, background.

Pure numpy, no Blender: a frame is fully described by a `FrameSpec` drawn from a seeded generator, so the
same seed gives the same scene whichever worker renders it. World frame: the surgical field is the
plane z = 0, +z points up towards the camera. Ranges are documented on `SceneRanges`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from surgpose.camera import Intrinsics, look_at, project


@dataclass(frozen=True)
class SceneRanges:
    """What varies per frame, and how much (each has a generator flag)."""

    min_tools: int = 1
    max_tools: int = 3
    camera_distance: tuple[float, float] = (0.28, 0.8)    # metres from the field (far: operating-room views)
    max_tilt_deg: float = 35.0                           # camera tilt from straight down
    tool_height: tuple[float, float] = (0.005, 0.04)     # metres above the field
    max_tool_pitch_deg: float = 35.0                     # instrument axis against the field plane
    rolled_fraction: float = 0.3                         # share of tools rolled onto their side or over
    articulation: tuple[float, float] = (0.0, 1.0)       # closed .. wide open
    hand_probability: float = 0.75                       # a tool gets a hand (gripping or hovering)
    hover_probability: float = 0.25                      # that hand hovers near instead of gripping
    lights: tuple[int, int] = (1, 3)
    kelvin: tuple[float, float] = (2700.0, 7000.0)
    spotlight_probability: float = 0.5                   # main light is an operating-lamp spotlight
    motion_blur_probability: float = 0.2                 # px length up to 12
    defocus_probability: float = 0.15                    # disk radius up to 3 px
    noise_probability: float = 0.5                       # sigma up to 6 intensity levels
    distractor_probability: float = 0.0                  # unlabelled scissors among the instruments (opt-in:
                                                         # see docs/experiments.md for what they did to recall)


@dataclass
class ToolPlacement:
    tool: int                 # index into the chunk's tool pool
    pose: np.ndarray          # 4x4 tool-to-world
    opening: float            # 0 closed .. 1 wide open


@dataclass
class HandPlacement:
    hand: int                 # index into the hand pool
    pose: np.ndarray          # 4x4 hand-to-world
    holds: int | None         # index into FrameSpec.tools, None for a free occluder


@dataclass
class LightSpec:
    kind: str                 # "POINT" | "SPOT" | "AREA"
    location: np.ndarray      # (3,)
    target: np.ndarray        # (3,) where it points (SPOT/AREA)
    energy: float             # watts
    kelvin: float
    spot_size_deg: float = 45.0


@dataclass
class FrameSpec:
    index: int
    cam2world: np.ndarray     # 4x4, OpenCV axes
    tools: list[ToolPlacement]
    hands: list[HandPlacement]
    lights: list[LightSpec]
    background_seed: int
    effects: dict = field(default_factory=dict)
    distractors: list[ToolPlacement] = field(default_factory=list)   # index into the distractor pool

    @property
    def world_to_cam(self) -> np.ndarray:
        return np.linalg.inv(self.cam2world)


def rotation(axis: str, angle: float) -> np.ndarray:
    """4x4 rotation about a principal axis."""
    c, s = np.cos(angle), np.sin(angle)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    m = np.eye(4)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def translation(t) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = t
    return m


def sample_camera(rng: np.random.Generator, ranges: SceneRanges) -> np.ndarray:
    """Mostly top-down: tilt is half-normal around vertical, capped at `max_tilt_deg`."""
    tilt = min(abs(rng.normal(0.0, np.radians(ranges.max_tilt_deg) / 2)), np.radians(ranges.max_tilt_deg))
    azimuth = rng.uniform(0, 2 * np.pi)
    dist = rng.uniform(*ranges.camera_distance)
    target = np.array([*rng.uniform(-0.03, 0.03, 2), 0.0])
    eye = target + dist * np.array([np.sin(tilt) * np.cos(azimuth), np.sin(tilt) * np.sin(azimuth), np.cos(tilt)])
    return look_at(eye, target, roll=rng.uniform(0, 2 * np.pi))


def backproject_to_height(uv: np.ndarray, height: float, intr: Intrinsics, cam2world: np.ndarray) -> np.ndarray:
    """World point at z = `height` seen at pixel `uv`."""
    ray = np.array([(uv[0] - intr.cx) / intr.fx, (uv[1] - intr.cy) / intr.fy, 1.0])
    ray_w = cam2world[:3, :3] @ ray
    origin = cam2world[:3, 3]
    t = (height - origin[2]) / ray_w[2]
    return origin + t * ray_w


def sample_tool_pose(rng: np.random.Generator, ranges: SceneRanges, centre: np.ndarray,
                     centre_offset: np.ndarray) -> np.ndarray:
    """Full 3D rotation: any yaw, tilted axis, mostly lying flat but sometimes rolled or upside down."""
    yaw = rng.uniform(0, 2 * np.pi)
    pitch = np.clip(rng.normal(0, np.radians(ranges.max_tool_pitch_deg) / 2), -np.radians(ranges.max_tool_pitch_deg),
                    np.radians(ranges.max_tool_pitch_deg))
    if rng.random() < ranges.rolled_fraction:
        roll = rng.choice([rng.uniform(np.radians(50), np.radians(90)) * rng.choice([-1, 1]),
                           np.pi + rng.normal(0, 0.2)])
    else:
        roll = rng.normal(0, np.radians(15))
    rot = rotation("z", yaw) @ rotation("y", pitch) @ rotation("x", roll)
    # place the tool's bounding centre (not its joint) at `centre`
    return translation(centre) @ rot @ translation(-centre_offset)


def sample_lights(rng: np.random.Generator, ranges: SceneRanges, target: np.ndarray) -> list[LightSpec]:
    lights = []
    for i in range(rng.integers(ranges.lights[0], ranges.lights[1] + 1)):
        main = i == 0
        elevation = rng.uniform(np.radians(55 if main else 25), np.radians(89))
        azimuth = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(0.6, 1.5)
        loc = target + dist * np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                                        np.sin(elevation)])
        kind = "SPOT" if main and rng.random() < ranges.spotlight_probability else str(rng.choice(["POINT", "AREA"]))
        # watts scale with distance squared so the field is lit alike at every distance
        energy = (rng.uniform(60, 160) if main else rng.uniform(10, 60)) * dist ** 2
        lights.append(LightSpec(kind, loc, target + np.array([*rng.normal(0, 0.03, 2), 0.0]), energy,
                                float(rng.uniform(*ranges.kelvin)), float(rng.uniform(30, 70))))
    return lights


def sample_effects(rng: np.random.Generator, ranges: SceneRanges) -> dict:
    return {
        "motion_blur": float(rng.uniform(2, 12)) if rng.random() < ranges.motion_blur_probability else 0.0,
        "defocus": float(rng.uniform(1, 3)) if rng.random() < ranges.defocus_probability else 0.0,
        "noise": float(rng.uniform(1, 6)) if rng.random() < ranges.noise_probability else 0.0,
    }


def sample_frame(rng: np.random.Generator, index: int, intr: Intrinsics, tools: list, hands: list,
                 ranges: SceneRanges = SceneRanges(), distractors: list = ()) -> FrameSpec:
    """Draw one frame. `tools` are `ToolModel`s (pool), `hands` are `Hand`s (may be empty), `distractors`
    unlabelled look-alike `ToolModel`s (may be empty), of which a frame shows at most one."""
    cam2world = sample_camera(rng, ranges)
    n_tools = int(rng.integers(ranges.min_tools, ranges.max_tools + 1))
    order = rng.permutation(len(tools))
    placements: list[ToolPlacement] = []
    centres: list[np.ndarray] = []
    for tool_idx in order[:n_tools]:
        placements.append(ToolPlacement(int(tool_idx), *_place(rng, tools[tool_idx], centres, intr, cam2world, ranges)))
        centres.append(placement_centre(placements[-1], tools))
    spec = FrameSpec(index, cam2world, placements, sample_hands(rng, placements, tools, hands, ranges),
                     sample_lights(rng, ranges, cam2world[:3, 3] * [1, 1, 0]), int(rng.integers(2**31)),
                     sample_effects(rng, ranges))
    held = {hand.holds for hand in spec.hands}
    for slot, placement in enumerate(placements):  # a forceps' spring opens it fully once let go
        if slot not in held and tools[placement.tool].class_name == "tweezers":
            placement.opening = ranges.articulation[1]
    if len(distractors) and rng.random() < ranges.distractor_probability:  # drawn last: the rest is unchanged
        pick = int(rng.integers(len(distractors)))
        spec.distractors.append(ToolPlacement(pick, *_place(rng, distractors[pick], centres, intr, cam2world, ranges)))
    return spec


def _place(rng: np.random.Generator, tool, avoid: list[np.ndarray], intr: Intrinsics, cam2world: np.ndarray,
           ranges: SceneRanges) -> tuple[np.ndarray, float]:
    """Pose and opening of `tool`, its centre in view and kept apart from the centres in `avoid` so
    instruments rarely interpenetrate."""
    opening = float(rng.uniform(*ranges.articulation)) if tool.max_opening_deg > 0 else 0.0
    kps = tool.keypoints(opening)
    centre_offset = (kps.min(0) + kps.max(0)) / 2
    for _ in range(20):
        uv = np.array([rng.uniform(0.12, 0.88) * intr.width, rng.uniform(0.12, 0.88) * intr.height])
        centre = backproject_to_height(uv, rng.uniform(*ranges.tool_height), intr, cam2world)
        if all(np.linalg.norm(centre[:2] - other[:2]) > 0.045 for other in avoid):
            break
    return sample_tool_pose(rng, ranges, centre, centre_offset), opening


def placement_centre(placement: ToolPlacement, tools: list) -> np.ndarray:
    """World centre of a placed instrument's keypoint box (`tools` is the pool it indexes)."""
    kps = tools[placement.tool].keypoints(placement.opening)
    return (placement.pose[:3, :3] @ ((kps.min(0) + kps.max(0)) / 2)) + placement.pose[:3, 3]


def grip_pose(tool, placement: ToolPlacement) -> np.ndarray:
    """Hand-to-world pose gripping the handles: grip point between the handle keypoints, hand axis
    along the instrument (hand frame convention of `generate_hands`)."""
    kps = tool.keypoints(placement.opening)
    grip = (kps[3] + kps[4]) / 2
    return placement.pose @ translation(grip)


def sample_hands(rng: np.random.Generator, placements: list[ToolPlacement], tools: list, hands: list,
                 ranges: SceneRanges) -> list[HandPlacement]:
    if not hands:
        return []
    used: set[int] = set()
    out = []
    for slot, placement in enumerate(placements):
        if rng.random() >= ranges.hand_probability:
            continue
        cls = tools[placement.tool].class_name
        candidates = [i for i, h in enumerate(hands) if i not in used and h.for_class in (cls, None)]
        if not candidates:
            continue
        idx = int(rng.choice(candidates))
        pose = grip_pose(tools[placement.tool], placement) @ rotation("x", rng.normal(0, 0.15))
        holds: int | None = slot
        if rng.random() < ranges.hover_probability:
            offset = np.array([rng.uniform(-0.03, 0.01), rng.uniform(0.02, 0.06) * rng.choice([-1, 1]),
                               rng.uniform(0.005, 0.025)])
            pose = translation(offset) @ pose @ rotation("z", rng.normal(0, 0.3))
            holds = None
        used.add(idx)
        out.append(HandPlacement(idx, pose, holds))
    return out
