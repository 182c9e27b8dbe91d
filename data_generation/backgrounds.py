"""Backgrounds for compositing: procedural surgical-field textures, or random crops of real photos.

The renderer draws instruments and gloved hands on a transparent film; what lies behind them decides
what the pose model learns to ignore. The procedural textures (skin, tissue, drapes, practice pads,
gauze, blood, threads and tubes) imitate a top-down view of an operating field or a suturing bench,
are made offline from the caller's random generator (same state, same image) and cost a few tens of
milliseconds each: smooth structure is built at quarter resolution, fine detail from cheap
broadcasting, and strokes are drawn with OpenCV.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from surgpose.video_io import IMAGE_SUFFIXES

BACKGROUND_KINDS: tuple[str, ...] = ("skin", "tissue", "drape_blue", "drape_green", "suture_pad", "gauze")

BLOOD_PROBABILITY = 0.3  # share of procedural backgrounds that get blood stains

# Colours are BGR in 0..1 (float textures are converted to uint8 once, at the end).
_SKIN_LIGHT = np.array([0.70, 0.79, 0.95], np.float32)
_SKIN_DARK = np.array([0.17, 0.26, 0.42], np.float32)
_IODINE = np.array([0.50, 0.70, 0.95], np.float32)  # povidone-iodine prep: orange-brown
_CHLORHEXIDINE = np.array([0.88, 0.80, 1.0], np.float32)  # tinted chlorhexidine prep: pink
_DRAPE_PALETTES = {
    "drape_blue": (np.array([0.38, 0.18, 0.06], np.float32), np.array([0.80, 0.62, 0.40], np.float32)),
    "drape_green": (np.array([0.28, 0.40, 0.17], np.float32), np.array([0.72, 0.74, 0.55], np.float32)),
}
_PAD_COLOURS = np.array([[0.78, 0.86, 0.93], [0.80, 0.79, 0.96], [0.62, 0.73, 0.90], [0.90, 0.92, 0.93]],
                        np.float32)  # cream, pink, tan, white
_THREAD_COLOURS = np.array([[0.07, 0.07, 0.08], [0.55, 0.25, 0.08], [0.45, 0.15, 0.38], [0.15, 0.35, 0.10]],
                           np.float32)  # nylon black, prolene blue, vicryl violet, green
_TUBE_COLOURS = np.array([[0.75, 0.42, 0.12], [0.86, 0.86, 0.84], [0.55, 0.62, 0.35]], np.float32)
_STRIP_COLOURS = np.array([[0.55, 0.45, 0.98], [0.20, 0.45, 0.98], [0.92, 0.92, 0.92], [0.45, 0.65, 0.90]],
                          np.float32)  # rubber practice strips: pink, orange, white, tan


# ----------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------

def procedural_background(width: int, height: int, rng: np.random.Generator, kind: str | None = None) -> np.ndarray:
    """A BGR uint8 background of one `kind` (see BACKGROUND_KINDS) filling the frame, or, for None, a
    random kind or a mixed layout: a drape with a window onto skin, tissue or a pad, or a suturing bench.

    Some images get blood stains. Deterministic for a given generator state.
    """
    if kind is not None and kind not in BACKGROUND_KINDS:
        raise ValueError(f"unknown background kind {kind!r}; expected one of {', '.join(BACKGROUND_KINDS)}")
    if width < 1 or height < 1:
        raise ValueError(f"background size must be positive, got {width}x{height}")
    if kind is None:
        make = (_single, _surgical_field, _suture_bench)[rng.choice(3, p=[0.4, 0.4, 0.2])]
        image = make(height, width, rng)
    else:
        image = _TEXTURES[kind](height, width, rng)
    if rng.random() < BLOOD_PROBABILITY:
        _bleed(image, rng, float(rng.uniform(0.1, 1.0)))
    return _to_uint8(image)


def add_blood(image: np.ndarray, rng: np.random.Generator, amount: float = 0.5) -> np.ndarray:
    """A copy of a BGR uint8 image with blood pools, smears and drops; `amount` 0 (none) .. 1 (heavy).

    Blood is applied as a coloured absorber (it darkens blue and green far more than red), so thin
    films look bright red on gauze and dark on blue drapes, as in real footage.
    """
    out = image.astype(np.float32) * (1 / 255)
    _bleed(out, rng, amount)
    return _to_uint8(out)


def media_files(directory: str | os.PathLike, suffixes: tuple[str, ...], recursive: bool) -> list[Path]:
    """Files of `directory` with one of `suffixes`, sorted, without hidden ones (macOS leaves `._x.jpg`
    beside copies)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"folder not found: {directory}")
    found = directory.rglob("*") if recursive else directory.iterdir()
    return sorted(p for p in found if p.suffix.lower() in suffixes and not p.name.startswith(".") and p.is_file())


#: First bytes of the light-probe formats --hdri takes (OpenCV may be built without EXR support).
HDRI_MAGIC = {".hdr": b"#?", ".exr": b"\x76\x2f\x31\x01"}


def unreadable(paths: list[Path]) -> list[Path]:
    """Files whose first bytes are not those of their image type, found before rendering instead of by the
    worker that happens to draw one."""
    def readable(path: Path) -> bool:
        if path.suffix.lower() in HDRI_MAGIC:
            with path.open("rb") as f:
                return f.read(4).startswith(HDRI_MAGIC[path.suffix.lower()])
        return cv2.haveImageReader(str(path))
    return [p for p in paths if not readable(p)]


def list_backgrounds(directory: str | os.PathLike) -> list[Path]:
    """Image files under `directory` (recursively, sorted), so a run fails early on an empty folder."""
    paths = media_files(directory, IMAGE_SUFFIXES, recursive=True)
    if not paths:
        raise ValueError(f"no images in {Path(directory)}")
    return paths


def list_hdris(directory: str | os.PathLike) -> list[Path]:
    """The `.hdr`/`.exr` maps in `directory`, sorted; a run fails early on a folder without any."""
    paths = media_files(directory, (".hdr", ".exr"), recursive=False)
    if not paths:
        raise ValueError(f"--hdri {Path(directory)}: no .hdr or .exr files in that folder")
    return paths


def load_background(path: str | os.PathLike, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop of a photo with the target aspect ratio (60-100 % of the largest one), randomly
    flipped and resized to cover exactly `width` x `height`: one photo yields many backgrounds."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read background image {path}")
    h, w = image.shape[:2]
    crop_w = min(w, h * width / height) * rng.uniform(0.6, 1.0)
    crop_h = crop_w * height / width
    x0, y0 = rng.uniform(0, w - crop_w), rng.uniform(0, h - crop_h)
    crop = image[int(y0):int(y0) + max(1, round(crop_h)), int(x0):int(x0) + max(1, round(crop_w))]
    if rng.random() < 0.5:
        crop = cv2.flip(crop, 1)
    if rng.random() < 0.5:
        crop = cv2.flip(crop, 0)
    shrink = crop.shape[1] > width
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


# ----------------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------------

def _noise(shape: tuple[int, int], rng: np.random.Generator, cell: float, octaves: int = 1) -> np.ndarray:
    """Zero-mean, unit-std value noise with features about `cell` px wide (each octave half as wide,
    half as strong): random grids upsampled with bicubic interpolation."""
    h, w = shape
    out = np.zeros(shape, np.float32)
    amp = 1.0
    for _ in range(octaves):
        grid = rng.standard_normal((max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)), dtype=np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        cell, amp = cell / 2, amp / 2
    sample = out[::4, ::4] if out.size > 4096 else out  # statistics from a subsample: as good, far cheaper
    out -= sample.mean()
    out *= 1 / (sample.std() + 1e-6)
    return out


def _smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) * (1 / (hi - lo)), 0, 1)
    return t * t * (3 - 2 * t)


def _low(h: int, w: int) -> tuple[int, int]:
    """Quarter-resolution shape for smooth structure (colour fields, folds, stains)."""
    return max(2, h // 4), max(2, w // 4)


def _up(field: np.ndarray, h: int, w: int) -> np.ndarray:
    return cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates as broadcastable column (y) and row (x) vectors."""
    return np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return cv2.multiply(image, 255.0, dtype=cv2.CV_8U)  # rounds and saturates


def _jitter(rng: np.random.Generator, amount: float) -> np.ndarray:
    """Per-channel float32 gains around 1: no two drapes or skins quite the same colour."""
    return rng.uniform(1 - amount, 1 + amount, 3).astype(np.float32)


def _random_colour(rng: np.random.Generator, palette: np.ndarray, jitter: float = 0.04) -> np.ndarray:
    return palette[rng.integers(len(palette))] * _jitter(rng, jitter)


def _fold_shading(shape: tuple[int, int], rng: np.random.Generator, folds: int, width: float,
                  strength: float) -> np.ndarray:
    """Multiplicative shading (around 1) of cloth lying in soft folds, lit from a random side.

    A height field of wavy ridges and valleys plus gentle undulation; its slope towards the light
    brightens, its slope away darkens, and raised parts catch a little more light."""
    h, w = shape
    y, x = _grid(h, w)
    height = 0.5 * _noise(shape, rng, max(h, w) / 3, 2) + 0.05 * _noise(shape, rng, 1.5 * width, 2)
    warp = width * _noise(shape, rng, max(h, w) / 3)
    for _ in range(folds):
        a = rng.uniform(0, np.pi)
        px, py = rng.uniform(0, w), rng.uniform(0, h)
        d = (x - px) * -np.sin(a) + (y - py) * np.cos(a) + warp
        wide = width * rng.uniform(0.5, 1.5)
        height += rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.5) * np.exp(-np.square(d * (1 / wide)))
    light = rng.uniform(0, 2 * np.pi)
    slope = (cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3) * np.cos(light)
             + cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3) * np.sin(light)) * (width / 8)
    return np.clip(1 + strength * (slope + 0.3 * height), 0.45, 1.45)


def _curve(rng: np.random.Generator, h: int, w: int, length: float, bend: float, step: float = 6.0) -> np.ndarray:
    """(N, 2) float points of a smooth random walk: incisions, threads, tubes, vessels."""
    n = max(2, int(length / step))
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, bend, n))
    steps = step * np.stack([np.cos(heading), np.sin(heading)], 1)
    return (rng.uniform([0, 0], [w, h]) + np.cumsum(steps, 0) - steps[0]).astype(np.float32)


def _fixed(points: np.ndarray) -> np.ndarray:
    """Points in OpenCV's 4-bit fixed point (shift=4), for sub-pixel anti-aliased drawing."""
    return np.round(np.asarray(points) * 16).astype(np.int32)


def _polyline(mask: np.ndarray, points: np.ndarray, thickness: float) -> None:
    cv2.polylines(mask, [_fixed(points)], False, 255, max(1, round(thickness)), cv2.LINE_AA, shift=4)


def _polygon(mask: np.ndarray, points: np.ndarray) -> None:
    """A filled anti-aliased polygon with sub-pixel corners."""
    cv2.fillPoly(mask, [_fixed(points)], 255, cv2.LINE_AA, shift=4)


def _discs(mask: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> None:
    """Filled anti-aliased discs with sub-pixel centres and radii."""
    for (x, y), r in zip(_fixed(centres), _fixed(radii)):
        cv2.circle(mask, (int(x), int(y)), int(r), 255, -1, cv2.LINE_AA, shift=4)


def _ink(image: np.ndarray, colour: np.ndarray, draw: Callable[[np.ndarray], None], opacity: float = 1.0,
         blur: float = 0.0) -> None:
    """Paint `colour` over `image` (in place) where `draw` marks a uint8 mask with 255.

    OpenCV anti-aliases only 8-bit drawing, so strokes go through a mask; only their bounding box is
    blurred and blended, which keeps many small strokes cheap."""
    mask = np.zeros(image.shape[:2], np.uint8)
    draw(mask)
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0:
        return
    pad = int(3 * blur) + 1 if blur > 0 else 0
    x0, y0 = max(x - pad, 0), max(y - pad, 0)
    x1, y1 = min(x + w + pad, image.shape[1]), min(y + h + pad, image.shape[0])
    cover = mask[y0:y1, x0:x1]
    if blur > 0:
        cover = cv2.GaussianBlur(cover, (0, 0), blur)
    roi = image[y0:y1, x0:x1]
    roi += (np.asarray(colour, np.float32) - roi) * (cover[..., None].astype(np.float32) * (opacity / 255))


def _shadow(mask: np.ndarray, strength: float, blur: float, offset: tuple[float, float] = (3.0, 4.0)) -> np.ndarray:
    """HxWx1 multiplicative shading: the soft shadow a layer covering `mask` (uint8) throws slightly
    down and to the right onto what lies beneath it."""
    h, w = mask.shape
    shifted = cv2.warpAffine(mask, np.float32([[1, 0, offset[0]], [0, 1, offset[1]]]), (w, h),
                             borderMode=cv2.BORDER_REPLICATE)
    return 1 - (strength / 255) * cv2.GaussianBlur(shifted, (0, 0), blur)[..., None].astype(np.float32)


def _lay_polygon(canvas: np.ndarray, polygon: np.ndarray, texture: Callable, rng: np.random.Generator,
                 shadow: float = 0.35, blur: float = 5.0, hole: bool = False) -> None:
    """Put a `texture(h, w, rng)` piece cut to `polygon` (canvas px) into `canvas`, building it only
    over the polygon's bounding box. The piece lies on the canvas and shadows it, or, with `hole`,
    lies beneath it, seen through a hole whose edge shadows the piece (a drape's window)."""
    H, W = canvas.shape[:2]
    margin = 0 if hole else int(3 * blur) + 6
    x0, y0 = np.maximum(np.floor(polygon.min(0)).astype(int) - margin, 0)
    x1, y1 = np.minimum(np.ceil(polygon.max(0)).astype(int) + margin, [W, H])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    _polygon(mask, polygon - [x0, y0])
    roi, piece = canvas[y0:y1, x0:x1], texture(y1 - y0, x1 - x0, rng)
    if hole:
        piece *= _shadow(255 - mask, shadow, blur)
    else:
        roi *= _shadow(mask, shadow, blur)
    piece -= roi
    piece *= mask[..., None].astype(np.float32) * (1 / 255)
    roi += piece


def _blob(rng: np.random.Generator, centre: np.ndarray, half: np.ndarray, angle: float, squareness: float,
          wobble: float) -> np.ndarray:
    """(N, 2) outline of a rotated superellipse (squareness 2 = ellipse, higher = rounded rectangle)
    with a wavy edge: drape windows, gauze pads."""
    t = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    pts = np.stack([np.sign(c) * np.abs(c) ** (2 / squareness), np.sign(s) * np.abs(s) ** (2 / squareness)], 1)
    k = np.arange(2, 7)
    radial = 1 + wobble * (rng.normal(0, 1, 5) / k) @ np.cos(np.outer(k, t) + rng.uniform(0, 2 * np.pi, (5, 1)))
    pts = pts * half * radial[:, None]
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return (pts @ rot.T + centre).astype(np.float32)


def _stitches(image: np.ndarray, rng: np.random.Generator, path: np.ndarray, bite: float) -> None:
    """Interrupted sutures across a cut: a stitch every few millimetres, a knot and two tails each."""
    tangent = np.gradient(path, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1) / (np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-6)
    every = int(rng.integers(4, 9))
    strokes = []
    for p, n in zip(path[every // 2::every], normal[every // 2::every]):
        side = rng.choice([-1.0, 1.0])
        knot = p + side * bite * n
        strokes.append([p - side * bite * n, knot])
        for a in rng.uniform(0, 2 * np.pi, 2):
            strokes.append([knot, knot + rng.uniform(4, 12) * np.array([np.cos(a), np.sin(a)])])
    if not strokes:
        return
    thickness = int(rng.integers(1, 3))
    _ink(image, _random_colour(rng, _THREAD_COLOURS),
         lambda m: cv2.polylines(m, list(_fixed(strokes)), False, 255, thickness, cv2.LINE_AA, shift=4))


def _incision(image: np.ndarray, rng: np.random.Generator, path: np.ndarray, width: float, rim: np.ndarray,
              core: np.ndarray, stitched: bool) -> None:
    """A cut along `path`: a soft coloured rim, a dark core, and often sutures across it."""
    _ink(image, rim, lambda m: _polyline(m, path, 3 * width), opacity=0.45, blur=width)
    _ink(image, core, lambda m: _polyline(m, path, width), opacity=0.9, blur=0.6)
    if stitched:
        _stitches(image, rng, path, bite=width + rng.uniform(5, 12))


def _thread(image: np.ndarray, rng: np.random.Generator) -> None:
    """A loose suture thread lying in loops: a thin dark distractor."""
    h, w = image.shape[:2]
    path = _curve(rng, h, w, rng.uniform(0.4, 1.2) * max(h, w), bend=rng.uniform(0.05, 0.2))
    _ink(image, _random_colour(rng, _THREAD_COLOURS), lambda m: _polyline(m, path, 1), opacity=0.85)


def _tube(image: np.ndarray, rng: np.random.Generator) -> None:
    """A suction tube or cable: a long shaded band with a shadow and a specular line."""
    h, w = image.shape[:2]
    path = _curve(rng, h, w, rng.uniform(0.5, 1.5) * max(h, w), bend=rng.uniform(0.02, 0.08), step=10)
    width = rng.uniform(4, 12)
    colour = _random_colour(rng, _TUBE_COLOURS)
    _ink(image, np.zeros(3, np.float32), lambda m: _polyline(m, path + [3, 4], width), opacity=0.35, blur=3)
    _ink(image, colour, lambda m: _polyline(m, path, width), opacity=rng.uniform(0.6, 0.95))
    _ink(image, np.ones(3, np.float32), lambda m: _polyline(m, path - width / 5, max(1, width / 5)),
         opacity=0.6, blur=0.7)


# ----------------------------------------------------------------------------------------------------
# Textures: each (h, w, rng) -> float32 BGR HxWx3 in about 0..1
# ----------------------------------------------------------------------------------------------------

def _skin(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Skin of a random tone with blotchy redness, pores, fine creases, sometimes hair, a prep stain
    and an incision."""
    low = _low(h, w)
    tone = (_SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * np.float32(rng.beta(1.3, 2.2))) * _jitter(rng, 0.04)
    redness = _smoothstep(0.0, 2.0, _noise(low, rng, 12, 2))[..., None] * np.float32([-0.10, -0.07, 0.0])
    colour = tone * (1 + redness) * (1 + 0.04 * _noise(low, rng, 30))[..., None]
    if rng.random() < 0.4:
        stain = _smoothstep(-1.0, 1.0, _noise(low, rng, 40, 2))[..., None] * rng.uniform(0.3, 0.8)
        colour *= 1 + stain * ((_IODINE if rng.random() < 0.6 else _CHLORHEXIDINE) - 1)
    grain = rng.standard_normal((h, w), dtype=np.float32)
    detail = 1 + 0.03 * _noise((h, w), rng, 8, 2) + 0.02 * grain
    detail -= 0.2 * cv2.GaussianBlur((grain > 2.6).astype(np.float32), (3, 3), 0.7)  # pores
    y, x = _grid(h, w)
    a = rng.uniform(0, np.pi)
    across = x * np.cos(a) + y * np.sin(a) + 3 * _up(_noise(low, rng, 10), h, w)
    lines = np.maximum(np.cos(across * (2 * np.pi / rng.uniform(7, 16))) - 0.8, 0)  # skin creases, in patches
    detail -= lines * _up(0.2 * _smoothstep(0.0, 1.5, _noise(low, rng, 15)), h, w)
    image = _up(colour, h, w) * detail[..., None]
    if rng.random() < 0.4:
        _hair(image, rng, a)
    if rng.random() < 0.35:
        path = _curve(rng, h, w, rng.uniform(0.3, 0.8) * max(h, w), bend=0.03)
        _incision(image, rng, path, rng.uniform(2, 5), rim=np.float32([0.25, 0.25, 0.72]),
                  core=np.float32([0.06, 0.05, 0.30]), stitched=rng.random() < 0.7)
    return image


def _hair(image: np.ndarray, rng: np.random.Generator, angle: float) -> None:
    """Short dark hairs combed roughly one way (legs, forearms)."""
    h, w = image.shape[:2]
    n = int(rng.integers(100, 600) * h * w / (960 * 544))
    start = rng.uniform([0, 0], [w, h], (n, 2))
    heading = angle + rng.normal(0, 0.35, n)
    end = start + rng.uniform(6, 18, (n, 1)) * np.stack([np.cos(heading), np.sin(heading)], 1)
    segments = list(_fixed(np.stack([start, end], 1)))
    _ink(image, np.float32([0.08, 0.10, 0.13]),
         lambda m: cv2.polylines(m, segments, False, 255, 1, cv2.LINE_AA, shift=4), opacity=rng.uniform(0.2, 0.45))


def _tissue(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Exposed tissue: dark-red to pink muscle with striations, fat lobules, vessels and the small
    specular glints of a wet surface."""
    low = _low(h, w)
    t = _smoothstep(-1.8, 1.8, _noise(low, rng, 20, 3))[..., None]
    colour = np.float32([0.09, 0.09, 0.36]) + np.float32([0.22, 0.24, 0.36]) * t
    colour *= _jitter(rng, 0.15)
    if rng.random() < 0.5:
        fat = _smoothstep(0.8, 2.0, _noise(low, rng, 14, 3))[..., None] * rng.uniform(0.4, 0.8)
        colour += (np.float32([0.42, 0.60, 0.78]) - colour) * fat
    y, x = _grid(h, w)
    a = rng.uniform(0, np.pi)
    across = x * np.cos(a) + y * np.sin(a) + 12 * _up(_noise(low, rng, 15), h, w)
    detail = 1 + 0.05 * np.cos(across * (2 * np.pi / rng.uniform(4, 9))) + 0.06 * _noise((h, w), rng, 3, 2)
    image = _up(colour, h, w) * detail[..., None]
    for _ in range(rng.integers(0, 5)):
        path = _curve(rng, h, w, rng.uniform(60, 300), bend=0.25, step=4)
        _ink(image, np.float32([0.10, 0.06, 0.32]), lambda m: _polyline(m, path, rng.uniform(1, 3)),
             opacity=0.6, blur=0.8)
    wet = _up(_smoothstep(-0.5, 1.0, _noise(low, rng, 25)), h, w)
    glints = _smoothstep(2.0, 3.0, _noise((h, w), rng, 2.5)) * wet
    image += (0.9 * cv2.GaussianBlur(glints, (3, 3), 0.8))[..., None]
    return image


def _drape(h: int, w: int, rng: np.random.Generator, palette: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Surgical drape: woven or non-woven fabric in soft folds, sometimes with an embossed dot pattern
    and the straight creases of its packaging."""
    low = _low(h, w)
    base = (palette[0] + (palette[1] - palette[0]) * np.float32(rng.random())) * _jitter(rng, 0.03)
    shade = _fold_shading(low, rng, int(rng.integers(1, 8)), rng.uniform(3, 12), rng.uniform(0.15, 0.4))
    colour = base * (shade * (1 + 0.02 * _noise(low, rng, 25)))[..., None]
    y, x = _grid(h, w)
    period = rng.uniform(2.2, 3.6)
    detail = (1 + rng.uniform(0.01, 0.04) * (np.cos(x * (2 * np.pi / period)) * np.cos(y * (2 * np.pi / period)))
              + 0.025 * rng.standard_normal((h, 1), dtype=np.float32)  # threads along rows
              + 0.025 * rng.standard_normal((1, w), dtype=np.float32)  # and columns
              + 0.02 * _noise((h, w), rng, 1.5))
    if rng.random() < 0.25:  # embossed dots of non-woven paper drapes
        spacing = rng.uniform(7, 14)
        dots = np.cos(x * (2 * np.pi / spacing)) * np.cos(y * (2 * np.pi / spacing))
        detail -= 0.07 * _smoothstep(0.75, 0.95, dots)
    image = _up(colour, h, w) * detail[..., None]
    for _ in range(rng.integers(0, 3) if rng.random() < 0.5 else 0):
        vertical = rng.random() < 0.5
        at = rng.uniform(0.15, 0.85) * (w if vertical else h)
        line = np.float32([[at, 0], [at, h]]) if vertical else np.float32([[0, at], [w, at]])
        _ink(image, base * 0.6, lambda m: _polyline(m, line, 1), opacity=0.35, blur=0.8)
        _ink(image, np.minimum(base * 1.3, 1), lambda m: _polyline(m, line + 2, 2), opacity=0.3, blur=1.5)
    return image


def _suture_pad(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Silicone suturing practice pad: smooth matte cream or pink with a soft sheen, cuts (some
    sutured) and sometimes a marker line."""
    low = _low(h, w)
    base = _random_colour(rng, _PAD_COLOURS)
    sheen = 0.06 * _smoothstep(0.5, 2.5, _noise(low, rng, 80))
    colour = base * (1 + 0.015 * _noise(low, rng, 30, 2) + sheen)[..., None]
    detail = 1 + 0.015 * _noise((h, w), rng, 4) + 0.012 * _noise((h, w), rng, 1.2)
    image = _up(colour, h, w) * detail[..., None]
    rim = base * np.float32([0.70, 0.70, 0.95])
    for _ in range(rng.integers(1, 5)):
        path = _curve(rng, h, w, rng.uniform(0.15, 0.5) * max(h, w), bend=0.02)
        _incision(image, rng, path, rng.uniform(1, 2.5), rim=rim, core=np.float32([0.22, 0.20, 0.42]),
                  stitched=rng.random() < 0.6)
    if rng.random() < 0.3:
        line = _curve(rng, h, w, rng.uniform(0.2, 0.5) * max(h, w), bend=0.0)
        ink = np.float32([[0.15, 0.15, 0.70], [0.60, 0.25, 0.10], [0.1, 0.1, 0.1]])[rng.integers(3)]
        _ink(image, ink, lambda m: _polyline(m, line, 2), opacity=0.8)
    return image


def _gauze(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Gauze: an open white cross-weave, slightly irregular, over darker layers, in soft folds."""
    low = _low(h, w)
    shade = _fold_shading(low, rng, int(rng.integers(2, 8)), rng.uniform(3, 8), rng.uniform(0.15, 0.35))
    colour = np.float32(rng.uniform(0.86, 0.95)) * _jitter(rng, 0.025) * shade[..., None]
    y, x = _grid(h, w)
    a = rng.uniform(0, np.pi)
    period = rng.uniform(4, 9)
    warp = (0.3 * period) * _up(_noise(low, rng, 8), h, w)
    u = (x * np.cos(a) + y * np.sin(a) + warp) * (np.pi / period)
    v = (y * np.cos(a) - x * np.sin(a) - warp) * (np.pi / period)
    threads = np.maximum(np.abs(np.cos(u)), np.abs(np.cos(v))) ** 3
    hole = rng.uniform(0.6, 0.8)
    detail = hole + (1 - hole) * threads + 0.04 * _noise((h, w), rng, 1.5)
    return _up(colour, h, w) * detail[..., None]


_TEXTURES: dict[str, Callable[[int, int, np.random.Generator], np.ndarray]] = {
    "skin": _skin,
    "tissue": _tissue,
    "drape_blue": lambda h, w, rng: _drape(h, w, rng, _DRAPE_PALETTES["drape_blue"]),
    "drape_green": lambda h, w, rng: _drape(h, w, rng, _DRAPE_PALETTES["drape_green"]),
    "suture_pad": _suture_pad,
    "gauze": _gauze,
}


# ----------------------------------------------------------------------------------------------------
# Layouts
# ----------------------------------------------------------------------------------------------------

def _single(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """One texture filling the frame, sometimes with a thread or a tube across it."""
    image = _TEXTURES[BACKGROUND_KINDS[rng.integers(len(BACKGROUND_KINDS))]](h, w, rng)
    _clutter(image, rng)
    return image


def _surgical_field(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A fenestrated drape: skin, tissue or a pad seen through a window in a blue or green drape,
    with gauze pads and clutter lying on it."""
    kind = "drape_blue" if rng.random() < 0.65 else "drape_green"
    canvas = _TEXTURES[kind](h, w, rng)
    window = _blob(rng, rng.uniform([0.3 * w, 0.3 * h], [0.7 * w, 0.7 * h]),
                   rng.uniform([0.2 * w, 0.2 * h], [0.5 * w, 0.5 * h]), rng.uniform(-0.4, 0.4),
                   rng.uniform(2, 6), rng.uniform(0.02, 0.12))
    inner = ("skin", "skin", "tissue", "suture_pad")[rng.integers(4)]
    _lay_polygon(canvas, window, _TEXTURES[inner], rng, shadow=0.45, blur=10, hole=True)
    for _ in range(rng.integers(0, 3)):
        size = rng.uniform(60, 200, 2) * max(h, w) / 960
        _lay_polygon(canvas, _blob(rng, rng.uniform([0, 0], [w, h]), size, rng.uniform(0, np.pi), 8, 0.06),
                     _gauze, rng)
    _clutter(canvas, rng)
    return canvas


def _suture_bench(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A suturing practice bench from above: a paper drape on a pale table, and a practice pad pinned
    in its middle (as in open-suturing skill recordings)."""
    table = _up(np.float32(rng.uniform(0.72, 0.92)) * (1 + 0.04 * _noise(_low(h, w), rng, 60, 2)), h, w)
    canvas = table[..., None] * _jitter(rng, 0.03)
    angle = rng.uniform(-0.1, 0.1)
    centre = rng.uniform([0.4 * w, 0.4 * h], [0.6 * w, 0.6 * h])
    drape = _blob(rng, centre, rng.uniform([0.3 * w, 0.4 * h], [0.5 * w, 0.6 * h]), angle, 40, 0.0)
    kind = "drape_green" if rng.random() < 0.7 else "drape_blue"
    _lay_polygon(canvas, drape, _TEXTURES[kind], rng, shadow=0.25, blur=6)
    half = rng.uniform([0.08 * w, 0.12 * h], [0.16 * w, 0.22 * h])
    angle += rng.normal(0, 0.03)
    pad = _blob(rng, centre + rng.normal(0, 0.03 * w, 2), half, angle, 40, 0.0)
    _lay_polygon(canvas, pad, _suture_pad, rng, shadow=0.3, blur=3)
    if rng.random() < 0.7:  # pins at the pad's corners
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        corners = (np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * (half - 12)) @ rot.T + pad.mean(0)
        radius = rng.uniform(4, 8)
        _ink(canvas, np.zeros(3, np.float32), lambda m: _discs(m, corners, np.full(4, radius)))
        _ink(canvas, np.ones(3, np.float32), lambda m: _discs(m, corners - radius / 3, np.full(4, 1.5)), opacity=0.7)
    if rng.random() < 0.7:
        _clipped_strips(canvas, rng, pad.mean(0), half, angle)
    for _ in range(rng.integers(0, 3)):
        _thread(canvas, rng)
    return canvas


def _clipped_strips(image: np.ndarray, rng: np.random.Generator, centre: np.ndarray, half: np.ndarray,
                    angle: float) -> None:
    """Rubber strips lying on the pad (`centre`, `half` sizes, `angle`), each held down by a binder clip at both
    ends (as on `apas_dev`'s benches): black clips with silver wire handles, metal the model must not take for an
    instrument's rings."""
    scale = max(image.shape[:2]) / 960
    axes = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    for _ in range(rng.integers(1, 5)):
        k = int(rng.integers(2))                     # the strip runs along the pad's length or across it
        axis, normal = axes[k], axes[1 - k]
        length = min(rng.uniform(110, 220) * scale, 1.7 * half[k])
        width = rng.uniform(22, 40) * scale
        middle = centre + rng.uniform(-1, 1) * max(half[k] - length / 2, 0) * axis \
            + rng.uniform(-0.8, 0.8) * max(half[1 - k] - width, 0) * normal
        ends = [middle - axis * length / 2, middle + axis * length / 2]
        strip = np.array([ends[0] + normal * width / 2, ends[1] + normal * width / 2,
                          ends[1] - normal * width / 2, ends[0] - normal * width / 2], np.float32)
        colour = _random_colour(rng, _STRIP_COLOURS)
        _lay_polygon(image, strip, lambda h, w, r: np.broadcast_to(colour, (h, w, 3)).copy(), rng, shadow=0.3,
                     blur=2)
        for end, outward in ((ends[0], -axis), (ends[1], axis)):
            _binder_clip(image, rng, end, outward, width * rng.uniform(1.1, 1.5))


def _binder_clip(image: np.ndarray, rng: np.random.Generator, centre: np.ndarray, outward: np.ndarray,
                 width: float) -> None:
    """A binder clip seen from above at `centre`, gripping toward -`outward`: a black body and two silver wire
    handles, each a U whose legs enter the body's sides and whose bend, narrower, lies out beyond the body or
    folded back over it."""
    normal = np.array([-outward[1], outward[0]])
    depth = width * rng.uniform(0.4, 0.6)
    body = np.array([centre + s * normal * width / 2 + t * outward * depth / 2
                     for s, t in ((-1, -1), (1, -1), (1, 1), (-1, 1))], np.float32)
    shadow = body + np.float32([3, 4]) * width / 40
    _ink(image, np.zeros(3, np.float32), lambda m: _polygon(m, shadow), opacity=0.4, blur=2)
    black = np.float32(rng.uniform(0.03, 0.10)) * np.ones(3, np.float32)
    _ink(image, black, lambda m: _polygon(m, body))
    spine = np.array([body[2], body[3]])
    _ink(image, np.float32([0.45, 0.45, 0.45]), lambda m: _polyline(m, spine, max(1.0, width / 25)), opacity=0.7)
    wire = max(1.5, width / 18)
    base = centre + outward * depth / 2
    for folded in (False, rng.random() < 0.5):
        reach = width * rng.uniform(0.5, 0.9) * (-1.6 if folded else 1)
        u = np.array([base + normal * width * 0.42, base + normal * width * 0.3 + outward * reach,
                      base - normal * width * 0.3 + outward * reach, base - normal * width * 0.42])
        _ink(image, np.zeros(3, np.float32), lambda m: _polyline(m, u + wire, wire), opacity=0.35, blur=1)
        _ink(image, np.float32(rng.uniform(0.6, 0.85)) * np.ones(3, np.float32), lambda m: _polyline(m, u, wire))
        _ink(image, np.ones(3, np.float32), lambda m: _polyline(m, u - wire / 3, max(1.0, wire / 3)),
             opacity=0.7, blur=0.5)


def _clutter(image: np.ndarray, rng: np.random.Generator) -> None:
    """Long thin distractors the model must not take for instruments: tubes and loose threads."""
    for _ in range(rng.integers(0, 3) if rng.random() < 0.4 else 0):
        _tube(image, rng)
    for _ in range(rng.integers(0, 3) if rng.random() < 0.4 else 0):
        _thread(image, rng)


def _bleed(image: np.ndarray, rng: np.random.Generator, amount: float) -> None:
    """Blood pools, smears and drops on a float BGR image, in place (see add_blood)."""
    if amount <= 0:
        return
    h, w = image.shape[:2]
    scale = max(h, w) / 960
    marks = np.zeros((h, w), np.uint8)
    pools = rng.uniform([0, 0], [w, h], (1 + rng.poisson(2 * amount), 2))
    for (cx, cy), (ax, ay) in zip(_fixed(pools), _fixed(rng.uniform(12, 70, (len(pools), 2)) * (0.5 + amount) * scale)):
        cv2.ellipse(marks, (int(cx), int(cy)), (int(ax), int(ay)), rng.uniform(0, 360), 0, 360,
                    int(rng.integers(160, 256)), -1, cv2.LINE_AA, shift=4)
    for _ in range(rng.poisson(1.5 * amount)):
        _polyline(marks, _curve(rng, h, w, rng.uniform(40, 250) * scale, bend=0.1), rng.uniform(6, 25) * scale)
    soft = cv2.GaussianBlur(marks, (0, 0), 6 * scale).astype(np.float32) * (1 / 255)
    near = pools[rng.integers(len(pools), size=rng.poisson(4 + 20 * amount))]  # spatter around the pools
    spatter = np.concatenate([near + rng.normal(0, 50 * scale, near.shape),
                              rng.uniform([0, 0], [w, h], (rng.poisson(3 * amount), 2))])
    drops = np.zeros((h, w), np.uint8)
    _discs(drops, spatter, rng.uniform(1.2, 5, len(spatter)) * scale)
    density = drops.astype(np.float32) * (rng.uniform(1.0, 2.0) / 255)
    x, y, bw, bh = cv2.boundingRect((soft > 0.01).astype(np.uint8))
    if bw > 1 and bh > 1:
        box = soft[y:y + bh, x:x + bw]
        edge = box + 0.2 * _noise((bh, bw), rng, 16 * scale, 2) * _smoothstep(0.01, 0.3, box)
        film = 0.35 + box * (0.9 + 0.3 * _noise((bh, bw), rng, 20 * scale))
        density[y:y + bh, x:x + bw] += _smoothstep(0.3, 0.4, edge) * film
    x, y, bw, bh = cv2.boundingRect((density > 0.01).astype(np.uint8))
    if bw == 0:
        return
    box = density[y:y + bh, x:x + bw]
    absorb = np.float32([2.6, 3.0, rng.uniform(0.35, 0.8)])  # BGR: blood lets red through
    roi = image[y:y + bh, x:x + bw]
    roi *= np.exp(-box[..., None] * absorb)
    wet = _smoothstep(2.2, 3.0, _noise((bh, bw), rng, 2.5)) * _smoothstep(0.8, 1.6, box)
    roi += (0.6 * wet)[..., None]
