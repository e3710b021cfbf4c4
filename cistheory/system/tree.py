r"""The Collaborative Inference System: tree, capacities, rates and serving shares.

A CIS is a rooted tree of ``N`` nodes. Node :math:`i` hosts the model cut after its
deepest exit :math:`\kappa_i \in \{1, \dots, K\}`, receives inference requests at rate
:math:`a_i \ge 0`, and holds :math:`m_i` training samples. Requests are either described
by forwarding rates :math:`d_i` (the rate node :math:`i` passes to its parent) or by
service capacities :math:`c_i`.

With forwarding rates the served rate is (``docs/theory.md``, Section 1)

.. math:: s_i = a_i + \sum_{c \in \mathrm{children}(i)} d_c - d_i \ge 0 ,

and with service capacities, processed from the leaves up,
:math:`s_i = \min(c_i, a_i + \sum_c d_c)` and :math:`d_i` is the remainder. A remainder at
the root is *dropped load*. The serving share of exit :math:`k` is

.. math:: \lambda_k = \frac{\sum_{i : \kappa_i = k} s_i}{\sum_j s_j} .

All computations are vectorised over nodes: a tree of a million nodes is handled with a
handful of numpy passes (pointer doubling for depths, ``bincount`` for child sums); capacity
mode, whose maxima do not add up, runs a doubling scan along heavy paths in ``O(N log N)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import BoolArray, FloatArray, IntArray, as_float_array
from ..errors import CISInputError

__all__ = ["CIS", "Serving", "node_depths", "serve"]

# Relative tolerance for the flow balance s_i >= 0 (rounding in user-given decimal rates).
_FLOW_RTOL = 1e-9


@dataclass(frozen=True)
class Serving:
    r"""Result of routing the requests of a CIS.

    Attributes
    ----------
    served : ndarray, shape (N,)
        Served rate :math:`s_i` per node.
    forwarded : ndarray, shape (N,)
        Forwarded rate :math:`d_i` per node (the root's is the dropped load).
    inflow : ndarray, shape (N,)
        :math:`a_i + \sum_c d_c`, the rate that reaches node :math:`i`.
    dropped : float
        Rate that reaches the root and is not served (capacity mode only).
    per_exit : ndarray, shape (K,)
        :math:`\sum_{i : \kappa_i = k} s_i`.
    lam : ndarray, shape (K,)
        Serving shares :math:`\lambda_k` (shallowest exit first), on the simplex.
    """

    served: FloatArray
    forwarded: FloatArray
    inflow: FloatArray
    dropped: float
    per_exit: FloatArray
    lam: FloatArray


def node_depths(parent: ArrayLike, labels: Sequence[str] | None = None) -> IntArray:
    """Depth of every node of a rooted tree given by parent indices (root has parent -1).

    Uses pointer doubling: ``O(N log depth)`` vectorised work, no recursion.

    Raises
    ------
    CISInputError
        If there is not exactly one root, a parent index is out of range, or the parent
        links contain a cycle.

    Examples
    --------
    >>> node_depths([-1, 0, 0, 1]).tolist()
    [0, 1, 1, 2]
    """
    par = np.asarray(parent, dtype=np.int64)
    n = par.size
    lab = list(labels) if labels is not None else [str(i) for i in range(n)]
    if n == 0:
        raise CISInputError("nodes", [], "a CIS needs at least one node")
    bad = (par < -1) | (par >= n)
    if bad.any():
        i = int(np.argmax(bad))
        raise CISInputError(f"parent[{lab[i]}]", int(par[i]), "unknown node index")
    roots = np.flatnonzero(par == -1)
    if roots.size == 0:
        raise CISInputError("parent", "no root", "the tree has no root (every node has a parent)")
    if roots.size > 1:
        raise CISInputError(
            "parent", [lab[int(r)] for r in roots[:5]], f"the tree has {roots.size} roots; need 1"
        )
    selfloop = par == np.arange(n)
    if selfloop.any():
        i = int(np.argmax(selfloop))
        raise CISInputError(f"parent[{lab[i]}]", lab[i], "a node cannot be its own parent")
    depth = (par >= 0).astype(np.int64)
    anc = par.copy()
    for _ in range(int(np.ceil(np.log2(max(n, 2)))) + 2):
        live = anc >= 0
        if not live.any():
            break
        idx = anc[live]
        depth[live] += depth[idx]
        anc[live] = anc[idx]
    if (anc >= 0).any():
        i = int(np.argmax(anc >= 0))
        raise CISInputError(f"parent[{lab[i]}]", lab[int(par[i])], "the parent links form a cycle")
    return depth


def serve(
    parent: IntArray,
    arrival: FloatArray,
    capacity: IntArray,
    n_exits: int,
    *,
    forward: FloatArray | None = None,
    service: FloatArray | None = None,
    depth: IntArray | None = None,
    labels: Sequence[str] | None = None,
) -> Serving:
    """Route requests through the tree and compute served rates and serving shares.

    Exactly one of ``forward`` (forwarding rates :math:`d_i`) and ``service`` (service
    capacities :math:`c_i`, ``inf`` allowed) must be given. Arrays are assumed validated
    (finite, non-negative); flow balance is checked here.

    Raises
    ------
    CISInputError
        If a node forwards more than it receives, the root forwards a positive rate, or no
        request is served at all.
    """
    n = parent.size
    lab = list(labels) if labels is not None else [str(i) for i in range(n)]
    nonroot = parent >= 0
    if (forward is None) == (service is None):
        raise CISInputError("rates", None, "give exactly one of forwarding rates or capacities")
    dropped = 0.0
    if forward is not None:
        child_sum = np.bincount(parent[nonroot], weights=forward[nonroot], minlength=n)
        inflow = arrival + child_sum
        served = inflow - forward
        tol = _FLOW_RTOL * np.maximum(inflow, 1.0)
        bad = served < -tol
        if bad.any():
            i = int(np.argmax(bad))
            raise CISInputError(
                f"forward[{lab[i]}]",
                float(forward[i]),
                f"node {lab[i]} forwards more than it receives ({float(inflow[i])!r})",
            )
        root = int(np.flatnonzero(~nonroot)[0])
        if forward[root] > 0:
            raise CISInputError(
                f"forward[{lab[root]}]", float(forward[root]), "the root forwards nothing; use 0"
            )
        served = np.maximum(served, 0.0)  # only rounding residue below tol reaches here
        fwd = forward.copy()
    else:
        assert service is not None
        if depth is None:
            depth = node_depths(parent, lab)
        served, fwd, inflow = _route_capacities(parent, arrival, service, depth)
        root = int(np.flatnonzero(~nonroot)[0])
        dropped = float(fwd[root])
    per_exit = np.bincount(capacity - 1, weights=served, minlength=n_exits).astype(np.float64)
    total = float(per_exit.sum())
    if not total > 0:
        raise CISInputError(
            "arrival", float(arrival.sum()), "no request is served: total rate is 0"
        )
    return Serving(
        served=served,
        forwarded=fwd,
        inflow=inflow,
        dropped=dropped,
        per_exit=per_exit,
        lam=per_exit / total,
    )



def _doubling_rounds(n: int) -> int:
    """Rounds of pointer doubling that reach the root from any node of an ``n``-node tree."""
    return int(np.ceil(np.log2(max(n, 2)))) + 2


def _subtree_sizes(parent: IntArray) -> FloatArray:
    r"""Number of nodes in each node's subtree, by pointer doubling: ``O(N log depth)``.

    With :math:`g_j(v)` the number of descendants of :math:`v` at distance below :math:`2^j`
    (itself included) and :math:`a_j` the :math:`2^j`-th ancestor,
    :math:`g_{j+1}(v) = g_j(v) + \sum_{w : a_j(w) = v} g_j(w)`.
    """
    n = parent.size
    size = np.ones(n)
    anc = parent.copy()
    live = np.flatnonzero(anc >= 0)  # nodes whose 2^j-th ancestor exists
    for _ in range(_doubling_rounds(n)):
        if live.size == 0:
            break
        up = anc[live]
        size = size + np.bincount(up, weights=size[live], minlength=n)
        anc[live] = anc[up]
        live = live[anc[live] >= 0]
    return size


def _heavy_paths(parent: IntArray) -> tuple[IntArray, IntArray]:
    """Heavy-path decomposition: each node's path head and its number of light edges above.

    A node's heavy child is the child with the largest subtree (the smallest index among
    ties); every other child starts a new path. A root path crosses at most ``log2 N`` light
    edges.
    """
    n = parent.size
    nonroot = np.flatnonzero(parent >= 0)
    size = _subtree_sizes(parent).astype(np.int64)
    # children grouped by parent, largest subtree first; a stable sort keeps ties in index order
    key = parent[nonroot] * (n + 1) + (n - size[nonroot])
    order = nonroot[np.argsort(key, kind="stable")]
    first = np.ones(order.size, dtype=bool)
    first[1:] = parent[order[1:]] != parent[order[:-1]]
    heavy = np.zeros(n, dtype=bool)
    heavy[order[first]] = True
    head = np.where(heavy, parent, np.arange(n))
    light = ((parent >= 0) & ~heavy).astype(np.int64)
    anc = parent.copy()
    live = np.flatnonzero(anc >= 0)
    settled = False
    for _ in range(_doubling_rounds(n)):
        if not settled:
            nxt = head[head]
            settled = bool(np.array_equal(nxt, head))
            head = nxt
        if live.size:
            up = anc[live]
            light[live] += light[up]
            anc[live] = anc[up]
            live = live[anc[live] >= 0]
        elif settled:
            break
    return head, light


LEVEL_DEPTH_PER_LOG2 = 8
"""A tree at most ``max(32, 8 log2 N)`` deep is routed level by level (one ``bincount`` pass
per level: ``O(N log N)`` at that depth, and quicker than the scan, e.g. 0.1 s against
0.6 s for 10^6 nodes in 65 levels); a deeper one by the heavy-path scan, ``O(N log N)``
whatever its depth."""


def _route_by_level(
    parent: IntArray, arrival: FloatArray, service: FloatArray, depth: IntArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Capacity mode one depth level at a time, deepest first: ``O(N (depth + 1))``."""
    n = parent.size
    order = np.argsort(-depth, kind="stable")
    inflow = arrival.astype(np.float64).copy()
    served = np.zeros(n)
    fwd = np.zeros(n)
    for nodes in np.split(order, np.flatnonzero(np.diff(depth[order])) + 1):
        s = np.minimum(service[nodes], inflow[nodes])
        served[nodes] = s
        fwd[nodes] = inflow[nodes] - s
        ch = nodes[parent[nodes] >= 0]
        if ch.size:
            inflow += np.bincount(parent[ch], weights=fwd[ch], minlength=n)
    return served, fwd, inflow


def _route_capacities(
    parent: IntArray, arrival: FloatArray, service: FloatArray, depth: IntArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Served, forwarded and incoming rates in capacity mode, in ``O(N log N)``: level by
    level for shallow trees (:data:`LEVEL_DEPTH_PER_LOG2`), else :func:`_route_heavy_paths`."""
    n = parent.size
    if int(depth.max()) <= max(32.0, LEVEL_DEPTH_PER_LOG2 * np.log2(max(n, 2))):
        return _route_by_level(parent, arrival, service, depth)
    return _route_heavy_paths(parent, arrival, service, depth)


def _route_heavy_paths(
    parent: IntArray, arrival: FloatArray, service: FloatArray, depth: IntArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Served, forwarded and incoming rates in capacity mode, in ``O(N log N)``.

    The forwarded rate is :math:`d_i = \max(0,\ a_i + \sum_c d_c - c_i)`. Along a heavy path
    (bottom first) each node applies :math:`y \mapsto \max(l, y + b)` to the rate coming from
    below, with :math:`l = 0` and :math:`b = a_i + (\text{light children's } d) - c_i`; such
    maps compose into maps of the same form,
    :math:`\max(l_2, \max(l_1, y + b_1) + b_2) = \max(\max(l_2, l_1 + b_2),\ y + b_1 + b_2)`,
    so a doubling scan gives every prefix. Paths are done deepest light level first (at most
    ``log2 N`` levels), so a path's light children are known when it is scanned.
    """
    n = parent.size
    head, light = _heavy_paths(parent)
    below = depth - depth[head]
    # light level deepest first, then path by path, each from its bottom up: one integer key
    span = (int(light.max()) + 1) * n * (int(below.max()) + 1)
    if span < 2**62:
        rank = ((int(light.max()) - light) * n + head) * (int(below.max()) + 1) + (
            int(below.max()) - below
        )
        order = np.argsort(rank, kind="stable")
    else:  # pragma: no cover - more than about 6e8 nodes
        order = np.lexsort((-below, head, -light))
    light_in = np.zeros(n)
    d = np.zeros(n)
    for batch in np.split(order, np.flatnonzero(np.diff(light[order])) + 1):
        hb = head[batch]
        start = np.ones(batch.size, dtype=bool)
        start[1:] = hb[1:] != hb[:-1]
        pos = np.arange(batch.size)
        pos = pos - np.maximum.accumulate(np.where(start, pos, 0))
        b = arrival[batch] + light_in[batch] - service[batch]
        lo = np.zeros(batch.size)
        step = 1
        while step <= int(pos.max()):
            j = np.flatnonzero(pos >= step)
            lo[j], b[j] = np.maximum(lo[j], lo[j - step] + b[j]), b[j] + b[j - step]
            step *= 2
        d[batch] = np.maximum(lo, b)
        top = batch[np.append(start[1:], True)]
        top = top[parent[top] >= 0]
        light_in += np.bincount(parent[top], weights=d[top], minlength=n)
    nonroot = parent >= 0
    inflow = arrival + np.bincount(parent[nonroot], weights=d[nonroot], minlength=n)
    served = np.minimum(service, inflow)
    return served, inflow - served, inflow


def _parents_and_ids(
    parent: ArrayLike, node_ids: Sequence[str] | None
) -> tuple[IntArray, tuple[str, ...]]:
    """Parent indices as integers, and distinct node labels (default: the indices)."""
    par = np.asarray(parent)
    if par.ndim != 1 or not np.issubdtype(par.dtype, np.integer):
        try:
            par_i = np.asarray(par, dtype=np.int64)
        except (TypeError, ValueError, OverflowError):
            raise CISInputError("parent", parent, "must be integer node indices") from None
        if par_i.ndim != 1 or not np.array_equal(par_i, par):
            raise CISInputError("parent", parent, "must be a 1-d array of integer indices")
        par = par_i
    par = par.astype(np.int64)
    n = par.size
    ids = tuple(str(x) for x in node_ids) if node_ids is not None else tuple(map(str, range(n)))
    if len(ids) != n:
        raise CISInputError("node_ids", len(ids), f"expected {n} labels")
    if len(set(ids)) != n:
        seen: set[str] = set()
        dup = next(x for x in ids if x in seen or seen.add(x))  # type: ignore[func-returns-value]
        raise CISInputError("node_ids", dup, "duplicate node id")
    return par, ids


def _capacities(
    capacity: ArrayLike, n_exits: int | None, ids: Sequence[str]
) -> tuple[IntArray, int]:
    """Integer capacities in ``1..K`` and the number of exits ``K``."""
    n = len(ids)
    cap_f = as_float_array(capacity, "capacity", shape=(n,), labels=ids)
    if not np.array_equal(cap_f, np.round(cap_f)):
        i = int(np.argmax(cap_f != np.round(cap_f)))
        raise CISInputError(f"capacity[{ids[i]}]", cap_f[i].item(), "must be an integer")
    cap = cap_f.astype(np.int64)
    k_max = int(cap.max()) if n_exits is None else int(n_exits)
    if k_max < 1:
        raise CISInputError("n_exits", k_max, "must be >= 1")
    bad = (cap < 1) | (cap > k_max)
    if bad.any():
        i = int(np.argmax(bad))
        raise CISInputError(f"capacity[{ids[i]}]", int(cap[i]), f"must be an exit in 1..{k_max}")
    return cap, k_max


@dataclass(frozen=True, eq=False)
class CIS:
    r"""A Collaborative Inference System.

    Build one with :meth:`CIS.build` (validates everything) or load a spec file with
    :func:`cistheory.load_spec`. Nodes are indexed ``0..N-1``; ``node_ids`` keeps the
    user's labels for messages and output.

    Attributes
    ----------
    node_ids : tuple of str
        User labels of the nodes.
    parent : ndarray of int, shape (N,)
        Parent index of each node, ``-1`` for the root.
    capacity : ndarray of int, shape (N,)
        Deepest exit :math:`\kappa_i` hosted by each node, 1-based.
    arrival : ndarray, shape (N,)
        Arrival rates :math:`a_i`.
    forward : ndarray or None
        Forwarding rates :math:`d_i` (forwarding mode).
    service : ndarray or None
        Service capacities :math:`c_i` (capacity mode; ``inf`` means unlimited).
    data : ndarray, shape (N,)
        Training samples :math:`m_i`; all ones when the spec gives none.
    data_given : bool
        Whether the spec gave data sizes (if not, every node counts as holding equal data).
    n_exits : int
        Number of exits :math:`K` of the full model.
    exit_flops : ndarray or None
        Relative compute of each exit (FLOPs of the model cut at exit :math:`k` over the full
        model's), used by the FLOPs-proportional rule and compute budgets.
    name : str
        A label for reports.

    Examples
    --------
    >>> cis = CIS.build(parent=[-1, 0, 0], capacity=[2, 1, 1], arrival=[0, 1, 1],
    ...                 forward=[0, 0.5, 0.5])
    >>> cis.lam.tolist()
    [0.5, 0.5]
    """

    node_ids: tuple[str, ...]
    parent: IntArray
    capacity: IntArray
    arrival: FloatArray
    forward: FloatArray | None
    service: FloatArray | None
    data: FloatArray
    data_given: bool
    n_exits: int
    exit_flops: FloatArray | None = None
    name: str = ""
    _cache: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        *,
        parent: ArrayLike,
        capacity: ArrayLike,
        arrival: ArrayLike,
        forward: ArrayLike | None = None,
        service: ArrayLike | None = None,
        data: ArrayLike | None = None,
        n_exits: int | None = None,
        exit_flops: ArrayLike | None = None,
        node_ids: Sequence[str] | None = None,
        name: str = "",
    ) -> CIS:
        """Validate arrays and build a CIS (see the class docstring for the fields).

        Raises
        ------
        CISInputError
            Naming the field and value: negative or NaN rates, a cycle, several roots, an
            unknown parent, a capacity outside ``1..K``, a node forwarding more than it
            receives, and so on.
        """
        par, ids = _parents_and_ids(parent, node_ids)
        n = par.size
        depth = node_depths(par, ids)
        cap, k_max = _capacities(capacity, n_exits, ids)
        arr = as_float_array(arrival, "arrival", shape=(n,), nonneg=True, labels=ids)
        fwd = svc = None
        if forward is not None and service is not None:
            raise CISInputError("rates", "forward+service", "give forwarding rates or capacities")
        if forward is not None:
            fwd = as_float_array(forward, "forward", shape=(n,), nonneg=True, labels=ids)
        elif service is not None:
            svc = as_float_array(
                service, "service", shape=(n,), nonneg=True, allow_inf=True, labels=ids
            )
        else:
            raise CISInputError("rates", None, "give forwarding rates or service capacities")
        if data is None:
            m = np.ones(n)
            given = False
        else:
            m = as_float_array(data, "data", shape=(n,), nonneg=True, labels=ids)
            given = True
        flops = None
        if exit_flops is not None:
            flops = as_float_array(
                exit_flops, "exit_flops", shape=(k_max,), positive=True, axes=("exit",)
            )
        cis = cls(
            node_ids=ids,
            parent=par,
            capacity=cap,
            arrival=arr,
            forward=fwd,
            service=svc,
            data=m,
            data_given=given,
            n_exits=k_max,
            exit_flops=flops,
            name=name,
        )
        cis._cache["depth"] = depth
        _ = cis.serving  # validate the flow balance now
        return cis

    # ------------------------------------------------------------------ derived
    @property
    def n_nodes(self) -> int:
        """Number of nodes ``N``."""
        return int(self.parent.size)

    @property
    def depth(self) -> IntArray:
        """Depth of each node (root 0)."""
        d = self._cache.get("depth")
        if d is None:
            d = node_depths(self.parent, self.node_ids)
            self._cache["depth"] = d
        return d  # type: ignore[return-value]

    @cached_property
    def serving(self) -> Serving:
        """Served, forwarded rates and serving shares (see :class:`Serving`)."""
        return serve(
            self.parent,
            self.arrival,
            self.capacity,
            self.n_exits,
            forward=self.forward,
            service=self.service,
            depth=self._cache.get("depth"),  # type: ignore[arg-type]
            labels=self.node_ids,
        )

    @property
    def lam(self) -> FloatArray:
        r"""Serving shares :math:`\lambda_k`, shallowest exit first."""
        return self.serving.lam

    @property
    def served(self) -> FloatArray:
        """Served rate :math:`s_i` per node."""
        return self.serving.served

    @property
    def dropped(self) -> float:
        """Load that reaches the root and is not served."""
        return self.serving.dropped

    @property
    def eligible(self) -> BoolArray:
        r"""Boolean ``(N, K)`` mask of node-exit pairs a node can host: :math:`k \le \kappa_i`."""
        return np.arange(1, self.n_exits + 1)[None, :] <= self.capacity[:, None]

    @property
    def children_count(self) -> IntArray:
        """Number of children of each node."""
        nonroot = self.parent >= 0
        return np.bincount(self.parent[nonroot], minlength=self.n_nodes).astype(np.int64)

    def index_of(self, node_id: str) -> int:
        """Index of the node labelled ``node_id``."""
        try:
            return self.node_ids.index(str(node_id))
        except ValueError:
            raise CISInputError("node", node_id, "unknown node id") from None
