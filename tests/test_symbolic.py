"""Symbolic bounds (cistheory.symbolic): lambdified sympy equals numpy; facts are proven.

Tolerances: the sympy expression and the numpy code evaluate the same formula in a
different order, so they differ by rounding: a few ulps (we allow 64 eps) times the
condition of the expression, i.e. the sum of the absolute values of the terms that are
added (cancellation in variance_exact and in the fixed-step bound makes it larger than the
result). Each test computes that scale explicitly.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from cistheory import bounds as nb
from cistheory import symbolic as sy
from cistheory.errors import CISInputError

ULPS = 64 * np.finfo(np.float64).eps


def _close(a: float, b: float, scale: float) -> bool:
    return bool(abs(a - b) <= ULPS * max(scale, np.finfo(np.float64).tiny))


@cache
def _fn(name: str, *dims: int, **kw: object) -> Callable[..., Any]:
    builder = getattr(sy, name)
    fn: Callable[..., Any] = builder(*dims, **kw).lambdify()
    return fn


seeds = st.integers(0, 2**32 - 1)


def _simplex_lt(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Shares and weights; full support (the symbolic forms assume lt_k > 0)."""
    lam = rng.dirichlet(np.full(k, 0.8))
    lt = rng.dirichlet(np.full(k, 0.8)) + 1e-3
    return lam, lt / lt.sum()


@given(seeds, st.integers(1, 4))
def test_chi2_bias_training_lambdified_equal_numeric(seed: int, k: int) -> None:
    """Theorem 1 expressions: sympy lambdified == numpy (nonnegative terms: scale = value)."""
    rng = np.random.default_rng(seed)
    lam, lt = _simplex_lt(rng, k)
    mu = rng.uniform(0.1, 2.0)
    L, mu_t = mu * rng.uniform(1, 10), mu * rng.uniform(0.5, 1.0)
    Gamma, e = rng.uniform(0, 5), rng.uniform(0, 5)
    c2 = nb.chi2(lam, lt)
    terms = float(((lam - lt) ** 2 / lt).sum())
    assert _close(_fn("chi2_expr", k)(lam, lt), c2, terms)
    got = _fn("bias_bound_expr", k)(lam, lt, L, mu, Gamma)
    assert _close(got, nb.bias_bound(lam, lt, L, mu, Gamma), 4 * L / mu * terms * Gamma)
    for split in (False, True):
        want = nb.training_error_bound(lam, lt, L, mu, mu_t, Gamma, e, split=split)
        got = _fn("training_error_bound_expr", k, split=split)(
            lam, lt, L, mu, mu_t, Gamma, e
        )
        assert _close(got, want, 4 * want)


@given(seeds, st.integers(1, 3), st.integers(1, 3), st.integers(1, 2))
def test_variance_lambdified_equal_numeric(seed: int, n: int, k: int, d: int) -> None:
    """Lemma 2: both expressions; scale = sum of |terms| (the exact form subtracts)."""
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.ones(k + 1), size=n)[:, :k] + 1e-3
    q /= q.sum(axis=1, keepdims=True) * rng.uniform(1.0, 1.5, size=(n, 1))
    beta = rng.uniform(0, 1, size=(n, k))
    grad = rng.normal(size=(n, k, d))
    s2 = rng.uniform(0, 2, size=(n, k))
    want = nb.variance_exact(q, beta, grad, s2)
    got = _fn("variance_exact_expr", n, k, d)(q, beta, grad, s2)
    scale = float((beta**2 / q * ((grad**2).sum(axis=2) + s2)).sum()) + float(
        (np.einsum("ik,ikd->id", beta, grad) ** 2).sum()
    )
    assert _close(got, want, 4 * scale)
    fixed = tuple(bool(f) for f in rng.random(n) < 0.5)
    q_b = q.copy()
    beta_b = beta.copy()
    for i, f in enumerate(fixed):
        if f:  # a fixed node: q row one-hot; other pairs get q = 1/2 but beta = 0
            j = int(rng.integers(k))
            q_b[i] = 0.0
            q_b[i, j] = 1.0
            beta_b[i] = np.where(np.arange(k) == j, beta[i], 0.0)
    sigma2, G2 = rng.uniform(0, 2, size=(n, k)), rng.uniform(0, 2, size=(n, k))
    q_sym = np.where(q_b > 0, q_b, 0.5)  # symbolic q must be positive; beta = 0 there
    want = nb.variance_bound(q_b, beta_b, sigma2, G2)
    got = _fn("variance_bound_expr", n, k, fixed)(q_sym, beta_b, sigma2, G2)
    assert _close(got, want, 4 * want)


sgd_params = st.tuples(
    st.integers(0, 200),
    st.floats(0.01, 1.0),  # eta L_t
    st.floats(0.1, 3.0),  # mu_t
    st.floats(1.0, 20.0),  # L_t / mu_t
    st.floats(0.0, 10.0),  # V
    st.floats(0.0, 10.0),  # gap0
)


@given(sgd_params)
def test_sgd_fixed_lambdified_equal_numeric(
    p: tuple[int, float, float, float, float, float],
) -> None:
    """Theorem 2 fixed step; scale = floor + r^t (gap0 + floor) (the two terms added)."""
    t, h, mu_t, ratio, V, gap0 = p
    L_t = mu_t * ratio
    eta = h / L_t
    want = float(nb.sgd_fixed_step_bound(t, eta, L_t, mu_t, V, gap0))
    got = _fn("sgd_fixed_step_bound_expr")(t, eta, L_t, mu_t, V, gap0)
    floor = eta * L_t * V / (2 * mu_t)
    # pow: relative error of r^t grows like t ulps of r
    scale = floor + (1 - eta * mu_t) ** t * (gap0 + floor) * (1 + t)
    assert _close(got, want, 4 * scale)


@given(sgd_params, st.floats(1.01, 10.0), st.floats(1.0, 5.0))
def test_sgd_diminishing_lambdified_equal_numeric(
    p: tuple[int, float, float, float, float, float], bmu: float, slack: float
) -> None:
    """Theorem 2 diminishing steps: a max and a ratio of positive numbers (scale = value)."""
    t, _h, mu_t, ratio, V, gap0 = p
    L_t = mu_t * ratio
    b = bmu / mu_t
    gamma = b * L_t * slack
    want = float(nb.sgd_diminishing_bound(t, b, gamma, L_t, mu_t, V, gap0))
    got = _fn("sgd_diminishing_bound_expr")(
        t, b, gamma, L_t, mu_t, V, gap0
    )
    # b mu_t - 1 may be as small as 0.01: the subtraction loses log10(100) digits
    assert _close(got, want, 4 * want * bmu / (bmu - 1))


@given(seeds, st.integers(1, 4))
def test_theorem3_lambdified_equal_numeric(seed: int, k: int) -> None:
    """Theorem 3: Rademacher bound and eps_k (sums of positive terms: scale = value)."""
    rng = np.random.default_rng(seed)
    M = rng.integers(1, 10**6, size=k).astype(float)
    rho, W, X = rng.uniform(0.1, 3.0, 3)
    rad = nb.linear_rademacher(M, rho, W, X)
    for m, r in zip(M, rad, strict=True):
        got = _fn("linear_rademacher_expr")(m, rho, W, X)
        assert _close(got, float(r), 4 * float(r))
    delta, B = rng.uniform(0.001, 0.999), rng.uniform(0.1, 5)
    want = nb.generalization_bound(M, delta, B, rad)
    got_v = _fn("generalization_bound_expr", k)(M, delta, B, rad)
    assert all(_close(g, w, 4 * w) for g, w in zip(got_v, want, strict=True))


@given(seeds, st.integers(1, 3), st.sampled_from(["fixed", "diminishing"]), st.booleans())
def test_full_bound_lambdified_equal_numeric(seed: int, k: int, schedule: str, split: bool) -> None:
    """Corollary: total and total_split, by keyword like the numeric function."""
    rng = np.random.default_rng(seed)
    lam, lt = _simplex_lt(rng, k)
    mu = rng.uniform(0.1, 1.0)
    L = mu * rng.uniform(1, 5)
    mu_t = mu * rng.uniform(0.5, 1.0)
    L_t = L * rng.uniform(0.5, 1.0)
    kw: dict[str, object] = dict(L=L, mu=mu, mu_t=mu_t, L_t=max(L_t, mu_t), Gamma=1.3, V=0.7,
                                 gap0=2.0, T=int(rng.integers(0, 100)), eps=rng.uniform(0, 1, k))
    if schedule == "fixed":
        kw["eta"] = 0.9 / float(kw["L_t"])  # type: ignore[arg-type]
    else:
        kw["b"] = 2.0 / mu_t
        kw["gamma"] = 2.0 / mu_t * float(kw["L_t"])  # type: ignore[arg-type]
    terms = nb.full_bound(lam, lt, **kw)  # type: ignore[arg-type]
    want = terms.total_split if split else terms.total
    got = _fn("full_bound_expr", k, schedule=schedule, split=split)(
        lam, lt, **kw
    )
    assert _close(got, want, 16 * want)


# ---------------------------------------------------------------------------------------------
# Facts
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        sy.fixed_step_limit,
        sy.diminishing_rate,
        lambda: sy.zero_bias_limit(2),
        lambda: sy.zero_bias_limit(3),
        lambda: sy.chi2_simplex_identity(3),
        lambda: sy.stationarity(2),
        lambda: sy.stationarity(3),
        lambda: sy.endpoint_minimiser(2, "b0"),
        lambda: sy.endpoint_minimiser(3, "b0"),
        lambda: sy.endpoint_minimiser(2, "a0"),
        lambda: sy.endpoint_minimiser(3, "a0"),
    ],
    ids=[
        "fixed-limit", "rate", "zero-bias-2", "zero-bias-3", "chi2-simplex", "stat-2",
        "stat-3", "b0-2", "b0-3", "a0-2", "a0-3",
    ],
)
def test_fact_is_proven_with_small_residual(make: Callable[[], sy.SymbolicFact]) -> None:
    fact = make()
    assert fact.proven is True, fact
    assert fact.residual <= fact.tolerance, fact
    assert fact.passed


def test_fact_values() -> None:
    """The facts say what users rely on: the floor, nu, lt = lam and lt proportional to 1/v."""
    lim = sy.fixed_step_limit()
    s, mu_t = sp.Symbol("s", positive=True), sp.Symbol("mu_t", positive=True)
    eta_L_V = sp.Symbol("L_t", positive=True) * sp.Symbol("V", positive=True)
    assert sp.simplify(lim.lhs - eta_L_V * (1 - sp.exp(-s)) / (2 * mu_t**2)) == 0
    a0 = sy.endpoint_minimiser(2, "a0")
    v1, v2 = sp.symbols("v_{1} v_{2}", positive=True)
    assert sp.simplify(a0.lhs[0] - v2 / (v1 + v2)) == 0


def test_three_valued_verdicts() -> None:
    """A wrong claim comes back False; an undecided one (None) does not pass."""
    fact = sy.fixed_step_limit()
    assert sy.prove_equal(fact.lhs, fact.rhs / 2) is False  # half the floor is not the limit
    undecided = sy.SymbolicFact("u", "undecided", sp.Integer(0), sp.Integer(0), None, 0.0, 1.0)
    assert not undecided.passed
    wrong_residual = sy.SymbolicFact("r", "bad residual", 0, 0, True, 1.0, 1e-12)
    assert not wrong_residual.passed


def test_lambdified_argument_errors() -> None:
    f = sy.chi2_expr(2).lambdify()
    with pytest.raises(CISInputError) as info:
        f([0.5, 0.5])
    assert info.value.field == "lt"
    with pytest.raises(CISInputError) as info:
        f([0.5, 0.5], [0.2, 0.3, 0.5])
    assert info.value.field == "lt"
    with pytest.raises(CISInputError) as info:
        sy.endpoint_minimiser(2, "c0")
    assert info.value.field == "endpoint"
    with pytest.raises(CISInputError) as info:
        sy.full_bound_expr(2, schedule="cosine")
    assert info.value.field == "schedule"


def test_import_cistheory_does_not_import_sympy() -> None:
    code = "import sys, cistheory, cistheory.bounds; sys.exit('sympy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
