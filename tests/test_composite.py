"""Compositing under one light, camera effects, and the paste_on_backgrounds CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from data_generation.composite import camera_effects, composite, kelvin_to_rgb
from data_generation.paste_on_backgrounds import run

ROOT = Path(__file__).resolve().parents[1]
FG = (30, 200, 90)  # BGR of the synthetic foreground


def square_render(h: int = 200, w: int = 300, box: tuple[int, int, int, int] = (100, 70, 160, 130)) -> np.ndarray:
    """BGRA render: an opaque square (x0, y0, x1, y1) with a half-transparent rim, transparent elsewhere."""
    render = np.zeros((h, w, 4), np.uint8)
    x0, y0, x1, y1 = box
    render[y0 - 1:y1 + 1, x0 - 1:x1 + 1] = FG + (128,)
    render[y0:y1, x0:x1] = FG + (255,)
    return render


def grey(h: int = 200, w: int = 300, value: int = 150) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def test_kelvin_to_rgb():
    for kelvin in (1500, 3000, 5000, 6500, 9000, 12000):
        rgb = kelvin_to_rgb(kelvin)
        assert rgb.shape == (3,) and rgb.max() == pytest.approx(1.0) and rgb.min() >= 0
    assert kelvin_to_rgb(6600).min() > 0.95, "about 6500 K is white"
    r, g, b = kelvin_to_rgb(2000)
    assert r == 1.0 and r > g > b
    assert kelvin_to_rgb(12000)[2] == 1.0
    ratios = [kelvin_to_rgb(k)[2] / kelvin_to_rgb(k)[0] for k in range(1500, 12001, 500)]
    assert np.all(np.diff(ratios) >= 0), "bluer with temperature"


def test_opaque_is_foreground_transparent_is_lit_background():
    render, background = square_render(), grey()
    out = composite(render, background, np.random.default_rng(0), shadow_strength=0)
    assert out.shape == background.shape and out.dtype == np.uint8
    assert (out[70:130, 100:160] == FG).all()
    far = out[render[..., 3] == 0]
    assert (far == far[0]).all(), "white light, no shadow, no spot: a uniform background stays uniform"
    assert far[0][0] == far[0][1] == far[0][2]
    assert 0.6 * 150 < far[0][0] < 1.45 * 150
    rim = out[69, 130].astype(int)  # alpha 128: half way between foreground and background
    assert np.abs(rim - (np.array(FG) + far[0]) / 2).max() <= 2


def test_exposure_follows_foreground_brightness():
    dark, bright = square_render(), square_render()
    dark[..., :3], bright[..., :3] = 40, 230
    lit = [composite(r, grey(), np.random.default_rng(0), shadow_strength=0)[0, 0, 0] for r in (dark, bright)]
    assert lit[0] < 150 < lit[1]


def test_shadow_falls_in_offset_direction_and_stays_near():
    render = square_render()
    reference = composite(render, grey(), np.random.default_rng(0), shadow_strength=0)
    out = composite(render, grey(), np.random.default_rng(0), shadow_offset=(25, 0), shadow_strength=0.5,
                    shadow_blur=4)
    right, left, far = out[100, 175, 0], out[100, 85, 0], out[100, 280, 0]
    assert right < 0.75 * reference[100, 175, 0], "shadow cast to +x"
    assert left == reference[100, 85, 0], "no shadow on the side of the light"
    assert far == reference[100, 280, 0], "the shadow stays near the foreground"
    below = composite(render, grey(), np.random.default_rng(0), shadow_offset=(0, 25), shadow_blur=4)
    assert below[145, 130, 0] < 0.75 * reference[145, 130, 0] and below[55, 130, 0] == reference[55, 130, 0]


def test_light_colour_tints_background():
    render, background = square_render(), grey()
    warm = composite(render, background, np.random.default_rng(0), kelvin_to_rgb(2500), shadow_strength=0)[0, 0]
    cool = composite(render, background, np.random.default_rng(0), kelvin_to_rgb(11000), shadow_strength=0)[0, 0]
    assert warm[2] > warm[1] > warm[0] + 30, "warm light: background turns orange (BGR)"
    assert cool[0] > cool[2] + 10, "cool light: background turns blue"
    assert (composite(render, background, np.random.default_rng(0), kelvin_to_rgb(2500))[70:130, 100:160]
            == FG).all(), "the foreground was lit in the renderer: left as rendered"


def test_spotlight_falls_off_from_centre():
    out = composite(square_render(), grey(), np.random.default_rng(0), shadow_strength=0, spot_center=(40, 40),
                    spot_radius=60)
    assert out[40, 40, 0] > 1.8 * out[190, 290, 0]


def test_composite_is_deterministic_and_checks_inputs():
    render, background = square_render(), grey()
    assert np.array_equal(composite(render, background, np.random.default_rng(3)),
                          composite(render, background, np.random.default_rng(3)))
    with pytest.raises(ValueError, match="render must be HxWx4"):
        composite(render[..., :3], background, np.random.default_rng(0))
    with pytest.raises(ValueError, match="background must be"):
        composite(render, background[:100], np.random.default_rng(0))


def test_camera_effects_identity_when_off():
    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    assert np.array_equal(camera_effects(image, np.random.default_rng(0)), image)


@pytest.mark.parametrize("effect", [{"motion_blur": 7.0}, {"defocus": 2.5}, {"noise": 5.0}, {"jpeg_quality": 30}])
def test_camera_effects_change_image(effect):
    y, x = np.mgrid[0:96, 0:128]
    image = np.dstack([((x // 4 + y // 4) % 2) * 200 + 20] * 3).astype(np.uint8)  # checkerboard
    out = camera_effects(image, np.random.default_rng(0), **effect)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not np.array_equal(out, image)
    assert abs(out.mean() - image.mean()) < 5, "effects keep the exposure"
    assert np.array_equal(out, camera_effects(image, np.random.default_rng(0), **effect))
    if "motion_blur" in effect or "defocus" in effect:
        assert out.astype(float).std() < 0.9 * image.astype(float).std(), "blurs soften edges"


def test_noise_sigma_in_intensity_units():
    image = np.full((200, 200, 3), 128, np.uint8)
    diff = camera_effects(image, np.random.default_rng(0), noise=6.0).astype(float) - 128
    assert diff.std() == pytest.approx(6.0, rel=0.1)


# ----------------------------------------------------------------------------------------------------
# paste_on_backgrounds CLI
# ----------------------------------------------------------------------------------------------------

@pytest.fixture
def renders(tmp_path) -> Path:
    folder = tmp_path / "renders"
    folder.mkdir()
    cv2.imwrite(str(folder / "000000.png"), square_render(60, 80, (20, 15, 50, 45)))
    cv2.imwrite(str(folder / "000001.png"), square_render(48, 64, (10, 10, 40, 30)))
    cv2.imwrite(str(folder / "000001_depth.png"), np.zeros((48, 64), np.uint16))  # not a render: skipped
    return folder


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "data_generation/paste_on_backgrounds.py", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_pastes_every_render(renders, tmp_path):
    result = cli("--renders", str(renders), "--out", str(tmp_path / "out"), "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["000000.jpg", "000001.jpg"]
    first = cv2.imread(str(tmp_path / "out" / "000000.jpg"))
    assert first.shape == (60, 80, 3)
    assert cv2.imread(str(tmp_path / "out" / "000001.jpg")).shape == (48, 64, 3)
    assert np.abs(first[25:35, 30:40].astype(int) - FG).mean() < 25, "the foreground survives"
    again = run(renders, tmp_path / "again", seed=3)  # in-process, other order: same bytes per image
    for path in again:
        assert path.read_bytes() == (tmp_path / "out" / path.name).read_bytes()


def test_cli_with_coco_and_photo_backgrounds(renders, tmp_path):
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": "images/000001.jpg"}]}))
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "bg.jpg"), np.full((100, 100, 3), (200, 50, 50), np.uint8))
    written = run(renders, tmp_path / "out", backgrounds=photos, coco=coco)
    assert [p.name for p in written] == ["000001.jpg"]
    image = cv2.imread(str(written[0]))
    assert image[2, 2, 0] > image[2, 2, 2] + 60, "background comes from the (blue) photo"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": "000009.jpg"}]}))
    with pytest.raises(ValueError, match="1 of 1 images listed in .* have no render"):
        run(renders, tmp_path / "out", coco=coco)


def test_cli_bad_input_fails_with_one_line(renders, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("--renders", str(renders), "--out", str(tmp_path / "out"), "--backgrounds", str(empty))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == f"paste_on_backgrounds: error: no images in {empty}"
    assert len(result.stderr.strip().splitlines()) == 1
    result = cli("--renders", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert result.returncode != 0 and "renders folder not found" in result.stderr
    result = cli("--renders", str(renders), "--out", str(renders / "000000.png"))
    assert result.stderr.strip().splitlines() == [f"paste_on_backgrounds: error: --out {renders / '000000.png'} is a "
                                                  "file; give a folder for the pasted images"]
    result = cli("--renders", str(renders), "--out", str(tmp_path / "out"), "--backgrounds", str(tmp_path / "none"))
    assert result.stderr.strip().splitlines() == [f"paste_on_backgrounds: error: folder not found: {tmp_path / 'none'}"]
    result = cli("--renders", str(renders), "--out", str(tmp_path / "out"), "--jpg_quality", "0")
    assert result.returncode == 2 and "--jpg_quality must be in 1..100" in result.stderr


def test_white_balance_neutralises_the_light_cast():
    from data_generation.composite import GAMMA, white_balance

    light = kelvin_to_rgb(3000)
    grey_under_light = np.clip(128 * light[::-1] ** (1 / GAMMA) / (light[1] ** (1 / GAMMA)), 0, 255)
    image = np.tile(grey_under_light.astype(np.uint8), (4, 4, 1))
    full = white_balance(image, light, 1.0)[0, 0].astype(int)
    assert np.ptp(full) <= 3  # neutral grey again
    half = white_balance(image, light, 0.5)[0, 0].astype(int)
    assert np.ptp(full) < np.ptp(half) < np.ptp(image[0, 0].astype(int))
    assert np.array_equal(white_balance(image, light, 0.0), image)


def test_despeckle_removes_isolated_speckle_but_keeps_soft_edges():
    from data_generation.composite import despeckle

    render = np.zeros((20, 20, 4), np.uint8)
    render[4:16, 4:16] = (120, 120, 120, 255)
    render[9, 9, :3] = 255            # a firefly inside the opaque instrument
    render[3, 4:16] = (30, 200, 30, 128)  # a partly transparent edge row
    out = despeckle(render)
    assert tuple(out[9, 9, :3]) == (120, 120, 120)
    assert np.array_equal(out[3], render[3]) and np.array_equal(out[..., 3], render[..., 3])
