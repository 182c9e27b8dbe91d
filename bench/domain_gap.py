"""How far synthetic renders are from real footage, without training anything: the kernel inception distance
(KID, Binkowski et al. 2018) between features of rendered and real images, whole frames and instrument crops.

    python bench/domain_gap.py --renders data/old_hands data/new_hands --real ../shared/real

Features: global-average-pooled output of the backbone (layers 0-9) of the real-image-pretrained YOLOv8s that
`make env` fetches (`surgpose.pretrained`), so the distance is measured in what a detector started from real
photographs sees. Real sets, where present under `--real`: frames of `clips/*.mp4` (every `--clip_stride`-th),
`apas_dev/images`, `oss_dev/images`; crops: `oss_dev` instruments (the box of their labelled points) and
`apas_dev` hands holding a needle holder or tweezers (their hand box); render crops: each labelled
instrument's box. Lower is closer; report KID x 1000 with its spread over random subsets, and compare
generators on the same real sets. Prints a table and writes `bench/results/domain_gap.json`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from surgpose import offline  # noqa: E402

offline.configure()

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from surgpose.files import write_json  # noqa: E402
from surgpose.metrics import kernel_inception_distance  # noqa: E402
from surgpose.pretrained import fetched  # noqa: E402
from surgpose.schema import Layout  # noqa: E402
from surgpose.video_io import IMAGE_SUFFIXES  # noqa: E402

PAD = 0.15   # crops reach this share of their box beyond it on every side


def backbone() -> torch.nn.Module:
    """The real-image-pretrained YOLOv8s up to its SPPF layer, in eval mode."""
    from ultralytics import YOLO

    path = fetched()
    if path is None:
        raise SystemExit("error: the real-image-pretrained start is missing: run `make env` (or "
                         "`python -m surgpose.pretrained`)")
    return torch.nn.Sequential(*YOLO(str(path)).model.model[:10]).eval()


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """`image` scaled to fit a `size` square, padded grey, as RGB floats in [0, 1], channels first."""
    h, w = image.shape[:2]
    s = size / max(h, w)
    resized = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    canvas = np.full((size, size, 3), 114, np.uint8)
    y, x = (size - resized.shape[0]) // 2, (size - resized.shape[1]) // 2
    canvas[y:y + resized.shape[0], x:x + resized.shape[1]] = resized
    return canvas[..., ::-1].transpose(2, 0, 1).astype(np.float32) / 255


@torch.no_grad()
def features(net: torch.nn.Module, images: list[np.ndarray], size: int, desc: str) -> np.ndarray:
    """(n, 512) pooled backbone features of BGR images."""
    out = []
    for start in tqdm(range(0, len(images), 16), desc=desc, leave=False):
        batch = torch.from_numpy(np.stack([letterbox(im, size) for im in images[start:start + 16]]))
        out.append(net(batch).mean((2, 3)).numpy())
    return np.concatenate(out) if out else np.zeros((0, 512))


def crop(image: np.ndarray, box: list[float]) -> np.ndarray | None:
    x1, y1, x2, y2 = box
    pw, ph = PAD * (x2 - x1) + 4, PAD * (y2 - y1) + 4
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (int(max(0, x1 - pw)), int(max(0, y1 - ph)), int(min(w, x2 + pw)), int(min(h, y2 + ph)))
    return image[y1:y2, x1:x2] if x2 - x1 >= 8 and y2 - y1 >= 8 else None


def spaced(items: list, limit: int) -> list:
    """At most `limit` of `items`, evenly spread."""
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).astype(int)] if len(items) > limit else items


def render_set(folder: Path, limit: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames and instrument crops of a generated dataset."""
    frames, crops = [], []
    for path in spaced(sorted((folder / Layout.KEYPOINTS).glob("*.json")), limit):
        record = json.loads(path.read_text())
        image = next((cv2.imread(str(p)) for split in Layout.SPLITS
                      if (p := folder / Layout.COMPOSITED / split / record["image"]).is_file()), None)
        if image is None:
            continue
        frames.append(image)
        crops += [c for inst in record["instances"] if (c := crop(image, inst["bbox"])) is not None]
    if not frames:
        raise SystemExit(f"error: {folder} holds no rendered frames ({Layout.KEYPOINTS}/ and {Layout.COMPOSITED}/)")
    return frames, crops


def real_sets(real: Path, clip_stride: int, limit: int) -> dict[str, list[np.ndarray]]:
    """Real frames and crops by set name; sets that are absent are left out."""
    sets: dict[str, list[np.ndarray]] = {}
    videos = sorted((real / "clips").glob("*.mp4"))
    wanted = []   # (video, frame) pairs: every clip_stride-th frame, then at most `limit` evenly spread
    for video in videos:
        cap = cv2.VideoCapture(str(video))
        wanted += [(video, i) for i in range(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), clip_stride)]
        cap.release()
    clips = []
    for video in videos:   # decode only the frames kept
        keep = {i for v, i in spaced(wanted, limit) if v == video}
        cap = cv2.VideoCapture(str(video))
        for index in range(max(keep, default=-1) + 1):
            ok, frame = cap.read()
            if not ok:
                break
            if index in keep:
                clips.append(frame)
        cap.release()
    if clips:
        sets["frames: clips"] = clips
    for name, label_file in (("apas_dev", "hands.json"), ("oss_dev", "keypoints.json")):
        folder = real / name
        if not (folder / label_file).is_file():
            continue
        labels = json.loads((folder / label_file).read_text())["images"]
        images = {f: cv2.imread(str(folder / "images" / f)) for f in sorted(labels)
                  if Path(f).suffix.lower() in IMAGE_SUFFIXES}
        sets[f"frames: {name}"] = spaced([im for im in images.values() if im is not None], limit)
        crops = []
        for f, label in labels.items():
            image = images.get(f)
            if image is None:
                continue
            if name == "apas_dev":
                boxes = [h["box"] for h in label["hands"] if h["tool"] in ("needle_holder", "tweezers")]
            else:
                boxes = []
                for tool in label["tools"].values():
                    points = np.array([p[:2] for p in tool["keypoints_unordered"] if p[2] > 0], float)
                    if len(points) >= 2:
                        boxes.append([*points.min(0), *points.max(0)])
            crops += [c for box in boxes if (c := crop(image, box)) is not None]
        sets[f"crops: {name}"] = spaced(crops, limit)
    return sets


def run(renders: list[str], real: str, limit: int = 300, clip_stride: int = 10, size: int = 320,
        crop_size: int = 160, out: str | None = None) -> dict:
    net = backbone()
    reals = real_sets(Path(real), clip_stride, limit)
    if not reals:
        raise SystemExit(f"error: {real} holds none of clips/, apas_dev/, oss_dev/")
    real_features = {name: features(net, images, crop_size if name.startswith("crops") else size, name)
                     for name, images in reals.items()}
    result = {"real": {name: len(images) for name, images in reals.items()}, "renders": {}}
    for folder in renders:
        frames, crops = render_set(Path(folder), limit)
        mine = {"frames": features(net, frames, size, f"{folder} frames"),
                "crops": features(net, spaced(crops, limit), crop_size, f"{folder} crops")}
        result["renders"][folder] = {
            name: dict(zip(("kid", "std"), (1000 * v for v in kernel_inception_distance(mine[name.split(":")[0]],
                                                                                         feats))))
            for name, feats in real_features.items() if len(feats) >= 2 and len(mine[name.split(":")[0]]) >= 2}
        result["renders"][folder]["n"] = {"frames": len(frames), "crops": min(len(crops), limit)}
    write_json(Path(out) if out else ROOT / "bench" / "results" / "domain_gap.json", result, indent=1)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--renders", nargs="+", required=True, help="generated datasets (synthetic_data_generator.py --out)")
    p.add_argument("--real", default=str(ROOT.parent / "shared" / "real"), help="folder with clips/, apas_dev/, oss_dev/")
    p.add_argument("--limit", type=int, default=300, help="most images (and crops) per set")
    p.add_argument("--clip_stride", type=int, default=10)
    p.add_argument("--out", help="JSON report (default bench/results/domain_gap.json)")
    opt = p.parse_args()
    r = run(opt.renders, opt.real, opt.limit, opt.clip_stride, out=opt.out)
    names = sorted(r["real"])
    print("KID x 1000 (spread over subsets) between renders and real sets; lower is closer")
    print("| renders | " + " | ".join(f"{n} ({r['real'][n]})" for n in names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for folder, row in r["renders"].items():
        print(f"| {folder} ({row['n']['frames']} frames, {row['n']['crops']} crops) | "
              + " | ".join(f"{row[n]['kid']:.1f} ± {row[n]['std']:.1f}" if n in row else "too few" for n in names)
              + " |")


if __name__ == "__main__":
    main()
