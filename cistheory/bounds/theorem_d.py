r"""Theorem D of ``docs/theory.md`` (Section 4.18): the training error of the target
:math:`F_\lambda` without PL at :math:`w` (Theorem 1(b) of the second generation; checked by
``proofs_check.theorem_d``).

For every :math:`w`, with :math:`w^*` the minimiser of :math:`F_{\tilde\lambda}`,
:math:`g_\lambda = \nabla F_\lambda(w^*)`, :math:`r = \|w - w^*\|^2` and
:math:`e = F_{\tilde\lambda}(w) - F_{\tilde\lambda}^*`, the identity
:math:`F_\lambda(w) - F_\lambda^* = [F_\lambda(w^*) - F_\lambda^*] + \langle g_\lambda, w -
w^*\rangle + D_{F_\lambda}(w, w^*)` gives

.. math::
    F_\lambda(w) - F_\lambda^* \le \mathrm{bias} + \|g_\lambda\|\sqrt r
    + \min\Big\{\frac{L_\lambda}2r,\ \rho_\lambda e\Big\},

with bias any bound of Theorem E, :math:`L_\lambda` the smoothness of :math:`F_\lambda`, and
(every :math:`F_k` convex) :math:`\rho_\lambda = \min\{\max_k\lambda_k/\tilde\lambda_k,\
1 + L\|\lambda - \tilde\lambda\|_1/(2\mu_t)\}`. In terms of :math:`e` alone
(:math:`r \le 2e/\mu_t`; only :math:`L`-smoothness of the :math:`F_k`):

.. math::
    F_\lambda(w) - F_\lambda^* \le \frac L\mu\chi^2\Gamma + e + 2\sqrt{\frac{L\chi^2\Gamma e}
    {\mu_t}} + \frac{L\|\lambda - \tilde\lambda\|_1e}{\mu_t},

which equals :math:`e` when :math:`\tilde\lambda = \lambda`. For a random :math:`w` the same
holds in expectation with :math:`\mathbb Er`, :math:`\mathbb Ee` (Jensen on :math:`\sqrt r`).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import check_scalar
from ..errors import CISInputError
from ._checks import check_smooth_convex, check_weights

__all__ = [
    "relative_smoothness",
    "target_error_bound",
    "target_error_bound_convex",
    "target_error_bound_e",
]


def relative_smoothness(
    lam: ArrayLike, lt: ArrayLike, *, L: float | None = None, mu_t: float | None = None
) -> float:
    r""":math:`\rho_\lambda` with :math:`D_{F_\lambda}(w, w^*) \le \rho_\lambda
    (F_{\tilde\lambda}(w) - F_{\tilde\lambda}^*)` when every :math:`F_k` is convex (Theorem D):
    :math:`\max_{k:\tilde\lambda_k > 0}\lambda_k/\tilde\lambda_k`, or, if ``L`` and ``mu_t``
    are given, the smaller of that and :math:`1 + L\|\lambda - \tilde\lambda\|_1/(2\mu_t)`.

    Examples
    --------
    >>> relative_smoothness([0.5, 0.5], [0.25, 0.75])
    2.0
    >>> relative_smoothness([0.5, 0.5], [0.25, 0.75], L=1.0, mu_t=1.0)
    1.25
    """
    lam_a, lt_a = check_weights(lam, lt)
    pos = lt_a > 0
    rho = float(np.max(np.where(pos, lam_a / np.where(pos, lt_a, 1.0), 0.0)))
    if L is not None and mu_t is not None:
        L_f = check_scalar(L, "L", positive=True)
        m = check_scalar(mu_t, "mu_t", positive=True)
        rho = min(rho, 1.0 + L_f * float(np.abs(lam_a - lt_a).sum()) / (2.0 * m))
    return rho


def _nonneg_or_inf(x: float, field: str) -> float:
    try:
        val = float(x)
    except (TypeError, ValueError):
        raise CISInputError(field, x, "must be a number") from None
    if math.isnan(val) or val < 0:
        raise CISInputError(field, x, "must be >= 0 (inf allowed: no bound)")
    return val


def target_error_bound(
    *, bias: float, g_lam_norm: float, r: float, e: float, rho_lam: float, L_lam: float
) -> float:
    r"""Theorem D: :math:`F_\lambda(w) - F_\lambda^* \le \mathrm{bias} + \|g_\lambda\|\sqrt r +
    \min\{L_\lambda r/2, \rho_\lambda e\}` (also in expectation, with :math:`r, e` bounds on
    :math:`\mathbb Er, \mathbb Ee`). ``inf`` when both ``r`` and ``e`` are.

    Examples
    --------
    >>> target_error_bound(bias=0.5, g_lam_norm=1.0, r=4.0, e=1.0, rho_lam=1.5, L_lam=2.0)
    4.0
    """
    b = check_scalar(bias, "bias", nonneg=True)
    g = check_scalar(g_lam_norm, "g_lam_norm", nonneg=True)
    r_f = _nonneg_or_inf(r, "r")
    e_f = _nonneg_or_inf(e, "e")
    rho = check_scalar(rho_lam, "rho_lam", nonneg=True)
    L_lam_f = check_scalar(L_lam, "L_lam", nonneg=True)
    if math.isinf(r_f):
        return math.inf
    cross = g * math.sqrt(r_f) if g > 0 else 0.0
    return b + cross + min(0.5 * L_lam_f * r_f, rho * e_f)


def target_error_bound_e(
    e: float, *, lam: ArrayLike, lt: ArrayLike, L: float, mu: float, mu_t: float, Gamma: float
) -> float:
    r"""Theorem D in terms of :math:`e` (the form that needs only :math:`L`-smooth :math:`F_k`):

    .. math::
        \frac L\mu\chi^2\Gamma + e + 2\sqrt{L\chi^2\Gamma e/\mu_t}
        + L\|\lambda - \tilde\lambda\|_1e/\mu_t .

    Examples
    --------
    >>> target_error_bound_e(0.3, lam=[0.5, 0.5], lt=[0.5, 0.5], L=2.0, mu=1.0, mu_t=1.0,
    ...                      Gamma=1.0)
    0.3
    """
    lam_a, lt_a = check_weights(lam, lt)
    e_f = check_scalar(e, "e", nonneg=True)
    check_smooth_convex(L, mu)
    m_t = check_scalar(mu_t, "mu_t", positive=True)
    gam = check_scalar(Gamma, "Gamma", nonneg=True)
    pos = lt_a > 0
    chi2 = float(np.where(pos, (lam_a - lt_a) ** 2 / np.where(pos, lt_a, 1.0), 0.0).sum())
    l1 = float(np.abs(lam_a - lt_a).sum())
    return (
        L / mu * chi2 * gam
        + e_f
        + 2.0 * math.sqrt(L * chi2 * gam * e_f / m_t)
        + L * l1 * e_f / m_t
    )


def target_error_bound_convex(
    e: float, *, lam: ArrayLike, lt: ArrayLike, zeta2: float, mu: float, mu_t: float, L: float
) -> float:
    r"""Theorem D in terms of :math:`e` with convex :math:`F_k` and Theorem E's
    :math:`\zeta_*^2`:

    .. math::
        \frac{\chi^2\zeta_*^2}{2\mu} + \sqrt{2\chi^2\zeta_*^2e/\mu_t} + \rho_\lambda e .

    Examples
    --------
    >>> target_error_bound_convex(0.3, lam=[0.5, 0.5], lt=[0.5, 0.5], zeta2=1.0, mu=1.0,
    ...                           mu_t=1.0, L=1.0)
    0.3
    """
    lam_a, lt_a = check_weights(lam, lt)
    e_f = check_scalar(e, "e", nonneg=True)
    z = check_scalar(zeta2, "zeta2", nonneg=True)
    m = check_scalar(mu, "mu", positive=True)
    m_t = check_scalar(mu_t, "mu_t", positive=True)
    pos = lt_a > 0
    chi2 = float(np.where(pos, (lam_a - lt_a) ** 2 / np.where(pos, lt_a, 1.0), 0.0).sum())
    rho = relative_smoothness(lam_a, lt_a, L=L, mu_t=m_t)
    return chi2 * z / (2.0 * m) + math.sqrt(2.0 * chi2 * z * e_f / m_t) + rho * e_f
