"""Average the weights of checkpoints of one network: a "model soup" (Wortsman et al., ICML 2022).

    python average_weights.py --weights runs/pose/s0/weights/last.pt runs/pose/s1/weights/last.pt --out soup.pt
    python average_weights.py --weights start.pt finetuned.pt --shares 0.3 0.7 --out wise.pt   # WiSE-FT

Fine-tunes of one start (other seeds, other data, a self-trained student) land in one basin of the loss, and
their average is often better on new footage than any of them (the soup); the average of a start and its
fine-tune (WiSE-FT, Wortsman et al., CVPR 2022) keeps some of the start's robustness to footage the
fine-tune never saw. Every floating-point tensor is averaged with the given shares, batch-norm statistics
included: for fine-tunes of one start these stay close, but they are not re-estimated for the average, so
score the result beside its parts. The checkpoints must be one network with this project's classes and
keypoints; an unfinished `last.pt` contributes its EMA weights, as Ultralytics loads it. The result is a
finished checkpoint (no optimizer, no training metrics, half precision, like Ultralytics' `strip_optimizer`)
that every script here takes as `--weights` or `--model`, with its sources and shares recorded in it
(`averaged_from`).
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from surgpose import offline

offline.configure()

import torch  # noqa: E402
import ultralytics  # noqa: E402
from ultralytics.nn.tasks import load_checkpoint  # noqa: E402

from surgpose.cli import number, user_errors_in_one_line  # noqa: E402
from surgpose.files import atomic_write  # noqa: E402
from surgpose.schema import CLASSES, NUM_KEYPOINTS  # noqa: E402

#: How far the shares may sum from 1 (three shares of 0.333 are meant as thirds); they are then scaled to 1.
SHARES_TOLERANCE = 1e-3


def read_network(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """The float32 network Ultralytics loads from a checkpoint (its EMA when unfinished), and the checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights not found: {path}")
    try:
        net, ckpt = load_checkpoint(path)
    except Exception as err:   # a file that is no Ultralytics checkpoint: pickle, zip, key or type errors
        raise ValueError(f"cannot read {path} as an Ultralytics checkpoint: "
                         f"{(str(err).strip() or type(err).__name__).splitlines()[0]}") from None
    if ckpt.get("modelopt"):
        raise ValueError(f"{path} is a quantisation-aware checkpoint: its quantiser ranges would not fit an average")
    names = [net.names[i] for i in sorted(net.names)]
    if names != list(CLASSES):
        raise ValueError(f"{path} predicts classes {names}; this project's are {list(CLASSES)} (surgpose/schema.py)")
    kpt_shape = getattr(net, "kpt_shape", None)
    if kpt_shape is not None and list(kpt_shape) != [NUM_KEYPOINTS, 3]:
        raise ValueError(f"{path} has kpt_shape {list(kpt_shape)}; this project's is [{NUM_KEYPOINTS}, 3]")
    return net, ckpt


def normalised_shares(shares: Sequence[float] | None, count: int) -> list[float]:
    """Equal shares, or the given ones (non-negative, summing to 1 within SHARES_TOLERANCE) scaled to sum to 1."""
    if shares is None:
        return [1 / count] * count
    if len(shares) != count:
        raise ValueError(f"{len(shares)} shares for {count} checkpoints: give one share per checkpoint")
    total = sum(shares)
    if any(s < 0 for s in shares) or not math.isclose(total, 1.0, abs_tol=SHARES_TOLERANCE):
        raise ValueError(f"shares must be non-negative and sum to 1, not {' + '.join(f'{s:g}' for s in shares)}")
    return [s / total for s in shares]


def averaged_state(states: Sequence[dict[str, torch.Tensor]], shares: Sequence[float]) -> dict[str, torch.Tensor]:
    """The share-weighted average of each floating-point tensor; others (batch-norm counters) from the first."""
    return {key: sum(share * state[key].double() for share, state in zip(shares, states)).to(first.dtype)
            if first.is_floating_point() else first.clone()
            for key, first in states[0].items()}


def run(weights: Sequence[str | Path], out: str | Path, shares: Sequence[float] | None = None) -> Path:
    """Write the share-weighted average of `weights` (equal shares unless given) to `out`."""
    if len(weights) < 2:
        raise ValueError("give at least two checkpoints to average (--weights A.pt B.pt ...)")
    out = Path(out)
    if out.suffix != ".pt" or out.is_dir():
        raise ValueError(f"--out must name a .pt file (Ultralytics loads weights only from .pt), not {out}")
    shares = normalised_shares(shares, len(weights))
    nets, ckpts = zip(*(read_network(w) for w in weights))
    tensors = {k: tuple(v.shape) for k, v in nets[0].state_dict().items()}
    for path, net in zip(weights[1:], nets[1:]):
        if {k: tuple(v.shape) for k, v in net.state_dict().items()} != tensors:
            raise ValueError(f"{path} is another network than {weights[0]}: only checkpoints of one network "
                             "(fine-tunes of one start) can be averaged")
    average = nets[0]
    average.load_state_dict(averaged_state([net.state_dict() for net in nets], shares))
    average.args = dict(average.args)   # as strip_optimizer: a plain dict, not the trainer's namespace
    for p in average.parameters():
        p.requires_grad = False
    ckpt = {
        "date": datetime.now().astimezone().isoformat(), "version": ultralytics.__version__,
        "license": ckpts[0].get("license"), "docs": ckpts[0].get("docs"),
        "epoch": -1, "best_fitness": None, "model": average.half(), "ema": None, "updates": None,
        "optimizer": None, "scaler": None, "stopper": None, "train_args": ckpts[0].get("train_args", {}),
        "averaged_from": [{"weights": str(Path(w).resolve()), "share": s, "date": c.get("date")}
                          for w, s, c in zip(weights, shares, ckpts)],
    }
    return atomic_write(out, lambda tmp: torch.save(ckpt, tmp))


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", nargs="+", required=True, help="two or more checkpoints of one network")
    parser.add_argument("--shares", nargs="+", type=number(float, 0.0, low_open=False),
                        help="one weight per checkpoint, summing to 1, e.g. 0.5 0.25 0.25 (default: equal shares)")
    parser.add_argument("--out", required=True, help="the averaged checkpoint (.pt) to write")
    return parser.parse_args(argv)


@user_errors_in_one_line
def main(opt: argparse.Namespace) -> None:
    out = run(**vars(opt))
    shares = normalised_shares(opt.shares, len(opt.weights))
    print(f"wrote {out}: " + " + ".join(f"{s:.3g} x {w}" for w, s in zip(opt.weights, shares)))


if __name__ == "__main__":
    main(parse_opt())
