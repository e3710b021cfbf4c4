r"""Sympy forms of Theorem D (``docs/theory.md``, Section 4.18). Numeric code:
:mod:`cistheory.bounds.theorem_d`.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ._core import MU, MU_T, L, SymbolicBound, check_dim, sym_array

__all__ = [
    "target_error_bound_convex_expr",
    "target_error_bound_e_expr",
    "target_error_bound_expr",
]

E = sp.Symbol("e", nonnegative=True)


def target_error_bound_expr() -> SymbolicBound:
    r""":math:`\mathrm{bias} + \|g_\lambda\|\sqrt r + \min\{L_\lambda r/2, \rho_\lambda e\}`
    (mirrors :func:`cistheory.bounds.target_error_bound`).

    Examples
    --------
    >>> target_error_bound_expr().lambdify()(0.5, 1.0, 4.0, 1.0, 1.5, 2.0)
    4.0
    """
    bias, g, r, rho, L_lam = sp.symbols("bias g r rho_lambda L_lambda", nonnegative=True)
    expr = bias + g * sp.sqrt(r) + sp.Min(L_lam * r / 2, rho * E)
    args = (("bias", bias), ("g_lam_norm", g), ("r", r), ("e", E), ("rho_lam", rho),
            ("L_lam", L_lam))
    return SymbolicBound("target_error_bound", expr, args)


def _weights(K: int) -> tuple[np.ndarray, np.ndarray, sp.Expr, sp.Expr]:
    lam = sym_array("lam", (K,), nonnegative=True)
    lt = sym_array("lt", (K,), positive=True)
    chi2 = sp.Add(*[(lam[k] - lt[k]) ** 2 / lt[k] for k in range(K)])
    l1 = sp.Add(*[sp.Abs(lam[k] - lt[k]) for k in range(K)])
    return lam, lt, chi2, l1


def target_error_bound_e_expr(K: int) -> SymbolicBound:
    r""":math:`\frac L\mu\chi^2\Gamma + e + 2\sqrt{L\chi^2\Gamma e/\mu_t} +
    L\|\lambda - \tilde\lambda\|_1e/\mu_t` (mirrors
    :func:`cistheory.bounds.target_error_bound_e`; every :math:`\tilde\lambda_k > 0`).

    Examples
    --------
    >>> target_error_bound_e_expr(2).lambdify()(0.3, [0.5, 0.5], [0.5, 0.5], 2.0, 1.0, 1.0, 1.0)
    0.3
    """
    K = check_dim(K, "K")
    lam, lt, chi2, l1 = _weights(K)
    gam = sp.Symbol("Gamma", nonnegative=True)
    expr = L / MU * chi2 * gam + E + 2 * sp.sqrt(L * chi2 * gam * E / MU_T) + L * l1 * E / MU_T
    args = (("e", E), ("lam", lam), ("lt", lt), ("L", L), ("mu", MU), ("mu_t", MU_T),
            ("Gamma", gam))
    return SymbolicBound("target_error_bound_e", expr, args)


def target_error_bound_convex_expr(K: int) -> SymbolicBound:
    r""":math:`\chi^2\zeta_*^2/(2\mu) + \sqrt{2\chi^2\zeta_*^2e/\mu_t} + \rho_\lambda e`,
    :math:`\rho_\lambda = \min\{\max_k\lambda_k/\tilde\lambda_k, 1 + L\|\lambda -
    \tilde\lambda\|_1/(2\mu_t)\}` (mirrors :func:`cistheory.bounds.target_error_bound_convex`).

    Examples
    --------
    >>> target_error_bound_convex_expr(2).lambdify()(0.3, [0.5, 0.5], [0.5, 0.5], 1.0, 1.0,
    ...                                              1.0, 1.0)
    0.3
    """
    K = check_dim(K, "K")
    lam, lt, chi2, l1 = _weights(K)
    z = sp.Symbol("zeta2", nonnegative=True)
    rho = sp.Min(sp.Max(*[lam[k] / lt[k] for k in range(K)]), 1 + L * l1 / (2 * MU_T))
    expr = chi2 * z / (2 * MU) + sp.sqrt(2 * chi2 * z * E / MU_T) + rho * E
    args = (("e", E), ("lam", lam), ("lt", lt), ("zeta2", z), ("mu", MU), ("mu_t", MU_T),
            ("L", L))
    return SymbolicBound("target_error_bound_convex", expr, args)
