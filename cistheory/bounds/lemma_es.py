r"""Lemma ES of ``docs/theory.md`` (Section 4.11): expected smoothness of the sampled aggregate
(checked by ``proofs_check.lemma_es``).

The noise-free aggregate :math:`A(w) = \sum_{(i,k)\ \text{picked}} (\beta_{i,k}/q_{i,k})\nabla
f_{i,k}(w)` has mean :math:`\nabla F_{\tilde\lambda}(w)` (Lemma 1). Its variance around the
optimum grows with the distance to it; the constant :math:`L_s` of this module prices that
growth, and with it the factor :math:`\beta/q` of inverse-probability weighting.

Every function takes ``per_round``: ``None`` (the default) for nodes that pick independently
(Section 3), or :math:`n` when :math:`n` of the :math:`N` nodes are drawn per round uniformly
without replacement and ``q`` is the inclusion table :math:`(n/N)\,r` of
:func:`cistheory.fixed_count` (its ``per_round``). The draw couples the nodes, and the
independent constants computed from that ``q`` are *not* valid for it (Lemma ES-f,
``docs/theory.md`` Section 4.11f: two nodes, one drawn, exceed them by a factor 5/3); with
``per_round`` the subtracted :math:`vv^\top` is scaled by :math:`1 - c`,
:math:`c = (N - n)/(n(N - 1))`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import FloatArray, as_float_array
from ..errors import CISInputError
from ._checks import check_q_beta, draw_coupling

__all__ = [
    "expected_smoothness",
    "expected_smoothness_nodes",
    "expected_smoothness_pairwise",
    "sampling_lipschitz",
]


def _pair_constants(
    q: ArrayLike, beta: ArrayLike, L_pair: ArrayLike, field: str = "L_pair"
) -> tuple[FloatArray, FloatArray, FloatArray]:
    qa, ba = check_q_beta(q, beta)
    la = as_float_array(L_pair, field, nonneg=True, axes=("node", "exit"))
    if la.shape != qa.shape:
        raise CISInputError(field, la.tolist(), f"expected shape {qa.shape} (as q)")
    return qa, ba, la


def expected_smoothness_nodes(
    q: ArrayLike, beta: ArrayLike, L_pair: ArrayLike, *, per_round: int | None = None
) -> FloatArray:
    r"""Per-node expected-smoothness constants :math:`L_{s,i}` of Lemma ES.

    For node :math:`i` with pairs :math:`K_i = \{k : q_{i,k} > 0\}`, let
    :math:`a_k = \beta_{i,k}L_{i,k}/q_{i,k}` and :math:`v_k = \sqrt{\beta_{i,k}L_{i,k}}`; then

    .. math:: L_{s,i} = \lambda_{\max}\big(\mathrm{diag}(a) - (1 - c)\,v v^\top\big) \ \ge 0 ,

    :math:`c = 0` for independent picks and :math:`c = (N - n)/(n(N - 1))` for ``per_round``
    :math:`= n` of :math:`N` drawn without replacement (Lemma ES-f). A node with one pair has
    the closed form :math:`\beta L(1/q - 1 + c)` (0 for a fixed node); an idle node has 0.

    Parameters
    ----------
    q : array_like (N, K)
        Participation probabilities (checked by :func:`cistheory.check_q`).
    beta : array_like (N, K)
        Pair weights, zero where :math:`q = 0`.
    L_pair : array_like (N, K)
        Smoothness constants :math:`L_{i,k}` of the convex :math:`f_{i,k}`.
    per_round : int, optional
        :math:`n`, when :math:`n` nodes are drawn per round without replacement and ``q`` is
        the inclusion table (rows summing to at most :math:`n/N`); ``None``: independent picks.

    Returns
    -------
    ndarray (N,)

    Examples
    --------
    >>> expected_smoothness_nodes([[0.1], [1.0]], [[0.5], [0.5]], [[1.0], [1.0]]).tolist()
    [4.5, 0.0]

    One of two nodes drawn (:math:`c = 1`), each then trains its exit:
    :math:`\beta L/q = 1` instead of the independent :math:`\beta L(1/q - 1) = 1/2`.

    >>> expected_smoothness_nodes([[0.5], [0.5]], [[0.5], [0.5]], [[1.0], [1.0]],
    ...                           per_round=1).tolist()
    [1.0, 1.0]
    """
    qa, ba, la = _pair_constants(q, beta, L_pair)
    keep = 1.0 - draw_coupling(qa, per_round)  # the share of -v v^T the draw leaves
    out = np.zeros(qa.shape[0])
    for i in range(qa.shape[0]):
        ks = np.flatnonzero(qa[i] > 0)
        if ks.size == 1:
            k = int(ks[0])
            out[i] = ba[i, k] * la[i, k] * (1.0 / qa[i, k] - keep)
        elif ks.size > 1:
            a = ba[i, ks] * la[i, ks] / qa[i, ks]
            v = np.sqrt(ba[i, ks] * la[i, ks])
            top = float(np.linalg.eigvalsh(np.diag(a) - keep * np.outer(v, v))[-1])
            out[i] = max(top, 0.0)  # M_i is PSD (Lemma ES (i)); below 0 only by rounding
    return out


def expected_smoothness(
    q: ArrayLike, beta: ArrayLike, L_pair: ArrayLike, *, per_round: int | None = None
) -> float:
    r"""Expected smoothness :math:`L_s = \max_i L_{s,i}` of the sampled aggregate (Lemma ES).

    If every :math:`f_{i,k}` with :math:`q_{i,k} > 0` is convex and :math:`L_{i,k}`-smooth,
    then for every :math:`w`, with :math:`w^*` the minimiser of :math:`F_{\tilde\lambda}`,

    .. math::
        \mathrm{Var}\big(A(w) - A(w^*)\big) \le L_s\,\langle\nabla F_{\tilde\lambda}(w)
        - \nabla F_{\tilde\lambda}(w^*), w - w^*\rangle
        \le 2L_s\big(F_{\tilde\lambda}(w) - F_{\tilde\lambda}^*\big),

    :math:`L_{s,i}` as in :func:`expected_smoothness_nodes`. The constant cannot be improved
    for the class (equality for one sampled node with a one-dimensional quadratic) and is
    never above :func:`expected_smoothness_pairwise`.

    With ``per_round`` :math:`= n` (a fixed-count draw, ``q`` its inclusion table) the same
    inequalities hold with the constant of that draw (Lemma ES-f, ``docs/theory.md``
    Section 4.11f); the constant computed without ``per_round`` from the same ``q`` can be
    exceeded there. It lies between the two: at least the independent one, at most
    :math:`\max_{i,k}\beta_{i,k}L_{i,k}/q_{i,k}`.

    Examples
    --------
    One node trains its only exit with probability 0.1, :math:`f = w^2/2` (the reproducer of
    ``docs/theory.md``, Section 4.12): :math:`L_s = 1/0.1 - 1 = 9`.

    >>> expected_smoothness([[0.1]], [[1.0]], [[1.0]])
    9.0
    """
    return float(expected_smoothness_nodes(q, beta, L_pair, per_round=per_round).max(initial=0.0))


def expected_smoothness_pairwise(
    q: ArrayLike, beta: ArrayLike, L_pair: ArrayLike, *, per_round: int | None = None
) -> float:
    r"""The pairwise constant :math:`L_s^{\mathrm{pair}} \ge L_s` (Lemma ES (iii)).

    .. math::
        L_s^{\mathrm{pair}} = \max_{(i,k) : q_{i,k} > 0}\ \beta_{i,k}L_{i,k}
        \Big(\frac1{q_{i,k}} - (1 - c)\,[\,|K_i| = 1\,]\Big)

    (:math:`[|K_i| = 1]`: node :math:`i` trains only this exit; :math:`c` as in
    :func:`expected_smoothness_nodes`, 0 without ``per_round``). Linear in
    :math:`\beta/q`, it is the form the design problem constrains
    (``docs/theory.md``, Section 5.2).

    Examples
    --------
    >>> expected_smoothness_pairwise([[0.5, 0.5]], [[0.5, 0.5]], [[1.0, 1.0]])
    1.0
    >>> expected_smoothness([[0.5, 0.5]], [[0.5, 0.5]], [[1.0, 1.0]])
    1.0
    """
    qa, ba, la = _pair_constants(q, beta, L_pair)
    keep = 1.0 - draw_coupling(qa, per_round)
    pos = qa > 0
    single = keep * (pos.sum(axis=1) == 1)[:, None]
    safe = np.where(pos, qa, 1.0)
    vals = np.where(pos, ba * la * (1.0 / safe - single), 0.0)
    return float(vals.max(initial=0.0))


def sampling_lipschitz(
    q: ArrayLike, beta: ArrayLike, ell_pair: ArrayLike, *, per_round: int | None = None
) -> float:
    r"""The non-convex constant :math:`\Lambda` of Lemma ES, Remark (2).

    If :math:`\nabla f_{i,k}` is :math:`\ell_{i,k}`-Lipschitz (no convexity), then
    :math:`\mathrm{Var}(A(w) - A(w^*)) \le \Lambda\|w - w^*\|^2` with

    .. math::
        \Lambda = \sum_i\sum_{k : q_{i,k} > 0}\beta_{i,k}^2\ell_{i,k}^2
        \Big(\frac1{q_{i,k}} - (1 - c)\,[\,|K_i| = 1\,]\Big)

    (a sum over nodes, not a maximum; :math:`c` as in :func:`expected_smoothness_nodes`).

    Examples
    --------
    >>> sampling_lipschitz([[0.5], [0.5]], [[0.5], [0.5]], [[2.0], [2.0]])
    2.0
    """
    qa, ba, la = _pair_constants(q, beta, ell_pair, "ell_pair")
    keep = 1.0 - draw_coupling(qa, per_round)
    pos = qa > 0
    single = keep * (pos.sum(axis=1) == 1)[:, None]
    safe = np.where(pos, qa, 1.0)
    return float(np.where(pos, ba**2 * la**2 * (1.0 / safe - single), 0.0).sum())
