r"""Sympy forms of Lemma ES (``docs/theory.md``, Section 4.11): the expected-smoothness
constants. Numeric code: :mod:`cistheory.bounds.lemma_es`.

The constants depend on which pairs are trained (the support of :math:`q`), so each builder
takes the support as a boolean table and returns a :class:`SymbolicBound` whose lambdified
function takes the numeric function's arrays (entries off the support are not read).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp
from numpy.typing import ArrayLike

from ..errors import CISInputError
from ._core import SymbolicBound, sym_array

__all__ = [
    "expected_smoothness_expr",
    "expected_smoothness_pairwise_expr",
    "sampling_lipschitz_expr",
]


def _support(support: ArrayLike) -> np.ndarray:
    sup = np.asarray(support, dtype=bool)
    if sup.ndim != 2 or sup.size == 0:
        raise CISInputError("support", np.asarray(support).tolist(), "expected an (N, K) table")
    return sup


def _arrays(shape: tuple[int, int], name: str) -> tuple[Any, Any, Any]:
    q = sym_array("q", shape, positive=True)
    beta = sym_array("beta", shape, positive=True)
    L = sym_array(name, shape, positive=True)
    return q, beta, L


def expected_smoothness_expr(support: ArrayLike) -> SymbolicBound:
    r"""Lemma ES, :math:`L_s = \max_i\lambda_{\max}(\mathrm{diag}(a) - vv^\top)` (mirrors
    :func:`cistheory.bounds.expected_smoothness`) for nodes with at most two pairs, in closed
    form: one pair :math:`\beta L(1/q - 1)`; two pairs the larger root of the 2x2
    characteristic polynomial, :math:`(\mathrm{tr} + \sqrt{\mathrm{tr}^2 - 4\det})/2`.

    Examples
    --------
    >>> f = expected_smoothness_expr([[True]]).lambdify()
    >>> f([[0.1]], [[1.0]], [[1.0]])
    9.0
    """
    sup = _support(support)
    q, beta, L = _arrays(sup.shape, "L")
    node_vals = []
    for i in range(sup.shape[0]):
        ks = np.flatnonzero(sup[i])
        if ks.size == 1:
            k = int(ks[0])
            node_vals.append(beta[i, k] * L[i, k] * (1 / q[i, k] - 1))
        elif ks.size == 2:
            a = [beta[i, k] * L[i, k] / q[i, k] for k in ks]
            v2 = [beta[i, k] * L[i, k] for k in ks]
            m11, m22 = a[0] - v2[0], a[1] - v2[1]
            m12 = -sp.sqrt(v2[0] * v2[1])
            tr, det = m11 + m22, m11 * m22 - m12**2
            node_vals.append((tr + sp.sqrt(tr**2 - 4 * det)) / 2)
        elif ks.size > 2:
            raise CISInputError("support", sup.tolist(), "closed form for <= 2 pairs a node")
    expr = sp.Max(*node_vals) if node_vals else sp.Integer(0)
    return SymbolicBound("expected_smoothness", expr, (("q", q), ("beta", beta), ("L_pair", L)))


def expected_smoothness_pairwise_expr(support: ArrayLike) -> SymbolicBound:
    r""":math:`L_s^{\mathrm{pair}} = \max_{(i,k)}\beta_{i,k}L_{i,k}(1/q_{i,k} - [|K_i| = 1])`
    (mirrors :func:`cistheory.bounds.expected_smoothness_pairwise`).

    Examples
    --------
    >>> expected_smoothness_pairwise_expr([[True, True]]).lambdify()(
    ...     [[0.5, 0.5]], [[0.5, 0.5]], [[1.0, 1.0]])
    1.0
    """
    sup = _support(support)
    q, beta, L = _arrays(sup.shape, "L")
    vals = []
    for i, k in zip(*np.nonzero(sup), strict=True):
        single = 1 if sup[i].sum() == 1 else 0
        vals.append(beta[i, k] * L[i, k] * (1 / q[i, k] - single))
    expr = sp.Max(*vals) if vals else sp.Integer(0)
    return SymbolicBound(
        "expected_smoothness_pairwise", expr, (("q", q), ("beta", beta), ("L_pair", L))
    )


def sampling_lipschitz_expr(support: ArrayLike) -> SymbolicBound:
    r""":math:`\Lambda = \sum_{(i,k)}\beta_{i,k}^2\ell_{i,k}^2(1/q_{i,k} - [|K_i| = 1])`
    (mirrors :func:`cistheory.bounds.sampling_lipschitz`).

    Examples
    --------
    >>> sampling_lipschitz_expr([[True], [True]]).lambdify()(
    ...     [[0.5], [0.5]], [[0.5], [0.5]], [[2.0], [2.0]])
    2.0
    """
    sup = _support(support)
    q, beta, ell = _arrays(sup.shape, "ell")
    terms = []
    for i, k in zip(*np.nonzero(sup), strict=True):
        single = 1 if sup[i].sum() == 1 else 0
        terms.append(beta[i, k] ** 2 * ell[i, k] ** 2 * (1 / q[i, k] - single))
    return SymbolicBound(
        "sampling_lipschitz", sp.Add(*terms), (("q", q), ("beta", beta), ("ell_pair", ell))
    )
