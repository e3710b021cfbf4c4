"""Tests of convex.design: the mapping to the full bound, policies, the reference table, CLI."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

import cistheory
from cistheory import CISInputError
from cistheory.bounds import CISConstants, cis_bound
from cistheory.cli.design import design_table, register
from convex import (
    bound_optimal_lt,
    compare_eligibility,
    design,
    design_coefficients,
    eligibility,
    optimal_lt,
    reference_constants,
)

# CLARABEL stops at relative duality gap ~1e-8; objectives agree to 1e-6 with margin.
SOLVER_RTOL = 1e-6
# Sums of a handful of terms of very different sizes: a few ulps of the largest.
SUM_RTOL = 1e-12


def _const(**kw: object) -> CISConstants:
    base: dict[str, object] = {
        "L": 1.0, "mu": 0.2, "Gamma": 0.05, "sigma": [0.3, 0.2, 0.1], "G": [0.2, 0.2, 0.2],
        "gap0": 1.0, "T": 50, "eta": 0.5,
    }
    base.update(kw)
    return CISConstants(**base)  # type: ignore[arg-type]


def test_coefficients_fixed_step_closed_form() -> None:
    """A, B, C0 equal the closed forms of the module docstring (fixed step)."""
    c = _const(mu_t=0.25, L_t=1.5, eta=0.4)
    a, b, c0 = design_coefficients(c)
    factor = 2 * 1.0**2 / (0.2 * 0.25)
    assert a == pytest.approx(2 * 1.0 * 0.05 / 0.2, rel=SUM_RTOL)
    base = 1 - 0.4 * 0.25
    assert b == pytest.approx(factor * 0.4 * 1.5 * (1 - base**50) / (2 * 0.25), rel=SUM_RTOL)
    assert c0 == pytest.approx(factor * base**50 * 1.0, rel=SUM_RTOL)


def test_coefficients_diminishing_upper_bound_theorem() -> None:
    """Diminishing steps: B V + C0 >= (2L^2/(mu mu_t)) * Thm 2's bound, equal when one side
    of its max vanishes."""
    c = _const(eta=None, b=6.0, gamma=12.0)
    _, b, c0 = design_coefficients(c)
    factor = 2 / (0.2 * 0.2)

    def thm(v: float, gap0: float) -> float:
        return factor * float(
            cistheory.bounds.sgd_diminishing_bound(50, 6.0, 12.0, 1.0, 0.2, v, gap0)
        )

    for v in (0.0, 0.01, 1.0, 100.0):
        assert b * v + c0 >= thm(v, 1.0) * (1 - SUM_RTOL)
    assert c0 == pytest.approx(thm(0.0, 1.0), rel=SUM_RTOL)  # V = 0: only the gap0 side
    assert b * 3.0 == pytest.approx(thm(3.0, 0.0), rel=SUM_RTOL)  # gap0 = 0: only the V side


@pytest.mark.parametrize("policy", ["deepest", "shallower"])
@pytest.mark.parametrize("data", ["equal", "tiny"])
def test_design_objective_is_the_full_bound(policy: str, data: str) -> None:
    """J at the design equals cistheory.bounds.cis_bound's split total (fixed step, where the
    design objective is exactly the Corollary's split form): an independent implementation."""
    cis = cistheory.reference_cis("60-30-10", data)
    r = design(cis, policy, _const())
    assert r.status == "optimal"
    assert r.fun == pytest.approx(r.bound.total_split, rel=SUM_RTOL)
    assert r.terms["bias"] == pytest.approx(r.bound.bias, rel=1e-9, abs=1e-15)
    # the tight form of Theorem 1(b) is never above the split form
    assert r.bound.total <= r.bound.total_split * (1 + SUM_RTOL)


@pytest.mark.parametrize("policy", ["deepest", "shallower"])
def test_design_fast_matches_cvxpy(policy: str) -> None:
    """The fast design and the cvxpy design agree (1e-6 relative)."""
    cis = cistheory.reference_cis("45-35-20", "2x")
    fast = design(cis, policy, _const(), q_min=0.02)
    cv = design(cis, policy, _const(), q_min=0.02, method="cvxpy")
    assert fast.fun == pytest.approx(cv.fun, rel=SOLVER_RTOL)


def test_design_beats_the_rules_it_generalises() -> None:
    """Property of a minimiser: no rule's weights give a lower J than the design (fixed q)."""
    const = _const()
    for split in cistheory.RATE_SPLITS:
        cis = cistheory.reference_cis(split)
        part = cistheory.deepest_exit(cis)
        r = design(cis, "deepest", const)
        v = cistheory.variance_coefficients(part, const.sigma)
        for lt in (cis.lam, cistheory.balanced_adj(cis.lam, v), cistheory.inverse_variance(v),
                   cistheory.equal(3)):
            other = cis_bound(cis, part, lt, const).total_split
            assert r.fun <= other * (1 + SUM_RTOL)


def test_budget_design() -> None:
    """A binding compute budget is met and raises the bound; an infeasible one raises."""
    cis = cistheory.reference_cis("80-15-5", "tiny")
    free = design(cis, "shallower", _const(), q_min=0.01)
    assert cis.exit_flops is not None
    spend = float((free.q * cis.exit_flops[None, :]).sum())
    tight = design(cis, "shallower", _const(), q_min=0.01, budget=0.95 * spend)
    assert float((tight.q * cis.exit_flops[None, :]).sum()) <= 0.95 * spend * (1 + 1e-12)
    assert tight.fun >= free.fun
    assert tight.status == "optimal"
    with pytest.raises(CISInputError, match="infeasible") as exc:
        design(cis, "shallower", _const(), q_min=0.01, budget=0.1)
    assert exc.value.field == "budget"


@pytest.mark.parametrize("policy", ["deepest", "shallower"])
def test_design_iteration_limit(policy: str) -> None:
    """``max_iter`` reaches the solver used (the weights solver when every node is fixed, the
    joint solver otherwise); a design it stops says so and still evaluates the full bound."""
    cis = cistheory.reference_cis("80-15-5", "tiny")
    best = design(cis, policy, _const())
    assert best.success and best.status == "optimal" and best.nit > 1
    r = design(cis, policy, _const(), max_iter=1)
    assert not r.success and r.status == "max_iter" and r.nit == 1
    assert "iteration limit" in r.message
    assert r.fun == pytest.approx(r.bound.total_split, rel=SUM_RTOL)
    assert r.lower_bound <= best.fun * (1 + SUM_RTOL) and r.gap > 0
    with pytest.raises(CISInputError) as exc:
        design(cis, policy, _const(), max_iter=0)
    assert exc.value.field == "max_iter"


def test_compare_eligibility_tiny_end_devices() -> None:
    """With little data at the leaves, allowing shallower exits lowers the generalisation term
    (larger M_1) and each policy's J is its own full bound."""
    cis = cistheory.reference_cis("80-15-5", "tiny")
    res = compare_eligibility(cis, reference_constants())
    deep, shallow = res["deepest"], res["shallower"]
    assert shallow.terms["generalisation"] < deep.terms["generalisation"]
    for r in res.values():
        assert r.fun == pytest.approx(r.bound.total_split, rel=SUM_RTOL)
    # the deepest policy fixes every node: q is the configuration itself
    assert np.array_equal(deep.q, cistheory.deepest_exit(cis).q)


def test_eligibility_policies() -> None:
    """Deepest fixes every node at kappa_i; shallower frees nodes with several exits."""
    cis = cistheory.reference_cis("80-15-5")
    d = eligibility(cis, "deepest")
    assert (d.fixed == cis.capacity - 1).all() and d.eligible.sum() == cis.n_nodes
    s = eligibility(cis, "shallower")
    assert (s.eligible == cis.eligible).all()
    p40 = eligibility(cis, cistheory.shallower_with_probability(cis, {2: 0.4, 3: 0.8}))
    assert (p40.fixed[3:] == 0).all() and (p40.fixed[:3] == -1).all()
    with pytest.raises(CISInputError):
        eligibility(cis, "sometimes")


def test_bound_optimal_lt_limits_and_defaults() -> None:
    """b = 0 gives Serving Rate; a = 0 gives inverse variance; defaults are documented."""
    cis = cistheory.reference_cis("80-15-5")
    part = cistheory.deepest_exit(cis)
    sigma = cistheory.REFERENCE_SIGMA["3-9-17"]
    v = cistheory.variance_coefficients(part, sigma)
    assert np.allclose(bound_optimal_lt(cis, part, sigma, a=1.0, b=0.0), cis.lam, atol=1e-12)
    assert np.allclose(bound_optimal_lt(cis, part, sigma, a=0.0, b=1.0),
                       cistheory.inverse_variance(v), rtol=1e-12)
    a, b, _ = design_coefficients(reference_constants(sigma))
    assert np.allclose(bound_optimal_lt(cis, part, sigma), optimal_lt(cis.lam, v, a, b).lt)


def test_design_table_rows() -> None:
    """7 splits x 3 rules; the bound-optimal J is the smallest of the three in every split."""
    rows = design_table(reference_constants())
    assert len(rows) == 21
    for split in cistheory.RATE_SPLITS:
        js = {r["rule"]: r["J"] for r in rows if r["split"] == split}
        assert js["bound-optimal-first"] <= min(js.values()) * (1 + SUM_RTOL)


def test_cli_design_json(capsys: pytest.CaptureFixture[str]) -> None:
    """``cistheory design --json`` prints the table as JSON."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    register(sub)
    args = parser.parse_args(["design", "--bound", "first", "--json", "--gamma-bar", "0.01"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["rows"]) == 21 and out["A"] == pytest.approx(0.2)
    args = parser.parse_args(["design", "--bound", "first"])
    assert args.func(args) == 0
    assert "bound-optimal-first" in capsys.readouterr().out


def test_cli_design_second_generation(capsys: pytest.CaptureFixture[str]) -> None:
    """The default design: the second generation on the quadratic problem's exact constants;
    the bound-optimal design's bound is the smallest of the rows, and every bound is above
    the exact error of its design (no design is unstable)."""
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["design", "--json", "--split", "5-15-80", "--T", "300"])
    assert args.func(args) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["rule"] for r in rows][-1] == "bound-optimal"
    # the outer loop's smallest theta is 1e-6 of its largest value, the rules are scored at
    # the smallest admissible theta (0 for fixed nodes): J may differ by that 1e-6
    assert rows[-1]["J"] <= min(r["J"] for r in rows) * (1 + 1e-5)
    assert all(r["exact"] <= r["J"] and r["stable"] for r in rows)


def test_import_is_light() -> None:
    """Importing convex loads neither cvxpy nor torch (they load where used)."""
    code = "import sys, convex; print('cvxpy' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
