r"""Sympy forms of Corollary P and Corollary M (``docs/theory.md``, Section 4.19). Numeric
code: :mod:`cistheory.bounds.corollary_pm`.
"""

from __future__ import annotations

import sympy as sp

from ._core import SymbolicBound, check_dim, sym_array

__all__ = ["projected_risk_bound_expr", "risk_tail_probability_expr"]


def projected_risk_bound_expr(K: int) -> SymbolicBound:
    r""":math:`2\sum_k\lambda_k\varepsilon_k + \mathrm{bias} + \|g_\lambda\|\sqrt{R_T} +
    L_\lambda R_T/2` (mirrors :func:`cistheory.bounds.projected_risk_bound`).

    Examples
    --------
    >>> projected_risk_bound_expr(2).lambdify()([0.5, 0.5], [0.1, 0.3], 0.1, 1.0, 0.25, 2.0)
    1.25
    """
    K = check_dim(K, "K")
    lam = sym_array("lam", (K,), nonnegative=True)
    eps = sym_array("eps", (K,), nonnegative=True)
    bias, g, R, L_lam = sp.symbols("bias g R_T L_lambda", nonnegative=True)
    expr = 2 * sp.Add(*[lam[k] * eps[k] for k in range(K)]) + bias + g * sp.sqrt(R) + L_lam * R / 2
    args = (("lam", lam), ("eps", eps), ("bias", bias), ("g_lam_norm", g), ("R_T", R),
            ("L_lam", L_lam))
    return SymbolicBound("projected_risk_bound", expr, args)


def risk_tail_probability_expr() -> SymbolicBound:
    r""":math:`\min(1, R_T/\varrho^2 + U_T/x)` (mirrors
    :func:`cistheory.bounds.risk_tail_probability`).

    Examples
    --------
    >>> risk_tail_probability_expr().lambdify()(1.0, 0.01, 1.0, 0.04)
    0.05
    """
    x, R, rad, U = sp.symbols("x R_T varrho U_T", positive=True)
    expr = sp.Min(1, R / rad**2 + U / x)
    return SymbolicBound(
        "risk_tail_probability", expr, (("x", x), ("R_T", R), ("radius", rad), ("U_T", U))
    )
