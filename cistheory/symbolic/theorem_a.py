r"""Sympy forms of Theorem A (``docs/theory.md``, Section 4.12), in the region where each
applies (the numeric functions return ``inf`` outside it). Numeric code:
:mod:`cistheory.bounds.theorem_a`.
"""

from __future__ import annotations

import sympy as sp

from . import _core as sy
from ._core import SymbolicBound

__all__ = [
    "distance_bound_diminishing_expr",
    "distance_bound_expr",
    "distance_bound_nonconvex_expr",
    "distance_bound_simple_expr",
    "one_step_rate",
]

LS, VS, VN, R0, C, LAM = sp.symbols("L_s V_s V_n r0 c Lambda", positive=True)
VSTAR = sp.Symbol("V^*", positive=True)


def one_step_rate() -> tuple[sp.Expr, sp.Expr]:
    r"""The two sides of the one-step contraction of Theorem A's proof:
    :math:`1 - 2\eta\mu_t + \eta^2\mu_tL_c` (from :math:`\langle\nabla F, u\rangle \ge
    \mu_t\|u\|^2` and :math:`\eta \le 2/L_c`) and :math:`\rho_c = 1 - \eta\mu_t(2 - \eta L_c)`.
    """
    lc = sy.L_T + (1 + C) * LS
    return 1 - 2 * sy.ETA * sy.MU_T + sy.ETA**2 * sy.MU_T * lc, 1 - sy.ETA * sy.MU_T * (
        2 - sy.ETA * lc
    )


def distance_bound_expr() -> SymbolicBound:
    r"""Theorem A at a fixed :math:`c > 0` (mirrors :func:`cistheory.bounds.distance_bound`
    with ``c`` given, for :math:`\eta < 2/L_c`):

    .. math::
        \rho^tr_0 + \eta^2V_c\frac{1 - \rho^t}{1 - \rho},\quad \rho = 1 - \eta\mu_t(2 - \eta
        L_c),\ L_c = L_t + (1 + c)L_s,\ V_c = (1 + 1/c)V_s + V_n .

    Examples
    --------
    >>> f = distance_bound_expr().lambdify()
    >>> round(f(t=1, eta=0.05, mu_t=1.0, L_t=1.0, Ls=9.0, Vs=0.0, Vn=1.0, r0=1.0, c=1.0), 6)
    0.95
    """
    lc = sy.L_T + (1 + C) * LS
    vc = (1 + 1 / C) * VS + VN
    rho = 1 - sy.ETA * sy.MU_T * (2 - sy.ETA * lc)
    expr = rho**sy.T * R0 + sy.ETA**2 * vc * (1 - rho**sy.T) / (1 - rho)
    args = (("t", sy.T), ("eta", sy.ETA), ("mu_t", sy.MU_T), ("L_t", sy.L_T), ("Ls", LS),
            ("Vs", VS), ("Vn", VN), ("r0", R0), ("c", C))
    return SymbolicBound("distance_bound", expr, args)


def distance_bound_simple_expr() -> SymbolicBound:
    r"""Corollary A1 (mirrors :func:`cistheory.bounds.distance_bound_simple`,
    :math:`\eta \le 1/(L_t + (1 + c)L_s)`): :math:`(1 - \eta\mu_t)^tr_0 + (1 + 1/c)\eta V^*/\mu_t`.

    Examples
    --------
    >>> distance_bound_simple_expr().lambdify()(0, 0.05, 1.0, 1.0, 9.0, 1.0, 1.0, 1.0)
    1.1
    """
    expr = (1 - sy.ETA * sy.MU_T) ** sy.T * R0 + (1 + 1 / C) * sy.ETA * VSTAR / sy.MU_T
    args = (("t", sy.T), ("eta", sy.ETA), ("mu_t", sy.MU_T), ("L_t", sy.L_T), ("Ls", LS),
            ("Vstar", VSTAR), ("r0", R0), ("c", C))
    return SymbolicBound("distance_bound_simple", expr, args)


def distance_bound_diminishing_expr() -> SymbolicBound:
    r"""Theorem A(b) (mirrors :func:`cistheory.bounds.distance_bound_diminishing`, finite
    :math:`c > 0`, :math:`\theta = 2 - (b/\gamma)L_c`, :math:`\theta b\mu_t > 1`):
    :math:`\max\{b^2V_c/(\theta b\mu_t - 1), \gamma r_0\}/(\gamma + t)`.

    Examples
    --------
    >>> f = distance_bound_diminishing_expr().lambdify()
    >>> round(f(10, 2.0, 4.0, 1.0, 1.0, 0.1, 1.0, 1.0, 1.0, 1.0), 5)
    0.47619
    """
    lc = sy.L_T + (1 + C) * LS
    vc = (1 + 1 / C) * VS + VN
    theta = 2 - sy.B / sy.GAMMA * lc
    nu = sp.Max(sy.B**2 * vc / (theta * sy.B * sy.MU_T - 1), sy.GAMMA * R0)
    expr = nu / (sy.GAMMA + sy.T)
    args = (("t", sy.T), ("b", sy.B), ("gamma", sy.GAMMA), ("mu_t", sy.MU_T), ("L_t", sy.L_T),
            ("Ls", LS), ("Vs", VS), ("Vn", VN), ("r0", R0), ("c", C))
    return SymbolicBound("distance_bound_diminishing", expr, args)


def distance_bound_nonconvex_expr() -> SymbolicBound:
    r"""Theorem A(c) (mirrors :func:`cistheory.bounds.distance_bound_nonconvex`, :math:`c > 0`,
    :math:`\rho < 1`): :math:`\rho^tr_0 + \eta^2V_c(1 - \rho^t)/(1 - \rho)`,
    :math:`\rho = (1 - \eta\mu_t)^2 + (1 + c)\eta^2\Lambda`.

    Examples
    --------
    >>> f = distance_bound_nonconvex_expr().lambdify()
    >>> round(f(1, 0.5, 1.0, 1.0, 0.5, 0.0, 0.0, 1.0, 1.0), 6)
    0.5
    """
    vc = (1 + 1 / C) * VS + VN
    rho = (1 - sy.ETA * sy.MU_T) ** 2 + (1 + C) * sy.ETA**2 * LAM
    expr = rho**sy.T * R0 + sy.ETA**2 * vc * (1 - rho**sy.T) / (1 - rho)
    args = (("t", sy.T), ("eta", sy.ETA), ("mu_t", sy.MU_T), ("L_t", sy.L_T), ("Lambda", LAM),
            ("Vs", VS), ("Vn", VN), ("r0", R0), ("c", C))
    return SymbolicBound("distance_bound_nonconvex", expr, args)
