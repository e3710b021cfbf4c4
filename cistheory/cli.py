"""Command line interface: ``cistheory [report|rates|weights|...]``.

User errors (:class:`cistheory.CISInputError`, missing files) print one line
``error: FIELD = VALUE: REASON`` on stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import CISInputError
from .participation import Participation, deepest_exit, explicit, named_policy
from .reference import RATE_SPLITS, REFERENCE_SIGMA
from .rules import (
    balanced_adj,
    equal,
    flops_proportional,
    inverse_variance,
    serving_rate,
    variance_coefficients,
)
from .spec import load_spec
from .system import CIS

__all__ = ["main", "rule_weights"]

RULE_NAMES = ("serving-rate", "equal", "flops", "opt-err", "balanced-adj", "bound-optimal")

# Subcommands contributed by other parts of the package: (module, function) pairs whose
# function takes the argparse subparsers object and adds its commands.
_PLUGINS: tuple[tuple[str, str], ...] = (
    ("cistheory.train.cli", "register"),
    ("cistheory.validate_cli", "register"),
    ("convex.cli", "register"),
)


def _floats(text: str, field: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CISInputError(field, text, "expected comma-separated numbers") from None


def _participation(cis: CIS, policy: str) -> Participation:
    """``deepest``, ``p40``, or a JSON file holding the table ``q`` (one row per node)."""
    if policy in {"deepest", "p40"}:
        return named_policy(cis, policy)
    if policy.endswith(".json"):
        from pathlib import Path

        path = Path(policy)
        if not path.is_file():
            raise CISInputError("--participation", policy, "no such file")
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CISInputError("--participation", policy, f"cannot parse: {exc}") from None
        if isinstance(table, dict):  # {"node id": [q_1, ..., q_K], ...}
            missing = [nid for nid in cis.node_ids if nid not in table]
            if missing:
                raise CISInputError(f"q[{missing[0]}]", None, "missing row for this node")
            table = [table[nid] for nid in cis.node_ids]
        return explicit(cis, table, name=path.stem)
    raise CISInputError("--participation", policy, "use 'deepest', 'p40' or a .json q table")


def rule_weights(
    cis: CIS,
    rule: str,
    *,
    sigma: Sequence[float] | None = None,
    round_t: int = 0,
    participation: str = "deepest",
) -> dict[str, Any]:
    """Weights of a named rule for a CIS, with what they were computed from.

    Returns a dict with ``lambda``, ``lt``, ``rule`` and, where used, ``v`` (the
    coefficients of the variance bound) and ``sigma``.
    """
    part = _participation(cis, participation)
    part.check_trainable(cis.lam)
    out: dict[str, Any] = {"rule": rule, "lambda": cis.lam.tolist()}
    needs_v = rule in {"opt-err", "balanced-adj", "bound-optimal"}
    v = None
    if needs_v:
        if sigma is None:
            raise CISInputError(
                "--sigma", None, f"rule '{rule}' needs noise constants, one per exit"
            )
        v = variance_coefficients(part, sigma)
        out["sigma"] = list(sigma)
        out["v"] = v.tolist()
    if rule == "serving-rate":
        lt = serving_rate(cis.lam)
    elif rule == "equal":
        lt = equal(cis.n_exits)
    elif rule == "flops":
        if cis.exit_flops is None:
            raise CISInputError("exit_flops", None, "the spec gives no relative FLOPs per exit")
        lt = flops_proportional(cis.exit_flops, round_t)
        out["round"] = round_t
    elif rule == "opt-err":
        assert v is not None
        lt = inverse_variance(v)
    elif rule == "balanced-adj":
        assert v is not None
        lt = balanced_adj(cis.lam, v)
    elif rule == "bound-optimal":
        assert v is not None and sigma is not None
        convex = importlib.import_module("convex")
        lt = np.asarray(convex.bound_optimal_lt(cis, part, sigma))
    else:
        raise CISInputError("--rule", rule, f"unknown rule; use one of {', '.join(RULE_NAMES)}")
    out["lt"] = [float(x) for x in lt]
    return out


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[j])) for r in [header, *rows]) for j in range(len(header))]
    lines = ["  ".join(str(h).rjust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(lines)


def _fmt(x: float, digits: int = 4) -> str:
    return "inf" if math.isinf(x) else f"{x:.{digits}f}"


def _rates_dict(cis: CIS) -> dict[str, Any]:
    srv = cis.serving
    return {
        "spec": cis.name,
        "nodes": [
            {
                "id": nid,
                "exit": int(cis.capacity[i]),
                "arrival": float(cis.arrival[i]),
                "inflow": float(srv.inflow[i]),
                "served": float(srv.served[i]),
                "forwarded": float(srv.forwarded[i]),
                "data": float(cis.data[i]),
            }
            for i, nid in enumerate(cis.node_ids)
        ],
        "served": {nid: float(srv.served[i]) for i, nid in enumerate(cis.node_ids)},
        "lambda": srv.lam.tolist(),
        "per_exit_rate": srv.per_exit.tolist(),
        "dropped": srv.dropped,
        "data_given": cis.data_given,
    }


def _cmd_rates(args: argparse.Namespace) -> int:
    cis = load_spec(args.spec)
    d = _rates_dict(cis)
    if args.json:
        print(json.dumps(d))
        return 0
    rows = [
        [
            n["id"],
            str(n["exit"]),
            _fmt(n["arrival"]),
            _fmt(n["inflow"]),
            _fmt(n["served"]),
            _fmt(n["forwarded"]),
        ]
        for n in d["nodes"]
    ]
    print(f"CIS {cis.name or args.spec}: {cis.n_nodes} nodes, {cis.n_exits} exits")
    if cis.n_nodes <= 60:
        print(_table(rows, ["node", "exit", "arrival", "inflow", "served", "forwarded"]))
    print()
    print(
        _table(
            [
                [str(k + 1), _fmt(r), _fmt(lam)]
                for k, (r, lam) in enumerate(zip(d["per_exit_rate"], d["lambda"], strict=True))
            ],
            ["exit", "served rate", "lambda"],
        )
    )
    print(f"dropped load: {_fmt(d['dropped'])}")
    if not cis.data_given:
        print("note: the spec gives no data sizes; every node counts as holding equal data")
    return 0


def _cmd_weights(args: argparse.Namespace) -> int:
    cis = load_spec(args.spec)
    sigma = _floats(args.sigma, "--sigma") if args.sigma else None
    out = rule_weights(
        cis, args.rule, sigma=sigma, round_t=args.round, participation=args.participation
    )
    out["data_given"] = cis.data_given
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"rule {args.rule} on {cis.name or args.spec} (participation: {args.participation})")
    rows = [
        [str(k + 1), _fmt(lam), _fmt(lt)]
        for k, (lam, lt) in enumerate(zip(out["lambda"], out["lt"], strict=True))
    ]
    print(_table(rows, ["exit", "lambda", "lt"]))
    if not cis.data_given:
        print("note: the spec gives no data sizes; every node counts as holding equal data")
    return 0


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
    from .bounds import chi2, cis_bound

    convex = importlib.import_module("convex")
    const = convex.reference_constants(sigma)
    rows = []
    for split in splits:
        cis = load_spec(f"reference:{split}:{data}")
        part = deepest_exit(cis)
        entry: dict[str, Any] = {"split": split, "lambda": cis.lam.tolist(), "rules": {}}
        for rule in RULE_NAMES:
            lt = rule_weights(cis, rule, sigma=sigma, round_t=flops_round)["lt"]
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


def _cmd_report(args: argparse.Namespace) -> int:
    sigma = _floats(args.sigma, "--sigma") if args.sigma else list(REFERENCE_SIGMA["3-9-17"])
    splits = args.split or list(RATE_SPLITS)
    rep = report_dict(splits, args.data, sigma)
    if args.json:
        print(json.dumps(rep))
        return 0
    c = rep["constants"]
    print("cistheory report: reference 7-node CIS (root 3 exits, 2 middles, 4 leaves),")
    print(f"every node training its deepest exit; data split {args.data};")
    print(
        f"noise constants sigma = {sigma} (exits 3-9-17); flops rule at round {rep['flops_round']}."
    )
    print(
        f"Bound terms (Corollary, docs/theory.md) with L={c['L']}, mu={c['mu']}, "
        f"Gamma={c['Gamma']}, gap0={c['gap0']}, eta={c['eta']}, T={c['T']}: "
        "illustrative constants, see convex.reference_constants."
    )
    for entry in rep["splits"]:
        print()
        lam = ", ".join(_fmt(x) for x in entry["lambda"])
        print(f"rate split {entry['split']} (leaves-middles-root %): lambda = ({lam})")
        k = len(entry["lambda"])
        rows = []
        for rule, r in entry["rules"].items():
            rows.append(
                [
                    rule,
                    *(_fmt(x) for x in r["lt"]),
                    _fmt(r["chi2"]),
                    f"{r['generalization']:.3e}",
                    f"{r['bias']:.3e}",
                    f"{r['optimisation']:.3e}",
                    f"{r['total']:.3e}",
                ]
            )
        print(
            _table(
                rows,
                [
                    "rule",
                    *(f"lt_{j + 1}" for j in range(k)),
                    "chi2",
                    "generalisation",
                    "bias",
                    "optimisation",
                    "total",
                ],
            )
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cistheory`` command."""
    p = argparse.ArgumentParser(
        prog="cistheory",
        description="Serving shares, training-weight rules and bounds for Collaborative "
        "Inference Systems. Without a subcommand, runs 'report' on built-in defaults.",
    )
    sub = p.add_subparsers(dest="command")

    rep = sub.add_parser("report", help="serving shares and every rule's weights (default)")
    rep.add_argument("--split", action="append", help="rate split(s), default all seven")
    rep.add_argument("--data", default="equal", help="data split: equal, 2x or tiny")
    rep.add_argument("--sigma", help="noise constants per exit (default: reference 3-9-17)")
    rep.add_argument("--json", action="store_true", help="print one JSON object")
    rep.set_defaults(func=_cmd_report)

    r = sub.add_parser("rates", help="served rate per node, lambda per exit, dropped load")
    r.add_argument("spec", help="spec file (.json/.toml) or reference:SPLIT[:DATA][:NODES]")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.set_defaults(func=_cmd_rates)

    w = sub.add_parser("weights", help="lambda and a rule's training weights lt")
    w.add_argument("spec", help="spec file (.json/.toml) or reference:SPLIT[:DATA][:NODES]")
    w.add_argument("--rule", required=True, choices=RULE_NAMES)
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

    for module, func in _PLUGINS:
        reg: Callable[[Any], None] = getattr(importlib.import_module(module), func)
        reg(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cistheory`` command; returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in {"-h", "--help"}):
        argv = ["report", *argv]
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CISInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
