r"""Theorem Q of ``docs/theory.md`` (Section 4.15): function values of a quadratic training
objective, without the condition number and without a logarithm (checked by
``proofs_check.theorem_q``).

Assumptions: those of Theorem A, :math:`F_{\tilde\lambda}` quadratic with Hessian spectrum in
:math:`[\mu_t, L_t]` (e.g. linear models with the squared loss) and :math:`\eta L_t < 2`. With
:math:`e_t = \mathbb EF_{\tilde\lambda}(w_t) - F_{\tilde\lambda}^*`,
:math:`r_t = \mathbb E\|w_t - w^*\|^2`, :math:`\varrho = \max(|1 - \eta\mu_t|, |1 - \eta L_t|)` and
:math:`\phi(j) = \max_{\lambda\in[\mu_t, L_t]}\lambda(1 - \eta\lambda)^{2j}`, for every
:math:`c` and bounds :math:`\hat e_s \ge e_s` (:math:`s < t`):

.. math::
    e_t \le \min\big(\varrho^{2t}e_0, \tfrac12\phi(t)r_0\big)
    + \frac{\eta V_c}{2}\,\frac{1 - (1 - \eta L_t)_+^{2t}}{2 - \eta L_t}
    + \eta^2(1 + c)L_s\sum_{j<t}\phi(j)\,\hat e_{t-1-j},

.. math::
    r_t \le \varrho^{2t}r_0 + \eta^2V_c\frac{1 - \varrho^{2t}}{1 - \varrho^2}
    + 2\eta^2(1 + c)L_s\sum_{j<t}\varrho^{2j}\hat e_{t-1-j}.

Stability certificate: :math:`\eta^2(1 + c)L_s\sum_{j\ge0}\phi(j) < 1` for some :math:`c`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._arrays import FloatArray, check_scalar
from ..errors import CISInputError
from .theorem_a import _curvature, _noise_constants

__all__ = ["SequenceBound", "phi_kernel", "quadratic_sequences", "young_grid"]

INF = math.inf


@dataclass(frozen=True)
class SequenceBound:
    r"""Bounds at every round :math:`t = 0..T` of a statement that is proved by induction.

    Attributes
    ----------
    e : ndarray (T + 1,)
        :math:`\hat e_t \ge \mathbb EF_{\tilde\lambda}(w_t) - F_{\tilde\lambda}^*` (``inf`` where
        no ingredient applies).
    r : ndarray (T + 1,)
        :math:`\hat r_t \ge \mathbb E\|w_t - w^*\|^2`.
    certified : bool
        A stability certificate holds (the bounds stay finite as :math:`T \to \infty`).
    """

    e: FloatArray
    r: FloatArray
    certified: bool


def phi_kernel(J: int, *, eta: float, mu_t: float, L_t: float) -> FloatArray:
    r""":math:`\phi(j) = \max_{\lambda\in[\mu_t, L_t]}\lambda|1 - \eta\lambda|^{2j}`,
    :math:`j = 0..J-1`, exactly (the maximum is at an end point or at the critical point
    :math:`1/(\eta(2j + 1))`).

    Examples
    --------
    >>> phi_kernel(3, eta=0.5, mu_t=0.5, L_t=1.0).tolist()
    [1.0, 0.29629629629629634, 0.158203125]
    """
    eta_f = check_scalar(eta, "eta", positive=True)
    mu, lt = _curvature(mu_t, L_t)
    if int(J) < 0:
        raise CISInputError("J", J, "must be >= 0")
    j = np.arange(int(J), dtype=np.float64)

    def f(lam: float | FloatArray) -> FloatArray:
        return np.asarray(lam * np.abs(1.0 - eta_f * lam) ** (2 * j), dtype=np.float64)

    out = np.maximum(f(mu), f(lt))
    lam_star = 1.0 / (eta_f * (2 * j + 1))
    inside = (lam_star >= mu) & (lam_star <= lt)
    crit = lam_star * np.abs(1.0 - eta_f * lam_star) ** (2 * j)
    return np.asarray(np.where(inside, np.maximum(out, crit), out), dtype=np.float64)


def young_grid(Ls: float, Vs: float) -> list[float]:
    """The values of Young's :math:`c` over which the sequences minimise (``[inf]`` when
    :math:`L_s = 0`, ``[0]`` when :math:`V_s = 0`, else 13 log-spaced values in [0.01, 100]).

    Examples
    --------
    >>> young_grid(0.0, 1.0), young_grid(1.0, 0.0), len(young_grid(1.0, 1.0))
    ([inf], [0.0], 13)
    """
    if Ls == 0:
        return [INF]
    if Vs == 0:
        return [0.0]
    return [float(x) for x in np.geomspace(1e-2, 1e2, 13)]


def kernel_sum(eta: float, mu_t: float, L_t: float, horizon: int) -> float:
    r""":math:`\sum_{j\ge0}\phi(j)`: exact up to :math:`J` terms, the tail bounded by
    :math:`L_t\varrho^{2J}/(1 - \varrho^2)`."""
    rho = max(abs(1 - eta * mu_t), abs(1 - eta * L_t))
    if rho >= 1.0:
        return INF
    J = int(min(200_000, horizon + 10.0 / max(1.0 - rho**2, 1e-12)))
    tail = L_t * rho ** (2 * J) / (1.0 - rho**2)
    return float(phi_kernel(J, eta=eta, mu_t=mu_t, L_t=L_t).sum()) + tail


def quadratic_ingredients(
    T: int, *, eta: float, mu_t: float, L_t: float, Ls: float, Vs: float, Vn: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, bool]:
    r"""Per :math:`c` of :func:`young_grid`: the noise floors of :math:`e_t` and :math:`r_t`
    (rows, :math:`t = 0..T`), the gain :math:`\eta^2(1 + c)L_s`, :math:`\phi` and whether the
    certificate holds (internal to :func:`quadratic_sequences` and Theorem C')."""
    t = np.arange(T + 1, dtype=np.float64)
    rho = max(abs(1 - eta * mu_t), abs(1 - eta * L_t))
    phi = phi_kernel(T + 1, eta=eta, mu_t=mu_t, L_t=L_t)
    rr = rho ** (2 * t)
    fixed, dfix, gains = [], [], []
    phi_sum = kernel_sum(eta, mu_t, L_t, T) if Ls > 0 else 0.0
    certified = False
    for c in young_grid(Ls, Vs):
        vc = Vn if c == 0.0 else (Vs + Vn if math.isinf(c) else (1 + 1 / c) * Vs + Vn)
        cc = c if math.isfinite(c) else 0.0
        fixed.append(
            0.5 * eta * vc * (1.0 - max(1.0 - eta * L_t, 0.0) ** (2 * t)) / (2.0 - eta * L_t)
        )
        dfix.append(eta**2 * vc * (1.0 - rr) / (1.0 - rho**2) if rho < 1 else eta**2 * vc * t)
        gain = eta**2 * (1.0 + cc) * Ls
        gains.append(gain)
        certified = certified or Ls == 0 or gain * phi_sum < 1.0
    return np.array(fixed), np.array(dfix), np.array(gains), phi, certified


def quadratic_sequences(
    T: int,
    *,
    eta: float,
    mu_t: float,
    L_t: float,
    Ls: float,
    Vs: float,
    Vn: float,
    e0: float,
    r0: float,
) -> SequenceBound:
    r"""Theorem Q (module docstring): :math:`\hat e_t` and :math:`\hat r_t` for
    :math:`t = 0..T`, each the minimum over :math:`c` of :func:`young_grid`, fed back.

    Valid at every :math:`t` (also on unstable dynamics, where it grows); ``certified`` says
    whether the stability certificate holds. ``inf`` everywhere when :math:`\eta L_t \ge 2`.

    Examples
    --------
    One fixed node, :math:`f = w^2/2`, additive noise of variance 1, from the optimum: the
    exact :math:`\mathbb E w_t^2/2` is :math:`\frac{\eta}{2(2 - \eta)}(1 - (1-\eta)^{2t})`,
    and the bound is that equality.

    >>> b = quadratic_sequences(2, eta=0.5, mu_t=1.0, L_t=1.0, Ls=0.0, Vs=0.0, Vn=1.0,
    ...                         e0=0.0, r0=0.0)
    >>> b.e.tolist(), b.certified
    ([0.0, 0.125, 0.15625], True)
    """
    eta_f = check_scalar(eta, "eta", positive=True)
    mu, lt = _curvature(mu_t, L_t)
    ls, vs, vn = _noise_constants(Ls, Vs, Vn)
    e0_f = check_scalar(e0, "e0", nonneg=True)
    r0_f = check_scalar(r0, "r0", nonneg=True)
    n = int(T)
    if n < 0:
        raise CISInputError("T", T, "must be >= 0")
    e = np.full(n + 1, INF)
    r = np.full(n + 1, INF)
    e[0], r[0] = e0_f, r0_f
    if not eta_f * lt < 2.0:
        return SequenceBound(e, r, False)
    fixed, dfix, gains, phi, certified = quadratic_ingredients(
        n, eta=eta_f, mu_t=mu, L_t=lt, Ls=ls, Vs=vs, Vn=vn
    )
    rho = max(abs(1 - eta_f * mu), abs(1 - eta_f * lt))
    rr = rho ** (2 * np.arange(n + 1, dtype=np.float64))
    trans = np.minimum(rr * e0_f, 0.5 * phi * r0_f)
    with np.errstate(over="ignore", invalid="ignore"):
        for s in range(1, n + 1):
            prev = e[s - 1 :: -1][:s]
            conv_e = float(np.dot(phi[:s], prev))
            conv_r = float(np.dot(rr[:s], prev))
            e[s] = float(np.min(trans[s] + fixed[:, s] + gains * conv_e))
            r[s] = float(np.min(rr[s] * r0_f + dfix[:, s] + 2.0 * gains * conv_r))
    return SequenceBound(e, r, certified)
