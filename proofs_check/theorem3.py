r"""Theorem 3 (generalisation) by Monte Carlo on a bounded linear-predictor problem.

Exit :math:`k` pools the samples of the nodes in :math:`E_k`; node :math:`i` draws its
:math:`m_i` samples from its own law (independent, not identically distributed). Inputs
:math:`x = X u` with :math:`u` from a finite set of unit vectors, labels :math:`y = \pm 1`,
predictors :math:`\|w\| \le W`, loss :math:`\ell(w; x, y) = B/2 + \rho\, y \langle w, x
\rangle` with :math:`\rho = B/(2WX)`, so :math:`\ell \in [0, B]` and :math:`\ell` is
:math:`\rho`-Lipschitz in the prediction. Then exactly

.. math:: \sup_{\|w\| \le W} |R_k(w) - F_k(w)| = \rho W \|\mu_k - \hat\mu_k\|,

with :math:`\mu_k = \sum_{i \in E_k} (m_i/M_k)\, \mathbb E_i[y x]` and :math:`\hat\mu_k` its
sample mean, so the uniform deviation is computed exactly for every drawn sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cistheory import bounds

from ._core import CheckResult, Tightness, numeric_inequality, symbolic_zero, tightness

__all__ = ["run"]

STATEMENT = "Theorem 3"
DRAWS = 4000


def _symbolic(rng: np.random.Generator) -> list[CheckResult]:
    import sympy as sp

    M, B, K, dl = sp.symbols("M B K delta", positive=True)
    t = B * sp.sqrt(sp.log(2 * K / dl) / (2 * M))
    return [
        symbolic_zero(
            "theorem3.union_bound_symbolic", STATEMENT,
            "McDiarmid tail exp(-2 M t^2 / B^2) at t = B sqrt(ln(2K/delta)/(2M)) is delta/(2K)",
            sp.exp(-2 * M * t**2 / B**2) - dl / (2 * K),
            [M, B, K, dl], rng, positive=[M, B, K], unit=[dl]),
    ]


@dataclass(frozen=True)
class _Problem:
    cells: np.ndarray  # (2J, dim): the values of y x
    probs: np.ndarray  # (nodes, 2J): each node's law over the cells
    m: np.ndarray  # (nodes,) samples per node
    member: np.ndarray  # (nodes, K) node i in E_k
    X: float
    W: float
    B: float


def _instance(rng: np.random.Generator) -> _Problem:
    n_nodes, K, J, dim = int(rng.integers(3, 7)), 3, 4, 2
    u = rng.normal(size=(J, dim))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    X, W, B = rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0)
    cells = np.concatenate([X * u, -X * u])  # y x for y = +1 and y = -1
    probs = rng.dirichlet(np.full(2 * J, 0.5), size=n_nodes)  # node laws over the cells
    m = rng.integers(1, 15, size=n_nodes)
    member = rng.random((n_nodes, K)) < 0.6
    member[0] = True  # every exit has a population
    return _Problem(cells=cells, probs=probs, m=m, member=member, X=X, W=W, B=B)


def _rademacher_draws(
    rng: np.random.Generator, p: _Problem, M: np.ndarray, rho: float
) -> np.ndarray:
    """Monte Carlo draws of rho W ||(1/M_k) sum_j sigma_j y_j x_j|| per exit, shape (DRAWS, K):
    each pooled sample's cell drawn from its node's law, then Rademacher signs."""
    m, member, cells = p.m, p.member, p.cells
    K = member.shape[1]
    sig = np.empty((DRAWS, K))
    for k in range(K):
        idx = np.repeat(np.arange(len(m)), m)
        idx = idx[member[idx, k]]
        cell = np.empty((DRAWS, idx.size), dtype=int)
        for j, i in enumerate(idx):
            cell[:, j] = rng.choice(len(cells), size=DRAWS, p=p.probs[i])
        signs = rng.choice([-1.0, 1.0], size=(DRAWS, idx.size))
        v = np.einsum("rj,rjd->rd", signs, cells[cell]) / M[k]
        sig[:, k] = rho * p.W * np.linalg.norm(v, axis=1)
    return sig


Pairs = tuple[list[float], list[float]]


def _checks(
    delta: float,
    freq: list[float],
    freq_rhs: list[float],
    sym: Pairs,
    rad: Pairs,
    mcd: Pairs,
    fin: tuple[list[np.ndarray], list[np.ndarray]],
) -> list[CheckResult]:
    """The numeric checks of Theorem 3 from the collected Monte Carlo statistics."""
    sym_l, sym_r = sym
    rad_l, rad_r = rad
    mcd_l, mcd_r = mcd
    fin_l, fin_r = fin
    return [
        numeric_inequality(
            "theorem3.violation_frequency", STATEMENT,
            f"frequency of {{exists k: sup_w |R_k - F_k| > eps_k}} over {DRAWS} samples "
            "<= delta (+3 binomial SE)", np.array(freq), np.array(freq_rhs),
            detail=f"max violation frequency {max(freq):.4f} at delta = {delta}"),
        numeric_inequality(
            "theorem3.symmetrisation", STATEMENT,
            "E sup_w (R_k - F_k) <= 2 Rad_k (Monte Carlo, 4 SE allowance)",
            np.array(sym_l), np.array(sym_r)),
        numeric_inequality(
            "theorem3.linear_rademacher", STATEMENT,
            "Rad_k <= rho W X / sqrt(M_k) = cistheory.bounds.linear_rademacher (4 SE)",
            np.array(rad_l), np.array(rad_r)),
        numeric_inequality(
            "theorem3.mcdiarmid", STATEMENT,
            "P(sup - E sup > B sqrt(ln(2K/delta)/(2 M_k))) <= delta/(2K) (+3 binomial SE)",
            np.array(mcd_l), np.array(mcd_r)),
        numeric_inequality(
            "theorem3.excess_risk", STATEMENT,
            "on the event: R_lam(w) - min R_lam <= F_lam(w) - F_lam* + 2 sum lam_k eps_k",
            np.concatenate(fin_l), np.concatenate(fin_r)),
    ]


def run(rng: np.random.Generator, instances: int) -> tuple[list[CheckResult], list[Tightness]]:
    """Monte Carlo checks of every step of Theorem 3 (``instances // 10`` problems)."""
    checks = _symbolic(rng)
    n_inst = max(4, instances // 10)
    delta = 0.05
    freq, freq_rhs = [], []
    sym_l, sym_r, rad_l, rad_r, mcd_l, mcd_r, fin_l, fin_r = ([] for _ in range(8))
    ratios_b, ratios_a = [], []
    for _ in range(n_inst):
        p = _instance(rng)
        cells, probs, m, member = p.cells, p.probs, p.m, p.member
        X, W, B = p.X, p.W, p.B
        rho = B / (2 * W * X)
        K = member.shape[1]
        M = (member * m[:, None]).sum(axis=0).astype(float)
        node_mean = probs @ cells  # E_i[y x]
        counts = np.stack([rng.multinomial(int(mi), pr, size=DRAWS) for mi, pr in
                           zip(m, probs, strict=True)], axis=1)  # (draws, nodes, cells)
        node_sum = counts @ cells  # (draws, nodes, dim): sum of y x over node samples
        frac = member * m[:, None] / M[None, :]
        mu = np.einsum("ik,id->kd", frac, node_mean)
        mu_hat = np.einsum("ik,rid->rkd", member.astype(float), node_sum) / M[None, :, None]
        sup = rho * W * np.linalg.norm(mu_hat - mu[None], axis=2)  # (draws, K), exact
        rad = bounds.linear_rademacher(M, rho, W, X)
        eps = bounds.generalization_bound(M, delta, B, rad)
        violated = (sup > eps[None, :]).any(axis=1)
        freq.append(float(violated.mean()))
        # Allowance for Monte Carlo error: 3 binomial standard errors at frequency delta.
        freq_rhs.append(delta + 3 * np.sqrt(delta * (1 - delta) / DRAWS))
        # symmetrisation: E sup(R - F) <= 2 Rad, Rad = rho W E||(1/M) sum sigma_j y_j x_j||
        # (Monte Carlo for both sides; 4 combined standard errors of allowance)
        sig = _rademacher_draws(rng, p, M, rho)
        for k in range(K):
            se = np.sqrt(sup[:, k].var(ddof=1) / DRAWS + 4 * sig[:, k].var(ddof=1) / DRAWS)
            sym_l.append(float(sup[:, k].mean()) - 4 * se)
            sym_r.append(2 * float(sig[:, k].mean()))
            rad_l.append(float(sig[:, k].mean()) - 4 * float(sig[:, k].std(ddof=1))
                         / np.sqrt(DRAWS))
            rad_r.append(float(rad[k]))
            # McDiarmid (one exit, one side): P(sup - E sup > B sqrt(ln(1/d')/(2M))) <= d'
            dprime = delta / (2 * K)
            thr = float(sup[:, k].mean()) + B * np.sqrt(np.log(1 / dprime) / (2 * M[k]))
            mcd_l.append(float((sup[:, k] > thr).mean()))
            mcd_r.append(dprime + 3 * np.sqrt(dprime * (1 - dprime) / DRAWS))
        # excess risk on the event: R_lam(w) - min R_lam <= F_lam(w) - F_lam* + 2 sum lam eps
        lam = rng.dirichlet(np.ones(K))
        ok = ~violated
        mu_lam = lam @ mu
        muh_lam = np.einsum("k,rkd->rd", lam, mu_hat[ok])
        w = rng.normal(size=(int(ok.sum()), mu.shape[1]))
        w *= W * rng.random((w.shape[0], 1)) / np.linalg.norm(w, axis=1, keepdims=True)
        excess_R = rho * (w @ mu_lam) + rho * W * np.linalg.norm(mu_lam)
        excess_F = rho * np.einsum("rd,rd->r", w, muh_lam) + rho * W * np.linalg.norm(muh_lam,
                                                                                     axis=1)
        fin_l.append(excess_R)
        fin_r.append(excess_F + 2 * float(lam @ eps))
        ratios_b.append(eps)
        ratios_a.append(np.quantile(sup, 1 - delta, axis=0))
    checks += _checks(delta, freq, freq_rhs, (sym_l, sym_r), (rad_l, rad_r), (mcd_l, mcd_r),
                      (fin_l, fin_r))
    tight = [tightness(STATEMENT, "eps_k / (1-delta)-quantile of sup|R_k - F_k|",
                       np.concatenate(ratios_b), np.concatenate(ratios_a))]
    return checks, tight
