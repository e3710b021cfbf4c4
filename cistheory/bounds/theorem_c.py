r"""Theorem C of ``docs/theory.md`` (Section 4.14): function values of the training objective
without the condition number (checked by ``proofs_check.theorem_c``).

Converting Theorem A's distance into a function value, :math:`e \le (L_t/2)r`, multiplies the
floor :math:`\eta V/\mu_t` by :math:`L_t/\mu_t`. Theorem C avoids it:

* **C-avg** (averaged iterate :math:`\bar w_T = \frac1T\sum_{t<T}w_t`):
  :math:`\mathbb EF(\bar w_T) - F^* \le \frac{r_0}{T\eta(2 - \eta L_c)} +
  \frac{\eta V_c}{2 - \eta L_c}`;
* **C** (last iterate, Shamir-Zhang averaging): with :math:`D = \eta(2 - \eta L_c)`,
  :math:`a = \eta(1 + \eta L_t)/2`,
  :math:`\kappa_I = a(1 + c)L_s + \frac\eta2(\eta L_t - 1)_+L_t`,
  :math:`X_k = \kappa_I(R_{T-k} + k\eta^2V_c)/D + kaV_c` and :math:`R_t` Theorem A's bound,

  .. math::
      e_T \le \min_{1\le K\le T}\Big[\frac{R_{T-K+1} + K\eta^2V_c}{KD}
      + \sum_{k=1}^{K-1}\frac{X_k}{k(k+1)}\Big];

* **C'** (:func:`combined_sequences`): at every round the minimum of Theorem A's one-step
  recursion, the descent step, the harmonic windows of C fed with the earlier bounds, and,
  for a quadratic :math:`F_{\tilde\lambda}`, Theorem Q (:mod:`cistheory.bounds.theorem_q`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import FloatArray, check_scalar
from ..errors import CISInputError
from ._checks import as_result
from .theorem_a import (
    _curvature,
    _noise_constants,
    _rounds,
    c_candidates,
    distance_bound,
    young_constants,
)
from .theorem_q import SequenceBound, quadratic_ingredients

__all__ = ["combined_sequences", "gap_bound_averaged", "gap_bound_last"]

INF = math.inf


def gap_bound_averaged(
    T: ArrayLike,
    *,
    eta: float,
    mu_t: float,
    L_t: float,
    Ls: float,
    Vs: float,
    Vn: float,
    r0: float,
    c: float,
) -> float | FloatArray:
    r"""Theorem C-avg: :math:`\mathbb EF_{\tilde\lambda}(\bar w_T) - F_{\tilde\lambda}^*` for the
    average :math:`\bar w_T` of :math:`w_0, \dots, w_{T-1}` (:math:`T \ge 1`):

    .. math::
        \frac{\|w_0 - w^*\|^2}{T\eta(2 - \eta L_c)} + \frac{\eta V_c}{2 - \eta L_c},
        \qquad \eta < 2/L_c ;

    ``inf`` otherwise (``docs/theory.md``, Section 4.14).

    Examples
    --------
    >>> gap_bound_averaged(10, eta=0.5, mu_t=1.0, L_t=1.0, Ls=0.0, Vs=0.0, Vn=1.0, r0=1.0,
    ...                    c=float("inf"))
    0.4666666666666667
    """
    ta = _rounds(T)
    if (ta < 1).any():
        raise CISInputError("T", np.asarray(T).tolist(), "the average needs T >= 1")
    eta_f = check_scalar(eta, "eta", positive=True)
    _curvature(mu_t, L_t)
    lc, vc = young_constants(c, L_t=L_t, Ls=Ls, Vs=Vs, Vn=Vn)
    r0_f = check_scalar(r0, "r0", nonneg=True)
    den = 2.0 - eta_f * lc
    if not den > 0:
        return as_result(np.full(ta.shape, INF))
    return as_result(r0_f / (ta * eta_f * den) + eta_f * vc / den)


def gap_bound_last(
    T: int,
    *,
    eta: float,
    mu_t: float,
    L_t: float,
    Ls: float,
    Vs: float,
    Vn: float,
    r0: float,
    c: float,
) -> float:
    r"""Theorem C: :math:`\mathbb EF_{\tilde\lambda}(w_T) - F_{\tilde\lambda}^*` at the last
    iterate, :math:`T \ge 1`, with :math:`R_t` from Theorem A at the same :math:`c`
    (module docstring). ``inf`` where :math:`\eta \ge 2/L_c`.

    Examples
    --------
    >>> round(gap_bound_last(50, eta=0.5, mu_t=1.0, L_t=1.0, Ls=0.0, Vs=0.0, Vn=1.0, r0=0.0,
    ...                      c=float("inf")), 6)
    0.743056
    """
    n = int(T)
    if n < 1 or n != T:
        raise CISInputError("T", T, "the last-iterate bound needs an integer T >= 1")
    eta_f = check_scalar(eta, "eta", positive=True)
    mu, lt = _curvature(mu_t, L_t)
    lc, vc = young_constants(c, L_t=lt, Ls=Ls, Vs=Vs, Vn=Vn)
    cc = float(c) if math.isfinite(float(c)) else 0.0
    D = eta_f * (2.0 - eta_f * lc)
    if not D > 0:
        return INF
    R = np.asarray(
        distance_bound(np.arange(n + 1), eta=eta_f, mu_t=mu, L_t=lt, Ls=Ls, Vs=Vs, Vn=Vn,
                       r0=r0, c=c),
        dtype=np.float64,
    )
    a = 0.5 * eta_f * (1.0 + eta_f * lt)
    kap = a * (1.0 + cc) * float(Ls) + 0.5 * eta_f * max(eta_f * lt - 1.0, 0.0) * lt
    k = np.arange(1, n + 1, dtype=np.float64)
    ki = k.astype(np.int64)
    X = kap * (R[n - ki] + k * eta_f**2 * vc) / D + k * a * vc
    w = X / (k * (k + 1))
    harm = np.cumsum(w) - w  # sum over k' < K
    first = (R[n - ki + 1] + k * eta_f**2 * vc) / (k * D)
    return float(np.min(first + harm))


@dataclass(frozen=True)
class _Young:
    """Theorem A's constants at one admissible c, for the sequences of Theorem C'."""

    vc: float
    D: float
    rho: float
    a: float
    kappa: float
    a_descent: float


def _young_family(
    eta: float, mu: float, lt: float, ls: float, vs: float, vn: float
) -> list[_Young]:
    out = []
    for c in c_candidates(eta, L_t=lt, Ls=ls, Vs=vs, Vn=vn, n=6):
        lc, vc = young_constants(c, L_t=lt, Ls=ls, Vs=vs, Vn=vn)
        cc = c if math.isfinite(c) else 0.0
        if not eta * lc <= 2.0:
            continue
        a = 0.5 * eta * (1.0 + eta * lt)
        a_descent = (
            1.0 - 2.0 * mu * eta * (1.0 - lt * eta / 2.0) + lt * eta**2 * (1.0 + cc) * 2.0 * ls
            if eta * lt <= 2.0
            else INF
        )
        out.append(
            _Young(
                vc=vc,
                D=eta * (2.0 - eta * lc),
                rho=min(max(1.0 - eta * mu * (2.0 - eta * lc), 0.0), 1.0),
                a=a,
                kappa=2.0 * a * (1.0 + cc) * ls + eta * max(eta * lt - 1.0, 0.0) * lt,
                a_descent=a_descent,
            )
        )
    return out


def _harmonic(t: int, eta: float, e: FloatArray, r: FloatArray, fam: list[_Young]) -> float:
    """Theorem C's windows at round t, fed with the earlier bounds e, r (C')."""
    k = np.arange(1, t + 1, dtype=np.float64)
    ki = np.arange(1, t + 1)
    rev = np.cumsum(e[t - 1 :: -1][:t])  # rev[k-1] = sum_{s=t-k}^{t-1} e_s
    vc = np.array([p.vc for p in fam])[:, None]
    D = np.array([p.D for p in fam])[:, None]
    X = np.array([p.kappa for p in fam])[:, None] * rev[None, :] + (
        np.array([p.a for p in fam])[:, None] * vc
    ) * k[None, :]
    w = X / (k * (k + 1))[None, :]
    harm = np.cumsum(w, axis=1) - w
    S1 = (r[t - ki + 1][None, :] + k[None, :] * eta**2 * vc) / (k[None, :] * D)
    S2 = r[t - ki][None, :] / (2.0 * eta * k[None, :]) + X / k[None, :]
    return float(np.nanmin(np.minimum(S1, S2) + harm))


# long: one induction over t with four ingredients; each is a line or two, kept together so
# the order of the minimum (distance first, then function values) reads as in the proof
def combined_sequences(
    T: int,
    *,
    eta: float,
    mu_t: float,
    L_t: float,
    Ls: float,
    Vs: float,
    Vn: float,
    r0: float,
    e0: float,
    quadratic: bool = False,
    harmonic_at: ArrayLike | None = None,
) -> SequenceBound:
    r"""Theorem C': :math:`\hat r_t \ge \mathbb E\|w_t - w^*\|^2` and
    :math:`\hat e_t \ge \mathbb EF_{\tilde\lambda}(w_t) - F_{\tilde\lambda}^*` for
    :math:`t = 0..T`.

    At every :math:`t` the minimum over the admissible :math:`c` of: Theorem A's one-step
    recursion from :math:`\hat r_{t-1}`; :math:`L_t\hat r_t/2`; the descent step
    :math:`a_B\hat e_{t-1} + L_t\eta^2V_c/2`,
    :math:`a_B = 1 - 2\mu_t\eta(1 - L_t\eta/2) + 2L_t\eta^2(1 + c)L_s` (:math:`\eta L_t \le 2`);
    Theorem C's windows fed with :math:`\hat e, \hat r` (evaluated at ``harmonic_at``, default
    48 log-spaced rounds and :math:`T`); and, if ``quadratic``, Theorem Q. Each ingredient is
    a valid bound given valid bounds at earlier rounds, so the minimum is valid (induction).
    ``certified``: Theorem A's step condition or Theorem Q's certificate holds.

    Examples
    --------
    >>> b = combined_sequences(3, eta=0.5, mu_t=1.0, L_t=1.0, Ls=0.0, Vs=0.0, Vn=1.0,
    ...                        r0=0.0, e0=0.0, quadratic=True)
    >>> [round(float(x), 6) for x in b.e], b.certified
    ([0.0, 0.125, 0.15625, 0.164062], True)
    """
    eta_f = check_scalar(eta, "eta", positive=True)
    mu, lt = _curvature(mu_t, L_t)
    ls, vs, vn = _noise_constants(Ls, Vs, Vn)
    r0_f = check_scalar(r0, "r0", nonneg=True)
    e0_f = check_scalar(e0, "e0", nonneg=True)
    n = int(T)
    if n < 0 or n != T:
        raise CISInputError("T", T, "must be an integer >= 0")
    if harmonic_at is None:
        marks = set(np.unique(np.rint(np.geomspace(1, max(n, 1), 48)).astype(int)).tolist())
        marks.add(n)
    else:
        marks = {int(x) for x in np.asarray(harmonic_at).ravel()}
    r = np.full(n + 1, INF)
    e = np.full(n + 1, INF)
    r[0], e[0] = r0_f, e0_f
    fam = _young_family(eta_f, mu, lt, ls, vs, vn)
    cert = bool(fam) and (eta_f * (lt + ls) < 2.0 or (vs == 0 and eta_f * (lt + ls) <= 2.0))
    quad = None
    if quadratic and eta_f * lt < 2.0:
        quad = quadratic_ingredients(n, eta=eta_f, mu_t=mu, L_t=lt, Ls=ls, Vs=vs, Vn=vn)
        cert = cert or quad[4]
        qrho = max(abs(1 - eta_f * mu), abs(1 - eta_f * lt))
        rr = qrho ** (2 * np.arange(n + 1, dtype=np.float64))
        trans = np.minimum(rr * e0_f, 0.5 * quad[3] * r0_f)
    vc_a = np.array([p.vc for p in fam])
    rho_a = np.array([p.rho for p in fam])
    ad_a = np.array([p.a_descent for p in fam])
    fin = np.isfinite(ad_a)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, n + 1):
            br = float(np.min(rho_a * r[t - 1] + eta_f**2 * vc_a)) if fam else INF
            if quad is not None:
                fixed, dfix, gains, phi, _ = quad
                prev = e[t - 1 :: -1][:t]
                conv_e = float(np.dot(phi[:t], prev))
                conv_r = float(np.dot(rr[:t], prev))
                br = min(br, float(np.min(rr[t] * r0_f + dfix[:, t] + 2.0 * gains * conv_r)))
            r[t] = br
            be = 0.5 * lt * br
            if quad is not None:
                be = min(be, float(np.min(trans[t] + fixed[:, t] + gains * conv_e)))
            if fin.any():
                be = min(be, float(np.min(ad_a[fin] * e[t - 1] + 0.5 * lt * eta_f**2 * vc_a[fin])))
            if fam and t in marks:
                be = min(be, _harmonic(t, eta_f, e, r, fam))
            e[t] = be if not math.isnan(be) else INF
    return SequenceBound(e, r, cert)
