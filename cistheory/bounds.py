r"""Numeric error bounds of federated training in a CIS (``docs/theory.md``, Section 4).

Every function validates its inputs and raises :class:`~cistheory.errors.CISInputError`
naming the offending field (``mu <= 0``, ``L < mu``, a step above ``1/L``, weights off the
simplex, an exit that serves requests but has training weight zero, NaN, negative
variances, ...). It never returns NaN and never clips.

Notation: :math:`\lambda` serving shares, :math:`\tilde\lambda` (``lt``) training weights,
:math:`q_{i,k}` participation probabilities, :math:`\beta_{i,k} = \tilde\lambda_k m_i/M_k`.

======================================  ============================================
function                                statement in ``docs/theory.md``
======================================  ============================================
:func:`chi2`                            Theorem 1 (the divergence)
:func:`bias_bound`                      Theorem 1(a)
:func:`training_error_bound`            Theorem 1(b), 1(c)
:func:`variance_exact`                  Lemma 2 (exact variance)
:func:`variance_bound`                  Lemma 2 (convex bound)
:func:`sgd_fixed_step_bound`            Theorem 2 (fixed step)
:func:`sgd_diminishing_bound`           Theorem 2 (diminishing steps)
:func:`linear_rademacher`               Theorem 3 (linear predictors)
:func:`generalization_bound`            Theorem 3
:func:`full_bound`, :func:`cis_bound`   Corollary
======================================  ============================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import FloatArray, as_float_array, as_simplex, check_scalar
from .errors import CISInputError
from .participation import Participation, beta
from .system import CIS

__all__ = [
    "BoundTerms",
    "CISConstants",
    "bias_bound",
    "chi2",
    "cis_bound",
    "full_bound",
    "generalization_bound",
    "linear_rademacher",
    "sgd_diminishing_bound",
    "sgd_fixed_step_bound",
    "training_error_bound",
    "variance_bound",
    "variance_exact",
]

# A step ``eta`` computed as ``1/L`` may give ``eta * L = 1 + 2**-52``; products up to this
# many ulps above 1 count as ``eta <= 1/L`` (rounding of the user's division, not a clip).
# Likewise ``mu <= L`` is checked up to this relative rounding (mu = L on isotropic problems).
_STEP_ULPS = 4.0 * np.finfo(np.float64).eps


def _as_result(x: NDArray[np.float64]) -> float | FloatArray:
    """A 0-d array as a Python float, anything else as an array."""
    arr = np.asarray(x, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr


def _first_bad(field: str, arr: NDArray[np.float64], bad: ArrayLike, reason: str) -> None:
    """Raise for the first entry of ``arr`` (broadcast to ``bad``'s shape) where ``bad``."""
    mask = np.asarray(bad, dtype=bool)
    if mask.any():
        shape = np.broadcast_shapes(np.shape(arr), mask.shape)
        full = np.broadcast_to(arr, shape)
        idx = tuple(int(i) for i in np.argwhere(np.broadcast_to(mask, shape))[0])
        name = field if np.ndim(arr) == 0 else field + "[" + ", ".join(map(str, idx)) + "]"
        raise CISInputError(name, float(full[idx]), reason)


def _check_weights(lam: ArrayLike, lt: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Validate serving shares and training weights: both on the simplex, supp(lam) in supp(lt)."""
    lam_a = as_simplex(lam, "lam")
    lt_a = as_simplex(lt, "lt")
    if lam_a.shape != lt_a.shape:
        raise CISInputError(
            "lt", lt_a.tolist(), f"expected {lam_a.size} weights (one per exit of lam)"
        )
    bad = (lam_a > 0) & (lt_a == 0)
    if bad.any():
        k = int(np.argmax(bad))
        raise CISInputError(
            f"lt[{k}]",
            0.0,
            f"exit {k + 1} serves requests (lam = {lam_a[k]!r}) but has training weight 0",
        )
    return lam_a, lt_a


def _check_smooth_convex(L: float, mu: float, *, mu_name: str = "mu", L_name: str = "L") -> None:
    if not mu > 0:
        raise CISInputError(mu_name, mu, "strong convexity must be > 0")
    # mu = L happens (isotropic problems); computed constants may then differ by rounding.
    if mu > L * (1.0 + _STEP_ULPS):
        raise CISInputError(L_name, L, f"smoothness must be >= {mu_name} = {mu!r}")


def chi2(lam: ArrayLike, lt: ArrayLike) -> float:
    r"""Chi-squared divergence of the serving shares from the training weights.

    .. math::
        \chi^2(\lambda \,\|\, \tilde\lambda)
        = \sum_{k : \tilde\lambda_k > 0} \frac{(\lambda_k - \tilde\lambda_k)^2}{\tilde\lambda_k}
        = \sum_{k : \tilde\lambda_k > 0} \frac{\lambda_k^2}{\tilde\lambda_k} - 1

    The divergence of Theorem 1 (``docs/theory.md``); it requires
    :math:`\operatorname{supp}\lambda \subseteq \operatorname{supp}\tilde\lambda`.

    Parameters
    ----------
    lam : array_like, shape (K,)
        Serving shares :math:`\lambda` (on the simplex).
    lt : array_like, shape (K,)
        Training weights :math:`\tilde\lambda` (on the simplex).

    Returns
    -------
    float

    Raises
    ------
    CISInputError
        Weights off the simplex, of different lengths, or an exit with
        :math:`\lambda_k > 0 = \tilde\lambda_k`.

    Examples
    --------
    >>> round(chi2([0.5, 0.5], [0.25, 0.75]), 6)
    0.333333
    >>> chi2([0.8, 0.15, 0.05], [0.8, 0.15, 0.05])
    0.0
    """
    lam_a, lt_a = _check_weights(lam, lt)
    pos = lt_a > 0
    terms = np.where(pos, (lam_a - lt_a) ** 2 / np.where(pos, lt_a, 1.0), 0.0)
    return float(terms.sum())


def bias_bound(lam: ArrayLike, lt: ArrayLike, L: float, mu: float, Gamma: float) -> float:
    r"""Bias of training the wrong mixture: Theorem 1(a) of ``docs/theory.md``.

    Each :math:`F_k` is :math:`L`-smooth and bounded below, :math:`F_\lambda` is
    :math:`\mu`-strongly convex, :math:`w_{\tilde\lambda}^* = \arg\min F_{\tilde\lambda}` and
    :math:`\Gamma = F_{\tilde\lambda}(w_{\tilde\lambda}^*) - \sum_k \tilde\lambda_k \inf F_k`.
    Then

    .. math::
        F_\lambda(w_{\tilde\lambda}^*) - F_\lambda^*
        \le \frac{L}{\mu}\, \chi^2(\lambda \,\|\, \tilde\lambda)\, \Gamma ,

    zero when :math:`\tilde\lambda = \lambda`.

    Parameters
    ----------
    lam, lt : array_like, shape (K,)
        Serving shares and training weights (simplex, :math:`\lambda_k > 0 \Rightarrow
        \tilde\lambda_k > 0`).
    L : float
        Smoothness of every :math:`F_k` (:math:`\ge \mu`).
    mu : float
        Strong convexity of :math:`F_\lambda` (:math:`> 0`).
    Gamma : float
        :math:`\Gamma \ge 0`.

    Returns
    -------
    float

    Examples
    --------
    >>> bias_bound([0.5, 0.5], [0.25, 0.75], L=2.0, mu=1.0, Gamma=3.0)
    2.0
    """
    L_ = check_scalar(L, "L")
    mu_ = check_scalar(mu, "mu")
    _check_smooth_convex(L_, mu_)
    gam = check_scalar(Gamma, "Gamma", nonneg=True)
    return float(L_ / mu_ * chi2(lam, lt) * gam)


def training_error_bound(
    lam: ArrayLike,
    lt: ArrayLike,
    L: float,
    mu: float,
    mu_t: float,
    Gamma: float,
    e: float,
    *,
    split: bool = False,
) -> float:
    r"""Training error at any point: Theorem 1(b) (and 1(c) in expectation), ``docs/theory.md``.

    Under the assumptions of :func:`bias_bound`, with :math:`F_{\tilde\lambda}`
    :math:`\mu_t`-strongly convex and :math:`e = F_{\tilde\lambda}(w) - F_{\tilde\lambda}^*`,

    .. math::
        F_\lambda(w) - F_\lambda^*
        \le \frac{1}{2\mu}\left(\sqrt{2 L \chi^2 \Gamma} + L \sqrt{2 e/\mu_t}\right)^2
        \le \frac{2L}{\mu}\chi^2\Gamma + \frac{2L^2}{\mu\,\mu_t}\, e .

    ``split=False`` returns the first (tight) form, ``split=True`` the second. Theorem 1(c):
    both hold for :math:`\mathbb E[F_\lambda(w)] - F_\lambda^*` with :math:`e` replaced by
    :math:`\mathbb E[e]` (Jensen's inequality for the square root).

    Parameters
    ----------
    lam, lt : array_like, shape (K,)
    L, mu : float
        As in :func:`bias_bound`.
    mu_t : float
        Strong convexity of :math:`F_{\tilde\lambda}` (:math:`0 < \mu_t \le L`).
    Gamma : float
        :math:`\Gamma \ge 0`.
    e : float
        Optimisation error :math:`e \ge 0` (or its expectation).
    split : bool
        Return the split (looser, additive) form.

    Returns
    -------
    float

    Examples
    --------
    >>> training_error_bound([0.5, 0.5], [0.5, 0.5], L=2.0, mu=1.0, mu_t=1.0, Gamma=1.0, e=0.5)
    2.0
    >>> training_error_bound([0.5, 0.5], [0.25, 0.75], 2.0, 1.0, 1.0, 3.0, 0.5, split=True)
    8.0
    """
    L_ = check_scalar(L, "L")
    mu_ = check_scalar(mu, "mu")
    _check_smooth_convex(L_, mu_)
    mut = check_scalar(mu_t, "mu_t")
    _check_smooth_convex(L_, mut, mu_name="mu_t")
    gam = check_scalar(Gamma, "Gamma", nonneg=True)
    err = check_scalar(e, "e", nonneg=True)
    c2 = chi2(lam, lt)
    if split:
        return float(2.0 * L_ / mu_ * c2 * gam + 2.0 * L_**2 / (mu_ * mut) * err)
    root = np.sqrt(2.0 * L_ * c2 * gam) + L_ * np.sqrt(2.0 * err / mut)
    return float(root**2 / (2.0 * mu_))


def _check_q_beta(q: ArrayLike, beta_: ArrayLike) -> tuple[FloatArray, FloatArray]:
    qa = as_float_array(q, "q", nonneg=True)
    if qa.ndim != 2:
        raise CISInputError("q", qa.tolist(), f"expected an (N, K) array, got shape {qa.shape}")
    _first_bad("q", qa, qa > 1, "a probability must lie in [0, 1]")
    rows = qa.sum(axis=1)
    # Row sums of user-given decimals (e.g. 0.1 + 0.2 + 0.7) may exceed 1 by rounding.
    over = rows > 1.0 + 1e-12
    if over.any():
        i = int(np.argmax(over))
        raise CISInputError(f"q[{i}]", qa[i].tolist(), f"row sums to {rows[i]!r} > 1")
    ba = as_float_array(beta_, "beta", nonneg=True)
    if ba.shape != qa.shape:
        raise CISInputError("beta", ba.tolist(), f"expected shape {qa.shape} (as q)")
    _first_bad(
        "beta", ba, (ba > 0) & (qa == 0), "pair has positive weight but is never picked (q = 0)"
    )
    return qa, ba


def _per_pair(x: ArrayLike, field: str, shape: tuple[int, int]) -> FloatArray:
    arr = as_float_array(x, field, nonneg=True)
    if arr.shape not in {(shape[1],), shape}:
        raise CISInputError(
            field, arr.tolist(), f"expected {shape[1]} values (one per exit) or shape {shape}"
        )
    return np.broadcast_to(arr, shape).astype(np.float64)


def variance_exact(
    q: ArrayLike, beta: ArrayLike, grad: ArrayLike, noise_var: ArrayLike
) -> float:
    r"""Exact variance of the unbiased aggregate with one local step: Lemma 2, ``docs/theory.md``.

    Node :math:`i` picks exit :math:`k` with probability :math:`q_{i,k}` (independently of the
    other nodes) or idles, and sends a minibatch gradient :math:`g_{i,k}` with mean
    :math:`\nabla f_{i,k}` and variance :math:`s^2_{i,k} = \mathbb E\|g_{i,k} - \nabla
    f_{i,k}\|^2`. With :math:`g = \sum_{\text{picked}} (\beta_{i,k}/q_{i,k})\, g_{i,k}`,

    .. math::
        \mathbb E\|g - \nabla F_{\tilde\lambda}\|^2 = \sum_i \Big[ \sum_k
        \frac{\beta_{i,k}^2}{q_{i,k}} \big(\|\nabla f_{i,k}\|^2 + s^2_{i,k}\big)
        - \Big\|\sum_k \beta_{i,k} \nabla f_{i,k}\Big\|^2 \Big],

    the inner sums over pairs with :math:`q_{i,k} > 0`.

    Parameters
    ----------
    q : array_like, shape (N, K)
        Participation probabilities (rows sum to at most 1).
    beta : array_like, shape (N, K)
        Pair weights :math:`\beta_{i,k} \ge 0`, zero where :math:`q_{i,k} = 0`
        (see :func:`cistheory.beta`).
    grad : array_like, shape (N, K, d)
        True gradients :math:`\nabla f_{i,k}` at the current point.
    noise_var : array_like, shape (N, K)
        Minibatch variances :math:`s^2_{i,k} \ge 0`.

    Returns
    -------
    float

    Examples
    --------
    A node that trains exit 1 with probability 1/2 and weight 1, gradient 1, no noise:
    the aggregate is 2 or 0, variance 1.

    >>> variance_exact([[0.5]], [[1.0]], [[[1.0]]], [[0.0]])
    1.0
    """
    qa, ba = _check_q_beta(q, beta)
    ga = as_float_array(grad, "grad")
    if ga.ndim != 3 or ga.shape[:2] != qa.shape:
        raise CISInputError("grad", ga.shape, f"expected shape {qa.shape} + (d,)")
    s2 = as_float_array(noise_var, "noise_var", nonneg=True)
    if s2.shape != qa.shape:
        raise CISInputError("noise_var", s2.tolist(), f"expected shape {qa.shape} (as q)")
    pos = qa > 0
    sq = (ga**2).sum(axis=2)
    second = np.where(pos, ba**2 * (sq + s2) / np.where(pos, qa, 1.0), 0.0).sum(axis=1)
    mean = (ba[:, :, None] * ga).sum(axis=1)
    return float((second - (mean**2).sum(axis=1)).sum())


def variance_bound(q: ArrayLike, beta: ArrayLike, sigma2: ArrayLike, G2: ArrayLike) -> float:
    r"""Convex upper bound :math:`V(\tilde\lambda, q)` of the variance: Lemma 2, ``docs/theory.md``.

    Under :math:`\|\nabla f_{i,k}\| \le G_{i,k}` and :math:`s^2_{i,k} \le \sigma^2_{i,k}`,

    .. math::
        V = \sum_{(i,k):\, q_{i,k} > 0} \frac{\beta_{i,k}^2 \big(\sigma^2_{i,k}
            + [i \text{ sampled}]\, G^2_{i,k}\big)}{q_{i,k}}
        \ \ge\ \mathbb E\|g - \nabla F_{\tilde\lambda}\|^2 ,

    where node :math:`i` is *sampled* unless its row of :math:`q` has an entry equal to 1
    (its configuration fixes one exit); a fixed node's term is exactly
    :math:`\beta^2 s^2 \le \beta^2\sigma^2`. With every node fixed and
    :math:`s^2 = \sigma^2` the bound is an equality.

    Parameters
    ----------
    q, beta : array_like, shape (N, K)
        As in :func:`variance_exact`.
    sigma2 : array_like, shape (K,) or (N, K)
        Noise-variance bounds :math:`\sigma^2 \ge 0` (variances, not standard deviations).
    G2 : array_like, shape (K,) or (N, K)
        Squared gradient-norm bounds :math:`G^2 \ge 0`.

    Returns
    -------
    float

    Examples
    --------
    Two fixed nodes on exit 1 with equal data, :math:`\sigma^2 = 1`:
    :math:`V = 2 \cdot (1/2)^2 = 1/2`.

    >>> variance_bound([[1.0], [1.0]], [[0.5], [0.5]], [1.0], [4.0])
    0.5
    """
    qa, ba = _check_q_beta(q, beta)
    s2 = _per_pair(sigma2, "sigma2", qa.shape)
    g2 = _per_pair(G2, "G2", qa.shape)
    # Same test as Participation.fixed: an entry equal to 1 (up to 1e-15, the spacing at 1).
    fixed: NDArray[np.bool_] = np.asarray(np.isclose(qa, 1.0, rtol=0, atol=1e-15).any(axis=1))
    sampled = (~fixed).astype(np.float64)
    pos = qa > 0
    num = ba**2 * (s2 + sampled[:, None] * g2)
    return float(np.where(pos, num / np.where(pos, qa, 1.0), 0.0).sum())


def _check_sgd_common(
    t: ArrayLike, L_t: ArrayLike, mu_t: ArrayLike, V: ArrayLike, gap0: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    ta = as_float_array(t, "t", nonneg=True)
    _first_bad("t", ta, ta != np.floor(ta), "the number of updates must be an integer")
    lt_ = as_float_array(L_t, "L_t", positive=True)
    mt = as_float_array(mu_t, "mu_t", positive=True)
    va = as_float_array(V, "V", nonneg=True)
    g0 = as_float_array(gap0, "gap0", nonneg=True)
    try:
        lt_b, mt_b = np.broadcast_arrays(lt_, mt)
    except ValueError as exc:
        raise CISInputError("mu_t", mt.shape, f"does not broadcast with L_t ({exc})") from None
    _first_bad("L_t", lt_b, mt_b > lt_b * (1.0 + _STEP_ULPS), "smoothness must be >= mu_t")
    return ta, lt_, mt, va, g0


def _broadcast(**arrays: FloatArray) -> None:
    try:
        np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        shapes = {k: v.shape for k, v in arrays.items()}
        raise CISInputError("shapes", shapes, "arguments do not broadcast together") from None


def sgd_fixed_step_bound(
    t: ArrayLike, eta: ArrayLike, L_t: ArrayLike, mu_t: ArrayLike, V: ArrayLike, gap0: ArrayLike
) -> float | FloatArray:
    r"""Expected optimisation error of SGD with a fixed step: Theorem 2, ``docs/theory.md``.

    :math:`F_{\tilde\lambda}` is :math:`L_t`-smooth and :math:`\mu_t`-strongly convex, the
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
        Smoothness and strong convexity of :math:`F_{\tilde\lambda}`
        (:math:`0 < \mu_t \le L_t`).
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
    ta, lt_, mt, va, g0 = _check_sgd_common(t, L_t, mu_t, V, gap0)
    eta_a = as_float_array(eta, "eta", positive=True)
    _broadcast(t=ta, eta=eta_a, L_t=lt_, mu_t=mt, V=va, gap0=g0)
    prod = eta_a * lt_
    _first_bad("eta", eta_a, prod > 1.0 + _STEP_ULPS, "step must be <= 1/L_t")
    floor = eta_a * lt_ * va / (2.0 * mt)
    # eta * mu_t <= eta * L_t <= 1 (up to rounding): the base is in [0, 1).
    base = np.maximum(1.0 - eta_a * mt, 0.0)
    # Written as a convex combination of gap0 and the floor (both >= 0): the form
    # floor + base**t (gap0 - floor) cancels catastrophically when floor >> gap0 and
    # returned less than gap0 at t = 0.
    return _as_result(base**ta * g0 + (1.0 - base**ta) * floor)


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
    ta, lt_, mt, va, g0 = _check_sgd_common(t, L_t, mu_t, V, gap0)
    ba = as_float_array(b, "b", positive=True)
    ga = as_float_array(gamma, "gamma", positive=True)
    _broadcast(t=ta, b=ba, gamma=ga, L_t=lt_, mu_t=mt, V=va, gap0=g0)
    bm = ba * mt
    _first_bad("b", ba, bm <= 1.0, "must be > 1/mu_t")
    bl = ba * lt_
    _first_bad("gamma", ga, bl > ga * (1.0 + _STEP_ULPS), "first step b/gamma must be <= 1/L_t")
    nu = np.maximum(ba**2 * lt_ * va / (2.0 * (bm - 1.0)), ga * g0)
    return _as_result(nu / (ga + ta))


def linear_rademacher(M: ArrayLike, rho: ArrayLike, W: ArrayLike, X: ArrayLike) -> FloatArray:
    r"""Rademacher complexity bound of a Lipschitz loss of linear predictors (Theorem 3).

    For :math:`\|w\| \le W`, :math:`\|x\| \le X` and a loss :math:`\rho`-Lipschitz in
    :math:`\langle w, x\rangle`, on :math:`M` samples (``docs/theory.md``, Theorem 3)

    .. math:: \mathfrak R_M \le \frac{\rho W X}{\sqrt M}.

    Parameters
    ----------
    M : array_like
        Sample counts (> 0), e.g. :math:`M_k` per exit.
    rho, W, X : array_like
        Non-negative constants (broadcast with ``M``).

    Returns
    -------
    ndarray

    Examples
    --------
    >>> linear_rademacher([100, 400], 1.0, 2.0, 1.0).tolist()
    [0.2, 0.1]
    """
    Ma = as_float_array(M, "M", positive=True)
    r = as_float_array(rho, "rho", nonneg=True)
    w = as_float_array(W, "W", nonneg=True)
    x = as_float_array(X, "X", nonneg=True)
    _broadcast(M=Ma, rho=r, W=w, X=x)
    return np.asarray(r * w * x / np.sqrt(Ma), dtype=np.float64)


def generalization_bound(
    M: ArrayLike, delta: float, B: float, rademacher: ArrayLike
) -> FloatArray:
    r"""Uniform deviation per exit: Theorem 3 of ``docs/theory.md``.

    Losses in :math:`[0, B]`. With probability at least :math:`1 - \delta`, simultaneously
    for all :math:`K` exits, :math:`\sup_w |R_k(w) - F_k(w)| \le \varepsilon_k` with

    .. math::
        \varepsilon_k = 2\,\mathfrak R_{M_k} + B \sqrt{\frac{\ln(2K/\delta)}{2 M_k}},

    :math:`K` the length of ``M`` (a union bound over the exits). Hence
    :math:`R_\lambda(w) - \min R_\lambda \le F_\lambda(w) - F_\lambda^*
    + 2\sum_k \lambda_k \varepsilon_k`.

    Parameters
    ----------
    M : array_like, shape (K,)
        Training samples per exit :math:`M_k > 0`.
    delta : float
        Failure probability in (0, 1).
    B : float
        Loss range :math:`B > 0`.
    rademacher : array_like, shape (K,) or scalar
        Rademacher complexities :math:`\mathfrak R_{M_k} \ge 0` (e.g. from
        :func:`linear_rademacher`).

    Returns
    -------
    ndarray, shape (K,)

    Examples
    --------
    >>> generalization_bound([50.0], 2 * np.exp(-1.0), 1.0, 0.0).tolist()
    [0.1]
    """
    Ma = as_float_array(M, "M", positive=True)
    if Ma.ndim != 1 or Ma.size == 0:
        raise CISInputError("M", Ma.tolist(), "expected a non-empty 1-d array (one per exit)")
    d = check_scalar(delta, "delta")
    if not 0 < d < 1:
        raise CISInputError("delta", delta, "a probability must lie in (0, 1)")
    b = check_scalar(B, "B", positive=True)
    rad = as_float_array(rademacher, "rademacher", nonneg=True)
    if rad.shape not in {(), Ma.shape}:
        raise CISInputError("rademacher", rad.tolist(), f"expected a scalar or {Ma.size} values")
    k = Ma.size
    return np.asarray(2.0 * rad + b * np.sqrt(np.log(2.0 * k / d) / (2.0 * Ma)), dtype=np.float64)


@dataclass(frozen=True)
class BoundTerms:
    r"""The terms of the full bound (Corollary of ``docs/theory.md``).

    Attributes
    ----------
    generalization : float
        :math:`2\sum_k \lambda_k \varepsilon_k`.
    bias : float
        :math:`(2L/\mu)\,\chi^2\,\Gamma`.
    optimisation : float
        :math:`(2L^2/(\mu\mu_t))\,\mathbb E[e_T]`.
    total : float
        ``generalization`` plus the tight form of Theorem 1(b) with :math:`\mathbb E[e_T]`.
    total_split : float
        ``generalization + bias + optimisation`` (:math:`\ge` ``total``).
    """

    generalization: float
    bias: float
    optimisation: float
    total: float
    total_split: float

    def as_dict(self) -> dict[str, float]:
        """The terms by name."""
        return {
            "generalization": self.generalization,
            "bias": self.bias,
            "optimisation": self.optimisation,
            "total": self.total,
            "total_split": self.total_split,
        }


def _optimisation_error(
    T: int,
    *,
    L_t: float,
    mu_t: float,
    V: float,
    gap0: float,
    eta: float | None,
    b: float | None,
    gamma: float | None,
) -> float:
    if eta is not None:
        if b is not None or gamma is not None:
            raise CISInputError("eta", eta, "give either eta (fixed step) or b and gamma, not both")
        return float(sgd_fixed_step_bound(T, eta, L_t, mu_t, V, gap0))
    if b is None or gamma is None:
        raise CISInputError(
            "eta", None, "give a fixed step eta or both b and gamma (diminishing steps)"
        )
    return float(sgd_diminishing_bound(T, b, gamma, L_t, mu_t, V, gap0))


def full_bound(
    lam: ArrayLike,
    lt: ArrayLike,
    *,
    L: float,
    mu: float,
    mu_t: float,
    L_t: float,
    Gamma: float,
    V: float,
    gap0: float,
    T: int,
    eps: ArrayLike,
    eta: float | None = None,
    b: float | None = None,
    gamma: float | None = None,
) -> BoundTerms:
    r"""The full bound on the excess risk after :math:`T` rounds: Corollary, ``docs/theory.md``.

    With :math:`\mathbb E[e_T]` from Theorem 2 (fixed step ``eta``, or steps
    :math:`b/(\gamma + t)`) and Theorem 1(c),

    .. math::
        \mathbb E[R_\lambda(w_T)] - \min R_\lambda
        \le 2\sum_k \lambda_k\varepsilon_k
        + \frac{1}{2\mu}\Big(\sqrt{2L\chi^2\Gamma} + L\sqrt{2\,\mathbb E[e_T]/\mu_t}\Big)^2
        \le 2\sum_k \lambda_k\varepsilon_k + \frac{2L}{\mu}\chi^2\Gamma
        + \frac{2L^2}{\mu\mu_t}\mathbb E[e_T],

    on the event (probability :math:`\ge 1-\delta`) of Theorem 3.

    Parameters
    ----------
    lam, lt : array_like, shape (K,)
        Serving shares and training weights.
    L, mu, mu_t, Gamma : float
        As in :func:`training_error_bound`.
    L_t : float
        Smoothness of :math:`F_{\tilde\lambda}` (:math:`\mu_t \le L_t`).
    V : float
        Variance bound of Lemma 2.
    gap0 : float
        :math:`F_{\tilde\lambda}(w_0) - F_{\tilde\lambda}^*`.
    T : int
        Number of rounds (updates).
    eps : array_like, shape (K,)
        :math:`\varepsilon_k` of Theorem 3 (:func:`generalization_bound`).
    eta : float, optional
        Fixed step; otherwise give ``b`` and ``gamma``.
    b, gamma : float, optional
        Diminishing-step schedule.

    Returns
    -------
    BoundTerms

    Examples
    --------
    >>> terms = full_bound([0.5, 0.5], [0.5, 0.5], L=1.0, mu=1.0, mu_t=1.0, L_t=1.0,
    ...                    Gamma=1.0, V=0.0, gap0=1.0, T=3, eps=[0.1, 0.1], eta=0.5)
    >>> terms.as_dict()
    {'generalization': 0.2, 'bias': 0.0, 'optimisation': 0.25, 'total': 0.325, 'total_split': 0.45}
    """
    lam_a, lt_a = _check_weights(lam, lt)
    eps_a = as_float_array(eps, "eps", nonneg=True)
    if eps_a.shape != lam_a.shape:
        raise CISInputError("eps", eps_a.tolist(), f"expected {lam_a.size} values (one per exit)")
    L_ = check_scalar(L, "L")
    mu_ = check_scalar(mu, "mu")
    _check_smooth_convex(L_, mu_)
    mut = check_scalar(mu_t, "mu_t")
    _check_smooth_convex(L_, mut, mu_name="mu_t")
    Lt = check_scalar(L_t, "L_t")
    _check_smooth_convex(Lt, mut, mu_name="mu_t", L_name="L_t")
    e_T = _optimisation_error(
        T, L_t=Lt, mu_t=mut, V=V, gap0=gap0, eta=eta, b=b, gamma=gamma
    )
    gen = float(2.0 * (lam_a * eps_a).sum())
    gam = check_scalar(Gamma, "Gamma", nonneg=True)
    c2 = chi2(lam_a, lt_a)
    bias = 2.0 * L_ / mu_ * c2 * gam
    opt = 2.0 * L_**2 / (mu_ * mut) * e_T
    tight = training_error_bound(lam_a, lt_a, L_, mu_, mut, gam, e_T)
    return BoundTerms(
        generalization=gen,
        bias=float(bias),
        optimisation=float(opt),
        total=gen + tight,
        total_split=gen + float(bias) + float(opt),
    )


@dataclass(frozen=True, kw_only=True)
class CISConstants:
    r"""Problem constants of a CIS for :func:`cis_bound` (keyword-only).

    Attributes
    ----------
    L : float
        Smoothness of every :math:`F_k`.
    mu : float
        Strong convexity of :math:`F_\lambda`.
    Gamma : float
        :math:`\Gamma` of Theorem 1 (or an upper bound).
    sigma : array_like, shape (K,) or (N, K)
        Gradient-noise standard deviations :math:`\sigma` (Lemma 2 uses :math:`\sigma^2`).
    gap0 : float
        Initial gap :math:`F_{\tilde\lambda}(w_0) - F_{\tilde\lambda}^*`.
    T : int
        Number of rounds.
    mu_t : float, optional
        Strong convexity of :math:`F_{\tilde\lambda}`; ``None`` means ``mu``.
    L_t : float, optional
        Smoothness of :math:`F_{\tilde\lambda}`; ``None`` means ``L``.
    G : array_like, optional
        Gradient-norm bounds, shape (K,) or (N, K); ``None`` means 0.
    eta : float, optional
        Fixed step; otherwise ``b`` and ``gamma`` (diminishing steps).
    b, gamma : float, optional
    B_loss : float
        Loss range :math:`B` of Theorem 3.
    delta : float
        Failure probability of Theorem 3.
    rademacher : array_like, optional
        Per-exit Rademacher complexities; ``None`` means 0.
    """

    L: float
    mu: float
    Gamma: float
    sigma: ArrayLike
    gap0: float
    T: int
    mu_t: float | None = None
    L_t: float | None = None
    G: ArrayLike | None = None
    eta: float | None = None
    b: float | None = None
    gamma: float | None = None
    B_loss: float = 1.0
    delta: float = 0.05
    rademacher: ArrayLike | None = None


def cis_bound(
    cis: CIS, part: Participation, lt: ArrayLike, const: CISConstants
) -> BoundTerms:
    r"""The full bound (Corollary of ``docs/theory.md``) of a CIS trained with weights ``lt``.

    :math:`\lambda` is the CIS's serving shares, :math:`\beta = ` :func:`cistheory.beta`
    ``(part, lt)``, :math:`V` = :func:`variance_bound` with :math:`\sigma^2` and
    :math:`G^2` from ``const``, and :math:`\varepsilon_k` = :func:`generalization_bound`
    with :math:`M_k` = ``part.exit_data``. Exits no node trains (:math:`M_k = 0`, hence
    :math:`\lambda_k = 0`) carry no generalisation term; the union bound then runs over the
    :math:`K'` trained exits.

    .. math::
        \text{total} = 2\sum_k \lambda_k \varepsilon_k
        + \frac{1}{2\mu}\Big(\sqrt{2L\chi^2\Gamma} + L\sqrt{2\,\mathbb E[e_T]/\mu_t}\Big)^2

    Examples
    --------
    >>> import cistheory
    >>> cis = cistheory.reference_cis("80-15-5")
    >>> part = cistheory.deepest_exit(cis)
    >>> const = CISConstants(L=1.0, mu=0.1, Gamma=1.0,
    ...                      sigma=cistheory.REFERENCE_SIGMA["3-9-17"], gap0=1.0, T=100,
    ...                      eta=0.5)
    >>> terms = cis_bound(cis, part, cis.lam, const)
    >>> terms.bias
    0.0
    """
    if not isinstance(const, CISConstants):
        raise CISInputError("const", const, "expected a CISConstants")
    if part.q.shape != (cis.n_nodes, cis.n_exits):
        raise CISInputError(
            "part", part.q.shape, f"participation of shape {(cis.n_nodes, cis.n_exits)} expected"
        )
    lam = cis.lam
    lam_a, lt_a = _check_weights(lam, lt)
    part.check_trainable(lam_a)
    b_ = beta(part, lt_a)
    n, k = part.q.shape
    sig = _per_pair(const.sigma, "sigma", (n, k))
    g = np.zeros((n, k)) if const.G is None else _per_pair(const.G, "G", (n, k))
    V = variance_bound(part.q, b_, sig**2, g**2)
    mk = part.exit_data
    trained = mk > 0
    rad = (
        np.zeros(k)
        if const.rademacher is None
        else as_float_array(const.rademacher, "rademacher", nonneg=True)
    )
    if rad.shape not in {(), (k,)}:
        raise CISInputError("rademacher", rad.tolist(), f"expected a scalar or {k} values")
    rad = np.broadcast_to(rad, (k,))
    eps = np.zeros(k)
    eps[trained] = generalization_bound(mk[trained], const.delta, const.B_loss, rad[trained])
    mu_t = const.mu if const.mu_t is None else const.mu_t
    L_t = const.L if const.L_t is None else const.L_t
    return full_bound(
        lam_a,
        lt_a,
        L=const.L,
        mu=const.mu,
        mu_t=mu_t,
        L_t=L_t,
        Gamma=const.Gamma,
        V=V,
        gap0=const.gap0,
        T=const.T,
        eps=eps,
        eta=const.eta,
        b=const.b,
        gamma=const.gamma,
    )
