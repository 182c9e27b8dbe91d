"""Import BlenderProc 2.8.0 under plain `python` with PyPI's `bpy` module.

PyPI's BlenderProc 2.8.0 predates its "external bpy module" mode: `import blenderproc` refuses to run
outside `blenderproc run`, and its in-Blender branch pip-installs packages and rewrites `sys.path`.
This layer does what that branch does minus the installing: it sets BlenderProc's temp dir and binds the
public API modules onto the `blenderproc` package, so scripts can write `bproc.init()` as in
BlenderProc's own examples. It is pinned to 2.8.0 and fails loudly on any other version.

Import it before anything imports `bpy` at module level: pip's bpy can segfault at interpreter exit
after a render, so rendering processes end with `exit_hard()` after flushing their outputs.
"""
from __future__ import annotations

import importlib
import os
import sys
import tempfile
from types import ModuleType

SUPPORTED_VERSION = "2.8.0"
SUPPORTED_BPY = (4, 2)

#: The names `blenderproc/__init__.py` binds inside Blender, in its order.
API_MODULES = ("loader", "utility", "sampler", "math", "postprocessing", "writer", "material", "lighting",
               "camera", "renderer", "world", "constructor", "types", "object", "filter")


class BlenderProcCompatError(RuntimeError):
    """The installed BlenderProc or bpy is not the version this layer was written for."""


def load(temp_dir: str | None = None) -> ModuleType:
    """Return the `blenderproc` package with its API bound, ready for `bproc.init()`."""
    import blenderproc

    if getattr(blenderproc, "init", None) is not None:
        return blenderproc
    if "INSIDE_OF_THE_INTERNAL_BLENDER_PYTHON_ENVIRONMENT" in os.environ:
        raise BlenderProcCompatError("running inside `blenderproc run`: import blenderproc directly")
    if blenderproc.__version__ != SUPPORTED_VERSION:
        raise BlenderProcCompatError(
            f"blenderproc {blenderproc.__version__} is installed; this compatibility layer is written for "
            f"{SUPPORTED_VERSION} (pip install blenderproc=={SUPPORTED_VERSION})")
    import bpy

    if tuple(bpy.app.version[:2]) != SUPPORTED_BPY:
        raise BlenderProcCompatError(
            f"bpy {bpy.app.version_string} is installed; BlenderProc {SUPPORTED_VERSION} here needs bpy 4.2 "
            "(pip install bpy==4.2.0)")
    try:
        from blenderproc.python.utility.SetupUtility import SetupUtility
        from blenderproc.python.utility.Initializer import clean_up

        SetupUtility.setup_utility_paths(temp_dir or tempfile.mkdtemp(prefix="blenderproc_"))
        for name in API_MODULES:
            setattr(blenderproc, name, importlib.import_module(f"blenderproc.api.{name}"))
    except (ImportError, AttributeError) as err:
        raise BlenderProcCompatError(f"blenderproc {SUPPORTED_VERSION} no longer fits this layer: {err}") from err
    blenderproc.init, blenderproc.clean_up = _init, clean_up
    return blenderproc


def _init() -> None:
    """`bproc.init()` minus its switch of the UI language to en_US, which pip's bpy (built without
    translations, so only 'DEFAULT') rejects; the rest are the same steps in the same order."""
    from blenderproc.python.renderer import RendererUtility
    from blenderproc.python.utility.GlobalStorage import GlobalStorage
    from blenderproc.python.utility.Initializer import _Initializer, clean_up
    import bpy

    if GlobalStorage.is_in_storage("bproc_init_complete") and GlobalStorage.get("bproc_init_complete"):
        raise RuntimeError("BlenderProc has already been initialized via bproc.init()")
    clean_up(clean_up_camera=True)
    bpy.context.scene.render.engine = "CYCLES"
    RendererUtility.set_render_devices()
    _Initializer.set_default_parameters()
    GlobalStorage.add("bproc_init_complete", True)


def exit_hard(code: int = 0) -> None:
    """Flush and leave without running bpy's exit handlers (they can segfault after a render)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# `import blenderproc` raises outside `blenderproc run` unless this marker is set; the package then
# imports nothing, and `load()` binds the API itself.
os.environ.setdefault("OUTSIDE_OF_THE_INTERNAL_BLENDER_PYTHON_ENVIRONMENT_BUT_IN_RUN_SCRIPT", "1")
