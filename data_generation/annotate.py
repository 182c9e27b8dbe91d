"""Turn a rendered frame into labels: exact keypoint projection, visibility tested against the render,
modal masks from the instance pass and amodal masks from the projected mesh. Pure numpy/OpenCV."""
from __future__ import annotations

import cv2
import numpy as np

from surgpose.camera import Intrinsics, project
from surgpose.geometry import mask_bbox, mask_to_polygons
from surgpose.schema import VIS_OCCLUDED, VIS_OUTSIDE, VIS_VISIBLE

#: Owner-map codes for pixels that belong to no instrument.
BACKGROUND, OTHER = -1, -2

#: A keypoint lies up to about half an instrument's thickness inside its own surface (pivot, ring
#: centre): the render's depth may be this much nearer before the keypoint counts as self-occluded.
SELF_OCCLUSION_TOLERANCE_M = 0.005


def keypoint_visibility(uv: np.ndarray, z: np.ndarray, owner: int, owner_map: np.ndarray,
                        depth: np.ndarray) -> np.ndarray:
    """Visibility code per keypoint: 0 outside the image, 1 hidden (by a hand, another instrument or the
    instrument itself, by depth test against the render), 2 visible."""
    h, w = owner_map.shape
    vis = np.full(len(uv), VIS_OUTSIDE, dtype=int)
    for i, ((u, v), zi) in enumerate(zip(uv, z)):
        if not (zi > 0 and 0 <= u <= w - 1 and 0 <= v <= h - 1):
            continue
        px, py = int(round(u)), int(round(v))
        d, who = depth[py, px], owner_map[py, px]
        hidden_by_other = who not in (owner, BACKGROUND) and d < zi
        hidden_by_self = d < zi - SELF_OCCLUSION_TOLERANCE_M
        vis[i] = VIS_OCCLUDED if hidden_by_other or hidden_by_self else VIS_VISIBLE
    return vis


def amodal_mask(triangles_world: np.ndarray, intr: Intrinsics, world_to_cam: np.ndarray) -> np.ndarray:
    """Full silhouette of a mesh, (T,3,3) world triangles, rasterised through the camera."""
    uv, z = project(triangles_world.reshape(-1, 3), intr.K, world_to_cam)
    uv, z = uv.reshape(-1, 3, 2), z.reshape(-1, 3)
    front = (z > 1e-3).all(axis=1)
    mask = np.zeros((intr.height, intr.width), np.uint8)
    if front.any():
        pts = np.round(uv[front] * 16).astype(np.int32)  # 4 fractional bits for sub-pixel accuracy
        cv2.fillPoly(mask, list(pts), 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def instance_record(class_name: str, keypoints_world: np.ndarray, triangles_world: np.ndarray, owner: int,
                    owner_map: np.ndarray, depth: np.ndarray, intr: Intrinsics, world_to_cam: np.ndarray,
                    opening: float, min_visible_px: int) -> dict | None:
    """Instance dict for one instrument, or None when too little of it is visible to label."""
    modal = owner_map == owner
    area = int(modal.sum())
    if area < min_visible_px:
        return None
    uv, z = project(keypoints_world, intr.K, world_to_cam)
    vis = keypoint_visibility(uv, z, owner, owner_map, depth)
    kps = [[float(u), float(v), int(c)] if c else [0.0, 0.0, 0] for (u, v), c in zip(uv, vis)]
    amodal = amodal_mask(triangles_world, intr, world_to_cam) | modal
    return {
        "class": class_name,
        "bbox": mask_bbox(modal),
        "keypoints": kps,
        "polygons": mask_to_polygons(modal),
        "bbox_amodal": mask_bbox(amodal),
        "polygons_amodal": mask_to_polygons(amodal),
        "area": area,
        "area_amodal": int(amodal.sum()),
        "opening": round(float(opening), 4),
    }
