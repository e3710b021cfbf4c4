"""Random instances shared by the checks: participation tables and selection outcomes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from cistheory.system.aggregation import beta
from cistheory.system.participation import Participation

__all__ = ["CISInstance", "outcomes", "random_cis_instance", "random_simplex"]


def random_simplex(rng: np.random.Generator, k: int, *, min_weight: float = 0.0) -> np.ndarray:
    """A random point of the simplex with entries >= ``min_weight`` (Dirichlet(1) mixed)."""
    x = rng.dirichlet(np.ones(k))
    x = min_weight + (1.0 - k * min_weight) * x
    return np.asarray(x / x.sum(), dtype=np.float64)


@dataclass(frozen=True)
class CISInstance:
    """Participation ``q`` (N, K), data ``m`` (N,), weights ``lt`` (K,), ``beta`` (N, K)."""

    q: np.ndarray
    m: np.ndarray
    lt: np.ndarray
    beta: np.ndarray

    @property
    def fixed(self) -> np.ndarray:
        """Nodes with one exit of probability 1."""
        return np.asarray((self.q == 1.0).any(axis=1))


def random_cis_instance(
    rng: np.random.Generator, n_nodes: int, n_exits: int, *, p_fixed: float = 0.3
) -> CISInstance:
    """A random participation table: some nodes fixed, some sampled with idle probability.

    Node 0 is eligible for every exit; other nodes get a random capacity. ``lt`` is a random
    point of the simplex on the exits that some node trains. ``beta`` comes from
    :func:`cistheory.beta` (the shipped code).
    """
    q = np.zeros((n_nodes, n_exits))
    for i in range(n_nodes):
        cap = n_exits if i == 0 else int(rng.integers(1, n_exits + 1))
        if rng.random() < p_fixed:
            q[i, int(rng.integers(0, cap))] = 1.0
        else:
            w = rng.dirichlet(np.ones(cap + 1))  # last entry: idle
            w = 0.02 + 0.96 * w
            w /= w.sum()
            if rng.random() < 0.5:
                w[-1] = 0.0  # never idle
                w /= w.sum()
            q[i, :cap] = w[:cap]
    if not (q[0] > 0).all():  # node 0 trains every exit with some probability
        q[0] = random_simplex(rng, n_exits, min_weight=0.02)
    m = rng.integers(1, 50, size=n_nodes).astype(np.float64)
    trained = (q > 0).any(axis=0)
    lt = np.zeros(n_exits)
    lt[trained] = random_simplex(rng, int(trained.sum()), min_weight=0.01)
    part = Participation(q=q, data=m, name="random")
    return CISInstance(q=q, m=m, lt=lt, beta=beta(part, lt))


def outcomes(q: np.ndarray) -> Iterator[tuple[float, tuple[int, ...]]]:
    """All selection outcomes ``(probability, choice)``; choice[i] = exit index or -1 (idle)."""
    options = []
    for row in q:
        opts = [(float(p), k) for k, p in enumerate(row) if p > 0]
        idle = 1.0 - float(row.sum())
        if idle > 1e-15:
            opts.append((idle, -1))
        options.append(opts)
    for combo in itertools.product(*options):
        prob = 1.0
        for p, _ in combo:
            prob *= p
        yield prob, tuple(k for _, k in combo)
