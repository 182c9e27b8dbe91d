"""Generator settings shared by the parent process and the render workers, and the frame/chunk layout.

Frames are grouped into fixed chunks of `chunk_size` consecutive indices; a chunk is one Blender scene
seeded by (seed, chunk), so the annotations depend only on the seed, never on workers or shards.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from data_generation.scene import SceneRanges
from surgpose.camera import DEFAULT_INTRINSICS, Intrinsics, load_intrinsics

#: How renders are developed into sRGB, part of a dataset's identity so that a resumed folder never mixes
#: frames developed two ways: "Standard", like a camera (BlenderProc's default Filmic turned navy gloves
#: lavender and rolled off the highlights of steel), 1.5 stops down because the lights were set for Filmic's
#: roll-off (at -1.5 EV the median foreground grey is what it was: 211 vs 222 of 255).
FILM = {"view_transform": "Standard", "exposure_ev": -1.5}

#: Parametric instruments in a chunk's pool (two of each class): a frame shows at most this many.
PARAMETRIC_TOOLS = 4

#: Settings that must match for a rerun to resume a folder: the frame layout and each frame's look and labels.
#: `debug` (extra overlays) may change; `amodal` is applied when the datasets are assembled, to all frames.
IDENTITY_KEYS = ("num_images", "seed", "val_fraction", "chunk_size", "full_scene", "tools_dir", "hands_dir",
                 "backgrounds_dir", "hdri_dir", "samples", "denoise", "effects", "jpg_quality", "min_visible_px")


@dataclass
class GeneratorSettings:
    out: str
    num_images: int = 1000
    seed: int = 0
    val_fraction: float = 0.1
    width: int | None = None           # None: the camera file's size
    height: int | None = None
    camera: str | None = None          # camera.json; None: DEFAULT_INTRINSICS
    samples: int = 4
    denoise: bool = False
    chunk_size: int = 10
    full_scene: bool = False
    amodal: bool = False
    effects: bool = True
    debug: bool = False
    jpg_quality: int = 95
    min_visible_px: int = 40
    tools_dir: str | None = None
    hands_dir: str | None = None       # None: no hands
    backgrounds_dir: str | None = None
    hdri_dir: str | None = None
    ranges: SceneRanges = field(default_factory=SceneRanges)

    def intrinsics(self) -> Intrinsics:
        intr = load_intrinsics(self.camera) if self.camera else DEFAULT_INTRINSICS
        if self.width or self.height:
            w = self.width or round(intr.width * self.height / intr.height)
            h = self.height or round(intr.height * self.width / intr.width)
            intr = intr.resized(w, h)
        return intr

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "GeneratorSettings":
        ranges = SceneRanges(**{k: tuple(v) if isinstance(v, list) else v for k, v in data["ranges"].items()})
        return cls(**{**data, "ranges": ranges})

    def dataset_identity(self) -> dict:
        """What must match for a rerun to resume an existing output folder: the frame layout and everything
        that shapes a frame's pixels or labels (`IDENTITY_KEYS`, the scene ranges, the camera and the film)."""
        ident = {k: getattr(self, k) for k in IDENTITY_KEYS}
        ident["intrinsics"] = self.intrinsics().to_json()
        ident["ranges"] = ranges_json(self.ranges)
        ident["film"] = FILM
        ident["inputs"] = {k: folder_digest(getattr(self, k)) for k in INPUT_FOLDERS if getattr(self, k)}
        return ident


#: Input folders whose contents, not only their names, are part of a dataset's identity.
INPUT_FOLDERS = ("tools_dir", "hands_dir", "backgrounds_dir", "hdri_dir")


def folder_digest(folder: str) -> str:
    """A short fingerprint of what a folder holds: every file's name and size, and the bytes of its meshes and
    sidecars, so that a resumed folder never mixes frames of two versions of its hands or tools."""
    digest = hashlib.sha1()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder)}:{path.stat().st_size};".encode())
        if path.suffix.lower() in (".obj", ".json"):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def ranges_json(ranges: SceneRanges) -> dict:
    """Scene ranges as they read back from JSON (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(ranges)))


def frame_stem(index: int) -> str:
    return f"{index:06d}"


def num_chunks(settings: GeneratorSettings) -> int:
    return -(-settings.num_images // settings.chunk_size)


def chunk_frames(chunk: int, settings: GeneratorSettings) -> range:
    return range(chunk * settings.chunk_size, min((chunk + 1) * settings.chunk_size, settings.num_images))


def frame_done(out: Path, index: int) -> bool:
    """A frame is complete once its record exists (it is written last, atomically) and its training image is
    still there (in either split: assembling the datasets may move it); else it is rendered again."""
    from surgpose.schema import Layout

    stem = frame_stem(index)
    return (Path(out) / Layout.KEYPOINTS / f"{stem}.json").is_file() and any(
        (Path(out) / Layout.COMPOSITED / split / f"{stem}.jpg").is_file() for split in Layout.SPLITS)
