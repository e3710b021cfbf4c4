"""The one output convention of the ``cistheory`` command (internal).

Results go to standard output through :func:`emit` (text) or :func:`emit_json` (one JSON
object); progress and errors go to standard error through :func:`progress` and
:func:`error`. Nothing else in the package prints.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["emit", "emit_json", "error", "fmt", "progress", "table"]


def emit(text: str = "") -> None:
    """Print a line of results on standard output."""
    print(text)


def emit_json(obj: Any, *, indent: int | None = None) -> None:
    """Print one JSON object on standard output."""
    print(json.dumps(obj, indent=indent))


def progress(text: str, *, end: str = "\n") -> None:
    """Show progress on standard error (never mixed with the results)."""
    print(text, end=end, file=sys.stderr, flush=True)


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
