r"""Corollary (the full bound): Theorems 1(c) and 2 combined, exactly, on quadratics.

SGD with additive gradient noise (covariance :math:`\Sigma`, :math:`V = \mathrm{tr}\Sigma`)
on :math:`F_{\tilde\lambda} = \sum_k \tilde\lambda_k F_k` for per-exit quadratics; the exact
:math:`\mathbb E[F_\lambda(w_T)] - F_\lambda^*` (mean and second moment propagated) is
compared with ``cistheory.bounds.full_bound`` (generalisation term 0: the training sample is
the population here). ``cis_bound`` is checked against an independent assembly of its parts.
"""

from __future__ import annotations

import numpy as np

from cistheory import bounds

from ._core import CheckResult, Tightness, numeric_identity, numeric_inequality, tightness
from .theorem1 import random_quadratic_exits

__all__ = ["run"]

STATEMENT = "Corollary"
T_ROUNDS = 40


def _reference_identity(rng: np.random.Generator, n: int) -> list[CheckResult]:
    from cistheory import reference_cis, shallower_with_probability

    got, want = [], []
    for _ in range(n):
        split = ["80-15-5", "33-33-33", "5-15-80", "45-35-20"][int(rng.integers(0, 4))]
        cis = reference_cis(split)
        part = shallower_with_probability(cis, {2: rng.uniform(0, 0.9), 3: rng.uniform(0, 0.9)})
        lam = cis.lam
        lt = rng.dirichlet(np.ones(cis.n_exits)) * 0.9 + 0.1 / cis.n_exits
        sigma = rng.uniform(0.001, 0.01, size=cis.n_exits)
        G = rng.uniform(0.0, 0.1, size=cis.n_exits)
        L, mu = rng.uniform(1.0, 3.0), rng.uniform(0.05, 0.5)
        eta = rng.uniform(0.1, 1.0) / L
        const = bounds.CISConstants(L=L, mu=mu, Gamma=rng.uniform(0, 1), sigma=sigma,
                                    gap0=rng.uniform(0.1, 5.0), T=int(rng.integers(1, 200)),
                                    eta=eta, G=G)
        terms = bounds.cis_bound(cis, part, lt, const)
        # independent assembly: beta from the definition, V by Lemma 2's formula
        q, m = part.q, cis.data
        mem = q > 0
        Mk = (mem * m[:, None]).sum(0)
        beta = np.where(mem, lt[None, :] * m[:, None] / np.where(Mk > 0, Mk, 1)[None, :], 0)
        fixed = (q == 1.0).any(axis=1)
        V = float(np.where(mem, beta**2 * (sigma**2 + (~fixed)[:, None] * G**2)
                           / np.where(mem, q, 1), 0).sum())
        trained = Mk > 0
        K = int(trained.sum())
        eps = np.where(trained, np.sqrt(np.log(2 * K / 0.05) / (2 * np.where(trained, Mk, 1))),
                       0.0)
        r_T = (1 - eta * mu) ** const.T
        eT = r_T * const.gap0 + (1 - r_T) * eta * L * V / (2 * mu)
        c2 = float(np.sum((lam - lt) ** 2 / lt))
        gen = 2 * float(lam @ eps)
        bias = 2 * L / mu * c2 * const.Gamma
        opt = 2 * L**2 / mu**2 * eT
        tight = (np.sqrt(2 * L * c2 * const.Gamma) + L * np.sqrt(2 * eT / mu)) ** 2 / (2 * mu)
        got.append([terms.generalisation, terms.bias, terms.optimisation, terms.total,
                    terms.total_split])
        want.append([gen, bias, opt, gen + tight, gen + bias + opt])
    return [numeric_identity(
        "corollary.cis_bound_assembly", STATEMENT,
        "cis_bound on reference CIS = independent assembly (beta, Lemma 2 V, Thm 2, Thm 1(b), "
        "Thm 3)", np.array(got), np.array(want), floor=1e-12)]


def run(rng: np.random.Generator, instances: int) -> tuple[list[CheckResult], list[Tightness]]:
    """Exact excess training error after T SGD steps vs ``full_bound``."""
    exact, tot, split, parts_l, parts_r = [], [], [], [], []
    d = 3
    for j in range(instances):
        k = int(rng.integers(2, 5))
        P = random_quadratic_exits(rng, k, d)
        lam = rng.dirichlet(np.ones(k))
        lt = lam.copy() if j % 4 == 0 else rng.dirichlet(np.ones(k)) * 0.95 + 0.05 / k
        L = P.L
        H_lam, H_lt = P.hessian(lam), P.hessian(lt)
        mu = float(np.linalg.eigvalsh(H_lam)[0])
        ev = np.linalg.eigvalsh(H_lt)
        mu_t, L_t = float(ev[0]), float(ev[-1])
        w_t, w_lam = P.minimiser(lt), P.minimiser(lam)
        Gamma = P.mixed(lt, w_t)
        B = rng.normal(size=(d, d)) * rng.uniform(0, 0.5)
        Sigma = B @ B.T
        V = float(np.trace(Sigma))
        eta = rng.uniform(0.1, 1.0) / L_t
        m = rng.normal(size=d) * rng.uniform(0.1, 3.0)  # E[w_0 - w_t*] (w_0 fixed)
        S = np.outer(m, m)
        gap0 = P.gap(lt, w_t + m)
        Pm = np.eye(d) - eta * H_lt
        for _ in range(T_ROUNDS):
            m = Pm @ m
            S = Pm @ S @ Pm.T + eta**2 * Sigma
        off = w_t - w_lam
        second = S + np.outer(m, off) + np.outer(off, m) + np.outer(off, off)
        exact.append(0.5 * float(np.trace(H_lam @ second)))
        eps = rng.uniform(0, 0.1, size=k)
        terms = bounds.full_bound(lam, lt, L=L, mu=mu, mu_t=mu_t, L_t=L_t, Gamma=Gamma, V=V,
                                  gap0=gap0, T=T_ROUNDS, eps=eps, eta=eta)
        tot.append(terms.total - terms.generalisation)
        split.append(terms.total_split - terms.generalisation)
        parts_l.append([terms.generalisation, terms.total_split])
        parts_r.append([2 * float(lam @ eps), terms.generalisation + terms.bias +
                        terms.optimisation])
    checks = [
        numeric_inequality(
            "corollary.exact_vs_total", STATEMENT,
            "exact E[F_lam(w_T)] - F_lam* (SGD on F_lt, T = 40) <= full_bound.total "
            "(tight Theorem 1(b) with Theorem 2)", np.array(exact), np.array(tot)),
        numeric_inequality(
            "corollary.total_le_split", STATEMENT, "full_bound: total <= total_split",
            np.array(tot), np.array(split)),
        numeric_identity(
            "corollary.terms_add_up", STATEMENT,
            "generalisation = 2 sum lam eps and total_split = sum of the three terms",
            np.array(parts_l), np.array(parts_r)),
    ]
    checks += _reference_identity(rng, max(5, instances // 10))
    tight = [tightness(STATEMENT, "full_bound.total (T=40, eps=0 part)", tot, exact)]
    return checks, tight
