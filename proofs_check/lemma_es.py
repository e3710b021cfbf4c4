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
import itertools
from collections.abc import Callable

import numpy as np

from cistheory.bounds import lemma2, lemma_es
from cistheory.bounds.lemma2_fixed import uniform_inclusion, variance_inclusion

from . import _fixed_count as _fc
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
    checks += _fixed_count(rng, max(6, instances // 25))
    return checks, []


STATEMENT_F = "Lemma ES-f"


def _fixed_count_symbolic(rng: np.random.Generator) -> CheckResult:
    import sympy as sp

    b1, b2, L1, L2, q1, q2, c = sp.symbols("beta1 beta2 L1 L2 q1 q2 c", positive=True)
    d1, d2 = sp.symbols("delta1 delta2", real=True)
    z1, z2 = sp.sqrt(b1 / L1) * d1, sp.sqrt(b2 / L2) * d2
    a1, a2 = b1 * L1 / q1, b2 * L2 / q2
    v1, v2 = sp.sqrt(b1 * L1), sp.sqrt(b2 * L2)
    bracket = b1**2 / q1 * d1**2 + b2**2 / q2 * d2**2 - (1 - c) * (b1 * d1 + b2 * d2) ** 2
    return symbolic_zero(
        "lemma_es.fixed_count_form_symbolic", STATEMENT_F,
        "sum_k (beta_k^2/q_k) delta_k^2 - (1 - c)(sum beta delta)^2 = z^T (diag(a) - (1 - c)"
        " v v^T) z (two pairs)",
        bracket - (a1 * z1**2 + a2 * z2**2 - (1 - c) * (v1 * z1 + v2 * z2) ** 2),
        [b1, b2, L1, L2, q1, q2, c, d1, d2], rng, positive=[b1, b2, L1, L2],
        unit=[q1, q2, c])


def _equality_family(rng: np.random.Generator, n_cases: int) -> tuple[list[float], list[float]]:
    """N nodes, one exit, f_i = (L/2) w_i^2 in N dimensions, equal data, r = 1, any n: the
    sharp form of Lemma ES-f (a) is an equality (Section 4.11f)."""
    lhs, rhs = [], []
    for _ in range(n_cases):
        n_nodes = int(rng.integers(2, 6))
        n = int(rng.integers(1, n_nodes + 1))
        L = rng.uniform(0.2, 3.0)
        q = np.full((n_nodes, 1), n / n_nodes)
        b = np.full((n_nodes, 1), 1.0 / n_nodes)
        u = rng.normal(size=n_nodes)
        c = _fc.coupling(n_nodes, n)
        ls = lemma_es.expected_smoothness(q, b, np.full((n_nodes, 1), L), per_round=n)
        # exact variance over every drawn set: node i contributes (b/q) L u_i e_i when drawn
        first, second = np.zeros(n_nodes), 0.0
        sets = list(itertools.combinations(range(n_nodes), n))
        for drawn in sets:
            x = np.zeros(n_nodes)
            for i in drawn:
                x[i] = b[i, 0] / q[i, 0] * L * u[i]
            first += x / len(sets)
            second += float(x @ x) / len(sets)
        grad_diff = L * u / n_nodes  # grad F(w) - grad F(w*)
        lhs.append(second - float(first @ first))
        rhs.append(ls * float(grad_diff @ u) - c * float(grad_diff @ grad_diff))
    return lhs, rhs


def _counterexample() -> tuple[np.ndarray, np.ndarray]:
    """The numbers of Lemma ES-f (d): two nodes, one drawn."""
    q, b, L = [[0.5], [0.5]], [[0.5], [0.5]], [[1.0], [1.0]]
    d1, d2 = np.array([1.0, 0.0]), np.array([-0.5, 0.5])  # grad f_1, grad f_2 at w = (1, 2)
    var = 0.5 * float(d1 @ d1) + 0.5 * float(d2 @ d2) - float((d1 + d2) @ (d1 + d2)) / 4
    inner = 0.5 * (1.0 + 0.5)  # <grad F(w), w> = (f_1'' + f_2'') terms: (1/2)(1 + 1/2)
    grad_f = 0.5 * (d1 + d2)
    ind = lemma_es.expected_smoothness(q, b, L) * inner
    fixed = lemma_es.expected_smoothness(q, b, L, per_round=1) * inner - float(grad_f @ grad_f)
    g_opt = [[[-1.0]], [[1.0]]]
    vs_ind = lemma2.variance_parts(q, b, g_opt, [[0.0], [0.0]])[0]
    vs_fix = lemma2.variance_parts(q, b, g_opt, [[0.0], [0.0]], per_round=1)[0]
    exact_opt = 0.5 * 1.0 + 0.5 * 1.0 - 0.0  # aggregate -1 or +1, mean 0
    return (np.array([var, ind, fixed, vs_ind, vs_fix]),
            np.array([5 / 8, 3 / 8, 5 / 8, 1 / 2, exact_opt]))


# long: one pass over random instances fills every fixed-count check, then the list of results
def _fixed_count(rng: np.random.Generator, n_inst: int) -> list[CheckResult]:
    """Lemma ES-f on random quadratic CIS under a fixed-count draw, every drawn set and every
    pick enumerated (:mod:`proofs_check._fixed_count`)."""
    cc_lhs, cc_rhs, br_lhs, br_rhs, nc_lhs, nc_rhs = [], [], [], [], [], []
    id_lhs, id_rhs, v_got, v_ref, vb_lhs, vb_rhs = [], [], [], [], [], []
    k_got, k_ref, bt_lhs, bt_rhs = [], [], [], []
    for j in range(n_inst):
        fc = _fc.random_fixed(rng, nonconvex=j % 4 == 3)
        pq, n = fc.pq, fc.per_round
        ref = reference(pq)
        q, b = pq.inst.q, pq.inst.beta
        s2 = np.trace(pq.Sigma, axis1=2, axis2=3)
        grads = {(i, k): ref.grad_pair[i, k] for i, k in pq.pairs}
        vs_exact, _ = _fc.var_of_aggregate(fc, grads)
        vn_exact = _fc.noise_second(fc)
        v_got.append(lemma2.variance_parts(q, b, ref.grad_pair, s2, per_round=n))
        v_ref.append((vs_exact, vn_exact))
        sampled = sum(b[i, k] ** 2 / q[i, k] * (float(ref.grad_pair[i, k] @ ref.grad_pair[i, k])
                                                 + s2[i, k]) for i, k in pq.pairs)
        vb_lhs.append(vs_exact + vn_exact)
        vb_rhs.append(sampled)
        # Lemma 2f(b) at a random point, with noise: enumeration = the identity (reference)
        # and = the shipped variance_inclusion
        w = ref.w_star + rng.normal(size=pq.d)
        gw = np.zeros_like(ref.grad_pair)
        for i, k in pq.pairs:
            gw[i, k] = pq.A[i, k] @ (w - pq.c[i, k])
        var_w, _ = _fc.var_of_aggregate(fc, {(i, k): gw[i, k] for i, k in pq.pairs})
        xbar = np.einsum("ik,ikd->id", b, gw)
        lemma2_expr = sum(b[i, k] ** 2 / q[i, k] * (float(gw[i, k] @ gw[i, k]) + s2[i, k])
                          for i, k in pq.pairs) - float((xbar**2).sum())
        tot = xbar.sum(axis=0)
        identity = lemma2_expr - fc.c * (float(tot @ tot) - float((xbar**2).sum()))
        _, pi2 = uniform_inclusion(q.shape[0], n)
        id_lhs.append((var_w + vn_exact, var_w + vn_exact))
        id_rhs.append((identity, variance_inclusion(q, b, gw, s2, pi2)))
        lam = lemma_es.sampling_lipschitz(q, b, ref.ell_pair, per_round=n)
        k_got.append(lam)
        k_ref.append(_fc.lambda_coupled(fc, ref.ell_pair))
        if j % 4 == 3:  # non-convex pairs: only Lambda applies
            for _ in range(3):
                u = rng.normal(size=pq.d) * rng.uniform(0.1, 3.0)
                nc_lhs.append(_fc.var_of_aggregate(fc, {pk: pq.A[pk] @ u for pk in pq.pairs})[0])
                nc_rhs.append(lam * float(u @ u))
            continue
        ls = lemma_es.expected_smoothness(q, b, ref.L_pair, per_round=n)
        ls_pair = lemma_es.expected_smoothness_pairwise(q, b, ref.L_pair, per_round=n)
        ls_ref, ls_pair_ref, top = _fc.ls_coupled(fc, ref.L_pair)
        k_got += [ls, ls_pair]
        k_ref += [ls_ref, ls_pair_ref]
        ls_ind = lemma_es.expected_smoothness(q, b, ref.L_pair)
        bt_lhs += [ls_ind, ls, ls]
        bt_rhs += [ls, top, ls_pair]
        for _ in range(3):
            u = rng.normal(size=pq.d) * rng.uniform(0.1, 3.0)
            var_u, _ = _fc.var_of_aggregate(fc, {pk: pq.A[pk] @ u for pk in pq.pairs})
            diff = pq.H @ u  # grad F(w) - grad F(w*)
            cc_lhs.append(var_u)
            cc_rhs.append(ls * float(u @ diff) - fc.c * float(diff @ diff))
            br_lhs.append(var_u)
            br_rhs.append(2 * ls * 0.5 * float(u @ pq.H @ u))
    eq_lhs, eq_rhs = _equality_family(rng, 12)
    cx_got, cx_want = _counterexample()
    return [
        _fixed_count_symbolic(rng),
        numeric_identity("lemma_es.fixed_count_identity", STATEMENT_F,
                         "enumerated E||g - grad F||^2 over every drawn set and pick = Lemma "
                         "2f(b) (reference) and = shipped variance_inclusion", np.array(id_lhs),
                         np.array(id_rhs), floor=1e-12),
        numeric_inequality("lemma_es.fixed_count_cocoercive", STATEMENT_F,
                           "Var(A(w) - A(w*)) <= L_s^(c) <grad F(w) - grad F(w*), u> - c ||grad "
                           "F(w) - grad F(w*)||^2, shipped L_s with per_round (exact)",
                           cc_lhs, cc_rhs),
        numeric_inequality("lemma_es.fixed_count_bregman", STATEMENT_F,
                           "Var(A(w) - A(w*)) <= 2 L_s^(c) (F(w) - F*) (exact)", br_lhs, br_rhs),
        numeric_identity("lemma_es.fixed_count_equality", STATEMENT_F,
                         "N one-dimensional nodes, r = 1, any n: Var = L_s^(c) <grad F, u> - c "
                         "||grad F||^2 (tight)", eq_lhs, eq_rhs, floor=1e-12),
        numeric_identity("lemma_es.fixed_count_variance", STATEMENT_F,
                         "shipped variance_parts(per_round=n) = enumerated (Var A(w*), E||Xi||^2)",
                         np.array(v_got), np.array(v_ref), floor=1e-12),
        numeric_inequality("lemma_es.fixed_count_variance_sampled", STATEMENT_F,
                           "enumerated V^(c)* <= sum beta^2/q (||grad f(w*)||^2 + s^2) (every "
                           "node sampled, nothing subtracted)", vb_lhs, vb_rhs),
        numeric_identity("lemma_es.fixed_count_constants", STATEMENT_F,
                         "shipped L_s, L_s^pair, Lambda with per_round = their definitions "
                         "(reference)", np.array(k_got), np.array(k_ref), floor=1e-6),
        numeric_inequality("lemma_es.fixed_count_between", STATEMENT_F,
                           "L_s <= L_s^(c) <= max beta L/q and L_s^(c) <= L_s^pair,(c)",
                           bt_lhs, bt_rhs),
        numeric_inequality("lemma_es.fixed_count_nonconvex", STATEMENT_F,
                           "Var(A(w) - A(w*)) <= Lambda^(c) ||u||^2, indefinite pair Hessians",
                           nc_lhs, nc_rhs),
        numeric_identity("lemma_es.fixed_count_counterexample", STATEMENT_F,
                         "two nodes, one drawn: exact 5/8 > independent L_s bound 3/8 = Lemma "
                         "ES-f's 5/8; V_s 1/2 independent, 1 under the draw", cx_got, cx_want),
    ]
