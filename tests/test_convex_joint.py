"""Tests of convex.solve_joint: alternation with a certified gap vs the cvxpy joint program."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cistheory import CISInputError
from convex import joint_objective, optimal_lt, optimal_q, solve_joint
from convex.cvx import JointProgram

# CLARABEL stops at relative duality gap ~1e-8; objectives agree to 1e-6 with margin.
SOLVER_RTOL = 1e-6
# The alternation stops at a certified relative gap of 1e-9 (solve_joint's default).
GAP_RTOL = 1e-9


@st.composite
def joint_problems(draw: st.DrawFn, with_budget: bool | None = None) -> dict[str, object]:
    """lam on the simplex, fixed and free rows, w >= 0 on free pairs, floors, budget."""
    n = draw(st.integers(1, 4))
    k = draw(st.integers(1, 3))
    raw = np.array(draw(st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1.0)), min_size=k,
                                  max_size=k)))
    raw[-1] += 0.1
    lam = raw / raw.sum()
    el = np.array(draw(st.lists(st.booleans(), min_size=n * k, max_size=n * k))).reshape(n, k)
    el[:, -1] = True  # every node may train the deepest exit
    fixed = np.full(n, -1)
    if n > 1 and draw(st.booleans()):
        fixed[0] = k - 1
    free = el & (fixed < 0)[:, None]
    w = np.where(free, np.array(draw(st.lists(st.floats(0.05, 3.0), min_size=n * k,
                                              max_size=n * k))).reshape(n, k), 0.0)
    v_fixed = np.zeros(k)
    if fixed[0] >= 0:
        v_fixed[fixed[0]] = draw(st.floats(0.05, 2.0))
    # every exit with lam > 0 must be trainable: exits nobody may train get lam = 0 weight
    trainable = el.any(axis=0)
    lam = np.where(trainable, lam, 0.0)
    lam = lam / lam.sum()
    a = draw(st.floats(0.05, 5.0))
    b = draw(st.floats(0.05, 5.0))
    max_el = int(free.sum(axis=1).max(initial=1))
    q_min = draw(st.sampled_from([0.0, 0.5 / max(max_el, 1)]))
    lt_min = draw(st.sampled_from([0.0, 0.1 / k]))
    cost = np.arange(1.0, k + 1)
    budget = None
    use_budget = draw(st.booleans()) if with_budget is None else with_budget
    if use_budget:
        lo = q_min * float((free * cost).sum()) + float(cost[fixed[fixed >= 0]].sum())
        budget = lo + draw(st.floats(0.1, 1.0)) * float(cost.max()) * n
    return {"lam": lam, "v_fixed": v_fixed, "w": w, "eligible": el, "a": a, "b": b,
            "fixed": fixed, "lt_min": lt_min, "q_min": q_min, "cost": cost, "budget": budget}


@given(joint_problems())
@settings(max_examples=25)
def test_fast_matches_cvxpy(prob: dict[str, object]) -> None:
    """Property: alternation and the cvxpy joint program agree (1e-6 relative); the certified
    lower bound does not exceed the solver's objective."""
    fast = solve_joint(**prob)  # type: ignore[arg-type]
    cv = solve_joint(**prob, method="cvxpy")  # type: ignore[arg-type]
    assert fast.status == "optimal"
    assert cv.status == "optimal"
    scale = max(abs(fast.fun), 1e-12)
    assert abs(fast.fun - cv.fun) <= SOLVER_RTOL * scale
    # the lower bounds are certified: neither may exceed any feasible objective
    assert fast.lower_bound <= cv.fun + SOLVER_RTOL * scale
    assert cv.lower_bound <= fast.fun + SOLVER_RTOL * scale
    # (cv.gap itself is not asserted small: at a solver point with x_k ~ q ~ 1e-11 instead
    # of 0 the perspective x^2/q has gradients of order 1, and the first-order bound there
    # is valid but loose, up to 1% on these problems)
    assert fast.gap <= GAP_RTOL * scale


@given(joint_problems())
def test_blocks_are_optimal_at_the_solution(prob: dict[str, object]) -> None:
    """Property: at the joint solution, neither block solver improves the objective."""
    r = solve_joint(**prob)  # type: ignore[arg-type]
    lam, w, vf = prob["lam"], np.asarray(prob["w"]), np.asarray(prob["v_fixed"])
    a, b = float(prob["a"]), float(prob["b"])  # type: ignore[arg-type]
    c = b * w * r.lt[None, :] ** 2
    qb = optimal_q(c, prob["eligible"], cost=prob["cost"], budget=prob["budget"],  # type: ignore[arg-type]
                   q_min=prob["q_min"], fixed=prob["fixed"])  # type: ignore[arg-type]
    j_q = joint_objective(lam, vf, w, a, b, r.lt, qb.q)[0]  # type: ignore[arg-type]
    v = vf + np.where(w > 0, w / np.maximum(r.q, 1e-300), 0.0).sum(axis=0)
    lb = optimal_lt(lam, v, a, b, lt_min=prob["lt_min"])  # type: ignore[arg-type]
    j_lt = joint_objective(lam, vf, w, a, b, lb.lt, r.q)[0]  # type: ignore[arg-type]
    tol = GAP_RTOL * max(r.fun, 1e-12)
    assert j_q >= r.fun - tol
    assert j_lt >= r.fun - tol


@given(joint_problems(with_budget=False), st.data())
def test_relabelling_nodes(prob: dict[str, object], data: st.DataObject) -> None:
    """Property: permuting nodes permutes q and keeps weights and objective."""
    n = np.asarray(prob["w"]).shape[0]
    perm = np.array(data.draw(st.permutations(range(n))))
    r = solve_joint(**prob)  # type: ignore[arg-type]
    pp = dict(prob)
    for key in ("w", "eligible", "fixed"):
        pp[key] = np.asarray(prob[key])[perm]
    rp = solve_joint(**pp)  # type: ignore[arg-type]
    assert rp.fun == pytest.approx(r.fun, rel=10 * GAP_RTOL)
    assert np.allclose(rp.lt, r.lt, atol=1e-4)  # weights converge at sqrt(gap) rate
    assert np.allclose(rp.q, r.q[perm], atol=1e-4)


@given(joint_problems(with_budget=False))
def test_zero_weight_node_padding(prob: dict[str, object]) -> None:
    """Property: an extra node with w = 0 on its eligible pairs changes nothing else."""
    w = np.asarray(prob["w"])
    n, k = w.shape
    pp = dict(prob)
    pp["w"] = np.vstack([w, np.zeros(k)])
    # eligible at the deepest exit only, so that the floor q_min stays feasible for its row
    pp["eligible"] = np.vstack([np.asarray(prob["eligible"]), np.arange(k) == k - 1])
    pp["fixed"] = np.append(np.asarray(prob["fixed"]), -1)
    r = solve_joint(**prob)  # type: ignore[arg-type]
    rp = solve_joint(**pp)  # type: ignore[arg-type]
    assert rp.fun == pytest.approx(r.fun, rel=10 * GAP_RTOL)
    assert rp.q[n, -1] == pytest.approx(float(prob["q_min"]))  # type: ignore[arg-type]
    assert (rp.q[n, :-1] == 0).all()


def test_dpp_resolve_matches_fresh_build() -> None:
    """Re-solving a built JointProgram with new values equals a fresh build and the fast path."""
    el = np.array([[True, True, True], [True, True, False], [False, True, True]])
    fixed = np.array([-1, -1, 2])
    w1 = np.where(el & (fixed < 0)[:, None], 1.0, 0.0)
    w2 = np.where(el & (fixed < 0)[:, None], [[0.3, 1.0, 2.0]], 0.0)
    vf = np.array([0.0, 0.0, 0.5])
    prog = JointProgram(el, fixed)
    prog.solve([0.5, 0.3, 0.2], vf, w1, 1.0, 1.0)
    again = prog.solve([0.2, 0.2, 0.6], vf, w2, 2.0, 0.5, q_min=0.05, lt_min=0.02)
    fresh = JointProgram(el, fixed).solve([0.2, 0.2, 0.6], vf, w2, 2.0, 0.5, q_min=0.05,
                                          lt_min=0.02)
    assert again.fun == pytest.approx(fresh.fun, rel=SOLVER_RTOL)
    fast = solve_joint([0.2, 0.2, 0.6], vf, w2, el, 2.0, 0.5, fixed=fixed, q_min=0.05,
                       lt_min=0.02)
    assert fast.fun == pytest.approx(again.fun, rel=SOLVER_RTOL)
    assert prog.prob.is_dpp()


def test_b_zero_limit_is_serving_rate() -> None:
    """b = 0: no variance term, lt = lam whatever q is."""
    el = np.ones((2, 2), dtype=bool)
    r = solve_joint([0.7, 0.3], [0.0, 0.0], np.ones((2, 2)), el, 1.0, 0.0)
    assert np.allclose(r.lt, [0.7, 0.3], atol=1e-12)


def test_exit_without_serving_share_can_take_weight() -> None:
    """lam_2 = 0 but exit 2 has cheap variance: the optimum gives it weight, which the
    alternation must find although its first q-step may leave q_{., 2} = 0."""
    el = np.array([[True, False], [False, True], [True, True]])
    w = np.array([[50.0, 0.0], [0.0, 0.1], [1.0, 1.0]])
    lam = [1.0, 0.0]
    for q_min in (0.0, 0.05):
        fast = solve_joint(lam, [0.0, 0.0], w, el, 0.1, 1.0, q_min=q_min)
        cv = solve_joint(lam, [0.0, 0.0], w, el, 0.1, 1.0, q_min=q_min, method="cvxpy")
        assert fast.status == "optimal"
        assert fast.lt[1] > 0.05
        assert fast.fun == pytest.approx(cv.fun, rel=SOLVER_RTOL)


def test_iteration_limit_is_reported() -> None:
    """A run stopped by ``max_iter`` says so (success False, status "max_iter"), keeps a
    feasible point and a valid lower bound; ``max_iter`` below 1 is refused."""
    el = np.array([[True, True, True], [True, True, False], [False, True, True]])
    fixed = np.array([-1, -1, 2])
    w = np.where(el & (fixed < 0)[:, None], [[0.3, 1.0, 2.0]], 0.0)
    args = ([0.2, 0.2, 0.6], [0.0, 0.0, 0.5], w, el, 2.0, 0.5)
    best = solve_joint(*args, fixed=fixed, q_min=0.05)
    assert best.success and best.status == "optimal" and best.nit > 1
    r = solve_joint(*args, fixed=fixed, q_min=0.05, max_iter=1)
    assert not r.success and r.status == "max_iter" and r.nit == 1
    assert "iteration limit" in r.message
    assert abs(r.x.sum() - 1) <= 1e-12 and (r.q.sum(axis=1) <= 1 + 1e-12).all()
    assert r.lower_bound <= best.fun * (1 + GAP_RTOL)
    assert r.gap > GAP_RTOL * r.fun
    with pytest.raises(CISInputError) as exc:
        solve_joint(*args, fixed=fixed, max_iter=0)
    assert exc.value.field == "max_iter"
