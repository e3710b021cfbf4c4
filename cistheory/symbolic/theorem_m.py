r"""Sympy form of Theorem M (``docs/theory.md``, Section 4.16) in the case with a closed form:
one fixed node in one dimension. Numeric code: :mod:`cistheory.bounds.theorem_m`.
"""

from __future__ import annotations

import sympy as sp

from . import _core as sy
from ._core import SymbolicBound

__all__ = ["modal_fixed_node_expr"]


def modal_fixed_node_expr() -> SymbolicBound:
    r"""Theorem M for one fixed node with :math:`f = \frac h2(w - w^*)^2` and noise variance
    :math:`s^2` (no multiplicative noise): the recursion is linear and its solution

    .. math:: \hat d(t) = (1 - \eta h)^{2t}u_0^2 + \eta^2s^2\frac{1 - (1 - \eta h)^{2t}}
              {1 - (1 - \eta h)^2}

    (mirrors ``modal_bound(...).d[t, 0]``; the exact :math:`\mathbb E(w_t - w^*)^2`).

    Examples
    --------
    >>> modal_fixed_node_expr().lambdify()(2, 0.5, 1.0, 1.0, 0.0)
    0.3125
    """
    h, s2, u0 = sp.symbols("h s2 u0", positive=True)
    p2 = (1 - sy.ETA * h) ** 2
    expr = p2**sy.T * u0**2 + sy.ETA**2 * s2 * (1 - p2**sy.T) / (1 - p2)
    args = (("t", sy.T), ("eta", sy.ETA), ("h", h), ("s2", s2), ("u0", u0))
    return SymbolicBound("modal_bound", expr, args)
