r"""Theorem E (the bias with the heterogeneity at the optimum) on quadratic exits, including
targets that are PL but not strongly convex (private heads, an exit that serves nothing).

Checked: exact :math:`F_\lambda(w^*) - F_\lambda^* \le \|g_\lambda\|^2/(2\mu) \le
\chi^2\zeta_*^2/(2\mu) \le (L/\mu)\chi^2\Gamma` (each link separately), :math:`\zeta_*^2 \le
2L\Gamma`, the shipped :math:`\zeta_*^2` against its definition, Lagrange's identity (sympy)
and the sympy forms against the shipped functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from cistheory.bounds import theorem1, theorem_e

from ._core import CheckResult, Tightness, numeric_identity, numeric_inequality, symbolic_zero
from ._instances import random_simplex
from .theorem1 import random_headed_exits, random_quadratic_exits

__all__ = ["run"]

STATEMENT = "Theorem E"


@functools.cache
def _exprs() -> tuple[Callable[..., float], ...]:
    from cistheory.symbolic import theorem_e as sym

    return (sym.bias_bound_zeta_expr(3).lambdify(), sym.heterogeneity_at_optimum_expr(3, 2)
            .lambdify(), sym.bias_bound_gradient_expr().lambdify())


def run(rng: np.random.Generator, instances: int) -> tuple[list[CheckResult], list[Tightness]]:
    """Theorem E's chain of inequalities on random quadratic exits."""
    from cistheory.symbolic.theorem_e import cauchy_schwarz_gap

    lhs, rhs = cauchy_schwarz_gap(3)
    free = sorted(lhs.free_symbols | rhs.free_symbols, key=str)
    checks = [symbolic_zero("theorem_e.lagrange_symbolic", STATEMENT,
                            "chi2 sum lt g^2 - (sum (lam - lt) g)^2 = sum_{k<l} (a_k b_l - a_l "
                            "b_k)^2 (K = 3): the Cauchy-Schwarz gap is a sum of squares",
                            lhs - rhs, free, rng, positive=[s for s in free if "g" not in str(s)])]
    rows: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in
                                                        ("pl", "cs", "gamma", "zeta", "ref")}
    for j in range(max(20, instances)):
        K = int(rng.integers(2, 4))
        ex = (random_headed_exits(rng, K, int(rng.integers(1, 3))) if j % 4 == 0
              else random_quadratic_exits(rng, K, int(rng.integers(1, 4))))
        lam = random_simplex(rng, K)
        if j % 4 == 0:
            lam[int(rng.integers(K))] = 0.0
            lam /= lam.sum()
        lt = random_simplex(rng, K, min_weight=0.02)
        w_t, w_l = ex.minimiser(lt), ex.minimiser(lam)
        ev = np.linalg.eigvalsh(ex.hessian(lam))
        mu = float(ev[ev > 1e-10][0])  # PL constant: smallest positive eigenvalue
        bias = float(lam @ ex.values(w_t)) - float(lam @ ex.values(w_l))
        g = np.einsum("k,kd->d", lam, ex.grads(w_t))
        grads = ex.grads(w_t)
        zeta2 = theorem_e.heterogeneity_at_optimum(lt, grads)
        gamma = float(lt @ ex.values(w_t))  # inf F_k = 0
        pl = theorem_e.bias_bound_gradient(float(g @ g), mu)
        cs = theorem_e.bias_bound_zeta(lam, lt, zeta2, mu)
        for key, lo, hi in (("pl", bias, pl), ("cs", pl, cs),
                            ("gamma", cs, theorem1.bias_bound(lam, lt, ex.L, mu, gamma)),
                            ("zeta", zeta2, 2 * ex.L * gamma),
                            ("ref", zeta2, float(sum(lt[k] * grads[k] @ grads[k]
                                                     for k in range(K))))):
            rows[key][0].append(lo)
            rows[key][1].append(hi)
    spec = {
        "pl": "exact F_lam(w*) - F* <= ||g_lam||^2/(2 mu) (PL at w*)",
        "cs": "||g_lam||^2/(2 mu) <= chi2 zeta*^2/(2 mu) (Cauchy-Schwarz)",
        "gamma": "chi2 zeta*^2/(2 mu) <= (L/mu) chi2 Gamma (Theorem 1(a))",
        "zeta": "zeta*^2 <= 2 L Gamma",
    }
    checks += [numeric_inequality(f"theorem_e.{k}", STATEMENT, v, *rows[k])
               for k, v in spec.items()]
    checks.append(numeric_identity("theorem_e.zeta_shipped", STATEMENT,
                                   "shipped zeta*^2 = sum_k lt_k ||grad F_k(w*)||^2 (loop)",
                                   *rows["ref"]))
    f_z, f_h, f_g = _exprs()
    got, want = [], []
    for _ in range(10):
        lam, lt = random_simplex(rng, 3), random_simplex(rng, 3, min_weight=0.02)
        z, mu, g2 = (float(x) for x in rng.uniform(0.05, 3.0, size=3))
        G = rng.normal(size=(3, 2))
        got += [theorem_e.bias_bound_zeta(lam, lt, z, mu),
                theorem_e.heterogeneity_at_optimum(lt, G), theorem_e.bias_bound_gradient(g2, mu)]
        want += [f_z(lam, lt, z, mu), f_h(lt, G), f_g(g2, mu)]
    checks.append(numeric_identity("theorem_e.symbolic_vs_shipped", STATEMENT,
                                   "sympy forms (lambdified) = the shipped functions", got, want))
    return checks, []
