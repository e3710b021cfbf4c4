r"""What a lost update does to the objective (``docs/flower.md``, "Faults"; numpy only).

A picked node whose update does not arrive (it failed, or the round timed out) adds nothing,
and the others keep their weights (no renormalisation):

.. math::
    w_{t+1} = w_t + \eta_s \sum_{(i,k)\ \text{picked and arrived}} w_{i,k} \Delta_{i,k}.

If node :math:`i`'s update is lost with probability :math:`f_i`, pair :math:`(i,k)` arrives
with probability :math:`q_{i,k}(1 - f_i)`, so in expectation the rule trains the pair weights
:math:`q_{i,k}(1-f_i)\,w_{i,k}` (for the unbiased rule, :math:`\beta_{i,k}(1-f_i)`): the
effective objective (:func:`cistheory.system.aggregation.effective_objective`) of the
participation :math:`q' = q\,(1-f)`. :func:`fault_bias` gives its scale (the factor on the
server step), its exit weights against the intended :math:`\tilde\lambda` and its within-exit
data weights against the intended :math:`m_i / M_k`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import FloatArray, as_float_array
from ..errors import CISInputError
from ..system.aggregation import effective_objective
from ..system.participation import Participation

__all__ = ["FaultBias", "failure_rates", "fault_bias"]


@dataclass(frozen=True)
class FaultBias:
    r"""The objective a run trains when node :math:`i`'s updates are lost at rate :math:`f_i`.

    Attributes
    ----------
    failure : ndarray (N,)
        :math:`f_i`.
    scale : float
        :math:`\sum_{i,k} q_{i,k}(1-f_i) w_{i,k}` (1 for the unbiased rule without faults).
    lt : ndarray (K,)
        Effective exit weights :math:`\hat\lambda_k \propto \sum_i q_{i,k}(1-f_i) w_{i,k}`.
    lt_intended : ndarray (K,)
        :math:`\tilde\lambda`.
    tv_lt : float
        :math:`\tfrac12 \lVert \hat\lambda - \tilde\lambda \rVert_1`.
    within_tv : ndarray (K,)
        Per exit, the total-variation distance between the effective data weights
        :math:`\pi_{i,k}` and the intended :math:`m_i / M_k` (over the nodes of the intended
        population, lost ones included).
    """

    failure: FloatArray
    scale: float
    lt: FloatArray
    lt_intended: FloatArray
    tv_lt: float
    within_tv: FloatArray

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "failure": self.failure.tolist(),
            "scale": float(self.scale),
            "lt": self.lt.tolist(),
            "lt_intended": self.lt_intended.tolist(),
            "tv_lt": float(self.tv_lt),
            "within_tv": self.within_tv.tolist(),
        }


def fault_bias(
    part: Participation, weights: ArrayLike, lt: ArrayLike, failure: ArrayLike
) -> FaultBias:
    r"""Effective objective of the pair weights ``weights`` when node :math:`i` is lost at
    rate :math:`f_i` (``failure``).

    .. math::
        e_{i,k} = q_{i,k} (1 - f_i) w_{i,k}, \quad \mathrm{scale} = \sum_{i,k} e_{i,k}, \quad
        \hat\lambda_k = \frac{\sum_i e_{i,k}}{\mathrm{scale}}, \quad
        \pi_{i,k} = \frac{e_{i,k}}{\sum_j e_{j,k}} .

    Examples
    --------
    Two devices train exit 1 (equal data) and a server exit 2, with the unbiased rule; one
    device always fails:

    >>> from cistheory.system.aggregation import aggregation_weights
    >>> part = Participation(q=np.array([[1.0, 0], [1.0, 0], [0, 1.0]]), data=np.ones(3))
    >>> w = aggregation_weights(part, [0.5, 0.5])
    >>> b = fault_bias(part, w, [0.5, 0.5], [0.0, 1.0, 0.0])
    >>> b.scale, b.lt.round(4).tolist(), round(b.tv_lt, 4), b.within_tv.tolist()
    (0.75, [0.3333, 0.6667], 0.1667, [0.5, 0.0])
    """
    n = part.q.shape[0]
    f = as_float_array(failure, "failure", shape=(n,))
    if ((f < 0) | (f > 1)).any():
        raise CISInputError("failure", f.tolist(), "rates must lie in [0, 1]")
    lt_a = as_float_array(lt, "lt", shape=(part.q.shape[1],))
    lost = Participation(q=part.q * (1.0 - f)[:, None], data=part.data, name=part.name)
    eff = effective_objective(lost, weights)
    mass = eff.pair.sum(axis=0)
    tv_within = 0.5 * np.abs(eff.within - part.data_fraction()).sum(axis=0)
    tv_within = np.where(mass > 0, tv_within, 1.0)  # an exit nobody trains: all weight lost
    return FaultBias(
        failure=f,
        scale=eff.scale,
        lt=eff.lt,
        lt_intended=lt_a,
        tv_lt=float(0.5 * np.abs(eff.lt - lt_a).sum()),
        within_tv=np.asarray(tv_within, dtype=np.float64),
    )


def failure_rates(
    picks: Sequence[Sequence[int]], lost: Iterable[Mapping[str, Any]], n_nodes: int
) -> FloatArray:
    r"""Observed :math:`f_i`: the share of the rounds node :math:`i` was picked in which its
    update was lost (0 for a node never picked).

    ``picks`` holds each round's exits (0 = idle); ``lost`` the fault records, each with its
    ``round`` (from 1) and ``node`` (the node's index).

    Examples
    --------
    >>> failure_rates([[1, 2], [1, 0]], [{"round": 2, "node": 0}], 2).tolist()
    [0.5, 0.0]
    """
    picked = np.zeros(n_nodes)
    for row in picks:
        picked += np.asarray(row) > 0
    failed = np.zeros(n_nodes)
    seen: set[tuple[int, int]] = set()
    for rec in lost:
        key = (int(rec["round"]), int(rec["node"]))
        if key not in seen:
            seen.add(key)
            failed[key[1]] += 1
    return np.where(picked > 0, failed / np.where(picked > 0, picked, 1), 0.0)
