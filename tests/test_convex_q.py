"""Tests of convex.optimal_q: fast water-filling vs cvxpy, KKT certificate, invariances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cistheory import CISInputError
from convex import optimal_q
from convex.cvx import QProgram, solve_q_cvxpy

# CLARABEL stops at relative duality gap / feasibility ~1e-8; objectives agree to 1e-6.
SOLVER_RTOL = 1e-6
# The fast path solves row sums and the budget to 1e-13 relative: its certificates hold to
# 1e-9 relative (stationarity is c/q^2 vs nu, amplified by at most a few).
FAST_RTOL = 1e-9


@st.composite
def q_problems(draw: st.DrawFn, with_budget: bool | None = None) -> dict[str, object]:
    """A small q problem: eligibility, c >= 0 (some zeros), fixed rows, floor, budget."""
    n = draw(st.integers(1, 6))
    k = draw(st.integers(1, 4))
    el = np.array(draw(st.lists(st.booleans(), min_size=n * k, max_size=n * k))).reshape(n, k)
    el[:, 0] = True
    vals = np.array(draw(st.lists(st.floats(1e-3, 5.0), min_size=n * k, max_size=n * k)))
    zero = np.array(draw(st.lists(st.booleans(), min_size=n * k, max_size=n * k)))
    c = np.where(el & ~zero.reshape(n, k), vals.reshape(n, k), 0.0)
    fixed = np.full(n, -1)
    if n > 1 and draw(st.booleans()):
        fixed[0] = 0
        c[0, 1:] = 0.0
    max_el = int(el[fixed < 0].sum(axis=1).max(initial=1))
    q_min = draw(st.sampled_from([0.0, 0.02, 1.0 / (max_el + 1)]))
    cost = np.array(draw(st.lists(st.floats(0.1, 4.0), min_size=k, max_size=k)))
    budget = None
    use_budget = draw(st.booleans()) if with_budget is None else with_budget
    if use_budget:
        free = el & (fixed < 0)[:, None]
        lo = q_min * float((free * cost).sum()) + float(cost[fixed[fixed >= 0]].sum())
        hi = lo + float(cost.max()) * n
        budget = lo + draw(st.floats(0.05, 1.0)) * (hi - lo)
    return {"c": c, "eligible": el, "fixed": fixed, "q_min": q_min, "cost": cost,
            "budget": budget}


@given(q_problems())
@settings(max_examples=30)
def test_fast_matches_cvxpy(prob: dict[str, object]) -> None:
    """Property: the water-filling and cvxpy reach the same optimum (1e-6 relative)."""
    fast = optimal_q(**prob)  # type: ignore[arg-type]
    cv = solve_q_cvxpy(**prob)  # type: ignore[arg-type]
    assert cv.status == "optimal"
    scale = max(fast.fun, 1e-12)
    assert abs(fast.fun - cv.fun) <= SOLVER_RTOL * scale


@given(q_problems())
def test_kkt_certificate(prob: dict[str, object]) -> None:
    """Property: primal feasibility, stationarity, complementarity and a closed gap."""
    r = optimal_q(**prob)  # type: ignore[arg-type]
    q = r.q
    el = np.asarray(prob["eligible"])
    fixed = np.asarray(prob["fixed"])
    assert (q[~el] == 0).all()
    assert (q.sum(axis=1) <= 1 + 1e-12).all()
    free = el & (fixed < 0)[:, None]
    assert (q[free] >= float(prob["q_min"]) * (1 - 1e-12)).all()  # type: ignore[arg-type]
    rows = np.flatnonzero(fixed >= 0)
    assert (q[rows, fixed[rows]] == 1).all()
    if prob["budget"] is not None:
        assert r.spend <= float(prob["budget"]) * (1 + 1e-12)  # type: ignore[arg-type]
    for name, val in r.kkt.items():
        assert val <= FAST_RTOL, (name, val)
    assert abs(r.gap) <= FAST_RTOL * max(r.fun, 1e-12)
    # the certificate is recomputed independently here for the unbudgeted case:
    # c/q^2 equals the row multiplier on every pair above the floor
    if prob["budget"] is None:
        c = np.asarray(prob["c"])
        up = free & (q > float(prob["q_min"]) * (1 + 1e-9)) & (c > 0)  # type: ignore[arg-type]
        i, _ = np.nonzero(up)
        assert np.allclose(c[up] / q[up] ** 2, r.nu[i], rtol=FAST_RTOL)


@given(q_problems(with_budget=False), st.data())
def test_relabelling(prob: dict[str, object], data: st.DataObject) -> None:
    """Property: permuting nodes and exits permutes q and keeps the objective."""
    c = np.asarray(prob["c"])
    n, k = c.shape
    pn = np.array(data.draw(st.permutations(range(n))))
    pk = np.array(data.draw(st.permutations(range(k))))
    fixed = np.asarray(prob["fixed"])
    inv_k = np.argsort(pk)
    fixed_p = np.where(fixed[pn] >= 0, inv_k[np.maximum(fixed[pn], 0)], -1)
    r = optimal_q(c, prob["eligible"], q_min=prob["q_min"], fixed=fixed)  # type: ignore[arg-type]
    rp = optimal_q(c[pn][:, pk], np.asarray(prob["eligible"])[pn][:, pk],
                   q_min=prob["q_min"], fixed=fixed_p)  # type: ignore[arg-type]
    assert rp.fun == pytest.approx(r.fun, rel=1e-12, abs=1e-300)
    assert np.allclose(rp.q, r.q[pn][:, pk], rtol=1e-10, atol=1e-14)


@given(q_problems())
def test_zero_padding(prob: dict[str, object]) -> None:
    """Property: a node with no eligible pair and an exit nobody may train change nothing."""
    c = np.asarray(prob["c"])
    n, k = c.shape
    el = np.asarray(prob["eligible"])
    c2 = np.zeros((n + 1, k + 1))
    c2[:n, :k] = c
    el2 = np.zeros((n + 1, k + 1), dtype=bool)
    el2[:n, :k] = el
    el2[n, k] = False
    cost2 = np.append(np.asarray(prob["cost"]), 1.0)
    fixed2 = np.append(np.asarray(prob["fixed"]), -1)
    r = optimal_q(**prob)  # type: ignore[arg-type]
    r2 = optimal_q(c2, el2, cost=cost2, budget=prob["budget"], q_min=prob["q_min"],  # type: ignore[arg-type]
                   fixed=fixed2)
    assert r2.fun == pytest.approx(r.fun, rel=1e-12, abs=1e-300)
    assert np.allclose(r2.q[:n, :k], r.q, rtol=1e-10, atol=1e-14)
    assert (r2.q[n] == 0).all() and (r2.q[:, k] == 0).all()


def test_closed_form_one_row() -> None:
    """One row, no floor: q_k = sqrt(c_k) / sum sqrt(c), objective (sum sqrt c)^2."""
    c = np.array([[1.0, 4.0, 9.0]])
    r = optimal_q(c, np.ones((1, 3), dtype=bool))
    assert np.allclose(r.q, [[1 / 6, 2 / 6, 3 / 6]], rtol=1e-14)
    assert r.fun == pytest.approx(36.0, rel=1e-14)
    assert r.nu[0] == pytest.approx(36.0, rel=1e-13)


def test_dynamic_range_limit_raises() -> None:
    """Coefficients below 1e-200 of the largest are refused with the reason (not clipped)."""
    with pytest.raises(CISInputError, match="largest coefficient") as exc:
        optimal_q([[1.0, 1e-250]], np.ones((1, 2), dtype=bool))
    assert exc.value.field == "c[0, 1]"
    # uniformly tiny coefficients are fine: the solver works at unit scale
    r = optimal_q([[1e-250, 4e-250]], np.ones((1, 2), dtype=bool))
    assert np.allclose(r.q, [[1 / 3, 2 / 3]], rtol=1e-14)


def test_zero_coefficient_pairs_get_floor() -> None:
    """Pairs with c = 0 get q_min (0 by default): no probability is wasted on them."""
    c = np.array([[0.0, 1.0, 1.0]])
    el = np.ones((1, 3), dtype=bool)
    assert optimal_q(c, el).q[0, 0] == 0.0
    assert optimal_q(c, el, q_min=0.1).q[0, 0] == 0.1


def test_budget_binds_and_is_met() -> None:
    """A binding budget is met with equality and its multiplier is positive."""
    c = np.array([[1.0, 1.0], [2.0, 0.5]])
    el = np.ones((2, 2), dtype=bool)
    cost = np.array([1.0, 3.0])
    free = optimal_q(c, el, cost=cost)
    r = optimal_q(c, el, cost=cost, budget=0.5 * free.spend)
    assert r.rho > 0
    assert r.spend == pytest.approx(0.5 * free.spend, rel=1e-12)
    assert r.fun > free.fun
    # a slack budget changes nothing
    s = optimal_q(c, el, cost=cost, budget=2 * free.spend)
    assert s.rho == 0 and np.allclose(s.q, free.q)


def test_budget_at_minimum_spend() -> None:
    """A budget equal to the spend of q_min everywhere leaves q = q_min."""
    c = np.array([[1.0, 2.0]])
    el = np.ones((1, 2), dtype=bool)
    r = optimal_q(c, el, cost=[1.0, 1.0], budget=0.2, q_min=0.1)
    assert np.allclose(r.q, 0.1)


def test_infeasible_budget_raises_with_reason() -> None:
    """A budget below the cost of q_min everywhere raises CISInputError saying why."""
    c = np.array([[1.0, 2.0], [1.0, 0.0]])
    el = np.ones((2, 2), dtype=bool)
    with pytest.raises(CISInputError, match="already cost") as exc:
        optimal_q(c, el, cost=[1.0, 2.0], budget=0.5, q_min=0.1, fixed=[-1, 0])
    assert exc.value.field == "budget"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"c": [[-1.0]], "eligible": [[True]]}, "c[0, 0]"),
        ({"c": [[1.0, 1.0]], "eligible": [[True, False]]}, "c[0, 1]"),
        ({"c": [[1.0]], "eligible": [[1]]}, "eligible"),
        ({"c": [[1.0, 1.0]], "eligible": [[True, True]], "q_min": 0.6}, "q_min"),
        ({"c": [[1.0, 1.0]], "eligible": [[True, True]], "budget": 1.0}, "cost"),
        ({"c": [[1.0, 0.0]], "eligible": [[True, False]], "fixed": [1]}, "fixed[0]"),
        ({"c": [[1.0, 1.0]], "eligible": [[True, True]], "fixed": [0]}, "c[0, 1]"),
        ({"c": [[1.0, 1.0]], "eligible": [[True, True]], "max_iter": 0}, "max_iter"),
    ],
)
def test_bad_input_raises(kwargs: dict[str, object], field: str) -> None:
    """Bad inputs raise CISInputError naming the field."""
    kw = dict(kwargs)
    kw["eligible"] = np.asarray(kw["eligible"])
    with pytest.raises(CISInputError) as exc:
        optimal_q(**kw)  # type: ignore[arg-type]
    assert exc.value.field == field


def test_million_pairs_certificate() -> None:
    """10^6 pairs with a binding budget: vectorised, certificate holds."""
    rng = np.random.default_rng(11)
    n, k = 250_000, 4
    c = rng.exponential(size=(n, k))
    el = rng.uniform(size=(n, k)) < 0.9
    el[:, 0] = True
    c = np.where(el, c, 0.0)
    cost = np.array([1.0, 2.0, 3.0, 4.0])
    free = optimal_q(c, el, cost=cost, q_min=0.01)
    r = optimal_q(c, el, cost=cost, budget=0.7 * free.spend, q_min=0.01)
    assert r.kkt["stationarity"] <= FAST_RTOL and r.kkt["primal_budget"] <= 1e-9 * r.spend
    assert abs(r.gap) <= 1e-9 * r.fun


def test_dpp_resolve_matches_fresh_build() -> None:
    """Re-solving a built QProgram with new values equals a fresh build."""
    el = np.array([[True, True, False], [True, True, True]])
    c1 = np.array([[1.0, 2.0, 0.0], [0.5, 1.0, 3.0]])
    c2 = np.array([[3.0, 0.1, 0.0], [2.0, 0.0, 1.0]])
    cost = np.array([1.0, 2.0, 3.0])
    prog = QProgram(el, with_budget=True)
    prog.solve(c1, cost=cost, budget=4.0, q_min=0.0)
    again = prog.solve(c2, cost=cost, budget=3.0, q_min=0.05)
    fresh = QProgram(el, with_budget=True).solve(c2, cost=cost, budget=3.0, q_min=0.05)
    assert again.fun == pytest.approx(fresh.fun, rel=SOLVER_RTOL)
    assert np.allclose(again.q, fresh.q, atol=1e-6)  # solver tolerance on the point
    fast = optimal_q(c2, el, cost=cost, budget=3.0, q_min=0.05)
    assert fast.fun == pytest.approx(again.fun, rel=SOLVER_RTOL)
    assert prog.prob.is_dpp()


def test_cvxpy_failure_raises_with_statuses(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cvxpy program whose solvers fail raises SolverError naming each solver and why."""
    import convex.cvx
    from convex import SolverError

    el = np.ones((1, 2), dtype=bool)
    prog = QProgram(el, with_budget=True)
    # bypasses optimal_q's validation: the budget is below the floor's spend (infeasible)
    with pytest.raises(SolverError, match=r"CLARABEL: status infeasible.*SCS: status"):
        prog.solve([[1.0, 1.0]], cost=[1.0, 1.0], budget=0.1, q_min=0.2)
    monkeypatch.setattr(convex.cvx, "SOLVERS", ("NO_SUCH_SOLVER",))
    with pytest.raises(SolverError, match="NO_SUCH_SOLVER: not installed"):
        prog.solve([[1.0, 1.0]], cost=[1.0, 1.0], budget=1.0, q_min=0.0)


def test_iteration_limit_of_the_row_multipliers() -> None:
    """A row solve stopped by ``max_iter`` says so; its dual value is still a lower bound.
    Without a floor the row Newton step is exact, so one step is enough (and reported so)."""
    el = np.ones((1, 3), dtype=bool)
    c = np.array([[1.0, 4.0, 0.001]])  # the last pair sits on the floor q_min = 0.1
    best = optimal_q(c, el, q_min=0.1)
    assert best.success and best.status == "optimal"
    r = optimal_q(c, el, q_min=0.1, max_iter=1)
    assert not r.success and r.status == "max_iter"
    assert "iteration limit" in r.message and "row multipliers" in r.message
    assert r.lower_bound <= best.fun * (1 + FAST_RTOL)
    # not certified: a KKT residual or the gap stays open
    assert max(r.kkt.values()) > FAST_RTOL or abs(r.gap) > FAST_RTOL * r.fun
    exact = optimal_q(np.array([[1.0, 4.0, 9.0]]), el, max_iter=1)
    assert exact.success and exact.status == "optimal"


@pytest.mark.parametrize("max_iter", [1, 2, 3])
def test_iteration_limit_of_the_budget_multiplier(max_iter: int) -> None:
    """The search for rho stopped by ``max_iter`` says so and returns the last point it
    evaluated, with a valid lower bound and KKT residuals that show it is not optimal."""
    rng = np.random.default_rng(5)
    c = np.where(rng.uniform(size=(50, 4)) < 0.8, rng.exponential(size=(50, 4)), 0.0)
    c[:, -1] += 0.1
    el = c > 0
    cost = np.array([0.05, 0.4, 0.7, 1.0])
    budget = 0.6 * optimal_q(c, el, cost=cost, q_min=0.01).spend
    best = optimal_q(c, el, cost=cost, q_min=0.01, budget=budget)
    assert best.success and best.nit > 3
    r = optimal_q(c, el, cost=cost, q_min=0.01, budget=budget, max_iter=max_iter)
    assert not r.success and r.status == "max_iter" and r.nit == max_iter
    assert "iteration limit" in r.message and "budget multiplier" in r.message
    assert r.rho > 0 and r.lower_bound <= best.fun * (1 + FAST_RTOL)
    assert max(r.kkt.values()) > FAST_RTOL
