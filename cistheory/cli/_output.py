"""The one output convention of the ``cistheory`` command (internal).

Results go to standard output through :func:`emit` (text) or :func:`emit_json` (one JSON
object); progress and errors go to standard error through :func:`progress` and
:func:`error`. Nothing else in the package prints.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ..errors import CISInputError

__all__ = [
    "ArgumentParser",
    "Progress",
    "duration",
    "emit",
    "emit_json",
    "error",
    "fmt",
    "note",
    "progress",
    "run_command",
    "table",
]


def emit(text: str = "") -> None:
    """Print a line of results on standard output."""
    print(text)


def emit_json(obj: Any, *, indent: int | None = None) -> None:
    """Print one JSON object on standard output."""
    print(json.dumps(obj, indent=indent))


def progress(text: str, *, end: str = "\n") -> None:
    """Show progress on standard error (never mixed with the results)."""
    print(text, end=end, file=sys.stderr, flush=True)


def note(message: str) -> None:
    """Print one line ``note: MESSAGE`` on standard error (an input not used, a default)."""
    print(f"note: {message}", file=sys.stderr, flush=True)


def error(message: str) -> None:
    """Print one line ``error: MESSAGE`` on standard error."""
    print(f"error: {message}", file=sys.stderr)


def fmt(x: float, digits: int = 4) -> str:
    """A number with ``digits`` decimals (``inf`` spelled out)."""
    return "inf" if math.isinf(x) else f"{x:.{digits}f}"


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """Right-aligned columns under a header and a rule."""
    widths = [max(len(str(r[j])) for r in [header, *rows]) for j in range(len(header))]
    lines = ["  ".join(str(h).rjust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(lines)


class ArgumentParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line ``error: ...`` and exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``error: MESSAGE (see PROG --help)`` on standard error; exit 2."""
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def run_command(func: Callable[[], int]) -> int:
    """Run a command's body: a user error ends in one line ``error: FIELD = VALUE: REASON``
    and exit status 2; a closed output pipe (``... | head``) ends quietly with status 1, as
    Python reports one; an interrupt ends with ``interrupted`` and status 130."""
    try:
        status = int(func())
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return status
    except CISInputError as exc:
        error(str(exc))
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        error(str(exc))
        return 2
    except BrokenPipeError:
        # stdout is pointed at /dev/null so that flushing it at exit raises nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        error("interrupted")
        return 130


def duration(seconds: float) -> str:
    """A time span as people read it: ``<1 s``, ``42 s``, ``3 min 05 s``, ``2 h 10 min``."""
    if seconds < 1:
        return "<1 s"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Progress:
    """Progress lines on standard error with the time spent and an estimate of the time left.

    Each call to :meth:`step` prints ``[done/total] what (elapsed, about T left)`` (at most
    one line per ``every`` seconds, and always the last); the estimate is the mean time per
    unit of work so far, times the units left (``work`` lets steps differ in cost; with
    ``steps``, the line counts steps instead of units of work).

    Examples
    --------
    >>> p = Progress(2, "demo", stream=sys.stdout, clock=iter([0.0, 1.0, 2.0]).__next__)
    >>> p.step("first")
    demo [1/2] first (1 s, about 1 s left)
    >>> p.step("second")
    demo [2/2] second (2 s, done)
    """

    def __init__(
        self,
        total: float,
        label: str = "",
        *,
        stream: Any = None,
        clock: Callable[[], float] = time.perf_counter,
        every: float = 0.0,
        steps: int | None = None,
    ) -> None:
        self.steps = steps
        self.total = float(total)
        self.label = label
        self.done = 0.0
        self.count = 0
        self._clock = clock
        self._start = clock()
        self._stream = stream
        self._every = every
        self._last = -math.inf

    def update(self, done: float, what: str) -> None:
        """Set the work done to ``done`` (a counter that only grows) and print as
        :meth:`step` does."""
        self.step(what, done - self.done)

    def step(self, what: str, work: float = 1.0) -> None:
        """Record ``work`` units done (``what``) and print the progress line."""
        self.done += work
        self.count += 1
        now = self._clock()
        if now - self._last < self._every and self.done < self.total:
            return
        self._last = now
        elapsed = now - self._start
        if self.done >= self.total:
            left = "done"
        elif self.done > 0:
            rest = elapsed / self.done * (self.total - self.done)
            left = f"about {duration(rest)} left" if rest >= 1 else "nearly done"
        else:
            left = "starting"
        head = f"{self.label} " if self.label else ""
        count = (
            f"{self.count}/{self.steps}"
            if self.steps is not None
            else f"{self.done:g}/{self.total:g}"
        )
        line = f"{head}[{count}] {what} ({duration(elapsed)}, {left})"
        print(line, file=self._stream or sys.stderr, flush=True)
