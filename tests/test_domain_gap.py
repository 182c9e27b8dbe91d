"""The kernel inception distance: near zero for two samples of one distribution, larger the further apart."""
from __future__ import annotations

import numpy as np
import pytest

from surgpose.metrics import kernel_inception_distance


def test_kid_orders_distances_and_is_unbiased():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 64)), rng.normal(size=(300, 64))
    same, spread = kernel_inception_distance(a, b)
    assert abs(same) < 3 * spread + 1e-3                     # unbiased: no offset for one distribution
    near = kernel_inception_distance(a, rng.normal(0.2, 1.0, size=(300, 64)))[0]
    far = kernel_inception_distance(a, rng.normal(0.6, 1.0, size=(300, 64)))[0]
    assert same < near < far
    small = kernel_inception_distance(a[:40], b[:30], subsets=20)   # small sets: subsets shrink to fit
    assert np.isfinite(small).all()


def test_kid_rejects_mismatched_features():
    with pytest.raises(ValueError, match="same width"):
        kernel_inception_distance(np.zeros((5, 3)), np.zeros((5, 4)))
