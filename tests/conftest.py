"""Test-wide setup: offline Ultralytics/Albumentations and paths to optional real data."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from surgpose import offline  # noqa: E402

offline.configure()

REAL = ROOT.parent / "shared" / "real"


@pytest.fixture
def real_dir() -> Path:
    """`../shared/real`, or skip when it is absent (as on a user's machine)."""
    if not REAL.is_dir():
        pytest.skip("../shared/real is not present")
    return REAL
