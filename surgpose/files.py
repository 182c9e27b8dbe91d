"""Atomic file writes: an interrupted run never leaves a truncated file behind."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` on a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # never matches *.json etc.
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes owner-only files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, data: Any, indent: int | None = None) -> Path:
    """Atomically write `data` as JSON."""
    return atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=indent)))


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write a text file."""
    return atomic_write(path, lambda p: p.write_text(text))


def write_image(path: str | os.PathLike, image, jpg_quality: int = 95) -> Path:
    """Atomically write an image with OpenCV (format from the suffix)."""
    import cv2

    path = Path(path)
    params = [cv2.IMWRITE_JPEG_QUALITY, jpg_quality] if path.suffix.lower() in (".jpg", ".jpeg") else []

    def _write(tmp: Path) -> None:
        ok, buf = cv2.imencode(path.suffix, image, params)
        if not ok:
            raise OSError(f"could not encode image {path}")
        tmp.write_bytes(buf.tobytes())

    return atomic_write(path, _write)


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Hard-link `src` to `dst` (no extra disk), copying where links are impossible; replaces `dst`."""
    import shutil

    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() and os.path.samefile(src, dst):
        return dst
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return dst
