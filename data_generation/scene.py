"""Per-frame scene sampling: camera, instrument poses and articulation, hands, lights, background.

Pure numpy, no Blender: a frame is fully described by a `FrameSpec` drawn from a seeded generator, so the
same seed gives the same scene whichever worker renders it. World frame: the surgical field is the
plane z = 0, +z points up towards the camera. Ranges are documented on `SceneRanges`.

A frame is a surgeon's work as cameras film it: the surgeon stands at one side of the field, and each of
their two hands either holds an instrument (a needle holder mostly in the right hand, tweezers in the left,
in the grasps of `grasps.py`), or holds nothing (pinching thread, resting on the field, holding scissors
when the frame has them) or is out of view. Held instruments meet near the work point at the middle of the
field, their forearms reach back toward the surgeon and out of the frame in sleeves; instruments no hand
holds lie on the field. The camera looks down at the field from above (`oss_dev`-like), or from the front
and above, facing the surgeon (`apas_dev`-like, `oblique_probability`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from data_generation.grasps import MAX_PENETRATION, free_hand, grasp_tool, penetration, tool_shape
from data_generation.hand_model import HandModel, Posed, rodrigues, sleeve_mesh
from surgpose.camera import Intrinsics, look_at


@dataclass(frozen=True)
class SceneRanges:
    """What varies per frame, and how much (each has a generator flag, but `hand_scale` and the tool height,
    pitch and roll ranges)."""

    min_tools: int = 1
    max_tools: int = 3
    camera_distance: tuple[float, float] = (0.28, 0.8)    # metres from the field (far: operating-room views)
    max_tilt_deg: float = 35.0                           # camera tilt from straight down
    tool_height: tuple[float, float] = (0.005, 0.04)     # metres above the field
    max_tool_pitch_deg: float = 35.0                     # instrument axis against the field plane
    rolled_fraction: float = 0.3                         # share of tools rolled onto their side or over
    articulation: tuple[float, float] = (0.0, 1.0)       # closed .. wide open
    held_probability: tuple[float, float] = (0.9, 0.4)   # a hand takes a needle holder / tweezers in view (held
                                                         # where the grasp fits: ~0.8 / 0.35; oss_dev by eye:
                                                         # 31 of 34 needle holders, 11 of 33 tweezers)
    oblique_probability: float = 0.3                     # camera in front of the surgeon, 35-60 deg from vertical
    closeup_probability: float = 0.0                     # overhead camera nearer than camera_distance (0.55-1x its
                                                         # MIN), instruments cut by the frame's edges as in
                                                         # close-up footage (opt-in, like the scissors)
    hand_scale: tuple[float, float] = (0.95, 1.12)       # gloved hand size / MakeHuman's (17.7 cm wrist to tip)
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
    side: str                 # "left" | "right"
    kind: str                 # grasp (`grasps.GRASPS`) or free pose ("pinch", "rest")
    posed: Posed              # the skinned hand and its skeleton, in the world (faces: `posed.wound(...)`)
    sleeve: tuple[np.ndarray, np.ndarray]   # world vertices and quads of the arm's sleeve
    holds: int | None = None  # index into FrameSpec.tools, None for a hand that holds no labelled instrument


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


def sample_camera(rng: np.random.Generator, ranges: SceneRanges, surgeon: np.ndarray) -> np.ndarray:
    """Mostly top-down (tilt half-normal around vertical, capped at `max_tilt_deg`, any roll); with
    `oblique_probability`, in front of the surgeon (who stands toward the unit vector `surgeon`) looking down
    at 35-60 degrees from vertical, upright, so their arms reach in from the top of the frame; overhead, with
    `closeup_probability`, nearer than `camera_distance` allows."""
    target = np.array([*rng.uniform(-0.03, 0.03, 2), 0.0])
    if rng.random() < ranges.oblique_probability:
        tilt = np.radians(rng.uniform(35, 60))
        away = -surgeon * np.sin(tilt) + np.array([0.0, 0.0, np.cos(tilt)])
        eye = target + rng.uniform(max(0.45, ranges.camera_distance[0]), max(0.5, ranges.camera_distance[1] * 1.3)) * away
        forward = (target - eye) / np.linalg.norm(target - eye)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        cam = np.eye(4)
        cam[:3, 0], cam[:3, 1], cam[:3, 2], cam[:3, 3] = right, np.cross(forward, right), forward, eye
        roll = rodrigues(forward, rng.normal(0, np.radians(4)))
        cam[:3, :3] = roll @ cam[:3, :3]
        return cam
    tilt = min(abs(rng.normal(0.0, np.radians(ranges.max_tilt_deg) / 2)), np.radians(ranges.max_tilt_deg))
    azimuth = rng.uniform(0, 2 * np.pi)
    dist = rng.uniform(*ranges.camera_distance)
    if ranges.closeup_probability and rng.random() < ranges.closeup_probability:   # no draw when off: old seeds hold
        dist = ranges.camera_distance[0] * rng.uniform(0.55, 1.0)
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


#: What a hand holding no labelled instrument does: shares of pinching thread, resting on the field, out of view
#: (oss_dev: free hands mostly pinch the thread or rest; apas_dev: 79 of 235 hands hold nothing).
FREE_HANDS = {"pinch": 0.45, "rest": 0.35, "none": 0.2}
SCISSORS_IN_HAND = 0.5     # a frame's scissors are held by a free hand (else they lie on the field)
LEFT_HANDED = 0.1          # frames where the needle holder is in the left hand


def sample_frame(rng: np.random.Generator, index: int, intr: Intrinsics, tools: list, hand: HandModel | None,
                 ranges: SceneRanges = SceneRanges(), distractors: list = (), grasps: dict | None = None) -> FrameSpec:
    """Draw one frame. `tools` are `ToolModel`s (pool), `hand` the rigged hand at the surgeon's size (None: no
    hands), `distractors` unlabelled look-alike `ToolModel`s (may be empty), of which a frame shows at most
    one. `grasps` keeps each instrument's last grasp per hand and kind between the frames of a chunk, to
    start the next one from (pass the same dict for every frame of a chunk, or None)."""
    surgeon = _unit(rng.uniform(0, 2 * np.pi))
    cam2world = sample_camera(rng, ranges, surgeon)
    work = _look_point(cam2world)
    n_tools = int(rng.integers(ranges.min_tools, ranges.max_tools + 1))
    order = _pick_tools(rng, tools, n_tools)
    scissors = int(rng.integers(len(distractors))) if len(distractors) and rng.random() < ranges.distractor_probability else None
    hands: list[HandPlacement] = []
    placements: dict[int, ToolPlacement] = {}
    grasps = {} if grasps is None else grasps
    if hand is not None:
        for slot, tool_idx in enumerate(order):   # who holds what: at most one instrument per hand
            cls = tools[tool_idx].class_name
            if rng.random() >= ranges.held_probability[0 if cls == "needle_holder" else 1]:
                continue
            side = _side_for(cls, rng, {h.side for h in hands})
            if side is None:
                continue
            placed = _held(rng, hand, tools[tool_idx], ("tool", int(tool_idx)), side, surgeon, work, ranges, hands,
                           grasps)
            if placed is not None:
                placements[slot] = ToolPlacement(int(tool_idx), *placed[0])
                hands.append(placed[1])
                hands[-1].holds = slot
    distractor_placements = []
    for side in ("right", "left"):
        if hand is None or side in {h.side for h in hands}:
            continue
        if scissors is not None and not distractor_placements and rng.random() < SCISSORS_IN_HAND:
            placed = _held(rng, hand, distractors[scissors], ("distractor", scissors), side, surgeon, work, ranges,
                           hands, grasps)
            if placed is not None:
                distractor_placements.append(ToolPlacement(scissors, *placed[0]))
                hands.append(placed[1])
                continue
        kind = str(rng.choice(list(FREE_HANDS), p=list(FREE_HANDS.values())))
        if kind != "none":
            placed_free = _free(rng, hand, kind, side, surgeon, work, hands)
            if placed_free is not None:
                hands.append(placed_free)
    # instruments no hand holds lie on the field, clear of the hands and of each other
    centres = [placement_centre(p, tools) for p in placements.values()]
    for slot, tool_idx in enumerate(order):
        if slot not in placements:
            sprung = tools[tool_idx].class_name == "tweezers"   # a forceps' spring opens it fully once let go
            placements[slot] = ToolPlacement(int(tool_idx), *_place_clear(
                rng, tools[tool_idx], centres, intr, cam2world, ranges, hand, hands, ranges.articulation[1] if sprung else None))
            centres.append(placement_centre(placements[slot], tools))
    if scissors is not None and not distractor_placements:
        distractor_placements.append(ToolPlacement(scissors, *_place_clear(rng, distractors[scissors], centres, intr,
                                                                           cam2world, ranges, hand, hands)))
    ordered = [placements[slot] for slot in range(len(order))]
    return FrameSpec(index, cam2world, ordered, hands, sample_lights(rng, ranges, work), int(rng.integers(2**31)),
                     sample_effects(rng, ranges), distractor_placements)


def _place(rng: np.random.Generator, tool, avoid: list[np.ndarray], intr: Intrinsics, cam2world: np.ndarray,
           ranges: SceneRanges, opening: float | None = None) -> tuple[np.ndarray, float]:
    """Pose and opening (drawn unless given) of `tool` lying on the field, its centre in view and kept apart
    from the centres in `avoid` so instruments rarely interpenetrate."""
    if opening is None:
        opening = float(rng.uniform(*ranges.articulation)) if tool.max_opening_deg > 0 else 0.0
    kps = tool.keypoints(opening)
    centre_offset = (kps.min(0) + kps.max(0)) / 2
    for _ in range(20):
        uv = np.array([rng.uniform(0.12, 0.88) * intr.width, rng.uniform(0.12, 0.88) * intr.height])
        centre = backproject_to_height(uv, rng.uniform(*ranges.tool_height), intr, cam2world)
        if all(np.linalg.norm(centre[:2] - other[:2]) > 0.045 for other in avoid):
            break
    return sample_tool_pose(rng, ranges, centre, centre_offset), opening


def _place_clear(rng: np.random.Generator, tool, avoid: list[np.ndarray], intr: Intrinsics, cam2world: np.ndarray,
                 ranges: SceneRanges, hand: HandModel | None, hands: list[HandPlacement],
                 opening: float | None = None) -> tuple[np.ndarray, float]:
    """`_place`, drawn again (up to 10 times) while a hand lies on the instrument; else the draw a hand
    reaches into least."""
    best, least = None, np.inf
    for _ in range(10):
        pose, drawn = _place(rng, tool, avoid, intr, cam2world, ranges, opening)
        if not hands:
            return pose, drawn
        points = tool_shape(tool, drawn, max_points=300).points @ pose[:3, :3].T + pose[:3, 3]
        depth = max(penetration(hand, h.posed, points) for h in hands)
        if depth <= MAX_PENETRATION:
            return pose, drawn
        if depth < least:
            best, least = (pose, drawn), depth
    return best


def placement_centre(placement: ToolPlacement, tools: list) -> np.ndarray:
    """World centre of a placed instrument's keypoint box (`tools` is the pool it indexes)."""
    kps = tools[placement.tool].keypoints(placement.opening)
    return (placement.pose[:3, :3] @ ((kps.min(0) + kps.max(0)) / 2)) + placement.pose[:3, 3]


def _pick_tools(rng: np.random.Generator, tools: list, n: int) -> list[int]:
    """`n` instruments of the pool, one of each class first (a surgeon's needle holder and tweezers)."""
    order = [int(i) for i in rng.permutation(len(tools))]
    first: dict[str, int] = {}
    for i in order:
        first.setdefault(tools[i].class_name, i)
    return (list(first.values()) + [i for i in order if i not in first.values()])[:n]


def _unit(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle), 0.0])


def _look_point(cam2world: np.ndarray) -> np.ndarray:
    """Where the camera's optical axis meets the field: the work point the held instruments meet at."""
    eye, forward = cam2world[:3, 3], cam2world[:3, 2]
    return eye - forward * eye[2] / forward[2]


def _side_for(cls: str, rng: np.random.Generator, taken: set[str]) -> str | None:
    """The hand that takes an instrument of class `cls`: needle holders the right (`LEFT_HANDED`: the left),
    tweezers the other; None when both hands are busy."""
    first = "right" if (cls == "needle_holder") != (rng.random() < LEFT_HANDED) else "left"
    for side in (first, "left" if first == "right" else "right"):
        if side not in taken:
            return side
    return None


#: Roll of the hand about the forearm per grasp (degrees; + turns the thumb side up): a needle holder's or the
#: scissors' hand turned 10-65 degrees, so that the rings show beside the fingers as on `oss_dev` (palm down they
#: hid under the hand, and held needle holders were taken for tweezers), on its side for a pen grip, in
#: between for a pinch, palm down at rest.
ROLL = {"ring_grip": (10, 65), "palm_grip": (0, 40), "pen_grip": (35, 75), "pinch": (0, 50), "rest": (-10, 10)}


def hand_orientation(rng: np.random.Generator, side: str, surgeon: np.ndarray, kind: str,
                     steeper: tuple[float, ...] = (0.0,)) -> list[np.ndarray]:
    """3x3 hand frames -> world, one per `steeper`: the forearm reaches from the surgeon toward the field,
    turned 10-50 degrees inward, the wrist 5-35 degrees (plus `steeper`) below the elbow, rolled as `ROLL`
    says."""
    forward = -surgeon
    right = np.cross(forward, [0.0, 0.0, 1.0])
    inward = np.radians(rng.uniform(10, 50))
    horizontal = np.cos(inward) * forward + (-1 if side == "right" else 1) * np.sin(inward) * right
    pitch = rng.uniform(5, 35) if kind != "rest" else rng.uniform(0, 10)
    roll = rodrigues(np.array([1.0, 0.0, 0.0]), np.radians(rng.uniform(*ROLL[kind])) * (1 if side == "right" else -1))
    frames = []
    for down in np.radians(pitch + np.asarray(steeper)):
        x = np.cos(down) * horizontal - np.sin(down) * np.array([0.0, 0.0, 1.0])
        y = np.cross([0.0, 0.0, 1.0], x)
        y /= np.linalg.norm(y)
        frames.append(np.stack([x, y, np.cross(x, y)], 1) @ roll)
    return frames


#: Held tips reach the tissue (at most this high, metres): a rolled hand's edge would hold them up, so the
#: forearm is drawn again `STEEPER` degrees steeper until they do (else the instrument lies free).
MAX_HELD_TIPS_HEIGHT, STEEPER = 0.03, (0, 10, 20, 30, 40)


#: Opening of instruments in a hand: forceps pinched partly shut, needle holder jaws mostly closed on a needle.
HELD_OPENING = {"tweezers": 0.6, "needle_holder": 0.4, "scissors": 0.4}


def held_opening(rng: np.random.Generator, tool, ranges: SceneRanges) -> float:
    """An opening within `--articulation` and at most the class's `HELD_OPENING` (its minimum when that range
    lies above it)."""
    low, high = ranges.articulation
    return float(rng.uniform(low, max(low, min(high, HELD_OPENING[tool.class_name]))))


def _held(rng: np.random.Generator, hand: HandModel, tool, key: tuple, side: str, surgeon: np.ndarray,
          work: np.ndarray, ranges: SceneRanges, others: list[HandPlacement],
          grasps: dict) -> tuple[tuple[np.ndarray, float], HandPlacement] | None:
    """A hand holding `tool` (`key`: which pool instrument, for `grasps`), its tips near the work point:
    ((tool pose, opening), hand), or None when no grasp fits or it would run into the other hand."""
    opening = held_opening(rng, tool, ranges)
    shape = tool_shape(tool, opening)
    if tool.class_name == "tweezers":
        kinds = ["pen_grip"]
    else:   # the rings in the palm now and then, else (or when the palm grip does not fit) in the fingers
        kinds = ["palm_grip", "ring_grip"] if tool.class_name == "needle_holder" and rng.random() < 0.2 else ["ring_grip"]
    for kind in kinds:
        grasp = grasp_tool(hand, shape, kind, side, rng, start=grasps.get((*key, kind, side)))
        if grasp is not None:
            break
    else:
        return None
    grasps[(*key, kind, side)] = grasp
    to_world = np.eye(4)
    tips_height = rng.uniform(0.002, 0.02)
    for to_world[:3, :3] in hand_orientation(rng, side, surgeon, kind, STEEPER):   # steeper till the tips are down
        tool_pose = to_world @ np.linalg.inv(grasp.hand_in_tool)
        kps = tool.keypoints(opening) @ tool_pose[:3, :3].T + tool_pose[:3, 3]
        vertices = grasp.posed.vertices @ to_world[:3, :3].T
        lift = max(tips_height - kps[:, 2].min(), 0.004 - vertices[:, 2].min())   # tips near, hand above the field
        if lift + kps[:2, 2].mean() <= MAX_HELD_TIPS_HEIGHT:
            break
    else:
        return None
    shift = work + np.array([*rng.normal(0, 0.025, 2), 0.0]) - (kps[0] + kps[1]) / 2   # tips near the work point
    shift[2] = lift
    to_world[:3, 3] = shift
    tool_pose = to_world @ np.linalg.inv(grasp.hand_in_tool)
    placed = _placement(rng, hand, grasp.posed.moved(to_world), side, kind, surgeon)
    metal = shape.points @ tool_pose[:3, :3].T + tool_pose[:3, 3]
    if any(_hands_touch(hand, placed, other) or penetration(hand, other.posed, metal) > MAX_PENETRATION
           for other in others):
        return None
    return (tool_pose, opening), placed


def _free(rng: np.random.Generator, hand: HandModel, kind: str, side: str, surgeon: np.ndarray, work: np.ndarray,
          others: list[HandPlacement]) -> HandPlacement | None:
    """A hand holding nothing near the work point: pinching thread in the air, or resting on the field."""
    grasp = free_hand(hand, kind, side, rng)
    to_world = np.eye(4)
    to_world[:3, :3], = hand_orientation(rng, side, surgeon, kind)
    for _ in range(5):
        right = np.cross(-surgeon, [0.0, 0.0, 1.0])
        offset = (rng.uniform(0.03, 0.12) * (1 if side == "right" else -1)) * right + rng.uniform(-0.02, 0.08) * surgeon
        vertices = grasp.posed.vertices @ to_world[:3, :3].T
        anchor = vertices.mean(0)
        to_world[:3, 3] = work + offset - anchor
        to_world[2, 3] = (rng.uniform(0.03, 0.10) if kind == "pinch" else 0.002) - vertices[:, 2].min()
        placed = _placement(rng, hand, grasp.posed.moved(to_world), side, kind, surgeon)
        if not any(_hands_touch(hand, placed, other) for other in others):
            return placed
    return None


def bone_points(posed: Posed, per_bone: int = 5) -> np.ndarray:
    """Points along every bone of a hand but the forearm: its skeleton, for contact tests between hands."""
    t = np.linspace(0, 1, per_bone)[:, None, None]
    return (posed.heads[1:] + t * (posed.tails[1:] - posed.heads[1:])).reshape(-1, 3)


def _hands_touch(hand: HandModel, a: HandPlacement, b: HandPlacement) -> bool:
    """Two hands overlapping: a point of either one's skeleton inside the other's capsules."""
    return penetration(hand, b.posed, bone_points(a.posed)) > 0.0 or penetration(hand, a.posed, bone_points(b.posed)) > 0.0


def _placement(rng: np.random.Generator, hand: HandModel, posed: Posed, side: str, kind: str,
               surgeon: np.ndarray) -> HandPlacement:
    return HandPlacement(side, kind, posed, sleeve_mesh(rng, hand, posed, surgeon))
