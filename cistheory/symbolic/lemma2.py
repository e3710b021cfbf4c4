r"""Sympy forms of Lemma 2 (``docs/theory.md``): the exact variance and its convex bound.
Numeric code: :mod:`cistheory.bounds.lemma2`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from ..errors import CISInputError
from ._core import SymbolicBound, check_dim, sym_array

__all__ = [
    "variance_bound_expr",
    "variance_exact_expr",
]


def variance_exact_expr(N: int, K: int, d: int) -> SymbolicBound:
    r"""Lemma 2, exact variance (mirrors :func:`cistheory.variance_exact`), every :math:`q > 0`.

    .. math::
        \sum_i \Big[\sum_k \frac{\beta_{i,k}^2}{q_{i,k}}\big(\|\nabla f_{i,k}\|^2
        + s^2_{i,k}\big) - \Big\|\sum_k \beta_{i,k}\nabla f_{i,k}\Big\|^2\Big]

    Examples
    --------
    >>> variance_exact_expr(1, 1, 1).lambdify()([[0.5]], [[1.0]], [[[1.0]]], [[0.0]])
    1.0
    """
    N, K, d = check_dim(N, "N"), check_dim(K, "K"), check_dim(d, "d")
    q = sym_array("q", (N, K), positive=True)
    beta = sym_array("beta", (N, K), nonnegative=True)
    grad = sym_array("g", (N, K, d), real=True)
    s2 = sym_array("s2", (N, K), nonnegative=True)
    total = sp.Integer(0)
    for i in range(N):
        for k in range(K):
            sq = sp.Add(*[grad[i, k, j] ** 2 for j in range(d)])
            total += beta[i, k] ** 2 / q[i, k] * (sq + s2[i, k])
        for j in range(d):
            total -= sp.Add(*[beta[i, k] * grad[i, k, j] for k in range(K)]) ** 2
    args = (("q", q), ("beta", beta), ("grad", grad), ("noise_var", s2))
    return SymbolicBound("variance_exact", total, args)


def variance_bound_expr(N: int, K: int, fixed: Sequence[bool]) -> SymbolicBound:
    r"""Lemma 2, convex bound :math:`V` (mirrors :func:`cistheory.variance_bound`).

    .. math::
        \sum_{i,k} \frac{\beta_{i,k}^2(\sigma^2_{i,k} + [i\ \text{sampled}] G^2_{i,k})}{q_{i,k}}

    ``fixed[i]`` says whether node :math:`i`'s configuration fixes one exit (then give
    :math:`q_{i,\cdot}` with a 1 in that exit and zero :math:`\beta` elsewhere). All
    :math:`q_{i,k}` are symbols and must be positive where evaluated; pairs with zero
    :math:`q` are not representable (the numeric function skips them).
    """
    N, K = check_dim(N, "N"), check_dim(K, "K")
    if len(fixed) != N:
        raise CISInputError("fixed", list(fixed), f"expected {N} flags")
    q = sym_array("q", (N, K), positive=True)
    beta = sym_array("beta", (N, K), nonnegative=True)
    s2 = sym_array("sigma2", (N, K), nonnegative=True)
    g2 = sym_array("G2", (N, K), nonnegative=True)
    total = sp.Add(
        *[
            beta[i, k] ** 2 * (s2[i, k] + (0 if fixed[i] else g2[i, k])) / q[i, k]
            for i in range(N)
            for k in range(K)
        ]
    )
    args = (("q", q), ("beta", beta), ("sigma2", s2), ("G2", g2))
    return SymbolicBound("variance_bound", total, args)
