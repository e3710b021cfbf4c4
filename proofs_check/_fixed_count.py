r"""Reference side of the fixed-count checks (Lemma ES-f of ``docs/theory.md``, Section 4.11f).

:math:`n` of the :math:`N` nodes are drawn uniformly without replacement, each drawn node picks
exit :math:`k` with probability :math:`r_{i,k}` (or idles), and the trainer weighs a pick by
:math:`\beta/q` with :math:`q = (n/N)\,r`. Everything here enumerates every drawn set and every
pick of the drawn nodes (exact moments, no Monte Carlo) and re-derives the constants from their
definitions in this module's own code; it never calls the package function a check compares it
with.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ._instances import CISInstance
from ._second import random_instance, reference
from ._sgd_exact import PairQuadratics

__all__ = [
    "FixedCount",
    "coupling",
    "draw_outcomes",
    "exact_distance",
    "exact_second",
    "ls_coupled",
    "random_fixed",
    "var_of_aggregate",
]


def coupling(n_nodes: int, per_round: int) -> float:
    r""":math:`\pi_{ij}/(\pi_i\pi_j) - 1 = -c` of the uniform draw, returned as :math:`c`
    (from the inclusion probabilities, not from the closed form)."""
    if n_nodes == 1:
        return 0.0
    pi = per_round / n_nodes
    pij = per_round * (per_round - 1) / (n_nodes * (n_nodes - 1))
    return 1.0 - pij / (pi * pi)


def draw_outcomes(r: np.ndarray, per_round: int) -> list[tuple[float, tuple[int, ...]]]:
    """Every outcome ``(probability, choice)`` of the draw; choice[i] = exit or -1."""
    n_nodes, k_ex = r.shape
    sets = list(itertools.combinations(range(n_nodes), per_round))
    out = []
    for drawn in sets:
        opts = []
        for i in drawn:
            o = [(float(r[i, k]), k) for k in range(k_ex) if r[i, k] > 0]
            idle = 1.0 - float(r[i].sum())
            if idle > 1e-15:
                o.append((idle, -1))
            opts.append(o)
        for combo in itertools.product(*opts):
            choice = [-1] * n_nodes
            prob = 1.0 / len(sets)
            for i, (p, k) in zip(drawn, combo, strict=True):
                prob *= p
                choice[i] = k
            out.append((prob, tuple(choice)))
    return out


@dataclass(frozen=True)
class FixedCount:
    """A quadratic CIS under a fixed-count draw: ``pq.inst.q`` is the inclusion table."""

    pq: PairQuadratics
    r: np.ndarray
    per_round: int
    outcomes: list[tuple[float, tuple[int, ...]]]

    @property
    def c(self) -> float:
        return coupling(self.r.shape[0], self.per_round)


def random_fixed(rng: np.random.Generator, *, nonconvex: bool = False) -> FixedCount:
    """A random instance with 2-5 nodes, 1-3 exits, dimension 1-3 and a random ``n``: the
    per-node table ``r`` is a random participation table (fixed rows allowed: a drawn node
    then always trains that exit), ``q = (n/N) r`` and ``beta`` unchanged (it depends on ``q``
    only through its support)."""
    pq = random_instance(rng, nonconvex=nonconvex, n_range=(2, 5))
    r = pq.inst.q
    n_nodes = r.shape[0]
    n = int(rng.integers(1, n_nodes + 1))
    inst = CISInstance(q=r * (n / n_nodes), m=pq.inst.m, lt=pq.inst.lt, beta=pq.inst.beta)
    pq2 = PairQuadratics(inst=inst, A=pq.A, c=pq.c, Sigma=pq.Sigma)
    return FixedCount(pq2, r, n, draw_outcomes(r, n))


def var_of_aggregate(fc: FixedCount, vecs: dict[tuple[int, int], np.ndarray]
                     ) -> tuple[float, np.ndarray]:
    r"""Variance and mean of :math:`\sum_{\text{picked}}(\beta/q)\,x_{i,k}` over the draw."""
    q, b = fc.pq.inst.q, fc.pq.inst.beta
    d = next(iter(vecs.values())).shape[0]
    first = np.zeros(d)
    second = 0.0
    for p, choice in fc.outcomes:
        x = np.zeros(d)
        for i, k in enumerate(choice):
            if k >= 0:
                x = x + b[i, k] / q[i, k] * vecs[(i, k)]
        first += p * x
        second += p * float(x @ x)
    return second - float(first @ first), first


def noise_second(fc: FixedCount) -> float:
    r""":math:`\mathbb E\|\Xi\|^2` over the draw (noise independent across picked pairs)."""
    q, b = fc.pq.inst.q, fc.pq.inst.beta
    tot = 0.0
    for p, choice in fc.outcomes:
        for i, k in enumerate(choice):
            if k >= 0:
                tot += p * (b[i, k] / q[i, k]) ** 2 * float(np.trace(fc.pq.Sigma[i, k]))
    return tot


def ls_coupled(fc: FixedCount, L_pair: np.ndarray) -> tuple[float, float, float]:
    r""":math:`L^{(c)}_s`, :math:`L^{\mathrm{pair},(c)}_s` and :math:`\max\beta L/q`, from the
    definitions of Section 4.11f (the matrix built entry by entry)."""
    q, b = fc.pq.inst.q, fc.pq.inst.beta
    keep = 1.0 - fc.c
    ls = ls_pair = top = 0.0
    for i in range(q.shape[0]):
        ks = [k for k in range(q.shape[1]) if q[i, k] > 0]
        if not ks:
            continue
        m = np.zeros((len(ks), len(ks)))
        for a, k in enumerate(ks):
            for e, j in enumerate(ks):
                m[a, e] = -keep * math.sqrt(b[i, k] * L_pair[i, k] * b[i, j] * L_pair[i, j])
            m[a, a] += b[i, k] * L_pair[i, k] / q[i, k]
        ls = max(ls, float(np.linalg.eigvalsh(m)[-1]))
        single = keep if len(ks) == 1 else 0.0
        for k in ks:
            ls_pair = max(ls_pair, b[i, k] * L_pair[i, k] * (1 / q[i, k] - single))
            top = max(top, b[i, k] * L_pair[i, k] / q[i, k])
    return ls, ls_pair, top


def lambda_coupled(fc: FixedCount, ell: np.ndarray) -> float:
    r""":math:`\Lambda^{(c)} = \sum\beta^2\ell^2(1/q - (1 - c)[|K_i| = 1])` by a plain loop."""
    q, b = fc.pq.inst.q, fc.pq.inst.beta
    tot = 0.0
    for i in range(q.shape[0]):
        ks = [k for k in range(q.shape[1]) if q[i, k] > 0]
        single = (1.0 - fc.c) if len(ks) == 1 else 0.0
        tot += sum(b[i, k] ** 2 * ell[i, k] ** 2 * (1 / q[i, k] - single) for k in ks)
    return tot


def exact_distance(fc: FixedCount, u0: np.ndarray, eta: float, rounds: int) -> np.ndarray:
    r"""Exact :math:`\mathbb E\|w_t - w^*\|^2`, :math:`t = 0..T` (:func:`exact_second`)."""
    return np.array([float(np.trace(S)) for S in exact_second(fc, u0, eta, rounds)])


def exact_second(fc: FixedCount, u0: np.ndarray, eta: float, rounds: int) -> list[np.ndarray]:
    r"""Exact :math:`\mathbb E[u_tu_t^\top]`, :math:`t = 0..T`, one local step per round,
    propagating the mean and second moment of :math:`u = w - w^*` over every outcome:
    :math:`u' = (I - \eta B_o)u - \eta b_o - \eta\Xi` with :math:`B_o, b_o` the picked pairs'
    weighted Hessians and gradients at :math:`w^*`."""
    pq = fc.pq
    q, b = pq.inst.q, pq.inst.beta
    d = pq.d
    ref = reference(pq)
    probs, P, bo = [], [], []
    noise = np.zeros((d, d))
    for p, choice in fc.outcomes:
        B = np.zeros((d, d))
        g = np.zeros(d)
        for i, k in enumerate(choice):
            if k >= 0:
                B += b[i, k] / q[i, k] * pq.A[i, k]
                g += b[i, k] / q[i, k] * ref.grad_pair[i, k]
                noise += p * (b[i, k] / q[i, k]) ** 2 * pq.Sigma[i, k]
        probs.append(p)
        P.append(np.eye(d) - eta * B)
        bo.append(g)
    pa, Pa, ba = np.array(probs), np.array(P), np.array(bo)
    m = np.asarray(u0, dtype=np.float64).copy()
    S = np.outer(m, m)
    out = [S]
    for _ in range(rounds):
        Pm = np.einsum("oij,j->oi", Pa, m)
        S = (np.einsum("o,oij,jk,olk->il", pa, Pa, S, Pa)
             - eta * np.einsum("o,oi,oj->ij", pa, Pm, ba)
             - eta * np.einsum("o,oi,oj->ij", pa, ba, Pm)
             + eta**2 * np.einsum("o,oi,oj->ij", pa, ba, ba) + eta**2 * noise)
        m = np.einsum("o,oi->i", pa, Pm - eta * ba)
        out.append(S)
    return out
