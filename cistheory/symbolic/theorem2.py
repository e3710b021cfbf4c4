r"""Sympy forms of Theorem 2 (``docs/theory.md``): the fixed- and diminishing-step bounds and
their limits. Numeric code: :mod:`cistheory.bounds.theorem2`.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from ..bounds.theorem2 import sgd_diminishing_bound, sgd_fixed_step_bound
from . import _core as sy
from ._core import N_POINTS, SymbolicBound, SymbolicFact, prove_equal, residual_rng

__all__ = [
    "diminishing_rate",
    "fixed_step_limit",
    "sgd_diminishing_bound_expr",
    "sgd_fixed_step_bound_expr",
]


def sgd_fixed_step_bound_expr() -> SymbolicBound:
    r"""Theorem 2, fixed step (mirrors :func:`cistheory.sgd_fixed_step_bound`).

    .. math::
        \frac{\eta L_t V}{2\mu_t} + (1 - \eta\mu_t)^t
        \Big(\mathrm{gap}_0 - \frac{\eta L_t V}{2\mu_t}\Big)

    Examples
    --------
    >>> sgd_fixed_step_bound_expr().lambdify()(1, 0.5, 1.0, 0.5, 2.0, 3.0)
    2.5
    """
    floor = sy.ETA * sy.L_T * sy.V / (2 * sy.MU_T)
    expr = floor + (1 - sy.ETA * sy.MU_T) ** sy.T * (sy.GAP0 - floor)
    args = (
        ("t", sy.T),
        ("eta", sy.ETA),
        ("L_t", sy.L_T),
        ("mu_t", sy.MU_T),
        ("V", sy.V),
        ("gap0", sy.GAP0),
    )
    return SymbolicBound("sgd_fixed_step_bound", expr, args)


def _nu() -> Any:
    return sp.Max(sy.B**2 * sy.L_T * sy.V / (2 * (sy.B * sy.MU_T - 1)), sy.GAMMA * sy.GAP0)


def sgd_diminishing_bound_expr() -> SymbolicBound:
    r"""Theorem 2, steps :math:`b/(\gamma + t)` (mirrors :func:`cistheory.sgd_diminishing_bound`).

    .. math::
        \frac{\nu}{\gamma + t}, \quad
        \nu = \max\Big\{\frac{b^2 L_t V}{2(b\mu_t - 1)}, \gamma\,\mathrm{gap}_0\Big\}

    Examples
    --------
    >>> sgd_diminishing_bound_expr().lambdify()(4, 4.0, 4.0, 1.0, 0.5, 1.0, 1.0)
    1.0
    """
    expr = _nu() / (sy.GAMMA + sy.T)
    args = (
        ("t", sy.T),
        ("b", sy.B),
        ("gamma", sy.GAMMA),
        ("L_t", sy.L_T),
        ("mu_t", sy.MU_T),
        ("V", sy.V),
        ("gap0", sy.GAP0),
    )
    return SymbolicBound("sgd_diminishing_bound", expr, args)


def fixed_step_limit() -> SymbolicFact:
    r"""As :math:`t\to\infty` the fixed-step bound tends to the noise floor
    :math:`\eta L_t V/(2\mu_t)` (Theorem 2).

    sympy cannot assume :math:`0 < \eta\mu_t < 1` directly, so the step is written
    :math:`\eta = (1 - e^{-s})/\mu_t` with :math:`s > 0`, which covers exactly
    :math:`0 < \eta\mu_t < 1`. Residual: the numeric :func:`cistheory.sgd_fixed_step_bound`
    at :math:`t = 4000` with :math:`\eta\mu_t \ge 0.05` (so the transient is below
    :math:`10^{-89}`) minus the floor, relative.
    """
    s = sp.Symbol("s", positive=True)
    b = sgd_fixed_step_bound_expr()
    eta_s = (1 - sp.exp(-s)) / sy.MU_T
    lhs = sp.limit(b.expr.subs(sy.ETA, eta_s), sy.T, sp.oo)
    rhs = (sy.ETA * sy.L_T * sy.V / (2 * sy.MU_T)).subs(sy.ETA, eta_s)
    rng = residual_rng()
    worst = 0.0
    for _ in range(N_POINTS):
        mu_t = rng.uniform(0.1, 2.0)
        L_t = mu_t * rng.uniform(1.0, 10.0)
        eta = rng.uniform(0.5, 1.0) / L_t  # eta mu_t >= 0.05: (1 - eta mu_t)^4000 < 1e-89
        V, gap0 = rng.uniform(0.0, 5.0), rng.uniform(0.0, 5.0)
        floor = eta * L_t * V / (2 * mu_t)
        val = float(sgd_fixed_step_bound(4000, eta, L_t, mu_t, V, gap0))
        worst = max(worst, abs(val - floor) / max(floor, 1.0))
    return SymbolicFact(
        name="fixed_step_limit",
        statement="lim_{t->oo} fixed-step bound = eta L_t V / (2 mu_t)",
        lhs=lhs,
        rhs=rhs,
        proven=prove_equal(lhs, rhs),
        residual=max(worst, 0.0),
        tolerance=1e-12,
        reason="the transient is < 1e-89 at t = 4000; what remains is rounding of O(1) "
        "numbers, a few ulps",
    )


def diminishing_rate() -> SymbolicFact:
    r"""The diminishing-step bound decays as :math:`\Theta(1/T)`: :math:`T\cdot\nu/(\gamma+T)
    \to \nu \in (0, \infty)` (Theorem 2).

    The verdict is ``True`` only if sympy proves both the limit and :math:`\nu > 0`.
    Residual: :math:`|T\,b_T/\nu - 1|` for the numeric
    :func:`cistheory.sgd_diminishing_bound` at :math:`T = 10^{12}`, minus the exact
    :math:`\gamma/(\gamma + T)`.
    """
    T = sp.Symbol("T", positive=True)
    expr = sgd_diminishing_bound_expr().expr.subs(sy.T, T)
    lhs = sp.limit(T * expr, T, sp.oo)
    rhs = _nu()
    eq = prove_equal(lhs, rhs)
    positive = rhs.is_positive
    proven: bool | None
    if eq is True and positive is True:
        proven = True
    elif eq is False or positive is False:
        proven = False
    else:
        proven = None
    rng = residual_rng()
    worst = 0.0
    big = 1e12
    for _ in range(N_POINTS):
        mu_t = rng.uniform(0.1, 2.0)
        L_t = mu_t * rng.uniform(1.0, 5.0)
        b = rng.uniform(1.1, 5.0) / mu_t
        gamma = b * L_t * rng.uniform(1.0, 2.0)
        V, gap0 = rng.uniform(0.0, 5.0), rng.uniform(0.1, 5.0)
        nu = max(b**2 * L_t * V / (2 * (b * mu_t - 1)), gamma * gap0)
        val = float(sgd_diminishing_bound(big, b, gamma, L_t, mu_t, V, gap0))
        worst = max(worst, abs(abs(big * val / nu - 1) - gamma / (gamma + big)))
    return SymbolicFact(
        name="diminishing_rate",
        statement="T * (diminishing bound at T) -> nu > 0: the bound is Theta(1/T)",
        lhs=lhs,
        rhs=rhs,
        proven=proven,
        residual=worst,
        tolerance=1e-12,
        reason="T b_T / nu - 1 = -gamma/(gamma + T) exactly; what remains is rounding of "
        "O(1) ratios, a few ulps",
    )
