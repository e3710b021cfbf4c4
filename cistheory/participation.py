r"""Participation policies, training populations and aggregation weights.

In every round node :math:`i` trains exit :math:`k` with probability :math:`q_{i,k}`
(:math:`q_{i,k} = 0` for :math:`k > \kappa_i`, :math:`\sum_k q_{i,k} \le 1`) or idles.
The training population of exit :math:`k` is :math:`E_k = \{i : q_{i,k} > 0\}` with
:math:`M_k = \sum_{i \in E_k} m_i`, and for training weights :math:`\tilde\lambda`

.. math:: \beta_{i,k} = \tilde\lambda_k \, m_i / M_k \quad (i \in E_k).

The server's unbiased (inverse-probability) aggregation multiplies the update of a picked
pair by :math:`\beta_{i,k} / q_{i,k}` (``docs/theory.md``, Lemma 1). Any rule that uses
pair weights :math:`w_{i,k}` instead optimises, in expectation, the objective with pair
weights :math:`q_{i,k} w_{i,k}`; :func:`effective_objective` computes it, so the bias of
the multiplicative rule :math:`w = \beta q` (effective weights :math:`\beta q^2`) is a
number a user can read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._validate import BoolArray, FloatArray, as_float_array, as_simplex
from .errors import CISInputError
from .system import CIS

__all__ = [
    "P40",
    "EffectiveObjective",
    "Participation",
    "aggregation_weights",
    "beta",
    "deepest_exit",
    "effective_objective",
    "explicit",
    "shallower_with_probability",
]

# A row sum may exceed 1 by this much (rounding of user-given decimals).
_ROW_ATOL = 1e-12


@dataclass(frozen=True)
class Participation:
    r"""Participation probabilities of a CIS.

    Attributes
    ----------
    q : ndarray, shape (N, K)
        :math:`q_{i,k}`, the probability that node :math:`i` trains exit :math:`k` in a round.
    data : ndarray, shape (N,)
        Training samples :math:`m_i` (copied from the CIS).
    name : str
        Policy label.
    """

    q: np.ndarray
    data: FloatArray
    name: str = "explicit"

    @property
    def populations(self) -> BoolArray:
        r"""Mask ``(N, K)`` of :math:`i \in E_k`."""
        return np.asarray(self.q > 0)

    @property
    def fixed(self) -> BoolArray:
        """Nodes whose configuration fixes one exit with probability 1 (not sampled)."""
        return np.asarray(np.isclose(self.q, 1.0, rtol=0, atol=1e-15).any(axis=1))

    @property
    def exit_data(self) -> FloatArray:
        r""":math:`M_k = \sum_{i \in E_k} m_i`, shape (K,)."""
        return np.asarray(self.populations.T.astype(np.float64) @ self.data, dtype=np.float64)

    @property
    def exit_nodes(self) -> np.ndarray:
        r"""Number of nodes :math:`|E_k|` per exit."""
        return self.populations.sum(axis=0)

    def data_fraction(self) -> FloatArray:
        r""":math:`m_i / M_k` on :math:`E_k`, zero elsewhere; shape (N, K)."""
        mk = self.exit_data
        safe = np.where(mk > 0, mk, 1.0)
        return np.where(self.populations, self.data[:, None] / safe[None, :], 0.0)

    def check_trainable(self, lam: ArrayLike) -> None:
        """Raise if an exit with positive serving share has no node (or no data) to train it."""
        lam_a = np.asarray(lam, dtype=np.float64)
        mk = self.exit_data
        for k in range(lam_a.size):
            if lam_a[k] > 0 and not mk[k] > 0:
                raise CISInputError(
                    f"lambda[{k + 1}]",
                    float(lam_a[k]),
                    f"exit {k + 1} serves requests but no node with data trains it",
                )


def _validate_q(cis: CIS, q: ArrayLike, name: str) -> Participation:
    qa = as_float_array(q, "q", shape=(cis.n_nodes, cis.n_exits))
    bad = (qa < 0) | (qa > 1)
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise CISInputError(
            f"q[{cis.node_ids[i]}, {k + 1}]", float(qa[i, k]), "a probability must lie in [0, 1]"
        )
    rows = qa.sum(axis=1)
    over = rows > 1 + _ROW_ATOL
    if over.any():
        i = int(np.argmax(over))
        raise CISInputError(
            f"q[{cis.node_ids[i]}]", qa[i].tolist(), f"row sums to {float(rows[i])!r} > 1"
        )
    beyond = (qa > 0) & ~cis.eligible
    if beyond.any():
        i, k = np.argwhere(beyond)[0]
        raise CISInputError(
            f"q[{cis.node_ids[i]}, {k + 1}]",
            float(qa[i, k]),
            f"node {cis.node_ids[i]} hosts exits up to {int(cis.capacity[i])} only",
        )
    return Participation(q=qa, data=cis.data.copy(), name=name)


def deepest_exit(cis: CIS) -> Participation:
    r"""Every node trains its deepest exit :math:`\kappa_i` in every round.

    .. math:: q_{i,k} = [k = \kappa_i]

    Examples
    --------
    >>> from cistheory import reference_cis
    >>> deepest_exit(reference_cis("80-15-5")).q[0].tolist()
    [0.0, 0.0, 1.0]
    """
    q = np.zeros((cis.n_nodes, cis.n_exits))
    q[np.arange(cis.n_nodes), cis.capacity - 1] = 1.0
    return Participation(q=q, data=cis.data.copy(), name="deepest")


def shallower_with_probability(
    cis: CIS, prob: Mapping[int, float] | ArrayLike, *, name: str | None = None
) -> Participation:
    r"""Nodes train a shallower exit with a given probability, uniformly among them.

    A node with capacity :math:`\kappa_i > 1` and probability :math:`p_i` trains

    .. math::
        q_{i,\kappa_i} = 1 - p_i, \qquad q_{i,k} = \frac{p_i}{\kappa_i - 1}\ (k < \kappa_i).

    Nodes with :math:`\kappa_i = 1` always train exit 1. The reference "p40" variant is
    ``prob={2: 0.4, 3: 0.8}`` (middles 0.4, root 0.8), keyed by capacity.

    Parameters
    ----------
    cis : CIS
    prob : mapping capacity -> p, or array of shape (N,)
        Probability of training a shallower exit, per capacity tier or per node.
    """
    if isinstance(prob, Mapping):
        p = np.zeros(cis.n_nodes)
        for tier, val in prob.items():
            t = int(tier)
            if not 1 <= t <= cis.n_exits:
                raise CISInputError("prob", tier, f"tier must be an exit in 1..{cis.n_exits}")
            p[cis.capacity == t] = float(val)
        label = "shallower(" + ",".join(f"{k}:{v}" for k, v in sorted(prob.items())) + ")"
    else:
        p = as_float_array(prob, "prob", shape=(cis.n_nodes,), labels=cis.node_ids)
        label = "shallower"
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        i = int(np.argmax(bad))
        raise CISInputError(f"prob[{cis.node_ids[i]}]", float(p[i]), "must lie in [0, 1]")
    p = np.where(cis.capacity > 1, p, 0.0)
    q = np.zeros((cis.n_nodes, cis.n_exits))
    rows = np.arange(cis.n_nodes)
    q[rows, cis.capacity - 1] = 1.0 - p
    shallow = np.arange(1, cis.n_exits + 1)[None, :] < cis.capacity[:, None]
    q += np.where(shallow, (p / np.maximum(cis.capacity - 1, 1))[:, None], 0.0)
    return _validate_q(cis, q, name or label)


P40: dict[int, float] = {2: 0.4, 3: 0.8}
"""The reference "p40" variant: probability of a shallower exit, by capacity tier."""


def named_policy(cis: CIS, name: str) -> Participation:
    """A participation policy by name: ``"deepest"`` (:func:`deepest_exit`) or ``"p40"``
    (:func:`shallower_with_probability` with :data:`P40`).

    Examples
    --------
    >>> from cistheory import reference_cis
    >>> named_policy(reference_cis("80-15-5"), "p40").q[1].tolist()
    [0.4, 0.6, 0.0]
    """
    if name == "deepest":
        return deepest_exit(cis)
    if name == "p40":
        return shallower_with_probability(cis, P40, name="p40")
    raise CISInputError("participation", name, "use 'deepest' or 'p40'")


def explicit(cis: CIS, q: ArrayLike, *, name: str = "explicit") -> Participation:
    """An explicit table ``q`` of shape (N, K), validated.

    Raises
    ------
    CISInputError
        A probability outside [0, 1], a row summing above 1, or a positive probability for an
        exit beyond the node's capacity.
    """
    return _validate_q(cis, q, name)


def beta(part: Participation, lt: ArrayLike) -> FloatArray:
    r"""Objective pair weights :math:`\beta_{i,k} = \tilde\lambda_k m_i / M_k` on :math:`E_k`.

    .. math:: F_{\tilde\lambda} = \sum_{i,k} \beta_{i,k} f_{i,k}
    """
    lt_a = as_simplex(lt, "lt")
    if lt_a.size != part.q.shape[1]:
        raise CISInputError("lt", lt_a.tolist(), f"expected {part.q.shape[1]} exits")
    return part.data_fraction() * lt_a[None, :]


def aggregation_weights(part: Participation, lt: ArrayLike, rule: str = "unbiased") -> FloatArray:
    r"""Per-pair server weights applied to :math:`\Delta_{i,k}` when pair (i, k) is picked.

    ``"unbiased"``: :math:`\beta_{i,k} / q_{i,k}`; ``"multiplicative"``:
    :math:`\beta_{i,k} q_{i,k}` (the reference release's rule). Zero off :math:`E_k`.
    """
    b = beta(part, lt)
    pos = part.q > 0
    if rule == "unbiased":
        return np.where(pos, b / np.where(pos, part.q, 1.0), 0.0)
    if rule == "multiplicative":
        return b * part.q
    raise CISInputError("rule", rule, "aggregation rule must be 'unbiased' or 'multiplicative'")


@dataclass(frozen=True)
class EffectiveObjective:
    r"""The objective an aggregation rule optimises in expectation.

    With pair weights :math:`w_{i,k}` the expected aggregate is
    :math:`\sum_{i,k} q_{i,k} w_{i,k} \Delta_{i,k}`, so the rule trains
    :math:`\mathrm{scale} \cdot \sum_k \hat\lambda_k \sum_i \pi_{i,k} f_{i,k}` with

    Attributes
    ----------
    pair : ndarray (N, K)
        :math:`e_{i,k} = q_{i,k} w_{i,k}`.
    scale : float
        :math:`\sum_{i,k} e_{i,k}` (multiplies the server step).
    lt : ndarray (K,)
        Normalised effective exit weights :math:`\hat\lambda_k \propto \sum_i e_{i,k}`.
    within : ndarray (N, K)
        :math:`\pi_{i,k} = e_{i,k} / \sum_j e_{j,k}`, the effective data weights within exit k.
    within_tv : ndarray (K,)
        Total-variation distance between :math:`\pi_{\cdot,k}` and :math:`m_i / M_k`.
    """

    pair: FloatArray
    scale: float
    lt: FloatArray
    within: FloatArray
    within_tv: FloatArray


def effective_objective(part: Participation, weights: ArrayLike) -> EffectiveObjective:
    """Effective objective implied by server pair weights (see :class:`EffectiveObjective`)."""
    w = as_float_array(weights, "weights", shape=part.q.shape)
    e = part.q * w
    mass = e.sum(axis=0)
    scale = float(mass.sum())
    if not scale > 0:
        raise CISInputError("weights", float(scale), "the rule puts no weight on any pair")
    safe = np.where(mass > 0, mass, 1.0)
    within = e / safe[None, :]
    tv = 0.5 * np.abs(within - part.data_fraction()).sum(axis=0)
    tv = np.where(mass > 0, tv, 0.0)
    return EffectiveObjective(pair=e, scale=scale, lt=mass / scale, within=within, within_tv=tv)
