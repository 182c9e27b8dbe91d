"""What a command-line run prints: the toolkit's own messages on the console, the libraries' in a log file.

Ultralytics, NNCF and torch print through logging handlers of their own (set up when they are imported:
Ultralytics' first-run settings notice, NNCF's torch-version notice, torch's "No CUDA runtime is found"),
Python warnings (torch.jit's FutureWarnings) through `warnings`, and NNCF's progress bars straight to stdout.
A user running `video.py` wants to see the progress and what was made, not screens of that, so a script calls
`quiet_libraries()` before importing them and `log_to(path)` once it knows its output folder; what the
libraries said until then is held and written there first. Modules imported by tests or by user code leave
logging alone: nothing here acts before `quiet_libraries()`.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path

#: File, in a run's output folder, that receives the libraries' log records and warnings.
LOG_NAME = "libraries.log"

#: Libraries whose loggers print to the console through handlers of their own instead of the root logger's.
OWN_HANDLERS = ("ultralytics", "nncf", "torch")

#: Records kept while no file is named yet (a run that fails before it names one loses them).
HELD_RECORDS = 10_000


def shown(path: str | os.PathLike) -> str:
    """`path` as the toolkit prints it: relative to the working folder when it lies inside it, else absolute;
    the same file is named the same way whether it came from the command line or from the repository (the
    shipped weights), and no path climbs out through '../..'."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


class _LibraryLog(logging.Handler):
    """Holds records until `log_to` names a file, then writes them, and every later one, there. The file is
    made at the first record, so a run that fails before anything is logged leaves none."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        self.held: list[logging.LogRecord] = []
        self.path: Path | None = None
        self.append = False
        self.stream: io.TextIOBase | None = None

    def file(self) -> io.TextIOBase:
        """The open log file (created, or emptied unless appending, on first use)."""
        if self.stream is None:
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.stream = self.path.open("a" if self.append else "w", encoding="utf-8")
        return self.stream

    def emit(self, record: logging.LogRecord) -> None:
        if self.path is None:
            if len(self.held) < HELD_RECORDS:
                self.held.append(record)
            return
        try:
            self.file().write(self.format(record) + "\n")
            self.stream.flush()
        except Exception:  # noqa: BLE001 (logging's own contract: a failing handler reports, never raises)
            self.handleError(record)

    def open(self, path: Path, append: bool) -> None:
        if self.stream is not None:
            self.stream.close()
        self.path, self.append, self.stream = path, append, None
        held, self.held = self.held, []
        for record in held:
            self.emit(record)


class _Divert(logging.Filter):
    """Sends a record to the library log instead of the handler or logger it was bound for."""

    def filter(self, record: logging.LogRecord) -> bool:
        _LOG.handle(record)
        return False


_LOG = _LibraryLog()
_DIVERT = _Divert()
_active = False


def _divert_libraries() -> None:
    """Route the libraries' own console handlers to the log: a filter on each such logger catches its records
    (even those logged while it is imported, before its handlers exist), one on each of its handlers catches
    those of its child loggers (torch.utils.cpp_extension's). Idempotent; call again after importing one."""
    for name in OWN_HANDLERS:
        logger = logging.getLogger(name)
        for target in (logger, *logger.handlers):
            if _DIVERT not in target.filters:
                target.addFilter(_DIVERT)


def quiet_libraries() -> None:
    """Keep third-party log records and Python warnings off the console from now on (held until `log_to`).
    Call it before importing Ultralytics, so that its import-time messages are caught too."""
    global _active
    _active = True
    logging.captureWarnings(True)   # warnings -> the 'py.warnings' logger -> the root logger's handler
    root = logging.getLogger()
    if _LOG not in root.handlers:
        root.addHandler(_LOG)       # also spares logging's last-resort printing of other libraries' warnings
    _divert_libraries()


def log_to(path: str | os.PathLike, append: bool = False) -> Path | None:
    """Write the libraries' records to `path` (those held so far first); returns it, or None when
    `quiet_libraries()` was not called (the libraries then print as they would)."""
    if not _active:
        return None
    _divert_libraries()   # handlers created by imports since quiet_libraries()
    _LOG.open(Path(path), append)
    return Path(path)


def written_to() -> str:
    """For a run's last line: where the libraries' messages went, if any were logged."""
    return f" (library messages in {shown(_LOG.path)})" if _active and _LOG.stream is not None else ""


@contextlib.contextmanager
def library_output() -> Iterator[None]:
    """Around third-party work that prints to stdout past logging (NNCF's progress bars): in a quiet run, that
    output goes to the library log (or nowhere, before `log_to`); otherwise this does nothing."""
    if not _active:
        yield
        return
    with contextlib.redirect_stdout(_LOG.file() if _LOG.path else io.StringIO()):
        try:
            yield
        finally:
            _divert_libraries()   # a library imported inside (NNCF) set up its handlers meanwhile
