r"""Lemma 2 of ``docs/theory.md``: the exact variance of the unbiased aggregate and its convex
bound :math:`V(\tilde\lambda, q)` (checked by ``proofs_check.lemma2``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._arrays import FloatArray, as_float_array
from ..errors import CISInputError
from ._checks import check_q_beta, draw_coupling, per_pair

__all__ = ["variance_bound", "variance_exact", "variance_parts"]


def variance_exact(q: ArrayLike, beta: ArrayLike, grad: ArrayLike, noise_var: ArrayLike) -> float:
    r"""Exact variance of the unbiased aggregate with one local step: Lemma 2, ``docs/theory.md``.

    Node :math:`i` picks exit :math:`k` with probability :math:`q_{i,k}` (independently of the
    other nodes) or idles, and sends a minibatch gradient :math:`g_{i,k}` with mean
    :math:`\nabla f_{i,k}` and variance :math:`s^2_{i,k} = \mathbb E\|g_{i,k} - \nabla
    f_{i,k}\|^2`. With :math:`g = \sum_{\text{picked}} (\beta_{i,k}/q_{i,k})\, g_{i,k}`,

    .. math::
        \mathbb E\|g - \nabla F_{\tilde\lambda}\|^2 = \sum_i \Big[ \sum_k
        \frac{\beta_{i,k}^2}{q_{i,k}} \big(\|\nabla f_{i,k}\|^2 + s^2_{i,k}\big)
        - \Big\|\sum_k \beta_{i,k} \nabla f_{i,k}\Big\|^2 \Big],

    the inner sums over pairs with :math:`q_{i,k} > 0`. It is evaluated as
    :math:`V_s + V_n` of :func:`variance_parts`, a sum of non-negative terms (no
    cancellation).

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

    A fixed node with a huge gradient: only its noise is left (the expanded form cancels
    catastrophically here).

    >>> variance_exact([[1.0]], [[1.0]], [[[1e10]]], [[1.0]])
    1.0
    """
    vs, vn = variance_parts(q, beta, grad, noise_var)
    return vs + vn


def variance_parts(
    q: ArrayLike,
    beta: ArrayLike,
    grad: ArrayLike,
    noise_var: ArrayLike,
    *,
    per_round: int | None = None,
) -> tuple[float, float]:
    r"""The two parts of Lemma 2's exact variance: sampling :math:`V_s` and noise :math:`V_n`.

    With :math:`x_{i,k} = (\beta_{i,k}/q_{i,k})\nabla f_{i,k}` (the contribution of node
    :math:`i` when it picks :math:`k`) and :math:`\bar x_i = \sum_k \beta_{i,k}\nabla f_{i,k}`
    (its mean),

    .. math::
        V_s = \sum_i \Big[\sum_{k : q_{i,k} > 0} q_{i,k}\,\|x_{i,k} - \bar x_i\|^2
        + \Big(1 - \sum_k q_{i,k}\Big)\|\bar x_i\|^2\Big], \qquad
        V_n = \sum_{(i,k) : q_{i,k} > 0} \frac{\beta_{i,k}^2 s^2_{i,k}}{q_{i,k}},

    and :math:`V_s + V_n` is the right side of Lemma 2 (:func:`variance_exact`). :math:`V_s`
    is the variance of a discrete random vector written as :math:`\sum_{\text{outcomes}}
    p\,\|x - \bar x\|^2`, a sum of non-negative terms: no cancellation, so a fixed node
    with a large gradient contributes exactly 0 (the expanded form
    :math:`\sum\beta^2\|\nabla f\|^2/q - \|\bar x\|^2` loses every digit there). At the
    optimum :math:`w^*` of :math:`F_{\tilde\lambda}` these are the constants of Theorem A
    (``docs/theory.md``, Section 4.12): :math:`V^* = V_s + V_n`.

    With ``per_round`` :math:`= n` (:math:`n` of the :math:`N` nodes drawn per round
    uniformly without replacement, ``q`` the inclusion table :math:`(n/N)\,r` of
    :func:`cistheory.fixed_count`), :math:`V_n` is unchanged and :math:`V_s` is the exact
    variance under that draw (Lemma ES-f, ``docs/theory.md`` Section 4.11f),

    .. math::
        V_s^{(n)} = V_s + c\Big(\sum_i\|\bar x_i\|^2 - \Big\|\sum_i\bar x_i\Big\|^2\Big),
        \qquad c = \frac{N - n}{n(N - 1)} ,

    which at :math:`w^*` (where :math:`\sum_i\bar x_i = 0`) exceeds the independent
    :math:`V_s` by :math:`c\sum_i\|\bar x_i\|^2`; it is computed as the law of total variance
    over the drawn set, a sum of non-negative terms.

    Parameters
    ----------
    q, beta, grad, noise_var
        As in :func:`variance_exact`.
    per_round : int, optional
        :math:`n` of a fixed-count draw (rows of ``q`` summing to at most :math:`n/N`);
        ``None``: independent picks.

    Returns
    -------
    (float, float)
        :math:`(V_s, V_n)`.

    Examples
    --------
    >>> variance_parts([[0.5]], [[1.0]], [[[1.0]]], [[0.5]])
    (1.0, 1.0)
    >>> variance_parts([[1.0]], [[1.0]], [[[1e10]]], [[1.0]])
    (0.0, 1.0)

    One of two nodes drawn, gradients :math:`\mp 1` at the optimum: the aggregate is
    :math:`\mp 1`, variance 1 (independent picks from the same ``q`` would give 1/2).

    >>> variance_parts([[0.5], [0.5]], [[0.5], [0.5]], [[[-1.0]], [[1.0]]], [[0.0], [0.0]],
    ...                per_round=1)
    (1.0, 0.0)
    """
    qa, ba = check_q_beta(q, beta)
    ga = as_float_array(grad, "grad", axes=("node", "exit", "index"))
    if ga.ndim != 3 or ga.shape[:2] != qa.shape:
        raise CISInputError("grad", ga.shape, f"expected shape {qa.shape} + (d,)")
    s2 = as_float_array(noise_var, "noise_var", nonneg=True, axes=("node", "exit"))
    if s2.shape != qa.shape:
        raise CISInputError("noise_var", s2.tolist(), f"expected shape {qa.shape} (as q)")
    pos = qa > 0
    safe_q = np.where(pos, qa, 1.0)
    x = np.where(pos[:, :, None], ba[:, :, None] * ga / safe_q[:, :, None], 0.0)
    xbar = (ba[:, :, None] * ga).sum(axis=1)  # (N, d): beta = 0 off the support
    dev2 = ((x - xbar[:, None, :]) ** 2).sum(axis=2)
    # a row may sum to 1 + ROW_ATOL (check_q): the idle probability is then 0
    idle = np.maximum(1.0 - qa.sum(axis=1), 0.0)
    vn = float(np.where(pos, ba**2 * s2 / safe_q, 0.0).sum())
    if per_round is not None:
        return _fixed_count_sampling(qa, x, xbar, draw_coupling(qa, per_round), per_round), vn
    vs = float(np.where(pos, qa * dev2, 0.0).sum() + (idle * (xbar**2).sum(axis=1)).sum())
    return vs, vn


def _fixed_count_sampling(
    qa: FloatArray, x: FloatArray, xbar: FloatArray, c: float, per_round: int
) -> float:
    r""":math:`V_s` under a uniform draw of ``per_round`` nodes, by the law of total variance:
    :math:`\sum_i \pi\,\mathrm{Var}(Y_i) + cN\sum_i\|\bar x_i - m\|^2` with
    :math:`Y_i` node :math:`i`'s contribution once drawn (mean :math:`\bar x_i/\pi`),
    :math:`\pi = n/N`, :math:`m` the mean of the :math:`\bar x_i` (the second term is the
    variance of :math:`\sum_{i \in S}\bar x_i/\pi` over the drawn set :math:`S`)."""
    n_nodes = qa.shape[0]
    pi = per_round / n_nodes
    pos = qa > 0
    y_mean = xbar / pi  # (N, d)
    dev2 = ((x - y_mean[:, None, :]) ** 2).sum(axis=2)
    idle = np.maximum(pi - qa.sum(axis=1), 0.0)  # drawn but idle, times pi
    within = np.where(pos, qa * dev2, 0.0).sum() + (idle * (y_mean**2).sum(axis=1)).sum()
    spread = ((xbar - xbar.mean(axis=0)) ** 2).sum()
    return float(within + c * n_nodes * spread)


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

    :math:`V` is jointly convex in :math:`(\tilde\lambda, q)` only for a fixed support
    :math:`\{q > 0\}` and a fixed set of fixed nodes (Proposition V, ``docs/theory.md``):
    across the switch to :math:`q = 1` it jumps (:math:`V = 1.0204, 1.0101, 0` at
    :math:`q = 0.98, 0.99, 1` for one node with :math:`G = 1`, :math:`\sigma = 0`).

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
    qa, ba = check_q_beta(q, beta)
    s2 = per_pair(sigma2, "sigma2", qa.shape)
    g2 = per_pair(G2, "G2", qa.shape)
    # Same test as Participation.fixed: an entry equal to 1 (up to 1e-15, the spacing at 1).
    fixed: NDArray[np.bool_] = np.asarray(np.isclose(qa, 1.0, rtol=0, atol=1e-15).any(axis=1))
    sampled = (~fixed).astype(np.float64)
    pos = qa > 0
    num = ba**2 * (s2 + sampled[:, None] * g2)
    return float(np.where(pos, num / np.where(pos, qa, 1.0), 0.0).sum())
