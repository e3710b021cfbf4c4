r"""Sympy forms of Theorem Q (``docs/theory.md``, Section 4.15): the noise floor of a quadratic
training objective and the kernel :math:`\phi`. Numeric code: :mod:`cistheory.bounds.theorem_q`.
"""

from __future__ import annotations

from . import _core as sy
from ._core import SymbolicBound

__all__ = ["quadratic_floor_expr"]


def quadratic_floor_expr() -> SymbolicBound:
    r"""Theorem Q without multiplicative noise (:math:`L_s = 0`) from the optimum
    (:math:`e_0 = r_0 = 0`), with :math:`\eta L_t \le 1`: the bound is the floor

    .. math:: \frac{\eta V}{2}\,\frac{1 - (1 - \eta L_t)^{2t}}{2 - \eta L_t}

    (mirrors ``quadratic_sequences(...).e[t]`` with ``Ls=0, e0=0, r0=0``; ``V`` is
    :math:`V_s + V_n`). An equality for one fixed node in one dimension.

    Examples
    --------
    >>> quadratic_floor_expr().lambdify()(2, 0.5, 1.0, 1.0)
    0.15625
    """
    expr = sy.ETA * sy.V / 2 * (1 - (1 - sy.ETA * sy.L_T) ** (2 * sy.T)) / (2 - sy.ETA * sy.L_T)
    args = (("t", sy.T), ("eta", sy.ETA), ("L_t", sy.L_T), ("V", sy.V))
    return SymbolicBound("quadratic_sequences", expr, args)
