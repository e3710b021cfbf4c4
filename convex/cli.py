"""``cistheory design``: the bound-optimal weights table of the reference CIS (CLI code)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import cistheory

from .design import design_coefficients, design_table, reference_constants

__all__ = ["register"]


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _cmd_design(args: argparse.Namespace) -> int:
    sigma = cistheory.REFERENCE_SIGMA[args.exits]
    const = reference_constants(sigma, Gamma=args.gamma_bar, eta=args.eta, T=args.T,
                                L=args.L, mu=args.mu)
    rows = design_table(const, data=args.data)
    a, b, _ = design_coefficients(const)
    if args.json:
        _out(json.dumps({"A": a, "B": b, "rows": rows}, indent=2))
        return 0
    _out(f"A = {a:.6g}  B = {b:.6g}  (sigma {args.exits}, Gamma_bar {args.gamma_bar}, "
          f"eta {args.eta}, T {args.T}, L {args.L}, mu {args.mu})")
    _out(f"{'split':>9} {'rule':>14} {'lt':>28} {'J':>12} {'A chi2':>11} {'B V':>11}")
    for r in rows:
        lt = " ".join(f"{x:.4f}" for x in r["lt"])
        t = r["terms"]
        _out(f"{r['split']:>9} {r['rule']:>14} {lt:>28} {r['J']:>12.6g} "
              f"{t['bias']:>11.4g} {t['variance']:>11.4g}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``cistheory design``: the bound-optimal weights table of the reference CIS."""
    p = subparsers.add_parser(
        "design", help="bound-optimal weights vs Serving Rate and Balanced Adj (reference CIS)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--exits", default="3-9-17", choices=sorted(cistheory.REFERENCE_SIGMA))
    p.add_argument("--data", default="equal", choices=sorted(cistheory.DATA_SPLITS))
    p.add_argument("--gamma-bar", type=float, default=0.1, help="upper bound on Gamma")
    p.add_argument("--eta", type=float, default=0.1, help="fixed step size")
    p.add_argument("--T", type=int, default=100, help="number of updates")
    p.add_argument("--L", type=float, default=1.0, help="smoothness")
    p.add_argument("--mu", type=float, default=0.1, help="strong convexity (mu = mu_t)")
    p.set_defaults(func=_cmd_design)
