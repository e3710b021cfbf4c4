r"""Corollary P and Corollary M of ``docs/theory.md`` (Section 4.19): the full bound when the
iterate need not lie in the hypothesis class (checked by ``proofs_check.corollary_pm``).

Theorem 3 bounds :math:`R_\lambda(w) - \min_{\mathcal W}R_\lambda` only for
:math:`w \in \mathcal W`, and unprojected SGD does not keep :math:`w_T` there (the first
Corollary assumed it). Two correct statements, on the event of Theorem 3:

* **P** (projection onto a closed convex :math:`\mathcal W \ni w^*`): Theorem A holds for the
  projected iteration, :math:`w_T \in \mathcal W`, and
  :math:`\mathbb ER_\lambda(w_T) - \min_{\mathcal W}R_\lambda \le 2\sum_k\lambda_k
  \varepsilon_k + \mathrm{bias} + \|g_\lambda\|\sqrt{R_T} + \frac{L_\lambda}2R_T`;
* **M** (no projection, :math:`B(w^*, \varrho) \subseteq \mathcal W`): for every :math:`x > 0`,
  :math:`\mathbb P[R_\lambda(w_T) - \min_{\mathcal W}R_\lambda > 2\sum_k\lambda_k
  \varepsilon_k + x] \le R_T/\varrho^2 + U_T/x`,

with :math:`R_T \ge \mathbb E\|w_T - w^*\|^2` (Theorem A) and :math:`U_T` Theorem D's
expectation bound.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import as_float_array, as_simplex, check_scalar
from ..errors import CISInputError

__all__ = ["projected_risk_bound", "risk_tail_probability"]


def projected_risk_bound(
    *,
    lam: ArrayLike,
    eps: ArrayLike,
    bias: float,
    g_lam_norm: float,
    R_T: float,
    L_lam: float,
) -> float:
    r"""Corollary P: :math:`2\sum_k\lambda_k\varepsilon_k + \mathrm{bias} +
    \|g_\lambda\|\sqrt{R_T} + L_\lambda R_T/2` for the projected iteration (``inf`` when
    :math:`R_T` is).

    Examples
    --------
    >>> projected_risk_bound(lam=[0.5, 0.5], eps=[0.1, 0.3], bias=0.1, g_lam_norm=1.0,
    ...                      R_T=0.25, L_lam=2.0)
    1.25
    """
    lam_a = as_simplex(lam, "lam")
    eps_a = as_float_array(eps, "eps", shape=lam_a.shape, nonneg=True, axes=("exit",))
    b = check_scalar(bias, "bias", nonneg=True)
    g = check_scalar(g_lam_norm, "g_lam_norm", nonneg=True)
    L_f = check_scalar(L_lam, "L_lam", nonneg=True)
    r = float(R_T)
    if math.isnan(r) or r < 0:
        raise CISInputError("R_T", R_T, "must be >= 0 (inf allowed)")
    if math.isinf(r):
        return math.inf
    return float(2.0 * np.dot(lam_a, eps_a)) + b + g * math.sqrt(r) + 0.5 * L_f * r


def risk_tail_probability(*, x: float, R_T: float, radius: float, U_T: float) -> float:
    r"""Corollary M: an upper bound on :math:`\mathbb P[R_\lambda(w_T) - \min_{\mathcal W}
    R_\lambda > 2\sum_k\lambda_k\varepsilon_k + x]`, namely :math:`\min(1, R_T/\varrho^2 +
    U_T/x)` (a probability; the minimum with 1 is the trivial bound, not a clip of a value).

    Examples
    --------
    >>> risk_tail_probability(x=1.0, R_T=0.01, radius=1.0, U_T=0.04)
    0.05
    """
    x_f = check_scalar(x, "x", positive=True)
    rad = check_scalar(radius, "radius", positive=True)
    u = check_scalar(U_T, "U_T", nonneg=True)
    r = float(R_T)
    if math.isnan(r) or r < 0:
        raise CISInputError("R_T", R_T, "must be >= 0 (inf allowed)")
    return min(1.0, r / rad**2 + u / x_f)
