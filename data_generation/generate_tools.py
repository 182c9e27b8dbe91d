"""Parametric surgical instruments (tweezers, needle holders) whose parts really articulate, and
scissors as unlabelled look-alikes.

Keypoint labels stay exact at any opening because every keypoint rides on the rigid part that
carries it: the renderer poses parts with `ToolModel.part_transforms` and labels with
`ToolModel.keypoints`, both driven by the same opening in [0, 1].

Tool frame (metres): origin = the `joint` keypoint (tweezers: closed back end; needle holder:
box-lock pivot), +x toward the tips, +y the tool's left (tip_left has y > 0 once open), +z up
through the thickness. The rest pose (opening 0) is closed: tweezer tips touch, jaws shut.

Generated dimensions (drawn per tool from a `numpy.random.Generator`):
- tweezers: half of them short and broad (length 11-18 cm, arm width 8-10 mm at the grip), half long and
  slender (15-20 cm, 4-6 mm: DeBakey-like forceps, the kind real suturing footage shows most), tapering to
  1-1.5 mm at the tips, thickness 1-1.5 mm, tip centres 15-28 mm apart fully open (forceps at rest),
  optional grip serrations;
- needle holders: length 12-20 cm, jaws 1.5-2.5 cm beyond the box lock, finger-ring inner
  diameter 1.6-2 cm, full jaw opening 30-40 degrees, optional gold rings (material "gold");
- scissors (distractors, `make_distractor`): length 13-19 cm, blades 32-45 % of it and 8-13 mm wide
  together at the pivot, no teeth, box lock or ratchet, full opening 30-50 degrees.

Keypoint sidecar: every OBJ has a JSON file with the same stem; coordinates are in the OBJ's own
frame and units::

    {"class": "tweezers", "units": "m",
     "keypoints": {"tip_left": [x, y, z], "tip_right": [x, y, z], "joint": [x, y, z],
                   "handle_left": [x, y, z], "handle_right": [x, y, z]}}

`class` is one of `surgpose.schema.CLASSES`; `units` is "m" (default), "cm" or "mm". A user mesh
loaded with `load_tool` is one rigid part (it does not open) and is moved into the tool frame
from its keypoints: joint to the origin, the tips' midpoint along +x, tip_left (or handle_left
when the tips coincide) toward +y.

Usage:
    python data_generation/generate_tools.py --out tools_out --count 4 --seed 0 --opening 0.5
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from surgpose.files import write_json, write_text  # noqa: E402
from surgpose.schema import CLASSES, KEYPOINTS  # noqa: E402

UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}
Z_AXIS = np.array([0.0, 0.0, 1.0])


# ----------------------------------------------------------------------------- mesh building blocks
def superellipse(n: int, power: float) -> np.ndarray:
    """Unit cross-section outline (n, 2), counter-clockwise: power 2 is an ellipse, higher powers
    square it off (flat steel stock with rounded edges), inf gives a rectangle (n=4)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False) + np.pi / n
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / power
    outline = np.stack([np.sign(c) * np.abs(c) ** e, np.sign(s) * np.abs(s) ** e], 1)
    return outline / np.abs(outline).max(0)   # reach exactly +/-1: widths and thicknesses are true


RECT = superellipse(4, np.inf)
FLAT = superellipse(12, 5.0)    # flat instrument stock
ROUND = superellipse(12, 2.6)   # finger rings


def sweep(path, half_w, half_h, profile: np.ndarray = FLAT, closed: bool = False
          ) -> tuple[np.ndarray, np.ndarray]:
    """Closed tube: `profile` scaled by (half_w, half_h) and swept along `path` (S, 3).

    The width stays horizontal (perpendicular to the path in xy) and the height along z, which
    is how flat instrument stock lies. Open tubes get flat end caps plus a support loop just
    inside each end, so smooth shading does not bend the faces next to a cap.
    """
    path = np.asarray(path, float)
    rows = np.column_stack([path, np.broadcast_to(half_w, len(path)), np.broadcast_to(half_h, len(path))])
    if not closed:
        step0 = min(2e-4 / np.linalg.norm(path[1] - path[0]), 0.3)
        step1 = min(2e-4 / np.linalg.norm(path[-1] - path[-2]), 0.3)
        rows = np.vstack([rows[:1], rows[0] + step0 * (rows[1] - rows[0]), rows[1:-1],
                          rows[-1] + step1 * (rows[-2] - rows[-1]), rows[-1:]])
    path, hw, hh = rows[:, :3], rows[:, 3], rows[:, 4]
    s, k = len(path), len(profile)
    if closed:
        tangent = np.roll(path, -1, 0) - np.roll(path, 1, 0)
    else:
        tangent = np.gradient(path, axis=0)
    tangent = tangent[:, :2] / np.linalg.norm(tangent[:, :2], axis=1, keepdims=True)
    side = np.stack([-tangent[:, 1], tangent[:, 0], np.zeros(s)], 1)
    rings = (path[:, None, :] + side[:, None, :] * (profile[None, :, 0] * hw[:, None])[..., None]
             + Z_AXIS * (profile[None, :, 1] * hh[:, None])[..., None])
    i, j = np.meshgrid(np.arange(s if closed else s - 1), np.arange(k), indexing="ij")
    a, b = i * k + j, i * k + (j + 1) % k
    c, d = ((i + 1) % s) * k + (j + 1) % k, ((i + 1) % s) * k + j
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    vertices = rings.reshape(-1, 3)
    if not closed:
        start, end = len(vertices), len(vertices) + 1
        jj = np.arange(k)
        caps = [np.stack([np.full(k, start), (jj + 1) % k, jj], 1),
                np.stack([np.full(k, end), (s - 1) * k + jj, (s - 1) * k + (jj + 1) % k], 1)]
        vertices = np.vstack([vertices, path[0], path[-1]])
        faces = np.concatenate([faces, *caps])
    return vertices, faces


def orient_outward(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Faces of a closed piece wound so normals point outward (positive enclosed volume):
    Cycles shades back faces wrongly otherwise."""
    v = vertices[faces]
    signed = np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum()
    return faces if signed >= 0 else faces[:, ::-1].copy()


def merge(pieces: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate closed pieces `(vertices, faces[, material])` into one vertex/face/material set,
    each piece oriented outward (overlapping pieces are fine for rendering)."""
    vertices, faces, materials, offset = [], [], [], 0
    for piece in pieces:
        v, f = np.asarray(piece[0], float), np.asarray(piece[1], np.int64)
        vertices.append(v)
        faces.append(orient_outward(v, f) + offset)
        materials.append(np.full(len(f), piece[2] if len(piece) > 2 else 0, np.int64))
        offset += len(v)
    return np.vstack(vertices), np.concatenate(faces), np.concatenate(materials)


def mirror_y(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror image across the xz plane (left <-> right), winding flipped to stay outward."""
    return vertices * [1.0, -1.0, 1.0], faces[:, ::-1].copy()


def rotation(pivot, axis, angle: float) -> np.ndarray:
    """4x4 rotation by `angle` (radians, right-handed) about the line through `pivot` along `axis`."""
    k = np.asarray(axis, float) / np.linalg.norm(axis)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    r = np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx
    t = np.eye(4)
    t[:3, :3] = r
    t[:3, 3] = np.asarray(pivot, float) - r @ np.asarray(pivot, float)
    return t


def apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to (N, 3) points."""
    return points @ transform[:3, :3].T + transform[:3, 3]


def write_obj(path, vertices: np.ndarray, faces: np.ndarray, face_groups: np.ndarray | None = None,
              group_names: tuple[str, ...] = ()) -> None:
    """Write a triangle OBJ (micrometre precision), faces grouped under `usemtl <name>` when given."""
    lines = [f"o {Path(path).stem}"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.round(vertices, 6) + 0.0]  # no "-0.000000"
    groups = np.zeros(len(faces), int) if face_groups is None else face_groups
    for g in np.unique(groups):
        if group_names:
            lines.append(f"usemtl {group_names[g]}")
        lines += [f"f {a} {b} {c}" for a, b, c in faces[groups == g] + 1]
    write_text(path, "\n".join(lines) + "\n")


def _round_end(distance: np.ndarray, radius: float) -> np.ndarray:
    """Width factor that rounds a flat end off over `radius` (quarter ellipse outline)."""
    u = np.clip(np.asarray(distance) / radius, 0, 1)
    return np.sqrt(np.clip(1 - (1 - u) ** 2, 0.1, 1))


# ----------------------------------------------------------------------------- tool model
@dataclass
class Part:
    """One rigid piece of an instrument, in the tool frame at rest (closed)."""

    name: str
    vertices: np.ndarray       # (N, 3) float64
    faces: np.ndarray          # (M, 3) int
    face_material: np.ndarray  # (M,) int index into ToolModel.materials
    pivot: np.ndarray          # (3,) point the part rotates about
    axis: np.ndarray           # (3,) unit rotation axis
    angle_sign: float          # +1/-1: direction this part turns as the tool opens


@dataclass
class ToolModel:
    """An instrument as rigid parts plus the keypoints they carry."""

    class_name: str
    parts: list[Part]
    keypoints_rest: np.ndarray   # (5, 3) in schema.KEYPOINTS order, rest pose
    keypoint_parts: list[int]    # part index carrying each keypoint, -1 = fixed (joint)
    max_opening_deg: float
    materials: tuple[str, ...] = ("steel", "gold")

    def part_transforms(self, opening: float) -> list[np.ndarray]:
        """4x4 tool-frame transform of each part: it turns by +/- opening * max_opening / 2."""
        half = np.radians(self.max_opening_deg) * float(np.clip(opening, 0.0, 1.0)) / 2
        return [rotation(p.pivot, p.axis, p.angle_sign * half) for p in self.parts]

    def keypoints(self, opening: float) -> np.ndarray:
        """(5, 3) keypoints at `opening`, each moved with the part carrying it."""
        transforms = self.part_transforms(opening)
        return np.array([kp if part < 0 else apply(transforms[part], kp[None])[0]
                         for kp, part in zip(self.keypoints_rest, self.keypoint_parts)])

    def _merged(self, opening: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        transforms, vertices, faces, offset = self.part_transforms(opening), [], [], 0
        for part, t in zip(self.parts, transforms):
            vertices.append(apply(t, part.vertices))
            faces.append(part.faces + offset)
            offset += len(part.vertices)
        return (np.vstack(vertices), np.concatenate(faces),
                np.concatenate([p.face_material for p in self.parts]))

    def mesh(self, opening: float) -> trimesh.Trimesh:
        """All parts at `opening` merged into one mesh (pieces stay separate closed shells)."""
        vertices, faces, _ = self._merged(opening)
        return trimesh.Trimesh(vertices, faces, process=False)

    def export(self, obj_path, opening: float = 0.0) -> None:
        """Write the posed mesh as OBJ (faces grouped by material) and its keypoint JSON sidecar."""
        obj_path = Path(obj_path)
        vertices, faces, materials = self._merged(opening)
        write_obj(obj_path, vertices, faces, materials, self.materials)
        write_json(obj_path.with_suffix(".json"), {
            "class": self.class_name, "units": "m",
            "keypoints": {k: [round(float(c), 6) for c in p] for k, p in zip(KEYPOINTS, self.keypoints(opening))}},
            indent=1)


def _two_part_tool(class_name: str, names: tuple[str, str], left: list[tuple], right: list[tuple],
                   keypoints_rest: np.ndarray, keypoint_parts: list[int], max_opening_deg: float) -> ToolModel:
    """A tool whose two parts turn in opposite senses about the z axis through the joint."""
    parts = [Part(name, *merge(pieces), np.zeros(3), Z_AXIS.copy(), sign)
             for name, pieces, sign in zip(names, (left, right), (1.0, -1.0))]
    return ToolModel(class_name, parts, np.asarray(keypoints_rest, float), keypoint_parts, float(max_opening_deg))


def _tweezers(rng: np.random.Generator) -> ToolModel:
    """Two bowed, tapered flat arms welded at the back end (x = 0); the left arm is built and
    the right one mirrored, each turning about the back end as the tool opens."""
    slender = rng.random() < 0.5   # real forceps are often long thin rods, seen 2-3 px wide at imgsz 640
    length = rng.uniform(0.15, 0.20) if slender else rng.uniform(0.11, 0.18)
    grip_w = rng.uniform(0.004, 0.006) if slender else rng.uniform(0.008, 0.010)
    tip_w = rng.uniform(0.001, 0.0015)
    thick = rng.uniform(0.001, 0.0015)
    tip_gap = rng.uniform(0.015, 0.028)              # tip centres, fully open: real forceps at rest
    bow = rng.uniform(0.0012, 0.0025)                 # inner gap of one arm at its widest, closed
    back_len = rng.uniform(0.08, 0.12) * length       # welded length at the back
    grip_c, grip_h = rng.uniform(0.36, 0.46) * length, 0.14 * length
    serrated = rng.random() < 0.7
    pitch = rng.uniform(0.0012, 0.0018)
    back_w = 0.85 * grip_w

    x = np.unique(np.concatenate([np.linspace(0, back_w, 8), np.linspace(0, length, 90)]))
    width = np.interp(x, [0, grip_c - grip_h, grip_c + grip_h, length], [back_w, grip_w, grip_w, tip_w])
    width *= _round_end(x, back_w)
    u = np.clip((x - back_len) / (length - back_len), 0, 1)
    inner = bow * np.sin(np.pi * u) ** 0.7            # inner edge: welded, bowed apart, meeting at the tip
    centre = inner + width / 2
    pieces = [sweep(np.stack([x, centre, np.zeros_like(x)], 1), width / 2, thick / 2)]
    if serrated:
        for xr in np.arange(grip_c - grip_h, grip_c + grip_h, pitch):
            y0, y1 = np.interp(xr, x, inner), np.interp(xr, x, inner + width)
            margin = 0.12 * (y1 - y0)
            for z in (thick / 2, -thick / 2):
                pieces.append(sweep([[xr, y0 + margin, z], [xr, y1 - margin, z]], 2.5e-4, 1.2e-4, RECT))
    right = [mirror_y(v, f) for v, f in pieces]

    tip = np.array([length, centre[-1], 0.0])
    handle = np.array([grip_c, np.interp(grip_c, x, centre), 0.0])
    flip = np.array([1.0, -1.0, 1.0])
    # turn each arm so the tip centres end tip_gap apart: 2 R sin(theta + phi) = tip_gap
    radius, phi = np.hypot(tip[0], tip[1]), np.arctan2(tip[1], tip[0])
    max_deg = 2 * np.degrees(np.arcsin(tip_gap / (2 * radius)) - phi)
    return _two_part_tool("tweezers", ("arm_left", "arm_right"), pieces, right,
                          [tip, tip * flip, np.zeros(3), handle, handle * flip], [0, 1, -1, 0, 1], max_deg)


@dataclass
class RingedDims:
    """Dimensions of a ring-handled instrument (needle holder, scissors), metres and degrees."""

    length: float
    jaw_len: float        # jaws or blades beyond the pivot region
    ring_r: float         # finger-ring inner radius
    band: float           # ring stock width
    thick: float
    box_l: float          # pivot region along the axis (box lock, or the blades' overlap)
    box_w: float
    jaw_w: float          # both jaws/blades together at the pivot
    jaw_tip_w: float
    shank_w: float
    screw_r: float
    ring_gap: float
    max_deg: float
    ring_mat: int         # 1: gold-plated rings


def _needle_holder(rng: np.random.Generator) -> ToolModel:
    """Two halves crossing at a box lock, short toothed jaws, a ratchet between the rings."""
    dims = RingedDims(
        length=rng.uniform(0.12, 0.20), jaw_len=rng.uniform(0.015, 0.025), ring_r=rng.uniform(0.016, 0.020) / 2,
        band=rng.uniform(0.0028, 0.0038), thick=rng.uniform(0.0025, 0.0035), box_l=rng.uniform(0.008, 0.011),
        box_w=rng.uniform(0.007, 0.009), jaw_w=rng.uniform(0.0035, 0.005), jaw_tip_w=rng.uniform(0.0015, 0.0025),
        shank_w=rng.uniform(0.0035, 0.0045), screw_r=rng.uniform(0.0016, 0.0022),
        ring_gap=rng.uniform(0.0005, 0.002), max_deg=rng.uniform(30, 40),
        ring_mat=int(rng.random() < 0.4))    # gold-plated rings (tungsten-carbide holders)
    return _ringed("needle_holder", ("half_left_jaw", "half_right_jaw"), dims, surgical_jaws=True)


def _scissors(rng: np.random.Generator) -> ToolModel:
    """Operating scissors (Mayo, Metzenbaum): long smooth blades, a bare pivot screw, no ratchet.
    Not a class of the schema: the renderer lays them on the field as unlabelled look-alikes."""
    length = rng.uniform(0.13, 0.19)
    dims = RingedDims(
        length=length, jaw_len=rng.uniform(0.32, 0.45) * length, ring_r=rng.uniform(0.016, 0.021) / 2,
        band=rng.uniform(0.0025, 0.0035), thick=rng.uniform(0.0018, 0.0028), box_l=rng.uniform(0.004, 0.006),
        box_w=0.0, jaw_w=rng.uniform(0.008, 0.013), jaw_tip_w=rng.uniform(0.0008, 0.004),
        shank_w=rng.uniform(0.0035, 0.0045), screw_r=rng.uniform(0.0018, 0.0026),
        ring_gap=rng.uniform(0.0005, 0.002), max_deg=rng.uniform(30, 50), ring_mat=int(rng.random() < 0.2))
    return _ringed("scissors", ("half_left_blade", "half_right_blade"), dims, surgical_jaws=False)


def _ringed(class_name: str, names: tuple[str, str], d: RingedDims, surgical_jaws: bool) -> ToolModel:
    """Two scissor-like halves crossing at the pivot (the origin): the half with the left jaw carries
    the right finger ring, the pivot screw rides on the right-jaw half. `surgical_jaws` adds the
    needle holder's gripping teeth, box lock and ratchet."""
    tip_x = d.box_l / 2 + d.jaw_len
    ring_out = d.ring_r + d.band
    ring_c = np.array([tip_x - d.length + ring_out, ring_out + d.ring_gap])   # ring centre, |y|
    r_mid = d.ring_r + d.band / 2

    def half(s: float) -> tuple[list[tuple], np.ndarray, np.ndarray]:
        """Pieces of the half whose jaw lies on the s*y side, its jaw tip and its ring centre."""
        x = np.linspace(0, tip_x, 40)
        hw = np.interp(x, [0, d.box_l / 2, tip_x], [d.jaw_w / 2, d.jaw_w / 2, d.jaw_tip_w / 2])
        hw *= _round_end(tip_x - x, min(d.jaw_w, 0.005))
        jaw_h = np.interp(x, [0, tip_x], [d.thick / 2, 0.35 * d.thick])
        pieces = [sweep(np.stack([x, s * hw / 2, np.zeros_like(x)], 1), hw / 2, jaw_h)]
        pitch = 0.0009                                 # gripping-face teeth, interleaved between halves
        for xt in np.arange(d.box_l / 2 + 0.001 + (s < 0) * pitch / 2, tip_x - 0.0015, pitch) if surgical_jaws else ():
            h = 0.8 * np.interp(xt, x, jaw_h)
            pieces.append(sweep([[xt, s * 3e-4, 0], [xt, -s * 3.5e-4, 0]], 2e-4, h, RECT))

        centre = np.array([ring_c[0], -s * ring_c[1]])
        alpha = np.radians(40)                         # shank meets the ring at its inner front
        join = centre + r_mid * np.array([np.cos(alpha), s * np.sin(alpha)])
        p1 = np.array([-d.box_l / 2, -s * d.shank_w / 2])
        ctrl = p1 + [0.7 * (join[0] - p1[0]), 0.0]
        t = np.linspace(0, 1, 40)[:, None]
        bez = (1 - t) ** 2 * p1 + 2 * (1 - t) * t * ctrl + t ** 2 * join
        shank = np.vstack([[0.0, 0.0], bez])           # from the pivot, hidden inside the box lock
        grow = np.linspace(0, 1, len(shank))
        pieces.append(sweep(np.column_stack([shank, np.zeros(len(shank))]),
                            (1 - 0.2 * grow) * d.shank_w / 2, (1 - 0.15 * grow) * d.thick / 2))
        a = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        ring = np.column_stack([centre + r_mid * np.stack([np.cos(a), np.sin(a)], 1), np.zeros(len(a))])
        pieces.append((*sweep(ring, d.band / 2, 0.45 * d.thick, ROUND, closed=True), d.ring_mat))

        if surgical_jaws:
            x0, x1 = join[0] + 0.003, join[0] + 0.011      # ratchet: the halves' blocks overlap in z
            edge = np.interp((x0 + x1) / 2, bez[::-1, 0], bez[::-1, 1]) + s * 0.4 * d.shank_w
            y0, y1 = edge - s * 0.0005, s * 0.0006
            pieces.append(sweep([[x0, (y0 + y1) / 2, s * d.thick / 4], [x1, (y0 + y1) / 2, s * d.thick / 4]],
                                abs(y1 - y0) / 2, d.thick / 4, RECT))
        return pieces, np.array([tip_x, s * hw[-1] / 2, 0.0]), np.append(centre, 0.0)

    left, tip_left, ring_right = half(1.0)
    right, tip_right, ring_left = half(-1.0)
    screw = trimesh.creation.cylinder(radius=d.screw_r, height=1.5 * d.thick + 4e-4, sections=20)
    right.append((screw.vertices, screw.faces))
    if surgical_jaws:
        right.append(sweep(np.stack([np.linspace(-d.box_l / 2, d.box_l / 2, 5), np.zeros(5), np.zeros(5)], 1),
                           d.box_w / 2, 0.75 * d.thick, superellipse(16, 6.0)))
    return _two_part_tool(class_name, names, left, right,
                          [tip_left, tip_right, np.zeros(3), ring_left, ring_right], [0, 1, -1, 1, 0], d.max_deg)


BUILDERS = {"tweezers": _tweezers, "needle_holder": _needle_holder}
DISTRACTORS = {"scissors": _scissors}   # look-alikes rendered without labels


def make_tool(class_name: str, rng: np.random.Generator) -> ToolModel:
    """A new parametric instrument of `class_name` with dimensions drawn from `rng`."""
    if class_name not in BUILDERS:
        raise ValueError(f"unknown class {class_name!r}; expected one of {', '.join(CLASSES)}")
    return BUILDERS[class_name](rng)


def make_distractor(rng: np.random.Generator) -> ToolModel:
    """A new instrument that is not in the schema (scissors), for the renderer to show unlabelled."""
    kinds = sorted(DISTRACTORS)
    return DISTRACTORS[kinds[rng.integers(len(kinds))]](rng)


# ----------------------------------------------------------------------------- user meshes
def read_sidecar(obj_path: Path, what: str) -> tuple[Path, object]:
    """The JSON sidecar beside a mesh (its path and parsed content); errors name the file."""
    side = obj_path.with_suffix(".json")
    if not side.is_file():
        raise ValueError(f"{obj_path}: {what} sidecar {side.name} is missing")
    try:
        return side, json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{side}: not valid JSON ({e})") from None


def _read_sidecar(obj_path: Path) -> tuple[str, np.ndarray, float]:
    """Class, (5, 3) keypoints and metres-per-unit from the sidecar of `obj_path`, validated."""
    side, meta = read_sidecar(obj_path, "keypoint")
    if not isinstance(meta, dict):
        raise ValueError(f"{side}: expected a JSON object with 'class', 'units' and 'keypoints'")
    if meta.get("class") not in CLASSES:
        raise ValueError(f"{side}: unknown class {meta.get('class')!r}; expected one of {', '.join(CLASSES)}")
    if meta.get("units", "m") not in UNITS:
        raise ValueError(f"{side}: unknown units {meta.get('units')!r}; expected one of {', '.join(UNITS)}")
    kps = meta.get("keypoints")
    if not isinstance(kps, dict):
        raise ValueError(f"{side}: missing 'keypoints' object with {', '.join(KEYPOINTS)}")
    missing = [k for k in KEYPOINTS if k not in kps]
    if missing:
        raise ValueError(f"{side}: missing keypoints {', '.join(missing)}")
    for k in KEYPOINTS:
        p = kps[k]
        if not (isinstance(p, list) and len(p) == 3 and all(isinstance(c, (int, float)) and np.isfinite(c) for c in p)):
            raise ValueError(f"{side}: keypoint {k!r} must be [x, y, z] numbers, got {p!r}")
    scale = UNITS[meta.get("units", "m")]
    return meta["class"], np.array([kps[k] for k in KEYPOINTS], float) * scale, scale


def _frame_from_keypoints(kps: np.ndarray, where: Path) -> np.ndarray:
    """4x4 taking a mesh's own frame to the tool frame defined by its keypoints."""
    tip_l, tip_r, joint, hand_l, hand_r = kps
    x = (tip_l + tip_r) / 2 - joint
    if np.linalg.norm(x) < 1e-4:
        raise ValueError(f"{where}: tips and joint coincide; cannot tell the tool's axis")
    x /= np.linalg.norm(x)
    for lateral in (tip_l - tip_r, hand_l - hand_r):
        y = lateral - x * (lateral @ x)
        if np.linalg.norm(y) > 1e-5:
            break
    else:
        raise ValueError(f"{where}: left and right keypoints coincide; cannot tell left from right")
    y /= np.linalg.norm(y)
    t = np.eye(4)
    t[:3, :3] = np.stack([x, y, np.cross(x, y)])
    t[:3, 3] = -t[:3, :3] @ joint
    return t


def load_tool(obj_path) -> ToolModel:
    """A user's instrument mesh with its keypoint sidecar, as one rigid part in the tool frame.

    Raises ValueError naming the file when the sidecar is missing or malformed.
    """
    obj_path = Path(obj_path)
    side = obj_path.with_suffix(".json")
    class_name, kps, scale = _read_sidecar(obj_path)
    mesh_vertices, faces = read_mesh(obj_path)
    to_tool = _frame_from_keypoints(kps, side)
    vertices = apply(to_tool, mesh_vertices * scale)
    check_size(vertices, obj_path, side, "long")
    lo, hi = vertices.min(0), vertices.max(0)
    margin = 0.1 * float((hi - lo).max())   # tips lie on the mesh, ring centres inside its box
    off = [k for k, p in zip(KEYPOINTS, apply(to_tool, kps)) if ((p < lo - margin) | (p > hi + margin)).any()]
    if off:   # such a tool is placed by its keypoints, so its mesh would land out of view in every frame
        raise ValueError(f"{side}: keypoints {', '.join(off)} lie outside the mesh {obj_path.name}; use the "
                         "OBJ's own coordinates and units")
    part = Part("body", vertices, faces, np.zeros(len(faces), np.int64), np.zeros(3), Z_AXIS.copy(), 1.0)
    return ToolModel(class_name, [part], apply(to_tool, kps), [0, 0, -1, 0, 0], 0.0)


def read_mesh(obj_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (N, 3) and triangles (M, 3) of a user's mesh file (quads split in two, in file order);
    any file trimesh cannot read, or a face that points past the vertices, is a ValueError naming it."""
    try:   # bytes that are not UTF-8 (a comment written by a Latin-1 tool) would make trimesh guess the encoding
        text = Path(obj_path).read_bytes().decode("utf-8", errors="replace").encode()
        mesh = trimesh.load(io.BytesIO(text), file_type="obj", force="mesh", process=False)
        vertices, faces = np.asarray(mesh.vertices, float), np.asarray(mesh.faces, np.int64)
    except Exception as err:   # trimesh raises anything from IndexError to a missing optional module
        raise ValueError(f"{obj_path}: cannot read this mesh ({type(err).__name__}: {err})") from None
    if len(faces) == 0:
        raise ValueError(f"{obj_path}: mesh has no faces")
    if faces.max() >= len(vertices) or not np.isfinite(vertices).all():
        raise ValueError(f"{obj_path}: a face points past the {len(vertices)} vertices, or a vertex is not finite")
    return vertices, faces


def check_size(vertices: np.ndarray, obj_path: Path, side: Path, what: str) -> None:
    """A mesh between 1 cm and 1 m, as instruments and hands are: else its sidecar's units are wrong."""
    size = float(np.ptp(vertices, axis=0).max())
    if not 0.01 <= size <= 1.0:
        raise ValueError(f"{obj_path}: mesh is {size:.3g} m {what}; check 'units' in {side.name}")


def obj_paths(dir, what: str) -> list[Path]:
    """The `*.obj` files of a mesh folder, sorted; raises when the folder is missing or has none."""
    folder = Path(dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} folder {folder} does not exist")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".obj")   # a.OBJ too
    if not paths:
        raise ValueError(f"{what} folder {folder} has no .obj meshes")
    return paths


def load_tools_dir(dir) -> list[ToolModel]:
    """Every `*.obj` (with its sidecar) in a folder; raises when the folder has none."""
    return [load_tool(p) for p in obj_paths(dir, "tools")]


# ----------------------------------------------------------------------------- CLI
def run(out: str = "tools_out", count: int = 4, seed: int = 0, opening: float = 0.0) -> list[Path]:
    """Export `count` parametric tools (classes alternating) as OBJ + JSON sidecar into `out`."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        class_name = CLASSES[i % len(CLASSES)]
        path = Path(out) / f"{class_name}_{i:03d}.obj"
        make_tool(class_name, rng).export(path, opening)
        paths.append(path)
    print(f"wrote {len(paths)} tools to {out}")
    return paths


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--out", default="tools_out", help="output folder")
    parser.add_argument("--count", type=int, default=4, help="number of tools (classes alternate)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--opening", type=float, default=0.0, help="opening in [0, 1] of the exported pose")
    return parser.parse_args(argv)


def main(opt: argparse.Namespace) -> list[Path]:
    return run(**vars(opt))


if __name__ == "__main__":
    main(parse_opt())
