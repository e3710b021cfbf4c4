r"""Shared instances and reference computations of the second-generation checks.

Everything here is the *reference side*: it never calls the package function a check
compares it with. Constants are re-derived from their definitions in ``docs/theory.md``
(Section 4.11 onwards) in this module's own code; exact errors come from
:func:`proofs_check._sgd_exact.propagate` (exact moments, no Monte Carlo).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._instances import CISInstance, outcomes, random_cis_instance
from ._sgd_exact import PairQuadratics, propagate
from .theorem1 import random_spd

__all__ = [
    "Reference",
    "aggregate_variance_at",
    "exact_path",
    "random_instance",
    "reference",
    "reproducer",
    "second_moment_radius",
]


def random_instance(
    rng: np.random.Generator,
    *,
    small_q: bool = False,
    nonconvex: bool = False,
    n_range: tuple[int, int] = (2, 4),
    d_max: int = 3,
) -> PairQuadratics:
    """A random CIS with quadratic pair losses on nested blocks and additive noise.

    ``small_q``: one sampled node gets probabilities 0.02-0.15 (large ``beta/q``);
    ``nonconvex``: some pair Hessians get a negative eigenvalue (``F_lt`` stays strongly
    convex: node 0 trains every exit with a positive definite Hessian and carries weight).
    """
    n = int(rng.integers(n_range[0], n_range[1] + 1))
    k_ex = int(rng.integers(1, 4))
    d = int(rng.integers(1, d_max + 1))
    while True:
        inst = random_cis_instance(rng, n, k_ex)
        if small_q:
            i = int(rng.integers(n))
            row = inst.q[i]
            if not np.isclose(row.max(), 1.0):
                inst = _shrink(inst, i, rng.uniform(0.02, 0.15))
        dims = np.sort(rng.integers(1, d + 1, size=k_ex))
        dims[-1] = d
        A = np.zeros((n, k_ex, d, d))
        c = np.zeros((n, k_ex, d))
        S = np.zeros((n, k_ex, d, d))
        for i in range(n):
            for k in range(k_ex):
                p = int(dims[k])
                A[i, k, :p, :p] = random_spd(rng, p, 0.05, rng.uniform(0.3, 3.0))
                if nonconvex and i > 0 and rng.random() < 0.5:
                    A[i, k, :p, :p] -= rng.uniform(0.1, 1.5) * np.eye(p)
                c[i, k, :p] = rng.normal(size=p) * rng.uniform(0.2, 2.0)
                B = rng.normal(size=(p, p)) * rng.uniform(0.0, 0.7)
                S[i, k, :p, :p] = B @ B.T
        pq = PairQuadratics(inst=inst, A=A, c=c, Sigma=S)
        if np.linalg.eigvalsh(pq.H)[0] > 1e-3:
            return pq


def _shrink(inst: CISInstance, i: int, total: float) -> CISInstance:
    from cistheory.system.aggregation import beta
    from cistheory.system.participation import Participation

    q = inst.q.copy()
    q[i] = q[i] / q[i].sum() * total
    part = Participation(q=q, data=inst.m, name="random")
    return CISInstance(q=q, m=inst.m, lt=inst.lt, beta=beta(part, inst.lt))


def reproducer(q: float = 0.1, noise: float = 0.0) -> PairQuadratics:
    r"""One node trains its only exit with probability ``q``, :math:`f = w^2/2` in one
    dimension (``docs/theory.md``, Section 4.10): with :math:`\eta = 1`,
    :math:`\mathbb Ew_{t+1}^2 = (1/q - 1)\mathbb Ew_t^2`."""
    inst = CISInstance(q=np.array([[q]]), m=np.array([1.0]), lt=np.array([1.0]),
                       beta=np.array([[1.0]]))
    return PairQuadratics(inst=inst, A=np.ones((1, 1, 1, 1)), c=np.zeros((1, 1, 1)),
                          Sigma=np.full((1, 1, 1, 1), noise))


@dataclass(frozen=True)
class Reference:
    """Constants of an instance, re-derived from their definitions (reference side)."""

    mu_t: float
    L_t: float
    L_pair: np.ndarray  # (N, K), largest Hessian eigenvalue (0 off the support)
    ell_pair: np.ndarray  # (N, K), largest absolute eigenvalue
    Ls: float
    Ls_pair: float
    Lambda: float
    Vs: float
    Vn: float
    w_star: np.ndarray
    grad_pair: np.ndarray  # (N, K, d) at w*


def _node_matrix(b: np.ndarray, L: np.ndarray, q: np.ndarray) -> np.ndarray:
    """diag(b L / q) - sqrt(b L) sqrt(b L)^T for one node's pairs (Lemma ES's M_i)."""
    out = np.zeros((b.size, b.size))
    for k in range(b.size):
        for m in range(b.size):
            out[k, m] = -np.sqrt(b[k] * L[k] * b[m] * L[m])
        out[k, k] += b[k] * L[k] / q[k]
    return out


def reference(pq: PairQuadratics) -> Reference:
    """Every constant of Lemma ES and Theorem A for ``pq``, from the definitions."""
    q, b = pq.inst.q, pq.inst.beta
    n, k_ex = q.shape
    ev_h = np.linalg.eigvalsh(pq.H)
    w_star = pq.w_star
    L_pair = np.zeros((n, k_ex))
    ell = np.zeros((n, k_ex))
    grads = np.zeros((n, k_ex, pq.d))
    for i, k in pq.pairs:
        ev = np.linalg.eigvalsh(pq.A[i, k])
        L_pair[i, k] = max(ev[-1], 0.0)
        ell[i, k] = np.abs(ev).max()
        grads[i, k] = pq.A[i, k] @ (w_star - pq.c[i, k])
    Ls = Ls_pair = Lam = 0.0
    for i in range(n):
        ks = [k for k in range(k_ex) if q[i, k] > 0]
        if not ks:
            continue
        M = _node_matrix(b[i, ks], L_pair[i, ks], q[i, ks])
        Ls = max(Ls, float(np.linalg.eigvalsh(M)[-1]))
        single = 1.0 if len(ks) == 1 else 0.0
        for k in ks:
            Ls_pair = max(Ls_pair, b[i, k] * L_pair[i, k] * (1 / q[i, k] - single))
            Lam += b[i, k] ** 2 * ell[i, k] ** 2 * (1 / q[i, k] - single)
    vs = 0.0  # Var(A(w*)) by enumeration of each node's outcomes
    for i in range(n):
        opts = [(q[i, k], b[i, k] / q[i, k] * grads[i, k]) for k in range(k_ex) if q[i, k] > 0]
        mean = sum(p * x for p, x in opts) if opts else np.zeros(pq.d)
        second = sum(p * float(x @ x) for p, x in opts) if opts else 0.0
        vs += second - float(mean @ mean)
    vn = float(sum(b[i, k] ** 2 / q[i, k] * np.trace(pq.Sigma[i, k]) for i, k in pq.pairs))
    return Reference(float(ev_h[0]), float(ev_h[-1]), L_pair, ell, max(Ls, 0.0), Ls_pair, Lam,
                     max(vs, 0.0), vn, w_star, grads)


def exact_path(pq: PairQuadratics, w0: np.ndarray, etas: np.ndarray, tau: int = 1
               ) -> dict[str, np.ndarray]:
    """Exact ``dist2``, ``gap``, ``second`` (T+1, d, d) and ``mean`` (T+1, d) along the run."""
    rounds, _ = propagate(pq, w0, np.asarray(etas, dtype=float), tau)
    return {
        "dist2": np.array([r.dist2 for r in rounds]),
        "gap": np.array([r.gap for r in rounds]),
        "second": np.stack([r.second for r in rounds]),
        "mean": np.stack([r.mean for r in rounds]),
    }


def second_moment_radius(pq: PairQuadratics, eta: float, tau: int = 1) -> float:
    """Spectral radius of the homogeneous second-moment map of one round, built by applying
    the map to the basis matrices (so it shares no code with the package's operator)."""
    d = pq.d
    q, b = pq.inst.q, pq.inst.beta
    maps = {}
    for i, k in pq.pairs:
        P = np.eye(d) - eta * pq.A[i, k]
        maps[(i, k)] = np.linalg.matrix_power(P, tau) - np.eye(d)
    cols = []
    for j in range(d * d):
        unit = np.zeros(d * d)
        unit[j] = 1.0
        S = unit.reshape(d, d)
        mean_map = np.eye(d) + sum(b[i, k] * maps[(i, k)] for i, k in pq.pairs)
        out = mean_map @ S @ mean_map.T
        for i in range(q.shape[0]):
            ks = [k for k in range(q.shape[1]) if q[i, k] > 0]
            if not ks:
                continue
            mbar = sum(b[i, k] * maps[(i, k)] for k in ks)
            out = out - mbar @ S @ mbar.T
            for k in ks:
                out = out + b[i, k] ** 2 / q[i, k] * maps[(i, k)] @ S @ maps[(i, k)].T
        cols.append(out.reshape(-1))
    return float(np.max(np.abs(np.linalg.eigvals(np.array(cols).T))))


def aggregate_variance_at(pq: PairQuadratics, w: np.ndarray) -> float:
    r""":math:`\mathrm{Var}(A(w) - A(w^*))` by enumerating every selection outcome."""
    q, b = pq.inst.q, pq.inst.beta
    w_star = pq.w_star
    delta = {(i, k): pq.A[i, k] @ (w - w_star) for i, k in pq.pairs}
    first = np.zeros(pq.d)
    second = 0.0
    for p, choice in outcomes(q):
        x = np.zeros(pq.d)
        for i, k in enumerate(choice):
            if k >= 0:
                x = x + b[i, k] / q[i, k] * delta[(i, k)]
        first += p * x
        second += p * float(x @ x)
    return second - float(first @ first)
