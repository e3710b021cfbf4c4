"""Tests of convex.optimal_lt: fast path vs cvxpy, certificates, limits, invariances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cistheory import CISInputError, bounds
from convex import lt_objective, optimal_lt
from convex.cvx import LtProgram

# CLARABEL stops at relative duality gap ~1e-8; objectives agree to 1e-6 with margin.
SOLVER_RTOL = 1e-6
# The fast path's roots are accurate to ~1e-14 relative (Newton to a few ulps), so its
# certificates hold to 1e-10 relative after the sums over up to 10^4 exits.
FAST_RTOL = 1e-10


@st.composite
def lt_problems(draw: st.DrawFn, k_max: int = 8) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Serving shares on the simplex (some exits may serve nothing), v >= 0, a, b."""
    k = draw(st.integers(2, k_max))
    raw = np.array(draw(st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1.0)), min_size=k,
                                  max_size=k)))
    raw[0] += 0.05  # some exit serves requests
    lam = raw / raw.sum()
    v = np.array(draw(st.lists(st.floats(0.01, 10.0), min_size=k, max_size=k)))
    a = draw(st.floats(0.01, 10.0))
    b = draw(st.floats(0.01, 10.0))
    return lam, v, a, b


@given(lt_problems(), st.sampled_from([0.0, 0.01, 0.05]))
@settings(max_examples=30)
def test_fast_matches_cvxpy(
    prob: tuple[np.ndarray, np.ndarray, float, float], lt_min: float
) -> None:
    """Property: the fast solver and cvxpy reach the same optimum (1e-6 relative)."""
    lam, v, a, b = prob
    fast = optimal_lt(lam, v, a, b, lt_min=lt_min)
    cv = optimal_lt(lam, v, a, b, method="cvxpy", lt_min=lt_min)
    assert cv.status.startswith("optimal")
    scale = max(abs(fast.fun), 1e-12)
    # the fast point is at least as good as the solver's (up to the solver's tolerance)
    assert fast.fun <= cv.fun + SOLVER_RTOL * scale
    assert abs(fast.fun - cv.fun) <= SOLVER_RTOL * scale


@given(lt_problems(), st.sampled_from([0.0, 0.02]))
def test_kkt_certificate(prob: tuple[np.ndarray, np.ndarray, float, float], lt_min: float) -> None:
    """Property: feasibility, stationarity g_k = nu off the floor (>= nu on it), zero gap."""
    lam, v, a, b = prob
    r = optimal_lt(lam, v, a, b, lt_min=lt_min)
    x = r.lt
    assert abs(x.sum() - 1) <= 1e-14 * x.size
    assert (x >= lt_min * (1 - 1e-14)).all()
    need = lam > 0
    # (sqrt(a) lam / x)^2 as a ratio first: lam and x may both be subnormal
    ratio2 = np.where(need, np.sqrt(a) * lam / np.where(need, x, 1.0), 0.0) ** 2
    g = -ratio2 + 2 * b * v * x
    scale = ratio2 + 2 * b * v * x + 1e-300
    up = x > lt_min * (1 + 1e-9)
    assert np.all(np.abs(g[up] - r.nu) <= FAST_RTOL * scale[up])
    # the floor multiplier g_k - nu must be >= 0 where the floor binds
    assert np.all(g[~up] - r.nu >= -FAST_RTOL * scale[~up])
    # a certified gap: dual <= primal, and the gap closes
    assert r.gap >= -FAST_RTOL * max(r.fun, 1e-12)
    assert r.gap <= FAST_RTOL * max(r.fun, 1e-12)


@given(lt_problems(k_max=5), st.integers(0, 2**32 - 1))
def test_no_feasible_point_is_better(
    prob: tuple[np.ndarray, np.ndarray, float, float], seed: int
) -> None:
    """Property: the objective at 200 random simplex points never beats the solver's."""
    lam, v, a, b = prob
    r = optimal_lt(lam, v, a, b)
    rng = np.random.default_rng(seed)
    pts = rng.dirichlet(np.ones(lam.size), size=200)
    vals = a * ((lam**2 / pts).sum(axis=1) - 1) + b * (pts**2 * v).sum(axis=1)
    assert vals.min() >= r.fun * (1 - 1e-12)


def test_objective_terms_match_bounds_chi2() -> None:
    """The chi2 term equals cistheory.bounds.chi2 (an independent implementation)."""
    lam = np.array([0.7, 0.2, 0.1])
    r = optimal_lt(lam, [1.0, 2.0, 4.0], 2.0, 3.0)
    # sum lam^2/x - 1 vs sum (lam - x)^2 / x: equal on the simplex up to rounding
    assert r.terms["chi2"] == pytest.approx(2.0 * bounds.chi2(lam, r.lt), rel=1e-12)
    assert r.terms["variance"] == pytest.approx(3.0 * np.sum([1, 2, 4] * r.lt**2), rel=1e-14)
    assert lt_objective(lam, [1.0, 2.0, 4.0], 2.0, 3.0, r.lt) == pytest.approx(r.fun)


@given(lt_problems())
def test_limit_b_to_zero_is_serving_rate(prob: tuple[np.ndarray, np.ndarray, float, float]) -> None:
    """Property: b = 0 gives lt = lam exactly; b -> 0 converges to lam at rate O(b)."""
    lam, v, a, _ = prob
    assert np.allclose(optimal_lt(lam, v, a, 0.0).lt, lam, rtol=0, atol=1e-12)
    # b1 makes the variance term 1e-6 of the chi2 term in every stationarity equation
    # (2 b v x^3 <= 2 b max v <= 1e-6 a min lam^2): the linear regime err(b) = c b (1 + O(1e-6))
    b1 = 1e-6 * a * float(lam[lam > 0].min()) ** 2 / (2 * float(v.max()))
    err = [np.abs(optimal_lt(lam, v, a, b).lt - lam).max() for b in (b1, 1e-3 * b1)]
    # ratio 1e-3 up to the O(1e-6) curvature and rounding of lt (1e-16)
    assert err[1] <= 1.001e-3 * err[0] + 1e-15


@given(lt_problems())
def test_limit_a_to_zero_is_inverse_variance(
    prob: tuple[np.ndarray, np.ndarray, float, float],
) -> None:
    """Property: a = 0 gives lt proportional to 1/v; a -> 0 converges to it."""
    lam, v, _, b = prob
    inv = (1 / v) / (1 / v).sum()
    assert np.allclose(optimal_lt(lam, v, 0.0, b).lt, inv, rtol=1e-12, atol=0)
    # a1 makes the chi2 term 1e-6 of the variance term in every stationarity equation
    # (a lam^2 / x^2 <= a / min(inv)^2 <= 1e-6 * 2 b min v min(inv)): the linear regime
    a1 = 1e-6 * 2 * b * float(v.min()) * float(inv.min()) ** 3
    err = [np.abs(optimal_lt(lam, v, a, b).lt - inv).max() for a in (a1, 1e-3 * a1)]
    # ratio 1e-3 up to the O(1e-6) curvature and rounding of lt (1e-16)
    assert err[1] <= 1.001e-3 * err[0] + 1e-15


@given(lt_problems(), st.data())
def test_relabelling_exits(
    prob: tuple[np.ndarray, np.ndarray, float, float], data: st.DataObject
) -> None:
    """Property: permuting exits permutes the solution and keeps the objective."""
    lam, v, a, b = prob
    perm = np.array(data.draw(st.permutations(range(lam.size))))
    r = optimal_lt(lam, v, a, b)
    rp = optimal_lt(lam[perm], v[perm], a, b)
    assert np.allclose(rp.lt, r.lt[perm], rtol=1e-10, atol=1e-15)
    assert rp.fun == pytest.approx(r.fun, rel=1e-12, abs=1e-15)


def test_zero_weight_exit_padding() -> None:
    """An exit with lam = 0 gets max(lt_min, nu / (2 b v)): none when nu <= 0, and then the
    other weights are unchanged; with nu > 0 it takes exactly that mass."""
    lam, v = np.array([0.8, 0.15, 0.05]), np.array([1.0, 1.0, 1.0])
    base = optimal_lt(lam, v, 1.0, 0.1)
    assert base.nu < 0
    pad = optimal_lt(np.append(lam, 0.0), np.append(v, 5.0), 1.0, 0.1)
    assert pad.lt[-1] == 0.0
    assert np.allclose(pad.lt[:3], base.lt, rtol=1e-12)
    assert pad.fun == pytest.approx(base.fun, rel=1e-12)
    # a = small: nu > 0, the padded exit takes nu / (2 b v)
    r = optimal_lt(np.append(lam, 0.0), np.append(v, 5.0), 1e-3, 1.0)
    assert r.nu > 0
    assert r.lt[-1] == pytest.approx(r.nu / (2 * 1.0 * 5.0), rel=1e-10)


def test_free_exit_and_full_floor() -> None:
    """lam_k = 0 with v_k = 0 costs nothing: it absorbs the mass others do not want."""
    r = optimal_lt([0.5, 0.5, 0.0], [4.0, 4.0, 0.0], 0.01, 1.0)
    assert r.lt[2] > 0.5 and r.gap <= 1e-12
    assert r.fun <= lt_objective([0.5, 0.5, 0.0], [4.0, 4.0, 0.0], 0.01, 1.0, [0.4, 0.4, 0.2])
    # K * lt_min = 1: the only feasible point is uniform
    r = optimal_lt([0.9, 0.1], [1.0, 1.0], 1.0, 1.0, lt_min=0.5)
    assert r.lt.tolist() == [0.5, 0.5] and abs(r.gap) <= 1e-12


def test_large_k_vectorised() -> None:
    """K = 10^4: certificate holds (the benchmark times K up to 10^6)."""
    rng = np.random.default_rng(7)
    k = 10_000
    lam = rng.dirichlet(np.ones(k))
    v = rng.uniform(0.1, 10.0, k)
    r = optimal_lt(lam, v, 1.0, 1.0)
    assert abs(r.gap) <= FAST_RTOL * r.fun
    assert r.nit < 50


def test_dpp_resolve_matches_fresh_build() -> None:
    """Re-solving a built program with new parameter values equals a fresh build."""
    prog = LtProgram(4)
    lam1, lam2 = np.array([0.4, 0.3, 0.2, 0.1]), np.array([0.1, 0.1, 0.3, 0.5])
    v = np.array([1.0, 2.0, 0.5, 3.0])
    prog.solve(lam1, v, 1.0, 2.0)
    again = prog.solve(lam2, v, 0.5, 1.0, lt_min=0.05)
    fresh = LtProgram(4).solve(lam2, v, 0.5, 1.0, lt_min=0.05)
    assert again.fun == pytest.approx(fresh.fun, rel=SOLVER_RTOL)
    assert np.allclose(again.lt, fresh.lt, atol=1e-6)  # solver tolerance on the point
    assert prog.prob.is_dpp()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lam": [0.5, 0.6], "v": [1, 1], "a": 1, "b": 1}, "lam"),
        ({"lam": [0.5, 0.5], "v": [1, -1], "a": 1, "b": 1}, "v[2]"),
        ({"lam": [0.5, 0.5], "v": [1, 1, 1], "a": 1, "b": 1}, "v"),
        ({"lam": [0.5, 0.5], "v": [1, 1], "a": -1, "b": 1}, "a"),
        ({"lam": [0.5, 0.5], "v": [1, 1], "a": 0, "b": 0}, "a, b"),
        ({"lam": [0.5, 0.5], "v": [1, 1], "a": 1, "b": float("nan")}, "b"),
        ({"lam": [0.5, 0.5], "v": [1, 1], "a": 1, "b": 1, "lt_min": 0.6}, "lt_min"),
        ({"lam": [0.5, 0.5], "v": [1, 1], "a": 1, "b": 1, "method": "newton"}, "method"),
        ({"lam": [0.5, 0.5], "v": [1, 1], "a": 1, "b": 1, "max_iter": 0}, "max_iter"),
    ],
)
def test_bad_input_raises(kwargs: dict[str, object], field: str) -> None:
    """Bad inputs raise CISInputError naming the field."""
    with pytest.raises(CISInputError) as exc:
        optimal_lt(**kwargs)  # type: ignore[arg-type]
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("lam", "v", "a", "b"),
    [
        # an exit with lam = 0: the safeguarded Newton on the multiplier runs
        ([0.8, 0.15, 0.05, 0.0], [1.0, 1.0, 1.0, 5.0], 1e-3, 1.0),
        # every lam > 0: the joint Newton (compiled or not) is capped too, then the multiplier
        ([0.6, 0.3, 0.1], [2.0, 1.0, 0.5], 1.0, 1.0),
    ],
)
def test_iteration_limit_is_reported(lam: list[float], v: list[float], a: float, b: float) -> None:
    """A run stopped by ``max_iter`` says so (success False, status "max_iter") and keeps a
    feasible point with a valid certificate; without the limit the same problem is optimal."""
    best = optimal_lt(lam, v, a, b)
    assert best.success and best.status == "optimal" and best.nit > 1
    r = optimal_lt(lam, v, a, b, max_iter=1)
    assert not r.success and r.status == "max_iter" and r.nit == 1
    assert "iteration limit" in r.message
    assert abs(r.x.sum() - 1) <= 1e-14 and (r.x > 0).all()
    # the dual value at the last multiplier is still a lower bound on the optimum
    assert r.lower_bound <= best.fun + FAST_RTOL * best.fun
    assert r.gap == r.fun - r.lower_bound and r.gap > FAST_RTOL * r.fun
