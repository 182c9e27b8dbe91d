"""Render chunks of frames in one Blender session. Started as a subprocess by the generator.

Each chunk is one Blender scene (a pool of instruments, each frame's posed hands and sleeves, lights) whose
per-frame state (camera, poses, articulation, lights, material jitter) is keyframed, so Cycles renders the
whole chunk in one call. Instruments and hands are rendered on a transparent film and composited in 2D. A frame is
written render -> composite -> record, the record last and atomically: a record on disk means a
complete frame. Prints `FRAME <index>` per finished frame for the parent's progress bar.

Usage: python data_generation/render_worker.py JOB.json
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_generation import blenderproc_compat  # noqa: E402  (before anything imports bpy)

import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from data_generation.annotate import BACKGROUND, OTHER, instance_record  # noqa: E402
from data_generation.backgrounds import (  # noqa: E402
    list_backgrounds, list_hdris, load_background, procedural_background)
from data_generation.composite import camera_effects, composite, despeckle, kelvin_to_rgb, white_balance  # noqa: E402
from data_generation.hand_model import HandModel, load_hand_model  # noqa: E402
from data_generation.generate_tools import load_tools_dir, make_distractor, make_tool  # noqa: E402
from data_generation.scene import FrameSpec, SceneRanges, sample_frame  # noqa: E402
from data_generation.settings import FILM, PARAMETRIC_TOOLS, GeneratorSettings, chunk_frames, frame_stem  # noqa: E402
from surgpose.camera import Intrinsics, blender_cam2world, project  # noqa: E402
from surgpose.draw import draw_instances  # noqa: E402
from surgpose.files import write_image, write_json  # noqa: E402
from surgpose.records import split_for  # noqa: E402
from surgpose.schema import CLASSES, Layout  # noqa: E402

PARKED = np.array([0.0, 0.0, 1000.0])  # behind the camera: where unused objects wait
GLOVE_COLORS = {  # linear RGB base colours of nitrile/latex gloves, and how often a chunk wears them
    "navy": ((0.015, 0.025, 0.14), 0.2), "blue": ((0.09, 0.25, 0.65), 0.2), "light_blue": ((0.12, 0.40, 0.78), 0.1),
    "purple": ((0.22, 0.11, 0.52), 0.12), "cream": ((0.72, 0.55, 0.36), 0.28), "white": ((0.80, 0.80, 0.78), 0.05),
    "brown": ((0.32, 0.19, 0.10), 0.05)}
STAINS = {  # what a glove carries now and then: share of chunks, linear RGB, and the noise level above which
    # it shows (0.5: half the glove; the noise mostly lies in 0.3-0.7)
    "blood": (0.25, (0.12, 0.008, 0.006), (0.56, 0.68)), "powder": (0.08, (0.78, 0.76, 0.72), (0.66, 0.74))}
SLEEVE_COLORS = {  # linear RGB of what the arms wear past the glove: gowns, a lab coat, sweaters, bare skin
    "gown_blue": (0.10, 0.24, 0.45), "gown_green": (0.10, 0.30, 0.24), "gown_navy": (0.025, 0.04, 0.13),
    "coat_white": (0.78, 0.78, 0.75), "grey": (0.25, 0.25, 0.25), "brown": (0.20, 0.11, 0.06),
    "skin_light": (0.60, 0.38, 0.28), "skin_dark": (0.20, 0.10, 0.06)}


def tool_pool(rng: np.random.Generator, settings: GeneratorSettings) -> list:
    """Instruments for one chunk: fresh parametric ones of both classes, or the user's meshes."""
    if settings.tools_dir:
        return load_tools_dir(settings.tools_dir)
    return [make_tool(CLASSES[i % len(CLASSES)], rng) for i in range(PARAMETRIC_TOOLS)]


def distractor_pool(seed: list[int], ranges: SceneRanges) -> list:
    """Unlabelled look-alikes (scissors) for one chunk, from their own random stream; none when the
    frames never show one, so such datasets match those made before distractors existed."""
    return [make_distractor(np.random.default_rng([*seed, 2]))] if ranges.distractor_probability > 0 else []


def mesh_object(bproc, name: str, vertices: np.ndarray, faces: np.ndarray, materials: list,
                face_material: np.ndarray | None = None):
    """A smooth-shaded Blender mesh object from arrays."""
    import bpy

    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(vertices.tolist(), [], faces.tolist())
    mesh.update()
    for poly in mesh.polygons:
        poly.use_smooth = True
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    entity = bproc.types.MeshObject(obj)
    for mat in materials:
        entity.add_material(mat)
    if face_material is not None:
        mesh.polygons.foreach_set("material_index", face_material.astype(np.int32))
    return entity


def key_input(material, socket: str, value, frame: int) -> None:
    """Keyframe one Principled BSDF input of a material."""
    node = material.get_the_one_node_with_type("BsdfPrincipled")
    node.inputs[socket].default_value = value
    node.inputs[socket].keyframe_insert("default_value", frame=frame)


def make_materials(bproc) -> dict:
    mats = {}
    for name in ("steel", "gold", "glove", "sleeve"):
        mats[name] = bproc.material.create(name)
    mats["steel"].set_principled_shader_value("Metallic", 1.0)
    mats["gold"].set_principled_shader_value("Metallic", 1.0)
    mats["gold"].set_principled_shader_value("Base Color", [0.83, 0.62, 0.25, 1.0])
    mats["gold"].set_principled_shader_value("Roughness", 0.3)
    mats["glove"].set_principled_shader_value("Metallic", 0.0)
    mats["sleeve"].set_principled_shader_value("Metallic", 0.0)
    glove_nodes(mats["glove"])
    folds(mats["sleeve"], scale=35.0)
    return mats


def folds(material, scale: float):
    """Fine folds and creases on a cloth or glove surface: a noise bump on the BSDF's normal (object space, so
    they stay on the hand as it moves). Returns the Bump node (its Strength is keyframed)."""
    tree = material.blender_obj.node_tree
    bsdf = material.get_the_one_node_with_type("BsdfPrincipled")
    coords = tree.nodes.new("ShaderNodeTexCoord")
    noise = tree.nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = scale
    noise.inputs["Detail"].default_value = 4.0
    tree.links.new(coords.outputs["Object"], noise.inputs["Vector"])
    bump = tree.nodes.new("ShaderNodeBump")
    bump.inputs["Distance"].default_value = 0.0005
    bump.inputs["Strength"].default_value = 0.15
    tree.links.new(noise.outputs["Fac"], bump.inputs["Height"])
    tree.links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
    return bump


def glove_nodes(material) -> None:
    """A glove: its colour, with folds (bump), a soft sheen (coat), and a stain (blood, powder) where a coarse
    noise passes a threshold: the nodes `jitter_glove` keys per frame are named glove_color, stain_color,
    stain_from (the threshold; above 1: no stain) and folds."""
    tree = material.blender_obj.node_tree
    bsdf = material.get_the_one_node_with_type("BsdfPrincipled")
    folds(material, scale=140.0).name = "folds"
    coords = tree.nodes.new("ShaderNodeTexCoord")
    blotch = tree.nodes.new("ShaderNodeTexNoise")
    blotch.inputs["Scale"].default_value = 25.0
    blotch.inputs["Detail"].default_value = 6.0
    tree.links.new(coords.outputs["Object"], blotch.inputs["Vector"])
    mask = tree.nodes.new("ShaderNodeMapRange")
    mask.name = "stain_from"
    mask.inputs["From Min"].default_value = 2.0
    mask.inputs["From Max"].default_value = 2.05
    tree.links.new(blotch.outputs["Fac"], mask.inputs["Value"])
    mix = tree.nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    tree.links.new(mask.outputs["Result"], mix.inputs["Factor"])
    for name, socket in (("glove_color", "A_Color"), ("stain_color", "B_Color")):
        rgb = tree.nodes.new("ShaderNodeRGB")
        rgb.name = name
        tree.links.new(rgb.outputs["Color"], _socket(mix, socket))
    tree.links.new(_socket(mix, "Result_Color", out=True), bsdf.inputs["Base Color"])
    bsdf.inputs["Coat Weight"].default_value = 0.15
    bsdf.inputs["Coat Roughness"].default_value = 0.35


def _socket(node, identifier: str, out: bool = False):
    """A node socket by its identifier (a Mix node has three inputs named A, one per data type)."""
    return next(sock for sock in (node.outputs if out else node.inputs) if sock.identifier == identifier)


def jitter_materials(mats: dict, rng: np.random.Generator, frame: int) -> None:
    """Metal roughness/anisotropy/colour tone, per frame."""
    tone = np.array([0.62, 0.63, 0.65]) * rng.uniform(0.75, 1.1) + rng.normal(0, 0.02, 3)
    key_input(mats["steel"], "Base Color", [*np.clip(tone, 0, 1), 1.0], frame)
    key_input(mats["steel"], "Roughness", float(rng.uniform(0.12, 0.45)), frame)
    key_input(mats["steel"], "Anisotropic", float(rng.uniform(0.0, 0.7)), frame)


def pick_glove(rng: np.random.Generator) -> tuple[str, str | None]:
    """A chunk's glove colour (weighted as `GLOVE_COLORS` says) and stain (or None)."""
    names = list(GLOVE_COLORS)
    weights = np.array([GLOVE_COLORS[n][1] for n in names])
    glove = str(rng.choice(names, p=weights / weights.sum()))
    stain = next((name for name, (share, _, _) in STAINS.items() if rng.random() < share), None)
    return glove, stain


def jitter_glove(material, rng: np.random.Generator, frame: int, glove: str, stain: str | None) -> None:
    """Glove colour, sheen, folds and how much of it the stain covers, per frame."""
    nodes = material.blender_obj.node_tree.nodes
    # relative per-channel jitter: an absolute one tipped dark navy into purple
    base = np.array(GLOVE_COLORS[glove][0]) * rng.uniform(0.85, 1.15) * np.exp(rng.normal(0, 0.08, 3))
    color = nodes["glove_color"].outputs["Color"]
    color.default_value = [*np.clip(base, 0, 1), 1.0]
    color.keyframe_insert("default_value", frame=frame)
    key_input(material, "Roughness", float(rng.uniform(0.3, 0.6)), frame)
    key_input(material, "Coat Weight", float(rng.uniform(0.0, 0.4)), frame)
    folds_strength = nodes["folds"].inputs["Strength"]
    folds_strength.default_value = float(rng.uniform(0.05, 0.35))
    folds_strength.keyframe_insert("default_value", frame=frame)
    start = float(rng.uniform(*STAINS[stain][2])) if stain else 2.0   # noise above it is stained
    for socket, value in (("From Min", start), ("From Max", start + 0.03)):
        threshold = nodes["stain_from"].inputs[socket]
        threshold.default_value = value
        threshold.keyframe_insert("default_value", frame=frame)
    if stain:
        rgb = nodes["stain_color"].outputs["Color"]
        rgb.default_value = [*np.clip(np.array(STAINS[stain][1]) * rng.uniform(0.7, 1.3), 0, 1), 1.0]
        rgb.keyframe_insert("default_value", frame=frame)


def jitter_sleeve(mats: dict, rng: np.random.Generator, frame: int, sleeve: str) -> None:
    """Sleeve colour and sheen per frame: cloth is rough, bare skin a little glossier."""
    base = np.array(SLEEVE_COLORS[sleeve]) * rng.uniform(0.8, 1.2) * np.exp(rng.normal(0, 0.08, 3))
    key_input(mats["sleeve"], "Base Color", [*np.clip(base, 0, 1), 1.0], frame)
    rough = rng.uniform(0.4, 0.6) if sleeve.startswith("skin") else rng.uniform(0.75, 1.0)
    key_input(mats["sleeve"], "Roughness", float(rough), frame)


def set_pose(entity, matrix: np.ndarray, frame: int) -> None:
    entity.set_location(matrix[:3, 3], frame=frame)
    entity.set_rotation_mat(matrix[:3, :3], frame=frame)


def light_rotation(location: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation that points a Blender light (emitting along its -z) from `location` to `target`."""
    from mathutils import Vector

    return np.array(Vector(target - location).to_track_quat("-Z", "Y").to_matrix())


class ChunkScene:
    """The Blender objects of one chunk and how a `FrameSpec` is keyframed onto them."""

    def __init__(self, bproc, tools: list, mats: dict, max_lights: int, distractors: list = (),
                 hand: HandModel | None = None, specs: list[FrameSpec] = ()):
        self.bproc, self.tools, self.mats, self.distractors = bproc, tools, mats, distractors
        self.tool_parts = self._part_objects("tool", tools)
        self.distractor_parts = self._part_objects("distractor", distractors)
        # every frame's hands are meshes of their own, posed in the world, shown at their frame only
        self.hand_objects = {spec.index: [self._hand_object(hand, h, f"hand{spec.index}_{k}")
                                          for k, h in enumerate(spec.hands)] for spec in specs}
        # one light per slot, its type keyframed
        self.lights = [bproc.types.Light(name=f"light{slot}") for slot in range(max_lights)]
        # enable_segmentation_output() numbers the objects that exist when it is called; these are new
        from blenderproc.python.utility.BlenderUtility import get_all_blender_mesh_objects

        for index, obj in enumerate(get_all_blender_mesh_objects()):
            obj.pass_index = index + 1
        for light in self.lights:
            light.blender_obj.data.type = "AREA"
            light.blender_obj.data.size = 0.3  # kept by the light data for the frames it is an AREA light
            light.blender_obj.data.type = "POINT"
            light.set_radius(0.02)

    def _hand_object(self, hand: HandModel, placed, name: str):
        """One posed hand and its sleeve as one smooth object (a subdivision level when rendered), glove and
        sleeve materials on their faces."""
        sleeve_vertices, sleeve_quads = placed.sleeve
        vertices = np.vstack([placed.posed.vertices, sleeve_vertices])
        faces = np.vstack([placed.posed.wound(hand.faces), sleeve_quads + len(placed.posed.vertices)])
        material = np.concatenate([np.where(hand.glove_faces, 0, 1), np.ones(len(sleeve_quads), int)])
        entity = mesh_object(self.bproc, name, vertices, faces, [self.mats["glove"], self.mats["sleeve"]], material)
        modifier = entity.blender_obj.modifiers.new("smooth", "SUBSURF")
        modifier.levels, modifier.render_levels = 0, 1
        return entity

    def _part_objects(self, prefix: str, models: list) -> list[list]:
        """One Blender object per rigid part, named `<prefix><model>_part<part>`."""
        return [[mesh_object(self.bproc, f"{prefix}{t}_part{p}", part.vertices, part.faces,
                             [self.mats[m] for m in model.materials], part.face_material)
                 for p, part in enumerate(model.parts)] for t, model in enumerate(models)]

    def owner_of(self, name: str) -> int | None:
        """Owner code of a Blender object name: tool pool index, OTHER (hands and distractors, which
        hide what lies behind them) or None (not an occluder)."""
        if name.startswith("tool"):
            return int(name[4:name.index("_part")])
        return OTHER if name.startswith(("hand", "distractor")) else None

    def keyframe(self, spec: FrameSpec, frame: int, rng: np.random.Generator) -> None:
        bproc = self.bproc
        bproc.camera.add_camera_pose(blender_cam2world(spec.cam2world), frame=frame)
        for models, objects, placements in ((self.tools, self.tool_parts, spec.tools),
                                            (self.distractors, self.distractor_parts, spec.distractors)):
            placed = {p.tool: p for p in placements}
            for t, parts in enumerate(objects):
                placement = placed.get(t)
                transforms = models[t].part_transforms(placement.opening) if placement else None
                for p, entity in enumerate(parts):
                    set_pose(entity, placement.pose @ transforms[p] if placement else _parked(), frame)
        for index, entities in self.hand_objects.items():
            for entity in entities:
                set_pose(entity, np.eye(4) if index == spec.index else _parked(), frame)
        for slot, light in enumerate(self.lights):
            # an unused slot is left out of the render: even at zero energy a light costs samples
            light.blender_obj.hide_render = slot >= len(spec.lights)
            light.blender_obj.keyframe_insert("hide_render", frame=frame)
            if slot >= len(spec.lights):
                continue
            spec_light = spec.lights[slot]
            light.set_type(spec_light.kind, frame=frame)
            light.set_location(spec_light.location, frame=frame)
            light.set_rotation_mat(light_rotation(spec_light.location, spec_light.target), frame=frame)
            light.set_energy(spec_light.energy, frame=frame)
            light.set_color(kelvin_to_rgb(spec_light.kelvin).tolist(), frame=frame)
            if spec_light.kind == "SPOT":
                light.blender_obj.data.spot_size = np.radians(spec_light.spot_size_deg)
                light.blender_obj.data.keyframe_insert("spot_size", frame=frame)
        jitter_materials(self.mats, rng, frame)


def _parked() -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = PARKED
    return m


def configure_renderer(bproc, settings: GeneratorSettings, intr: Intrinsics, threads: int) -> None:
    import bpy

    bproc.camera.set_resolution(intr.width, intr.height)
    bproc.camera.set_intrinsics_from_K_matrix(intr.K, intr.width, intr.height, clip_start=0.01, clip_end=100)
    bproc.renderer.set_max_amount_of_samples(settings.samples)
    bproc.renderer.set_noise_threshold(0.05)
    # gloves are matte and lit directly; metal needs one glossy bounce to mirror its surroundings
    # (measured: 2x faster than 1 diffuse / 2 glossy bounces with hands in view)
    bproc.renderer.set_light_bounces(diffuse_bounces=0, glossy_bounces=1, max_bounces=2, transmission_bounces=0,
                                     transparent_max_bounces=2, volume_bounces=0)
    bpy.context.scene.render.use_persistent_data = True  # keep the BVH between the frames of a chunk
    bproc.renderer.set_cpu_threads(threads)
    # sRGB like a camera, as `composite` assumes (settings.FILM says why)
    bproc.renderer.set_output_format(enable_transparency=not settings.full_scene, view_transform=FILM["view_transform"])
    bproc.renderer.set_denoiser(None)  # BlenderProc's compositor denoiser costs ~3 s a frame
    scene = bpy.context.scene
    scene.view_settings.exposure = FILM["exposure_ev"]
    if settings.denoise:  # Cycles' own OpenImageDenoise, enabled on the scene and the view layer
        scene.cycles.use_denoising = True
        scene.cycles.denoiser = "OPENIMAGEDENOISE"
        scene.cycles.denoising_prefilter = "FAST"
        bpy.context.view_layer.cycles.use_denoising = True
    bproc.renderer.enable_segmentation_output(map_by=["instance", "name"])
    bproc.renderer.enable_depth_output(activate_antialiasing=False)


def set_world(bproc, settings: GeneratorSettings, rng: np.random.Generator) -> None:
    """Ambient light, and what the metal mirrors: a random HDRI map when given (lights and reflections
    only; the film stays transparent), else a procedural operating room."""
    if settings.hdri_dir:
        import bpy

        bpy.context.scene.world.use_nodes = True  # clean_up() leaves a world without a node tree
        hdris = list_hdris(settings.hdri_dir)
        bproc.world.set_world_background_hdr_img(str(hdris[rng.integers(len(hdris))]),
                                                 strength=float(rng.uniform(0.1, 0.5)),
                                                 rotation_euler=[0.0, 0.0, float(rng.uniform(0, 2 * np.pi))])
    else:
        room_world(rng)


ROOM_FLOORS = {  # linear RGB of what lies around the field, as polished steel mirrors it
    "blue drape": (0.03, 0.10, 0.30), "green drape": (0.05, 0.22, 0.15), "teal drape": (0.22, 0.42, 0.38),
    "white sheet": (0.65, 0.65, 0.62), "grey table": (0.25, 0.25, 0.25), "skin": (0.50, 0.28, 0.18)}


def room_world(rng: np.random.Generator) -> None:
    """A room as polished steel sees it: a bright ceiling, grey walls at the horizon and a drape- or
    sheet-coloured floor, all blotched by noise. Steel on a uniform world renders as flat grey paint;
    real instruments show bright streaks and dark bands that slide along them with the view."""
    import bpy

    world = bpy.context.scene.world
    world.use_nodes = True  # clean_up() leaves a world without a node tree
    world.cycles.sampling_method = "NONE"  # no importance map: as sharp on the metal, 0.3 s a frame cheaper
    nodes, links = world.node_tree.nodes, world.node_tree.links
    nodes.clear()
    direction = nodes.new("ShaderNodeTexCoord").outputs["Generated"]  # in a world: the view direction
    up = nodes.new("ShaderNodeSeparateXYZ")
    links.new(direction, up.inputs[0])
    height = nodes.new("ShaderNodeMapRange")  # z in [-1, 1] -> ramp position in [0, 1]
    height.inputs["From Min"].default_value = -1.0
    links.new(up.outputs["Z"], height.inputs["Value"])
    ramp = nodes.new("ShaderNodeValToRGB")
    floor = np.array(ROOM_FLOORS[str(rng.choice(list(ROOM_FLOORS)))]) * rng.uniform(0.4, 1.0)
    wall = rng.uniform(0.2, 0.5) * rng.uniform(0.9, 1.1, 3)
    ceiling = rng.uniform(0.6, 1.2) * np.array([1.0, 1.0, rng.uniform(0.9, 1.1)])
    stops = [(0.0, floor), (rng.uniform(0.42, 0.5), floor), (rng.uniform(0.52, 0.6), wall), (1.0, ceiling)]
    elements = ramp.color_ramp.elements
    while len(elements) < len(stops):
        elements.new(0.5)
    for element, (position, colour) in zip(elements, stops):
        element.position, element.color = float(position), (*np.clip(colour, 0, None), 1.0)
    links.new(height.outputs["Result"], ramp.inputs["Fac"])
    noise = nodes.new("ShaderNodeTexNoise")
    noise.noise_dimensions = "4D"  # W picks a fresh pattern per chunk
    noise.inputs["W"].default_value = float(rng.uniform(0, 100))
    noise.inputs["Scale"].default_value = float(rng.uniform(1.5, 6.0))
    noise.inputs["Detail"].default_value = 3.0
    links.new(direction, noise.inputs["Vector"])
    blotch = nodes.new("ShaderNodeMapRange")  # noise ~[0.3, 0.7] -> light strength
    contrast = rng.uniform(0.5, 1.5)
    blotch.inputs["From Min"].default_value, blotch.inputs["From Max"].default_value = 0.3, 0.7
    blotch.inputs["To Min"].default_value = max(0.05, 1.0 - contrast)
    blotch.inputs["To Max"].default_value = 1.0 + contrast
    links.new(noise.outputs["Fac"], blotch.inputs["Value"])
    background = nodes.new("ShaderNodeBackground")
    links.new(ramp.outputs["Color"], background.inputs["Color"])
    links.new(blotch.outputs["Result"], background.inputs["Strength"])
    links.new(background.outputs["Background"], nodes.new("ShaderNodeOutputWorld").inputs["Surface"])


def add_ground(bproc, texture: np.ndarray, size: float) -> None:
    """--full_scene: a textured work surface at z = 0 (Cycles renders its shadows)."""
    import bpy

    path = Path(bproc.python.utility.Utility.Utility.temp_dir) / "ground.png"
    cv2.imwrite(str(path), texture)
    plane = bproc.object.create_primitive("PLANE", scale=[size / 2, size / 2, 1])
    plane.set_name("ground")
    mat = bproc.material.create("ground")
    node_tree = mat.blender_obj.node_tree
    tex = node_tree.nodes.new("ShaderNodeTexImage")
    tex.image = bpy.data.images.load(str(path))
    node_tree.links.new(tex.outputs["Color"], mat.get_the_one_node_with_type("BsdfPrincipled").inputs["Base Color"])
    mat.set_principled_shader_value("Roughness", 0.8)
    plane.add_material(mat)


def background_image(settings: GeneratorSettings, intr: Intrinsics, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if settings.backgrounds_dir:
        paths = list_backgrounds(settings.backgrounds_dir)
        return load_background(paths[rng.integers(len(paths))], intr.width, intr.height, rng)
    return procedural_background(intr.width, intr.height, rng)


def shadow_offset(spec: FrameSpec, tools: list, intr: Intrinsics) -> tuple[tuple[float, float], float]:
    """Image offset of the main light's shadow on the field (z = 0) for the instruments' mean height,
    and its blur, so the 2D shadow agrees with the 3D light."""
    if not spec.tools:
        return (0.0, 0.0), 1.0
    centres = np.array([p.pose[:3, 3] for p in spec.tools])
    centre = centres.mean(0)
    light = spec.lights[0].location
    t = light[2] / max(light[2] - centre[2], 1e-6)
    ground = light + t * (centre - light)
    ground[2] = 0.0
    uv, _ = project(np.stack([centre, ground]), intr.K, spec.world_to_cam)
    offset = uv[1] - uv[0]
    if not np.isfinite(offset).all():
        return (0.0, 0.0), 1.0
    return (float(offset[0]), float(offset[1])), float(3 + 0.6 * np.linalg.norm(offset))


def finish_frame(spec: FrameSpec, data: dict, f: int, scene: ChunkScene, settings: GeneratorSettings,
                 intr: Intrinsics, out: Path) -> dict:
    """Labels, composite and files for one rendered frame; returns seconds spent per step."""
    t0 = time.perf_counter()
    stem = frame_stem(spec.index)
    rgba = data["colors"][f]
    name_of = {int(a["idx"]): a["name"] for a in data["instance_attribute_maps"][f]}
    inst = data["instance_segmaps"][f]
    owner_map = np.full(inst.shape, BACKGROUND, dtype=np.int32)
    for idx, name in name_of.items():
        owner = scene.owner_of(name)
        if owner is not None:
            owner_map[inst == idx] = owner
    depth = data["depth"][f]
    w2c = spec.world_to_cam
    instances = []
    for placement in spec.tools:
        tool = scene.tools[placement.tool]
        transforms = tool.part_transforms(placement.opening)
        tris = np.concatenate([_world(part.vertices, placement.pose @ T)[part.faces]
                               for part, T in zip(tool.parts, transforms)])
        rec = instance_record(tool.class_name, _world(tool.keypoints(placement.opening), placement.pose), tris,
                              placement.tool, owner_map, depth, intr, w2c, placement.opening,
                              settings.min_visible_px)
        if rec is not None:
            instances.append(rec)

    t1 = time.perf_counter()
    bgra = cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA) if rgba.shape[2] == 4 else cv2.cvtColor(rgba, cv2.COLOR_RGB2BGRA)
    if not settings.denoise:
        bgra = despeckle(bgra)
    fx_rng = np.random.default_rng(spec.background_seed)
    if settings.full_scene:
        image = np.ascontiguousarray(bgra[..., :3])
    else:
        offset, blur = shadow_offset(spec, scene.tools, intr)
        image = composite(bgra, background_image(settings, intr, spec.background_seed), fx_rng,
                          light_rgb=kelvin_to_rgb(spec.lights[0].kelvin), shadow_offset=offset, shadow_blur=blur)
    image = white_balance(image, kelvin_to_rgb(spec.lights[0].kelvin), float(fx_rng.uniform(0.4, 1.0)))
    if settings.effects:
        image = camera_effects(image, fx_rng, **spec.effects)

    t2 = time.perf_counter()
    split = split_for(spec.index, settings.num_images, settings.seed, settings.val_fraction)
    image_name = f"{stem}.jpg"
    write_image(out / Layout.RENDERS / f"{stem}.png", bgra)
    write_image(out / Layout.COMPOSITED / split / image_name, image, settings.jpg_quality)
    record = {
        "image": image_name, "render": f"{stem}.png", "width": intr.width, "height": intr.height,
        "index": spec.index,
        "camera": {"K": intr.K.tolist(), "world_to_cam": w2c.tolist()},
        "instances": instances,
        "meta": {"lights": [{"kind": l.kind, "kelvin": round(l.kelvin), "energy": round(l.energy, 2)}
                            for l in spec.lights],
                 "effects": spec.effects, "distractors": len(spec.distractors),
                 "hands": [{"side": h.side, "grasp": h.kind, "holds": None if h.holds is None else
                            scene.tools[spec.tools[h.holds].tool].class_name} for h in spec.hands],
                 "full_scene": settings.full_scene},
    }
    if settings.debug:
        write_image(out / Layout.DEBUG / image_name, draw_instances(image.copy(), instances))
    write_json(out / Layout.KEYPOINTS / f"{stem}.json", record)
    return {"label": t1 - t0, "composite": t2 - t1, "write": time.perf_counter() - t2}


def _world(points: np.ndarray, pose: np.ndarray) -> np.ndarray:
    return points @ pose[:3, :3].T + pose[:3, 3]


def render_chunk(bproc, chunk: int, settings: GeneratorSettings, intr: Intrinsics, hand: HandModel | None,
                 out: Path) -> None:
    seed = [settings.seed, chunk]
    rng = np.random.default_rng(seed)
    random.seed(hash(tuple(seed)))  # BlenderProc draws from the global generators: seed both
    np.random.seed(np.random.SeedSequence(seed).generate_state(1))
    bproc.clean_up(clean_up_camera=False)
    bproc.utility.reset_keyframes()
    tools = tool_pool(rng, settings)
    mats = make_materials(bproc)
    ranges = settings.ranges
    distractors = distractor_pool(seed, ranges)
    surgeon = hand.scaled(float(rng.uniform(*ranges.hand_scale))) if hand else None   # one surgeon per chunk
    grasps: dict = {}
    t_scene = time.perf_counter()
    with threadpool_limits(1):   # many small solves: BLAS threads only add overhead beside Blender's
        specs = [sample_frame(rng, index, intr, tools, surgeon, ranges, distractors, grasps)
                 for index in chunk_frames(chunk, settings)]
    scene_each = (time.perf_counter() - t_scene) / len(specs)
    scene = ChunkScene(bproc, tools, mats, ranges.lights[1], distractors, surgeon, specs)
    set_world(bproc, settings, np.random.default_rng([*seed, 1]))  # own stream: geometry never depends on it
    glove, stain = pick_glove(rng)
    if settings.full_scene:
        add_ground(bproc, background_image(settings, intr, specs[0].background_seed), 1.0)
    sleeve_rng = np.random.default_rng([*seed, 3])  # own stream, as the world's: the scenes stay as they were
    sleeve = str(sleeve_rng.choice(list(SLEEVE_COLORS)))
    for f, spec in enumerate(specs):
        scene.keyframe(spec, f, rng)
        jitter_glove(mats["glove"], rng, f, glove, stain)
        jitter_sleeve(mats, sleeve_rng, f, sleeve)
    t0 = time.perf_counter()
    data = bproc.renderer.render(verbose=False)
    render_each = (time.perf_counter() - t0) / len(specs)
    with open(out / "logs" / f"timings_{os.getpid()}.jsonl", "a") as timings:
        for f, spec in enumerate(specs):
            steps = finish_frame(spec, data, f, scene, settings, intr, out)
            timings.write(json.dumps({"index": spec.index, "scene": scene_each, "render": render_each, **steps}) + "\n")
            print(f"FRAME {spec.index}", flush=True)


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    settings = GeneratorSettings.from_json(job["settings"])
    out = Path(settings.out)
    bproc = blenderproc_compat.load(job.get("temp_dir"))
    bproc.init()
    intr = settings.intrinsics()
    configure_renderer(bproc, settings, intr, job["threads"])
    hand = load_hand_model(settings.hands_dir) if settings.hands_dir else None
    for chunk in job["chunks"]:
        render_chunk(bproc, chunk, settings, intr, hand, out)
    return 0


if __name__ == "__main__":
    try:
        code = main(sys.argv[1])
    except Exception:  # the parent shows this and stops; finished frames stay on disk
        traceback.print_exc()
        code = 1
    blenderproc_compat.exit_hard(code)
