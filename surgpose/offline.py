"""Make Ultralytics and Albumentations run fully offline. Import this before either library.

Ultralytics probes DNS at import, fetches Arial.ttf on every train/val, pip-installs missing
packages at run time and writes settings under $HOME; Albumentations checks PyPI for updates.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def configure(config_dir: str | os.PathLike | None = None) -> Path:
    """Set the environment so nothing downloads, and place a bundled font where Ultralytics looks.

    Returns the Ultralytics config directory. Idempotent; explicit user settings win.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    os.environ.setdefault("YOLO_VERBOSE", os.environ.get("YOLO_VERBOSE", "True"))
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    default_dir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "surgpose"
    cfg = Path(os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir or default_dir)))
    font_dir = cfg / "Ultralytics"
    font_dir.mkdir(parents=True, exist_ok=True)
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        target = font_dir / name
        if not target.exists():
            shutil.copyfile(bundled_font(), target)
    return cfg


def bundled_font() -> Path:
    """A TTF that ships with matplotlib (DejaVuSans), so no font is ever downloaded."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
