"""Command line: ``python -m proofs_check [--instances N] [--seed S] [--json] [--only M]``."""

from __future__ import annotations

import argparse
import json
import sys
import time

from .registry import MODULES, run_all


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def main(argv: list[str] | None = None) -> int:
    """Run the checks, print a table (or JSON); exit status 1 if any check fails."""
    parser = argparse.ArgumentParser(prog="python -m proofs_check", description=__doc__)
    parser.add_argument("--instances", type=int, default=500,
                        help="random instances per numeric inequality (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the one generator")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--only", action="append", choices=MODULES,
                        help="run only this statement module (repeatable)")
    args = parser.parse_args(argv)
    if args.instances < 1:
        parser.error("--instances must be >= 1")
    start = time.perf_counter()
    report = run_all(args.instances, args.seed, tuple(args.only) if args.only else None)
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
         "ok" if c.passed else "FAIL", c.step)
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
    print(f"{len(report.checks)} checks, {n_fail} failed, seed {args.seed}, "
          f"{args.instances} instances, {elapsed:.1f} s")
    for c in report.failed:
        print(f"FAILED {c.name}: {c.step} (worst slack {c.worst_slack:.3g}) {c.detail}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
