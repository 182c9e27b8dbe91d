"""Pinhole camera geometry in the OpenCV convention (x right, y down, z forward), and the conversion to
Blender's (x right, y up, looking down -z), so keypoints are projected exactly through the render camera."""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Widest field of view a camera file may give (across the image's width or height).
MAX_FOV_DEG = 160

#: OpenCV camera axes expressed in Blender camera axes (and back: the matrix is its own inverse).
CV_TO_BLENDER = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Intrinsics:
    """Image size and pinhole intrinsics in pixels."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], dtype=float)

    def resized(self, width: int, height: int) -> "Intrinsics":
        """The same camera at another resolution, pixels kept square: at another aspect ratio the view is
        cropped about its centre (scaling x and y apart would film every instrument stretched)."""
        scale = max(width / self.width, height / self.height)
        return Intrinsics(width, height, self.fx * scale, self.fy * scale,
                          self.cx * scale - (self.width * scale - width) / 2,
                          self.cy * scale - (self.height * scale - height) / 2)

    def to_json(self) -> dict:
        return {"width": self.width, "height": self.height, "fx": self.fx, "fy": self.fy,
                "cx": self.cx, "cy": self.cy}


#: Default camera: 960x544, about 60 degrees horizontal field of view, like a head-mounted or
#: overhead operating-room camera.
DEFAULT_INTRINSICS = Intrinsics(960, 544, 830.0, 830.0, 480.0, 272.0)


def load_intrinsics(path: str | os.PathLike) -> Intrinsics:
    """Read `{"width", "height", "fx", "fy", "cx", "cy"}` or `{"width", "height", "K": 3x3}`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        if "K" in data:
            K = np.asarray(data["K"], dtype=float)
            if K.shape != (3, 3):
                raise ValueError("K must be 3x3")
            data = {**data, "fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2]}
        intr = Intrinsics(int(data["width"]), int(data["height"]), float(data["fx"]), float(data["fy"]),
                          float(data["cx"]), float(data["cy"]))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"camera file {path}: cannot read intrinsics ({err.__class__.__name__}: {err}); "
                         'expected {"width", "height", "fx", "fy", "cx", "cy"}') from None
    if intr.width < 16 or intr.height < 16 or intr.fx <= 0 or intr.fy <= 0:
        raise ValueError(f"camera file {path}: size must be >= 16 px and focal lengths positive")
    widest = 2 * math.degrees(math.atan(max(intr.width / intr.fx, intr.height / intr.fy) / 2))
    if widest > MAX_FOV_DEG:   # Blender also refuses lenses under 1 mm
        raise ValueError(f"camera file {path}: fx {intr.fx:g}, fy {intr.fy:g} px on {intr.width}x{intr.height} "
                         f"give a {widest:.0f} deg field of view (at most {MAX_FOV_DEG}); are they in pixels?")
    if not (0 <= intr.cx <= intr.width and 0 <= intr.cy <= intr.height):
        raise ValueError(f"camera file {path}: the principal point ({intr.cx:g}, {intr.cy:g}) lies outside the "
                         f"{intr.width}x{intr.height} image")
    return intr


def look_at(eye: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """Camera-to-world 4x4 (OpenCV axes) at `eye` looking at `target`, rolled about the view axis."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    z = target - eye
    z /= np.linalg.norm(z)
    helper = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c, s = np.cos(roll), np.sin(roll)
    x, y = c * x + s * y, -s * x + c * y
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, eye
    return m


def blender_cam2world(cv_cam2world: np.ndarray) -> np.ndarray:
    """The Blender camera matrix that sees what the OpenCV camera `cv_cam2world` sees."""
    return np.asarray(cv_cam2world) @ CV_TO_BLENDER


def project(points: np.ndarray, K: np.ndarray, world_to_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world points (N,3) to pixels (N,2); also return their camera-space depth z (N,)."""
    pts = np.asarray(points, float).reshape(-1, 3)
    cam = pts @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (cam[:, :2] / z[:, None]) * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    return uv, z
