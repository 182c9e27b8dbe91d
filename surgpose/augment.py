"""Operating-room photometric augmentation for Ultralytics training.

Synthetic renders are clean; real surgical video has warm or cold light, glare on steel, shadows
of hands, blood, blur and compression. `OperatingRoom` is one Albumentations transform that applies
those effects with a single `strength` in [0, 1]. It is handed to Ultralytics through its documented
`augmentations` training argument (which replaces Ultralytics' default Albumentations step, runs after
mosaic/affine and before flips, on the uint8 training image), and `ramp_strength` is an
`on_train_epoch_start` callback that raises the strength from `base_strength` to `max_strength` over
the run. The transform is serialisable, so checkpoints store it and `--resume` restores the ramp.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import albumentations as A
import cv2
import numpy as np
from pydantic import Field

from surgpose.inference import clahe

#: Dark arterial/venous red, RGB.
BLOOD_RGB = np.array((120, 25, 30), np.float32)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Random field in [0, 1] that varies over about `cells` blobs across the image."""
    h, w = shape
    low = rng.random((cells, cells)).astype(np.float32)
    return cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)


class Vignette(A.ImageOnlyTransform):
    """Radial darkening towards the borders, as from endoscope and surgical-light optics."""

    class InitSchema(A.core.transforms_interface.BaseTransformInitSchema):
        intensity_range: tuple[float, float] = (0.2, 0.6)

    def __init__(self, intensity_range: tuple[float, float] = (0.2, 0.6), p: float = 0.5):
        super().__init__(p=p)
        self.intensity_range = intensity_range

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        h, w = img.shape[:2]
        rng = self.random_generator
        cx, cy = w * rng.uniform(0.35, 0.65), h * rng.uniform(0.35, 0.65)
        yy, xx = np.mgrid[0:h:8, 0:w:8].astype(np.float32)  # smooth field: compute coarse, then resize
        r2 = ((xx - cx) / w) ** 2 + ((yy - cy) / h) ** 2
        gain = cv2.resize(1 - rng.uniform(*self.intensity_range) * (r2 / r2.max()), (w, h))
        return (img * gain[..., None]).clip(0, 255).astype(img.dtype)


class SpecularHighlights(A.ImageOnlyTransform):
    """Small saturated glints, like surgical light reflected by polished steel."""

    class InitSchema(A.core.transforms_interface.BaseTransformInitSchema):
        count_range: tuple[int, int] = (1, 4)
        radius_range: tuple[float, float] = (0.005, 0.03)

    def __init__(self, count_range: tuple[int, int] = (1, 4), radius_range: tuple[float, float] = (0.005, 0.03),
                 p: float = 0.5):
        super().__init__(p=p)
        self.count_range = count_range
        self.radius_range = radius_range

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        h, w = img.shape[:2]
        rng = self.random_generator
        glow = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(self.count_range[0], self.count_range[1] + 1))):
            r = max(1.0, rng.uniform(*self.radius_range) * min(h, w))
            axes = (int(r * rng.uniform(1, 3)), int(r))
            centre = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            cv2.ellipse(glow, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        glow = cv2.GaussianBlur(glow, (0, 0), max(1.0, self.radius_range[1] * min(h, w) / 3))
        glow = (glow / max(glow.max(), 1e-6))[..., None]
        return (img + glow * (255 - img.astype(np.float32)) * 1.2).clip(0, 255).astype(img.dtype)


class BloodTint(A.ImageOnlyTransform):
    """Irregular dark-red stains that keep the texture beneath (blood on gloves, drapes, steel)."""

    class InitSchema(A.core.transforms_interface.BaseTransformInitSchema):
        alpha_range: tuple[float, float] = (0.3, 0.7)
        coverage_range: tuple[float, float] = (0.05, 0.25)

    def __init__(self, alpha_range: tuple[float, float] = (0.3, 0.7),
                 coverage_range: tuple[float, float] = (0.05, 0.25), p: float = 0.5):
        super().__init__(p=p)
        self.alpha_range = alpha_range
        self.coverage_range = coverage_range

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        rng = self.random_generator
        field = _smooth_noise(rng, img.shape[:2], int(rng.integers(4, 9)))
        level = np.quantile(field, 1 - rng.uniform(*self.coverage_range))
        mask = ((field - level) / 0.05).clip(0, 1)[..., None] * rng.uniform(*self.alpha_range)
        colour = BLOOD_RGB * rng.uniform(0.7, 1.3)
        stained = img.astype(np.float32) * (colour / 255) * 1.6  # multiplicative: texture survives
        return (img * (1 - mask) + stained * mask).clip(0, 255).astype(img.dtype)


class Clahe(A.ImageOnlyTransform):
    """The same CLAHE that `video.py --pre_clahe` applies, with a random clip limit up to `clip_limit`."""

    class InitSchema(A.core.transforms_interface.BaseTransformInitSchema):
        clip_limit: float = Field(gt=0)

    def __init__(self, clip_limit: float = 2.0, p: float = 0.5):
        super().__init__(p=p)
        self.clip_limit = clip_limit

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        clip = self.random_generator.uniform(1.0, max(1.0, self.clip_limit))
        return np.ascontiguousarray(clahe(np.ascontiguousarray(img[..., ::-1]), clip)[..., ::-1])  # RGB in and out


def operating_room_pipeline(strength: float, clahe_clip: float = 2.0) -> A.Compose:
    """Photometric operating-room effects whose probabilities and magnitudes scale with `strength`."""
    s = float(np.clip(strength, 0.0, 1.0))
    blur = 3 + 2 * round(3 * s)  # odd kernel, 3..9
    return A.Compose([
        # Light colour: white balance (colour temperature) and a residual cast, then exposure.
        A.PlanckianJitter(mode="blackbody", temperature_limit=(int(6000 - 2500 * s), int(6000 + 6000 * s)), p=0.6 * s),
        A.RGBShift(r_shift_limit=25 * s, g_shift_limit=15 * s, b_shift_limit=25 * s, p=0.4 * s),
        A.RandomGamma(gamma_limit=(100 - 40 * s, 100 + 60 * s), p=0.5 * s),
        A.RandomBrightnessContrast(brightness_limit=0.3 * s, contrast_limit=0.3 * s, p=0.5 * s),
        Clahe(clip_limit=clahe_clip, p=0.25 * s),
        # Light geometry: spotlights, glints on steel, shadow bands of hands and instruments, vignetting.
        A.Illumination(mode="gaussian", effect_type="both", intensity_range=(0.03, 0.03 + 0.17 * s),
                       sigma_range=(0.2, 0.7), p=0.4 * s),
        SpecularHighlights(count_range=(1, 1 + round(4 * s)), p=0.4 * s),
        A.OneOf([
            A.RandomShadow(shadow_roi=(0, 0, 1, 1), num_shadows_limit=(1, 3),
                           shadow_intensity_range=(0.2, 0.2 + 0.5 * s)),
            A.PlasmaShadow(shadow_intensity_range=(0.1, 0.1 + 0.5 * s), roughness=2.0),
        ], p=0.35 * s),
        Vignette(intensity_range=(0.1, 0.1 + 0.5 * s), p=0.35 * s),
        BloodTint(alpha_range=(0.2, 0.2 + 0.5 * s), coverage_range=(0.03, 0.03 + 0.2 * s), p=0.3 * s),
        # Camera: motion and defocus blur, sensor noise, compression.
        A.OneOf([
            A.MotionBlur(blur_limit=(3, blur)),
            A.Defocus(radius=(1, max(2, round(1 + 4 * s))), alias_blur=(0.1, 0.3)),
        ], p=0.4 * s),
        A.OneOf([
            A.GaussNoise(std_range=(0.01, 0.01 + 0.07 * s)),
            A.ISONoise(color_shift=(0.01, 0.01 + 0.04 * s), intensity=(0.1, 0.1 + 0.5 * s)),
        ], p=0.4 * s),
        A.ImageCompression(quality_range=(int(95 - 65 * s), 95), p=0.4 * s),
    ])


class OperatingRoom(A.ImageOnlyTransform):
    """All operating-room effects at one `strength`, ramped from `base_strength` to `max_strength`.

    Pass it to Ultralytics as `augmentations=[OperatingRoom(...)]` and register `ramp_strength`.
    """

    class InitSchema(A.core.transforms_interface.BaseTransformInitSchema):
        base_strength: float = Field(ge=0, le=1)
        max_strength: float = Field(ge=0, le=1)
        clahe_clip: float = Field(gt=0)
        strength: float | None = Field(default=None, ge=0, le=1)

    def __init__(self, base_strength: float = 0.3, max_strength: float = 0.8, clahe_clip: float = 2.0,
                 strength: float | None = None, p: float = 1.0):
        self.base_strength = base_strength
        self.max_strength = max_strength
        self.clahe_clip = clahe_clip
        self.strength = base_strength if strength is None else strength  # builds the pipeline
        super().__init__(p=p)  # seeds this transform and, through set_random_seed, the pipeline

    @property
    def strength(self) -> float:
        """Current strength; setting it rebuilds the inner pipeline, which draws from this transform's RNG."""
        return self._strength

    @strength.setter
    def strength(self, value: float) -> None:
        self._strength = float(value)
        self.pipeline = operating_room_pipeline(self._strength, self.clahe_clip)
        if hasattr(self, "random_generator"):
            self.pipeline.set_random_state(self.random_generator, self.py_random)

    def set_random_seed(self, seed: int | None) -> None:
        super().set_random_seed(seed)
        self.pipeline.set_random_seed(seed)

    def set_random_state(self, random_generator: np.random.Generator, py_random: Any) -> None:
        super().set_random_state(random_generator, py_random)
        self.pipeline.set_random_state(random_generator, py_random)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        """Ultralytics passes BGR; the effects work in RGB, Albumentations' convention (colour temperature)."""
        rgb = np.ascontiguousarray(img[..., ::-1])
        return np.ascontiguousarray(self.pipeline(image=rgb)["image"][..., ::-1])


def ramped(base: float, top: float, progress: float) -> float:
    """Linear ramp: `base` at the first epoch (progress 0), `top` at the last (progress 1)."""
    return base + (top - base) * float(np.clip(progress, 0.0, 1.0))


def find_operating_room(obj: Any) -> Iterator[OperatingRoom]:
    """Every `OperatingRoom` inside an Ultralytics or Albumentations transform tree."""
    if isinstance(obj, OperatingRoom):
        yield obj
        return
    for attr in ("transforms", "transform"):
        child = getattr(obj, attr, None)
        for item in child if isinstance(child, list) else [child] if child is not None else []:
            yield from find_operating_room(item)


def ramp_strength(trainer: Any) -> None:
    """`on_train_epoch_start` callback: set this epoch's strength wherever the transform lives.

    Updates the live dataset transforms, the serialised copy in `trainer.args.augmentations` (which
    Ultralytics rebuilds transforms from when it closes mosaic, and stores in checkpoints), and restarts
    persistent dataloader workers so they pick up the change.
    """
    progress = trainer.epoch / max(trainer.epochs - 1, 1)
    live = list(find_operating_room(trainer.train_loader.dataset.transforms))
    for transform in live:
        transform.strength = ramped(transform.base_strength, transform.max_strength, progress)
    name = OperatingRoom.get_class_fullname()
    for spec in getattr(trainer.args, "augmentations", None) or []:
        spec = spec.get("transform", spec) if isinstance(spec, dict) else {}  # A.to_dict() nests the transform
        if spec.get("__class_fullname__") == name:
            spec["strength"] = ramped(spec["base_strength"], spec["max_strength"], progress)
    if live and trainer.train_loader.num_workers > 0:
        trainer.train_loader.reset()
