"""``cistheory validate-rates``: measured training error against Theorems 1-2, and with
``--grid`` the bounds of both generations against the exact error over a grid of designs.

The work is done by :func:`cistheory.experiments.validate_rates` and
:func:`cistheory.experiments.grid.run_grid`; this module parses the options, prints the result
and writes it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from .._io import atomic_write_text, check_writable
from ..errors import CISInputError
from ..experiments.grid import BOUND_KEYS, GridConfig, jsonable, run_grid
from ..experiments.validate_rates import ValidationConfig, ValidationResult, validate_rates
from ._output import Progress, emit, fmt, progress, table

__all__ = ["format_grid", "format_table", "register"]


def format_table(result: ValidationResult) -> str:
    """A readable table of the runs (a few recorded rounds each) and the checks."""
    lines = []
    lam = result.config.get("lambda")
    lines.append(
        f"validate-rates: lambda = {lam}, seeds = {result.config['n_seeds']}, "
        f"rounds = {result.config['rounds']}"
    )
    head = (
        f"{'rule':<14}{'schedule':<12}{'chi2':>8}{'slope':>8}{'floor':>11}{'bias':>11}"
        f"{'slope_lt':>10}"
    )
    lines.append(head)
    for r in result.runs:
        slope = "-" if r.slope is None else f"{r.slope:.3f}"
        slope_lt = "-" if r.slope_lt is None else f"{r.slope_lt:.3f}"
        lines.append(
            f"{r.lt_rule:<14}{r.schedule:<12}{r.chi2:>8.4f}{slope:>8}"
            f"{r.floor:>11.3e}{r.bias_exact:>11.3e}{slope_lt:>10}"
        )
    lines.append("")
    lines.append(
        f"{'rule':<14}{'schedule':<12}{'t':>7}{'measured':>12}{'ci':>11}{'bound':>11}"
        f"{'e_t':>12}{'ci_e':>11}{'thm2':>11}"
    )
    for r in result.runs:
        n_rec = len(r.t)
        for j in sorted({0, n_rec // 4, n_rec // 2, (3 * n_rec) // 4, n_rec - 1}):
            lines.append(
                f"{r.lt_rule:<14}{r.schedule:<12}{r.t[j]:>7d}{r.measured[j]:>12.4e}"
                f"{r.ci[j]:>11.2e}{r.bound[j]:>11.3e}"
                f"{r.measured_lt[j]:>12.4e}{r.ci_lt[j]:>11.2e}{r.bound_lt[j]:>11.3e}"
            )
    lines.append("")
    for name, ok in sorted(result.checks.items()):
        lines.append(f"{name:<26}{'ok' if ok else 'FAILED'}")
    return "\n".join(lines)


def format_grid(result: dict[str, Any]) -> str:
    """The grid's summary as a table: one row per bound."""
    s = result["summary"]
    rows = []
    for key in BOUND_KEYS:
        b = s["bounds"][key]
        rank = b["ranking"]["agreement"]
        rows.append((
            key, b["violations"], _num(b["median_ratio"]), _num(b["worst_ratio"]),
            b["refused_stable"], b["finite_on_unstable"], "-" if rank is None else fmt(rank, 3),
        ))
    head = ("bound", "violations", "median", "worst", "refused stable", "finite unstable",
            "ranking")
    pc = s["p40_collapse"]
    return "\n".join([
        f"validate-rates --grid: {s['n_configurations']} configurations "
        f"({s['n_unstable']} mean-square unstable), {s['runtime_s']:.1f} s",
        table(rows, head),
        f"p40 collapse at 5-15-80: {pc['unstable_rows']} unstable rows, flagged by the new "
        f"bound {pc['flagged_new']}, by the old {pc['flagged_old']}",
    ])


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def _cmd_grid(args: argparse.Namespace) -> int:
    """``--grid``: exit 0 iff the new bound has no violation and is never finite on an
    unstable configuration."""
    if args.seeds is not None:
        raise CISInputError("--seeds", args.seeds, "the grid is exact: it has no seeds")
    if args.out is not None:
        check_writable(args.out, "--out")
    result = run_grid(GridConfig.quick() if args.quick else GridConfig(),
                      progress=None if args.quiet else progress)
    out = jsonable(result)
    text = json.dumps(out)
    if args.out is not None:
        atomic_write_text(args.out, text + "\n")
    emit(text if args.json else format_grid(result))
    b = result["summary"]["bounds"]["bound"]
    return 0 if b["violations"] == 0 and b["finite_on_unstable"] == 0 else 1


def _cmd_validate_rates(args: argparse.Namespace) -> int:
    """Run the validation, print JSON (``--json``) or a table; exit 0 iff every check passes."""
    if args.grid:
        return _cmd_grid(args)
    cfg = ValidationConfig.quick() if args.quick else ValidationConfig()
    if args.seeds is not None:
        if args.seeds < 2:
            raise CISInputError("--seeds", args.seeds, "need >= 2 seeds")
        cfg = dataclasses.replace(cfg, n_seeds=int(args.seeds))
    if args.out is not None:
        check_writable(args.out, "--out")
    bar = Progress(int(cfg.rounds), "validate-rates", every=2.0)
    result = validate_rates(
        cfg, progress=None if args.quiet else lambda t, n: bar.update(t, f"round {t} of {n}")
    )
    text = json.dumps(result.as_dict())
    if args.out is not None:
        atomic_write_text(args.out, text + "\n")
    emit(text if args.json else format_table(result))
    return 0 if all(result.checks.values()) else 1


def register(subparsers: Any) -> None:
    """Add ``validate-rates [--grid] [--quick] [--json] [--seeds N] [--out FILE]``."""
    p = subparsers.add_parser(
        "validate-rates",
        help="measured training error vs Theorems 1-2 on convex problems with known constants",
        description=(
            "Run the algorithm (tau = 1) on nested least squares over a three-tier CIS with "
            "known constants, over many seeds, and compare the measured F_lambda(w_t) - "
            "F_lambda* (mean and 95% half-width) with Theorem 1(c) + Theorem 2, for a fixed "
            "and a diminishing step and several training weights lt. Exit status 0 iff every "
            "check passes. With --grid: the exact error (second moments) against the second- "
            "and the first-generation bound over 672 configurations (72 with --quick); exit "
            "status 0 iff the second generation has no violation and is never finite on an "
            "unstable configuration."
        ),
    )
    p.add_argument(
        "--grid",
        action="store_true",
        help="exact error against the new and the old bound over a grid of designs (data "
        "split x rate split x participation x rule x step x horizon), with violations, "
        "bound/exact and pairwise ranking agreement",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="400 seeds, 3000 rounds (about 10 s on 2 cores); with --grid: 72 configurations",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--seeds", type=int, default=None, help="number of seeds, >= 2 (default: the config's)"
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help="also write the JSON result to FILE (atomically; checked before the run starts)",
    )
    p.add_argument(
        "--quiet", action="store_true", help="no progress lines on standard error"
    )
    p.set_defaults(func=_cmd_validate_rates)
