"""``cistheory report`` (the default): serving shares, every rule's weights and bound terms."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ..bounds.corollary import cis_bound
from ..bounds.theorem1 import chi2
from ..rules.formulas import REFERENCE_HORIZON
from ..rules.registry import RULE_NAMES
from ..system.participation import deepest_exit
from ..system.reference import DATA_SPLITS, RATE_SPLITS, REFERENCE_SIGMA
from ..system.spec import load_spec
from ._args import CONSTANT_FLAGS, Constants, floats
from ._output import emit, emit_json, fmt, table
from .weights import weights_dict

__all__ = ["register", "report_dict"]


def report_dict(
    splits: Sequence[str],
    data: str,
    sigma: Sequence[float],
    flops_round: int | None = None,
    horizon: int = REFERENCE_HORIZON,
) -> dict[str, Any]:
    """The main job's report: serving shares, every rule's weights and their bound terms.

    For each rate split of the reference 7-node CIS (every node training its deepest exit),
    each rule's ``lt`` with the terms of the first generation's full bound (Corollary of
    ``docs/theory.md``; the second generation's bound needs each design's curvature and noise
    constants, which ``cistheory design`` and ``cistheory validate-rates --grid`` compute exactly
    on the quadratic problem)
    under the illustrative constants :func:`convex.reference_constants` (the reference noise
    constants, its step 0.1 and 100 rounds; curvature constants that are round numbers, not
    measurements). The FLOPs-proportional rule is shown at round ``flops_round`` of a
    schedule of ``horizon`` rounds (by default the last of the reference's 100, as
    ``cistheory weights`` shows it). ``total`` is the tight form of the bound, at most
    ``total_split``, the sum of the three terms. Schema: ``docs/json-output.md``.
    """
    import convex

    const = convex.reference_constants(sigma)
    rows = []
    for split in splits:
        cis = load_spec(f"reference:{split}:{data}")
        part = deepest_exit(cis)
        entry: dict[str, Any] = {"split": split, "lambda": cis.lam.tolist(), "rules": {}}
        for rule in RULE_NAMES:
            lt = weights_dict(cis, rule, sigma=sigma, round_t=flops_round, horizon=horizon)["lt"]
            terms = cis_bound(cis, part, lt, const).as_dict()
            entry["rules"][rule] = {"lt": lt, "chi2": chi2(cis.lam, lt), **terms}
        rows.append(entry)
    consts = Constants(const, (), tuple(CONSTANT_FLAGS)).as_dict()
    return {
        "data": data,
        "sigma": list(sigma),
        "flops": {"round": horizon - 1 if flops_round is None else flops_round,
                  "horizon": horizon},
        "constants": consts,
        "splits": rows,
    }


def _print_split(entry: dict[str, Any]) -> None:
    emit()
    lam = ", ".join(fmt(x) for x in entry["lambda"])
    emit(f"rate split {entry['split']} (leaves-middles-root %): lambda = ({lam})")
    k = len(entry["lambda"])
    terms = ("generalisation", "bias", "optimisation", "total_split", "total")
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
        "sum of terms",
        "total (tight)",
    ]
    emit(table(rows, header))


def _cmd_report(args: argparse.Namespace) -> int:
    sigma = floats(args.sigma, "--sigma") if args.sigma else list(REFERENCE_SIGMA["3-9-17"])
    splits = args.split or list(RATE_SPLITS)
    horizon = REFERENCE_HORIZON if args.horizon is None else args.horizon
    rep = report_dict(splits, args.data, sigma, args.round, horizon)
    if args.json:
        emit_json(rep)
        return 0
    c = rep["constants"]
    emit("cistheory report: reference 7-node CIS (root 3 exits, 2 middles, 4 leaves),")
    emit(f"every node training its deepest exit; data split {args.data};")
    fl = rep["flops"]
    emit(
        f"noise constants sigma = {sigma} (exits 3-9-17); flops rule at round {fl['round']} "
        f"of rounds 0..{fl['horizon'] - 1}."
    )
    emit(
        "Bound terms of the first generation (Corollary, docs/theory.md 4.8; the second "
        "generation needs each design's constants: cistheory design, cistheory "
        "validate-rates --grid)"
        f" with L={c['L']}, mu={c['mu']}, "
        f"Gamma={c['Gamma']}, gap0={c['gap0']}, eta={c['eta']}, T={c['T']}: "
        "illustrative constants, see convex.reference_constants."
    )
    emit(
        "'sum of terms' is generalisation + bias + optimisation; 'total (tight)' uses the "
        "tight form of Theorem 1(b) and is never above it."
    )
    for entry in rep["splits"]:
        _print_split(entry)
    return 0


def register(subparsers: Any) -> None:
    """Add ``report``."""
    rep = subparsers.add_parser(
        "report",
        help="serving shares and every rule's weights (default)",
        description="The reference 7-node CIS at each rate split: lambda, every rule's lt, "
        "chi2 and the bound's terms.",
    )
    rep.add_argument(
        "--split",
        action="append",
        help="rate split A-B-C summing to 100 (repeatable; default: the seven reference splits)",
    )
    rep.add_argument(
        "--data", default="equal", choices=sorted(DATA_SPLITS), help="data split (default equal)"
    )
    rep.add_argument(
        "--sigma", help="noise constants per exit, S1,S2,S3 (default: reference 3-9-17)"
    )
    rep.add_argument(
        "--round",
        type=int,
        default=None,
        help="round of the flops schedule (default: the last, HORIZON-1)",
    )
    rep.add_argument(
        "--horizon",
        type=int,
        default=None,
        help="rounds of the flops schedule, tau_t = (t+1)/H (default: 100, the reference's)",
    )
    rep.add_argument("--json", action="store_true", help="print one JSON object")
    rep.set_defaults(func=_cmd_report)
