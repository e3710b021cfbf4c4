r"""The formulas of the training-weight rules (``docs/theory.md``, Section 6).

Every rule returns weights on the simplex over the :math:`K` exits (shallowest first). The
registry that maps a rule's name to its formula and to what it needs is
:mod:`cistheory.rules.registry`; this module holds the formulas alone (numpy only).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import FloatArray, as_float_array, exit_axes, first_bad
from ..errors import CISInputError
from ..system.participation import Participation

__all__ = [
    "REFERENCE_HORIZON",
    "balanced_adj",
    "equal",
    "flops_proportional",
    "inverse_variance",
    "normalise",
    "serving_rate",
    "variance_coefficients",
]


def normalise(x: ArrayLike, field: str = "weights") -> FloatArray:
    """Scale a non-negative vector with positive sum onto the simplex."""
    a = as_float_array(x, field, ndim=1, nonneg=True, axes=("exit",))
    s = float(a.sum())
    if not s > 0:
        raise CISInputError(field, a.tolist(), "weights must have a positive sum")
    return a / s


def serving_rate(lam: ArrayLike) -> FloatArray:
    r"""Serving Rate rule: :math:`\tilde\lambda = \lambda` (no bias, :math:`\chi^2 = 0`).

    Examples
    --------
    >>> serving_rate([0.8, 0.15, 0.05]).tolist()
    [0.8, 0.15, 0.05]
    """
    return normalise(lam, "lambda")


def equal(n_exits: int) -> FloatArray:
    r"""Equal rule: :math:`\tilde\lambda_k = 1/K`.

    Examples
    --------
    >>> equal(4).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    if int(n_exits) < 1:
        raise CISInputError("n_exits", n_exits, "must be >= 1")
    return np.full(int(n_exits), 1.0 / int(n_exits))


REFERENCE_HORIZON = 100
"""The reference's schedule horizon: its 100 rounds, over which ``tau_t = 0.01 (t + 1)``."""


def flops_proportional(
    relative_flops: ArrayLike, round_t: int | None = None, horizon: int = REFERENCE_HORIZON
) -> FloatArray:
    r"""FLOPs-proportional rule of shallow-deep networks, with its round schedule.

    .. math::
        \tilde\lambda_k \propto \min(\tau_t, r_k), \qquad \tau_t = \frac{t + 1}{H},
        \quad t = 0, \dots, H - 1,

    where :math:`r_k \in (0, 1]` is exit :math:`k`'s FLOPs over the full model's and
    :math:`H` the schedule's horizon, the rounds of the run. The reference's
    :math:`\tau_t = 0.01(t+1)` is the case :math:`H = 100`, its number of rounds: the
    threshold rises from :math:`1/H` to 1 over the run, so early rounds weight all exits
    equally and by the last round (:math:`t = H - 1`, the default) every exit :math:`k`
    has weight :math:`\propto r_k`. Exit :math:`k` keeps :math:`r_k` from round
    :math:`\lceil H r_k \rceil - 1` on.

    Parameters
    ----------
    relative_flops : array_like, shape (K,)
        :math:`r_k`, in :math:`(0, 1]`.
    round_t : int, optional
        The round :math:`t`, in :math:`0..H-1`; default :math:`H - 1`, the final weights.
    horizon : int
        :math:`H \ge 1` (default 100, the reference's).

    Examples
    --------
    >>> flops_proportional([0.25, 0.5, 1.0]).round(4).tolist()
    [0.1429, 0.2857, 0.5714]
    >>> flops_proportional([0.25, 0.5, 1.0], round_t=4, horizon=20).tolist()   # tau = 0.25
    [0.3333333333333333, 0.3333333333333333, 0.3333333333333333]
    """
    r = as_float_array(relative_flops, "exit_flops", ndim=1, positive=True, axes=("exit",))
    first_bad("exit_flops", r, r > 1, "relative FLOPs lie in (0, 1] (full model = 1)",
              axes=("exit",))
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise CISInputError("horizon", horizon, "must be an integer >= 1 (rounds of the run)")
    h = int(horizon)
    t = h - 1 if round_t is None else round_t
    if isinstance(t, bool) or not isinstance(t, int | np.integer) or not 0 <= t < h:
        raise CISInputError("round", round_t, f"must be an integer in 0..{h - 1} (horizon {h})")
    tau = (int(t) + 1) / h
    return normalise(np.minimum(tau, r))


def variance_coefficients(
    part: Participation, sigma: ArrayLike, grad_bound: ArrayLike | None = None
) -> FloatArray:
    r"""Coefficients :math:`v_k` of :math:`V(\tilde\lambda, q) = \sum_k v_k \tilde\lambda_k^2`.

    From Lemma 2's convex bound (``docs/theory.md``, Lemma 2)

    .. math::
        v_k = \sum_{i \in E_k} \left(\frac{m_i}{M_k}\right)^2
              \frac{\sigma_{i,k}^2 + [i\ \text{sampled}]\, G_{i,k}^2}{q_{i,k}},

    where a node is *sampled* unless its configuration fixes one exit with probability 1.
    With every node fixed at its deepest exit and equal data within a tier,
    :math:`v_k = \sigma_k^2 / n_k`.

    Parameters
    ----------
    part : Participation
    sigma : array, shape (K,) or (N, K)
        Gradient-noise standard deviations per exit or per node-exit pair (> 0 where used).
    grad_bound : array, shape (K,) or (N, K), optional
        Gradient-norm bounds :math:`G`; zero when omitted.
    """
    n, k = part.q.shape
    sig = as_float_array(sigma, "sigma", positive=True, axes=exit_axes(sigma))
    if sig.shape not in {(k,), (n, k)}:
        raise CISInputError(
            "sigma", sig.tolist(), f"expected {k} values (one per exit) or ({n}, {k})"
        )
    sig2 = np.broadcast_to(sig**2, (n, k))
    if grad_bound is None:
        g2 = np.zeros((n, k))
    else:
        g = as_float_array(grad_bound, "G", nonneg=True, axes=exit_axes(grad_bound))
        if g.shape not in {(k,), (n, k)}:
            raise CISInputError("G", g.tolist(), f"expected {k} values or ({n}, {k})")
        g2 = np.broadcast_to(g**2, (n, k))
    sampled = ~part.fixed
    frac = part.data_fraction()
    pos = part.q > 0
    term = np.where(pos, frac**2 * (sig2 + sampled[:, None] * g2) / np.where(pos, part.q, 1.0), 0.0)
    return np.asarray(term.sum(axis=0), dtype=np.float64)


def inverse_variance(v: ArrayLike) -> FloatArray:
    r"""Optimisation-error minimising rule: :math:`\tilde\lambda_k \propto 1 / v_k`.

    Minimises :math:`V = \sum_k v_k \tilde\lambda_k^2` on the simplex (the :math:`A \to 0`
    limit of the design problem). Exits with :math:`v_k = 0` are not allowed.

    Examples
    --------
    >>> inverse_variance([1.0, 1.0, 2.0]).tolist()
    [0.4, 0.4, 0.2]
    """
    va = as_float_array(v, "v", ndim=1, axes=("exit",))
    first_bad("v", va, va <= 0, "must be > 0: an exit no node trains has no variance to weigh",
              axes=("exit",))
    return normalise(1.0 / va)


def balanced_adj(lam: ArrayLike, v: ArrayLike) -> FloatArray:
    r"""Balanced Adj rule: mean of the normalised Serving Rate and inverse-variance weights.

    .. math::
        \tilde\lambda = \tfrac12\left(\frac{\lambda}{\sum_k \lambda_k}
                        + \frac{1/v}{\sum_k 1/v_k}\right)

    Examples
    --------
    >>> balanced_adj([0.5, 0.5], [1.0, 3.0]).tolist()
    [0.625, 0.375]
    """
    lam_n = serving_rate(lam)
    inv = inverse_variance(v)
    if lam_n.size != inv.size:
        raise CISInputError("v", np.asarray(v).tolist(), f"expected {lam_n.size} values")
    return normalise(0.5 * (lam_n + inv))
