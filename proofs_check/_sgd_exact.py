r"""Exact first and second moments of CIS training on quadratics (no Monte Carlo).

Pair :math:`(i,k)` has :math:`f_{i,k}(w) = \tfrac12 (w - c_{i,k})^\top A_{i,k}(w - c_{i,k})`
with :math:`A_{i,k}` supported on the block :math:`P_k` (the first ``dims[k]`` coordinates)
and stochastic gradients :math:`\nabla f_{i,k}(w) + \xi`, :math:`\xi` independent, mean 0,
covariance :math:`\Sigma_{i,k}` (supported on :math:`P_k`). A node that picks :math:`k` runs
:math:`\tau` local steps of size :math:`\eta`; with :math:`P = I - \eta A`,

.. math::
    \Delta_{i,k} = (P^\tau - I)(w - c) + \text{noise}, \qquad
    \mathrm{Cov}(\text{noise}) = N = \eta^2 \sum_{s<\tau} P^s \Sigma P^{s\top}.

In the augmented state :math:`z = (w, 1)`, :math:`\Delta = R z + \text{noise}` with
:math:`R = [P^\tau - I,\ (I - P^\tau)c]`. Nodes pick independently, so with
:math:`\bar R_i = \sum_k \beta_{i,k} R_{i,k}` and :math:`\bar R = [I\ 0] + \sum_i \bar R_i`,

.. math::
    \mathbb E[w' w'^\top] = \bar R Z \bar R^\top + \sum_i \Big[\sum_k q_{i,k}
    (\beta_{i,k}/q_{i,k})^2 (R_{i,k} Z R_{i,k}^\top + N_{i,k})
    - \bar R_i Z \bar R_i^\top\Big], \qquad Z = \mathbb E[z z^\top].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._instances import CISInstance, random_cis_instance
from .theorem1 import random_spd

__all__ = ["PairQuadratics", "RoundMoments", "propagate", "random_pair_quadratics"]


@dataclass(frozen=True)
class PairQuadratics:
    """A CIS instance with quadratic pair losses and additive gradient noise."""

    inst: CISInstance
    A: np.ndarray  # (N, K, d, d)
    c: np.ndarray  # (N, K, d)
    Sigma: np.ndarray  # (N, K, d, d)

    @property
    def d(self) -> int:
        """Dimension of w."""
        return int(self.A.shape[-1])

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """Pairs with q > 0."""
        return [(int(i), int(k)) for i, k in np.argwhere(self.inst.q > 0)]

    @property
    def H(self) -> np.ndarray:
        """Hessian of F_lt = sum beta f."""
        return np.asarray(np.einsum("ik,ikde->de", self.inst.beta, self.A), dtype=np.float64)

    @property
    def w_star(self) -> np.ndarray:
        """Minimiser of F_lt."""
        h = np.einsum("ik,ikde,ike->d", self.inst.beta, self.A, self.c)
        return np.asarray(np.linalg.solve(self.H, h), dtype=np.float64)

    @property
    def L_t(self) -> float:
        """Smoothness of F_lt."""
        return float(np.linalg.eigvalsh(self.H)[-1])

    @property
    def mu_t(self) -> float:
        """Strong convexity of F_lt."""
        return float(np.linalg.eigvalsh(self.H)[0])

    @property
    def L_pair(self) -> float:
        """Common smoothness of every f_{i,k} (q > 0)."""
        return float(max(np.linalg.eigvalsh(self.A[i, k])[-1] for i, k in self.pairs))

    @property
    def sigma2(self) -> np.ndarray:
        """Noise variances tr(Sigma), shape (N, K)."""
        return np.asarray(np.trace(self.Sigma, axis1=2, axis2=3), dtype=np.float64)


def random_pair_quadratics(
    rng: np.random.Generator, n_nodes: int, n_exits: int, d: int
) -> PairQuadratics:
    """Random instance: nested blocks ``P_k`` = first ``dims[k]`` coordinates, dims[K-1] = d."""
    inst = random_cis_instance(rng, n_nodes, n_exits)
    dims = np.sort(rng.integers(1, d + 1, size=n_exits))
    dims[-1] = d
    A = np.zeros((n_nodes, n_exits, d, d))
    c = np.zeros((n_nodes, n_exits, d))
    S = np.zeros((n_nodes, n_exits, d, d))
    for i in range(n_nodes):
        for k in range(n_exits):
            p = int(dims[k])
            A[i, k, :p, :p] = random_spd(rng, p, 0.2, rng.uniform(0.5, 2.0))
            c[i, k, :p] = rng.normal(size=p)
            B = rng.normal(size=(p, p)) * rng.uniform(0.0, 0.7)
            S[i, k, :p, :p] = B @ B.T
    return PairQuadratics(inst=inst, A=A, c=c, Sigma=S)


@dataclass(frozen=True)
class RoundMoments:
    """Exact quantities of one round t (expectations over everything before and in it).

    Attributes
    ----------
    gap : float
        E[F_lt(w_t)] - F_lt*.
    grad2 : float
        E||grad F_lt(w_t)||^2.
    cond_var : float
        E Var(g_hat_t | w_t) of the round pseudo-gradient g_hat = -(w_{t+1} - w_t)/(tau eta).
    bias2 : float
        E||E[g_hat_t | w_t] - grad F_lt(w_t)||^2.
    pair_grad2 : ndarray (N, K, tau)
        E||grad f_ik(w_ik^(s))||^2 at the local iterates s = 0..tau-1.
    pair_drift2 : ndarray (N, K, tau)
        E||w_ik^(s) - w_t||^2.
    second : ndarray (d, d)
        E[(w_t - w*)(w_t - w*)^T].
    mean : ndarray (d,)
        E[w_t] - w*.
    """

    gap: float
    grad2: float
    cond_var: float
    bias2: float
    pair_grad2: np.ndarray
    pair_drift2: np.ndarray
    second: np.ndarray
    mean: np.ndarray

    @property
    def dist2(self) -> float:
        """E||w_t - w*||^2."""
        return float(np.trace(self.second))


def propagate(
    pq: PairQuadratics, w0: np.ndarray, etas: np.ndarray, tau: int
) -> tuple[list[RoundMoments], float]:
    """Exact moments over ``len(etas)`` rounds (local step ``etas[t]`` in round t).

    Returns the per-round quantities for t = 0..T (the last without the in-round ones
    meaningful beyond ``gap`` and ``grad2``, which are exact) and the final gap.
    """
    d = pq.d
    N, K = pq.inst.q.shape
    w_star = pq.w_star
    H = pq.H
    Ew = np.hstack([np.eye(d), -w_star[:, None]])  # z -> w - w*
    Hq = Ew.T @ H @ Ew
    Hg = Ew.T @ H @ H @ Ew
    z0 = np.append(w0, 1.0)
    Z = np.outer(z0, z0)
    E0 = np.hstack([np.eye(d), np.zeros((d, 1))])
    out: list[RoundMoments] = []
    for t in range(len(etas) + 1):
        gap = 0.5 * float(np.trace(Hq @ Z))
        grad2 = float(np.trace(Hg @ Z))
        second = Ew @ Z @ Ew.T
        mean = Ew @ Z[:, d]
        if t == len(etas):
            out.append(RoundMoments(gap, grad2, 0.0, 0.0, np.zeros((N, K, tau)),
                                    np.zeros((N, K, tau)), second, mean))
            break
        eta = float(etas[t])
        alpha = tau * eta
        Rbar = E0.copy()
        cov = np.zeros((d, d))
        bias_map = np.zeros((d, d + 1))
        pg2 = np.zeros((N, K, tau))
        pd2 = np.zeros((N, K, tau))
        Rbar_i = np.zeros((N, d, d + 1))
        for i, k in pq.pairs:
            A, c, S = pq.A[i, k], pq.c[i, k], pq.Sigma[i, k]
            q, b = pq.inst.q[i, k], pq.inst.beta[i, k]
            P = np.eye(d) - eta * A
            Ec = np.hstack([np.eye(d), -c[:, None]])  # z -> w - c
            Cw = Ec @ Z @ Ec.T
            Ps = np.eye(d)
            Nn = np.zeros((d, d))
            Pmean = np.zeros((d, d))
            for s in range(tau):
                # local iterate s: w^(s) - c = P^s (w - c) + noise with covariance Nn
                pg2[i, k, s] = float(np.trace(A @ (Ps @ Cw @ Ps.T + Nn) @ A))
                D = Ps - np.eye(d)
                pd2[i, k, s] = float(np.trace(D @ Cw @ D.T + Nn))
                Pmean += Ps / tau
                Nn = P @ Nn @ P.T + eta**2 * S
                Ps = P @ Ps
            R = (Ps - np.eye(d)) @ Ec  # Delta = R z + noise (Ps = P^tau now)
            Rbar_i[i] += b * R
            cov += q * (b / q) ** 2 * (R @ Z @ R.T + Nn)
            # E[g_hat | w] - grad F = sum beta A (Pmean - I)(w - c)
            bias_map += b * A @ (Pmean - np.eye(d)) @ Ec
        for i in range(N):
            Rbar += Rbar_i[i]
            cov -= Rbar_i[i] @ Z @ Rbar_i[i].T
        cond_var = float(np.trace(cov)) / alpha**2
        bias2 = float(np.trace(bias_map @ Z @ bias_map.T))
        out.append(RoundMoments(gap, grad2, cond_var, bias2, pg2, pd2, second, mean))
        W = Rbar @ Z @ Rbar.T + cov
        m = Rbar @ Z[:, d]
        Z = np.block([[W, m[:, None]], [m[None, :], np.ones((1, 1))]])
    return out, out[-1].gap


def simulate(
    pq: PairQuadratics,
    w0: np.ndarray,
    etas: np.ndarray,
    tau: int,
    rng: np.random.Generator,
    runs: int,
) -> np.ndarray:
    """Monte Carlo of the same algorithm: F_lt(w_T) - F_lt* for ``runs`` independent runs.

    Used only to validate :func:`propagate` (an independent computation of the same law).
    """
    N, K = pq.inst.q.shape
    w = np.tile(w0, (runs, 1))
    chol = np.zeros_like(pq.Sigma)
    for i, k in pq.pairs:
        vals, vecs = np.linalg.eigh(pq.Sigma[i, k])
        chol[i, k] = vecs * np.sqrt(np.clip(vals, 0.0, None))
    probs = np.concatenate([pq.inst.q, 1.0 - pq.inst.q.sum(1, keepdims=True)], axis=1)
    cum = np.cumsum(np.clip(probs, 0.0, None), axis=1)
    for eta in etas:
        update = np.zeros_like(w)
        for i in range(N):
            choice = (rng.random((runs, 1)) > cum[i][None, :]).sum(axis=1)
            for k in range(K):
                sel = choice == k
                if not sel.any() or pq.inst.q[i, k] == 0:
                    continue
                A, c = pq.A[i, k], pq.c[i, k]
                loc = w[sel].copy()
                for _ in range(tau):
                    noise = rng.normal(size=loc.shape) @ chol[i, k].T
                    loc = loc - eta * ((loc - c) @ A.T + noise)
                update[sel] += pq.inst.beta[i, k] / pq.inst.q[i, k] * (loc - w[sel])
        w = w + update
    r = w - pq.w_star
    return np.asarray(0.5 * np.einsum("nd,de,ne->n", r, pq.H, r), dtype=np.float64)
