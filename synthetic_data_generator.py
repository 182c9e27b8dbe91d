"""Phase 1: render a labelled synthetic dataset of tweezers and needle holders, offline, on a CPU.

    python synthetic_data_generator.py --num_images 1000 --out output
    python synthetic_data_generator.py --num_images 1000 --out output --shard 0/4   # one job of an array
    python synthetic_data_generator.py --out output --merge                         # after all shards

Interrupt it at any time and rerun the same command: it resumes where it stopped. A folder holds one dataset:
a rerun with settings that change the frames (seed, size, look, ranges, ...) is refused.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data_generation.generator import GeneratorError, run  # noqa: E402
from data_generation.scene import SceneRanges  # noqa: E402
from surgpose.cli import number  # noqa: E402


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    d = SceneRanges()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num_images", type=int, default=1000, help="frames to render")
    p.add_argument("--out", default="output", help="output folder (resumable)")
    p.add_argument("--seed", type=number(int, 0, low_open=False), default=0, help="same seed, same annotations")
    p.add_argument("--val_fraction", type=float, default=0.1, help="share of frames in the val split")
    p.add_argument("--camera", help="camera.json with width, height, fx, fy, cx, cy (default: 960x544, ~60 deg)")
    p.add_argument("--width", type=int, help="render width (intrinsics scaled to it, pixels kept square)")
    p.add_argument("--height", type=int, help="render height (intrinsics scaled to it, pixels kept square)")
    p.add_argument("--workers", type=int, default=1, help="parallel render processes")
    p.add_argument("--shard", help="i/n: render only chunks i, i+n, ... (cluster job arrays); then --merge")
    p.add_argument("--merge", action="store_true", help="only assemble COCO/YOLO datasets from the rendered frames in --out, "
                                                          "with the settings they were rendered with")
    p.add_argument("--samples", type=int, default=4, help="Cycles samples per pixel (speckle is median-filtered)")
    p.add_argument("--denoise", action="store_true",
                   help="Cycles' OpenImageDenoise (smoother metal, about +0.7 s per 960x544 frame)")
    p.add_argument("--chunk_size", type=int, default=10, help="frames per Blender scene (one render call)")
    p.add_argument("--full_scene", action="store_true", help="render a 3D work surface instead of 2D compositing")
    p.add_argument("--amodal", action="store_true", help="full-tool masks instead of the visible part")
    p.add_argument("--tools_dir", help="your own OBJ meshes with JSON sidecars instead of parametric tools")
    p.add_argument("--hands_dir", help="rigged hand (hand.obj + hand.json, default: hands/)")
    p.add_argument("--no_hands", action="store_true", help="render without hands")
    p.add_argument("--backgrounds", dest="backgrounds_dir", help="folder of real photos (default: procedural)")
    p.add_argument("--hdri", dest="hdri_dir", help="folder of .hdr/.exr maps for ambient light and reflections")
    p.add_argument("--no_effects", dest="effects", action="store_false", help="no motion blur, defocus, noise")
    p.add_argument("--jpg_quality", type=number(int, 1, 100, low_open=False), default=95)
    p.add_argument("--min_visible_px", type=number(int, 0, low_open=False), default=40,
                   help="smaller visible instruments are not labelled")
    p.add_argument("--debug", action="store_true", help="write mask/keypoint overlays to OUT/debug")
    g = p.add_argument_group("per-frame variation ranges")
    g.add_argument("--tools", type=int, nargs=2, default=[d.min_tools, d.max_tools], metavar=("MIN", "MAX"),
                   help="instruments per frame")
    g.add_argument("--camera_distance", type=float, nargs=2, default=list(d.camera_distance), metavar=("MIN", "MAX"),
                   help="metres from the field")
    g.add_argument("--max_tilt", type=float, default=d.max_tilt_deg, help="camera tilt from top-down, degrees")
    g.add_argument("--articulation", type=float, nargs=2, default=list(d.articulation), metavar=("MIN", "MAX"),
                   help="jaw/arm opening, 0 closed .. 1 wide open")
    g.add_argument("--held_probability", type=float, nargs=2, default=list(d.held_probability), metavar=("NH", "T"),
                   help="share of needle holders / tweezers in view that a hand holds")
    g.add_argument("--oblique_probability", type=float, default=d.oblique_probability,
                   help="share of frames filmed from the front and above instead of from overhead")
    g.add_argument("--distractor_probability", type=float, default=d.distractor_probability,
                   help="share of frames with unlabelled scissors among the instruments (default 0: none)")
    g.add_argument("--closeup_probability", type=float, default=d.closeup_probability,
                   help="share of overhead frames filmed closer than --camera_distance's MIN (0.55-1x it), "
                        "instruments cut off by the frame (default 0: none)")
    g.add_argument("--lights", type=int, nargs=2, default=list(d.lights), metavar=("MIN", "MAX"))
    g.add_argument("--kelvin", type=number(float, 1000, 40000, low_open=False), nargs=2, default=list(d.kelvin),
                   metavar=("MIN", "MAX"), help="light colour temperature")
    opt = p.parse_args(argv)
    if opt.no_hands and opt.hands_dir:
        p.error("--no_hands and --hands_dir: choose one")
    return opt


def main(opt: argparse.Namespace) -> None:
    kwargs = vars(opt).copy()
    ranges = SceneRanges(min_tools=kwargs.pop("tools")[0], max_tools=opt.tools[1],
                         camera_distance=tuple(kwargs.pop("camera_distance")), max_tilt_deg=kwargs.pop("max_tilt"),
                         articulation=tuple(kwargs.pop("articulation")),
                         held_probability=tuple(kwargs.pop("held_probability")),
                         oblique_probability=kwargs.pop("oblique_probability"),
                         distractor_probability=kwargs.pop("distractor_probability"),
                         closeup_probability=kwargs.pop("closeup_probability"), lights=tuple(kwargs.pop("lights")),
                         kelvin=tuple(kwargs.pop("kelvin")))
    try:
        out = run(ranges=ranges, **kwargs)
    except (GeneratorError, KeyboardInterrupt) as err:
        msg = "interrupted: rerun the same command to resume" if isinstance(err, KeyboardInterrupt) else str(err)
        sys.exit(f"error: {msg}")
    if opt.merge or not opt.shard:
        print(f"dataset ready in {out}")


if __name__ == "__main__":
    main(parse_opt())
