r"""Sympy forms of Theorem 1 (``docs/theory.md``): the divergence, the bias and the
training-error bound, and the facts about them. Numeric code: :mod:`cistheory.bounds.theorem1`.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..bounds.theorem1 import bias_bound, chi2
from . import _core as sy
from ._core import (
    N_POINTS,
    SymbolicBound,
    SymbolicFact,
    check_dim,
    prove_equal,
    residual_rng,
    sym_array,
)

__all__ = [
    "bias_bound_expr",
    "chi2_expr",
    "chi2_simplex_identity",
    "training_error_bound_expr",
    "zero_bias_limit",
]


def chi2_expr(K: int) -> SymbolicBound:
    r"""Theorem 1's divergence, :math:`\sum_k (\lambda_k - \tilde\lambda_k)^2/\tilde\lambda_k`.

    Symbols :math:`\lambda_k, \tilde\lambda_k > 0` (full support). Mirrors
    :func:`cistheory.bounds.chi2`.

    Examples
    --------
    >>> f = chi2_expr(2).lambdify()
    >>> round(f([0.5, 0.5], [0.25, 0.75]), 12)
    0.333333333333
    """
    K = check_dim(K, "K")
    lam = sym_array("lambda", (K,), positive=True)
    lt = sym_array(r"\tilde\lambda", (K,), positive=True)
    expr = sp.Add(*[(lam[k] - lt[k]) ** 2 / lt[k] for k in range(K)])
    return SymbolicBound("chi2", expr, (("lam", lam), ("lt", lt)))


def bias_bound_expr(K: int) -> SymbolicBound:
    r"""Theorem 1(a): :math:`(L/\mu)\,\chi^2\,\Gamma` (mirrors :func:`cistheory.bias_bound`).

    Examples
    --------
    >>> bias_bound_expr(2).lambdify()([0.5, 0.5], [0.25, 0.75], 2.0, 1.0, 3.0)
    2.0
    """
    c = chi2_expr(K)
    expr = sy.L / sy.MU * c.expr * sy.GAMMA_C
    return SymbolicBound(
        "bias_bound", expr, (*c.args, ("L", sy.L), ("mu", sy.MU), ("Gamma", sy.GAMMA_C))
    )


def training_error_bound_expr(K: int, *, split: bool = False) -> SymbolicBound:
    r"""Theorem 1(b): tight or split form (mirrors :func:`cistheory.training_error_bound`).

    .. math::
        \frac{1}{2\mu}\Big(\sqrt{2L\chi^2\Gamma} + L\sqrt{2e/\mu_t}\Big)^2
        \quad\text{or}\quad \frac{2L}{\mu}\chi^2\Gamma + \frac{2L^2}{\mu\mu_t}e

    Examples
    --------
    >>> f = training_error_bound_expr(2).lambdify()
    >>> round(f([0.5, 0.5], [0.5, 0.5], 2.0, 1.0, 1.0, 1.0, 0.5), 12)
    2.0
    """
    c = chi2_expr(K)
    if split:
        expr = 2 * sy.L / sy.MU * c.expr * sy.GAMMA_C + 2 * sy.L**2 / (sy.MU * sy.MU_T) * sy.E
    else:
        root = sp.sqrt(2 * sy.L * c.expr * sy.GAMMA_C) + sy.L * sp.sqrt(2 * sy.E / sy.MU_T)
        expr = root**2 / (2 * sy.MU)
    args = (
        *c.args,
        ("L", sy.L),
        ("mu", sy.MU),
        ("mu_t", sy.MU_T),
        ("Gamma", sy.GAMMA_C),
        ("e", sy.E),
    )
    return SymbolicBound("training_error_bound", expr, args)


def zero_bias_limit(K: int) -> SymbolicFact:
    r"""Training at the serving shares removes the bias: the bias bound of Theorem 1(a) tends
    to 0 as :math:`\tilde\lambda \to \lambda` (along :math:`\tilde\lambda = \lambda + h\,d`,
    :math:`\sum_k d_k = 0`, :math:`h \to 0`).

    Residual: the numeric :func:`cistheory.bias_bound` at :math:`\tilde\lambda = \lambda`.
    """
    K = check_dim(K, "K")
    bb = bias_bound_expr(K)
    lam, lt = bb.args[0][1], bb.args[1][1]
    h = sp.Symbol("h", real=True)
    d = sym_array("d", (K,), real=True)
    subs = {lt[k]: lam[k] + h * d[k] for k in range(K)}
    if K > 1:
        subs[lt[K - 1]] = lam[K - 1] - h * sp.Add(*d[: K - 1].tolist())
    lhs = sp.limit(bb.expr.subs(subs), h, 0)
    rng = residual_rng()
    worst = 0.0
    for _ in range(N_POINTS):
        lam_n = rng.dirichlet(np.ones(K))
        L = rng.uniform(1.0, 5.0)
        worst = max(worst, abs(bias_bound(lam_n, lam_n, L, L / 3, rng.uniform(0, 5))))
    return SymbolicFact(
        name="zero_bias_limit",
        statement="lt -> lam gives bias bound (L/mu) chi2 Gamma -> 0",
        lhs=lhs,
        rhs=sp.Integer(0),
        proven=prove_equal(lhs, 0),
        residual=worst,
        tolerance=0.0,
        reason="chi2(lam, lam) sums exact zeros",
    )


def chi2_simplex_identity(K: int) -> SymbolicFact:
    r"""On the simplex, :math:`\chi^2 = \sum_k \lambda_k^2/\tilde\lambda_k - 1` (the form the
    design problem uses). Checked with :math:`\lambda_K = 1 - \sum_{k<K}\lambda_k` and likewise
    for :math:`\tilde\lambda`. Residual against the numeric :func:`cistheory.chi2`."""
    K = check_dim(K, "K")
    c = chi2_expr(K)
    lam, lt = c.args[0][1], c.args[1][1]
    rhs = sp.Add(*[lam[k] ** 2 / lt[k] for k in range(K)]) - 1
    subs = {
        lam[K - 1]: 1 - sp.Add(*lam[: K - 1].tolist()),
        lt[K - 1]: 1 - sp.Add(*lt[: K - 1].tolist()),
    }
    lhs_s, rhs_s = c.expr.subs(subs), rhs.subs(subs)
    rng = residual_rng()
    worst = 0.0
    for _ in range(N_POINTS):
        lam_n, lt_n = rng.dirichlet(np.ones(K)), rng.dirichlet(np.ones(K))
        other = float((lam_n**2 / lt_n).sum() - 1)
        worst = max(worst, abs(chi2(lam_n, lt_n) - other) / max(1.0, abs(other)))
    return SymbolicFact(
        name="chi2_simplex_identity",
        statement="chi2(lam||lt) = sum lam_k^2/lt_k - 1 when lam, lt sum to 1",
        lhs=lhs_s,
        rhs=rhs_s,
        proven=prove_equal(lhs_s, rhs_s),
        residual=worst,
        # Dirichlet(1) draws can have lt_k ~ 1e-3, making terms ~1e3: relative rounding
        tolerance=1e-10,
        reason="two sums of K terms up to ~1e3 in size: rounding ~1e-13 relative",
    )
