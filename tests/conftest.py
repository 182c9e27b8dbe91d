"""Test-wide setup: offline Ultralytics/Albumentations and paths to optional real data."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from surgpose import offline  # noqa: E402

offline.configure()

REAL = ROOT.parent / "shared" / "real"


def run_python(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter at the repository root: Blender work happens there, since
    pip's bpy can segfault at interpreter exit."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def real_dir() -> Path:
    """`../shared/real`, or skip when it is absent (as on a user's machine)."""
    if not REAL.is_dir():
        pytest.skip("../shared/real is not present")
    return REAL
