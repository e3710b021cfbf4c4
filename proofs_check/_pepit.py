r"""Theorem A against the exact worst case over a class of functions (PEPit, optional).

Class: :math:`N \le 2` single-exit nodes, :math:`f_i` :math:`L_i`-smooth and
:math:`\mu_i`-strongly convex, node :math:`i` trains with probability :math:`q_i` and weight
:math:`\beta_i`, no additive noise, sampling variance at the optimum
:math:`\sum_i\beta_i^2(1/q_i - 1)\|\nabla f_i(x^*)\|^2 \le v`. Every selection path of
:math:`t` rounds is enumerated, so PEPit (Goujaud et al.; performance estimation with
interpolation conditions, Taylor, Hendrickx and Glineur 2017) returns the exact worst case of
:math:`\mathbb E\|x_t - x^*\|^2` over the class, given :math:`\|x_0 - x^*\|^2 \le 1`. Theorem A's
constants for the class are :math:`\mu_t = \sum\beta_i\mu_i`, :math:`L_t = \sum\beta_iL_i`,
:math:`L_s = \max_i\beta_iL_i(1/q_i - 1)`, :math:`V_s = v`, :math:`V_n = 0`; the bound over the
worst case must be at least 1. PEPit is the optional ``verify`` extra; without it the check
says it skipped.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import numpy as np

from cistheory.bounds import theorem_a

from ._core import CheckResult

__all__ = ["CASES", "pepit_checks", "worst_case"]

# name, L_i, mu_i, q_i, beta_i, step as a fraction of 2/(L_t + L_s), v, rounds
CASES: tuple[tuple[str, tuple[float, ...], tuple[float, ...], tuple[float, ...],
                   tuple[float, ...], float, float, int], ...] = (
    ("1 sampled + 1 fixed", (1.0, 2.0), (0.1, 0.2), (0.3, 1.0), (0.5, 0.5), 0.5, 1.0, 2),
    ("1 sampled + 1 fixed, near the limit", (1.0, 2.0), (0.1, 0.2), (0.3, 1.0), (0.5, 0.5),
     0.95, 1.0, 2),
    ("2 sampled", (1.0, 1.0), (0.05, 0.05), (0.5, 0.2), (0.6, 0.4), 0.5, 0.5, 2),
    ("plain gradient descent, kappa 10", (1.0, 1.0), (0.1, 0.1), (1.0, 1.0), (0.5, 0.5), 0.99,
     0.0, 2),
)

# Clarabel solves the SDP to about 1e-8 relative; a bound below the worst case by more than
# this is a violation, not rounding.
PEP_RTOL = 1e-6


@functools.cache
def worst_case(L: tuple[float, ...], mu: tuple[float, ...], q: tuple[float, ...],
               beta: tuple[float, ...], eta: float, t: int, v: float) -> float:
    r"""PEPit's worst :math:`\mathbb E\|x_t - x^*\|^2` over the class (module docstring),
    with :math:`\|x_0 - x^*\|^2 \le 1`. Cached: it does not depend on the package's code."""
    from PEPit import PEP
    from PEPit.functions import SmoothStronglyConvexFunction

    n = len(L)
    problem = PEP()
    fs = [problem.declare_function(SmoothStronglyConvexFunction, L=L[i], mu=mu[i])
          for i in range(n)]
    F: Any = fs[0] * beta[0]
    for i in range(1, n):
        F = F + fs[i] * beta[i]
    xs = F.stationary_point()
    x0 = problem.set_initial_point()
    var: Any = None
    for i in range(n):
        if q[i] < 1:
            term = beta[i] ** 2 * (1.0 / q[i] - 1.0) * fs[i].gradient(xs) ** 2
            var = term if var is None else var + term
    if var is not None:
        problem.add_constraint(var <= v)
    problem.set_initial_condition((x0 - xs) ** 2 <= 1.0)
    picks = []
    for pick in itertools.product([0, 1], repeat=n):
        p = 1.0
        for i in range(n):
            p *= q[i] if pick[i] else 1.0 - q[i]
        if p > 0:
            picks.append((p, pick))
    layer = [(1.0, x0)]
    for _ in range(t):
        nxt = []
        for p, x in layer:
            grads = [f.gradient(x) for f in fs]
            for po, pick in picks:
                y = x
                for i in range(n):
                    if pick[i]:
                        y = y - eta * (beta[i] / q[i]) * grads[i]
                nxt.append((p * po, y))
        layer = nxt
    perf: Any = None
    for p, x in layer:
        term = p * (x - xs) ** 2
        perf = term if perf is None else perf + term
    problem.set_performance_metric(perf)
    return float(problem.solve(wrapper="cvxpy", solver="CLARABEL", verbose=0))


def pepit_checks() -> list[CheckResult]:
    """``theorem_a.pepit``: min over the cases of Theorem A / PEPit's worst case (>= 1), or a
    skipped check when PEPit is not installed."""
    name = "theorem_a.pepit"
    step = ("Theorem A (best c) / PEPit's exact worst case of E||x_t - x*||^2, t <= 2, over "
            "smooth strongly convex pairs with bounded sampling variance: >= 1")
    try:
        import PEPit  # noqa: F401
    except ImportError:
        return [CheckResult(name, "Theorem A", step, "numeric", True, 0, 0.0, PEP_RTOL,
                            detail="skipped: PEPit is not installed (extra 'verify')",
                            skipped=True)]
    ratios = []
    for _label, L, mu, q, beta, frac, v, rounds in CASES:
        b, Lv, m = np.asarray(beta), np.asarray(L), np.asarray(mu)
        mu_t, L_t = float(b @ m), float(b @ Lv)
        qa = np.asarray(q)
        Ls = float(np.max(np.where(qa < 1, b * Lv * (1 / qa - 1), 0.0)))
        eta = frac * 2.0 / (L_t + Ls)
        for t in range(1, rounds + 1):
            worst = worst_case(L, mu, q, beta, eta, t, v)
            bound = float(theorem_a.distance_bound(t, eta=eta, mu_t=mu_t, L_t=L_t, Ls=Ls, Vs=v,
                                                   Vn=0.0, r0=1.0))
            ratios.append(bound / worst if worst > 0 else np.inf)
    worst_ratio = float(min(ratios))
    return [CheckResult(name, "Theorem A", step, "numeric", worst_ratio >= 1.0 - PEP_RTOL,
                        len(ratios), worst_ratio - 1.0, PEP_RTOL,
                        detail=f"smallest bound/worst case {worst_ratio:.4f}")]
