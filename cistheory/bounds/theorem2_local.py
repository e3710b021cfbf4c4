r"""Optimisation error of CIS training with :math:`\tau \ge 1` local SGD steps (Theorem 2').

One round: every node picks exit :math:`k` with probability :math:`q_{i,k}` (independently),
runs :math:`\tau` local SGD steps of size :math:`\eta_t` on :math:`f_{i,k}` from :math:`w_t`,
and the server applies :math:`w_{t+1} = w_t + \sum_{\text{picked}} (\beta_{i,k}/q_{i,k})
\Delta_{i,k}` (server step 1). Writing :math:`\alpha_t = \tau \eta_t` for the round step,
``docs/theory.md`` (Lemma 2' and Theorem 2') proves

.. math::
    D_{t+1} \le (1 - \alpha_t \mu_t / 2) D_t + \alpha_t^2 C(\alpha_t), \qquad
    C(\alpha) = \frac{L_t V_\tau}{2} + \frac{3 S_\tau}{4 \tau^2} L^2 G^2 \alpha,

with :math:`D_t = \mathbb E F_{\tilde\lambda}(w_t) - F_{\tilde\lambda}^*` and
:math:`S_\tau = \frac1\tau \sum_{s=0}^{\tau-1} s^2 = (\tau-1)(2\tau-1)/6`.
The analysis follows the drift argument of Li, Huang, Yang, Wang and Zhang (ICLR 2020,
"On the convergence of FedAvg on non-IID data", Lemma 3) and the function-value recursion
of Bottou, Curtis and Nocedal (SIAM Review 2018, Theorems 4.6 and 4.7), with the sampling
variance of Lemma 2 in place of FedAvg's.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._arrays import FloatArray, as_float_array, check_scalar
from ..errors import CISInputError
from ._checks import STEP_ULPS, check_q_beta, per_pair

__all__ = ["drift_factor", "local_sgd_bound", "local_variance_bound"]


def drift_factor(tau: int) -> float:
    r"""Mean squared drift factor :math:`S_\tau = \frac1\tau\sum_{s=0}^{\tau-1} s^2`.

    .. math:: S_\tau = \frac{(\tau - 1)(2\tau - 1)}{6}

    Examples
    --------
    >>> drift_factor(1), drift_factor(3)
    (0.0, 1.6666666666666667)
    """
    tau_i = _check_tau(tau)
    return (tau_i - 1) * (2 * tau_i - 1) / 6.0


def _check_tau(tau: int) -> int:
    if isinstance(tau, bool) or not float(tau).is_integer() or int(tau) < 1:
        raise CISInputError("tau", tau, "the number of local steps must be an integer >= 1")
    return int(tau)


def local_variance_bound(
    q: ArrayLike,
    beta: ArrayLike,
    sigma2: ArrayLike,
    G2: ArrayLike,
    *,
    tau: int,
    eta: float,
    L: float,
) -> float:
    r"""Variance bound :math:`V_\tau` of the round pseudo-gradient (Lemma 2').

    The round pseudo-gradient is :math:`\hat g_t = -(w_{t+1} - w_t)/(\tau\eta)`. If every
    pair satisfies :math:`\mathbb E\|\nabla f_{i,k}\|^2 \le G_{i,k}^2` and
    :math:`\mathbb E\|\xi\|^2 \le \sigma_{i,k}^2` at every local iterate, and :math:`f_{i,k}`
    is :math:`L`-smooth, then :math:`\mathbb E\,\mathrm{Var}(\hat g_t \mid w_t) \le V_\tau` with

    .. math::
        V_\tau = \sum_{i \text{ sampled}} \sum_k \frac{\beta_{i,k}^2}{q_{i,k}}
        (\sigma_{i,k}^2 + G_{i,k}^2)
        + \sum_{i \text{ fixed at } k} \beta_{i,k}^2
        \Big(\frac{\sigma_{i,k}}{\sqrt\tau} + L\eta\sqrt{S_\tau}
        \sqrt{\sigma_{i,k}^2 + G_{i,k}^2}\Big)^2 .

    A node is *fixed* when one entry of its row of ``q`` equals 1. For :math:`\tau = 1` this
    is Lemma 2's :math:`V(\tilde\lambda, q)`.

    Parameters
    ----------
    q, beta : array (N, K)
        Participation probabilities and objective pair weights.
    sigma2, G2 : array (K,) or (N, K)
        Noise variance and squared gradient-norm bounds.
    tau : int
        Local steps per round.
    eta : float
        The largest local step used (> 0).
    L : float
        Smoothness constant of every :math:`f_{i,k}` (> 0).

    Examples
    --------
    >>> q = np.array([[0.0, 1.0], [0.5, 0.5]])
    >>> b = np.array([[0.0, 0.5], [0.5, 0.0]])
    >>> round(local_variance_bound(q, b, [1.0, 1.0], [0.0, 0.0], tau=1, eta=0.1, L=1.0), 6)
    0.75
    """
    tau_i = _check_tau(tau)
    eta_f = check_scalar(eta, "eta", positive=True)
    L_f = check_scalar(L, "L", positive=True)
    qa, ba = check_q_beta(q, beta)  # entries in [0, 1], rows summing to at most 1
    s2 = per_pair(sigma2, "sigma2", qa.shape)
    g2 = per_pair(G2, "G2", qa.shape)
    # the same test as Participation.fixed and variance_bound: an entry equal to 1
    fixed = np.asarray(np.isclose(qa, 1.0, rtol=0, atol=1e-15).any(axis=1), dtype=bool)
    pos = qa > 0
    safe_q = np.where(pos, qa, 1.0)
    sampled_terms = np.where(pos, ba**2 * (s2 + g2) / safe_q, 0.0)
    fixed_terms = ba**2 * (
        np.sqrt(s2 / tau_i) + L_f * eta_f * np.sqrt(drift_factor(tau_i)) * np.sqrt(s2 + g2)
    ) ** 2
    total = np.where(fixed[:, None], fixed_terms, sampled_terms)
    return float(total.sum())


def local_sgd_bound(
    t: ArrayLike,
    *,
    tau: int,
    L_t: float,
    mu_t: float,
    V: float,
    gap0: float,
    G: float,
    L: float,
    eta: float | None = None,
    b: float | None = None,
    gamma: float | None = None,
) -> float | NDArray[np.float64]:
    r"""Theorem 2': expected optimisation error after ``t`` rounds of :math:`\tau` local steps.

    Fixed local step :math:`\eta` (round step :math:`\alpha = \tau\eta \le 1/(4L_t)`):

    .. math::
        D_t \le D^\star + (1 - \alpha\mu_t/2)^t (D_0 - D^\star), \qquad
        D^\star = \frac{2\alpha\, C(\alpha)}{\mu_t}.

    Diminishing local steps :math:`\eta_t = b/(\gamma + t)` with :math:`\tau b/\gamma \le
    1/(4L_t)` and :math:`\tau b\mu_t > 2`:

    .. math::
        D_t \le \frac{\nu}{\gamma + t}, \qquad
        \nu = \max\Big\{\frac{(\tau b)^2 C(\tau b/\gamma)}{\tau b\mu_t/2 - 1},
        \ \gamma D_0\Big\},

    where :math:`C(\alpha) = L_t V/2 + \frac{3 S_\tau}{4\tau^2} L^2 G^2 \alpha`,
    :math:`S_\tau` from :func:`drift_factor`, ``t`` counts rounds from :math:`w_0`.

    Parameters
    ----------
    t : int or array of int
        Rounds completed (>= 0).
    tau : int
        Local steps per round.
    L_t, mu_t : float
        Smoothness and strong-convexity (PL) constants of :math:`F_{\tilde\lambda}`.
    V : float
        :math:`V_\tau` of :func:`local_variance_bound` at the largest local step.
    gap0 : float
        :math:`D_0 = F_{\tilde\lambda}(w_0) - F_{\tilde\lambda}^*`.
    G : float
        Bound with :math:`\sum_{i,k}\beta_{i,k}\,\mathbb E\|g_{i,k}\|^2 \le G^2` at every local
        iterate (stochastic gradients, noise included); the largest
        :math:`\sqrt{\sigma_{i,k}^2 + G_{i,k}^2}` suffices.
    L : float
        Smoothness of every :math:`f_{i,k}`.
    eta : float, optional
        Fixed local step. Give either ``eta`` or both ``b`` and ``gamma``.
    b, gamma : float, optional
        Diminishing local steps :math:`\eta_t = b/(\gamma + t)`.

    Returns
    -------
    float or ndarray
        The bound at each ``t`` (a float for scalar ``t``).

    Examples
    --------
    >>> round(local_sgd_bound(0, tau=2, L_t=1.0, mu_t=0.5, V=1.0, gap0=3.0, G=1.0, L=1.0,
    ...                       eta=0.1), 6)
    3.0
    """
    tau_i = _check_tau(tau)
    L_tf = check_scalar(L_t, "L_t", positive=True)
    mu = check_scalar(mu_t, "mu_t", positive=True)
    if mu > L_tf * (1.0 + STEP_ULPS):
        raise CISInputError("mu_t", mu, f"must be <= L_t = {L_tf!r}")
    V_f = check_scalar(V, "V", nonneg=True)
    D0 = check_scalar(gap0, "gap0", nonneg=True)
    G_f = check_scalar(G, "G", nonneg=True)
    L_f = check_scalar(L, "L", positive=True)
    ta = np.asarray(t)
    t_arr: FloatArray = as_float_array(t, "t", nonneg=True)
    if not np.all(np.equal(np.mod(t_arr, 1.0), 0.0)):
        raise CISInputError("t", ta.tolist(), "round counts must be integers")
    c3 = 3.0 * drift_factor(tau_i) / (4.0 * tau_i**2) * L_f**2 * G_f**2
    if eta is not None:
        if b is not None or gamma is not None:
            raise CISInputError("eta", eta, "give either eta or (b, gamma), not both")
        eta_f = check_scalar(eta, "eta", positive=True)
        alpha = tau_i * eta_f
        # a step computed as 1/(4 L_t tau) may give alpha L_t = 1/4 + 1 ulp: rounding of the
        # user's division, accepted as in Theorem 2 (STEP_ULPS), not a clip
        if alpha * L_tf > 0.25 * (1.0 + STEP_ULPS):
            raise CISInputError(
                "eta", eta_f, f"needs tau * eta <= 1/(4 L_t) = {0.25 / L_tf / tau_i!r} per step"
            )
        C = L_tf * V_f / 2.0 + c3 * alpha
        d_star = 2.0 * alpha * C / mu
        # convex combination of D_0 and D* (no cancellation when D* >> D_0)
        r_t = (1.0 - alpha * mu / 2.0) ** t_arr
        out = r_t * D0 + (1.0 - r_t) * d_star
    else:
        if b is None or gamma is None:
            raise CISInputError("b", b, "give either eta or both b and gamma")
        b_f = check_scalar(b, "b", positive=True)
        g_f = check_scalar(gamma, "gamma", positive=True)
        alpha0 = tau_i * b_f / g_f
        if alpha0 * L_tf > 0.25 * (1.0 + STEP_ULPS):
            raise CISInputError(
                "b", b_f, f"needs tau * b / gamma <= 1/(4 L_t) (tau b/gamma = {alpha0!r})"
            )
        if tau_i * b_f * mu <= 2.0:
            raise CISInputError("b", b_f, f"needs tau * b > 2 / mu_t = {2.0 / mu!r}")
        C = L_tf * V_f / 2.0 + c3 * alpha0
        nu = max((tau_i * b_f) ** 2 * C / (tau_i * b_f * mu / 2.0 - 1.0), g_f * D0)
        out = nu / (g_f + t_arr)
    if out.ndim == 0:
        return float(out)
    return np.asarray(out, dtype=np.float64)
