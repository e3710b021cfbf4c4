r"""Proposition V: where Lemma 2's convex bound :math:`V(\tilde\lambda, q)` is jointly convex.

Checked: midpoint convexity of the shipped :func:`cistheory.bounds.variance_bound` (with
Lemma 1's :math:`\beta`) along random segments inside one domain :math:`\mathcal D(S,
\mathcal F)` (fixed support, fixed nodes fixed); and that the two counterexamples of the
proposition do break midpoint convexity (so the claim that the domain cannot be enlarged
is checked, not assumed): the fixed/sampled switch at :math:`q = 1` and a change of support.
"""

from __future__ import annotations

import numpy as np

from cistheory.bounds import lemma2
from cistheory.system.aggregation import beta
from cistheory.system.participation import Participation

from ._core import CheckResult, Tightness, numeric_inequality
from ._instances import random_cis_instance, random_simplex

__all__ = ["run"]

STATEMENT = "Proposition V"


def _V(q: np.ndarray, m: np.ndarray, lt: np.ndarray, s2: np.ndarray, g2: np.ndarray) -> float:
    bet = beta(Participation(q=q, data=m), lt)
    return lemma2.variance_bound(q, bet, s2, g2)


def _domain_point(rng: np.random.Generator, q0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A random (q, lt) with q's support and fixed rows those of q0."""
    q = np.zeros_like(q0)
    for i, row in enumerate(q0):
        sup = row > 0
        if np.isclose(row.max(), 1.0):
            q[i] = row
            continue
        w = rng.dirichlet(np.ones(int(sup.sum()) + 1))
        w = 0.02 + 0.96 * w
        q[i, sup] = (w / w.sum())[:-1]
    lt = random_simplex(rng, q0.shape[1], min_weight=0.02)
    return q, lt


def run(rng: np.random.Generator, instances: int) -> tuple[list[CheckResult], list[Tightness]]:
    """Midpoint convexity inside a domain, and its failure across the two boundaries."""
    lo, hi = [], []
    for _ in range(max(20, instances)):
        inst = random_cis_instance(rng, int(rng.integers(2, 5)), int(rng.integers(1, 4)))
        if not (inst.q > 0).any(axis=0).all():
            continue
        s2 = rng.uniform(0.0, 2.0, size=inst.q.shape)
        g2 = rng.uniform(0.0, 2.0, size=inst.q.shape)
        qa, la = _domain_point(rng, inst.q)
        qb, lb = _domain_point(rng, inst.q)
        mid = _V((qa + qb) / 2, inst.m, (la + lb) / 2, s2, g2)
        lo.append(mid)
        hi.append(0.5 * (_V(qa, inst.m, la, s2, g2) + _V(qb, inst.m, lb, s2, g2)))
    one = np.ones(1)
    switch = [_V(np.array([[q]]), one, one, np.zeros((1, 1)), np.ones((1, 1)))
              for q in (0.98, 0.99, 1.0)]
    # support change: two nodes on one exit; node 1's probability 0, eps, 2 eps
    eps = 1e-3
    supp = [_V(np.array([[1.0], [p]]), np.ones(2), one, np.ones((2, 1)), np.ones((2, 1)))
            for p in (0.0, eps, 2 * eps)]
    return [
        numeric_inequality("proposition_v.convex_inside", STATEMENT,
                           "V(midpoint) <= mean of V at the ends, inside one domain D(S, F)",
                           lo, hi),
        numeric_inequality("proposition_v.switch_breaks", STATEMENT,
                           "across q = 1 (V = 1.0204, 1.0101, 0 at q = .98, .99, 1) midpoint "
                           "convexity fails: mean of the ends < V(midpoint)",
                           [0.5 * (switch[0] + switch[2])], [switch[1]]),
        numeric_inequality("proposition_v.support_breaks", STATEMENT,
                           "across a change of support (q = 0, eps, 2 eps) it fails too",
                           [0.5 * (supp[0] + supp[2])], [supp[1]]),
    ], []
