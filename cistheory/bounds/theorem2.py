r"""Theorem 2 of ``docs/theory.md``: the optimisation error of SGD with one local step, fixed
and diminishing steps (checked by ``proofs_check.theorem2``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import FloatArray, as_float_array, first_bad
from ._checks import STEP_ULPS, as_result, check_broadcast, check_sgd_common

__all__ = ["sgd_diminishing_bound", "sgd_fixed_step_bound"]


def sgd_fixed_step_bound(
    t: ArrayLike, eta: ArrayLike, L_t: ArrayLike, mu_t: ArrayLike, V: ArrayLike, gap0: ArrayLike
) -> float | FloatArray:
    r"""Expected optimisation error of SGD with a fixed step: Theorem 2, ``docs/theory.md``.

    :math:`F_{\tilde\lambda}` is :math:`L_t`-smooth and satisfies PL with :math:`\mu_t` (e.g. it
    is :math:`\mu_t`-strongly convex), the
    stochastic gradient is unbiased with :math:`\mathbb E\|g\|^2 \le \|\nabla
    F_{\tilde\lambda}\|^2 + V` (Lemma 2), and :math:`0 < \eta \le 1/L_t`. After :math:`t`
    updates from :math:`w_0` (:math:`t = 0` is :math:`w_0` itself),

    .. math::
        \mathbb E[F_{\tilde\lambda}(w_t)] - F_{\tilde\lambda}^*
        \le \frac{\eta L_t V}{2\mu_t}
        + (1 - \eta\mu_t)^t \Big(F_{\tilde\lambda}(w_0) - F_{\tilde\lambda}^*
        - \frac{\eta L_t V}{2\mu_t}\Big).

    This is Bottou, Curtis and Nocedal (SIAM Review 2018), Theorem 4.6, whose iterate
    :math:`w_k` (from :math:`w_1`) has taken :math:`k - 1` updates; the exponent :math:`t`
    here counts updates, so the two agree. The indexing is checked against the exact
    expected error of SGD on quadratics (``tests/test_bounds.py``).

    Parameters
    ----------
    t : array_like of int
        Number of updates (:math:`\ge 0`).
    eta : array_like
        Step size, :math:`0 < \eta \le 1/L_t`.
    L_t, mu_t : array_like
        Smoothness and PL constant of :math:`F_{\tilde\lambda}` (:math:`0 < \mu_t \le L_t`).
    V : array_like
        Variance bound :math:`V \ge 0` (e.g. :func:`variance_bound`).
    gap0 : array_like
        Initial gap :math:`F_{\tilde\lambda}(w_0) - F_{\tilde\lambda}^* \ge 0`.

    Returns
    -------
    float or ndarray
        Broadcast over all arguments; a float when every argument is a scalar.

    Examples
    --------
    >>> sgd_fixed_step_bound(0, 0.5, 1.0, 0.5, 2.0, 3.0)
    3.0
    >>> sgd_fixed_step_bound([1, 2], 0.5, 1.0, 0.5, 2.0, 3.0).tolist()
    [2.5, 2.125]
    """
    ta, lt_, mt, va, g0 = check_sgd_common(t, L_t, mu_t, V, gap0)
    eta_a = as_float_array(eta, "eta", positive=True)
    check_broadcast(t=ta, eta=eta_a, L_t=lt_, mu_t=mt, V=va, gap0=g0)
    prod = eta_a * lt_
    first_bad("eta", eta_a, prod > 1.0 + STEP_ULPS, "step must be <= 1/L_t")
    floor = eta_a * lt_ * va / (2.0 * mt)
    # eta * mu_t <= eta * L_t <= 1 (up to rounding): the base is in [0, 1).
    base = np.maximum(1.0 - eta_a * mt, 0.0)
    # Written as a convex combination of gap0 and the floor (both >= 0): the form
    # floor + base**t (gap0 - floor) cancels catastrophically when floor >> gap0 and
    # returned less than gap0 at t = 0.
    return as_result(base**ta * g0 + (1.0 - base**ta) * floor)


def sgd_diminishing_bound(
    t: ArrayLike,
    b: ArrayLike,
    gamma: ArrayLike,
    L_t: ArrayLike,
    mu_t: ArrayLike,
    V: ArrayLike,
    gap0: ArrayLike,
) -> float | FloatArray:
    r"""Expected optimisation error of SGD with steps :math:`b/(\gamma + t)`: Theorem 2.

    Assumptions of :func:`sgd_fixed_step_bound`; update :math:`t = 0, 1, \dots` uses the step
    :math:`\eta_t = b/(\gamma + t)` with :math:`b > 1/\mu_t` and :math:`b/\gamma \le 1/L_t`.
    After :math:`t` updates (``docs/theory.md``, Theorem 2, diminishing steps)

    .. math::
        \mathbb E[F_{\tilde\lambda}(w_t)] - F_{\tilde\lambda}^* \le \frac{\nu}{\gamma + t},
        \qquad \nu = \max\Big\{\frac{b^2 L_t V}{2(b\mu_t - 1)},\
        \gamma\big(F_{\tilde\lambda}(w_0) - F_{\tilde\lambda}^*\big)\Big\}.

    Bottou, Curtis and Nocedal (2018), Theorem 4.7, with their :math:`\gamma_B = \gamma - 1`
    and :math:`w_1 = w_0` here: their step :math:`\beta/(\gamma_B + k)` for update
    :math:`k = t + 1` is ours, their :math:`(\gamma_B + 1)(F(w_1) - F^*)` is
    :math:`\gamma\, \mathrm{gap}_0`. The conditions force :math:`\gamma \ge b L_t > 1`.

    Parameters
    ----------
    t : array_like of int
        Number of updates (:math:`\ge 0`).
    b, gamma : array_like
        Step schedule, :math:`b \mu_t > 1`, :math:`b L_t \le \gamma`.
    L_t, mu_t, V, gap0 : array_like
        As in :func:`sgd_fixed_step_bound`.

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> sgd_diminishing_bound(0, 4.0, 4.0, 1.0, 0.5, 1.0, 1.0)
    2.0
    >>> sgd_diminishing_bound([4, 12], 4.0, 4.0, 1.0, 0.5, 1.0, 1.0).tolist()
    [1.0, 0.5]
    """
    ta, lt_, mt, va, g0 = check_sgd_common(t, L_t, mu_t, V, gap0)
    ba = as_float_array(b, "b", positive=True)
    ga = as_float_array(gamma, "gamma", positive=True)
    check_broadcast(t=ta, b=ba, gamma=ga, L_t=lt_, mu_t=mt, V=va, gap0=g0)
    bm = ba * mt
    first_bad("b", ba, bm <= 1.0, "must be > 1/mu_t")
    bl = ba * lt_
    first_bad("gamma", ga, bl > ga * (1.0 + STEP_ULPS), "first step b/gamma must be <= 1/L_t")
    nu = np.maximum(ba**2 * lt_ * va / (2.0 * (bm - 1.0)), ga * g0)
    return as_result(nu / (ga + ta))
