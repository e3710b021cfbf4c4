r"""Theorem B of ``docs/theory.md`` (Section 4.13): mean-square contraction with
:math:`\tau \ge 1` local steps, without a gradient bound along the trajectory (checked by
``proofs_check.theorem_b``).

Round step :math:`\alpha = \tau\eta` (server step 1). Assumptions: those of Theorem A
(:mod:`cistheory.bounds.theorem_a`), :math:`\eta\max_{i,k}L_{i,k} \le 2`, and local noise that is
a martingale-difference sequence with :math:`\mathbb E[\|\xi^{(s)}_{i,k}\|^2 \mid \text{past}]
\le s^2_{i,k}`. With the drift factor :math:`S_\tau = \frac1\tau\sum_{s<\tau}s^2`, the
heterogeneity at the optimum :math:`z_{i,k} = \|\nabla f_{i,k}(w^*)\|^2` and, for
:math:`\theta > 0`,

.. math::
    \kappa_{i,k} = L_{i,k} + \alpha(1 + 1/\theta)(1 + \beta_{i,k}/q_{i,k})L_{i,k}^2,\qquad
    B = 1 - \alpha(1 + \theta)L_c - 4\eta^2S_\tau\max_{i,k}\kappa_{i,k}L_{i,k},

if :math:`B > 0` then :math:`\mathbb E\|w_t - w^*\|^2 \le \rho^tr_0 + E_\tau\sum_{j<t}\rho^j`
with :math:`\rho = 1 - \alpha\mu_tB` and

.. math::
    E_\tau = \alpha^2(1 + \theta)\Big((1 + 1/c)V_s + \frac{V_n}{\tau}\Big)
    + \alpha\eta^2\Big(4S_\tau\sum_{i,k}\beta_{i,k}\kappa_{i,k}z_{i,k}
    + (\tau - 1)\sum_{i,k}\beta_{i,k}\kappa_{i,k}s^2_{i,k}\Big).

The last bracket is the drift term; for :math:`\tau = 1` it vanishes (take :math:`\theta \to 0`).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import FloatArray, as_float_array, check_scalar
from ..errors import CISInputError
from ._checks import as_result, check_q_beta
from .theorem_a import _curvature, _geometric, _rounds, young_constants

__all__ = ["local_distance_bound", "local_drift_factor"]

INF = math.inf


def local_drift_factor(tau: int) -> float:
    r"""The drift factor :math:`S_\tau = \frac1\tau\sum_{s=0}^{\tau-1}s^2 = (\tau-1)(2\tau-1)/6`
    of Theorem B (the same factor as Lemma 2').

    Examples
    --------
    >>> local_drift_factor(1), local_drift_factor(4)
    (0.0, 3.5)
    """
    if isinstance(tau, bool) or not float(tau).is_integer() or int(tau) < 1:
        raise CISInputError("tau", tau, "the number of local steps must be an integer >= 1")
    n = int(tau)
    return (n - 1) * (2 * n - 1) / 6.0


def _pair_array(x: ArrayLike, field: str, shape: tuple[int, ...]) -> FloatArray:
    arr = as_float_array(x, field, nonneg=True, axes=("node", "exit"))
    if arr.shape != shape:
        raise CISInputError(field, arr.tolist(), f"expected shape {shape} (as q)")
    return arr


# long: one statement with its input checks; the formula itself is the last 15 lines
def local_distance_bound(
    t: ArrayLike,
    *,
    tau: int,
    eta: float,
    mu_t: float,
    L_t: float,
    Ls: float,
    Vs: float,
    q: ArrayLike,
    beta: ArrayLike,
    L_pair: ArrayLike,
    noise_var: ArrayLike,
    grad2_opt: ArrayLike,
    r0: float,
    c: float,
    theta: float,
) -> float | FloatArray:
    r"""Theorem B: :math:`\mathbb E\|w_t - w^*\|^2` after :math:`t` rounds of :math:`\tau`
    local steps of size :math:`\eta` (module docstring; ``docs/theory.md`` Section 4.13).

    Parameters
    ----------
    t : int or array of int
        Rounds (>= 0).
    tau : int
        Local steps per round.
    eta : float
        Local step; the round step is :math:`\alpha = \tau\eta`.
    mu_t, L_t, Ls, Vs : float
        As in :func:`cistheory.bounds.distance_bound`.
    q, beta : array (N, K)
        Participation and pair weights.
    L_pair : array (N, K)
        Smoothness :math:`L_{i,k}` of the convex :math:`f_{i,k}`.
    noise_var : array (N, K)
        :math:`s^2_{i,k}` (per local step); :math:`V_n = \sum\beta^2s^2/q` is computed here.
    grad2_opt : array (N, K)
        :math:`z_{i,k} = \|\nabla f_{i,k}(w^*)\|^2`.
    r0 : float
        :math:`\|w_0 - w^*\|^2`.
    c : float
        Young's parameter of Theorem A (0 when :math:`V_s = 0`, inf when :math:`L_s = 0`).
    theta : float
        Young's parameter of the drift split (> 0; ignored for :math:`\tau = 1`).

    Returns
    -------
    float or ndarray
        ``inf`` where :math:`B \le 0` or :math:`\eta\max L_{i,k} > 2`.

    Examples
    --------
    >>> one = [[1.0]]
    >>> local_distance_bound([0, 1], tau=2, eta=0.1, mu_t=1.0, L_t=1.0, Ls=0.0, Vs=0.0, q=one,
    ...     beta=one, L_pair=one, noise_var=[[0.0]], grad2_opt=[[0.0]], r0=1.0,
    ...     c=float("inf"), theta=1.0).tolist()
    [1.0, 0.8872]
    """
    ta = _rounds(t)
    s_tau = local_drift_factor(tau)
    n_tau = int(tau)
    eta_f = check_scalar(eta, "eta", positive=True)
    mu, lt = _curvature(mu_t, L_t)
    qa, ba = check_q_beta(q, beta)
    lp = _pair_array(L_pair, "L_pair", qa.shape)
    s2 = _pair_array(noise_var, "noise_var", qa.shape)
    z = _pair_array(grad2_opt, "grad2_opt", qa.shape)
    r0_f = check_scalar(r0, "r0", nonneg=True)
    th = check_scalar(theta, "theta", positive=True) if n_tau > 1 else 0.0
    lc, vs_c = young_constants(c, L_t=lt, Ls=Ls, Vs=Vs, Vn=0.0)  # V_c without the noise
    pos = qa > 0
    safe = np.where(pos, qa, 1.0)
    alpha = n_tau * eta_f
    if eta_f * float(np.where(pos, lp, 0.0).max(initial=0.0)) > 2.0:
        return as_result(np.full(ta.shape, INF))
    if n_tau == 1:
        kappa = np.where(pos, lp, 0.0)
    else:
        omega = 1.0 + np.where(pos, ba / safe, 0.0)
        kappa = np.where(pos, lp + alpha * (1.0 + 1.0 / th) * omega * lp**2, 0.0)
    kl_max = float((kappa * lp).max(initial=0.0))
    big_b = 1.0 - alpha * (1.0 + th) * lc - 4.0 * eta_f**2 * s_tau * kl_max
    if not big_b > 0:
        return as_result(np.full(ta.shape, INF))
    vn_tau = float(np.where(pos, ba**2 * s2 / safe, 0.0).sum()) / n_tau
    drift = 4.0 * s_tau * float((ba * kappa * z).sum()) + (n_tau - 1) * float(
        (ba * kappa * s2).sum()
    )
    e_tau = alpha**2 * (1.0 + th) * (vs_c + vn_tau) + alpha * eta_f**2 * drift
    one_minus = alpha * mu * big_b
    powt, geo = _geometric(1.0 - one_minus, one_minus, ta)
    return as_result(powt * r0_f + e_tau * geo)
