"""validate-rates --grid: the exact side against an independent exact computation, the bounds
against it on a tiny grid, the ranking agreement's definition, the command's JSON."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

from cistheory.cli.validate import format_grid, register
from cistheory.experiments import grid as grid_mod
from cistheory.experiments.grid import GridConfig, jsonable, ranking_agreement, run_grid
from cistheory.experiments.second_moments import exact_errors
from cistheory.experiments.validate_rates import ValidationConfig, build_problem
from cistheory.system.aggregation import beta
from cistheory.system.participation import named_policy
from proofs_check._instances import CISInstance
from proofs_check._sgd_exact import PairQuadratics, propagate

TINY = GridConfig(data_splits={"equal": (60, 30, 15)}, rate_splits=("5-15-80",),
                  rules=("serving-rate", "equal"), steps=(0.05, 0.4), horizons=(30,))


@pytest.fixture(scope="module")
def tiny() -> dict:  # type: ignore[type-arg]
    return run_grid(TINY)


def test_exact_side_matches_an_independent_propagation() -> None:
    """experiments.second_moments against proofs_check's own exact propagation (another
    parametrisation, f = (w - c)^T A (w - c)/2), on p40 participation with noise."""
    prob = build_problem(ValidationConfig(n_seeds=2, rounds=10, n_records=4))
    part = named_policy(prob.cis, "p40")
    prob = prob.with_participation(part)
    lt = np.array([0.5, 0.3, 0.2])
    bet = beta(part, lt)
    c = np.zeros_like(prob.b)
    for i, k in zip(*np.nonzero(part.q > 0), strict=True):
        c[i, k] = np.linalg.lstsq(prob.H[i, k], prob.b[i, k], rcond=None)[0]
    inst = CISInstance(q=part.q, m=prob.cis.data, lt=lt, beta=bet)
    pq = PairQuadratics(inst=inst, A=prob.H, c=c, Sigma=prob.noise_cov())
    w0 = np.zeros(prob.mask.shape[1])
    rounds, _ = propagate(pq, w0, np.full(12, 0.05), 1)
    ours = exact_errors(prob, lt, 0.05, [0, 6, 12], w0)
    theirs = [rounds[t].dist2 for t in (0, 6, 12)]
    assert ours.dist2 == pytest.approx(theirs, rel=1e-10)
    assert ours.gap_lt == pytest.approx([rounds[t].gap for t in (0, 6, 12)], rel=1e-10)


def test_tiny_grid_bounds_hold_and_refuse_unstable(tiny: dict) -> None:  # type: ignore[type-arg]
    rows = tiny["configurations"]
    assert len(rows) == 1 * 1 * 2 * 2 * 2 * 1
    for r in rows:
        assert r["exact"] <= r["bound"] * (1 + 1e-9)
        assert r["exact"] <= r["bound_modal"] * (1 + 1e-9)
        assert r["exact"] <= r["bound_scalar"] * (1 + 1e-9)
        if not r["stable"]:
            assert math.isinf(r["bound"])
    # eta = 0.4 with p40 at 5-15-80 is the p40 collapse: unstable, flagged
    unstable = [r for r in rows if not r["stable"]]
    assert unstable and all(r["participation"] == "p40" for r in unstable)
    s = tiny["summary"]
    assert s["violations"] == 0 and s["p40_collapse"]["flagged_new"] == len(unstable)


def test_ranking_agreement_definition() -> None:
    def row(e: float, b: float, group: int = 0) -> dict:  # type: ignore[type-arg]
        return {"data": "d", "rate": "r", "step": group, "T": 1, "exact": e, "b": b}

    # agree, agree, agree
    assert ranking_agreement([row(1, 2), row(2, 3), row(3, 4)], "b")["agreement"] == 1.0
    # one reversed pair of three
    assert ranking_agreement([row(1, 3), row(2, 2), row(3, 4)], "b")["agreement"] == 2 / 3
    # a tie of the bound (both refused) scores 1/2; both exact infinite: not counted
    res = ranking_agreement([row(1, math.inf), row(2, math.inf)], "b")
    assert res == {"pairs": 1, "agreement": 0.5, "strict_agreement": 0.0}
    assert ranking_agreement([row(math.inf, 1), row(math.inf, 2)], "b")["pairs"] == 0
    # exact ties are not counted; groups are separate
    assert ranking_agreement([row(1, 1), row(1, 2), row(2, 3, group=1)], "b")["pairs"] == 0


def test_cli_grid_json(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grid_mod.GridConfig, "quick", classmethod(lambda cls: TINY))
    parser = argparse.ArgumentParser(prog="cistheory")
    register(parser.add_subparsers(dest="cmd"))
    out = tmp_path / "g.json"
    args = parser.parse_args(["validate-rates", "--grid", "--quick", "--json", "--out", str(out)])
    rc = args.func(args)
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == printed
    assert set(printed) == {"configurations", "summary"}
    assert set(printed["configurations"][0]) >= {"exact", "bound", "bound_old", "stable",
                                                 "data", "rate", "participation", "rule", "eta",
                                                 "T"}
    assert set(printed["summary"]) >= {"violations", "median_ratio", "worst_ratio",
                                       "ranking_agreement", "ranking_agreement_old"}
    assert rc == 0


def test_grid_table_and_jsonable(tiny: dict) -> None:  # type: ignore[type-arg]
    assert "ranking" in format_grid(tiny)
    assert jsonable({"a": [math.inf, 1.0]}) == {"a": ["inf", 1.0]}
