r"""Sympy form of the Corollary (``docs/theory.md``): the full bound.
Numeric code: :mod:`cistheory.bounds.corollary`.
"""

from __future__ import annotations

import sympy as sp

from ..errors import CISInputError
from . import _core as sy
from ._core import SymbolicBound, sym_array
from .theorem1 import training_error_bound_expr
from .theorem2 import sgd_diminishing_bound_expr, sgd_fixed_step_bound_expr

__all__ = [
    "full_bound_expr",
]


def full_bound_expr(K: int, *, schedule: str = "fixed", split: bool = False) -> SymbolicBound:
    r"""Corollary: ``total`` (or ``total_split``) of :func:`cistheory.full_bound`.

    .. math::
        2\sum_k\lambda_k\varepsilon_k
        + \frac{1}{2\mu}\Big(\sqrt{2L\chi^2\Gamma} + L\sqrt{2\,\mathbb E[e_T]/\mu_t}\Big)^2

    with :math:`\mathbb E[e_T]` from Theorem 2 at :math:`t = T` (``schedule`` ``"fixed"``:
    argument ``eta``; ``"diminishing"``: ``b``, ``gamma``).
    """
    if schedule == "fixed":
        opt = sgd_fixed_step_bound_expr()
    elif schedule == "diminishing":
        opt = sgd_diminishing_bound_expr()
    else:
        raise CISInputError("schedule", schedule, "must be 'fixed' or 'diminishing'")
    te = training_error_bound_expr(K, split=split)
    T = sp.Symbol("T", nonnegative=True, integer=True)
    e_T = opt.expr.subs(sy.T, T)
    eps = sym_array("epsilon", (K,), nonnegative=True)
    lam = te.args[0][1]
    gen = 2 * sp.Add(*[lam[k] * eps[k] for k in range(K)])
    expr = gen + te.expr.subs(sy.E, e_T)
    sched_args = tuple(a for a in opt.args if a[0] in {"eta", "b", "gamma"})
    args = (
        *te.args[:5],
        ("L_t", sy.L_T),
        ("Gamma", sy.GAMMA_C),
        ("V", sy.V),
        ("gap0", sy.GAP0),
        ("T", T),
        ("eps", eps),
        *sched_args,
    )
    return SymbolicBound("full_bound", expr, args)
