r"""Sympy form of Theorem C-avg (``docs/theory.md``, Section 4.14). Numeric code:
:mod:`cistheory.bounds.theorem_c` (the last-iterate windows and the combined sequences are
minima over windows and rounds, with no closed form; ``proofs_check.theorem_c`` re-derives
them in its own code).
"""

from __future__ import annotations

import sympy as sp

from . import _core as sy
from ._core import SymbolicBound

__all__ = ["gap_bound_averaged_expr"]


def gap_bound_averaged_expr() -> SymbolicBound:
    r"""Theorem C-avg (mirrors :func:`cistheory.bounds.gap_bound_averaged` at a finite
    :math:`c > 0`): :math:`\frac{r_0}{T\eta(2 - \eta L_c)} + \frac{\eta V_c}{2 - \eta L_c}`.

    Examples
    --------
    >>> f = gap_bound_averaged_expr().lambdify()
    >>> round(f(10, 0.5, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0), 6)
    0.466667
    """
    Ls, Vs, Vn, r0, c = sp.symbols("L_s V_s V_n r0 c", positive=True)
    T = sp.Symbol("T", positive=True, integer=True)
    lc = sy.L_T + (1 + c) * Ls
    vc = (1 + 1 / c) * Vs + Vn
    den = 2 - sy.ETA * lc
    expr = r0 / (T * sy.ETA * den) + sy.ETA * vc / den
    args = (("T", T), ("eta", sy.ETA), ("mu_t", sy.MU_T), ("L_t", sy.L_T), ("Ls", Ls),
            ("Vs", Vs), ("Vn", Vn), ("r0", r0), ("c", c))
    return SymbolicBound("gap_bound_averaged", expr, args)
