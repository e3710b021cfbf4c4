"""Lemma 2 (exact sampling variance, tau = 1, and its convex bound V)."""

from __future__ import annotations

import numpy as np

from cistheory import bounds

from ._core import (
    CheckResult,
    Tightness,
    numeric_identity,
    numeric_inequality,
    symbolic_zero,
    tightness,
)
from ._instances import CISInstance, outcomes, random_cis_instance

__all__ = ["exact_variance_closed_form", "exact_variance_enumerated", "run"]

STATEMENT = "Lemma 2"


def exact_variance_enumerated(inst: CISInstance, grad: np.ndarray, s2: np.ndarray) -> float:
    r"""E||g - grad F_lt||^2 by enumerating every selection outcome (noise added exactly).

    Given the outcome, the noise of the picked pairs is independent with mean zero, so its
    contribution is :math:`\sum_{\text{picked}} (\beta/q)^2 s^2`.
    """
    full = np.einsum("ik,ikd->d", inst.beta, grad)
    total = 0.0
    for prob, choice in outcomes(inst.q):
        agg = np.zeros(grad.shape[2])
        noise = 0.0
        for i, c in enumerate(choice):
            if c >= 0:
                w = inst.beta[i, c] / inst.q[i, c]
                agg += w * grad[i, c]
                noise += w * w * s2[i, c]
        total += prob * (float(np.sum((agg - full) ** 2)) + noise)
    return total


def exact_variance_closed_form(inst: CISInstance, grad: np.ndarray, s2: np.ndarray) -> float:
    r"""Lemma 2's formula: :math:`\sum_i [\sum_k \beta^2/q (\|\nabla f\|^2 + s^2) -
    \|\sum_k \beta \nabla f\|^2]`."""
    pos = inst.q > 0
    safe = np.where(pos, inst.q, 1.0)
    sq = np.sum(grad**2, axis=2)
    first = np.where(pos, inst.beta**2 / safe * (sq + s2), 0.0).sum()
    mean_i = np.einsum("ik,ikd->id", inst.beta, grad)
    return float(first - np.sum(mean_i**2))


def _symbolic(rng: np.random.Generator) -> list[CheckResult]:
    import sympy as sp

    q = sp.symbols("q11 q12 q21 q22", positive=True)
    b = sp.symbols("b11 b12 b21 b22", positive=True)
    g = sp.symbols("g11 g12 g21 g22", real=True)
    s = sp.symbols("s11 s12 s21 s22", positive=True)
    Q = [[q[0], q[1]], [q[2], q[3]]]
    B = [[b[0], b[1]], [b[2], b[3]]]
    Gr = [[g[0], g[1]], [g[2], g[3]]]
    S = [[s[0], s[1]], [s[2], s[3]]]
    full = sum(B[i][k] * Gr[i][k] for i in range(2) for k in range(2))
    expectation = sp.Integer(0)
    for c0 in (0, 1, -1):
        for c1 in (0, 1, -1):
            prob = sp.Integer(1)
            agg = sp.Integer(0)
            noise = sp.Integer(0)
            for i, c in enumerate((c0, c1)):
                if c == -1:
                    prob *= 1 - Q[i][0] - Q[i][1]
                else:
                    prob *= Q[i][c]
                    agg += B[i][c] / Q[i][c] * Gr[i][c]
                    noise += (B[i][c] / Q[i][c]) ** 2 * S[i][c] ** 2
            expectation += prob * ((agg - full) ** 2 + noise)
    formula = sum(
        sum(B[i][k] ** 2 / Q[i][k] * (Gr[i][k] ** 2 + S[i][k] ** 2) for k in range(2))
        - (B[i][0] * Gr[i][0] + B[i][1] * Gr[i][1]) ** 2
        for i in range(2)
    )
    syms = [*q, *b, *g, *s]
    out = [
        symbolic_zero(
            "lemma2.variance_expansion_symbolic",
            STATEMENT,
            "E||g - grad F_lt||^2 by enumeration = closed form, N=2, K=2, symbolic",
            expectation - formula,
            syms,
            rng,
            unit=q,
            positive=[*b, *s],
        )
    ]
    # A fixed node (q = 1 on one exit): its term is exactly beta^2 s^2 (no G^2).
    bb, gg, ss = sp.symbols("beta g s", positive=True)
    fixed_term = bb**2 / 1 * (gg**2 + ss**2) - (bb * gg) ** 2
    out.append(
        symbolic_zero(
            "lemma2.fixed_node_symbolic",
            STATEMENT,
            "a node fixed at one exit contributes exactly beta^2 s^2",
            fixed_term - bb**2 * ss**2,
            [bb, gg, ss],
            rng,
            positive=[bb, gg, ss],
        )
    )
    return out


def _enumeration_checks(
    rng: np.random.Generator, instances: int
) -> tuple[list[CheckResult], list[Tightness]]:
    """Exact variance by enumeration against the closed form, the shipped function and V."""
    checks: list[CheckResult] = []
    enum, closed, shipped, vb, exact_for_vb = [], [], [], [], []
    for _ in range(instances):
        n, k, d = int(rng.integers(2, 5)), int(rng.integers(2, 4)), int(rng.integers(1, 4))
        inst = random_cis_instance(rng, n, k)
        grad = rng.normal(size=(n, k, d)) * rng.uniform(0.1, 3.0)
        s2 = rng.uniform(0.0, 2.0, size=(n, k))
        e = exact_variance_enumerated(inst, grad, s2)
        enum.append(e)
        closed.append(exact_variance_closed_form(inst, grad, s2))
        shipped.append(bounds.variance_exact(inst.q, inst.beta, grad, s2))
        # bound constants: sigma2 >= s2 and G2 >= ||grad||^2 (per pair), with random slack
        sigma2 = s2 * rng.uniform(1.0, 1.5, size=s2.shape)
        G2 = np.sum(grad**2, axis=2) * rng.uniform(1.0, 1.5, size=s2.shape)
        vb.append(bounds.variance_bound(inst.q, inst.beta, sigma2, G2))
        exact_for_vb.append(e)
    checks.append(
        numeric_identity(
            "lemma2.enumeration_vs_formula",
            STATEMENT,
            "exact variance by enumerating all outcomes = Lemma 2 closed form",
            np.array(enum),
            np.array(closed),
            floor=1e-6,
        )
    )
    checks.append(
        numeric_identity(
            "lemma2.shipped_variance_exact",
            STATEMENT,
            "cistheory.bounds.variance_exact = enumerated exact variance",
            np.array(shipped),
            np.array(enum),
            floor=1e-6,
        )
    )
    checks.append(
        numeric_inequality(
            "lemma2.variance_bound",
            STATEMENT,
            "exact variance <= cistheory.bounds.variance_bound V(lt, q)",
            np.array(exact_for_vb),
            np.array(vb),
        )
    )
    return checks, [tightness(STATEMENT, "variance_bound", vb, exact_for_vb)]


def _fixed_tiers(rng: np.random.Generator, instances: int) -> CheckResult:
    """Special case: every node fixed at its deepest exit, equal data within a tier."""
    from cistheory.system.aggregation import beta
    from cistheory.system.participation import Participation

    lhs, rhs = [], []
    for _ in range(instances):
        k = int(rng.integers(1, 5))
        n_k = rng.integers(1, 5, size=k)
        m_k = rng.integers(1, 100, size=k).astype(np.float64)
        caps = np.repeat(np.arange(k), n_k)
        q = np.zeros((caps.size, k))
        q[np.arange(caps.size), caps] = 1.0
        lt = rng.dirichlet(np.ones(k))
        b = beta(Participation(q=q, data=m_k[caps], name="tiers"), lt)
        sigma = rng.uniform(0.1, 2.0, size=k)
        lhs.append(bounds.variance_bound(q, b, sigma**2, rng.uniform(0, 5, size=k)))
        rhs.append(float(np.sum(lt**2 * sigma**2 / n_k)))
    return numeric_identity(
        "lemma2.fixed_tiers",
        STATEMENT,
        "all nodes fixed, equal data per tier: V = sum lt_k^2 sigma_k^2 / n_k",
        np.array(lhs),
        np.array(rhs),
    )


def _monte_carlo_large(rng: np.random.Generator, instances: int) -> CheckResult:
    """Monte Carlo agreement on larger trees (enumeration is out of reach there)."""
    n_mc = max(3, instances // 50)
    draws = 20000
    worst = np.inf
    for _ in range(n_mc):
        n, k, d = int(rng.integers(20, 40)), 3, 2
        inst = random_cis_instance(rng, n, k)
        grad = rng.normal(size=(n, k, d))
        s2 = rng.uniform(0.0, 1.0, size=(n, k))
        exact = exact_variance_closed_form(inst, grad, s2)
        # sample choices per node: categorical over exits and idle
        probs = np.concatenate([inst.q, 1.0 - inst.q.sum(1, keepdims=True)], axis=1)
        probs = np.clip(probs, 0.0, None)
        cum = np.cumsum(probs, axis=1)
        u = rng.random((draws, n, 1))
        choice = (u > cum[None, :, :]).sum(axis=2)  # index in 0..K (K = idle)
        weight = np.zeros((draws, n))
        gsel = np.zeros((draws, n, d))
        noise_var = np.zeros((draws, n))
        rows = np.arange(n)
        pos = inst.q > 0
        wtab = np.where(pos, inst.beta / np.where(pos, inst.q, 1.0), 0.0)
        for c in range(k):
            mask = choice == c
            weight = np.where(mask, wtab[rows, c][None, :], weight)
            gsel = np.where(mask[..., None], grad[rows, c][None, :, :], gsel)
            noise_var = np.where(mask, s2[rows, c][None, :], noise_var)
        xi = rng.normal(size=(draws, n, d)) * np.sqrt(noise_var / d)[..., None]
        g = np.einsum("tn,tnd->td", weight, gsel + xi)
        full = np.einsum("ik,ikd->d", inst.beta, grad)
        sq = np.sum((g - full) ** 2, axis=1)
        mean, se = float(sq.mean()), float(sq.std(ddof=1) / np.sqrt(draws))
        # Monte Carlo agreement: |mean - exact| within 5 standard errors (a false alarm
        # has probability ~6e-7 per tree under the CLT).
        worst = min(worst, 5.0 * se - abs(mean - exact))
    return CheckResult(
        name="lemma2.monte_carlo_large",
        statement=STATEMENT,
        step=f"Monte Carlo ({draws} draws) agrees with the formula on trees of 20-40 nodes",
        kind="numeric",
        passed=bool(worst >= 0.0),
        instances=n_mc,
        worst_slack=float(worst),
        tol=0.0,
        detail="slack = 5 SE - |MC mean - exact| (absolute)",
    )


def run(rng: np.random.Generator, instances: int) -> tuple[list[CheckResult], list[Tightness]]:
    """Lemma 2 checks: symbolic expansion, enumeration, shipped functions, bound V, MC."""
    checks = _symbolic(rng)
    enum_checks, tight = _enumeration_checks(rng, instances)
    checks += enum_checks
    checks.append(_fixed_tiers(rng, instances))
    checks.append(_monte_carlo_large(rng, instances))
    return checks, tight
