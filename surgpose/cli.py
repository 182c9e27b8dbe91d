"""What the phase scripts share at their command line."""
from __future__ import annotations

import functools
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
