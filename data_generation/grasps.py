"""Hands closed around instruments the way surgeons hold them, solved per frame (pure numpy and SciPy).

A grasp is a set of contacts (a point of a finger bone -> a point of the instrument), a template of joint
angles drawn with noise every frame, and the joints that may move to meet the contacts. `solve` finds the
hand's pose relative to the instrument and those joints by least squares within `JOINT_LIMITS`; then the
fingers that hold nothing in particular curl until they touch the instrument (`close_fingers`), and a
grasp in which any finger or the palm passes into the metal by more than `MAX_PENETRATION` is drawn again.

Grasps (right hand; a left hand solves the mirror image and is mirrored back):
- `ring_grip` (needle holder, scissors): thumb and ring finger through the finger rings from above, index
  finger along the shanks toward the box lock, middle and little fingers curled against the ring;
- `palm_grip` (needle holder): rings inside the palm, fingers wrapped round the shanks, thumb along one
  shank, index toward the box lock;
- `pen_grip` (tweezers): thumb pad on one arm and index pad on the other, 45-70 % down the instrument, the
  arms resting against the thumb side of the index finger's knuckle, the other fingers curled until they
  touch the instrument;
- free hands: `pinch` (thumb and index tips together, as on a thread), `rest` (relaxed, palm down).

Everything is in metres, in the instrument's tool frame (`generate_tools`) or the hand frame (`hand_model`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from data_generation.hand_model import ANGLES, FINGERS, JOINT_LIMITS, MIRROR, HandModel, Posed, rodrigues, skew

MAX_PENETRATION = 0.004    # metres a finger capsule may reach into the metal (the gloved fingertip is softer and
                           # thinner at its end than the capsule that stands for it)
LOWER = np.array([JOINT_LIMITS[a][0] for a in ANGLES])
UPPER = np.array([JOINT_LIMITS[a][1] for a in ANGLES])


@dataclass
class ToolShape:
    """What a grasp needs of an instrument at one opening, in its tool frame."""

    kind: str                  # "needle_holder", "tweezers" or "scissors"
    keypoints: np.ndarray      # (5, 3) schema order: tip_left, tip_right, joint, handle_left, handle_right
    points: np.ndarray         # (N, 3) surface points of every part (a subsample of the mesh vertices)

    def mirrored(self) -> "ToolShape":
        """The instrument's mirror image across its xz plane, left and right keypoints swapped."""
        return ToolShape(self.kind, self.keypoints[[1, 0, 2, 4, 3]] * [1, -1, 1], self.points * [1, -1, 1])

    def surface(self, near: np.ndarray, direction, radius: float = 0.003) -> np.ndarray:
        """The instrument's outermost point in `direction` among its points within `radius` of `near`'s
        position along the instrument axis (x) and across it (y): where a finger pressing from that side
        meets the metal."""
        d = np.asarray(direction, float)
        close = np.abs(self.points[:, 0] - near[0]) < radius
        close &= np.abs(self.points[:, 1] - near[1]) < 4 * radius
        pts = self.points[close] if close.any() else self.points
        return pts[np.argmax(pts @ d)]


def tool_shape(tool, opening: float, max_points: int = 1500) -> ToolShape:
    """`ToolShape` of a `generate_tools.ToolModel` at `opening`."""
    vertices = tool.mesh(opening).vertices
    step = max(1, len(vertices) // max_points)
    return ToolShape(tool.class_name, tool.keypoints(opening), np.asarray(vertices[::step], float))


@dataclass
class Contact:
    bone: str
    point: np.ndarray     # rest position in the hand frame, carried by `bone`
    target: np.ndarray    # where it must go, tool frame
    weight: float = 1.0


@dataclass
class Grasp:
    kind: str
    side: str
    angles: np.ndarray        # `ANGLES` order, degrees
    hand_in_tool: np.ndarray  # 4x4: hand frame -> tool frame (free hands: the identity; the caller places them)
    posed: Posed              # the skinned hand in the hand frame (mirrored for a left hand: see `Posed.mirrored`)
    error: float              # largest contact miss, metres
    penetration: float        # deepest finger or palm point inside the metal, metres


# ---------------------------------------------------------------------------------------------- hand points
def tip(model: HandModel, digit: str) -> tuple[str, np.ndarray]:
    """Centre of a digit's fingertip ball."""
    b = model.bone(f"{digit}_3")
    return b.name, b.tail - b.direction * b.radius


def pad(model: HandModel, digit: str, along: float = 0.65, bone: int = 3) -> tuple[str, np.ndarray]:
    """A point of a phalanx's palm-side surface, `along` its length."""
    b = model.bone(f"{digit}_{bone}")
    return b.name, b.head + along * (b.tail - b.head) - b.radius * b.abd_axis


def palm(model: HandModel) -> tuple[str, np.ndarray]:
    """The middle of the palm's surface."""
    b = model.bone("metacarpal_middle")
    return b.name, b.head + 0.6 * (b.tail - b.head) - b.radius * b.abd_axis


def web(model: HandModel) -> tuple[str, np.ndarray]:
    """Where a pen rests: the thumb side of the index finger's knuckle, above the web of the thumb."""
    b = model.bone("index_1")
    return "metacarpal_index", b.head + b.radius * np.array([0.0, 0.95, 0.3])


def carried(model: HandModel, transforms: np.ndarray, bone: str, point: np.ndarray) -> np.ndarray:
    t = transforms[model.index[bone]]
    return t[:3, :3] @ point + t[:3, 3]


# ---------------------------------------------------------------------------------------------- collisions
def capsules(model: HandModel, posed: Posed, bones: list[str] | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                                          np.ndarray]:
    """Segments (heads, tails) and radii approximating the gloved hand (forearm excluded)."""
    idx = [model.index[b] for b in bones] if bones else [i for i, b in enumerate(model.bones) if b.parent >= 0]
    return posed.heads[idx], posed.tails[idx], np.array([model.bones[i].radius for i in idx])


def capsule_gaps(points: np.ndarray, a: np.ndarray, b: np.ndarray, r: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Of `points`, those within the capsules' common bounding box (only they can be inside one), and for each of
    them and each capsule (segment a-b, radius r): where along the segment its nearest axis point lies (0..1),
    the vector from the point to it, and the distance."""
    lo, hi = (np.minimum(a, b) - r[:, None]).min(0), (np.maximum(a, b) + r[:, None]).max(0)
    points = points[((points >= lo) & (points <= hi)).all(1)]
    ab = b - a
    u = np.clip(((points[:, None] - a) * ab).sum(-1) / (ab * ab).sum(-1), 0, 1)
    gap = a + u[..., None] * ab - points[:, None]
    return points, u, gap, np.sqrt((gap * gap).sum(-1))


def penetration(model: HandModel, posed: Posed, points: np.ndarray, bones: list[str] | None = None) -> float:
    """Deepest of `points` inside the hand's capsules (0 when none is)."""
    a, b, r = capsules(model, posed, bones)
    _, _, _, d = capsule_gaps(points, a, b, r)
    return float(max(0.0, (r - d).max())) if d.size else 0.0


# ---------------------------------------------------------------------------------------------- solving
def kabsch(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> np.ndarray:
    """4x4 rigid transform taking `src` points onto `dst` in the weighted least-squares sense."""
    w = w / w.sum()
    cs, cd = w @ src, w @ dst
    h = ((src - cs) * w[:, None]).T @ (dst - cd)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rot = vt.T @ np.diag([1, 1, d]) @ u.T
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rot, cd - rot @ cs
    return out


class ContactProblem:
    """Where `contacts`' hand points land in the tool frame for joint angles and a hand pose, how far each
    misses (weighted), and the exact derivatives of that with respect to the pose (a small turn about the
    contacts' centre, and a shift) and to the `free` angles: the pieces of `solve`."""

    def __init__(self, model: HandModel, contacts: list[Contact], free: list[str]):
        self.model = model
        self.free = np.array([ANGLES.index(a) for a in free], int)
        self.bones = [model.index[c.bone] for c in contacts]
        self.points = np.array([c.point for c in contacts])
        self.targets = np.array([c.target for c in contacts])
        self.weights = np.array([c.weight for c in contacts])
        column = {a: 6 + i for i, a in enumerate(self.free)}
        # every (contact, ancestor bone, turn kind) a free angle drives: the Jacobian's non-zero entries
        entries = [(n, k, kind, column[model._source[k, kind]]) for n, b in enumerate(self.bones)
                   for k in model.chain[b] for kind in range(3) if model._source[k, kind] in column]
        self.row, self.bone, self.kind, self.col = np.array(entries, int).reshape(-1, 4).T
        self.share = np.radians(model._share[self.bone, self.kind])

    def hits(self, angles: np.ndarray, pose: np.ndarray, jacobian: bool = False):
        """Contact points in the tool frame (n, 3), and with `jacobian` their derivatives (3n, 6 + free): the
        first three columns a turn about the points' centre (rotation vector), then a shift, then the angles
        in degrees."""
        t, axes = self.model.kinematics(angles, with_axes=jacobian)
        hand = np.einsum("nij,nj->ni", t[self.bones, :3, :3], self.points) + t[self.bones, :3, 3]
        hit = hand @ pose[:3, :3].T + pose[:3, 3]
        if not jacobian:
            return hit
        jac = np.zeros((3 * len(hit), 6 + len(self.free)))
        centre = hit.mean(0)
        for n in range(len(hit)):
            jac[3 * n:3 * n + 3, :3] = -skew(hit[n] - centre)
            jac[3 * n:3 * n + 3, 3:6] = np.eye(3)
        pivots = np.einsum("eij,ej->ei", t[self.bone, :3, :3], self.model.heads[self.bone]) + t[self.bone, :3, 3]
        turn = self.share[:, None] * _cross(axes[self.bone, self.kind], hand[self.row] - pivots) @ pose[:3, :3].T
        for axis in range(3):
            np.add.at(jac, (3 * self.row + axis, self.col), turn[:, axis])
        return hit, jac, centre

    def misses(self, hit: np.ndarray) -> np.ndarray:
        """Each contact's distance to its target, weighted as the contact."""
        return np.linalg.norm(hit - self.targets, axis=1) * self.weights


def solve(model: HandModel, template: np.ndarray, free: list[str], contacts: list[Contact],
          prior: float = 0.0005, iterations: int = 40,
          start: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Hand pose in the tool frame and the `free` joint angles that best meet `contacts`, staying near
    `template` (`prior`: metres of contact miss worth a 10 degree change): damped Gauss-Newton (Levenberg-
    Marquardt) with the exact Jacobian of the skeleton's turns, joints kept within their limits, from `start`
    (angles, pose) or from the template placed by `kabsch`. Returns (angles, hand_in_tool, largest contact
    miss in metres, each weighted as its contact)."""
    problem = ContactProblem(model, contacts, free)
    idx, w = problem.free, np.repeat(problem.weights, 3)

    def residuals(angles: np.ndarray, hit: np.ndarray) -> np.ndarray:
        return np.concatenate([(hit - problem.targets).ravel() * w, prior * (angles[idx] - template[idx]) / 10])

    if start is None:
        angles = template.copy()
        pose = kabsch(problem.hits(angles, np.eye(4)), problem.targets, problem.weights)
    else:   # the joints that meet the contacts start where they were, the others as the template has them
        angles, pose = template.copy(), start[1]
        angles[idx] = start[0][idx]
    prior_rows = np.hstack([np.zeros((len(idx), 6)), prior / 10 * np.eye(len(idx))])
    hit, jac, centre = problem.hits(angles, pose, jacobian=True)
    res = residuals(angles, hit)
    jac = np.vstack([jac * w[:, None], prior_rows])
    cost, damping = res @ res, 1e-3
    for _ in range(iterations):
        jtj = jac.T @ jac
        step = np.linalg.solve(jtj + damping * (np.diag(np.diag(jtj)) + 1e-9 * np.eye(len(jtj))), -jac.T @ res)
        rot = rodrigues(step[:3] / max(np.linalg.norm(step[:3]), 1e-12), float(np.linalg.norm(step[:3])))
        trial_pose = np.eye(4)
        trial_pose[:3, :3] = rot @ pose[:3, :3]
        trial_pose[:3, 3] = rot @ (pose[:3, 3] - centre) + centre + step[3:6]
        trial = angles.copy()
        trial[idx] = np.clip(angles[idx] + step[6:], LOWER[idx], UPPER[idx])
        trial_res = residuals(trial, problem.hits(trial, trial_pose))
        if trial_res @ trial_res < cost:
            angles, pose = trial, trial_pose
            hit, jac, centre = problem.hits(angles, pose, jacobian=True)
            res = residuals(angles, hit)
            jac = np.vstack([jac * w[:, None], prior_rows])
            improvement = cost - res @ res
            cost, damping = res @ res, max(damping / 3, 1e-7)
            if improvement < 1e-3 * (cost + improvement) or cost < 1e-8:   # converged, or within 0.1 mm
                break
        else:
            damping *= 4
            if damping > 1e6:
                break
    return angles, pose, float(problem.misses(hit).max())


def contact_miss(model: HandModel, angles: np.ndarray, pose: np.ndarray, contacts: list[Contact]) -> float:
    """The largest distance from a contact's hand point to its target, weighted as the contact."""
    problem = ContactProblem(model, contacts, [])
    return float(problem.misses(problem.hits(angles, pose)).max())


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross products (np.cross is slow on small arrays)."""
    return np.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1], a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                     a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], 1)


def push_out(model: HandModel, angles: np.ndarray, pose: np.ndarray, points: np.ndarray, bones: list[str],
             clearance: float = 0.0005) -> list[Contact]:
    """For each of `bones` whose capsule holds instrument `points` (tool frame), a contact that moves the
    capsule's axis point nearest the deepest one out to the surface: added to a grasp's contacts and solved
    again, fingers that pressed into the metal come to rest on it."""
    heads, tails, _ = model.joints(angles)
    idx = np.array([model.index[name] for name in bones])
    a = heads[idx] @ pose[:3, :3].T + pose[:3, 3]
    b = tails[idx] @ pose[:3, :3].T + pose[:3, 3]
    r = np.array([model.bones[i].radius for i in idx])
    points, u, gap, d = capsule_gaps(points, a, b, r)
    out = []
    for k in np.nonzero((d < r).any(0))[0]:       # bones holding metal: push each at its deepest point
        p = int(np.argmin(d[:, k] - r[k]))
        normal = gap[p, k] / max(d[p, k], 1e-6)
        bone = model.bones[idx[k]]
        rest = bone.head + u[p, k] * (bone.tail - bone.head)
        out.append(Contact(bone.name, rest, points[p] + normal * (r[k] + clearance), 3.0))
    return out


def close_fingers(model: HandModel, angles: np.ndarray, pose: np.ndarray, shape: ToolShape, fingers: list[str],
                  step: float = 6.0, max_steps: int = 14) -> np.ndarray:
    """Curl each of `fingers` (MCP, PIP and DIP together) from `angles` until it touches the instrument, or
    uncurl it until it no longer passes into it; fingers that meet nothing end fully curled."""
    inv = np.linalg.inv(pose)
    points = shape.points @ inv[:3, :3].T + inv[:3, 3]          # instrument in the hand frame
    angles = angles.copy()
    for finger in fingers:
        joints = [ANGLES.index(f"{finger}_{j}") for j in ("mcp", "pip", "dip")]
        bones = [f"{finger}_{i}" for i in (1, 2, 3)]
        share = np.array([1.0, 1.0, 0.7])

        def depth(a: np.ndarray) -> float:
            return penetration(model, Posed(*_skeleton(model, a), "right"), points, bones)

        if depth(angles) > MAX_PENETRATION / 2:     # start inside the metal: open up
            for _ in range(max_steps):
                angles[joints] = np.clip(angles[joints] - step * share, LOWER[joints], UPPER[joints])
                if depth(angles) <= MAX_PENETRATION / 2:
                    break
            continue
        for _ in range(max_steps):
            trial = angles.copy()
            trial[joints] = np.clip(trial[joints] + step * share, LOWER[joints], UPPER[joints])
            if np.array_equal(trial, angles) or depth(trial) > MAX_PENETRATION / 2:
                break
            angles = trial
    return angles


def _skeleton(model: HandModel, angles: np.ndarray) -> tuple:
    heads, tails, t = model.joints(angles)
    return np.empty((0, 3)), heads, tails, t


# ---------------------------------------------------------------------------------------------- grasps
def _jitter(rng: np.random.Generator, base: dict[str, float], sigma: float) -> np.ndarray:
    vec = HandModel.vector(base)
    named = np.array([a in base for a in ANGLES])
    vec = vec + rng.normal(0, sigma, len(ANGLES)) * np.where(named, 1.0, 0.3)
    return np.clip(vec, LOWER, UPPER)


RING_GRIP = {"wrist_flex": 15, "wrist_abd": 5, "cup": 5,
             "thumb_cmc_flex": 15, "thumb_cmc_abd": 40, "thumb_cmc_roll": 10, "thumb_mcp": 10, "thumb_ip": 10,
             "index_mcp": 30, "index_abd": 5, "index_pip": 20, "index_dip": 5,
             "middle_mcp": 55, "middle_pip": 60, "middle_dip": 30,
             "ring_mcp": 60, "ring_pip": 40, "ring_dip": 10,
             "little_mcp": 60, "little_pip": 65, "little_dip": 35}
PALM_GRIP = {"wrist_flex": 5, "cup": 10,
             "thumb_cmc_flex": 15, "thumb_cmc_abd": 20, "thumb_mcp": 10, "thumb_ip": 10,
             "index_mcp": 15, "index_pip": 20, "index_dip": 10,
             "middle_mcp": 55, "middle_pip": 75, "middle_dip": 40, "ring_mcp": 60, "ring_pip": 80, "ring_dip": 40,
             "little_mcp": 65, "little_pip": 85, "little_dip": 45}
PEN_GRIP = {"wrist_flex": 5, "wrist_abd": 10,
            "thumb_cmc_flex": 25, "thumb_cmc_abd": 30, "thumb_cmc_roll": 15, "thumb_mcp": 15, "thumb_ip": 20,
            "index_mcp": 35, "index_pip": 35, "index_dip": 15,
            "middle_mcp": 45, "middle_pip": 50, "middle_dip": 25,
            "ring_mcp": 60, "ring_pip": 80, "ring_dip": 40, "little_mcp": 70, "little_pip": 85, "little_dip": 45}
PINCH = {"wrist_flex": 15, "thumb_cmc_flex": 25, "thumb_cmc_abd": 30, "thumb_cmc_roll": 20, "thumb_mcp": 15,
         "thumb_ip": 15, "index_mcp": 40, "index_pip": 45, "index_dip": 15,
         "middle_mcp": 40, "middle_pip": 55, "middle_dip": 25, "ring_mcp": 45, "ring_pip": 60, "ring_dip": 30,
         "little_mcp": 50, "little_pip": 65, "little_dip": 35}
REST = {"wrist_flex": -5, "thumb_cmc_abd": 10, "thumb_mcp": 10, "thumb_ip": 10,
        **{f"{f}_mcp": 15 + 5 * i for i, f in enumerate(FINGERS)}, **{f"{f}_pip": 25 + 5 * i for i, f in enumerate(FINGERS)},
        **{f"{f}_dip": 10 for f in FINGERS}}
THUMB = ["thumb_cmc_flex", "thumb_cmc_abd", "thumb_cmc_roll", "thumb_mcp", "thumb_ip"]


def _finger(name: str) -> list[str]:
    return [f"{name}_mcp", f"{name}_abd", f"{name}_pip", f"{name}_dip"]


def ring_grip(model: HandModel, shape: ToolShape, rng: np.random.Generator) -> tuple[np.ndarray, list[str], list[Contact], list[str]]:
    """Thumb through the +y ring, ring finger through the -y ring, index along the shanks."""
    kps = shape.keypoints
    thumb_ring, finger_ring = (kps[3], kps[4]) if kps[3, 1] > kps[4, 1] else (kps[4], kps[3])
    depth = rng.uniform(0.0, 0.004)                 # how far the fingertips reach through the rings
    up = np.array([0.0, 0.0, 1.0])
    lean = np.array([-0.004, 0.0, 0.0])
    reach = rng.uniform(0.45, 0.75)                 # index tip between the rings' front and the box lock
    shank_x = thumb_ring[0] + reach * (kps[2, 0] - thumb_ring[0])
    top = shape.surface(np.array([shank_x, 0.0, 0.0]), up, 0.004)
    contacts = [
        Contact(*tip(model, "thumb"), thumb_ring - depth * up),
        Contact(model.bone("thumb_3").name, model.bone("thumb_3").head, thumb_ring + 0.016 * up + lean, 0.25),
        Contact(*tip(model, "ring"), finger_ring + rng.uniform(0.002, 0.006) * up),   # resting in the opening
        Contact(model.bone("ring_3").name, model.bone("ring_3").head, finger_ring + 0.014 * up + lean, 0.2),
        Contact(*pad(model, "index", 0.5), top + [0, 0, 0.002], 0.7),
        Contact(*palm(model), (thumb_ring + finger_ring) / 2 + [0.012, 0.0, rng.uniform(0.024, 0.038)], 0.3),
    ]
    free = THUMB + _finger("ring") + _finger("index") + ["wrist_flex", "wrist_abd"]
    return _jitter(rng, RING_GRIP, 8.0), free, contacts, ["middle", "little"]


def palm_grip(model: HandModel, shape: ToolShape, rng: np.random.Generator) -> tuple[np.ndarray, list[str], list[Contact], list[str]]:
    """Rings in the palm, thumb pad on the +y shank, index pad on top toward the box lock."""
    kps = shape.keypoints
    rings = (kps[3] + kps[4]) / 2
    shank_x = rings[0] + rng.uniform(0.5, 0.8) * (kps[2, 0] - rings[0])
    side = shape.surface(np.array([shank_x, 0.01, 0.0]), [0.0, 1.0, 0.0], 0.004)
    top = shape.surface(np.array([shank_x + 0.01, 0.0, 0.0]), [0.0, 0.0, 1.0], 0.004)
    contacts = [
        Contact(*palm(model), rings + [0, 0, 0.006], 0.6),
        Contact(*pad(model, "thumb", 0.6), side + [0, 0.002, 0], 0.5),
        Contact(*pad(model, "index", 0.5), top + [0, 0, 0.002], 0.5),
    ]
    free = THUMB + _finger("index") + ["wrist_flex", "wrist_abd"]
    return _jitter(rng, PALM_GRIP, 6.0), free, contacts, ["middle", "ring", "little"]


def pen_grip(model: HandModel, shape: ToolShape, rng: np.random.Generator) -> tuple[np.ndarray, list[str], list[Contact], list[str]]:
    """Thumb pad on the +y arm, index pad on the -y arm, the back end in the web of the thumb."""
    kps = shape.keypoints
    length = (kps[0, 0] + kps[1, 0]) / 2
    x = rng.uniform(0.45, 0.7) * length
    left = shape.surface(np.array([x, kps[3, 1], 0.0]), [0.0, 1.0, 0.0])
    right = shape.surface(np.array([x + 0.004, kps[4, 1], 0.0]), [0.0, -1.0, 0.0])
    back = np.array([max(x - rng.uniform(0.055, 0.075), 0.0), 0.0, -0.006])   # rests on the index's knuckle
    contacts = [
        Contact(*pad(model, "thumb", 0.55), left + [0, 0.001, 0]),
        Contact(*pad(model, "index", 0.55), right - [0, 0.001, 0]),
        Contact(*web(model), back, 0.3),
    ]
    free = THUMB + _finger("index") + ["wrist_flex", "wrist_abd"]
    return _jitter(rng, PEN_GRIP, 6.0), free, contacts, ["middle", "ring", "little"]


GRASPS = {"ring_grip": ring_grip, "palm_grip": palm_grip, "pen_grip": pen_grip}


def grasp_tool(model: HandModel, shape: ToolShape, kind: str, side: str, rng: np.random.Generator,
               tries: int = 4, max_miss: float = 0.008, start: Grasp | None = None) -> Grasp | None:
    """A `kind` grasp of the instrument by the `side` hand, or None when no try meets its contacts within
    `max_miss` without a finger passing into the metal. `start`, an earlier grasp of the same kind on the
    same instrument, makes the first try converge in a few steps."""
    right_shape = shape.mirrored() if side == "left" else shape
    for attempt in range(tries):
        template, free, contacts, curl = GRASPS[kind](model, right_shape, rng)
        warm = (start.angles, MIRROR @ start.hand_in_tool @ MIRROR if start.side == "left" else start.hand_in_tool) \
            if start is not None and attempt == 0 else None
        angles, pose, miss = solve(model, template, free, contacts, start=warm)
        movable = [b.name for b in model.bones if b.parent >= 0 and not any(b.name.startswith(f) for f in curl)]
        pushed: list[Contact] = []
        for _ in range(3):   # fingers pressed into the metal rest on it instead
            more = push_out(model, angles, pose, right_shape.points, movable)
            if not more:
                break
            pushed += more
            angles, pose, _ = solve(model, template, free, contacts + pushed, start=(angles, pose), iterations=15)
            miss = contact_miss(model, angles, pose, contacts)
        if miss > max_miss:
            continue
        angles = close_fingers(model, angles, pose, right_shape, curl)
        posed = model.pose(angles)
        inv = np.linalg.inv(pose)
        depth = penetration(model, posed, right_shape.points @ inv[:3, :3].T + inv[:3, 3])
        if depth > MAX_PENETRATION:
            continue
        if side == "left":
            return Grasp(kind, side, angles, MIRROR @ pose @ MIRROR, posed.mirrored(), miss, depth)
        return Grasp(kind, side, angles, pose, posed, miss, depth)
    return None


def free_hand(model: HandModel, kind: str, side: str, rng: np.random.Generator) -> Grasp:
    """A hand holding no instrument: `pinch` (thumb and index tips together) or `rest` (relaxed). Its
    `hand_in_tool` is the identity: the caller places it."""
    if kind == "pinch":
        template = _jitter(rng, PINCH, 6.0)
        t_bone, t_point = tip(model, "thumb")
        i_bone, i_point = pad(model, "index", 0.8)
        free = THUMB + _finger("index")
        idx = np.array([ANGLES.index(a) for a in free])

        def gap(x: np.ndarray) -> np.ndarray:
            a = template.copy()
            a[idx] = x
            t = model.transforms(a)
            miss = carried(model, t, t_bone, t_point) - carried(model, t, i_bone, i_point)
            return np.concatenate([miss, 0.002 * (x - template[idx]) / 10.0])

        fit = least_squares(gap, template[idx], bounds=(LOWER[idx], UPPER[idx]), max_nfev=60)
        angles = template.copy()
        angles[idx] = fit.x
    else:
        angles = _jitter(rng, REST, 8.0)
    posed = model.pose(angles)
    return Grasp(kind, side, angles, np.eye(4), posed.mirrored() if side == "left" else posed, 0.0, 0.0)
