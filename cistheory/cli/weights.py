"""``cistheory weights SPEC --rule RULE``: serving shares and a rule's training weights."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from .._fields import Field, check_value
from ..errors import CISInputError
from ..rules.formulas import REFERENCE_HORIZON
from ..rules.registry import RULE_NAMES, get_rule, rule_inputs
from ..system.spec import load_spec
from ..system.tree import CIS
from ._args import (
    CONSTANT_FLAGS,
    Constants,
    add_constant_options,
    constants_from_args,
    floats,
    participation,
)
from ._output import emit, emit_json, fmt, note, table

__all__ = ["register", "unused_inputs", "weights_dict"]

_HORIZON = Field("int", low=1, high=10**7)
_ROUND = Field("int", low=0)


# long: one entry per input a rule may read, each checked and recorded in the JSON object
def weights_dict(
    cis: CIS,
    rule: str,
    *,
    sigma: Sequence[float] | None = None,
    round_t: int | None = None,
    horizon: int = REFERENCE_HORIZON,
    exit_flops: Sequence[float] | None = None,
    policy: str = "deepest",
    constants: Constants | None = None,
) -> dict[str, Any]:
    """The JSON object of ``cistheory weights --json`` (schema in ``docs/json-output.md``).

    ``rule``, ``participation``, ``lambda`` and ``lt``, and, where the rule reads them,
    ``sigma`` and ``v`` (the coefficients of the variance bound), the FLOPs schedule's
    ``round``, ``horizon`` and ``exit_flops``, or the bound's ``constants``. The FLOPs
    schedule defaults to its last round, ``horizon - 1`` (its final weights), as the report
    shows it. Inputs the rule does not read are not used (:func:`unused_inputs` names them).
    """
    part = participation(cis, policy)
    r = get_rule(rule)
    uses_sigma = "v" in r.needs or "sigma" in r.needs
    if uses_sigma and sigma is None:
        raise CISInputError("--sigma", None, f"rule '{rule}' needs noise constants, one per exit")
    if not uses_sigma:
        sigma = None
    uses_constants = "cis" in r.needs and "part" in r.needs
    if not r.per_round:
        round_t, exit_flops, horizon = None, None, REFERENCE_HORIZON
    horizon = check_value(horizon, _HORIZON, "--horizon")
    if round_t is not None:
        round_t = check_value(round_t, _ROUND, "--round")
        if round_t >= horizon:
            raise CISInputError("--round", round_t, f"must be below the horizon {horizon} "
                                f"(rounds 0..{horizon - 1})")
    if r.per_round and exit_flops is None and cis.exit_flops is None:
        raise CISInputError("--flops", None, "the spec gives no relative FLOPs per exit; give "
                            "them as R1,R2,... (full model = 1)")
    inputs = rule_inputs(
        cis,
        part,
        sigma=sigma,
        round_t=round_t,
        horizon=horizon,
        exit_flops=exit_flops,
        constants=None if constants is None or not uses_constants else constants.const,
    )
    out: dict[str, Any] = {"rule": rule, "participation": part.name, "lambda": cis.lam.tolist()}
    if inputs.v is not None and uses_sigma:
        out["sigma"] = list(sigma or [])
        out["v"] = inputs.v.tolist()
    if r.per_round:
        assert inputs.exit_flops is not None
        out["round"] = horizon - 1 if round_t is None else round_t
        out["horizon"] = horizon
        out["exit_flops"] = inputs.exit_flops.tolist()
    if uses_constants and constants is not None:
        out["constants"] = constants.as_dict()
    out["lt"] = [float(x) for x in r.weights(inputs)]
    return out


def unused_inputs(rule: str, args: argparse.Namespace) -> list[str]:
    """The options given that ``rule`` does not read (said in a note, never silently)."""
    r = get_rule(rule)
    out = []
    if args.sigma and not ({"v", "sigma"} & set(r.needs)):
        out.append("--sigma")
    if not r.per_round:
        out += [f"--{k}" for k in ("round", "horizon", "flops") if getattr(args, k) is not None]
    if not ("cis" in r.needs and "part" in r.needs):
        out += ["--constants"] if args.constants else []
        out += [f"--{k}" for k in CONSTANT_FLAGS if getattr(args, f"const_{k}") is not None]
    return out


def _cmd_weights(args: argparse.Namespace) -> int:
    cis = load_spec(args.spec)
    sigma = floats(args.sigma, "--sigma") if args.sigma else None
    flops = floats(args.flops, "--flops") if args.flops else None
    rule = get_rule(args.rule)
    wants = "cis" in rule.needs and "part" in rule.needs
    given = args.constants or any(getattr(args, f"const_{k}") is not None for k in CONSTANT_FLAGS)
    consts = constants_from_args(args, sigma) if (wants or given) else None
    if consts is not None and wants and sigma is None and "sigma" in consts.given:
        sigma = list(map(float, consts.const.sigma))  # type: ignore[arg-type]
    out = weights_dict(
        cis,
        args.rule,
        sigma=sigma,
        round_t=args.round,
        horizon=REFERENCE_HORIZON if args.horizon is None else args.horizon,
        exit_flops=flops,
        policy=args.participation,
        constants=consts,
    )
    out["data_given"] = cis.data_given
    unused = unused_inputs(args.rule, args)
    if unused:
        note(f"rule {args.rule} does not use {', '.join(unused)}")
    if consts is not None and "constants" in out and consts.note():
        note(consts.note())
    if args.json:
        emit_json(out)
        return 0
    emit(f"rule {args.rule} on {cis.name or args.spec} (participation: {out['participation']})")
    if "round" in out:
        emit(f"FLOPs schedule at round {out['round']} of rounds 0..{out['horizon'] - 1} "
             f"(tau = {(out['round'] + 1) / out['horizon']:g}); exit FLOPs {out['exit_flops']}")
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
    w = subparsers.add_parser(
        "weights",
        help="lambda and a rule's training weights lt",
        description="Serving shares lambda of a CIS and the training weights lt of one rule.",
    )
    w.add_argument("spec", help="spec file (.json/.toml) or reference:SPLIT[:DATA][:NODES]")
    w.add_argument("--rule", required=True, choices=RULE_NAMES, help="the training-weight rule")
    w.add_argument(
        "--sigma",
        help="gradient-noise constants, one per exit: S1,S2,... (opt-err, balanced-adj, "
        "bound-optimal)",
    )
    w.add_argument(
        "--round",
        type=int,
        default=None,
        help="round t of the flops schedule, 0..HORIZON-1 (default: the last, HORIZON-1)",
    )
    w.add_argument(
        "--horizon",
        type=int,
        default=None,
        help="rounds H of the flops schedule, tau_t = (t+1)/H (default: 100, the reference's)",
    )
    w.add_argument(
        "--flops",
        help="relative FLOPs of each exit, R1,R2,... in (0, 1] (default: the spec's exit_flops)",
    )
    w.add_argument(
        "--participation",
        default="deepest",
        help="deepest, p40, or a JSON file with the table q: a list of rows, one per node, "
        "or an object node id -> row",
    )
    add_constant_options(w)
    w.add_argument("--json", action="store_true", help="print one JSON object")
    w.set_defaults(func=_cmd_weights)
