"""Procedural backgrounds, blood, and loading of real background photos."""
from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from data_generation.backgrounds import (BACKGROUND_KINDS, _clipped_strips, _to_uint8, add_blood, list_backgrounds,
                                         load_background, procedural_background)


def make(kind: str | None, seed: int = 0, size: tuple[int, int] = (160, 96)) -> np.ndarray:
    return procedural_background(size[0], size[1], np.random.default_rng(seed), kind)


@pytest.mark.parametrize("kind", BACKGROUND_KINDS + (None,))
@pytest.mark.parametrize("size", [(960, 544), (97, 61)])
def test_kind_shape_dtype_and_texture(kind, size):
    image = make(kind, 3, size)
    assert image.shape == (size[1], size[0], 3) and image.dtype == np.uint8
    assert image.std() > 3, "a background must have texture, not a flat colour"
    assert 20 < image.mean() < 245


@pytest.mark.parametrize("kind", BACKGROUND_KINDS + (None,))
def test_deterministic_per_seed_and_different_across_seeds(kind):
    assert np.array_equal(make(kind, 7), make(kind, 7))
    assert not np.array_equal(make(kind, 7), make(kind, 8))


def test_kinds_differ_and_have_their_colours():
    images = {kind: make(kind, 1, (320, 192)) for kind in BACKGROUND_KINDS}
    for a, b in itertools.combinations(BACKGROUND_KINDS, 2):
        assert not np.array_equal(images[a], images[b]), (a, b)
    mean = {kind: images[kind].reshape(-1, 3).mean(0) for kind in BACKGROUND_KINDS}  # BGR
    assert mean["drape_blue"][0] > mean["drape_blue"][2] + 30
    assert mean["drape_green"][1] > mean["drape_green"][2] + 20
    assert mean["tissue"][2] > mean["tissue"][1] + 40
    assert mean["skin"][2] > mean["skin"][0]
    assert mean["gauze"].min() > 120


def test_random_layouts_cover_many_looks():
    means = np.array([make(None, seed).reshape(-1, 3).mean(0) for seed in range(24)])
    assert np.ptp(means, axis=0).min() > 40, "kind=None should vary widely in colour"


def test_binder_clips_hold_strips_on_the_pad():
    """Strips lie on the pad, each held at both ends by a black binder clip with shining wire handles: metal
    that is not an instrument, as on apas_dev's benches. Drawn on a flat grey canvas, so whatever is black comes
    from them."""
    centre, half = np.array([480.0, 272.0]), np.array([140.0, 90.0])
    for seed in range(6):
        canvas = np.full((544, 960, 3), 0.5, np.float32)
        _clipped_strips(canvas, np.random.default_rng(seed), centre, half, angle=0.3)
        image = _to_uint8(canvas)
        black = image.max(2) < 40                       # the clips' bodies: no strip is black
        assert black.sum() > 300, (seed, black.sum())
        ys, xs = np.nonzero((image != 128).any(2))
        reach = np.hypot(*half) + 90       # the pad's corner, and a clip's handles beyond a strip's end
        assert np.hypot(xs - centre[0], ys - centre[1]).max() < reach


def test_tiny_and_odd_sizes_work():
    for seed, (w, h) in enumerate([(1, 1), (2, 3), (17, 5), (5, 40)]):
        assert make(None, seed, (w, h)).shape == (h, w, 3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown background kind 'carpet'"):
        make("carpet")
    with pytest.raises(ValueError, match="positive"):
        procedural_background(0, 10, np.random.default_rng(0))


def test_add_blood_reddens_and_is_pure():
    white = np.full((200, 300, 3), 230, np.uint8)
    assert np.array_equal(add_blood(white, np.random.default_rng(0), 0.0), white)
    bloody = add_blood(white, np.random.default_rng(0), 1.0)
    assert bloody.shape == white.shape and bloody.dtype == np.uint8
    assert (white == 230).all(), "input must not be modified"
    stained = (bloody != white).any(2)
    assert 0.005 < stained.mean() < 0.9
    b, g, r = bloody[stained].astype(int).T
    assert (r - b).mean() > 40 and (r - g).mean() > 40, "blood is red: it absorbs blue and green"
    assert np.array_equal(bloody, add_blood(white, np.random.default_rng(0), 1.0))


def test_list_backgrounds(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"^folder not found: {tmp_path / 'missing'}$"):
        list_backgrounds(tmp_path / "missing")
    with pytest.raises(ValueError, match="^no images in "):
        list_backgrounds(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "A.JPG", "sub/c.jpeg", ".partial.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((4, 4, 3), np.uint8))
    assert [p.relative_to(tmp_path).as_posix() for p in list_backgrounds(tmp_path)] == ["A.JPG", "b.png",
                                                                                          "sub/c.jpeg"]


def test_load_background_crops_to_size(tmp_path):
    y, x = np.mgrid[0:300, 0:500]
    photo = np.dstack([x % 256, y % 256, (x + y) % 256]).astype(np.uint8)
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), photo)
    for w, h in [(96, 64), (64, 96), (960, 544)]:
        assert load_background(path, w, h, np.random.default_rng(0)).shape == (h, w, 3)
    a = load_background(path, 96, 64, np.random.default_rng(0))
    assert np.array_equal(a, load_background(path, 96, 64, np.random.default_rng(0)))
    assert not np.array_equal(a, load_background(path, 96, 64, np.random.default_rng(1)))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="cannot read background image"):
        load_background(tmp_path / "broken.jpg", 96, 64, np.random.default_rng(0))
