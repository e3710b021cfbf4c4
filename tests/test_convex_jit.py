"""The compiled Newton kernel of optimal_lt (numba) against the Python and numpy paths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convex
from convex import _jit
from convex.lt import _joint_jit, _joint_small, _joint_vec, _lean_inputs

pytest.importorskip("numba")


@st.composite
def problems(draw: st.DrawFn, max_k: int = 24) -> tuple[np.ndarray, np.ndarray, float, float]:
    k = draw(st.integers(2, max_k))
    w = np.array([draw(st.floats(0.01, 1.0)) for _ in range(k)])
    v = np.array([draw(st.floats(1e-3, 1e3)) for _ in range(k)])
    a = draw(st.floats(1e-3, 1e3))
    b = draw(st.floats(1e-3, 1e3))
    return w / w.sum(), v, a, b


@given(problems())
def test_kernel_equals_python_iteration(p: tuple[np.ndarray, np.ndarray, float, float]) -> None:
    """Same iterates in the same floating-point order: bitwise the Python result."""
    lean = _lean_inputs(*p, 0.0)
    assert lean is not None
    py = _joint_small(*lean)
    jit = _joint_jit(*lean)
    assert (py is None) == (jit is None)
    if py is None or jit is None:
        return
    np.testing.assert_array_equal(jit.lt, py.lt)
    assert jit.nit == py.nit
    assert (jit.fun, jit.lower_bound, jit.nu) == (py.fun, py.lower_bound, py.nu)


@pytest.mark.parametrize("k", [100, 1000, 4096])
def test_kernel_agrees_with_numpy_path(k: int) -> None:
    rng = np.random.default_rng(k)
    lam = rng.dirichlet(np.ones(k))
    v = rng.uniform(0.1, 10.0, k)
    lean = _lean_inputs(lam, v, 1.0, 0.5, 0.0)
    assert lean is not None
    vec, jit = _joint_vec(*lean), _joint_jit(*lean)
    assert vec is not None and jit is not None
    # the two sum in different orders (pairwise vs sequential): a sum of k terms carries up
    # to ~k ulps of rounding, so allow 4 k eps relative
    tol = 4 * k * np.finfo(float).eps
    np.testing.assert_allclose(jit.lt, vec.lt, rtol=tol, atol=1e-16)
    # the objective a (sum lam^2/lt - 1) + b V and the dual are differences of terms of
    # size ~a = 1 and |nu|: their rounding is relative to that scale, not to the objective
    scale = abs(vec.fun) + 1.0 + abs(vec.nu)
    assert abs(jit.fun - vec.fun) <= tol * scale
    assert abs(jit.gap) <= tol * scale


def test_floor_binding_defers_to_the_general_path() -> None:
    lam, v = np.array([0.98, 0.01, 0.01]), np.array([1.0, 1.0, 1.0])
    lean = _lean_inputs(lam, v, 1.0, 1e-3, 0.05)  # unfloored optimum ~ lam: the floor binds
    assert lean is not None
    assert _joint_jit(*lean) is None and _joint_small(*lean) is None
    r = convex.optimal_lt(lam, v, 1.0, 1e-3, lt_min=0.05)
    assert r.lt.min() >= 0.05 - 1e-15 and r.gap <= 1e-10 * abs(r.fun)


def test_optimal_lt_without_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """CISTHEORY_NO_JIT=1 falls back to the Python paths with the same answer."""
    lam, v = np.array([0.6, 0.3, 0.1]), np.array([2.0, 1.0, 0.5])
    with_jit = convex.optimal_lt(lam, v, 1.0, 1.0)
    monkeypatch.setenv("CISTHEORY_NO_JIT", "1")
    _jit.joint_kernel.cache_clear()
    try:
        assert _jit.joint_kernel() is None
        without = convex.optimal_lt(lam, v, 1.0, 1.0)
    finally:
        monkeypatch.delenv("CISTHEORY_NO_JIT")
        _jit.joint_kernel.cache_clear()
    np.testing.assert_array_equal(with_jit.lt, without.lt)
    assert _jit.joint_kernel() is not None
