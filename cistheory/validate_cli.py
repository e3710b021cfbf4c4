"""``cistheory validate-rates``: measured training error against Theorems 1-2.

``register(subparsers)`` adds the subcommand to the package's argument parser. The work is
done by :func:`cistheory.validate.validate_rates`; this module only parses, prints and
writes the result.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ._io import atomic_write_text
from .errors import CISInputError
from .validate import ValidationConfig, format_table, validate_rates

__all__ = ["register", "run_validate_rates", "write_atomic"]


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically; the folder must exist."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise CISInputError("--out", str(path), "the directory does not exist")
    atomic_write_text(target, text)


def run_validate_rates(args: argparse.Namespace) -> int:
    """Run the validation, print JSON (``--json``) or a table; exit 0 iff every check passes."""
    cfg = ValidationConfig.quick() if args.quick else ValidationConfig()
    if args.seeds is not None:
        if args.seeds < 2:
            raise CISInputError("--seeds", args.seeds, "need >= 2 seeds")
        cfg = dataclasses.replace(cfg, n_seeds=int(args.seeds))
    result = validate_rates(cfg)
    text = result.to_json()
    if args.out is not None:
        write_atomic(args.out, text + "\n")
    if args.json:
        print(text)  # noqa: T201 - CLI output
    else:
        print(format_table(result))  # noqa: T201 - CLI output
    return 0 if all(result.checks.values()) else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``validate-rates [--quick] [--json] [--seeds N] [--out FILE]``."""
    p = subparsers.add_parser(
        "validate-rates",
        help="measured training error vs Theorems 1-2 on convex problems with known constants",
        description=(
            "Run the algorithm (tau = 1) on nested least squares over a three-tier CIS with "
            "known constants, over many seeds, and compare the measured F_lambda(w_t) - "
            "F_lambda* (mean and 95%% half-width) with Theorem 1(c) + Theorem 2, for a fixed "
            "and a diminishing step and several training weights lt. Exit status 0 iff every "
            "check passes."
        ),
    )
    p.add_argument("--quick", action="store_true", help="small configuration (seconds)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: config)")
    p.add_argument("--out", default=None, help="also write the JSON result to FILE (atomically)")
    p.set_defaults(func=run_validate_rates)
