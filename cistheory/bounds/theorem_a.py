r"""Theorem A of ``docs/theory.md`` (Section 4.12): mean-square contraction of CIS training
with one local step, without any assumption along the trajectory (checked by
``proofs_check.theorem_a``).

Setting: every :math:`f_{i,k}` with :math:`q_{i,k} > 0` is convex and :math:`L_{i,k}`-smooth,
:math:`F_{\tilde\lambda}` is :math:`\mu_t`-strongly convex and :math:`L_t`-smooth with minimiser
:math:`w^*`, the gradient noise of a picked pair has conditional mean 0 and
:math:`\mathbb E\|\xi_{i,k}\|^2 \le s^2_{i,k}`, the server step is 1 (:math:`\eta` is the
product of the server and local steps). :math:`L_s` is Lemma ES's expected smoothness
(:func:`cistheory.bounds.expected_smoothness`), :math:`V_s, V_n` the sampling and noise parts
of the variance at the optimum (:func:`cistheory.bounds.variance_parts` at :math:`w^*`).

For :math:`c \in [0, \infty]` put :math:`L_c = L_t + (1 + c)L_s` and
:math:`V_c = (1 + 1/c)V_s + V_n` (:math:`c = 0` only when :math:`V_s = 0`, :math:`c = \infty`
only when :math:`L_s = 0`). If :math:`0 < \eta \le 2/L_c`,

.. math::
    \mathbb E\|w_t - w^*\|^2 \le \rho_c^t\,\|w_0 - w^*\|^2 + \eta^2V_c\sum_{j<t}\rho_c^j,
    \qquad \rho_c = 1 - \eta\mu_t(2 - \eta L_c).

The step condition prices the sampling factor :math:`\beta/q` through :math:`L_s`. Outside it
(no admissible :math:`c`) every function here returns ``inf``: the theorem says nothing there,
and the dynamics may diverge (``docs/theory.md``, the reproducer of Section 4.12).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import FloatArray, as_float_array, check_scalar, first_bad
from ..errors import CISInputError
from ._checks import STEP_ULPS, as_result

__all__ = [
    "c_candidates",
    "distance_bound",
    "distance_bound_diminishing",
    "distance_bound_nonconvex",
    "distance_bound_simple",
    "step_limit",
    "young_constants",
]

INF = math.inf


def _rounds(t: ArrayLike) -> FloatArray:
    ta = as_float_array(t, "t", nonneg=True)
    first_bad("t", ta, ta != np.floor(ta), "the number of updates must be an integer")
    return ta


def _curvature(mu_t: float, L_t: float) -> tuple[float, float]:
    mu = check_scalar(mu_t, "mu_t", positive=True)
    lt = check_scalar(L_t, "L_t", positive=True)
    if mu > lt * (1.0 + STEP_ULPS):
        raise CISInputError("mu_t", mu, f"must be <= L_t = {lt!r}")
    return mu, lt


def _noise_constants(Ls: float, Vs: float, Vn: float) -> tuple[float, float, float]:
    """``(L_s, V_s, V_n)`` of Theorem A checked: each finite and ``>= 0`` (named in errors)."""
    return (
        check_scalar(Ls, "Ls", nonneg=True),
        check_scalar(Vs, "Vs", nonneg=True),
        check_scalar(Vn, "Vn", nonneg=True),
    )


def young_constants(
    c: float, *, L_t: float, Ls: float, Vs: float, Vn: float
) -> tuple[float, float]:
    r""":math:`(L_c, V_c) = (L_t + (1 + c)L_s,\ (1 + 1/c)V_s + V_n)` of Theorem A.

    ``c = 0`` is allowed only when :math:`V_s = 0` (then :math:`V_0 = V_n`), ``c = inf`` only
    when :math:`L_s = 0` (then :math:`L_\infty = L_t`, :math:`V_\infty = V_s + V_n`).

    Examples
    --------
    >>> young_constants(1.0, L_t=1.0, Ls=2.0, Vs=3.0, Vn=1.0)
    (5.0, 7.0)
    >>> young_constants(float("inf"), L_t=1.0, Ls=0.0, Vs=3.0, Vn=1.0)
    (1.0, 4.0)
    """
    cf = float(c)
    if math.isnan(cf) or cf < 0:
        raise CISInputError("c", c, "must be in [0, inf]")
    ls, vs, vn = _noise_constants(Ls, Vs, Vn)
    lt = check_scalar(L_t, "L_t", positive=True)
    if cf == 0.0:
        if vs > 0:
            raise CISInputError("c", c, "c = 0 needs Vs = 0")
        return lt + ls, vn
    if math.isinf(cf):
        if ls > 0:
            raise CISInputError("c", c, "c = inf needs Ls = 0")
        return lt, vs + vn
    return lt + (1.0 + cf) * ls, (1.0 + 1.0 / cf) * vs + vn


def step_limit(*, L_t: float, Ls: float) -> float:
    r"""The largest step for which Theorem A can hold: :math:`2/(L_t + L_s)`.

    For :math:`V_s > 0` a step must be strictly below it (some :math:`c > 0` is needed);
    for :math:`V_s = 0` the limit itself is admissible.

    Examples
    --------
    >>> step_limit(L_t=1.0, Ls=9.0)
    0.2
    """
    return 2.0 / (check_scalar(L_t, "L_t", positive=True) + check_scalar(Ls, "Ls", nonneg=True))


def c_candidates(
    eta: float, *, L_t: float, Ls: float, Vs: float, Vn: float, n: int = 48
) -> list[float]:
    r"""The values of :math:`c` over which :func:`distance_bound` minimises (any admissible
    :math:`c` gives a valid bound, so the minimum over any set is valid).

    Log-spaced in :math:`(0, c_{\max})`, :math:`c_{\max} = (2/\eta - L_t)/L_s - 1`, plus the
    minimiser of the floor :math:`\eta V_c/(\mu_t(2 - \eta L_c))` in :math:`c`; ``[inf]`` when
    :math:`L_s = 0`, ``[0]`` when :math:`V_s = 0` and the step allows it, ``[]`` when no
    :math:`c` is admissible.

    Examples
    --------
    >>> c_candidates(1.0, L_t=1.0, Ls=9.0, Vs=1.0, Vn=0.0)
    []
    >>> c_candidates(0.1, L_t=1.0, Ls=0.0, Vs=1.0, Vn=0.0)
    [inf]
    """
    eta_f = check_scalar(eta, "eta", positive=True)
    lt = check_scalar(L_t, "L_t", positive=True)
    ls, vs, vn = _noise_constants(Ls, Vs, Vn)
    if ls == 0:
        return [INF] if eta_f * lt <= 2.0 * (1.0 + STEP_ULPS) else []
    if vs == 0:
        return [0.0] if eta_f * (lt + ls) <= 2.0 * (1.0 + STEP_ULPS) else []
    cmax = (2.0 / eta_f - lt) / ls - 1.0
    if not cmax > 0:
        return []
    out = [float(x) for x in cmax * np.geomspace(1e-5, 1.0 - 1e-6, int(n))]
    a = 2.0 - eta_f * (lt + ls)
    b = eta_f * ls
    h = vs + vn
    cstar = (-b * vs + math.sqrt((b * vs) ** 2 + a * b * h * vs)) / (b * h)
    if 0 < cstar < cmax:
        out.append(float(cstar))
    return out


def _geometric(rho: float, one_minus_rho: float, ta: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``rho**t`` and ``sum_{j<t} rho**j``, the latter without cancellation near rho = 1."""
    if one_minus_rho <= 0.0:
        return np.ones_like(ta), ta.copy()
    if rho <= 0.0:
        return np.where(ta == 0, 1.0, 0.0), np.minimum(ta, 1.0)
    log_rho = math.log1p(-one_minus_rho)
    return np.exp(ta * log_rho), -np.expm1(ta * log_rho) / one_minus_rho


def _fixed(ta: FloatArray, eta: float, mu: float, lc: float, vc: float, r0: float) -> FloatArray:
    if eta * lc > 2.0 * (1.0 + STEP_ULPS):
        return np.full(ta.shape, INF)
    one_minus = eta * mu * max(2.0 - eta * lc, 0.0)
    powt, geo = _geometric(1.0 - one_minus, one_minus, ta)
    return np.asarray(powt * r0 + eta**2 * vc * geo, dtype=np.float64)


def distance_bound(
    t: ArrayLike,
    *,
    eta: float,
    mu_t: float,
    L_t: float,
    Ls: float,
    Vs: float,
    Vn: float,
    r0: float,
    c: float | None = None,
) -> float | FloatArray:
    r"""Theorem A: :math:`\mathbb E\|w_t - w^*\|^2` after :math:`t` updates, fixed step.

    .. math::
        \mathbb E\|w_t - w^*\|^2 \le \rho_c^t r_0 + \eta^2V_c\sum_{j<t}\rho_c^j, \qquad
        \rho_c = 1 - \eta\mu_t(2 - \eta L_c),\quad 0 < \eta \le 2/L_c,

    with :math:`L_c, V_c` of :func:`young_constants` (module docstring, ``docs/theory.md``
    Section 4.12). ``inf`` where :math:`\eta > 2/L_c`.

    Parameters
    ----------
    t : int or array of int
        Updates from :math:`w_0` (>= 0).
    eta : float
        Step (> 0).
    mu_t, L_t : float
        Strong convexity and smoothness of :math:`F_{\tilde\lambda}` (:math:`0 < \mu_t \le L_t`).
    Ls : float
        Expected smoothness (Lemma ES).
    Vs, Vn : float
        Sampling and noise variance at the optimum (:func:`cistheory.bounds.variance_parts`).
    r0 : float
        :math:`\|w_0 - w^*\|^2`.
    c : float, optional
        Young's parameter; default: the minimum over :func:`c_candidates` (pointwise in ``t``).

    Returns
    -------
    float or ndarray
        ``inf`` outside the step condition.

    Examples
    --------
    The reproducer (one node, :math:`q = 0.1`, :math:`f = w^2/2`): :math:`L_s = 9`, so the
    step 1 is outside the condition (the exact :math:`\mathbb E w_t^2 = 9^t w_0^2` diverges).

    >>> distance_bound(3, eta=1.0, mu_t=1.0, L_t=1.0, Ls=9.0, Vs=0.0, Vn=0.0, r0=1.0)
    inf

    At the step 0.1 the bound is an equality: the update is 0 (picked, probability 0.1) or
    :math:`w` (idle), so :math:`\mathbb E w_1^2 = 0.9\,w_0^2`.

    >>> distance_bound([0, 1], eta=0.1, mu_t=1.0, L_t=1.0, Ls=9.0, Vs=0.0, Vn=0.0,
    ...                r0=1.0).tolist()
    [1.0, 0.9]
    """
    ta = _rounds(t)
    eta_f = check_scalar(eta, "eta", positive=True)
    mu, lt = _curvature(mu_t, L_t)
    ls, vs, vn = _noise_constants(Ls, Vs, Vn)
    r0_f = check_scalar(r0, "r0", nonneg=True)
    cs = [c] if c is not None else c_candidates(eta_f, L_t=lt, Ls=ls, Vs=vs, Vn=vn)
    best = np.full(ta.shape, INF)
    for cc in cs:
        lc, vc = young_constants(float(cc), L_t=lt, Ls=ls, Vs=vs, Vn=vn)
        best = np.minimum(best, _fixed(ta, eta_f, mu, lc, vc, r0_f))
    return as_result(best)


def distance_bound_simple(
    t: ArrayLike,
    *,
    eta: float,
    mu_t: float,
    L_t: float,
    Ls: float,
    Vstar: float,
    r0: float,
    c: float,
) -> float | FloatArray:
    r"""Corollary A1 (the simple form of Theorem A): for :math:`c > 0` and
    :math:`0 < \eta \le 1/(L_t + (1 + c)L_s)`,

    .. math::
        \mathbb E\|w_t - w^*\|^2 \le (1 - \eta\mu_t)^t\|w_0 - w^*\|^2
        + \Big(1 + \frac1c\Big)\frac{\eta V^*}{\mu_t},

    with :math:`V^* = V_s + V_n`; ``inf`` for a larger step.

    Examples
    --------
    >>> distance_bound_simple(0, eta=0.05, mu_t=1.0, L_t=1.0, Ls=9.0, Vstar=1.0, r0=1.0, c=1.0)
    1.1
    >>> distance_bound_simple(0, eta=0.1, mu_t=1.0, L_t=1.0, Ls=9.0, Vstar=1.0, r0=1.0, c=1.0)
    inf
    """
    ta = _rounds(t)
    eta_f = check_scalar(eta, "eta", positive=True)
    mu, lt = _curvature(mu_t, L_t)
    ls = check_scalar(Ls, "Ls", nonneg=True)
    v = check_scalar(Vstar, "Vstar", nonneg=True)
    r0_f = check_scalar(r0, "r0", nonneg=True)
    c_f = check_scalar(c, "c", positive=True)
    if eta_f * (lt + (1.0 + c_f) * ls) > 1.0 + STEP_ULPS:
        return as_result(np.full(ta.shape, INF))
    base = max(1.0 - eta_f * mu, 0.0)
    return as_result(base**ta * r0_f + (1.0 + 1.0 / c_f) * eta_f * v / mu)


def distance_bound_diminishing(
    t: ArrayLike,
    *,
    b: float,
    gamma: float,
    mu_t: float,
    L_t: float,
    Ls: float,
    Vs: float,
    Vn: float,
    r0: float,
    c: float,
) -> float | FloatArray:
    r"""Theorem A with steps :math:`\eta_t = b/(\gamma + t)` (``docs/theory.md``, Theorem A(b)).

    With :math:`\theta = 2 - (b/\gamma)L_c > 0` and :math:`\theta b\mu_t > 1`,

    .. math::
        \mathbb E\|w_t - w^*\|^2 \le \frac{\nu}{\gamma + t}, \qquad
        \nu = \max\Big\{\frac{b^2V_c}{\theta b\mu_t - 1},\ \gamma\|w_0 - w^*\|^2\Big\};

    ``inf`` when the conditions fail.

    Examples
    --------
    >>> distance_bound_diminishing([0, 10], b=2.0, gamma=4.0, mu_t=1.0, L_t=1.0, Ls=0.0,
    ...                            Vs=0.0, Vn=1.0, r0=1.0, c=float("inf")).tolist()
    [1.0, 0.2857142857142857]
    """
    ta = _rounds(t)
    b_f = check_scalar(b, "b", positive=True)
    g_f = check_scalar(gamma, "gamma", positive=True)
    mu, lt = _curvature(mu_t, L_t)
    ls = check_scalar(Ls, "Ls", nonneg=True)
    lc, vc = young_constants(c, L_t=lt, Ls=ls, Vs=Vs, Vn=Vn)
    r0_f = check_scalar(r0, "r0", nonneg=True)
    theta = 2.0 - b_f / g_f * lc
    if not (theta > 0 and theta * b_f * mu > 1.0):
        return as_result(np.full(ta.shape, INF))
    nu = max(b_f**2 * vc / (theta * b_f * mu - 1.0), g_f * r0_f)
    return as_result(nu / (g_f + ta))


def distance_bound_nonconvex(
    t: ArrayLike,
    *,
    eta: float,
    mu_t: float,
    L_t: float,
    Lambda: float,
    Vs: float,
    Vn: float,
    r0: float,
    c: float,
) -> float | FloatArray:
    r"""Theorem A(c): the :math:`f_{i,k}` need not be convex (``docs/theory.md``).

    If :math:`\nabla f_{i,k}` is Lipschitz, :math:`\Lambda` as in
    :func:`cistheory.bounds.sampling_lipschitz`, :math:`0 < \eta \le 2/(\mu_t + L_t)` and

    .. math:: \rho = (1 - \eta\mu_t)^2 + (1 + c)\,\eta^2\Lambda \le 1,

    then :math:`\mathbb E\|w_t - w^*\|^2 \le \rho^t r_0 + \eta^2V_c\sum_{j<t}\rho^j` with
    :math:`V_c = (1 + 1/c)V_s + V_n` (:math:`c = 0` when :math:`V_s = 0`); ``inf`` otherwise.

    Examples
    --------
    >>> distance_bound_nonconvex(1, eta=0.5, mu_t=1.0, L_t=1.0, Lambda=1.0, Vs=0.0, Vn=0.0,
    ...                          r0=1.0, c=0.0)
    0.5
    """
    ta = _rounds(t)
    eta_f = check_scalar(eta, "eta", positive=True)
    mu, lt = _curvature(mu_t, L_t)
    lam_f = check_scalar(Lambda, "Lambda", nonneg=True)
    vs = check_scalar(Vs, "Vs", nonneg=True)
    vn = check_scalar(Vn, "Vn", nonneg=True)
    r0_f = check_scalar(r0, "r0", nonneg=True)
    c_f = float(c)
    if math.isnan(c_f) or c_f < 0 or math.isinf(c_f):
        raise CISInputError("c", c, "must be in [0, inf)")
    if c_f == 0.0 and vs > 0:
        raise CISInputError("c", c, "c = 0 needs Vs = 0")
    vc = vn if c_f == 0.0 else (1.0 + 1.0 / c_f) * vs + vn
    if eta_f * (mu + lt) > 2.0 * (1.0 + STEP_ULPS):
        return as_result(np.full(ta.shape, INF))
    rho = (1.0 - eta_f * mu) ** 2 + (1.0 + c_f) * eta_f**2 * lam_f
    if rho > 1.0:
        return as_result(np.full(ta.shape, INF))
    powt, geo = _geometric(rho, 1.0 - rho, ta)
    return as_result(powt * r0_f + eta_f**2 * vc * geo)
