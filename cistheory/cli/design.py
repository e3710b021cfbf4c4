"""``cistheory design``: bound-optimal weights beside Serving Rate and Balanced Adj."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ..bounds.corollary import CISConstants
from ..rules.registry import rule_inputs, rule_weights
from ..system.participation import deepest_exit
from ..system.reference import DATA_SPLITS, RATE_SPLITS, REFERENCE_SIGMA, reference_cis
from ._output import emit, emit_json

__all__ = ["DESIGN_RULES", "design_table", "register"]

DESIGN_RULES: tuple[str, ...] = ("serving-rate", "balanced-adj", "bound-optimal")
"""The rules the table compares."""


def design_table(
    const: CISConstants,
    splits: Sequence[str] = RATE_SPLITS,
    *,
    data: str | None = "equal",
) -> list[dict[str, Any]]:
    r"""Bound-optimal weights beside Serving Rate and Balanced Adj on the reference CIS.

    For each rate split of the 7-node reference CIS (every node fixed at its deepest exit),
    the weights of :data:`DESIGN_RULES` and each one's design objective :math:`J` with its
    terms (:func:`convex.design_terms`).
    """
    import convex

    out: list[dict[str, Any]] = []
    for split in splits:
        cis = reference_cis(split, data)
        part = deepest_exit(cis)
        inputs = rule_inputs(cis, part, sigma=const.sigma, constants=const)
        for rule in DESIGN_RULES:
            lt = rule_weights(rule, inputs)
            row = convex.design_terms(cis, part, lt, const)
            out.append(
                {"split": split, "rule": rule, "lam": cis.lam.tolist(), "lt": lt.tolist(), **row}
            )
    return out


def _cmd_design(args: argparse.Namespace) -> int:
    import convex

    sigma = REFERENCE_SIGMA[args.exits]
    const = convex.reference_constants(
        sigma, Gamma=args.gamma_bar, eta=args.eta, T=args.T, L=args.L, mu=args.mu
    )
    rows = design_table(const, data=args.data)
    a, b, _ = convex.design_coefficients(const)
    if args.json:
        emit_json({"A": a, "B": b, "rows": rows}, indent=2)
        return 0
    emit(
        f"A = {a:.6g}  B = {b:.6g}  (sigma {args.exits}, Gamma_bar {args.gamma_bar}, "
        f"eta {args.eta}, T {args.T}, L {args.L}, mu {args.mu})"
    )
    emit(f"{'split':>9} {'rule':>14} {'lt':>28} {'J':>12} {'A chi2':>11} {'B V':>11}")
    for r in rows:
        lt = " ".join(f"{x:.4f}" for x in r["lt"])
        t = r["terms"]
        emit(
            f"{r['split']:>9} {r['rule']:>14} {lt:>28} {r['J']:>12.6g} "
            f"{t['bias']:>11.4g} {t['variance']:>11.4g}"
        )
    return 0


def register(subparsers: Any) -> None:
    """Add ``design``."""
    p = subparsers.add_parser(
        "design", help="bound-optimal weights vs Serving Rate and Balanced Adj (reference CIS)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--exits", default="3-9-17", choices=sorted(REFERENCE_SIGMA), help="noise constants"
    )
    p.add_argument("--data", default="equal", choices=sorted(DATA_SPLITS), help="data split")
    p.add_argument("--gamma-bar", type=float, default=0.1, help="upper bound on Gamma")
    p.add_argument("--eta", type=float, default=0.1, help="fixed step size")
    p.add_argument("--T", type=int, default=100, help="number of updates")
    p.add_argument("--L", type=float, default=1.0, help="smoothness")
    p.add_argument("--mu", type=float, default=0.1, help="strong convexity (mu = mu_t)")
    p.set_defaults(func=_cmd_design)
