r"""Theorem B (tau local steps, no gradient bound along the trajectory): exact moments of CIS
training with :math:`\tau = 2..5` local steps on quadratics.

Checked: the bound is never below the exact :math:`\mathbb E\|w_t - w^*\|^2` (random instances,
several :math:`c, \theta`); a drift-dominated instance (two fixed heterogeneous nodes, no
noise, started at :math:`w^*`: the exact error is drift alone), where dropping the drift term
makes the bound 0; the drift factor's sum (sympy); and the sympy closed form against the
shipped function at random points (so the drift factor, :math:`\kappa`, :math:`B` and every
term are compared with an independent expression).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from cistheory.bounds import theorem_b

from ._core import CheckResult, Tightness, numeric_identity, numeric_inequality, symbolic_zero
from ._instances import CISInstance
from ._second import exact_path, random_instance, reference
from ._sgd_exact import PairQuadratics

__all__ = ["run"]

STATEMENT = "Theorem B"
T_ROUNDS = 20


def _symbolic(rng: np.random.Generator) -> list[CheckResult]:
    from cistheory.symbolic.theorem_b import drift_factor_sum

    lhs, rhs = drift_factor_sum()
    return [symbolic_zero("theorem_b.drift_factor_symbolic", STATEMENT,
                          "(1/tau) sum_{s<tau} s^2 = (tau - 1)(2 tau - 1)/6", lhs - rhs,
                          sorted(lhs.free_symbols | rhs.free_symbols, key=str), rng,
                          positive=sorted(lhs.free_symbols | rhs.free_symbols, key=str))]


def _drift_instance(rng: np.random.Generator) -> PairQuadratics:
    """Two fixed 1-D nodes with different minimisers, no noise."""
    a = rng.uniform(0.5, 2.0, size=2)
    q = np.array([[1.0], [1.0]])
    m = np.array([1.0, 1.0])
    inst = CISInstance(q=q, m=m, lt=np.array([1.0]), beta=np.array([[0.5], [0.5]]))
    A = a.reshape(2, 1, 1, 1)
    c = np.array([[[-1.0]], [[1.0]]]) * rng.uniform(0.5, 2.0)
    return PairQuadratics(inst=inst, A=A, c=c, Sigma=np.zeros((2, 1, 1, 1)))


def _inputs(pq: PairQuadratics) -> dict[str, Any]:
    ref = reference(pq)
    return dict(mu_t=ref.mu_t, L_t=ref.L_t, Ls=ref.Ls, Vs=ref.Vs, q=pq.inst.q,
                beta=pq.inst.beta, L_pair=ref.L_pair,
                noise_var=np.trace(pq.Sigma, axis1=2, axis2=3),
                grad2_opt=(ref.grad_pair**2).sum(axis=2))


@functools.cache
def _expr(tau: int) -> Callable[..., float]:
    from cistheory.symbolic.theorem_b import local_distance_bound_expr

    return local_distance_bound_expr(np.ones((2, 2), dtype=bool), tau).lambdify()


def _lambdified(rng: np.random.Generator, n: int) -> list[CheckResult]:
    """Random positive arrays on a full 2 x 2 support (Theorem B has no single-pair case),
    tau = 1, 2, 3; the sympy forms are built once per tau."""
    got: list[float] = []
    want: list[float] = []
    while len(got) < n:
        tau = int(rng.integers(1, 4))
        q = rng.uniform(0.05, 0.5, size=(2, 2))
        beta = rng.dirichlet(np.ones(4)).reshape(2, 2)
        kw: dict[str, Any] = dict(mu_t=rng.uniform(0.05, 0.5), L_t=rng.uniform(0.5, 2.0),
                  Ls=rng.uniform(0.0, 2.0), Vs=rng.uniform(0.0, 2.0), q=q, beta=beta,
                  L_pair=rng.uniform(0.1, 3.0, size=(2, 2)),
                  noise_var=rng.uniform(0.0, 2.0, size=(2, 2)),
                  grad2_opt=rng.uniform(0.0, 2.0, size=(2, 2)))
        c, theta = float(rng.uniform(0.2, 5.0)), float(rng.uniform(0.2, 5.0))
        eta = rng.uniform(0.001, 0.05) / tau
        t, r0 = int(rng.integers(0, 40)), float(rng.uniform(0.1, 3.0))
        val = theorem_b.local_distance_bound(t, tau=tau, eta=eta, r0=r0, c=c, theta=theta, **kw)
        if not np.isfinite(val):
            continue
        got.append(float(val))
        want.append(_expr(tau)(t=t, eta=eta, r0=r0, c=c, theta=theta, **kw))
    return [numeric_identity("theorem_b.symbolic_vs_shipped", STATEMENT,
                             "sympy closed form of Theorem B (lambdified) = the shipped function "
                             "(every factor and term, the drift factor and drift term included)",
                             np.array(got), np.array(want), tol=1e-9)]


def run(rng: np.random.Generator, instances: int) -> tuple[list[CheckResult], list[Tightness]]:
    """Theorem B on random instances and on drift-dominated ones."""
    checks = _symbolic(rng)
    lo: list[np.ndarray] = []
    hi: list[np.ndarray] = []
    ts = np.arange(T_ROUNDS + 1)
    for j in range(max(6, instances // 6)):
        pq = random_instance(rng, small_q=j % 3 == 0)
        tau = int(rng.integers(2, 6))
        kw = _inputs(pq)
        w0 = pq.w_star + rng.normal(size=pq.d) * rng.uniform(0.2, 2.0)
        r0 = float((w0 - pq.w_star) @ (w0 - pq.w_star))
        eta = rng.uniform(0.05, 1.0) / (tau * (float(kw["L_t"]) + float(kw["Ls"])))
        ex = exact_path(pq, w0, np.full(T_ROUNDS, eta), tau)["dist2"]
        cs = [1.0] if float(kw["Vs"]) > 0 else [0.0]
        for c in cs:
            for theta in (0.1, 1.0, 10.0):
                bnd = np.asarray(theorem_b.local_distance_bound(ts, tau=tau, eta=eta, r0=r0, c=c,
                                                                theta=theta, **kw))
                fin = np.isfinite(bnd)
                lo.append(ex[fin])
                hi.append(bnd[fin])
    drift_lo, drift_hi = [], []
    for _ in range(6):
        pq = _drift_instance(rng)
        kw = _inputs(pq)
        tau = int(rng.choice([4, 8]))
        eta = 0.25 / (tau * float(kw["L_t"]))
        ex = exact_path(pq, pq.w_star, np.full(T_ROUNDS, eta), tau)["dist2"]
        bnd = np.asarray(theorem_b.local_distance_bound(ts, tau=tau, eta=eta, r0=0.0,
                                                        c=float("inf"), theta=1.0, **kw))
        fin = np.isfinite(bnd)
        drift_lo.append(ex[fin][1:])
        drift_hi.append(bnd[fin][1:])
    checks += [
        numeric_inequality("theorem_b.exact", STATEMENT,
                           "exact E||w_t - w*||^2 <= Theorem B (tau = 2..5, theta = 0.1, 1, 10)",
                           np.concatenate(lo), np.concatenate(hi)),
        numeric_inequality("theorem_b.drift_only", STATEMENT,
                           "two fixed heterogeneous nodes from w*, no noise: the exact error is "
                           "drift alone, and the bound's drift term keeps it above",
                           np.concatenate(drift_lo), np.concatenate(drift_hi)),
    ]
    checks += _lambdified(rng, max(6, instances // 10))
    return checks, []
