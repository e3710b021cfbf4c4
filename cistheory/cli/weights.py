"""``cistheory weights SPEC --rule RULE``: serving shares and a rule's training weights."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ..errors import CISInputError
from ..rules.registry import RULE_NAMES, get_rule, rule_inputs
from ..system.spec import load_spec
from ..system.tree import CIS
from ._args import floats, participation
from ._output import emit, emit_json, fmt, table

__all__ = ["register", "weights_dict"]


def weights_dict(
    cis: CIS,
    rule: str,
    *,
    sigma: Sequence[float] | None = None,
    round_t: int = 0,
    policy: str = "deepest",
) -> dict[str, Any]:
    """The JSON object of ``cistheory weights --json``: ``rule``, ``lambda``, ``lt`` and, where
    the rule uses them, ``sigma`` and ``v`` (the coefficients of the variance bound) or
    ``round``."""
    part = participation(cis, policy)
    r = get_rule(rule)
    if ("v" in r.needs or "sigma" in r.needs) and sigma is None:
        raise CISInputError("--sigma", None, f"rule '{rule}' needs noise constants, one per exit")
    if "exit_flops" in r.needs and cis.exit_flops is None:
        raise CISInputError("exit_flops", None, "the spec gives no relative FLOPs per exit")
    inputs = rule_inputs(cis, part, sigma=sigma, round_t=round_t)
    out: dict[str, Any] = {"rule": rule, "lambda": cis.lam.tolist()}
    if inputs.v is not None and ("v" in r.needs or "sigma" in r.needs):
        out["sigma"] = list(sigma or [])
        out["v"] = inputs.v.tolist()
    if r.per_round:
        out["round"] = round_t
    out["lt"] = [float(x) for x in r.weights(inputs)]
    return out


def _cmd_weights(args: argparse.Namespace) -> int:
    cis = load_spec(args.spec)
    sigma = floats(args.sigma, "--sigma") if args.sigma else None
    out = weights_dict(cis, args.rule, sigma=sigma, round_t=args.round, policy=args.participation)
    out["data_given"] = cis.data_given
    if args.json:
        emit_json(out)
        return 0
    emit(f"rule {args.rule} on {cis.name or args.spec} (participation: {args.participation})")
    rows = [
        [str(k + 1), fmt(lam), fmt(lt)]
        for k, (lam, lt) in enumerate(zip(out["lambda"], out["lt"], strict=True))
    ]
    emit(table(rows, ["exit", "lambda", "lt"]))
    if not cis.data_given:
        emit("note: the spec gives no data sizes; every node counts as holding equal data")
    return 0


def register(subparsers: Any) -> None:
    """Add ``weights``."""
    w = subparsers.add_parser("weights", help="lambda and a rule's training weights lt")
    w.add_argument("spec", help="spec file (.json/.toml) or reference:SPLIT[:DATA][:NODES]")
    w.add_argument("--rule", required=True, choices=RULE_NAMES, help="the training-weight rule")
    w.add_argument("--sigma", help="gradient-noise constants, one per exit: S1,S2,...")
    w.add_argument("--round", type=int, default=0, help="round t for the flops schedule")
    w.add_argument(
        "--participation",
        default="deepest",
        help="deepest, p40, or a JSON file with the table q: a list of rows, one per node, "
        "or an object node id -> row",
    )
    w.add_argument("--json", action="store_true", help="print one JSON object")
    w.set_defaults(func=_cmd_weights)
