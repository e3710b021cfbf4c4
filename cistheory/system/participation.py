r"""Participation: who trains which exit, the one check of ``q``, and the named policies.

In every round node :math:`i` trains exit :math:`k` with probability :math:`q_{i,k}`
(:math:`q_{i,k} = 0` for :math:`k > \kappa_i`, :math:`\sum_k q_{i,k} \le 1`) or idles
(``docs/theory.md``, Section 2). The training population of exit :math:`k` is
:math:`E_k = \{i : q_{i,k} > 0\}` with :math:`M_k = \sum_{i \in E_k} m_i`.

:func:`check_q` is the one validation of a table ``q`` in the package; it names an entry
``q[<node id>, <exit>]`` with exits counted from 1. :data:`POLICIES` maps a policy name to
the function that builds it (:func:`named_policy` looks names up there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import Axis, BoolArray, FloatArray, as_float_array, first_bad
from ..errors import CISInputError
from .tree import CIS

__all__ = [
    "P40",
    "POLICIES",
    "ROW_ATOL",
    "Participation",
    "check_q",
    "deepest_exit",
    "explicit",
    "fixed_count",
    "named_policy",
    "q_table",
    "shallower_with_probability",
]

ROW_ATOL = 1e-12
"""A row of ``q`` may sum to ``1 + ROW_ATOL`` (rounding of user-given decimals such as
0.1 + 0.2 + 0.7); nothing is normalised."""


def check_q(
    q: ArrayLike,
    *,
    shape: tuple[int, int] | None = None,
    node_ids: Sequence[str] | None = None,
    eligible: ArrayLike | None = None,
    capacity: ArrayLike | None = None,
    field: str = "q",
) -> FloatArray:
    r"""Validate a participation table :math:`q \in [0, 1]^{N \times K}` with row sums
    :math:`\le 1` (up to :data:`ROW_ATOL`).

    Parameters
    ----------
    q : array_like, shape (N, K)
    shape : (N, K), optional
        Required shape.
    node_ids : sequence of str, optional
        Node labels for messages (default: the row index).
    eligible : array_like of bool, shape (N, K), optional
        Pairs a node can host; a positive probability elsewhere is refused.
    capacity : array_like of int, shape (N,), optional
        Deepest exit of each node, named in the message about ``eligible``.
    field : str
        Name of the table in messages.

    Returns
    -------
    ndarray, shape (N, K)

    Raises
    ------
    CISInputError
        Naming the entry ``q[<node id>, <exit>]`` (exits from 1) or the row ``q[<node id>]``.

    Examples
    --------
    >>> check_q([[0.5, 0.5], [0.0, 1.0]]).tolist()
    [[0.5, 0.5], [0.0, 1.0]]
    >>> check_q([[0.7, 0.7]], node_ids=["edge"])
    Traceback (most recent call last):
    ...
    cistheory.errors.CISInputError: q[edge] = [0.7, 0.7]: row sums to 1.4 > 1
    """
    axes: tuple[Axis, Axis] = ("node", "exit")
    qa = as_float_array(q, field, ndim=2, axes=axes, labels=node_ids)
    if shape is not None and qa.shape != tuple(shape):
        raise CISInputError(field, qa.tolist(), f"expected shape {tuple(shape)}, got {qa.shape}")
    ids = list(node_ids) if node_ids is not None else [str(i) for i in range(qa.shape[0])]
    if len(ids) != qa.shape[0]:
        raise CISInputError(field, qa.shape, f"expected {len(ids)} rows (one per node)")
    first_bad(field, qa, (qa < 0) | (qa > 1), "a probability must lie in [0, 1]",
              axes=axes, labels=ids)
    rows = qa.sum(axis=1)
    over = rows > 1 + ROW_ATOL
    if over.any():
        i = int(np.argmax(over))
        raise CISInputError(
            f"{field}[{ids[i]}]", qa[i].tolist(), f"row sums to {float(rows[i])!r} > 1"
        )
    if eligible is not None:
        el = np.asarray(eligible, dtype=bool)
        beyond = (qa > 0) & ~el
        if beyond.any():
            i, k = (int(x) for x in np.argwhere(beyond)[0])
            cap = "" if capacity is None else f" up to {int(np.asarray(capacity)[i])}"
            raise CISInputError(
                f"{field}[{ids[i]}, {k + 1}]",
                float(qa[i, k]),
                f"node {ids[i]} hosts exits{cap} only",
            )
    return qa


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
    per_round: int | None = None
    """``n``: ``n`` nodes are drawn per round uniformly without replacement and ``q`` holds
    the inclusion probabilities (:func:`fixed_count`); ``None``: nodes pick independently."""

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
    qa = check_q(
        q,
        shape=(cis.n_nodes, cis.n_exits),
        node_ids=cis.node_ids,
        eligible=cis.eligible,
        capacity=cis.capacity,
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


def _p40(cis: CIS) -> Participation:
    """The reference "p40" variant: :func:`shallower_with_probability` with :data:`P40`."""
    return shallower_with_probability(cis, P40, name="p40")


POLICIES: Mapping[str, Callable[[CIS], Participation]] = {
    "deepest": deepest_exit,
    "p40": _p40,
}
"""Named participation policies: name -> function of the CIS (the one registry)."""


def named_policy(cis: CIS, name: str) -> Participation:
    """A participation policy by name, looked up in :data:`POLICIES`: ``"deepest"``
    (:func:`deepest_exit`) or ``"p40"`` (:func:`shallower_with_probability` with :data:`P40`).

    Examples
    --------
    >>> from cistheory import reference_cis
    >>> named_policy(reference_cis("80-15-5"), "p40").q[1].tolist()
    [0.4, 0.6, 0.0]
    """
    try:
        build = POLICIES[name]
    except KeyError:
        raise CISInputError(
            "participation", name, f"unknown policy; use one of {', '.join(POLICIES)}"
        ) from None
    return build(cis)


def explicit(cis: CIS, q: ArrayLike, *, name: str = "explicit") -> Participation:
    """An explicit table ``q`` of shape (N, K), validated.

    Raises
    ------
    CISInputError
        A probability outside [0, 1], a row summing above 1, or a positive probability for an
        exit beyond the node's capacity.
    """
    return _validate_q(cis, q, name)


def q_table(
    cis: CIS, table: Sequence[Sequence[float]] | Mapping[str, Sequence[float]]
) -> FloatArray:
    """A table ``q`` given as rows in node order, or as a mapping node id -> row, checked.

    A mapping must name every node and only nodes of the CIS.

    Examples
    --------
    >>> from cistheory import reference_cis
    >>> cis = reference_cis("80-15-5")
    >>> q_table(cis, {str(i): [0, 0, 1] if i == 0 else [1, 0, 0] for i in range(7)})[0].tolist()
    [0.0, 0.0, 1.0]
    """
    if isinstance(table, Mapping):
        unknown = [str(k) for k in table if str(k) not in cis.node_ids]
        if unknown:
            raise CISInputError(f"q[{unknown[0]}]", table[unknown[0]], "unknown node id")
        keyed = {str(k): v for k, v in table.items()}
        missing = [nid for nid in cis.node_ids if nid not in keyed]
        if missing:
            raise CISInputError(f"q[{missing[0]}]", None, "missing row for this node")
        rows: object = [keyed[nid] for nid in cis.node_ids]
    else:
        rows = table
    return check_q(
        rows,  # type: ignore[arg-type]
        shape=(cis.n_nodes, cis.n_exits),
        node_ids=cis.node_ids,
        eligible=cis.eligible,
        capacity=cis.capacity,
    )




def fixed_count(part: Participation, per_round: int) -> Participation:
    r"""``per_round`` of the :math:`N` nodes drawn per round without replacement, each drawn
    node then training exit :math:`k` with probability ``part.q[i, k]``.

    The reference release samples a fixed number of nodes per round. Node :math:`i` is drawn
    with probability :math:`\pi_i = n/N` and then picks by its row :math:`r_i` of
    ``part.q``, so it trains exit :math:`k` with probability

    .. math:: q'_{i,k} = \mathbb P(i \to k) = \frac{n}{N}\, r_{i,k} ,

    the table this returns. The unbiased weights :math:`\beta/q'` keep the aggregate
    unbiased (Lemma 1 uses only these marginals); the selections of different nodes are no
    longer independent, and the variance is that of Lemma 2f of ``docs/theory.md``
    (:func:`cistheory.bounds.variance_inclusion`), bounded by :math:`V(\tilde\lambda, q')`
    with every node counted as sampled. The second-generation constants (:math:`L_s`,
    :math:`V_s`) of independent picks from :math:`q'` do not hold for the draw; pass
    ``per_round`` to :func:`cistheory.bounds.expected_smoothness` and
    :func:`cistheory.bounds.variance_parts` (Lemma ES-f of ``docs/theory.md``).

    Examples
    --------
    >>> from cistheory import reference_cis
    >>> p = fixed_count(deepest_exit(reference_cis("80-15-5")), 2)
    >>> p.q[0].round(4).tolist(), p.per_round
    ([0.0, 0.0, 0.2857], 2)
    """
    n = part.q.shape[0]
    if isinstance(per_round, bool) or not isinstance(per_round, int | np.integer):
        raise CISInputError("nodes_per_round", per_round, "must be a positive integer")
    if not 1 <= per_round <= n:
        raise CISInputError("nodes_per_round", per_round, f"must lie in 1..{n} (the nodes)")
    if part.per_round is not None:
        raise CISInputError("nodes_per_round", per_round, "the participation already draws nodes")
    return Participation(
        q=part.q * (int(per_round) / n),
        data=part.data.copy(),
        name=f"{part.name}, {int(per_round)} of {n} per round",
        per_round=int(per_round),
    )
