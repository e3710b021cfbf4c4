r"""Sympy forms of Theorem 3 (``docs/theory.md``): the Rademacher bound of linear predictors
and the uniform deviation per exit. Numeric code: :mod:`cistheory.bounds.theorem3`.
"""

from __future__ import annotations

import sympy as sp

from ._core import SymbolicBound, check_dim, sym_array

__all__ = [
    "generalization_bound_expr",
    "linear_rademacher_expr",
]


def linear_rademacher_expr() -> SymbolicBound:
    r"""Theorem 3, :math:`\rho W X/\sqrt M` (mirrors :func:`cistheory.linear_rademacher`)."""
    M, rho, W, X = sp.symbols("M rho W X", positive=True)
    return SymbolicBound(
        "linear_rademacher", rho * W * X / sp.sqrt(M), (("M", M), ("rho", rho), ("W", W), ("X", X))
    )


def generalization_bound_expr(K: int) -> SymbolicBound:
    r"""Theorem 3, :math:`\varepsilon_k = 2\mathfrak R_k + B\sqrt{\ln(2K/\delta)/(2M_k)}`.

    A :math:`K`-vector (sympy Matrix); mirrors :func:`cistheory.generalization_bound`.
    """
    K = check_dim(K, "K")
    M = sym_array("M", (K,), positive=True)
    rad = sym_array("R", (K,), nonnegative=True)
    delta, B = sp.symbols("delta B", positive=True)
    dev = [B * sp.sqrt(sp.log(2 * K / delta) / (2 * M[k])) for k in range(K)]
    eps = sp.Matrix([2 * rad[k] + dev[k] for k in range(K)])
    args = (("M", M), ("delta", delta), ("B", B), ("rademacher", rad))
    return SymbolicBound("generalization_bound", eps, args)
