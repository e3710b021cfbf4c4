"""Shared helpers of the figure scripts: output folders, atomic writes, plotting set-up."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cistheory._io import atomic_write_bytes, atomic_write_text

__all__ = [
    "DODGE",
    "RULE_STYLES",
    "FigureSpec",
    "atomic_write_bytes",
    "atomic_write_text",
    "load_json",
    "rule_style",
    "savefig",
    "training_progress",
    "write_csv",
    "write_json",
]

SIZES = ("tiny", "quick", "full")


@dataclass(frozen=True)
class FigureSpec:
    """A figure: its name, what it shows, and the files it writes."""

    name: str
    title: str
    outputs: tuple[str, ...]
    cost: float = 1.0
    """Running time at the quick size (seconds measured on the 2-core machine), for the
    estimate of the time left."""


def training_progress(label: str, enabled: bool = True) -> Any:
    """A ``progress(done, total, spec)`` callback for :func:`figures._experiment.run_grid`:
    a line on standard error every few seconds with the trainings done and the time left."""
    from cistheory.cli._output import Progress

    bars: dict[int, Progress] = {}

    def tick(done: int, total: int, spec: Any) -> None:
        if not enabled:
            return
        bar = bars.setdefault(total, Progress(total, f"      {label} trainings", every=5.0))
        bar.update(done, f"last: {spec.data} {spec.split} {spec.rule} "
                         f"{spec.participation} seed {spec.seed}")

    return tick


def write_json(path: Path, data: Any) -> None:
    """Atomically write JSON (NaN is refused: results never carry NaN)."""
    atomic_write_text(path, json.dumps(data, indent=1, allow_nan=False) + "\n")


def load_json(path: Path) -> Any:
    """Read a JSON file written by :func:`write_json` (a missing or unreadable one is refused
    with one :class:`~cistheory.errors.CISInputError` naming it)."""
    from cistheory.errors import CISInputError

    if not path.is_file():
        raise CISInputError("data", str(path), "no such file; compute the figure first "
                            "(python -m figures without --plot-only)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CISInputError("data", str(path), f"cannot parse: {exc}") from None


def write_csv(path: Path, rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """Atomically write rows (mappings) as CSV with the given column order."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row[c] for c in columns})
    atomic_write_text(path, buf.getvalue())


def savefig(fig: Any, out: Path, stem: str) -> list[Path]:
    """Save a matplotlib figure as PNG and PDF, atomically; return the paths."""
    paths = []
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=200, bbox_inches="tight")
        path = out / f"{stem}.{ext}"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    return paths


PRINT_STYLE: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.titlesize": 9,
    "lines.linewidth": 1.2,
}
"""Font sizes for figures drawn at the size a paper prints them (a full text width is about
7 inches): 7-9 pt text stays readable there."""


RULE_STYLES: dict[str, tuple[str, str]] = {
    "serving-rate": ("tab:blue", "o"),
    "equal": ("tab:orange", "s"),
    "flops": ("tab:green", "^"),
    "opt-err": ("tab:purple", "v"),
    "balanced-adj": ("tab:brown", "D"),
    "bound-optimal": ("tab:red", "X"),
    "bound-optimal-first": ("tab:pink", "P"),
}
"""Colour and marker of each rule's series in every figure."""

DODGE = 0.009
"""Sideways offset between the rules' markers at one rate split (in leaf share), so that a
series lying on another (bound-optimal on Serving Rate) stays visible."""


def rule_style(rule: str) -> tuple[str, str]:
    """Colour and marker of a rule (grey circles for a rule not in :data:`RULE_STYLES`)."""
    return RULE_STYLES.get(rule, ("0.5", "o"))


def pyplot() -> Any:
    """matplotlib.pyplot with the non-interactive Agg backend and :data:`PRINT_STYLE`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.style.use(PRINT_STYLE)
    return plt
