"""A rigged gloved hand and forearm, posed per frame by linear blend skinning (pure numpy, no Blender).

The mesh, skeleton and skin weights are a cut-out of the MakeHuman base mesh (CC0; `hands/README.md` says
where from and how `data_generation/generate_hands.py` regenerates it). One right hand is stored; a left hand
is its mirror image (`Posed.mirrored`).

Hand frame (metres), shared with the grasps and the renderer: the origin is the wrist joint, +x runs along
the forearm from the elbow through the wrist (the hand extends toward +x), the back of the hand faces +z
and, for the right hand, the thumb lies toward +y. Every joint turns about axes fixed in its bone:
`flex` curls a digit toward the palm, `abd` swings it sideways (toward the thumb for positive values), and
the thumb's base also turns about its own length (`roll`, opposition).

Files (`hands/`): `hand.obj` (quads, vertex order as the weights index it), `hand.json`::

    {"units": "m", "side": "right",
     "bones": [{"name": "index_1", "parent": "metacarpal_index", "head": [x, y, z], "tail": [x, y, z],
                "flex_axis": [x, y, z], "radius": r}, ...],
     "weights": {"index_1": [[vertex, weight], ...], ...},
     "cuff": x}

`flex_axis` is the axis a positive `flex` turns the bone about (right-handed); `radius` the bone's
gloved thickness, for contact tests; `cuff` the x (negative: behind the wrist) where the glove ends.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Digits in the order the grasps and the skeleton list them; the thumb has the same three bones.
FINGERS = ("index", "middle", "ring", "little")
DIGITS = ("thumb", *FINGERS)

#: Joint angles a hand pose is made of (degrees), with anatomical limits (gloved adult, active range).
JOINT_LIMITS: dict[str, tuple[float, float]] = {
    "wrist_flex": (-60.0, 70.0), "wrist_abd": (-30.0, 20.0), "cup": (0.0, 15.0),
    "thumb_cmc_flex": (-25.0, 55.0), "thumb_cmc_abd": (-35.0, 45.0), "thumb_cmc_roll": (-30.0, 45.0),
    "thumb_mcp": (-10.0, 60.0), "thumb_ip": (-20.0, 85.0),
    **{f"{f}_{j}": lim for f in FINGERS for j, lim in (("mcp", (-20.0, 90.0)), ("abd", (-20.0, 20.0)),
                                                     ("pip", (0.0, 110.0)), ("dip", (-5.0, 85.0)))},
}
ANGLES = tuple(JOINT_LIMITS)

#: Bones a rigged hand must have: those the angles turn, the root, and the palm the grasps touch.
REQUIRED_BONES = ("forearm", "wrist", *(f"metacarpal_{f}" for f in FINGERS), *(f"{d}_{i}" for d in DIGITS for i in (1, 2, 3)))


#: Reflection across the xz plane (4x4): a right hand's pose to a left hand's, and back.
MIRROR = np.diag([1.0, -1.0, 1.0, 1.0])


def skew(v: np.ndarray) -> np.ndarray:
    """The cross-product matrix of a 3-vector (skew(a) @ b == a x b)."""
    return np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])


def rodrigues(axis: np.ndarray, angle: float) -> np.ndarray:
    """3x3 rotation by `angle` radians (right-handed) about the unit vector `axis`."""
    k = skew(np.asarray(axis, float))
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


@dataclass
class Bone:
    name: str
    parent: int          # index into HandModel.bones, -1 for the root (the forearm, never posed)
    head: np.ndarray     # (3,) rest position of the joint it turns about
    tail: np.ndarray     # (3,) rest position of the next joint (or the digit's tip)
    flex_axis: np.ndarray
    radius: float

    @property
    def direction(self) -> np.ndarray:
        d = self.tail - self.head
        return d / np.linalg.norm(d)

    @property
    def abd_axis(self) -> np.ndarray:
        """The axis a positive `abd` turns the bone about: it swings the bone toward `flex_axis`."""
        n = np.cross(self.direction, self.flex_axis)
        return n / np.linalg.norm(n)


@dataclass
class Posed:
    """One posed hand in the hand frame (or in the world once `moved`)."""

    vertices: np.ndarray     # (N, 3)
    heads: np.ndarray        # (B, 3) joint positions
    tails: np.ndarray        # (B, 3)
    transforms: np.ndarray   # (B, 4, 4) rest -> posed, per bone
    side: str

    def moved(self, pose: np.ndarray) -> "Posed":
        """The same hand after the rigid 4x4 `pose`."""
        rot, t = pose[:3, :3], pose[:3, 3]
        return Posed(self.vertices @ rot.T + t, self.heads @ rot.T + t, self.tails @ rot.T + t,
                     np.einsum("ij,bjk->bik", pose, self.transforms), self.side)

    def mirrored(self) -> "Posed":
        """The mirror image across the xz plane: a right hand becomes a left hand. Its transforms take the
        mirrored rest pose (rest points with y negated) to the mirrored posed hand."""
        return Posed(self.vertices * [1, -1, 1], self.heads * [1, -1, 1], self.tails * [1, -1, 1],
                     MIRROR @ self.transforms @ MIRROR, "left" if self.side == "right" else "right")

    def wound(self, quads: np.ndarray) -> np.ndarray:
        """The hand model's faces wound for this side: a mirror image turns them inside out unless reversed."""
        return quads if self.side == "right" else quads[:, ::-1]


class HandModel:
    """The rigged hand: rest mesh (quads), bones and skin weights, loaded from `hands/`."""

    #: Which angle turns which bone, about which of its axes, and by what share of the angle.
    DRIVES: dict[str, tuple[tuple[str, str, float], ...]] = {
        "wrist": (("wrist_flex", "flex", 1.0), ("wrist_abd", "abd", 1.0)),
        "metacarpal_ring": (("cup", "flex", 0.5),), "metacarpal_little": (("cup", "flex", 1.0),),
        "thumb_1": (("thumb_cmc_flex", "flex", 1.0), ("thumb_cmc_abd", "abd", 1.0), ("thumb_cmc_roll", "roll", 1.0)),
        "thumb_2": (("thumb_mcp", "flex", 1.0),), "thumb_3": (("thumb_ip", "flex", 1.0),),
        **{f"{f}_1": ((f"{f}_mcp", "flex", 1.0), (f"{f}_abd", "abd", 1.0)) for f in FINGERS},
        **{f"{f}_2": ((f"{f}_pip", "flex", 1.0),) for f in FINGERS},
        **{f"{f}_3": ((f"{f}_dip", "flex", 1.0),) for f in FINGERS},
    }

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, bones: list[Bone], weights: np.ndarray,
                 cuff: float):
        self.vertices, self.faces, self.bones, self.weights, self.cuff = vertices, faces, bones, weights, cuff
        self.index = {b.name: i for i, b in enumerate(bones)}
        #: faces of the glove (the rest, past the cuff toward the elbow, are the sleeve's)
        self.glove_faces = vertices[faces].mean(1)[:, 0] > cuff
        self._nonzero = [np.nonzero(weights[:, b])[0] for b in range(len(bones))]
        self.heads = np.array([b.head for b in bones])
        self.tails = np.array([b.tail for b in bones])
        self.parents = [b.parent for b in bones]
        self.chain = [self._ancestry(i) for i in range(len(bones))]   # each bone and its ancestors
        depth = np.array([len(c) for c in self.chain])
        self._levels = [(np.nonzero(depth == d)[0], np.array(self.parents)[depth == d]) for d in range(2, depth.max() + 1)]
        self._parent_or_self = np.array([p if p >= 0 else i for i, p in enumerate(self.parents)])
        self._root = np.array(self.parents) < 0
        # per bone and rotation kind (abd, flex, roll: applied in that order), the driving angle and its share
        self._axes = np.array([[b.abd_axis, b.flex_axis, b.direction] for b in bones])   # (B, 3, 3)
        self._source = np.full((len(bones), 3), len(ANGLES))                               # len(ANGLES): none
        self._share = np.zeros((len(bones), 3))
        # Rodrigues' terms of every turn: R = I + sin(a) K + (1 - cos(a)) K^2
        k = self._axes
        self._k = np.zeros((*k.shape[:2], 3, 3))
        self._k[..., 0, 1], self._k[..., 0, 2], self._k[..., 1, 2] = -k[..., 2], k[..., 1], -k[..., 0]
        self._k[..., 1, 0], self._k[..., 2, 0], self._k[..., 2, 1] = k[..., 2], -k[..., 1], k[..., 0]
        self._k2 = self._k @ self._k
        self._eye = np.eye(3)
        kinds = {"abd": 0, "flex": 1, "roll": 2}
        for name, drives in self.DRIVES.items():
            for angle, kind, share in drives:
                self._source[self.index[name], kinds[kind]] = ANGLES.index(angle)
                self._share[self.index[name], kinds[kind]] = share

    def _ancestry(self, i: int) -> list[int]:
        out = []
        while i >= 0:
            out.append(i)
            i = self.parents[i]
        return out

    @staticmethod
    def vector(angles: dict[str, float]) -> np.ndarray:
        """Angles by name as one vector in `ANGLES` order (missing ones 0)."""
        unknown = set(angles) - set(ANGLES)
        if unknown:
            raise KeyError(f"unknown joint angles {sorted(unknown)}")
        return np.array([angles.get(a, 0.0) for a in ANGLES], float)

    # ------------------------------------------------------------------ kinematics
    def kinematics(self, angles: dict[str, float] | np.ndarray,
                   with_axes: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, 4, 4) rest -> posed transform of every bone, and (`with_axes`) each bone's axes of its abd, flex
        and roll turns in the hand frame (B, 3, 3), for Jacobians."""
        vec = angles if isinstance(angles, np.ndarray) else self.vector(angles)
        radians = np.radians(np.append(vec, 0.0)[self._source] * self._share)          # (B, 3)
        s, c = np.sin(radians)[..., None, None], np.cos(radians)[..., None, None]
        rot = self._eye + s * self._k + (1 - c) * self._k2                               # (B, 3, 3, 3)
        k = self._axes
        local = np.tile(np.eye(4), (len(self.bones), 1, 1))
        local[:, :3, :3] = rot[:, 0] @ rot[:, 1] @ rot[:, 2]
        local[:, :3, 3] = self.heads - np.einsum("bij,bj->bi", local[:, :3, :3], self.heads)
        out = local.copy()
        for bones, parents in self._levels:   # a generation of the skeleton at a time
            out[bones] = out[parents] @ local[bones]
        if not with_axes:
            return out, None
        parent_rot = out[self._parent_or_self, :3, :3]
        parent_rot[self._root] = np.eye(3)
        axes = np.stack([np.einsum("bij,bj->bi", parent_rot, k[:, 0]),
                         np.einsum("bij,bj->bi", parent_rot @ rot[:, 0], k[:, 1]),
                         np.einsum("bij,bj->bi", parent_rot @ rot[:, 0] @ rot[:, 1], k[:, 2])], 1)
        return out, axes

    def transforms(self, angles: dict[str, float] | np.ndarray) -> np.ndarray:
        """(B, 4, 4) rest -> posed transform of every bone."""
        return self.kinematics(angles, with_axes=False)[0]

    def joints(self, angles: dict[str, float] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Posed heads and tails of every bone, and the transforms: the skeleton without the skin (cheap)."""
        t = self.transforms(angles)
        heads = np.einsum("bij,bj->bi", t[:, :3, :3], self.heads) + t[:, :3, 3]
        tails = np.einsum("bij,bj->bi", t[:, :3, :3], self.tails) + t[:, :3, 3]
        return heads, tails, t

    def pose(self, angles: dict[str, float] | np.ndarray, side: str = "right") -> Posed:
        """The skinned mesh in the hand frame for `angles` (degrees; missing ones are 0, the rest pose)."""
        heads, tails, t = self.joints(angles)
        vertices = np.zeros_like(self.vertices)
        for b, rows in enumerate(self._nonzero):
            vertices[rows] += self.weights[rows, b, None] * (self.vertices[rows] @ t[b, :3, :3].T + t[b, :3, 3])
        posed = Posed(vertices, heads, tails, t, "right")
        return posed.mirrored() if side == "left" else posed

    def bone(self, name: str) -> Bone:
        return self.bones[self.index[name]]

    def scaled(self, factor: float) -> "HandModel":
        """The same hand `factor` times as large about the wrist (hands differ in size)."""
        bones = [Bone(b.name, b.parent, b.head * factor, b.tail * factor, b.flex_axis, b.radius * factor)
                 for b in self.bones]
        return HandModel(self.vertices * factor, self.faces, bones, self.weights, self.cuff * factor)


def read_quads(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and faces of an OBJ in file order (trimesh would triangulate and may reorder)."""
    vertices, faces = [], []
    for line in Path(path).read_text().splitlines():
        if line.startswith("v "):
            vertices.append([float(c) for c in line.split()[1:4]])
        elif line.startswith("f "):
            faces.append([int(t.split("/")[0]) - 1 for t in line.split()[1:]])
    if not vertices or not faces or len({len(f) for f in faces}) != 1:
        raise ValueError(f"{path}: expected vertices and faces of one size (all quads or all triangles)")
    faces = np.array(faces)
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(f"{path}: a face points past the {len(vertices)} vertices")
    return np.array(vertices, float), faces


def load_hand_model(folder: str | Path) -> HandModel:
    """The rigged hand of a `hands/` folder (`hand.obj` + `hand.json`); errors name the file and what is wrong."""
    folder = Path(folder)
    obj, side = folder / "hand.obj", folder / "hand.json"
    for path in (obj, side):
        if not path.is_file():
            raise FileNotFoundError(f"hands folder {folder}: {path.name} is missing (a rigged hand is hand.obj + "
                                    "hand.json; see hands/README.md)")
    try:
        meta = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{side}: not valid JSON ({err})") from None
    vertices, faces = read_quads(obj)
    try:
        names = [b["name"] for b in meta["bones"]]
        bones = [Bone(b["name"], names.index(b["parent"]) if b["parent"] else -1, np.array(b["head"], float),
                      np.array(b["tail"], float), np.array(b["flex_axis"], float), float(b["radius"]))
                 for b in meta["bones"]]
        weights = np.zeros((len(vertices), len(bones)))
        for name, pairs in meta["weights"].items():
            rows = np.array(pairs, float).reshape(-1, 2)
            weights[rows[:, 0].astype(int), names.index(name)] = rows[:, 1]
        cuff = float(meta["cuff"])
    except (KeyError, ValueError, TypeError, IndexError) as err:
        raise ValueError(f"{side}: not a rigged hand ({type(err).__name__}: {err}); see hands/README.md") from None
    missing = set(REQUIRED_BONES) - set(names)
    if missing:
        raise ValueError(f"{side}: bones {sorted(missing)} are missing")
    if bones[0].name != "forearm" or bones[0].parent != -1 or any(b.parent >= i for i, b in enumerate(bones)):
        raise ValueError(f"{side}: bones must be listed parents first, starting with the forearm (the root)")
    if meta.get("side") != "right":
        raise ValueError(f"{side}: side must be 'right' (left hands are its mirror image)")
    total = weights.sum(1)
    if np.abs(total - 1).max() > 1e-3:
        raise ValueError(f"{side}: skin weights of vertex {int(np.argmax(np.abs(total - 1)))} do not sum to 1")
    if meta.get("units") != "m":
        raise ValueError(f"{side}: units must be 'm'")
    return HandModel(vertices, faces, bones, weights, cuff)


SLEEVE_AROUND = 20   # vertices around the sleeve


def forearm_profile(model: HandModel, at: np.ndarray) -> np.ndarray:
    """Half width (y) and half height (z) of the bare forearm at positions `at` along x (hand frame), from its
    mesh; beyond the cut-out's end the last measured size, growing 15 % per 10 cm toward the elbow."""
    v = model.vertices
    lo = v[:, 0].min()
    bins = np.linspace(lo + 0.012, model.cuff, 6)
    half = np.array([np.ptp(v[np.abs(v[:, 0] - x) < 0.012, 1:], axis=0) / 2 for x in bins])
    out = np.stack([np.interp(at, bins, half[:, 0]), np.interp(at, bins, half[:, 1])], 1)
    grow = 1 + 1.5 * np.clip(lo + 0.012 - at, 0, None)
    return out * grow[:, None]


def sleeve_mesh(rng: np.random.Generator, model: HandModel, posed: Posed, surgeon: np.ndarray,
                upper_arm: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """A loose creased sleeve from under the glove's cuff along the forearm to the elbow, then up and back
    toward the surgeon's shoulder, out of the frame (world vertices, quads). Its start lies inside the glove's
    cuff, its end is open (never in view)."""
    root = posed.transforms[model.index["forearm"]]   # the forearm is rigid: the hand frame in the world
    x = np.linspace(model.cuff + 0.012, -0.24, 16)
    centre = (np.stack([x, np.zeros_like(x), np.zeros_like(x)], 1)) @ root[:3, :3].T + root[:3, 3]
    margin = rng.uniform(0.006, 0.022)
    half = forearm_profile(model, x) + margin * np.clip((model.cuff + 0.03 - x) / 0.05, 0.3, 1.0)[:, None]
    elbow, along = centre[-1], -root[:3, 0]
    up = 0.5 * surgeon + np.array([0.0, 0.0, 0.87])
    up /= np.linalg.norm(up)
    t = np.linspace(0, 1, 13)[1:, None]
    bend = elbow + 0.12 * along
    arm = (1 - t) ** 2 * elbow + 2 * (1 - t) * t * bend + t ** 2 * (bend + upper_arm * up)
    path = np.vstack([centre, arm])
    half = np.vstack([half, np.repeat(half[-1:] * 1.05, len(arm), 0)])
    # ring frames: the forearm's own y/z, carried along the bend by parallel transport
    side, top = root[:3, 1], root[:3, 2]
    frames = []
    for i in range(len(path)):
        if i:
            tangent = path[i] - path[i - 1]
            tangent /= np.linalg.norm(tangent)
            side = side - tangent * (side @ tangent)
            side /= np.linalg.norm(side)
            top = np.cross(tangent, side)
            top = top if top @ frames[-1][1] > 0 else -top
        frames.append((side, top))
    theta = np.linspace(0, 2 * np.pi, SLEEVE_AROUND, endpoint=False)
    phase = rng.uniform(0, 2 * np.pi, 3)
    s = np.arange(len(path))[:, None]
    crease = 1 + 0.06 * np.sin(1.7 * s + 3 * theta + phase[0]) * np.sin(0.9 * s + phase[1]) \
        + 0.03 * np.sin(5 * theta + 0.6 * s + phase[2])
    sides, tops = np.array([f[0] for f in frames]), np.array([f[1] for f in frames])
    ring = (np.cos(theta)[None, :, None] * (sides * half[:, :1])[:, None]
            + np.sin(theta)[None, :, None] * (tops * half[:, 1:])[:, None])
    vertices = (path[:, None] + ring * crease[..., None]).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(len(path) - 1), np.arange(SLEEVE_AROUND), indexing="ij")
    a, b = i * SLEEVE_AROUND + j, i * SLEEVE_AROUND + (j + 1) % SLEEVE_AROUND
    quads = np.stack([a, a + SLEEVE_AROUND, b + SLEEVE_AROUND, b], -1).reshape(-1, 4)
    return vertices, quads
