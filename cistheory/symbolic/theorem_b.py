r"""Sympy form of Theorem B (``docs/theory.md``, Section 4.13) for a given support of
:math:`q` (where :math:`B > 0`). Numeric code: :mod:`cistheory.bounds.theorem_b`.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from numpy.typing import ArrayLike

from ..errors import CISInputError
from . import _core as sy
from ._core import SymbolicBound, sym_array

__all__ = ["drift_factor_sum", "local_distance_bound_expr"]


def drift_factor_sum() -> tuple[sp.Expr, sp.Expr]:
    r""":math:`\frac1\tau\sum_{s=0}^{\tau-1}s^2` (as a sympy sum) and its closed form
    :math:`(\tau - 1)(2\tau - 1)/6`, the two sides the proof equates."""
    tau, s = sp.symbols("tau s", integer=True, positive=True)
    return sp.summation(s**2, (s, 0, tau - 1)) / tau, (tau - 1) * (2 * tau - 1) / 6


def local_distance_bound_expr(support: ArrayLike, tau: int) -> SymbolicBound:
    r"""Theorem B (mirrors :func:`cistheory.bounds.local_distance_bound` at finite
    :math:`c > 0`, :math:`\theta > 0`, in the region :math:`B > 0`):

    .. math::
        \rho^tr_0 + E_\tau\frac{1 - \rho^t}{1 - \rho},\qquad \rho = 1 - \alpha\mu_tB,

    with :math:`\kappa`, :math:`B`, :math:`E_\tau` as in the module docstring of
    :mod:`cistheory.bounds.theorem_b`, :math:`\alpha = \tau\eta`, :math:`S_\tau` in closed form.

    Examples
    --------
    >>> f = local_distance_bound_expr([[True]], 2).lambdify()
    >>> round(f(t=1, eta=0.1, mu_t=1.0, L_t=1.0, Ls=0.0, Vs=0.0, q=[[1.0]], beta=[[1.0]],
    ...         L_pair=[[1.0]], noise_var=[[0.0]], grad2_opt=[[0.0]], r0=1.0, c=1.0,
    ...         theta=1.0), 6)
    0.8872
    """
    sup = np.asarray(support, dtype=bool)
    n_tau = int(tau)
    if sup.ndim != 2 or n_tau < 1:
        raise CISInputError("support", sup.tolist(), "expected an (N, K) table and tau >= 1")
    shape = (int(sup.shape[0]), int(sup.shape[1]))
    q = sym_array("q", shape, positive=True)
    beta = sym_array("beta", shape, positive=True)
    L = sym_array("L", shape, positive=True)
    s2 = sym_array("s2", shape, nonnegative=True)
    z = sym_array("z", shape, nonnegative=True)
    Ls, Vs, r0, c, theta = sp.symbols("L_s V_s r0 c theta", positive=True)
    eta, mu_t, L_t, t = sy.ETA, sy.MU_T, sy.L_T, sy.T
    alpha = n_tau * eta
    S = sp.Rational((n_tau - 1) * (2 * n_tau - 1), 6)
    pairs = list(zip(*np.nonzero(sup), strict=True))
    if n_tau == 1:
        th = sp.Integer(0)
        kappa = {p: L[p] for p in pairs}
    else:
        th = theta
        kappa = {p: L[p] + alpha * (1 + 1 / th) * (1 + beta[p] / q[p]) * L[p] ** 2 for p in pairs}
    lc = L_t + (1 + c) * Ls
    kl_max = sp.Max(*[kappa[p] * L[p] for p in pairs]) if pairs else sp.Integer(0)
    big_b = 1 - alpha * (1 + th) * lc - 4 * eta**2 * S * kl_max
    vn = sp.Add(*[beta[p] ** 2 * s2[p] / q[p] for p in pairs])
    drift = 4 * S * sp.Add(*[beta[p] * kappa[p] * z[p] for p in pairs]) + (n_tau - 1) * sp.Add(
        *[beta[p] * kappa[p] * s2[p] for p in pairs]
    )
    e_tau = alpha**2 * (1 + th) * ((1 + 1 / c) * Vs + vn / n_tau) + alpha * eta**2 * drift
    rho = 1 - alpha * mu_t * big_b
    expr = rho**t * r0 + e_tau * (1 - rho**t) / (1 - rho)
    args = (("t", t), ("eta", eta), ("mu_t", mu_t), ("L_t", L_t), ("Ls", Ls), ("Vs", Vs),
            ("q", q), ("beta", beta), ("L_pair", L), ("noise_var", s2), ("grad2_opt", z),
            ("r0", r0), ("c", c), ("theta", theta))
    return SymbolicBound("local_distance_bound", expr, args)
