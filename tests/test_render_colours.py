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
        from data_generation.render_worker import configure_renderer, jitter_glove, make_materials, room_world
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
            jitter_glove(mats["glove"], np.random.default_rng(seed), frame, "navy", None)
        colours = [np.asarray(c, np.float64)[..., :3].reshape(-1, 3).mean(0).tolist()
                   for c in bproc.renderer.render(verbose=False)["colors"]]
        print(json.dumps(colours))
        blenderproc_compat.exit_hard(0)
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for r, g, b in json.loads(proc.stdout.strip().splitlines()[-1]):
        assert r < g < b           # blue, with less red than green (more red reads as purple)
        assert 60 < b < 140        # dark, yet not black


def test_a_hand_renders_its_glove_and_its_sleeve_in_their_own_materials():
    """A posed hand of the committed rig reaches back in a sleeve: a navy glove on a white coat's sleeve must
    render as both, each where the mesh says, through the generator's own scene code."""
    proc = run_python("""
        import json, sys
        import numpy as np
        sys.path.insert(0, ".")
        from data_generation import blenderproc_compat
        bproc = blenderproc_compat.load()
        bproc.init()
        from data_generation.grasps import free_hand
        from data_generation.hand_model import load_hand_model, sleeve_mesh
        from data_generation.render_worker import (ChunkScene, configure_renderer, jitter_glove, jitter_sleeve,
                                                   make_materials, room_world)
        from data_generation.scene import FrameSpec, HandPlacement, LightSpec
        from data_generation.settings import GeneratorSettings
        from surgpose.camera import Intrinsics, look_at, project
        intr = Intrinsics(96, 64, 80, 80, 48, 32)
        configure_renderer(bproc, GeneratorSettings(out="unused"), intr, threads=1)
        room_world(np.random.default_rng(0))
        mats = make_materials(bproc)
        hand = load_hand_model("hands")
        posed = free_hand(hand, "rest", "right", np.random.default_rng(0)).posed
        surgeon = np.array([-1.0, 0.0, 0.0])
        placed = HandPlacement("right", "rest", posed, sleeve_mesh(np.random.default_rng(0), hand, posed, surgeon))
        cam2world = look_at([-0.1, 0.0, 0.8], [-0.1, 0.0, 0.0])
        light = LightSpec("POINT", np.array([0.0, 0.0, 0.6]), np.zeros(3), 60.0, 5000.0)
        spec = FrameSpec(0, cam2world, [], [placed], [light], 0)
        scene = ChunkScene(bproc, [], mats, max_lights=1, hand=hand, specs=[spec])
        scene.keyframe(spec, 0, np.random.default_rng(0))
        jitter_glove(mats["glove"], np.random.default_rng(0), 0, "navy", None)
        jitter_sleeve(mats, np.random.default_rng(0), 0, "coat_white")
        image = np.asarray(bproc.renderer.render(verbose=False)["colors"][0], np.float64)[..., :3]
        back = posed.heads[hand.index["metacarpal_middle"]] + [0.0, 0.0, 0.02]   # the back of the hand
        sleeve = placed.sleeve[0][20 * 8:20 * 9].mean(0) + [0.0, 0.0, 0.03]     # the top of the forearm's sleeve
        out = {}
        for name, point in {"glove": back, "sleeve": sleeve}.items():
            (u, v), = np.round(project(np.array([point]), intr.K, np.linalg.inv(cam2world))[0]).astype(int)
            out[name] = image[v - 1:v + 2, u - 1:u + 2].reshape(-1, 3).mean(0).tolist()
        print(json.dumps(out))
        blenderproc_compat.exit_hard(0)
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    colours = json.loads(proc.stdout.strip().splitlines()[-1])
    r, g, b = colours["glove"]
    assert b > r + 20 and b > g + 20 and b < 160     # dark blue glove
    r, g, b = colours["sleeve"]
    assert min(r, g, b) > 120 and max(r, g, b) - min(r, g, b) < 40   # white-ish cloth, not the glove
