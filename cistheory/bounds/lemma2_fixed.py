r"""Lemma 2f of ``docs/theory.md``: the exact variance of the unbiased aggregate when a fixed
number of nodes is drawn per round without replacement (checked in
``tests/test_partial_participation.py`` against an enumeration of every outcome).

The draw: a set :math:`S` of :math:`n` of the :math:`N` nodes, with first- and second-order
inclusion probabilities :math:`\pi_i = \mathbb P(i \in S)` and
:math:`\pi_{ij} = \mathbb P(i, j \in S)`; each drawn node picks exit :math:`k` with
probability :math:`r_{i,k}`, independently; so :math:`q_{i,k} = \pi_i r_{i,k}`. For the
uniform draw :math:`\pi_i = n/N`, :math:`\pi_{ij} = n(n-1)/(N(N-1))`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import FloatArray, as_float_array
from ..errors import CISInputError
from ._checks import check_q_beta
from .lemma2 import variance_exact

__all__ = ["uniform_inclusion", "variance_inclusion"]


def uniform_inclusion(n_nodes: int, per_round: int) -> tuple[FloatArray, FloatArray]:
    r"""Inclusion probabilities of ``per_round`` of ``n_nodes`` drawn uniformly without
    replacement: :math:`\pi_i = n/N` and the matrix :math:`\pi_{ij}` (diagonal :math:`\pi_i`).

    Examples
    --------
    >>> pi, pi2 = uniform_inclusion(4, 2)
    >>> pi.tolist(), float(pi2[0, 1])
    ([0.5, 0.5, 0.5, 0.5], 0.16666666666666666)
    """
    for name, v in (("n_nodes", n_nodes), ("per_round", per_round)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise CISInputError(name, v, "must be a positive integer")
    if per_round > n_nodes:
        raise CISInputError("per_round", per_round, f"at most n_nodes = {n_nodes}")
    n, big_n = int(per_round), int(n_nodes)
    pi = np.full(big_n, n / big_n)
    pair = n * (n - 1) / (big_n * (big_n - 1)) if big_n > 1 else 0.0
    pi2 = np.full((big_n, big_n), pair)
    np.fill_diagonal(pi2, pi)
    return pi, pi2


def variance_inclusion(
    q: ArrayLike,
    beta: ArrayLike,
    grad: ArrayLike,
    noise_var: ArrayLike,
    pair_inclusion: ArrayLike,
) -> float:
    r"""Exact variance of the unbiased aggregate under a draw without replacement (Lemma 2f).

    With :math:`g = \sum_{\text{picked}} (\beta_{i,k}/q_{i,k})\, g_{i,k}`,
    :math:`\bar x_i = \sum_k \beta_{i,k} \nabla f_{i,k}`, and the inclusion probabilities
    :math:`\pi_i` (the diagonal of ``pair_inclusion``) and :math:`\pi_{ij}`,

    .. math::
        \mathbb E\|g - \nabla F_{\tilde\lambda}\|^2 = \underbrace{\sum_i \Big[\sum_k
        \frac{\beta_{i,k}^2}{q_{i,k}} \big(\|\nabla f_{i,k}\|^2 + s^2_{i,k}\big)
        - \|\bar x_i\|^2\Big]}_{\text{Lemma 2's expression}}
        + \sum_{i \ne j} \Big(\frac{\pi_{ij}}{\pi_i \pi_j} - 1\Big)
        \langle \bar x_i, \bar x_j\rangle .

    For the uniform draw the last sum is :math:`-c\,(\|\sum_i \bar x_i\|^2 - \sum_i
    \|\bar x_i\|^2)` with :math:`c = (N - n)/(n(N-1)) \in [0, 1]`.

    Parameters
    ----------
    q : array_like, shape (N, K)
        :math:`q_{i,k} = \pi_i r_{i,k}`, the probability that node :math:`i` trains exit
        :math:`k` in a round (rows sum to at most :math:`\pi_i`).
    beta, grad, noise_var
        As in :func:`cistheory.bounds.variance_exact`.
    pair_inclusion : array_like, shape (N, N)
        :math:`\pi_{ij}`, with :math:`\pi_{ii} = \pi_i > 0` (e.g. :func:`uniform_inclusion`).

    Returns
    -------
    float

    Examples
    --------
    One of two nodes, each with weight 1/2 and gradient 1, no noise: the aggregate is
    :math:`(1/2)/(1/2) = 1` whichever node is drawn, so the variance is 0 (Lemma 2 with
    independent draws would give 1/2).

    >>> _, pi2 = uniform_inclusion(2, 1)
    >>> variance_inclusion([[0.5], [0.5]], [[0.5], [0.5]], [[[1.0]], [[1.0]]], [[0.0], [0.0]],
    ...                    pi2)
    0.0
    """
    qa, ba = check_q_beta(q, beta)
    n = qa.shape[0]
    pi2 = as_float_array(pair_inclusion, "pair_inclusion", nonneg=True)
    if pi2.shape != (n, n):
        raise CISInputError("pair_inclusion", pi2.shape, f"expected shape ({n}, {n})")
    pi = np.diag(pi2).copy()
    if not (pi > 0).all():
        raise CISInputError("pair_inclusion", pi.tolist(), "every pi_i must be > 0")
    rows = qa.sum(axis=1)
    if (rows > pi * (1 + 1e-12)).any():
        i = int(np.argmax(rows > pi * (1 + 1e-12)))
        raise CISInputError(f"q[{i}]", qa[i].tolist(), f"sums above pi_{i} = {pi[i]!r}")
    per_node = variance_exact(qa, ba, grad, noise_var)
    ga = np.asarray(as_float_array(grad, "grad"))
    xbar = (ba[:, :, None] * ga).sum(axis=1)  # (N, d)
    factor = pi2 / np.outer(pi, pi) - 1.0
    np.fill_diagonal(factor, 0.0)
    gram = xbar @ xbar.T
    return float(per_node + (factor * gram).sum())
