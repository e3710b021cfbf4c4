r"""Sympy facts of the design problem (``docs/theory.md``, Section 5): stationarity on the
simplex and the two endpoint minimisers. Numeric code: :mod:`convex`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from ..errors import CISInputError
from ._core import N_POINTS, SymbolicFact, check_dim, prove_equal, residual_rng, sym_array

__all__ = [
    "endpoint_minimiser",
    "stationarity",
]


def _kkt_symbols(K: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any, Any, Any]:
    x = sym_array("x", (K,), positive=True)
    lam = sym_array("lambda", (K,), positive=True)
    v = sym_array("v", (K,), positive=True)
    a, b = sp.symbols("a b", positive=True)
    nu = sp.Symbol("nu", real=True)
    return x, lam, v, a, b, nu


def _lagrangian(K: int) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, Any, Any, Any]:
    x, lam, v, a, b, nu = _kkt_symbols(K)
    chi2_s = sp.Add(*[lam[k] ** 2 / x[k] for k in range(K)]) - 1
    obj = a * chi2_s + b * sp.Add(*[v[k] * x[k] ** 2 for k in range(K)])
    lagr = obj - nu * (sp.Add(*x.tolist()) - 1)
    return lagr, x, lam, v, a, b, nu


def stationarity(K: int) -> SymbolicFact:
    r"""Stationarity of :math:`\min_{\tilde\lambda} a\chi^2(\lambda\|\tilde\lambda) +
    b\sum_k v_k\tilde\lambda_k^2` on the simplex (``docs/theory.md``, Section 5).

    With :math:`\chi^2 = \sum_k \lambda_k^2/x_k - 1` and multiplier :math:`\nu` of
    :math:`\sum_k x_k = 1`, the derivative of the Lagrangian in :math:`x_k` vanishes iff

    .. math:: -a\lambda_k^2/x_k^2 + 2 b v_k x_k = \nu .

    Residual: central finite differences of the numeric objective against the claimed
    left side, at random points.
    """
    K = check_dim(K, "K")
    lagr, x, lam, v, a, b, nu = _lagrangian(K)
    lhs = sp.Matrix([sp.diff(lagr, x[k]) for k in range(K)])
    rhs = sp.Matrix([-a * lam[k] ** 2 / x[k] ** 2 + 2 * b * v[k] * x[k] - nu for k in range(K)])
    rng = residual_rng()
    worst = 0.0
    h = 1e-5
    for _ in range(N_POINTS):
        lam_n, v_n = rng.dirichlet(np.ones(K)), rng.uniform(0.5, 2.0, K)
        x_n = rng.uniform(0.2, 1.0, K)
        a_n, b_n = rng.uniform(0.1, 2.0, 2)

        def obj(
            xx: np.ndarray,
            lam_n: np.ndarray = lam_n,
            v_n: np.ndarray = v_n,
            a_n: float = a_n,
            b_n: float = b_n,
        ) -> float:
            return float(a_n * ((lam_n**2 / xx).sum() - 1) + b_n * (v_n * xx**2).sum())

        for k in range(K):
            step = np.zeros(K)
            step[k] = h
            fd = (obj(x_n + step) - obj(x_n - step)) / (2 * h)
            claim = -a_n * lam_n[k] ** 2 / x_n[k] ** 2 + 2 * b_n * v_n[k] * x_n[k]
            worst = max(worst, abs(fd - claim) / max(1.0, abs(claim)))
    return SymbolicFact(
        name="stationarity",
        statement="d/dx_k [a chi2 + b sum v x^2 - nu (sum x - 1)] = "
        "-a lam_k^2/x_k^2 + 2 b v_k x_k - nu",
        lhs=lhs,
        rhs=rhs,
        proven=prove_equal(lhs, rhs),
        residual=worst,
        tolerance=1e-6,
        reason="central differences with h = 1e-5 on x in [0.2, 1]: truncation h^2 f''' "
        "~ 1e-10 * 1e3, plus rounding eps/h ~ 1e-11",
    )


def endpoint_minimiser(K: int, endpoint: str) -> SymbolicFact:
    r"""The two endpoint minimisers of :math:`a\chi^2(\lambda\|\tilde\lambda) +
    b\sum_k v_k \tilde\lambda_k^2` on the simplex, from sympy's solve of the KKT system.

    ``endpoint="b0"`` (:math:`b = 0`): :math:`\tilde\lambda = \lambda` (Serving Rate).
    ``endpoint="a0"`` (:math:`a = 0`): :math:`\tilde\lambda_k \propto 1/v_k` (inverse
    variance). The objective is strictly convex on the open simplex, so the KKT point is the
    minimiser. Each stationarity equation is solved for :math:`x_k > 0` in terms of
    :math:`\nu` (its sign is forced: :math:`\nu < 0` at :math:`b = 0`, :math:`\nu > 0` at
    :math:`a = 0`), then :math:`\sum_k x_k(\nu) = 1` is solved for :math:`\nu`; with
    :math:`\sum_k\lambda_k = 1` substituted. Residual: the numeric KKT residual (max over
    :math:`k` of the stationarity equation's spread, and :math:`|\sum_k x_k - 1|`) of the
    claimed closed form at random points.
    """
    K = check_dim(K, "K")
    if endpoint not in {"a0", "b0"}:
        raise CISInputError("endpoint", endpoint, "must be 'a0' (a -> 0) or 'b0' (b -> 0)")
    lagr, x, lam, v, a, b, _nu_sym = _lagrangian(K)
    nu = sp.Symbol("nu", negative=True) if endpoint == "b0" else sp.Symbol("nu", positive=True)
    lagr = lagr.subs(_nu_sym, nu).subs(b if endpoint == "b0" else a, 0)
    x_of_nu = []
    for k in range(K):
        roots = sp.solve(sp.Eq(sp.diff(lagr, x[k]), 0), x[k])
        pos = [r for r in roots if r.is_positive is True]
        if len(pos) != 1:
            raise RuntimeError(f"stationarity in x_{k + 1} has {len(pos)} positive roots")
        x_of_nu.append(pos[0])
    nu_roots = sp.solve(sp.Eq(sp.Add(*x_of_nu), 1), nu)
    if len(nu_roots) != 1:
        raise RuntimeError(f"sum x(nu) = 1 has {len(nu_roots)} admissible roots")
    sol = sp.Matrix([xk.subs(nu, nu_roots[0]) for xk in x_of_nu])
    if endpoint == "b0":
        last = {lam[K - 1]: 1 - sp.Add(*lam[: K - 1].tolist())}
        lhs = sol.subs(last)
        rhs = sp.Matrix(lam.tolist()).subs(last)
        statement = "b = 0: argmin a chi2(lam||lt) on the simplex is lt = lam"
    else:
        inv = [1 / v[k] for k in range(K)]
        lhs = sol
        rhs = sp.Matrix([inv[k] / sp.Add(*inv) for k in range(K)])
        statement = "a = 0: argmin b sum v_k lt_k^2 on the simplex is lt proportional to 1/v"
    rng = residual_rng()
    worst = 0.0
    for _ in range(N_POINTS):
        lam_n, v_n = rng.dirichlet(np.ones(K)), rng.uniform(0.1, 10.0, K)
        a_n, b_n = rng.uniform(0.1, 5.0, 2)
        if endpoint == "b0":
            x_n, grad = lam_n, -a_n * lam_n**2 / lam_n**2
        else:
            x_n = (1 / v_n) / (1 / v_n).sum()
            grad = 2 * b_n * v_n * x_n
        worst = max(
            worst,
            float(np.ptp(grad)) / max(1.0, float(np.abs(grad).max())),
            abs(float(x_n.sum()) - 1.0),
        )
    return SymbolicFact(
        name=f"endpoint_minimiser_{endpoint}",
        statement=statement,
        lhs=lhs,
        rhs=rhs,
        proven=prove_equal(lhs, rhs),
        residual=worst,
        tolerance=1e-13,
        reason="a normalisation and K products of O(1) numbers: a few ulps",
    )
