r"""Aggregation: the pair weights :math:`\beta`, the server's rule, and what a rule optimises.

For training weights :math:`\tilde\lambda` (``docs/theory.md``, Sections 2-3)

.. math:: \beta_{i,k} = \tilde\lambda_k \, m_i / M_k \quad (i \in E_k),
    \qquad F_{\tilde\lambda} = \sum_{i,k} \beta_{i,k} f_{i,k} .

The server's unbiased (inverse-probability) aggregation multiplies the update of a picked
pair by :math:`\beta_{i,k} / q_{i,k}` (Lemma 1). Any rule that uses pair weights
:math:`w_{i,k}` instead optimises, in expectation, the objective with pair weights
:math:`q_{i,k} w_{i,k}`; :func:`effective_objective` computes it, so the bias of the
multiplicative rule :math:`w = \beta q` (effective weights :math:`\beta q^2`) is a number a
user can read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import FloatArray, as_float_array, as_simplex, first_bad
from ..errors import CISInputError
from .participation import Participation

__all__ = [
    "AGGREGATION_RULES",
    "EffectiveObjective",
    "aggregation_weights",
    "beta",
    "effective_objective",
]

AGGREGATION_RULES: tuple[str, ...] = ("unbiased", "multiplicative")
"""Server aggregation rules: ``unbiased`` (:math:`\beta/q`) and ``multiplicative``
(:math:`\beta q`, the reference release's rule)."""


def beta(part: Participation, lt: ArrayLike) -> FloatArray:
    r"""Objective pair weights :math:`\beta_{i,k} = \tilde\lambda_k m_i / M_k` on :math:`E_k`.

    .. math:: F_{\tilde\lambda} = \sum_{i,k} \beta_{i,k} f_{i,k}

    The weights sum to one; an exit with :math:`\tilde\lambda_k > 0` and no training node
    (or no data) is refused, since its weight would silently vanish.

    Examples
    --------
    >>> from cistheory import deepest_exit, reference_cis
    >>> part = deepest_exit(reference_cis("80-15-5"))
    >>> beta(part, [0.5, 0.3, 0.2]).sum(axis=0).round(12).tolist()
    [0.5, 0.3, 0.2]
    """
    lt_a = as_simplex(lt, "lt")
    if lt_a.size != part.q.shape[1]:
        raise CISInputError("lt", lt_a.tolist(), f"expected {part.q.shape[1]} exits")
    first_bad(
        "lt",
        lt_a,
        (lt_a > 0) & ~(part.exit_data > 0),
        "the exit has a positive training weight but no node with data trains it",
        axes=("exit",),
    )
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
    raise CISInputError(
        "rule", rule, f"unknown aggregation rule; use one of {', '.join(AGGREGATION_RULES)}"
    )


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
