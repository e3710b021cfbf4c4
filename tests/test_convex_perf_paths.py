"""Tests of the fast paths of convex.optimal_lt and convex.optimal_q against their full paths.

``optimal_lt`` first tries lean input checks and a joint Newton iteration on Python floats
(K <= ``_SMALL_K``) or numpy arrays; everything else goes through the full validation and
the safeguarded solver. These tests check that the lean paths return the same answer as the
full path, that they refuse nothing valid and accept nothing invalid, and that the budget
multiplier search of ``optimal_q`` (Newton on spend^-2, predicted row multipliers, (K, N)
layout) keeps its certificate on the cases it handles specially.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cistheory import CISInputError
from convex import LtResult, optimal_lt, optimal_q
from convex import lt as lt_mod
from convex.objective import check_lt_inputs, lt_dual_bound

# Two runs of Newton's method to rounding level (residual <= 1e-14 relative, see
# convex.lt._JOINT_RTOL) on the same problem: points agree to a few ulps of their entries
# times the conditioning of g_k (at most ~100 on these problems), objectives to rounding.
SAME_RTOL = 1e-11
# certificates of the fast paths (as tests/test_convex_lt.py and test_convex_q.py)
FAST_RTOL = 1e-10


@st.composite
def positive_lt_problems(
    draw: st.DrawFn, k_min: int = 1, k_max: int = 40
) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """Every lam_k > 0 (the lean path's domain), v >= 0, a > 0, b >= 0, a small floor."""
    k = draw(st.integers(k_min, k_max))
    raw = np.array(draw(st.lists(st.floats(1e-4, 1.0), min_size=k, max_size=k)))
    lam = raw / raw.sum()
    v = np.array(draw(st.lists(st.floats(0.0, 10.0), min_size=k, max_size=k)))
    a = draw(st.floats(1e-3, 10.0))
    b = draw(st.sampled_from([0.0, 1e-3, 0.5, 10.0]))
    lt_min = draw(st.sampled_from([0.0, 1e-3 / k]))
    return lam, v, a, b, lt_min


def _full_path(
    lam: np.ndarray, v: np.ndarray, a: float, b: float, lt_min: float
) -> LtResult:
    return lt_mod._fast(*check_lt_inputs(lam, v, a, b, lt_min))


@given(positive_lt_problems())
def test_lean_lt_matches_full_path(
    prob: tuple[np.ndarray, np.ndarray, float, float, float],
) -> None:
    """Property: the lean path's answer equals the full path's, with the same certificate."""
    lam, v, a, b, lt_min = prob
    fast = optimal_lt(lam, v, a, b, lt_min=lt_min)
    full = _full_path(lam, v, a, b, lt_min)
    assert np.allclose(fast.lt, full.lt, rtol=SAME_RTOL, atol=1e-15)
    # absolute floors: chi2 = sum lam^2/x - 1 and the dual (nu - a + sum of terms ~a) are
    # differences of O(1) sums, exact only to ~K ulps of a (the objective may be 0 at b = 0)
    ulps = 1e-14 * lam.size
    assert fast.fun == pytest.approx(full.fun, rel=SAME_RTOL, abs=ulps * a)
    assert fast.terms["chi2"] == pytest.approx(full.terms["chi2"], rel=SAME_RTOL, abs=ulps * a)
    assert fast.terms["variance"] == pytest.approx(full.terms["variance"], rel=SAME_RTOL,
                                                   abs=1e-300)
    scale = max(abs(full.nu), a)  # g_k ranges over ~a near x = lam
    assert abs(fast.nu - full.nu) <= SAME_RTOL * scale
    assert abs(fast.gap) <= FAST_RTOL * max(fast.fun, 1e-12) + ulps * a
    assert abs(fast.lt.sum() - 1) <= 1e-14 * lam.size
    assert (fast.lt >= lt_min).all()
    # the dual value reported is d(nu) recomputed from scratch by the full-path routine
    d = lt_dual_bound(lam, v, a, b, lt_min, fast.nu)
    assert fast.lower_bound == pytest.approx(d, rel=SAME_RTOL, abs=ulps * a)


@given(positive_lt_problems(k_max=lt_mod._SMALL_K))
def test_scalar_and_vector_iterations_agree(
    prob: tuple[np.ndarray, np.ndarray, float, float, float],
) -> None:
    """Property: the Python-float and numpy versions of the joint Newton agree."""
    lean = lt_mod._lean_inputs(*prob)
    assert lean is not None  # every problem drawn lies in the lean path's domain
    small = lt_mod._joint_small(*lean)
    vec = lt_mod._joint_vec(*lean)
    assert (small is None) == (vec is None)
    if small is not None and vec is not None:
        assert np.allclose(small.lt, vec.lt, rtol=SAME_RTOL, atol=1e-15)
        assert small.fun == pytest.approx(vec.fun, rel=SAME_RTOL)


@pytest.mark.parametrize("k", [lt_mod._SMALL_K, lt_mod._SMALL_K + 1])
def test_both_sides_of_the_size_switch(k: int) -> None:
    """K just below and above the switch to numpy: same answer as the full path."""
    rng = np.random.default_rng(11)
    lam = rng.dirichlet(np.ones(k))
    v = rng.uniform(0.1, 10.0, k)
    fast = optimal_lt(lam, v, 1.0, 0.5)
    full = _full_path(lam, v, 1.0, 0.5, 0.0)
    assert np.allclose(fast.lt, full.lt, rtol=SAME_RTOL)
    assert fast.nit == full.nit  # the same Newton iterates


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lam": [0.5, float("nan")], "v": [1, 1], "a": 1, "b": 1}, "lam[2]"),
        ({"lam": [0.5, 0.5], "v": [1, float("inf")], "a": 1, "b": 1}, "v[2]"),
        ({"lam": [0.5, 0.5 + 2e-9], "v": [1, 1], "a": 1, "b": 1}, "lam"),
        ({"lam": [1.0, 1e-120], "v": [1, 1], "a": 1, "b": 1}, "lam[2]"),
        ({"lam": [0.5, 0.5], "v": [1, 1], "a": float("inf"), "b": 1}, "a"),
        ({"lam": [0.5, 0.5], "v": [1, 1], "a": 1, "b": -0.0 - 1e-300}, "b"),
        ({"lam": [0.5, 0.5], "v": [1, 1], "a": 1, "b": 1, "lt_min": float("nan")}, "lt_min"),
        ({"lam": [[0.5, 0.5]], "v": [1, 1], "a": 1, "b": 1}, "lam"),
        ({"lam": np.full(30, 1 / 30), "v": np.r_[np.ones(29), -1.0], "a": 1, "b": 1}, "v[30]"),
        ({"lam": np.r_[np.full(29, 1 / 29), np.nan], "v": np.ones(30), "a": 1, "b": 1},
         "lam[30]"),
    ],
)
def test_lean_checks_send_bad_input_to_full_validation(
    kwargs: dict[str, object], field: str
) -> None:
    """Bad inputs the lean checks see (small and large K) still raise naming the field."""
    with pytest.raises(CISInputError) as exc:
        optimal_lt(**kwargs)  # type: ignore[arg-type]
    assert exc.value.field == field


def test_lean_checks_accept_boundary_but_valid_input() -> None:
    """A simplex sum within as_simplex's tolerance but outside the lean test's half of it
    goes through the full path and is solved, not refused."""
    lam = np.array([0.5, 0.5 + 1.5e-9])  # |sum - 1| = 1.5e-9 <= 1e-9 * K
    assert lt_mod._lean_inputs(lam, [1.0, 2.0], 1.0, 1.0, 0.0) is None
    r = optimal_lt(lam, [1.0, 2.0], 1.0, 1.0)
    assert abs(r.gap) <= FAST_RTOL * r.fun


def _q_case(rng: np.random.Generator, n: int, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = cost.size
    el = rng.uniform(size=(n, k)) < 0.8
    el[:, -1] = True
    return np.where(el, rng.exponential(size=(n, k)), 0.0), el


@pytest.mark.parametrize(
    "cost",
    [np.array([0.05, 0.4, 0.7, 1.0]), np.array([0.0, 0.4, 0.7, 1.0]), np.array([1.0, 1.0])],
)
@pytest.mark.parametrize("share", [0.3, 0.6, 0.95])
def test_budget_search_certificate(cost: np.ndarray, share: float) -> None:
    """Binding budgets (a zero-cost exit included, where the prices are not all positive):
    the KKT residuals and the gap close, the budget is met, q is (N, K) and C-ordered."""
    rng = np.random.default_rng(5)
    c, el = _q_case(rng, 400, cost)
    q_min = 0.01
    free = optimal_q(c, el, cost=cost, q_min=q_min)
    floor = q_min * float((el * cost).sum())
    budget = floor + share * (free.spend - floor)
    r = optimal_q(c, el, cost=cost, budget=budget, q_min=q_min)
    assert r.q.shape == c.shape and r.q.flags.c_contiguous
    assert r.rho > 0
    assert abs(r.spend - budget) <= 1e-12 * budget
    for name, val in r.kkt.items():
        assert val <= FAST_RTOL, (name, val)
    assert abs(r.gap) <= FAST_RTOL * r.fun
    # the answer is no worse than a feasible point built independently: the free optimum
    # scaled towards the floor until it meets the budget (spend is affine in the scaling)
    t = (budget - floor) / (free.spend - floor)
    q_feas = np.where(el, q_min + t * (free.q - q_min), 0.0)
    pos = c > 0
    obj_feas = float((c[pos] / q_feas[pos]).sum())
    assert r.fun <= obj_feas * (1 + 1e-12)
