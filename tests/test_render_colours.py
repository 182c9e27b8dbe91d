"""Glove colours as the generator's real Cycles renders show them, in a subprocess."""
from __future__ import annotations

import json

from conftest import run_python


def test_navy_gloves_render_dark_blue_not_lavender():
    """Real navy nitrile gloves film at about sRGB (25, 30, 87) (blue-dominated pixels of `oss_dev`);
    this flat, matte-ish patch renders at about (60, 65, 105), under BlenderProc's default Filmic view
    it was (110, 117, 167): lavender next to the real thing."""
    proc = run_python("""
        import json, sys
        import numpy as np
        sys.path.insert(0, ".")
        from data_generation import blenderproc_compat
        bproc = blenderproc_compat.load()
        bproc.init()
        from data_generation.render_worker import configure_renderer, jitter_materials, make_materials, room_world
        from data_generation.settings import GeneratorSettings
        from surgpose.camera import Intrinsics
        configure_renderer(bproc, GeneratorSettings(out="unused"), Intrinsics(32, 24, 40, 40, 16, 12), threads=1)
        room_world(np.random.default_rng(0))
        mats = make_materials(bproc)
        glove = bproc.object.create_primitive("PLANE", scale=[0.2, 0.2, 1])
        glove.replace_materials(mats["glove"])
        lamp = bproc.types.Light()  # the scene's main light: 60-160 W x distance^2, here 0.4 m above
        lamp.set_location([0.05, 0.05, 0.4])
        lamp.set_energy(110 * 0.4 ** 2)
        for frame, seed in enumerate((0, 1)):  # one frame per glove-colour draw
            bproc.camera.add_camera_pose(bproc.math.build_transformation_mat([0, 0, 0.35], [0, 0, 0]), frame=frame)
            jitter_materials(mats, np.random.default_rng(seed), frame, "navy")
        colours = [np.asarray(c, np.float64)[..., :3].reshape(-1, 3).mean(0).tolist()
                   for c in bproc.renderer.render(verbose=False)["colors"]]
        print(json.dumps(colours))
        blenderproc_compat.exit_hard(0)
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for r, g, b in json.loads(proc.stdout.strip().splitlines()[-1]):
        assert r < g < b           # blue, with less red than green (more red reads as purple)
        assert 60 < b < 140        # dark, yet not black
