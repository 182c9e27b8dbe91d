"""The procedural operating room that the metal mirrors, rendered by real Cycles in a subprocess."""
from __future__ import annotations

import json

from conftest import run_python


def test_room_world_is_a_bright_blotchy_ceiling_over_a_darker_floor():
    proc = run_python("""
        import json, sys
        import numpy as np
        sys.path.insert(0, ".")
        from data_generation import blenderproc_compat
        bproc = blenderproc_compat.load()
        bproc.init()
        from data_generation.render_worker import room_world
        bproc.object.create_primitive("CUBE").set_location([50, 0, 0])  # out of view: BlenderProc wants a mesh
        bproc.camera.set_resolution(48, 32)
        # a Blender camera looks down its -z: unrotated it faces the floor, half a turn about x the ceiling
        bproc.camera.add_camera_pose(bproc.math.build_transformation_mat([0, 0, 0], [0, 0, 0]), frame=0)
        bproc.camera.add_camera_pose(bproc.math.build_transformation_mat([0, 0, 0], [np.pi, 0, 0]), frame=1)
        bproc.renderer.set_max_amount_of_samples(1)
        bproc.renderer.set_output_format(enable_transparency=False)
        out = {}
        for seed in (0, 1):
            room_world(np.random.default_rng(seed))
            down, up = (np.asarray(c, np.float32).mean(2) for c in bproc.renderer.render(verbose=False)["colors"])
            out[seed] = {"up": float(up.mean()), "down": float(down.mean()), "up_spread": float(up.std() / up.mean())}
        print(json.dumps(out))
        blenderproc_compat.exit_hard(0)
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for world in result.values():
        assert world["up"] > world["down"]      # lamps and ceiling above, drapes below
        assert world["up_spread"] > 0.02        # not a uniform grey: steel shows streaks and bands
    assert result["0"] != result["1"]           # each chunk gets its own room
