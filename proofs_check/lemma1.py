"""Lemma 1 (unbiased aggregation): symbolic and exact-enumeration checks."""

from __future__ import annotations

import numpy as np

from ._core import CheckResult, Tightness, numeric_identity, symbolic_zero
from ._instances import outcomes, random_cis_instance

__all__ = ["run"]

STATEMENT = "Lemma 1"


def _symbolic(rng: np.random.Generator) -> list[CheckResult]:
    import sympy as sp

    q = sp.symbols("q11 q12 q21 q22", positive=True)
    b = sp.symbols("b11 b12 b21 b22", positive=True)
    d = sp.symbols("D11 D12 D21 D22", real=True)
    Q = [[q[0], q[1]], [q[2], q[3]]]
    B = [[b[0], b[1]], [b[2], b[3]]]
    D = [[d[0], d[1]], [d[2], d[3]]]
    # options per node: exit 0, exit 1, idle (probability 1 - q_i1 - q_i2)
    expectation = sp.Integer(0)
    for c0 in (0, 1, -1):
        for c1 in (0, 1, -1):
            prob = sp.Integer(1)
            agg = sp.Integer(0)
            for i, c in enumerate((c0, c1)):
                if c == -1:
                    prob *= 1 - Q[i][0] - Q[i][1]
                else:
                    prob *= Q[i][c]
                    agg += B[i][c] / Q[i][c] * D[i][c]
            expectation += prob * agg
    target = sum(B[i][k] * D[i][k] for i in range(2) for k in range(2))
    return [
        symbolic_zero(
            "lemma1.expectation_symbolic",
            STATEMENT,
            "E[sum_picked (beta/q) Delta] = sum beta Delta, N=2, K=2, symbolic q (with idling)",
            expectation - target,
            [*q, *b, *d],
            rng,
            unit=q,
            positive=b,
        )
    ]


def run(rng: np.random.Generator, instances: int) -> tuple[list[CheckResult], list[Tightness]]:
    """Lemma 1 checks: symbolic identity and exact enumeration on random small trees."""
    checks = _symbolic(rng)
    lhs, rhs_beta, rhs_def = [], [], []
    for _ in range(instances):
        n, k, d = int(rng.integers(2, 5)), int(rng.integers(2, 4)), 3
        inst = random_cis_instance(rng, n, k)
        delta = rng.normal(size=(n, k, d))
        agg_mean = np.zeros(d)
        for prob, choice in outcomes(inst.q):
            agg = np.zeros(d)
            for i, c in enumerate(choice):
                if c >= 0:
                    agg += inst.beta[i, c] / inst.q[i, c] * delta[i, c]
            agg_mean += prob * agg
        # the target from the definitions: sum_k lt_k sum_{i in E_k} (m_i / M_k) Delta_{i,k}
        target = np.zeros(d)
        for kk in range(k):
            members = inst.q[:, kk] > 0
            mk = inst.m[members].sum()
            if mk > 0:
                target += inst.lt[kk] * (inst.m[members, None] / mk * delta[members, kk]).sum(0)
        lhs.append(agg_mean)
        rhs_beta.append(np.einsum("ik,ikd->d", inst.beta, delta))
        rhs_def.append(target)
    checks.append(
        numeric_identity(
            "lemma1.enumeration",
            STATEMENT,
            "exact expectation over all selection outcomes = sum_k lt_k sum_i (m_i/M_k) Delta",
            np.array(lhs),
            np.array(rhs_def),
            floor=1.0,
        )
    )
    checks.append(
        numeric_identity(
            "lemma1.beta_weights",
            STATEMENT,
            "cistheory.beta gives the pair weights of F_lt: sum beta Delta = definition",
            np.array(rhs_beta),
            np.array(rhs_def),
            floor=1.0,
        )
    )
    return checks, []
