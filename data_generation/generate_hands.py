"""Gloved hand occluders built and posed by our own code (no third-party hand models).

Real instrument images show gloved hands covering handles and rings; the renderer places these
meshes over the instruments so the detector learns occluded keypoints. Each hand is a palm
(rounded box), a thumb and four fingers of three tapered capsules with flexion angles, a gloved
wrist with a rolled cuff, and a creased sleeve (gown, coat or bare skin: the renderer's `sleeve`
material) running 45 cm back toward the elbow, so that arms enter from the frame's edge as on real
footage instead of ending in mid-air. Merged into one mesh per pose. Adult size: about 18.7 cm
from the wrist to the middle fingertip.

Hand frame (metres), shared with the renderer: the origin is the grip point (where the held
handle passes: between the finger rings of a needle holder, between the grip areas of
tweezers); +x is the held instrument's axis, pointing from the hand toward the instrument's
tips; the back of the hand faces +z (toward a camera looking down -z), so the hand sits above
and around the handle. The centres of the fingertips that hold the handle lie at z = 0 (the
glove dips about 1.5 cm below it); hands made for no class rest on the z = 0 plane, centred
under the palm.

Sidecar JSON (same stem as the OBJ)::

    {"name": "pinch_tweezers_right", "pose": "pinch_tweezers", "side": "right", "units": "m",
     "grip_point": [0, 0, 0], "for_class": "tweezers", "sleeve_start_face": 3240}

`for_class` is a class of `surgpose.schema.CLASSES` or null (a hand that holds nothing in
particular); `units` is "m", "cm" or "mm"; `grip_point` is in the OBJ's units and frame;
`sleeve_start_face` (optional) is the index of the first sleeve face, counting the OBJ's faces in
file order as triangles (a quad counts two): faces before it are glove, it and those after it
sleeve (without it the whole mesh is glove). A hand must measure 1 cm to 1 m once in metres.

Usage (regenerates the committed hands/ folder, deterministically):
    python data_generation/generate_hands.py --out hands
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_generation.generate_tools import (  # noqa: E402
    UNITS, apply, check_size, merge, mirror_y, obj_paths, read_mesh, read_sidecar, rotation, superellipse, sweep,
    write_obj)
from surgpose.files import write_json  # noqa: E402
from surgpose.schema import CLASSES  # noqa: E402

# Right hand, anatomical frame: wrist centre at the origin, fingers along +x, thumb toward +y,
# back of the hand +z. Per finger: knuckle (MCP) position, spread yaw toward the thumb (deg),
# phalanx lengths and the radius at the knuckle (gloved).
FINGERS = {
    "index": ((0.090, 0.025, 0.003), 6.0, (0.039, 0.023, 0.017), 0.0095),
    "middle": ((0.093, 0.007, 0.003), 0.0, (0.043, 0.026, 0.018), 0.0097),
    "ring": ((0.089, -0.011, 0.003), -6.0, (0.041, 0.025, 0.017), 0.0092),
    "little": ((0.081, -0.028, 0.002), -13.0, (0.032, 0.019, 0.016), 0.0082),
}
FINGER_TAPER = (1.0, 0.9, 0.83, 0.76)
THUMB = ((0.022, 0.022, -0.006), (0.046, 0.032, 0.025), (0.0135, 0.0105, 0.0095, 0.0085))
PALM_CENTRE, PALM_HALF = np.array([0.047, -0.001, 0.0]), np.array([0.049, 0.041, 0.0145])
ARM_SLOPE = 0.3      # the forearm rises toward the elbow: metres up per metre back from the wrist
SLEEVE_END = 0.45    # metres from the wrist to the sleeve's end (past the elbow: out of most frames)
GLOVE, SLEEVE = 0, 1  # face materials


@dataclass(frozen=True)
class HandPose:
    """Joint angles (degrees) of one pose and how it sits in the hand frame."""

    for_class: str | None
    fingers: dict[str, tuple[float, float, float]]   # MCP, PIP, DIP flexion; + curls toward the palm
    spread: float                                    # scale on the fingers' spread yaw
    thumb: tuple[float, float, float, float, float]  # yaw (toward +y), pitch (down), roll, MCP, IP flexion
    grip: tuple[str, str] | None                     # (+y tip, -y tip) that hold the handle at the origin


POSES = {
    "grip_needle_holder": HandPose(
        "needle_holder", {"index": (8, 12, 6), "middle": (35, 60, 30), "ring": (40, 70, 35),
                          "little": (50, 75, 40)}, 0.9, (24, 18, -50, 40, 32), ("thumb", "ring")),
    "pinch_tweezers": HandPose(
        "tweezers", {"index": (35, 45, 20), "middle": (45, 55, 30), "ring": (60, 80, 45),
                     "little": (65, 85, 50)}, 0.8, (30, 24, -40, 8, 16), ("thumb", "index")),
    "relaxed": HandPose(
        None, {"index": (15, 25, 12), "middle": (18, 30, 15), "ring": (22, 34, 16), "little": (26, 38, 18)},
        1.0, (38, 24, -40, 10, 12), None),
    "open": HandPose(
        None, {"index": (0, 4, 2), "middle": (0, 4, 2), "ring": (0, 4, 2), "little": (0, 4, 2)},
        1.7, (52, 10, -30, 0, 4), None),
}
SIDES = ("left", "right")


@dataclass
class Hand:
    """A posed gloved hand mesh in the hand frame."""

    name: str
    pose: str
    side: str
    for_class: str | None
    vertices: np.ndarray       # (N, 3) float64, metres
    faces: np.ndarray          # (M, 3) int
    face_material: np.ndarray  # (M,) GLOVE or SLEEVE


def capsule(a, b, ra: float, rb: float, around: int = 14, cap: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Closed tapered capsule from `a` (radius ra) to `b` (radius rb): one finger segment."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    e3 = b - a
    e3 = e3 / np.linalg.norm(e3) if np.linalg.norm(e3) > 1e-9 else np.array([0.0, 0.0, 1.0])
    e1 = np.cross(e3, [0.0, 0.0, 1.0] if abs(e3[2]) < 0.9 else [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(e3, e1)
    lat = np.concatenate([np.linspace(-np.pi / 2, 0, cap + 1)[1:], np.linspace(0, np.pi / 2, cap + 1)[:-1]])
    centre = np.where((np.arange(2 * cap) < cap)[:, None], a, b)
    radius = np.where(np.arange(2 * cap) < cap, ra, rb)
    t = np.linspace(0, 2 * np.pi, around, endpoint=False)
    ring = np.cos(t)[:, None] * e1 + np.sin(t)[:, None] * e2
    pts = (centre[:, None] + radius[:, None, None] * (np.cos(lat)[:, None, None] * ring
                                                      + np.sin(lat)[:, None, None] * e3))
    vertices = np.vstack([a - ra * e3, pts.reshape(-1, 3), b + rb * e3])
    r, j = np.meshgrid(np.arange(2 * cap - 1), np.arange(around), indexing="ij")
    q0, q1 = 1 + r * around + j, 1 + r * around + (j + 1) % around
    q2, q3 = q1 + around, q0 + around
    jj = np.arange(around)
    last = len(vertices) - 1
    faces = np.concatenate([
        np.stack([np.zeros(around, int), 1 + (jj + 1) % around, 1 + jj], 1),
        np.stack([q0, q1, q2], -1).reshape(-1, 3), np.stack([q0, q2, q3], -1).reshape(-1, 3),
        np.stack([np.full(around, last), last - around + jj, last - around + (jj + 1) % around], 1)])
    return vertices, faces


def _palm() -> tuple[np.ndarray, np.ndarray]:
    """Rounded-box palm, narrower at the wrist than at the knuckles."""
    v, f = capsule(np.zeros(3), np.zeros(3), 1.0, 1.0, around=24, cap=8)
    v = np.sign(v) * np.abs(v) ** (2 / 3.0)            # sphere -> superellipsoid (power 3)
    v = v * PALM_HALF
    v[:, 1] *= 0.78 + 0.22 * (v[:, 0] / PALM_HALF[0] + 1) / 2
    return v + PALM_CENTRE, f


def _arm() -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    """Gloved wrist with a rolled cuff, and the sleeve that carries the forearm back toward the
    elbow, rising gently: (glove pieces, sleeve piece)."""
    def line(x: np.ndarray) -> np.ndarray:
        return np.stack([x, np.zeros_like(x), -ARM_SLOPE * np.minimum(x, 0.0)], 1)
    x = np.linspace(0.012, -0.09, 12)
    wrist = sweep(line(x), np.interp(x, [-0.09, 0.012], [0.032, 0.029]),
                  np.interp(x, [-0.09, 0.012], [0.022, 0.019]), superellipse(20, 2.2))
    xc = np.linspace(-0.06, -0.09, 5)
    cuff = sweep(line(xc), 0.0365, 0.0262, superellipse(20, 2.2))
    # sleeve: slips under the glove's cuff, widens toward the elbow, with shallow creases
    xs = np.linspace(-0.07, -SLEEVE_END, 48)
    crease = 1 + 0.045 * np.sin(xs / 0.021) * np.sin(xs / 0.067 + 1.0)
    sleeve = sweep(line(xs), np.interp(-xs, [0.07, SLEEVE_END], [0.0335, 0.052]) * crease,
                   np.interp(-xs, [0.07, SLEEVE_END], [0.024, 0.041]) * crease, superellipse(20, 2.2))
    return [wrist, cuff], sleeve


def _chain(base, frame: np.ndarray, lengths, radii, flexion) -> tuple[list, np.ndarray]:
    """Capsule segments of one digit; each joint flexes about the digit's local y axis."""
    points = [np.asarray(base, float)]
    for length, flex in zip(lengths, flexion):
        frame = frame @ rotation(np.zeros(3), [0, 1, 0], np.radians(flex))[:3, :3]
        points.append(points[-1] + frame[:, 0] * length)
    return [capsule(points[i], points[i + 1], radii[i], radii[i + 1]) for i in range(len(lengths))], points[-1]


def _base_frame(yaw: float, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """Digit base rotation (degrees): yaw about z, then pitch about y (+ = down), then roll about x."""
    r = [rotation(np.zeros(3), axis, np.radians(a))[:3, :3] for axis, a in
         (([0, 0, 1], yaw), ([0, 1, 0], pitch), ([1, 0, 0], roll))]
    return r[0] @ r[1] @ r[2]


def build_hand(pose: HandPose) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right hand in `pose`, in the hand frame (see module docstring): vertices, faces, and each
    face's material (GLOVE or SLEEVE; the sleeve's faces come last)."""
    glove, sleeve = _arm()
    pieces, tips = [_palm(), *glove], {}
    for name, (knuckle, yaw, lengths, radius) in FINGERS.items():
        segs, tips[name] = _chain(knuckle, _base_frame(yaw * pose.spread), lengths,
                                  [radius * t for t in FINGER_TAPER], pose.fingers[name])
        pieces += segs
    yaw, pitch, roll, mcp, ip = pose.thumb
    segs, tips["thumb"] = _chain(THUMB[0], _base_frame(yaw, pitch, roll), THUMB[1], THUMB[2], (0.0, mcp, ip))
    pieces += segs
    vertices, faces, materials = merge([(*piece, GLOVE) for piece in pieces] + [(*sleeve, SLEEVE)])

    if pose.grip:   # turn the holding tips onto the y axis (+y first), centred on the origin
        d = tips[pose.grip[0]] - tips[pose.grip[1]]
        to_frame = rotation(np.zeros(3), [0, 0, 1], np.pi / 2 - np.arctan2(d[1], d[0]))
        origin = apply(to_frame, ((tips[pose.grip[0]] + tips[pose.grip[1]]) / 2)[None])[0]
    else:           # rest on the z = 0 plane under the palm centre
        to_frame = np.eye(4)
        origin = np.array([*PALM_CENTRE[:2], vertices[:, 2].min()])
    to_frame[:3, 3] -= origin
    return apply(to_frame, vertices), faces, materials


def make_hands() -> list[Hand]:
    """Every pose for both sides; left hands are mirror images of right ones."""
    hands = []
    for pose_name, pose in POSES.items():
        vertices, faces, materials = build_hand(pose)
        for side in SIDES:
            posed = (vertices, faces) if side == "right" else mirror_y(vertices, faces)
            hands.append(Hand(f"{pose_name}_{side}", pose_name, side, pose.for_class, *posed, materials))
    return hands


def export_hand(hand: Hand, folder) -> Path:
    """Write `<name>.obj` and its JSON sidecar into `folder`."""
    path = Path(folder) / f"{hand.name}.obj"
    write_obj(path, hand.vertices, hand.faces)
    meta = {"name": hand.name, "pose": hand.pose, "side": hand.side, "units": "m", "grip_point": [0.0, 0.0, 0.0],
            "for_class": hand.for_class}
    if (hand.face_material == SLEEVE).any():
        meta["sleeve_start_face"] = int(np.argmax(hand.face_material == SLEEVE))
    write_json(path.with_suffix(".json"), meta, indent=1)
    return path


def load_hand(obj_path) -> Hand:
    """One hand OBJ with its sidecar, moved so the grip point is the origin, in metres."""
    obj_path = Path(obj_path)
    side_path, meta = read_sidecar(obj_path, "hand")
    if not isinstance(meta, dict) or meta.get("side") not in SIDES or meta.get("units", "m") not in UNITS:
        raise ValueError(f"{side_path}: needs 'side' in {SIDES} and 'units' in {tuple(UNITS)}")
    if meta.get("for_class") not in (*CLASSES, None):
        raise ValueError(f"{side_path}: unknown for_class {meta.get('for_class')!r}; expected one of "
                         f"{', '.join(CLASSES)} or null")
    grip = meta.get("grip_point", [0.0, 0.0, 0.0])
    if not (isinstance(grip, list) and len(grip) == 3 and all(isinstance(c, (int, float)) for c in grip)):
        raise ValueError(f"{side_path}: grip_point must be [x, y, z] numbers, got {grip!r}")
    mesh_vertices, faces = read_mesh(obj_path)
    sleeve_start = meta.get("sleeve_start_face", len(faces))
    if not (isinstance(sleeve_start, int) and 0 <= sleeve_start <= len(faces)):
        raise ValueError(f"{side_path}: sleeve_start_face must be a face index from 0 to {len(faces)}, "
                         f"got {sleeve_start!r}")
    vertices = (mesh_vertices - grip) * UNITS[meta.get("units", "m")]
    check_size(vertices, obj_path, side_path, "across")
    return Hand(meta.get("name", obj_path.stem), meta.get("pose", "custom"), meta["side"], meta.get("for_class"),
                vertices, faces, np.where(np.arange(len(faces)) < sleeve_start, GLOVE, SLEEVE))


def load_hands(dir) -> list[Hand]:
    """Every hand (`*.obj` + sidecar) in a folder; raises when it is missing or has none."""
    return [load_hand(p) for p in obj_paths(dir, "hands")]


def run(out: str = "hands") -> list[Path]:
    """Regenerate every hand pose for both sides into `out`."""
    paths = [export_hand(hand, out) for hand in make_hands()]
    print(f"wrote {len(paths)} hands to {out}")
    return paths


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="hands", help="output folder")
    return parser.parse_args(argv)


def main(opt: argparse.Namespace) -> list[Path]:
    return run(**vars(opt))


if __name__ == "__main__":
    main(parse_opt())
