r"""Serving evaluation of a CIS: who answers which test request, and how well.

Test requests arrive at the nodes with a positive arrival rate (the leaves in the
reference trees), each node's share proportional to its rate :math:`a_i` (or given
explicitly). From the leaves up, node :math:`i` finds the requests that reach it
(its own arrivals plus what its children forward), answers the ones it finds easiest,
that is with the lowest normalised softmax entropy at its deepest exit :math:`\kappa_i`,

.. math:: \bar H_i(x) = -\frac{1}{\log C} \sum_{c=1}^{C} p_{\kappa_i, c}(x) \log p_{\kappa_i, c}(x),

up to the fraction :math:`s_i / (a_i + \sum_{c} d_c)` of its queue given by the CIS's served
rates (``docs/theory.md``, Section 1 and Section 7), and forwards the rest to its parent.
The confidence can also be the maximum softmax probability :math:`\max_c p_{\kappa_i,c}(x)`
(``score="max-softmax"``, highest first), the reference release's other choice.
The root answers what its served rate allows; the remainder is dropped load and is
reported. System accuracy is the served-rate-weighted accuracy, i.e. the accuracy over
all answered requests.

Every node hosts the same shared parameters cut at its exit, so the per-exit outputs of
every test request are computed once, as an array of shape ``(N_test, K, C)``, and the
routing is vectorised level by level (one stable sort by ``(node, entropy)`` per level).
This module needs only numpy; torch tensors are accepted and converted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._arrays import BoolArray, FloatArray, IntArray
from ..errors import CISInputError
from ..system.tree import CIS

__all__ = [
    "SCORES",
    "CISEvaluation",
    "assign_arrivals",
    "difficulty",
    "evaluate_cis",
    "normalised_entropy",
]

SCORES: tuple[str, ...] = ("entropy", "max-softmax")
"""How a node ranks its requests, easiest first: lowest normalised entropy, or highest
maximum softmax probability."""


# Rows of given probabilities must sum to one within this (float32 softmax outputs carry
# about 1e-6 relative rounding per class; 1e-4 leaves room for C up to ~100 classes).
_PROB_ATOL = 1e-4


def _to_numpy(x: Any, field: str) -> NDArray[Any]:
    if hasattr(x, "detach"):  # a torch tensor; avoid importing torch here
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise CISInputError(field, type(x).__name__, f"not an array ({exc})") from None


def normalised_entropy(
    outputs: ArrayLike, *, kind: Literal["logits", "probs"] = "logits"
) -> FloatArray:
    r"""Softmax entropy divided by :math:`\log C`, in :math:`[0, 1]`, over the last axis.

    .. math:: \bar H(p) = -\frac{1}{\log C}\sum_{c} p_c \log p_c,
              \qquad p = \mathrm{softmax}(z) \text{ for logits } z.

    Parameters
    ----------
    outputs : array (..., C)
        Logits (``kind="logits"``) or probabilities (``kind="probs"``), ``C >= 2``.
    kind : {"logits", "probs"}

    Examples
    --------
    >>> normalised_entropy([[0.0, 0.0], [50.0, 0.0]]).round(6).tolist()
    [1.0, 0.0]
    """
    z = np.asarray(_to_numpy(outputs, "outputs"), dtype=np.float64)
    if z.ndim < 1 or z.shape[-1] < 2:
        raise CISInputError("outputs", z.shape, "need at least 2 classes on the last axis")
    if not np.isfinite(z).all():
        raise CISInputError("outputs", "non-finite", "logits/probabilities must be finite")
    c = z.shape[-1]
    if kind == "logits":
        zs = z - z.max(axis=-1, keepdims=True)
        logp = zs - np.log(np.exp(zs).sum(axis=-1, keepdims=True))
        p = np.exp(logp)
        h = -(p * logp).sum(axis=-1)
    elif kind == "probs":
        if (z < 0).any():
            raise CISInputError("outputs", float(z.min()), "probabilities must be >= 0")
        rows = z.sum(axis=-1)
        if np.abs(rows - 1.0).max() > _PROB_ATOL:
            raise CISInputError(
                "outputs", float(rows.flat[np.argmax(np.abs(rows - 1.0))]),
                "probability rows must sum to 1",
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -np.where(z > 0, z * np.log(np.where(z > 0, z, 1.0)), 0.0).sum(axis=-1)
    else:
        raise CISInputError("kind", kind, "use 'logits' or 'probs'")
    return np.clip(h / np.log(c), 0.0, 1.0)


def _softmax(z: FloatArray, kind: str) -> FloatArray:
    if kind == "probs":
        return z
    zs = z - z.max(axis=-1, keepdims=True)
    e = np.exp(zs)
    return np.asarray(e / e.sum(axis=-1, keepdims=True), dtype=np.float64)


def difficulty(
    outputs: ArrayLike,
    *,
    kind: Literal["logits", "probs"] = "logits",
    score: str = "entropy",
) -> FloatArray:
    r"""How hard each request looks to each exit, lower = easier, over the last axis.

    ``score="entropy"``: the normalised entropy :math:`\bar H(p)`
    (:func:`normalised_entropy`); ``score="max-softmax"``: :math:`-\max_c p_c`.

    Examples
    --------
    >>> difficulty([[0.0, 0.0], [50.0, 0.0]], score="max-softmax").tolist()
    [-0.5, -1.0]
    """
    if score == "entropy":
        return normalised_entropy(outputs, kind=kind)
    if score != "max-softmax":
        raise CISInputError("score", score, f"use one of {', '.join(SCORES)}")
    normalised_entropy(outputs, kind=kind)  # the same checks of the outputs
    z = np.asarray(_to_numpy(outputs, "outputs"), dtype=np.float64)
    return np.asarray(-_softmax(z, kind).max(axis=-1), dtype=np.float64)


def _largest_remainder(total: int, weights: FloatArray) -> IntArray:
    """Integer counts summing to ``total``, proportional to ``weights`` (Hamilton rounding)."""
    exact = total * weights / weights.sum()
    base = np.floor(exact).astype(np.int64)
    short = total - int(base.sum())
    if short > 0:
        order = np.argsort(-(exact - base), kind="stable")
        base[order[:short]] += 1
    return base


def assign_arrivals(
    cis: CIS, n_requests: int, *, rng: np.random.Generator | None = None
) -> IntArray:
    r"""Arrival node of each of ``n_requests`` test requests, proportional to :math:`a_i`.

    Node :math:`i` receives :math:`\mathrm{round}(n\,a_i/\sum_j a_j)` requests (largest
    remainder rounding, so the counts sum to ``n_requests``). Without ``rng`` the requests
    are dealt in order (node of lowest index first); with ``rng`` they are dealt in a
    random order.

    Examples
    --------
    >>> cis = CIS.build(parent=[-1, 0, 0], capacity=[2, 1, 1], arrival=[0, 3, 1],
    ...                 forward=[0, 1, 0])
    >>> assign_arrivals(cis, 4).tolist()
    [1, 1, 1, 2]
    """
    n = int(n_requests)
    if n < 1:
        raise CISInputError("n_requests", n_requests, "must be >= 1")
    counts = _largest_remainder(n, cis.arrival)
    nodes = np.repeat(np.arange(cis.n_nodes, dtype=np.int64), counts)
    if rng is not None:
        nodes = nodes[rng.permutation(n)]
    return nodes


@dataclass(frozen=True)
class CISEvaluation:
    r"""Outcome of serving a test set through a CIS (see :func:`evaluate_cis`).

    Attributes
    ----------
    accuracy : float
        System accuracy: correct answers over answered requests (the served-rate-weighted
        accuracy :math:`\sum_i \hat s_i\,\mathrm{acc}_i / \sum_i \hat s_i`).
    arrival_node : ndarray of int, shape (N_test,)
        Node where each request arrived.
    served_by : ndarray of int, shape (N_test,)
        Node that answered each request, ``-1`` if dropped at the root.
    served_exit : ndarray of int, shape (N_test,)
        Exit (1-based) that answered it, ``0`` if dropped.
    correct : ndarray of bool, shape (N_test,)
        Whether the answer was right (``False`` for dropped requests).
    node_served : ndarray of int, shape (N,)
        Requests answered by each node.
    node_correct : ndarray of int, shape (N,)
        Correct answers per node.
    exit_served, exit_correct : ndarray of int, shape (K,)
        The same per exit.
    exit_accuracy : ndarray, shape (K,)
        Stand-alone accuracy of each exit on the whole test set (no routing).
    shares : ndarray, shape (K,)
        Realised serving shares: ``exit_served / exit_served.sum()``; equal to ``cis.lam``
        up to the rounding of request counts.
    dropped : int
        Requests not answered (capacity-limited root).
    node_loss_sum, exit_loss_sum : ndarray, shape (N,) and (K,), or None
        Sum of the cross-entropy losses of the answers each node (exit) gave, at the exit
        that answered (from logits only; ``None`` for probabilities, whose loss is infinite
        where a probability is 0).
    score : str
        The difficulty used for the routing (:data:`SCORES`).
    """

    accuracy: float
    arrival_node: IntArray
    served_by: IntArray
    served_exit: IntArray
    correct: BoolArray
    node_served: IntArray
    node_correct: IntArray
    exit_served: IntArray
    exit_correct: IntArray
    exit_accuracy: FloatArray
    shares: FloatArray
    dropped: int
    node_loss_sum: FloatArray | None = None
    exit_loss_sum: FloatArray | None = None
    score: str = "entropy"

    @property
    def per_node_loss(self) -> dict[int, float]:
        """Mean loss of each node on the requests it answered (nodes that answered some;
        empty without logits)."""
        if self.node_loss_sum is None:
            return {}
        return {
            i: float(self.node_loss_sum[i] / self.node_served[i])
            for i in range(self.node_served.size)
            if self.node_served[i] > 0
        }

    @property
    def per_exit_loss(self) -> dict[int, float]:
        """Mean loss of each exit on the requests it answered (exits from 1)."""
        if self.exit_loss_sum is None:
            return {}
        return {
            k + 1: float(self.exit_loss_sum[k] / self.exit_served[k])
            for k in range(self.exit_served.size)
            if self.exit_served[k] > 0
        }

    @property
    def per_exit_accuracy(self) -> dict[int, float]:
        """Accuracy of each exit on the requests it answered (exits that answered some)."""
        return {
            k + 1: float(self.exit_correct[k] / self.exit_served[k])
            for k in range(self.exit_served.size)
            if self.exit_served[k] > 0
        }

    @property
    def per_node_accuracy(self) -> dict[int, float]:
        """Accuracy of each node on the requests it answered (nodes that answered some)."""
        return {
            i: float(self.node_correct[i] / self.node_served[i])
            for i in range(self.node_served.size)
            if self.node_served[i] > 0
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-request arrays)."""
        return {
            "accuracy": self.accuracy,
            "shares": self.shares.tolist(),
            "exit_served": self.exit_served.tolist(),
            "exit_accuracy": self.exit_accuracy.tolist(),
            "per_exit_accuracy": {str(k): v for k, v in self.per_exit_accuracy.items()},
            "per_node_accuracy": {str(i): v for i, v in self.per_node_accuracy.items()},
            "per_exit_loss": {str(k): v for k, v in self.per_exit_loss.items()},
            "per_node_loss": {str(i): v for i, v in self.per_node_loss.items()},
            "node_served": self.node_served.tolist(),
            "dropped": self.dropped,
            "score": self.score,
        }


def evaluate_cis(
    cis: CIS,
    exit_outputs: ArrayLike,
    labels: ArrayLike,
    *,
    kind: Literal["logits", "probs"] = "logits",
    arrival_node: ArrayLike | None = None,
    rng: np.random.Generator | None = None,
    score: str = "entropy",
) -> CISEvaluation:
    r"""Serve a test set through a CIS, easiest requests first, and score the answers.

    Requests reach node :math:`i` (its arrivals plus its children's forwarded requests,
    :math:`n_i` of them); node :math:`i` answers the
    :math:`\hat s_i = \mathrm{round}(n_i\, s_i / (a_i + \sum_c d_c))` requests of lowest
    normalised entropy :math:`\bar H` at exit :math:`\kappa_i` (ties by request index) and
    forwards the rest; this is the evaluation of ``docs/theory.md``, Section 7. System
    accuracy is

    .. math:: \mathrm{acc} = \frac{\sum_i \hat s_i\,\mathrm{acc}_i}{\sum_i \hat s_i},

    and the realised shares :math:`\hat\lambda_k = \sum_{\kappa_i = k}\hat s_i/\sum_i\hat s_i`
    equal :math:`\lambda_k` up to the rounding of request counts.

    Parameters
    ----------
    cis : CIS
    exit_outputs : array (N_test, K, C)
        Logits (or probabilities, ``kind="probs"``) of every exit for every test request,
        from the global model.
    labels : array of int, shape (N_test,)
    kind : {"logits", "probs"}
    arrival_node : array of int, shape (N_test,), optional
        Node where each request arrives; default :func:`assign_arrivals`.
    rng : numpy Generator, optional
        Shuffles the default assignment (ignored with ``arrival_node``).
    score : {"entropy", "max-softmax"}
        Easiest first by lowest normalised entropy (default) or by highest maximum softmax
        probability (:func:`difficulty`).

    Raises
    ------
    CISInputError
        Shapes that disagree, fewer exits than the CIS uses, labels outside ``0..C-1``,
        non-finite outputs, an arrival node without a positive arrival rate.

    Examples
    --------
    >>> import numpy as np
    >>> cis = CIS.build(parent=[-1, 0], capacity=[2, 1], arrival=[0, 2], forward=[0, 1])
    >>> out = np.zeros((2, 2, 2)); out[0, :, 0] = 9.0   # request 0 is easy and of class 0
    >>> ev = evaluate_cis(cis, out, [0, 1])
    >>> ev.served_by.tolist(), ev.shares.tolist()
    ([1, 0], [0.5, 0.5])
    """
    z, y = _check_outputs(cis, exit_outputs, labels)
    n_test = z.shape[0]
    ent = difficulty(z, kind=kind, score=score)  # (N_test, K)
    pred_correct = np.asarray(z, dtype=np.float64).argmax(axis=-1) == y[:, None]  # (N_test, K)
    if arrival_node is None:
        where = assign_arrivals(cis, n_test, rng=rng)
    else:
        where = _check_arrivals(cis, arrival_node, n_test)
    served_by = _route(cis, where, ent)
    ev = _score(cis, where.copy(), served_by, pred_correct)
    losses = _losses(cis, z, y, ev) if kind == "logits" else (None, None)
    return replace(ev, node_loss_sum=losses[0], exit_loss_sum=losses[1], score=score)


def _losses(
    cis: CIS, z: NDArray[Any], y: IntArray, ev: CISEvaluation
) -> tuple[FloatArray, FloatArray]:
    """Cross-entropy sums of the answers per node and per exit (from logits)."""
    zz = np.asarray(z, dtype=np.float64)
    idx = np.flatnonzero(ev.served_by >= 0)
    k = ev.served_exit[idx] - 1
    logits = zz[idx, k]  # (answered, C)
    m = logits.max(axis=-1)
    lse = m + np.log(np.exp(logits - m[:, None]).sum(axis=-1))
    loss = lse - logits[np.arange(idx.size), y[idx]]
    node = np.bincount(ev.served_by[idx], weights=loss, minlength=cis.n_nodes)
    exit_ = np.bincount(k, weights=loss, minlength=cis.n_exits)
    return node.astype(np.float64), exit_.astype(np.float64)


def _check_outputs(
    cis: CIS, exit_outputs: ArrayLike, labels: ArrayLike
) -> tuple[NDArray[Any], IntArray]:
    """The outputs (N_test, K, C) and the integer labels, checked against each other."""
    z = _to_numpy(exit_outputs, "exit_outputs")
    if z.ndim != 3:
        raise CISInputError("exit_outputs", z.shape, "expected shape (N_test, K, C)")
    n_test, k_out, n_cls = z.shape
    if n_test < 1:
        raise CISInputError("exit_outputs", z.shape, "need at least one test request")
    if k_out < cis.n_exits:
        raise CISInputError(
            "exit_outputs", z.shape, f"the CIS uses {cis.n_exits} exits; got outputs of {k_out}"
        )
    y = _to_numpy(labels, "labels")
    if y.shape != (n_test,) or not np.issubdtype(y.dtype, np.integer):
        raise CISInputError("labels", y.shape, f"expected {n_test} integer labels")
    y = y.astype(np.int64)
    if ((y < 0) | (y >= n_cls)).any():
        bad = int(y[(y < 0) | (y >= n_cls)][0])
        raise CISInputError("labels", bad, f"a label must lie in 0..{n_cls - 1}")
    return z, y


def _check_arrivals(cis: CIS, arrival_node: ArrayLike, n_test: int) -> IntArray:
    """Given arrival nodes: one known node with a positive arrival rate per request."""
    where_f = _to_numpy(arrival_node, "arrival_node")
    if where_f.shape != (n_test,) or not np.issubdtype(where_f.dtype, np.integer):
        raise CISInputError("arrival_node", where_f.shape, f"expected {n_test} node indices")
    where = where_f.astype(np.int64)
    out_of_range = (where < 0) | (where >= cis.n_nodes)
    if out_of_range.any():
        raise CISInputError("arrival_node", int(where[out_of_range][0]), "unknown node index")
    no_rate = cis.arrival[where] <= 0
    if no_rate.any():
        i = int(where[no_rate][0])
        raise CISInputError(
            f"arrival_node[{int(np.argmax(no_rate))}]",
            cis.node_ids[i],
            "requests can only arrive at a node with a positive arrival rate",
        )
    return where


def _route(cis: CIS, where: IntArray, ent: FloatArray) -> IntArray:
    """The node answering each request (-1: dropped), leaves first, easiest first.

    Level by level from the deepest: at each node, its queue sorted by entropy at its exit
    (ties by request index); the first ``round(n_i s_i / inflow_i)`` are answered, the rest
    go to the parent (the root's parent is -1: dropped).
    """
    serving = cis.serving
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(serving.inflow > 0, serving.served / serving.inflow, 0.0)
    frac = np.clip(frac, 0.0, 1.0)  # served <= inflow by the flow balance; rounding residue only

    depth = cis.depth
    cap = cis.capacity
    served_by = np.full(where.size, -1, dtype=np.int64)
    # `at` = node currently holding each request, -1 once answered
    at = where.copy()
    for d in range(int(depth.max()), -1, -1):
        live = np.flatnonzero((at >= 0) & (depth[np.maximum(at, 0)] == d))
        if live.size == 0:
            continue
        node = at[live]
        key = ent[live, cap[node] - 1]
        order = np.lexsort((live, key, node))  # by node, then entropy, then request index
        live, node = live[order], node[order]
        counts = np.bincount(node, minlength=cis.n_nodes)
        start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.arange(live.size) - start[node]
        n_serve = np.rint(counts * frac).astype(np.int64)
        answer = rank < n_serve[node]
        served_by[live[answer]] = node[answer]
        at[live[answer]] = -1
        fwd = live[~answer]
        at[fwd] = cis.parent[node[~answer]]  # the root's parent is -1: dropped
    return served_by


def _score(
    cis: CIS, arrival: IntArray, served_by: IntArray, pred_correct: BoolArray
) -> CISEvaluation:
    """Counts and accuracies of the answers (``pred_correct``: (N_test, K) per exit)."""
    n_test = served_by.size
    cap = cis.capacity
    answered = served_by >= 0
    served_exit = np.where(answered, cap[np.maximum(served_by, 0)], 0).astype(np.int64)
    correct = np.zeros(n_test, dtype=bool)
    idx = np.flatnonzero(answered)
    correct[idx] = pred_correct[idx, served_exit[idx] - 1]
    node_served = np.bincount(served_by[idx], minlength=cis.n_nodes).astype(np.int64)
    node_correct = np.bincount(
        served_by[idx], weights=correct[idx], minlength=cis.n_nodes
    ).astype(np.int64)
    exit_served = np.bincount(served_exit[idx] - 1, minlength=cis.n_exits).astype(np.int64)
    exit_correct = np.bincount(
        served_exit[idx] - 1, weights=correct[idx], minlength=cis.n_exits
    ).astype(np.int64)
    total = int(exit_served.sum())
    if total == 0:
        raise CISInputError("cis", cis.name or "cis", "no test request was answered")
    return CISEvaluation(
        accuracy=float(correct.sum() / total),
        arrival_node=arrival,
        served_by=served_by,
        served_exit=served_exit,
        correct=correct,
        node_served=node_served,
        node_correct=node_correct,
        exit_served=exit_served,
        exit_correct=exit_correct,
        exit_accuracy=pred_correct[:, : cis.n_exits].mean(axis=0).astype(np.float64),
        shares=exit_served / total,
        dropped=int(n_test - total),
    )
