"""The BlenderProc 2.8.0 compatibility layer, exercised through real Blender in subprocesses
(pip's bpy can segfault at interpreter exit, so rendering never happens in the test process)."""
from __future__ import annotations

import json

from conftest import run_python


def test_renders_segmentation_and_depth_under_plain_python():
    proc = run_python("""
        import json, sys
        sys.path.insert(0, ".")
        from data_generation import blenderproc_compat
        bproc = blenderproc_compat.load()
        bproc.init()
        cube = bproc.object.create_primitive("CUBE", scale=[0.5, 0.5, 0.5])
        cube.set_name("probe")
        light = bproc.types.Light(); light.set_location([2, -2, 3]); light.set_energy(500)
        bproc.camera.set_resolution(64, 48)
        bproc.camera.add_camera_pose(bproc.math.build_transformation_mat([0, 0, 4], [0, 0, 0]))
        bproc.renderer.set_max_amount_of_samples(2)
        bproc.renderer.set_output_format(enable_transparency=True)
        bproc.renderer.enable_segmentation_output(map_by=["instance", "name"])
        bproc.renderer.enable_depth_output(activate_antialiasing=False)
        data = bproc.renderer.render()
        inst, depth, rgba = data["instance_segmaps"][0], data["depth"][0], data["colors"][0]
        names = {a["idx"]: a["name"] for a in data["instance_attribute_maps"][0]}
        probe = [i for i, n in names.items() if n == "probe"][0]
        print(json.dumps({"shape": list(rgba.shape), "centre_owner": int(inst[24, 32]) == probe,
                          "corner_alpha": int(rgba[0, 0, 3]), "centre_alpha": int(rgba[24, 32, 3]),
                          "centre_depth": float(depth[24, 32])}))
        blenderproc_compat.exit_hard(0)
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["shape"] == [48, 64, 4]
    assert result["centre_owner"]
    assert result["corner_alpha"] == 0 and result["centre_alpha"] == 255
    assert abs(result["centre_depth"] - 3.5) < 1e-3  # camera at z=4, cube top face at z=0.5


def test_refuses_other_blenderproc_versions():
    proc = run_python("""
        import sys
        sys.path.insert(0, ".")
        from data_generation import blenderproc_compat
        import blenderproc
        blenderproc.__version__ = "2.9.0"
        try:
            blenderproc_compat.load()
        except blenderproc_compat.BlenderProcCompatError as err:
            print("refused:", err)
            blenderproc_compat.exit_hard(0)
        blenderproc_compat.exit_hard(3)
    """)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2.8.0" in proc.stdout
