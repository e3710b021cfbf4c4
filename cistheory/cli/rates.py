"""``cistheory rates SPEC``: served rate per node, serving shares per exit, dropped load."""

from __future__ import annotations

import argparse
from typing import Any

from ..system.spec import load_spec
from ..system.tree import CIS
from ._output import emit, emit_json, fmt, table

__all__ = ["rates_dict", "register"]


def rates_dict(cis: CIS) -> dict[str, Any]:
    """The JSON object of ``cistheory rates --json``."""
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
    d = rates_dict(cis)
    if args.json:
        emit_json(d)
        return 0
    rows = [
        [
            n["id"],
            str(n["exit"]),
            *(fmt(n[k]) for k in ("arrival", "inflow", "served", "forwarded")),
        ]
        for n in d["nodes"]
    ]
    emit(f"CIS {cis.name or args.spec}: {cis.n_nodes} nodes, {cis.n_exits} exits")
    if cis.n_nodes <= 60:
        emit(table(rows, ["node", "exit", "arrival", "inflow", "served", "forwarded"]))
    emit()
    per_exit = zip(d["per_exit_rate"], d["lambda"], strict=True)
    emit(
        table(
            [[str(k + 1), fmt(r), fmt(lam)] for k, (r, lam) in enumerate(per_exit)],
            ["exit", "served rate", "lambda"],
        )
    )
    emit(f"dropped load: {fmt(d['dropped'])}")
    if not cis.data_given:
        emit("note: the spec gives no data sizes; every node counts as holding equal data")
    return 0


def register(subparsers: Any) -> None:
    """Add ``rates``."""
    r = subparsers.add_parser(
        "rates",
        help="served rate per node, lambda per exit, dropped load",
        description="Route a CIS's requests: the rate each node receives, serves and "
        "forwards, the serving shares lambda per exit and the load the root drops.",
    )
    r.add_argument("spec", help="spec file (.json/.toml) or reference:SPLIT[:DATA][:NODES]")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.set_defaults(func=_cmd_rates)
