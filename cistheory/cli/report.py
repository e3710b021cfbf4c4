"""``cistheory report`` (the default): serving shares, every rule's weights and bound terms."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ..bounds.corollary import cis_bound
from ..bounds.theorem1 import chi2
from ..rules.registry import RULE_NAMES
from ..system.participation import deepest_exit
from ..system.reference import RATE_SPLITS, REFERENCE_SIGMA
from ..system.spec import load_spec
from ._args import floats
from ._output import emit, emit_json, fmt, table
from .weights import weights_dict

__all__ = ["register", "report_dict"]


def report_dict(
    splits: Sequence[str], data: str, sigma: Sequence[float], flops_round: int = 99
) -> dict[str, Any]:
    """The main job's report: serving shares, every rule's weights and their bound terms.

    For each rate split of the reference 7-node CIS (every node training its deepest exit),
    each rule's ``lt`` with the terms of the full bound (Corollary of ``docs/theory.md``)
    under the illustrative constants :func:`convex.reference_constants` (the reference noise
    constants, its step 0.1 and 100 rounds; curvature constants that are round numbers, not
    measurements). The FLOPs-proportional rule is shown at round ``flops_round`` (the last
    of the reference's 100 rounds by default).
    """
    import convex

    const = convex.reference_constants(sigma)
    rows = []
    for split in splits:
        cis = load_spec(f"reference:{split}:{data}")
        part = deepest_exit(cis)
        entry: dict[str, Any] = {"split": split, "lambda": cis.lam.tolist(), "rules": {}}
        for rule in RULE_NAMES:
            lt = weights_dict(cis, rule, sigma=sigma, round_t=flops_round)["lt"]
            terms = cis_bound(cis, part, lt, const).as_dict()
            entry["rules"][rule] = {"lt": lt, "chi2": chi2(cis.lam, lt), **terms}
        rows.append(entry)
    consts = {k: getattr(const, k) for k in ("L", "mu", "Gamma", "gap0", "T", "eta")}
    return {
        "data": data,
        "sigma": list(sigma),
        "flops_round": flops_round,
        "constants": consts,
        "splits": rows,
    }


def _print_split(entry: dict[str, Any]) -> None:
    emit()
    lam = ", ".join(fmt(x) for x in entry["lambda"])
    emit(f"rate split {entry['split']} (leaves-middles-root %): lambda = ({lam})")
    k = len(entry["lambda"])
    terms = ("generalization", "bias", "optimisation", "total")
    rows = [
        [rule, *(fmt(x) for x in r["lt"]), fmt(r["chi2"]), *(f"{r[t]:.3e}" for t in terms)]
        for rule, r in entry["rules"].items()
    ]
    header = [
        "rule",
        *(f"lt_{j + 1}" for j in range(k)),
        "chi2",
        "generalisation",
        "bias",
        "optimisation",
        "total",
    ]
    emit(table(rows, header))


def _cmd_report(args: argparse.Namespace) -> int:
    sigma = floats(args.sigma, "--sigma") if args.sigma else list(REFERENCE_SIGMA["3-9-17"])
    splits = args.split or list(RATE_SPLITS)
    rep = report_dict(splits, args.data, sigma)
    if args.json:
        emit_json(rep)
        return 0
    c = rep["constants"]
    emit("cistheory report: reference 7-node CIS (root 3 exits, 2 middles, 4 leaves),")
    emit(f"every node training its deepest exit; data split {args.data};")
    emit(
        f"noise constants sigma = {sigma} (exits 3-9-17); flops rule at round {rep['flops_round']}."
    )
    emit(
        f"Bound terms (Corollary, docs/theory.md) with L={c['L']}, mu={c['mu']}, "
        f"Gamma={c['Gamma']}, gap0={c['gap0']}, eta={c['eta']}, T={c['T']}: "
        "illustrative constants, see convex.reference_constants."
    )
    for entry in rep["splits"]:
        _print_split(entry)
    return 0


def register(subparsers: Any) -> None:
    """Add ``report``."""
    rep = subparsers.add_parser("report", help="serving shares and every rule's weights (default)")
    rep.add_argument("--split", action="append", help="rate split(s), default all seven")
    rep.add_argument("--data", default="equal", help="data split: equal, 2x or tiny")
    rep.add_argument("--sigma", help="noise constants per exit (default: reference 3-9-17)")
    rep.add_argument("--json", action="store_true", help="print one JSON object")
    rep.set_defaults(func=_cmd_report)
