"""Phase 1 driver: validate input, fan chunks out to render workers, resume, then assemble the datasets."""
from __future__ import annotations

import dataclasses
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from tqdm import tqdm

from data_generation.scene import SceneRanges
from data_generation.settings import (IDENTITY_KEYS, PARAMETRIC_TOOLS, GeneratorSettings, chunk_frames, frame_done,
                                      num_chunks, ranges_json)
from surgpose.files import write_json
from surgpose.schema import Layout

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "data_generation" / "render_worker.py"
DEFAULT_HANDS = ROOT / "hands"
CONFIG_NAME = "generator_config.json"

#: Settings that name a file or folder besides `out` and `hands_dir`.
INPUT_PATHS = ("tools_dir", "backgrounds_dir", "hdri_dir", "camera")


class GeneratorError(ValueError):
    """Bad input or a failed render; the message is one line meant for the user."""


def parse_shard(shard: str | None) -> tuple[int, int] | None:
    """'i/n' (0-based i) -> (i, n)."""
    if shard is None:
        return None
    try:
        i, n = (int(x) for x in shard.split("/"))
    except ValueError:
        raise GeneratorError(f"--shard must look like i/n (e.g. 0/4), got {shard!r}") from None
    if not 0 <= i < n:
        raise GeneratorError(f"--shard {shard}: need 0 <= i < n")
    return i, n


def validate(settings: GeneratorSettings, workers: int) -> None:
    """Check every input before anything is written, with one-line messages."""
    from data_generation.backgrounds import list_backgrounds, list_hdris, unreadable
    from data_generation.hand_model import load_hand_model
    from data_generation.generate_tools import load_tools_dir

    if settings.num_images < 2:   # one frame would go to val, leaving nothing to train on
        raise GeneratorError(f"--num_images must be at least 2 (a train and a val frame), got {settings.num_images}")
    if not 0 < settings.val_fraction <= 0.5:   # one val frame per round(1/F): F above 0.5 leaves no train frame
        raise GeneratorError(f"--val_fraction must be in (0, 0.5] (Ultralytics needs a val split), "
                             f"got {settings.val_fraction}")
    if workers < 1 or settings.chunk_size < 1 or settings.samples < 1:
        raise GeneratorError("--workers, --chunk_size and --samples must be at least 1")
    validate_ranges(settings.ranges)
    for name in ("width", "height"):
        value = getattr(settings, name)
        if value is not None and not 16 <= value <= 8192:
            raise GeneratorError(f"--{name} must be between 16 and 8192 pixels, got {value}")
    try:
        settings.intrinsics()
        photos = list_backgrounds(settings.backgrounds_dir) if settings.backgrounds_dir else []
        maps = list_hdris(settings.hdri_dir) if settings.hdri_dir else []
        for flag, files in (("--backgrounds", photos), ("--hdri", maps)):
            if bad := unreadable(files):
                raise GeneratorError(f"{flag}: {len(bad)} of {len(files)} files are not the images their names say, "
                                     f"e.g. {bad[0]}")
        pool = len(load_tools_dir(settings.tools_dir)) if settings.tools_dir else PARAMETRIC_TOOLS
        if settings.ranges.min_tools > pool:   # a MAX above it is only never reached
            raise GeneratorError(f"--tools MIN {settings.ranges.min_tools} is more than the {pool} instruments "
                                 "a frame draws from")
        if settings.hands_dir:
            load_hand_model(settings.hands_dir)
    except (ValueError, OSError) as err:
        raise GeneratorError(str(err)) from None
    out = Path(settings.out)
    for flag, folder in (("--tools_dir", settings.tools_dir), ("--hands_dir", settings.hands_dir),
                         ("--backgrounds", settings.backgrounds_dir), ("--hdri", settings.hdri_dir)):
        if folder and out.resolve().is_relative_to(Path(folder).resolve()):
            raise GeneratorError(f"--out {out} lies inside {flag} {folder}: the frames would become part of that "
                                 "input (and change it under a resumed run); choose another --out")
    if out.exists() and not out.is_dir():
        raise GeneratorError(f"--out {out} is a file; give a folder for the dataset")
    check_writable(out)


def check_writable(out: Path) -> None:
    """Make --out and write a file in it; the file's name is this run's own, as shards start at the same time."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise GeneratorError(f"--out {out}: not writable ({err.strerror or err})") from None


def validate_ranges(r: SceneRanges) -> None:
    """The scene ranges of the command line, each a one-line error (numpy's own would come from a worker)."""
    pairs = {"--tools": (r.min_tools, r.max_tools), "--camera_distance": r.camera_distance,
             "--articulation": r.articulation, "--lights": r.lights, "--kelvin": r.kelvin}
    for flag, (low, high) in pairs.items():
        if low > high:
            raise GeneratorError(f"{flag} MIN MAX: MIN {low} is above MAX {high}")
    checks = [(r.min_tools >= 0 and r.max_tools >= 1, "--tools: MAX must be at least 1"),
              (r.lights[0] >= 1, "--lights: MIN must be at least 1 (the scene's main light)"),
              (r.camera_distance[0] > 0, "--camera_distance must be above 0 m"),
              (0 <= r.max_tilt_deg <= 80, "--max_tilt must be within 0..80 degrees"),
              (0 <= r.articulation[0] and r.articulation[1] <= 1, "--articulation must be within 0..1"),
              (r.kelvin[0] > 0, "--kelvin must be above 0"),
              (all(0 <= p <= 1 for p in r.held_probability), "--held_probability must be within 0..1"),
              (0 <= r.oblique_probability <= 1, "--oblique_probability must be within 0..1"),
              (0 <= r.distractor_probability <= 1, "--distractor_probability must be within 0..1"),
              (0 <= r.closeup_probability <= 1, "--closeup_probability must be within 0..1")]
    for ok, message in checks:
        if not ok:
            raise GeneratorError(message)


def check_resume(settings: GeneratorSettings) -> None:
    """A rerun resumes only the dataset it started; other settings need another --out."""
    path = Path(settings.out) / CONFIG_NAME
    ident = settings.dataset_identity()
    if path.is_file():
        recorded = read_record(path)
        # identity keys added since that folder was started: its full settings were recorded beside it
        old = {**{k: v for k, v in recorded.get("settings", {}).items() if k in IDENTITY_KEYS},
               **recorded.get("identity", {})}
        if isinstance(old.get("ranges"), dict):  # a range added since then: its default is the old behaviour
            old["ranges"] = {**ranges_json(SceneRanges()), **old["ranges"]}
        diff = []
        for k in ident:
            then, now = old.get(k), ident[k]
            if k == "inputs" and then is None and now:
                diff.append("inputs: what the input folders held was not recorded (the folder predates that), so "
                            "a change in them cannot be ruled out")
            elif isinstance(then, dict) and isinstance(now, dict):  # name the range, not just "ranges"
                diff += [f"{k}.{sub}: {then.get(sub)} recorded, {now[sub]} now" for sub in now
                         if then.get(sub) != now[sub]]
            elif then != now:
                diff.append(f"{k}: {then} recorded, {now} now")
        if diff:
            raise GeneratorError(f"{settings.out} holds a dataset made with other settings ({'; '.join(diff)}); "
                                 "rerun with the same settings to resume, or choose another --out")
    else:
        write_json(path, {"identity": ident, "settings": settings.to_json()}, indent=2)


def invalidate_datasets(out: Path) -> None:
    """While frames are missing, nothing may look like a finished dataset."""
    for marker in (out / Layout.YOLO_POSE / "data.yaml", out / Layout.YOLO_SEG / "data.yaml",
                   *(out / Layout.COCO).glob("*.json")):
        marker.unlink(missing_ok=True)


def shard_chunks(settings: GeneratorSettings, shard: tuple[int, int] | None) -> range:
    """The chunks a run renders: all of them, or shard (i, n)'s chunks i, i+n, ..."""
    return range(num_chunks(settings)) if shard is None else range(shard[0], num_chunks(settings), shard[1])


def pending_chunks(settings: GeneratorSettings, shard: tuple[int, int] | None) -> list[int]:
    out = Path(settings.out)
    return [c for c in shard_chunks(settings, shard) if not all(frame_done(out, i) for i in chunk_frames(c, settings))]


def usable_cpus() -> int:
    """CPUs this process may run on (a cluster job's allocation, not the whole node)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def render(settings: GeneratorSettings, chunks: list[int], workers: int, frames_total: int,
           frames_done: int, run_name: str = "run") -> None:
    """Render `chunks` in `workers` subprocesses with one progress bar; stop all on the first failure.

    Job files and Blender's scratch space go to a folder of this run's own under `.tmp/`, and worker logs
    are named after `run_name`, so shards rendering into one folder at the same time never meet."""
    out = Path(settings.out)
    workers = min(workers, len(chunks))
    threads = max(1, usable_cpus() // workers)
    log_dir = out / "logs"
    log_dir.mkdir(exist_ok=True)
    (out / ".tmp").mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{run_name}_", dir=out / ".tmp"))
    lines: queue.Queue = queue.Queue()
    procs = []
    for w in range(workers):
        job = scratch / f"job_{w}.json"
        write_json(job, {"settings": settings.to_json(), "chunks": chunks[w::workers], "threads": threads,
                         "temp_dir": str(scratch / f"blenderproc_{w}")})
        log = open(log_dir / f"{run_name}_worker_{w}.log", "w")
        proc = subprocess.Popen([sys.executable, str(WORKER), str(job)], stdout=subprocess.PIPE, stderr=log,
                                text=True, cwd=ROOT)
        procs.append((proc, log))
        threading.Thread(target=_pump, args=(proc, w, log, lines), daemon=True).start()
    bar = tqdm(total=frames_total, initial=frames_done, unit="img", desc="rendering", smoothing=0.1)
    running = workers
    try:
        while running:
            kind, value = lines.get()
            if kind == "frame":
                bar.update(1)
            elif kind == "exit":
                running -= 1
                proc_index, code = value
                if code != 0:
                    log_path = log_dir / f"{run_name}_worker_{proc_index}.log"
                    raise GeneratorError(f"render worker {proc_index} failed (exit {code}); last lines of "
                                         f"{log_path}: {_tail(log_path)}")
    finally:
        bar.close()
        for proc, log in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            log.close()
    shutil.rmtree(scratch, ignore_errors=True)   # .tmp/ itself stays: another shard may be making its own in it


def _pump(proc: subprocess.Popen, index: int, log, lines: queue.Queue) -> None:
    """Forward a worker's `FRAME i` lines as progress; everything else goes to its log."""
    for line in proc.stdout:
        if line.startswith("FRAME "):
            lines.put(("frame", int(line.split()[1])))
        else:
            log.write(line)
    lines.put(("exit", (index, proc.wait())))


def _tail(log_path: Path, n: int = 3) -> str:
    text = log_path.read_text(errors="replace").strip().splitlines()
    return " | ".join(text[-n:])


def read_record(path: Path) -> dict:
    """A folder's generator_config.json as written by `check_resume`; a one-line error for a file that is none."""
    try:
        recorded = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise GeneratorError(f"{path} is not a generator record ({err}); render into a new --out") from None
    if not isinstance(recorded, dict) or not ({"identity", "settings"} & set(recorded)):
        raise GeneratorError(f"{path} is not a generator record (no settings); render into a new --out")
    return recorded


def recorded_settings(out: str | Path) -> GeneratorSettings:
    """The settings a folder's first render run recorded (what `--merge` assembles with)."""
    path = Path(out) / CONFIG_NAME
    if not path.is_file():
        raise GeneratorError(f"{out} holds no rendered frames to merge (no {CONFIG_NAME}); render the shards first")
    try:
        return dataclasses.replace(GeneratorSettings.from_json(read_record(path)["settings"]), out=str(out))
    except (KeyError, TypeError) as err:
        raise GeneratorError(f"{path} is not a generator record ({err}); render into a new --out") from None


def check_rendered(out: Path, num_images: int, remedy: str) -> None:
    """Every frame of a run is there (`frame_done`), else an error ending in `remedy`: until then no dataset
    may be assembled, or a half-made one would look complete."""
    missing = [i for i in range(num_images) if not frame_done(out, i)]
    if missing:
        raise GeneratorError(f"{len(missing)} of the {num_images} frames of {out} are not rendered yet "
                             f"(first: {missing[0]}); {remedy}")


def render_pending(settings: GeneratorSettings, shard: tuple[int, int] | None, workers: int) -> None:
    """Render the frames of this run's chunks (all, or one shard's) that are not done yet."""
    out = Path(settings.out)
    chunks = pending_chunks(settings, shard)
    if not chunks:
        return
    invalidate_datasets(out)   # leftovers of killed runs go once every frame is there (run)
    mine = [i for c in shard_chunks(settings, shard) for i in chunk_frames(c, settings)]
    render(settings, chunks, workers, len(mine), sum(frame_done(out, i) for i in mine),
           run_name="run" if shard is None else f"shard{shard[0]}of{shard[1]}")


def remove_leftovers(out: Path) -> None:
    """Half-written files and scratch folders of runs that were killed."""
    for stale in out.rglob(".*.tmp"):
        stale.unlink()
    shutil.rmtree(out / ".tmp", ignore_errors=True)


def run(out: str = "output", num_images: int = 1000, seed: int = 0, val_fraction: float = 0.1,
        workers: int = 1, shard: str | None = None, merge: bool = False, no_hands: bool = False,
        hands_dir: str | None = None, **kwargs) -> Path:
    """Generate (or resume) a dataset in `out`; returns `out`. See `synthetic_data_generator.py -h`."""
    # absolute paths: the render workers run in the repository, wherever the command was given
    out = Path(out).resolve()
    if merge:  # assemble with the settings the shards were rendered with, whatever else the command line says
        settings = recorded_settings(out)
    else:
        kwargs.update({k: str(Path(kwargs[k]).resolve()) for k in INPUT_PATHS if kwargs.get(k)})
        settings = GeneratorSettings(out=str(out), num_images=num_images, seed=seed, val_fraction=val_fraction,
                                     hands_dir=None if no_hands else str(Path(hands_dir or DEFAULT_HANDS).resolve()),
                                     **kwargs)
        shard_spec = parse_shard(shard)
        validate(settings, workers)
        check_resume(settings)
        render_pending(settings, shard_spec, workers)
        if shard_spec is not None:
            print(f"shard {shard} complete; once every shard is, assemble the datasets with: "
                  f"python synthetic_data_generator.py --out {out} --merge")
            return Path(settings.out)
    out_path = Path(settings.out)
    check_rendered(out_path, settings.num_images, "run the remaining shards first")
    remove_leftovers(out_path)   # every frame is there: no run is writing any more
    from data_generation.build_datasets import run as build_datasets

    build_datasets(out=str(out_path), seed=settings.seed, val_fraction=settings.val_fraction,
                   amodal=settings.amodal, num_images=settings.num_images)
    record_amodal(out_path, settings.amodal)
    return out_path


def record_amodal(out: Path, amodal: bool) -> None:
    """Masks are assembled, not rendered, so a rerun may change --amodal: the record follows the last
    assembly, which `--merge` and `build_datasets.py` then repeat instead of flipping the masks back."""
    path = out / CONFIG_NAME
    recorded = read_record(path)
    if recorded.get("settings", {}).get("amodal") != amodal:
        recorded.setdefault("settings", {})["amodal"] = amodal
        write_json(path, recorded, indent=2)
