r"""Theorem M (mode-resolved second moments, quadratic pairs) against exact second moments, and
Theorem D's quadratic identity with it.

Checked: every mode's exact :math:`v_j^\top\mathbb E[u_tu_t^\top]v_j` under :math:`\hat d_j(t)`;
the exact :math:`\mathbb EF_{\tilde\lambda}(w_t) - F^*` and :math:`\mathbb EF_\lambda(w_t) -
F_\lambda^*` under the trace bounds (with the exact bias and mean); equality of the diagonal
recursion when every node is fixed (a looser bound is caught); the certificate never on
unstable dynamics; one step of the recursion recomputed by plain loops; the fixed-node sympy
closed form against the shipped function; under a fixed-count draw (``per_round``), every
mode under the exact moments of the enumerated draw and the first step by plain loops.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from cistheory.bounds import theorem_m

from . import _fixed_count as _fc
from ._core import CheckResult, Tightness, numeric_identity, numeric_inequality, tightness
from ._instances import CISInstance
from ._second import exact_path, random_instance, reference, second_moment_radius
from ._sgd_exact import PairQuadratics

__all__ = ["run"]

STATEMENT = "Theorem M"
STATEMENT_F = "Theorem M (fixed-count draw)"
T_ROUNDS = 25


def _call(pq: PairQuadratics, eta: float, w0: np.ndarray, T: int) -> theorem_m.ModalBound:
    ref = reference(pq)
    return theorem_m.modal_bound(T, eta=eta, q=pq.inst.q, beta=pq.inst.beta, H_pair=pq.A,
                                 grad_opt=ref.grad_pair, noise_cov=pq.Sigma, u0=w0 - ref.w_star)


# long: the statement's operators by plain loops, then the minimum over the Young grid
def _one_step_reference(pq: PairQuadratics, eta: float, d: np.ndarray, V: np.ndarray,
                        lam: np.ndarray, draw: float = 0.0) -> np.ndarray:
    """One step of Theorem M's recursion, by loops over modes, nodes and outcomes, minimised
    over c in {0.01, ..., 100} (9 log-spaced values; c = 0 when V_s = 0, c = inf without
    multiplicative noise, as the statement allows). ``draw``: a fixed-count draw's coupling
    (each node's M_j and Sigma_s gain draw * its mean's outer product; the mode factor loses
    draw * eta^2 lambda_j^2, floored at 0)."""
    q, b = pq.inst.q, pq.inst.beta
    ref = reference(pq)
    n, dd = q.shape[0], V.shape[0]
    parts = []
    for j in range(dd):
        Mj = np.zeros((dd, dd))
        Ss = Sn = 0.0
        for i in range(n):
            ks = [k for k in range(q.shape[1]) if q[i, k] > 0]
            vec = [b[i, k] / q[i, k] * (pq.A[i, k] @ V[:, j]) for k in ks]
            mean = sum(b[i, k] * (pq.A[i, k] @ V[:, j]) for k in ks) if ks else np.zeros(dd)
            gj = [b[i, k] / q[i, k] * float(V[:, j] @ ref.grad_pair[i, k]) for k in ks]
            gm = sum(b[i, k] * float(V[:, j] @ ref.grad_pair[i, k]) for k in ks)
            for p_, x, g in zip([q[i, k] for k in ks], vec, gj, strict=True):
                Mj += p_ * np.outer(V.T @ (x - mean), V.T @ (x - mean))
                Ss += p_ * (g - gm) ** 2
            idle = 1 - sum(q[i, k] for k in ks)
            Mj += (idle + draw) * np.outer(V.T @ mean, V.T @ mean)
            Ss += (idle + draw) * gm**2
            Sn += sum(b[i, k] ** 2 / q[i, k] * float(V[:, j] @ pq.Sigma[i, k] @ V[:, j])
                      for k in ks)
        root = np.sqrt(d)
        parts.append((float(root @ np.abs(Mj) @ root), Ss, Sn, np.abs(Mj).max()))
    mult = max(p[3] for p in parts) > 0
    sampling = max(p[1] for p in parts) > 0
    cs = list(np.geomspace(1e-2, 1e2, 9)) if mult and sampling else ([0.0] if mult else [])
    out = np.zeros(dd)
    for j, (inj, Ss, Sn, _) in enumerate(parts):
        mode = max((1 - eta * lam[j]) ** 2 - draw * (eta * lam[j]) ** 2, 0.0)
        vals = [mode * d[j] + eta**2 * (1 + c) * inj
                + eta**2 * (Sn if c == 0 else (1 + 1 / c) * Ss + Sn) for c in cs]
        if not mult:
            vals.append(mode * d[j] + eta**2 * (Ss + Sn))
        out[j] = min(vals)
    return out


@functools.cache
def _fixed_expr() -> Callable[..., float]:
    from cistheory.symbolic.theorem_m import modal_fixed_node_expr

    return modal_fixed_node_expr().lambdify()


def _fixed_instance(rng: np.random.Generator, d: int) -> PairQuadratics:
    """Every node fixed: two nodes on one exit, random Hessians and noise."""
    pq = random_instance(rng, n_range=(2, 2), d_max=d)
    q = np.zeros_like(pq.inst.q)
    q[:, -1] = 1.0
    from cistheory.system.aggregation import beta
    from cistheory.system.participation import Participation

    lt = np.zeros(q.shape[1])
    lt[-1] = 1.0
    inst = CISInstance(q=q, m=pq.inst.m, lt=lt,
                       beta=beta(Participation(q=q, data=pq.inst.m), lt))
    A = pq.A.copy()
    A[:, -1] = np.stack([np.diag(rng.uniform(0.2, 2.0, size=pq.d)) for _ in range(2)])
    S = pq.Sigma.copy()
    S[:, -1] = np.stack([np.diag(rng.uniform(0.0, 1.0, size=pq.d)) for _ in range(2)])
    return PairQuadratics(inst=inst, A=A, c=pq.c, Sigma=S)


# long: the loop fills six checks from one exact run per (instance, step)
def run(rng: np.random.Generator, instances: int) -> tuple[list[CheckResult], list[Tightness]]:
    """Theorem M on random instances (steps up to past the stability limit)."""
    modes_lo: list[float] = []
    modes_hi: list[float] = []
    gap_lo: list[float] = []
    gap_hi: list[float] = []
    cert_unstable = 0
    final: tuple[list[float], list[float]] = ([], [])
    step_got: list[float] = []
    step_want: list[float] = []
    for j in range(max(6, instances // 6)):
        pq = random_instance(rng, small_q=j % 2 == 0)
        ref = reference(pq)
        w0 = ref.w_star + rng.normal(size=pq.d) * rng.uniform(0.2, 2.0)
        for f in (0.3, 0.9, 1.5):
            eta = f * 2.0 / (ref.L_t + ref.Ls)
            ex = exact_path(pq, w0, np.full(T_ROUNDS, eta))
            mb = _call(pq, eta, w0, T_ROUNDS)
            V = mb.basis
            for t in (1, 5, T_ROUNDS):
                exact_modes = np.einsum("dj,de,ej->j", V, ex["second"][t], V)
                fin = np.isfinite(mb.d[t])
                # rounding of the exact side: v^T S v from a float64 S whose largest entry is
                # |S|max (1e15 on unstable runs) is off by up to D^2 * 4 eps |S|max
                slack = pq.d**2 * 4 * np.finfo(float).eps * float(np.abs(ex["second"][t]).max())
                modes_lo += exact_modes[fin].tolist()
                modes_hi += (mb.d[t][fin] + slack).tolist()
                if np.isfinite(mb.d[t]).all():
                    gap_lo.append(float(ex["gap"][t]))
                    gap_hi.append(0.5 * mb.trace(pq.H, t))
            if mb.certified and second_moment_radius(pq, eta) > 1 + 1e-9:
                cert_unstable += 1
            if mb.certified:
                final[0].append(float(ex["gap"][-1]))
                final[1].append(0.5 * mb.trace(pq.H, T_ROUNDS))
            if f < 1:
                got = theorem_m.modal_bound(1, eta=eta, q=pq.inst.q, beta=pq.inst.beta,
                                            H_pair=pq.A, grad_opt=ref.grad_pair,
                                            noise_cov=pq.Sigma, u0=w0 - ref.w_star)
                lam = got.eigenvalues
                want = _one_step_reference(pq, eta, got.d[0], got.basis, lam)
                step_got += got.d[1].tolist()
                step_want += want.tolist()
    eq_lo: list[float] = []
    eq_hi: list[float] = []
    for _ in range(max(3, instances // 10)):
        pq = _fixed_instance(rng, 3)
        ref = reference(pq)
        w0 = ref.w_star + rng.normal(size=pq.d)
        eta = rng.uniform(0.1, 1.9) / ref.L_t
        ex = exact_path(pq, w0, np.full(10, eta))
        mb = _call(pq, eta, w0, 10)
        for t in range(11):
            eq_lo += np.einsum("dj,de,ej->j", mb.basis, ex["second"][t], mb.basis).tolist()
            eq_hi += mb.d[t].tolist()
    sym_got, sym_want = [], []
    for _ in range(10):
        h, s2, u0 = rng.uniform(0.2, 2.0), rng.uniform(0.0, 1.0), rng.normal()
        eta = rng.uniform(0.1, 1.9) / h
        t = int(rng.integers(0, 30))
        mb = theorem_m.modal_bound(t, eta=eta, q=[[1.0]], beta=[[1.0]], H_pair=[[[[h]]]],
                                   grad_opt=[[[0.0]]], noise_cov=[[[[s2]]]], u0=[u0])
        sym_got.append(float(mb.d[t, 0]))
        sym_want.append(_fixed_expr()(t, eta, h, s2, abs(u0)))
    tr_got, tr_want = [], []
    for _ in range(20):
        dd = int(rng.integers(1, 5))
        d = rng.uniform(0.0, 2.0, size=dd)
        V = np.linalg.qr(rng.normal(size=(dd, dd)))[0]
        A = rng.normal(size=(dd, dd))
        A = A + A.T
        At = V.T @ A @ V
        tr_got.append(theorem_m.trace_bound(d, V, A))
        tr_want.append(sum(abs(At[lx, m]) * np.sqrt(d[lx] * d[m]) for lx in range(dd)
                           for m in range(dd)))
    fixed = _fixed_count(rng, max(4, instances // 10))  # after the runs above: same draws
    checks = [
        *fixed,
        numeric_identity("theorem_m.trace_reference", STATEMENT,
                         "trace bound = sum_lm |V^T A V|_lm sqrt(d_l d_m) (loops)", tr_got,
                         tr_want),
        numeric_inequality("theorem_m.modes", STATEMENT,
                           "exact v_j^T E[u_t u_t^T] v_j <= d_j(t) for every mode", modes_lo,
                           modes_hi),
        numeric_inequality("theorem_m.gap", STATEMENT,
                           "exact E F_lt(w_t) - F* <= tr bound of H_lt over the modes / 2",
                           gap_lo, gap_hi),
        numeric_identity("theorem_m.fixed_equality", STATEMENT,
                         "every node fixed: d_j(t) = exact v_j^T E[u u^T] v_j (tight)",
                         eq_lo, eq_hi, floor=1e-12),
        numeric_identity("theorem_m.step_reference", STATEMENT,
                         "shipped first step = plain-loop recomputation (same c grid)",
                         step_got, step_want, floor=1e-12),
        numeric_identity("theorem_m.symbolic_vs_shipped", STATEMENT,
                         "one fixed 1-D node: sympy closed form (lambdified) = shipped",
                         sym_got, sym_want, floor=1e-12),
        CheckResult("theorem_m.never_certified_unstable", STATEMENT,
                    "the certificate never holds on mean-square unstable dynamics", "numeric",
                    cert_unstable == 0, max(6, instances // 6),
                    0.0 if cert_unstable == 0 else -1.0),
    ]
    return checks, [tightness(STATEMENT, f"modal e bound (t={T_ROUNDS}, certified)", final[1],
                              final[0])]


def _fixed_count(rng: np.random.Generator, n_inst: int) -> list[CheckResult]:
    """Theorem M with ``per_round`` against the fixed-count draw, every drawn set and pick
    enumerated (:mod:`proofs_check._fixed_count`), and its first step by plain loops."""
    lo: list[float] = []
    hi: list[float] = []
    step_got: list[float] = []
    step_want: list[float] = []
    for _ in range(n_inst):
        fc = _fc.random_fixed(rng)
        pq = fc.pq
        ref = reference(pq)
        w0 = ref.w_star + rng.normal(size=pq.d) * rng.uniform(0.2, 2.0)
        for f in (0.3, 0.9, 1.5):
            eta = f * 2.0 / (ref.L_t + ref.Ls)
            second = _fc.exact_second(fc, w0 - ref.w_star, eta, T_ROUNDS)
            mb = theorem_m.modal_bound(T_ROUNDS, eta=eta, q=pq.inst.q, beta=pq.inst.beta,
                                       H_pair=pq.A, grad_opt=ref.grad_pair, noise_cov=pq.Sigma,
                                       u0=w0 - ref.w_star, per_round=fc.per_round)
            for t in (1, 5, T_ROUNDS):
                exact_modes = np.einsum("dj,de,ej->j", mb.basis, second[t], mb.basis)
                fin = np.isfinite(mb.d[t]) & np.isfinite(exact_modes)
                # rounding of the exact side, as in theorem_m.modes
                slack = pq.d**2 * 4 * np.finfo(float).eps * float(np.abs(second[t]).max())
                lo += exact_modes[fin].tolist()
                hi += (mb.d[t][fin] + slack).tolist()
            if f < 1:
                want = _one_step_reference(pq, eta, mb.d[0], mb.basis, mb.eigenvalues, fc.c)
                step_got += mb.d[1].tolist()
                step_want += want.tolist()
    return [
        numeric_inequality("theorem_m.fixed_count_modes", STATEMENT_F,
                           "fixed-count draw (enumerated): exact v_j^T E[u_t u_t^T] v_j <= "
                           "d_j(t) with per_round", lo, hi),
        numeric_identity("theorem_m.fixed_count_step_reference", STATEMENT_F,
                         "per_round: shipped first step = plain loops with c(N, n) from the "
                         "inclusion probabilities", step_got, step_want, floor=1e-12),
    ]
