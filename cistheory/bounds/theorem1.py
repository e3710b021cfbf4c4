r"""Theorem 1 of ``docs/theory.md``: the bias of training on :math:`\tilde\lambda` instead of
:math:`\lambda`, and the training error at any point (checked by ``proofs_check.theorem1``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import check_scalar
from ._checks import check_smooth_convex, check_weights

__all__ = ["bias_bound", "chi2", "training_error_bound"]


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
    lam_a, lt_a = check_weights(lam, lt)
    pos = lt_a > 0
    terms = np.where(pos, (lam_a - lt_a) ** 2 / np.where(pos, lt_a, 1.0), 0.0)
    return float(terms.sum())


def bias_bound(lam: ArrayLike, lt: ArrayLike, L: float, mu: float, Gamma: float) -> float:
    r"""Bias of training the wrong mixture: Theorem 1(a) of ``docs/theory.md``.

    Each :math:`F_k` is :math:`L`-smooth and bounded below, :math:`F_\lambda`
    satisfies PL with :math:`\mu` (e.g. it is :math:`\mu`-strongly convex),
    :math:`w_{\tilde\lambda}^* = \arg\min F_{\tilde\lambda}` and
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
        PL constant of :math:`F_\lambda` (> 0; e.g. its strong convexity).
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
    check_smooth_convex(L_, mu_)
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
    check_smooth_convex(L_, mu_)
    mut = check_scalar(mu_t, "mu_t")
    check_smooth_convex(L_, mut, mu_name="mu_t")
    gam = check_scalar(Gamma, "Gamma", nonneg=True)
    err = check_scalar(e, "e", nonneg=True)
    c2 = chi2(lam, lt)
    if split:
        return float(2.0 * L_ / mu_ * c2 * gam + 2.0 * L_**2 / (mu_ * mut) * err)
    root = np.sqrt(2.0 * L_ * c2 * gam) + L_ * np.sqrt(2.0 * err / mut)
    return float(root**2 / (2.0 * mu_))
