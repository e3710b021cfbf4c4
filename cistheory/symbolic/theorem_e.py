r"""Sympy forms of Theorem E (``docs/theory.md``, Section 4.17). Numeric code:
:mod:`cistheory.bounds.theorem_e`.
"""

from __future__ import annotations

import sympy as sp

from ._core import MU, SymbolicBound, check_dim, sym_array

__all__ = [
    "bias_bound_gradient_expr",
    "bias_bound_zeta_expr",
    "cauchy_schwarz_gap",
    "heterogeneity_at_optimum_expr",
]


def heterogeneity_at_optimum_expr(K: int, d: int) -> SymbolicBound:
    r""":math:`\zeta_*^2 = \sum_k\tilde\lambda_k\|\nabla F_k(w^*)\|^2` (mirrors
    :func:`cistheory.bounds.heterogeneity_at_optimum`).

    Examples
    --------
    >>> heterogeneity_at_optimum_expr(2, 2).lambdify()([0.5, 0.5], [[1.0, 0.0], [-1.0, 0.0]])
    1.0
    """
    K, d = check_dim(K, "K"), check_dim(d, "d")
    lt = sym_array("lt", (K,), positive=True)
    g = sym_array("g", (K, d), real=True)
    expr = sp.Add(*[lt[k] * sp.Add(*[g[k, j] ** 2 for j in range(d)]) for k in range(K)])
    return SymbolicBound("heterogeneity_at_optimum", expr, (("lt", lt), ("grad_exit", g)))


def bias_bound_gradient_expr() -> SymbolicBound:
    r""":math:`\|g_\lambda\|^2/(2\mu)` (mirrors :func:`cistheory.bounds.bias_bound_gradient`).

    Examples
    --------
    >>> bias_bound_gradient_expr().lambdify()(2.0, 0.5)
    2.0
    """
    g2 = sp.Symbol("g2", nonnegative=True)
    return SymbolicBound("bias_bound_gradient", g2 / (2 * MU), (("g_lam_norm2", g2), ("mu", MU)))


def bias_bound_zeta_expr(K: int) -> SymbolicBound:
    r""":math:`\chi^2(\lambda\|\tilde\lambda)\zeta_*^2/(2\mu)` (mirrors
    :func:`cistheory.bounds.bias_bound_zeta`; every :math:`\tilde\lambda_k > 0`).

    Examples
    --------
    >>> round(bias_bound_zeta_expr(2).lambdify()([0.5, 0.5], [0.25, 0.75], 3.0, 0.5), 6)
    1.0
    """
    K = check_dim(K, "K")
    lam = sym_array("lam", (K,), nonnegative=True)
    lt = sym_array("lt", (K,), positive=True)
    z = sp.Symbol("zeta2", nonnegative=True)
    chi2 = sp.Add(*[(lam[k] - lt[k]) ** 2 / lt[k] for k in range(K)])
    return SymbolicBound(
        "bias_bound_zeta", chi2 * z / (2 * MU), (("lam", lam), ("lt", lt), ("zeta2", z), ("mu", MU))
    )


def cauchy_schwarz_gap(K: int) -> tuple[sp.Expr, sp.Expr]:
    r"""Lagrange's identity for Theorem E's middle step in one coordinate: the gap
    :math:`\chi^2\sum_k\tilde\lambda_kg_k^2 - (\sum_k(\lambda_k - \tilde\lambda_k)g_k)^2`
    and its sum-of-squares form :math:`\sum_{k<l}(a_kb_l - a_lb_k)^2` with
    :math:`a_k = (\lambda_k - \tilde\lambda_k)/\sqrt{\tilde\lambda_k}`,
    :math:`b_k = \sqrt{\tilde\lambda_k}g_k` (the two sides the proof equates)."""
    K = check_dim(K, "K")
    lam = sym_array("lam", (K,), positive=True)
    lt = sym_array("lt", (K,), positive=True)
    g = sym_array("g", (K,), real=True)
    a = [(lam[k] - lt[k]) / sp.sqrt(lt[k]) for k in range(K)]
    b = [sp.sqrt(lt[k]) * g[k] for k in range(K)]
    chi2 = sp.Add(*[(lam[k] - lt[k]) ** 2 / lt[k] for k in range(K)])
    lhs = chi2 * sp.Add(*[lt[k] * g[k] ** 2 for k in range(K)]) - sp.Add(
        *[(lam[k] - lt[k]) * g[k] for k in range(K)]
    ) ** 2
    rhs = sp.Add(*[(a[k] * b[m] - a[m] * b[k]) ** 2 for k in range(K) for m in range(k + 1, K)])
    return lhs, rhs
