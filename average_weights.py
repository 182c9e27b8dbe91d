"""Average the weights of checkpoints of one network: a "model soup" (Wortsman et al., ICML 2022).

    python average_weights.py --weights models/synthetic_weights.pt runs/pose/s1/weights/last.pt --out soup.pt
    python average_weights.py --weights start.pt finetuned.pt --shares 0.3 0.7 --out wise.pt

Fine-tunes of one start (other seeds, other data, a self-trained student) land in one basin of the loss, and
their average is often better on new footage than any of them (the soup); the average of a start and its
fine-tune (WiSE-FT, Wortsman et al., CVPR 2022) keeps some of the start's robustness to footage the
fine-tune never saw. Every floating-point tensor (weights and batch-norm statistics) is averaged with the
given shares; the checkpoints must be the same network with the same classes and keypoints. An unfinished
`last.pt` contributes its EMA weights, as Ultralytics would load it. The result is a finished checkpoint
(no optimizer, half precision, like Ultralytics' `strip_optimizer`) that every script here takes as
`--weights` or `--model`, with the sources and shares recorded in it (`averaged_from`).
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from surgpose import offline

offline.configure()

import torch  # noqa: E402
from ultralytics.utils.patches import torch_load  # noqa: E402

from surgpose.cli import user_errors_in_one_line  # noqa: E402
from surgpose.files import atomic_write  # noqa: E402


def read_network(path: str | Path) -> tuple[dict, torch.nn.Module]:
    """A checkpoint's dict and the network Ultralytics would load from it (EMA first), in float32."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights not found: {path}")
    try:
        ckpt = torch_load(path, map_location="cpu")
        net = ckpt.get("ema") or ckpt["model"]
    except Exception as err:   # a file that is not an Ultralytics checkpoint: pickle, zip or key errors
        raise ValueError(f"cannot read {path} as an Ultralytics checkpoint: "
                         f"{(str(err).strip() or type(err).__name__).splitlines()[0]}") from None
    return ckpt, net.float()


def _signature(net: torch.nn.Module) -> dict[str, Any]:
    """What must agree between checkpoints for their average to mean anything."""
    return {"names": dict(getattr(net, "names", {}) or {}), "kpt_shape": getattr(net, "kpt_shape", None),
            "tensors": {k: tuple(v.shape) for k, v in net.state_dict().items()}}


def averaged_state(states: Sequence[dict[str, torch.Tensor]], shares: Sequence[float]) -> dict[str, torch.Tensor]:
    """The share-weighted average of each floating-point tensor; others (batch counters) from the first."""
    out = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            out[key] = sum(share * state[key].double() for share, state in zip(shares, states)).to(first.dtype)
        else:
            out[key] = first.clone()
    return out


def run(weights: Sequence[str | Path], out: str | Path, shares: Sequence[float] | None = None) -> Path:
    """Write the share-weighted average of `weights` (uniform unless `shares`, which sum to 1) to `out`."""
    if len(weights) < 2:
        raise ValueError("give at least two checkpoints to average (--weights A.pt B.pt ...)")
    shares = [1 / len(weights)] * len(weights) if shares is None else [float(s) for s in shares]
    if len(shares) != len(weights):
        raise ValueError(f"{len(shares)} shares for {len(weights)} checkpoints: give one share per checkpoint")
    if any(s < 0 for s in shares) or not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
        raise ValueError(f"shares must be non-negative and sum to 1, not {' + '.join(f'{s:g}' for s in shares)}")
    read = [read_network(w) for w in weights]
    first_ckpt, first_net = read[0]
    expected = _signature(first_net)
    for path, (_, net) in zip(weights[1:], read[1:]):
        found = _signature(net)
        for field, differs in (("names", "has other classes than"), ("kpt_shape", "has other keypoints than"),
                               ("tensors", "is another network than")):
            if found[field] != expected[field]:
                raise ValueError(f"{path} {differs} {weights[0]}: only checkpoints of one network (fine-tunes of "
                                 "one start) can be averaged")
    first_net.load_state_dict(averaged_state([net.state_dict() for _, net in read], shares))
    for p in first_net.parameters():
        p.requires_grad = False
    ckpt = {**first_ckpt, "model": first_net.half(), "ema": None, "optimizer": None, "updates": None,
            "best_fitness": None, "epoch": -1,
            "averaged_from": [{"weights": str(w), "share": s} for w, s in zip(weights, shares)]}
    return atomic_write(out, lambda tmp: torch.save(ckpt, tmp))


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", nargs="+", required=True, help="two or more checkpoints of one network")
    parser.add_argument("--shares", nargs="+", type=float,
                        help="one weight per checkpoint, summing to 1 (default: equal shares)")
    parser.add_argument("--out", required=True, help="the averaged checkpoint (.pt) to write")
    return parser.parse_args(argv)


@user_errors_in_one_line
def main(opt: argparse.Namespace) -> None:
    out = run(**vars(opt))
    print(f"wrote {out}: " + ", ".join(f"{s:.3g} x {w}" for w, s in zip(opt.weights, opt.shares or
                                                                          [1 / len(opt.weights)] * len(opt.weights))))


if __name__ == "__main__":
    main(parse_opt())
