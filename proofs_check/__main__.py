"""Command line: python -m proofs_check [--instances N] [--seed S] [--json] [--only M]."""

from __future__ import annotations

import argparse
import json
import sys
import time

from cistheory.cli._output import ArgumentParser, Progress, run_command

from ._core import CheckResult, Report, Tightness
from .registry import MODULES, run_all

DESCRIPTION = (
    "Check every step of every proof of docs/theory.md: symbolic steps with sympy (an "
    "unproven step fails), numeric inequalities on random instances against exact "
    "computations. Prints a line per statement as it goes (standard error), then the table "
    "of checks and how tight each bound is. Exit status 1 if any check fails."
)

COST: dict[str, float] = {
    "lemma1": 1.0,
    "lemma2": 2.5,
    "theorem1": 1.0,
    "theorem2": 6.0,
    "theorem2_local": 8.0,
    "theorem3": 1.5,
    "corollary": 0.5,
}
"""Relative running time of each statement's checks (measured at 500 instances), for the
estimate of the time left; a statement not listed counts 1."""


def run_with_progress(instances: int, seed: int, modules: tuple[str, ...],
                      quiet: bool = False) -> Report:
    """Run the statements one at a time, printing a line per statement with the time left.

    Each statement gets the generator :func:`run_all` gives it in a full run, so the results
    are those of ``run_all(instances, seed, modules)``.
    """
    bar = Progress(sum(COST.get(m, 1.0) for m in modules), "proofs_check", steps=len(modules))
    checks: list[CheckResult] = []
    tight: list[Tightness] = []
    for name in modules:
        part = run_all(instances, seed, (name,))
        checks.extend(part.checks)
        tight.extend(part.tightness)
        if not quiet:
            n_fail = len(part.failed)
            verdict = "all ok" if not n_fail else f"{n_fail} FAILED"
            bar.step(f"{name}: {len(part.checks)} checks, {verdict}", COST.get(name, 1.0))
    return Report(checks=tuple(checks), tightness=tuple(tight))


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def main(argv: list[str] | None = None) -> int:
    """Run the checks, print a table (or JSON); exit status 1 if any check fails."""
    parser = ArgumentParser(prog="python -m proofs_check", description=DESCRIPTION)
    parser.add_argument("--instances", type=int, default=500,
                        help="random instances per numeric inequality (default 500)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the one generator every statement's draws come from "
                        "(default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--only", action="append", choices=MODULES,
                        help="run only this statement module (repeatable)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress lines on standard error")
    return run_command(lambda: _main(parser.parse_args(argv), parser))


def _main(args: argparse.Namespace, parser: ArgumentParser) -> int:
    """The body of :func:`main` once the arguments are parsed."""
    if args.instances < 1:
        parser.error("--instances must be >= 1")
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    start = time.perf_counter()
    only = args.only
    report = run_with_progress(
        args.instances,
        args.seed,
        tuple(only) if only else MODULES,
        quiet=args.quiet,
    )
    elapsed = time.perf_counter() - start
    if args.json:
        out = report.as_dict()
        out["seed"] = args.seed
        out["instances"] = args.instances
        print(json.dumps(out, indent=1))
        return 0 if report.passed else 1
    head = ("statement", "check", "kind", "inst", "worst slack", "verdict", "step")
    rows: list[tuple[str, ...]] = [
        (c.statement, c.name, c.kind, str(c.instances), _fmt(c.worst_slack),
         "skip" if c.skipped else ("ok" if c.passed else "FAIL"), c.step)
        for c in report.checks
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
    widths.append(0)  # the step text is last and not padded
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    print()
    print("tightness (bound / actual)")
    thead = ("statement", "bound", "inst", "median", "worst", "best")
    trows: list[tuple[str, ...]] = [
        (t.statement, t.bound, str(t.instances), _fmt(t.median_ratio), _fmt(t.worst_ratio),
         _fmt(t.best_ratio))
        for t in report.tightness
    ]
    tw = [max(len(r[i]) for r in [thead, *trows]) for i in range(len(thead))]
    print("  ".join(h.ljust(w) for h, w in zip(thead, tw, strict=True)))
    for r in trows:
        print("  ".join(v.ljust(w) for v, w in zip(r, tw, strict=True)))
    print()
    n_fail = len(report.failed)
    n_skip = sum(c.skipped for c in report.checks)
    print(f"{len(report.checks)} checks, {n_fail} failed, {n_skip} skipped, seed {args.seed}, "
          f"{args.instances} instances, {elapsed:.1f} s")
    for c in report.checks:
        if c.skipped:
            print(f"SKIPPED {c.name}: {c.detail}")
    for c in report.failed:
        print(f"FAILED {c.name}: {c.step} (worst slack {c.worst_slack:.3g}) {c.detail}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
