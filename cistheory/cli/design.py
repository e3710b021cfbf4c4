"""``cistheory design``: bound-optimal weights beside Serving Rate and Balanced Adj."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ..bounds.corollary import CISConstants
from ..rules.registry import rule_inputs, rule_weights
from ..system.participation import deepest_exit
from ..system.reference import DATA_SPLITS, RATE_SPLITS, REFERENCE_SIGMA, reference_cis
from ..system.spec import load_spec
from ..system.tree import CIS
from ._args import add_constant_options, constants_from_args, floats
from ._output import emit, emit_json, note

__all__ = ["DESIGN_RULES", "design_table", "register"]

DESIGN_RULES: tuple[str, ...] = ("serving-rate", "balanced-adj", "bound-optimal")
"""The rules the table compares."""


def design_table(
    const: CISConstants,
    splits: Sequence[str] = RATE_SPLITS,
    *,
    data: str | None = "equal",
    systems: Sequence[CIS] | None = None,
) -> list[dict[str, Any]]:
    r"""Bound-optimal weights beside Serving Rate and Balanced Adj.

    For each rate split of the 7-node reference CIS (or each CIS of ``systems``), every node
    fixed at its deepest exit, the weights of :data:`DESIGN_RULES` and each one's design
    objective :math:`J` with its terms (:func:`convex.design_terms`). Each row has ``split``
    (the CIS's name for ``systems``), ``rule``, ``lambda``, ``lt``, ``J``, ``terms`` and
    ``total``, the tight-form total of the bound (schema: ``docs/json-output.md``).
    """
    import convex

    cases = (
        [(split, reference_cis(split, data)) for split in splits]
        if systems is None
        else [(c.name, c) for c in systems]
    )
    out: list[dict[str, Any]] = []
    for name, cis in cases:
        part = deepest_exit(cis)
        inputs = rule_inputs(cis, part, sigma=const.sigma, constants=const)
        for rule in DESIGN_RULES:
            lt = rule_weights(rule, inputs)
            row = convex.design_terms(cis, part, lt, const)
            out.append(
                {
                    "split": name,
                    "rule": rule,
                    "lambda": cis.lam.tolist(),
                    "lt": lt.tolist(),
                    "J": row["J"],
                    "terms": row["terms"],
                    "total": row["bound_tight"],
                }
            )
    return out


def _cmd_design(args: argparse.Namespace) -> int:
    import convex

    sigma = floats(args.sigma, "--sigma") if args.sigma else list(REFERENCE_SIGMA[args.exits])
    consts = constants_from_args(args, sigma)
    const = consts.const
    systems = [load_spec(s) for s in args.spec] if args.spec else None
    rows = design_table(const, data=args.data, systems=systems)
    a, b, _ = convex.design_coefficients(const)
    if consts.note():
        note(consts.note())
    if args.json:
        emit_json({"A": a, "B": b, "sigma": list(sigma), "constants": consts.as_dict(),
                   "rows": rows}, indent=2)
        return 0
    c = consts.as_dict()
    where = "the given spec(s)" if systems else f"the reference CIS, data split {args.data}"
    emit(
        f"A = {a:.6g}  B = {b:.6g}  on {where}; sigma {sigma}; L {c['L']}, mu {c['mu']}, "
        f"Gamma {c['Gamma']}, gap0 {c['gap0']}, T {c['T']}, eta {c.get('eta')}"
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
        "design",
        help="bound-optimal weights vs Serving Rate and Balanced Adj (reference CIS or a spec)",
        description="Bound-optimal training weights beside Serving Rate and Balanced Adj, each "
        "with its design objective J, on the seven reference rate splits or on given specs.",
    )
    p.add_argument(
        "--spec",
        action="append",
        help="a spec file or reference:SPLIT[:DATA][:NODES] to design for (repeatable; "
        "default: the seven reference splits)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--exits",
        default="3-9-17",
        choices=sorted(REFERENCE_SIGMA),
        help="the reference noise constants of these exit units (default 3-9-17)",
    )
    p.add_argument(
        "--sigma", help="noise constants per exit, S1,S2,... (instead of --exits)"
    )
    p.add_argument(
        "--data",
        default="equal",
        choices=sorted(DATA_SPLITS),
        help="data split of the reference CIS (default equal)",
    )
    add_constant_options(p, gamma_alias=True)
    p.set_defaults(func=_cmd_design)
