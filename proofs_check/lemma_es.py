r"""Lemma ES (expected smoothness of the sampled aggregate) and Lemma 2's split
:math:`V_s, V_n`: exact variances by enumeration of every selection outcome.

Reference side: :mod:`proofs_check._second` (definitions re-derived, outcomes enumerated).
Checked: the two inequalities of Lemma ES at random points, their equality on one sampled
node in one dimension (so a looser constant is caught), the shipped constants against the
definitions, the non-convex constant :math:`\Lambda`, the cancellation-free variance, and the
sympy forms against the shipped functions (lambdified).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from cistheory.bounds import lemma2, lemma_es

from ._core import CheckResult, Tightness, numeric_identity, numeric_inequality, symbolic_zero
from ._second import aggregate_variance_at, random_instance, reference

__all__ = ["run"]

STATEMENT = "Lemma ES"


def _symbolic(rng: np.random.Generator) -> list[CheckResult]:
    import sympy as sp

    b1, b2, L1, L2, q1, q2 = sp.symbols("beta1 beta2 L1 L2 q1 q2", positive=True)
    d1, d2 = sp.symbols("delta1 delta2", real=True)
    z1, z2 = sp.sqrt(b1 / L1) * d1, sp.sqrt(b2 / L2) * d2
    a1, a2 = b1 * L1 / q1, b2 * L2 / q2
    v1, v2 = sp.sqrt(b1 * L1), sp.sqrt(b2 * L2)
    var = b1**2 / q1 * d1**2 + b2**2 / q2 * d2**2 - (b1 * d1 + b2 * d2) ** 2
    return [symbolic_zero(
        "lemma_es.quadratic_form_symbolic", STATEMENT,
        "Var(X_i) = sum_k (beta_k^2/q_k) delta_k^2 - (sum beta delta)^2 = z^T (diag(a) - v v^T) z"
        " with a = beta L/q, v = sqrt(beta L), z = sqrt(beta/L) delta (two pairs)",
        var - (a1 * z1**2 + a2 * z2**2 - (v1 * z1 + v2 * z2) ** 2),
        [b1, b2, L1, L2, q1, q2, d1, d2], rng, positive=[b1, b2, L1, L2], unit=[q1, q2])]


SUPPORT = np.array([[True, True], [True, False], [False, True]])
"""Nodes with two pairs and with one pair: both branches of every constant."""


@functools.cache
def _exprs() -> tuple[Callable[..., float], ...]:
    from cistheory.symbolic import lemma_es as sym

    return tuple(f(SUPPORT).lambdify() for f in (sym.expected_smoothness_expr,
                                                  sym.expected_smoothness_pairwise_expr,
                                                  sym.sampling_lipschitz_expr))


def _lambdified(rng: np.random.Generator, n: int) -> list[CheckResult]:
    got, want = [], []
    fns = (lemma_es.expected_smoothness, lemma_es.expected_smoothness_pairwise,
           lemma_es.sampling_lipschitz)
    for _ in range(n):
        q = np.where(SUPPORT, rng.uniform(0.02, 0.5, size=SUPPORT.shape), 0.0)
        q[1, 0] = rng.choice([1.0, rng.uniform(0.05, 0.95)])  # fixed or sampled single pair
        b = np.where(SUPPORT, rng.uniform(0.05, 1.0, size=SUPPORT.shape), 0.0)
        L = np.where(SUPPORT, rng.uniform(0.1, 3.0, size=SUPPORT.shape), 0.0)
        filled = [np.where(SUPPORT, x, 0.5) for x in (q, b, L)]
        for fn, expr in zip(fns, _exprs(), strict=True):
            got.append(fn(q, b, L))
            want.append(expr(*filled))
    return [numeric_identity(
        "lemma_es.symbolic_vs_shipped", STATEMENT,
        "sympy forms of L_s, L_s^pair, Lambda (lambdified) = the shipped functions",
        np.array(got), np.array(want), floor=1e-12)]


def run(rng: np.random.Generator, instances: int) -> tuple[list[CheckResult], list[Tightness]]:
    """Lemma ES on random convex and non-convex quadratic CIS instances."""
    checks = _symbolic(rng)
    cc_lhs, cc_rhs, br_lhs, br_rhs, nc_lhs, nc_rhs = [], [], [], [], [], []
    ref_ls, got_ls, ref_v, got_v = [], [], [], []
    for j in range(max(10, instances // 4)):
        pq = random_instance(rng, small_q=j % 2 == 0, nonconvex=j % 5 == 4)
        ref = reference(pq)
        q, b = pq.inst.q, pq.inst.beta
        s2 = np.trace(pq.Sigma, axis1=2, axis2=3)
        got_v.append(lemma2.variance_parts(q, b, ref.grad_pair, s2))
        ref_v.append((ref.Vs, ref.Vn))
        if j % 5 == 4:  # non-convex pairs: only Lambda applies
            lam = lemma_es.sampling_lipschitz(q, b, ref.ell_pair)
            for _ in range(4):
                w = ref.w_star + rng.normal(size=pq.d) * rng.uniform(0.1, 3.0)
                nc_lhs.append(aggregate_variance_at(pq, w))
                nc_rhs.append(lam * float((w - ref.w_star) @ (w - ref.w_star)))
            continue
        ls = lemma_es.expected_smoothness(q, b, ref.L_pair)
        got_ls.append((ls, lemma_es.expected_smoothness_pairwise(q, b, ref.L_pair)))
        ref_ls.append((ref.Ls, ref.Ls_pair))
        for _ in range(4):
            w = ref.w_star + rng.normal(size=pq.d) * rng.uniform(0.1, 3.0)
            u = w - ref.w_star
            cc_lhs.append(aggregate_variance_at(pq, w))
            cc_rhs.append(ls * float(u @ pq.H @ u))  # <grad F(w) - grad F(w*), u> = u^T H u
            br_lhs.append(cc_lhs[-1])
            br_rhs.append(2 * ls * 0.5 * float(u @ pq.H @ u))  # 2 L_s D_F(w, w*)
    # equality: one sampled node, f = (L/2) w^2 in one dimension
    eq_lhs, eq_rhs = [], []
    for _ in range(20):
        qq, L = rng.uniform(0.02, 0.98), rng.uniform(0.1, 5.0)
        ls = lemma_es.expected_smoothness([[qq]], [[1.0]], [[L]])
        u = rng.normal()
        eq_lhs.append((1 / qq - 1) * (L * u) ** 2)  # Var of (1/q) 1[picked] L u
        eq_rhs.append(ls * L * u**2)
    checks += [
        numeric_inequality("lemma_es.cocoercive", STATEMENT,
                           "Var(A(w) - A(w*)) <= L_s <grad F(w) - grad F(w*), w - w*> (exact)",
                           cc_lhs, cc_rhs),
        numeric_inequality("lemma_es.bregman", STATEMENT,
                           "Var(A(w) - A(w*)) <= 2 L_s (F(w) - F*) (exact)", br_lhs, br_rhs),
        numeric_identity("lemma_es.single_pair_equality", STATEMENT,
                         "one sampled node, 1-D quadratic: Var = L_s <grad F, u> (tight)",
                         eq_lhs, eq_rhs),
        numeric_identity("lemma_es.constants_shipped", STATEMENT,
                         "shipped L_s and L_s^pair = their definitions (reference code)",
                         # the reference forms b L/q - sqrt(b L)^2: 0 for a fixed node up to
                         # rounding of O(1) entries, a few 1e-17; 1e-6 keeps that relative
                         np.array(got_ls), np.array(ref_ls), floor=1e-6),
        numeric_inequality("lemma_es.pairwise_dominates", STATEMENT,
                           "L_s <= L_s^pair (Lemma ES (iii))",
                           [g[0] for g in got_ls], [g[1] for g in got_ls]),
        numeric_inequality("lemma_es.nonconvex", STATEMENT,
                           "Var(A(w) - A(w*)) <= Lambda ||w - w*||^2, indefinite pair Hessians",
                           nc_lhs, nc_rhs),
        numeric_identity("lemma_es.variance_parts_shipped", "Lemma 2",
                         "shipped (V_s, V_n) at w* = outcome enumeration (reference)",
                         np.array(got_v), np.array(ref_v), floor=1e-12),
        numeric_identity("lemma_es.variance_no_cancellation", "Lemma 2",
                         "variance_exact([[1]], [[1]], [[[1e10]]], [[1]]) = 1 (a fixed node)",
                         [lemma2.variance_exact([[1.0]], [[1.0]], [[[1e10]]], [[1.0]])], [1.0]),
    ]
    checks += _lambdified(rng, max(4, instances // 20))
    return checks, []
