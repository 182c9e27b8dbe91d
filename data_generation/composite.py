"""2D compositing of transparent renders onto backgrounds under one consistent light, and camera effects.

Instruments and hands are rendered by Blender on a transparent film, lit by lights of a known colour.
Pasting them onto a background only looks real if the background is lit the same way: tinted by the
same light colour, exposed like the foreground, darkened by the foreground's shadow and, under an
operating lamp, falling off away from the spot. Camera effects come last so that foreground and
background share them.
"""
from __future__ import annotations

import cv2
import numpy as np

#: Display gamma: Blender's "Standard" view writes sRGB, close to linear ** (1 / 2.2).
GAMMA = 2.2
#: Foreground median grey (0..255) that leaves the background's exposure unchanged.
REFERENCE_GREY = 128.0


def kelvin_to_rgb(kelvin: float) -> np.ndarray:
    """Linear RGB (brightest channel 1) of black-body light at `kelvin` (about 1500-12000 K).

    Linear, because Blender takes light colours in linear RGB; `composite` converts it to the display
    tint of a white surface under that light, so renderer and compositor agree. RGB order.
    Tanner Helland's fit of the Planckian locus in sRGB, decoded to linear.
    """
    t = float(np.clip(kelvin, 1000.0, 40000.0)) / 100
    if t <= 66:
        r = 255.0
        g = 99.4708025861 * np.log(t) - 161.1195681661
        b = 0.0 if t <= 19 else 138.5177312231 * np.log(t - 10) - 305.0447927307
    else:
        r = 329.698727446 * (t - 60) ** -0.1332047592
        g = 288.1221695283 * (t - 60) ** -0.0755148492
        b = 255.0
    rgb = (np.clip([r, g, b], 0.0, 255.0) / 255.0) ** GAMMA
    return rgb / rgb.max()


def composite(render_bgra: np.ndarray, background: np.ndarray, rng: np.random.Generator,
              light_rgb: np.ndarray | None = None, shadow_offset: tuple[float, float] = (8, 12),
              shadow_strength: float = 0.45, shadow_blur: float = 9,
              spot_center: tuple[float, float] | None = None, spot_radius: float | None = None) -> np.ndarray:
    """Paste a transparent render onto a background lit like it; returns BGR uint8.

    render_bgra: HxWx4 uint8, straight (unpremultiplied) alpha, exactly as
        `cv2.imread(png, cv2.IMREAD_UNCHANGED)` returns Blender's RGBA PNG (i.e. BGRA order).
    background: HxWx3 uint8 BGR of the same size.
    light_rgb: linear RGB colour of the lights the render was lit with (`kelvin_to_rgb`); None = white.
    shadow_offset: (dx, dy) px from the foreground to its shadow (away from the main light);
    shadow_strength: darkening under a fully opaque, unblurred shadow (0 = no shadow);
    shadow_blur: Gaussian sigma of the shadow's softness, px.
    spot_center, spot_radius: an operating-lamp spot (px); the background falls off away from it.
        Either one turns it on (defaults: image centre, half the image diagonal).

    The background is tinted by the light colour and given an exposure that follows the brightness
    of the foreground (dim renders mean dim lights), with a little random jitter from `rng`. Where
    alpha is 255 the output is the render's colour; where it is 0, the lit, shadowed background.
    """
    if render_bgra.ndim != 3 or render_bgra.shape[2] != 4 or render_bgra.dtype != np.uint8:
        raise ValueError(f"render must be HxWx4 uint8 BGRA, got {render_bgra.shape} {render_bgra.dtype}")
    if background.shape != render_bgra.shape[:2] + (3,) or background.dtype != np.uint8:
        raise ValueError(f"background must be {render_bgra.shape[:2] + (3,)} uint8 BGR like the render, "
                         f"got {background.shape} {background.dtype}")
    h, w = background.shape[:2]
    alpha = render_bgra[..., 3]
    light = np.ones(3) if light_rgb is None else np.clip(np.asarray(light_rgb, np.float64), 0, None)
    tint = (light[::-1] ** (1 / GAMMA) * _exposure(render_bgra, rng)).astype(np.float32)  # BGR display gain
    shade = np.ones((h, w), np.float32)
    if shadow_strength > 0:
        shade = _shadow(alpha, shadow_offset, shadow_strength, shadow_blur)
    if spot_center is not None or spot_radius is not None:
        shade *= _spot(h, w, (w / 2, h / 2) if spot_center is None else spot_center,
                       np.hypot(w, h) / 2 if spot_radius is None else spot_radius)
    out = background.astype(np.float32)
    out *= shade[..., None]
    out *= tint
    fg = render_bgra[..., :3].astype(np.float32)
    fg -= out
    fg *= alpha[..., None].astype(np.float32) * (1 / 255)
    out += fg
    return cv2.multiply(out, 1.0, dtype=cv2.CV_8U)  # rounds and saturates


def camera_effects(image: np.ndarray, rng: np.random.Generator, motion_blur: float = 0.0, defocus: float = 0.0,
                   noise: float = 0.0, jpeg_quality: int | None = None) -> np.ndarray:
    """Camera degradations of a finished BGR uint8 composite, so foreground and background share them.

    motion_blur: length in px of a linear blur at a random angle; defocus: radius in px of a disk
    blur; noise: sensor noise sigma in intensity units at mid grey (shot noise grows with brightness
    over a read-noise floor); jpeg_quality: re-encode as JPEG. Zero / None turns an effect off; with
    all off the input is returned as is.
    """
    out = image
    if defocus > 0:
        out = cv2.filter2D(out, -1, _disk_kernel(defocus), borderType=cv2.BORDER_REFLECT)
    if motion_blur > 0:
        out = cv2.filter2D(out, -1, _line_kernel(motion_blur, rng.uniform(0, np.pi)), borderType=cv2.BORDER_REFLECT)
    if noise > 0:
        sigma = cv2.LUT(out, (noise * np.sqrt(0.3 + 0.7 * np.arange(256) / 128)).astype(np.float32))
        sigma *= rng.standard_normal(out.shape, dtype=np.float32)
        out = cv2.add(out, sigma, dtype=cv2.CV_8U)  # rounds and saturates
    if jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        if not ok:
            raise ValueError("JPEG encoding failed")
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


def _exposure(render_bgra: np.ndarray, rng: np.random.Generator) -> float:
    """Background gain that follows the foreground's brightness, half-way in log terms (square root),
    since albedos differ; clipped to a plausible range and jittered slightly."""
    solid = render_bgra[..., 3] > 127
    gain = 1.0
    if np.count_nonzero(solid) >= 64:
        grey = cv2.cvtColor(np.ascontiguousarray(render_bgra[..., :3]), cv2.COLOR_BGR2GRAY)
        gain = float(np.clip(np.sqrt(max(np.median(grey[solid]), 1.0) / REFERENCE_GREY), 0.7, 1.3))
    return gain * float(np.exp(rng.normal(0, 0.05)))


def _shadow(alpha: np.ndarray, offset: tuple[float, float], strength: float, blur: float) -> np.ndarray:
    """Multiplicative HxW shading of the foreground's soft shadow; blurred at half resolution, which
    is indistinguishable for a soft shadow and four times cheaper."""
    h, w = alpha.shape
    small = cv2.resize(alpha, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
    shift = np.float32([[1, 0, offset[0] / 2], [0, 1, offset[1] / 2]])
    small = cv2.warpAffine(small, shift, small.shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if blur > 0:
        small = cv2.GaussianBlur(small, (0, 0), blur / 2)
    cover = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return 1 - (strength / 255) * cover.astype(np.float32)


def _spot(h: int, w: int, center: tuple[float, float], radius: float, floor: float = 0.35) -> np.ndarray:
    """Operating-lamp falloff: 1 at the spot's centre, Gaussian down to `floor` far away (separable)."""
    gx = np.exp(-0.5 * ((np.arange(w, dtype=np.float32) - center[0]) / radius) ** 2)
    gy = np.exp(-0.5 * ((np.arange(h, dtype=np.float32) - center[1]) / radius) ** 2)
    return floor + (1 - floor) * np.outer(gy, gx).astype(np.float32)


def _disk_kernel(radius: float) -> np.ndarray:
    """Normalised anti-aliased disk: the blur of an out-of-focus lens."""
    c = int(np.ceil(radius))
    kernel = np.zeros((2 * c + 1, 2 * c + 1), np.uint8)
    cv2.circle(kernel, (c * 16, c * 16), max(1, round(radius * 16)), 255, -1, cv2.LINE_AA, shift=4)
    return kernel.astype(np.float32) / kernel.sum()


def _line_kernel(length: float, angle: float) -> np.ndarray:
    """Normalised anti-aliased line segment of `length` px through the centre: linear motion blur."""
    c = int(np.ceil(length / 2))
    kernel = np.zeros((2 * c + 1, 2 * c + 1), np.uint8)
    d = np.array([np.cos(angle), np.sin(angle)]) * length / 2
    p0, p1 = np.round((c - d) * 16).astype(int), np.round((c + d) * 16).astype(int)
    cv2.line(kernel, tuple(map(int, p0)), tuple(map(int, p1)), 255, 1, cv2.LINE_AA, shift=4)
    return kernel.astype(np.float32) / kernel.sum()


def white_balance(image: np.ndarray, light_rgb: np.ndarray, amount: float) -> np.ndarray:
    """Undo `amount` (0 none .. 1 full) of a light's colour cast, as a camera's auto white balance
    does: real operating-room footage is rarely as orange as a 2700 K lamp."""
    light = np.clip(np.asarray(light_rgb, np.float64), 1e-3, None)
    gain = (light[::-1] ** (-amount / GAMMA)).astype(np.float32)
    gain /= gain[1]  # like a camera, keep green and move red and blue
    return cv2.multiply(image.astype(np.float32), gain, dtype=cv2.CV_8U)


def despeckle(render_bgra: np.ndarray) -> np.ndarray:
    """3x3 median of a low-sample render's colour where it is fully opaque: removes Cycles' speckle in
    soft shadows for a few milliseconds (OpenImageDenoise costs ~0.7 s a frame); anti-aliased edges and
    thin instrument tips, which are partly transparent, stay as rendered."""
    out = render_bgra.copy()
    solid = render_bgra[..., 3] == 255
    out[solid, :3] = cv2.medianBlur(np.ascontiguousarray(render_bgra[..., :3]), 3)[solid]
    return out
