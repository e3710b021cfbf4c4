"""``cistheory design``: the bound-optimal design beside Serving Rate, Balanced Adj and Equal.

By default (``--bound second``) on the second-generation bound (``docs/theory.md``
Section 5.2) with constants computed exactly on ``validate-rates``' quadratic problem for each
reference rate split, every design scored by its bound and its exact error
(:func:`cistheory.cli._design_eval.design_rows`); ``--bound first`` gives the first
generation's table (illustrative or given constants, reference splits or ``--spec``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ..bounds.corollary import CISConstants
from ..errors import CISInputError
from ..rules.registry import rule_inputs, rule_weights
from ..system.participation import deepest_exit
from ..system.reference import DATA_SPLITS, RATE_SPLITS, REFERENCE_SIGMA, reference_cis
from ..system.spec import load_spec
from ..system.tree import CIS
from ._args import add_constant_options, constants_from_args, floats
from ._output import emit, emit_json, note

__all__ = ["DESIGN_RULES", "design_table", "register"]

DESIGN_RULES: tuple[str, ...] = ("serving-rate", "balanced-adj", "bound-optimal-first")
"""The rules the first generation's table compares."""


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


def _cmd_design_second(args: argparse.Namespace) -> int:
    """The second generation's design on the quadratic problem (module docstring)."""
    from ._design_eval import DATA, design_rows

    constants_from_args(args, None)  # every constant flag checked, as with --bound first
    for flag in ("spec", "sigma", "constants", *(f"const_{k}" for k in ("L", "mu", "Gamma",
                                                                         "gap0", "eta"))):
        if getattr(args, flag, None) is not None:
            name = "--" + flag.removeprefix("const_")
            raise CISInputError(name, getattr(args, flag), "applies to --bound first: the "
                                "second generation computes its constants on the quadratic "
                                "problem")
    if args.data not in DATA:
        raise CISInputError("--data", args.data, f"the quadratic problem has {sorted(DATA)}")
    T = 1000 if args.const_T is None else int(args.const_T)
    splits = args.split or list(RATE_SPLITS)
    for sp in splits:
        if sp not in RATE_SPLITS:
            raise CISInputError("--split", sp, f"choose from {list(RATE_SPLITS)}")
    rows = [r for sp in splits for r in design_rows(sp, args.data, T=T)]
    if args.json:
        emit_json({"bound": "second", "data": args.data, "T": T, "rows": rows}, indent=2)
        return 0
    emit(f"second-generation design (docs/theory.md 5.2), constants exact on the quadratic "
         f"problem, data {args.data}, T {T}; J = the bound, exact = E F_lam(w_T) - F*")
    emit(f"{'split':>9} {'rule':>24} {'policy':>10} {'lt':>22} {'eta':>7} {'J':>10} "
         f"{'exact':>10}")
    for r in rows:
        lt = " ".join(f"{x:.3f}" for x in r["lt"])
        emit(f"{r['split'].split()[1]:>9} {r['rule']:>24} {r['policy']:>10} {lt:>22} "
             f"{r['eta']:>7.4g} {r['J']:>10.4g} {r['exact']:>10.4g}")
    return 0


def _cmd_design(args: argparse.Namespace) -> int:
    import convex

    if args.bound == "second":
        return _cmd_design_second(args)

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
        help="bound-optimal design vs Serving Rate, Balanced Adj and Equal",
        description="The bound-optimal design (weights, participation policy, step) of the "
        "second-generation bound with its step-stability constraint, beside Serving Rate, "
        "Balanced Adj and Equal, on the seven reference rate splits, with constants computed "
        "exactly on validate-rates' quadratic problem; each design with its bound J and its "
        "exact error. --bound first: the first generation's weights and objective J on the "
        "reference splits or given specs, with illustrative or given constants.",
    )
    p.add_argument(
        "--bound",
        default="second",
        choices=("second", "first"),
        help="second (default): the second-generation design on the quadratic problem's "
        "exact constants; first: the first generation's table",
    )
    p.add_argument(
        "--split", action="append",
        help="rate split for --bound second (repeatable; default: all seven)",
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
