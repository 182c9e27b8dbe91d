"""What the phase scripts share at their command line."""
from __future__ import annotations

import argparse
import functools
import math
from pathlib import Path
from typing import Any, Callable


def user_errors_in_one_line(main: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a script's `main`: the errors this toolkit raises for bad input (a missing file, a wrong value,
    weights of another schema) end the script with `error: ...` on one line, not a traceback."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except (FileNotFoundError, ValueError) as e:
            raise SystemExit(f"error: {e}") from None

    return wrapper


def number(kind: type, low: float, high: float | None = None, low_open: bool = True,
            high_open: bool = False) -> Callable[[str], Any]:
    """An argparse `type` that reads a number and refuses values outside (low, high] (ends as asked), so a
    wrong value stops the script at its command line instead of running quietly with a clamped one."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    span = f"in {left}{low:g}, {high:g}{right}" if high is not None else (
        f"above {low:g}" if low_open else f"{low:g} or more")

    def parse(text: str) -> Any:
        whole = "whole " if kind is int else ""
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):   # nan would pass every comparison below
            raise argparse.ArgumentTypeError(f"expected a {whole}number, got {text!r}")
        too_low = value <= low if low_open else value < low
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            raise argparse.ArgumentTypeError(f"must be {span}, got {text}")
        return value

    parse.__name__ = kind.__name__   # argparse names the type in its messages
    return parse


#: Whole numbers from 1 (sizes, strides, counts).
positive_int = number(int, 0)
#: Whole numbers from 0 (layer counts).
non_negative_int = number(int, 0, low_open=False)
#: Numbers above 0 (scales, learning rates).
positive_float = number(float, 0.0)
#: Confidences and IoU thresholds, in [0, 1].
unit_interval = number(float, 0.0, 1.0, low_open=False)
#: Shares in [0, 1) (of images mixed in, of images held out): 1 would leave nothing of the rest.
share = number(float, 0.0, 1.0, low_open=False, high_open=True)


def check_share(flag: str, value: float) -> None:
    """`share`'s rule for values given to a script's `run()` rather than on its command line."""
    if not 0 <= value < 1:
        raise ValueError(f"--{flag} must be in [0, 1), got {value}")


def available_device(text: str) -> str:
    """An argparse `type` for --device ('' auto, cpu, mps, 0, 0,1, cuda:0): a GPU this machine does not have is
    refused at the command line, in one line, instead of Ultralytics' CUDA diagnostics deep in the run."""
    import torch

    wanted = text.strip().lower()
    if wanted in ("", "cpu"):
        return text
    if wanted == "mps":
        if not torch.backends.mps.is_available():
            raise argparse.ArgumentTypeError("mps: no Apple GPU on this machine; use --device cpu")
        return text
    indices = [part.removeprefix("cuda").lstrip(":") for part in wanted.split(",")]
    if not all(i.isdigit() or i == "" for i in indices):
        raise argparse.ArgumentTypeError(f"expected '', cpu, mps or CUDA indices such as 0 or 0,1, got {text!r}")
    found = torch.cuda.device_count() if torch.cuda.is_available() else 0
    missing = [i for i in indices if int(i or 0) >= found]
    if missing:
        have = f"{found} CUDA GPU{'s' if found != 1 else ''}" if found else "no CUDA GPU"
        raise argparse.ArgumentTypeError(f"{text}: this machine has {have}; use --device cpu")
    return text


def runs_dir(project: str | Path) -> Path:
    """`runs/<project>` as an absolute path (Ultralytics re-roots relative ones); a project given as `runs/x`
    or as an absolute path is taken as it is, so `--project runs/x` does not land in `runs/runs/x`."""
    project = Path(project)
    if not project.is_absolute() and project.parts[:1] != ("runs",):
        project = Path("runs") / project
    return project.resolve()
