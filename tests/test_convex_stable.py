"""The design problem on the second-generation bound: the fast solver against cvxpy, the
step-stability constraint, the outer loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cistheory as ct
from cistheory.bounds import expected_smoothness, variance_parts
from cistheory.errors import CISInputError
from convex.stable import StableConstants, solve_stable, stable_design, stable_objective


def _const(cis: ct.CIS, rng: np.random.Generator) -> StableConstants:
    el = np.asarray(cis.eligible)
    shape = el.shape
    return StableConstants(
        L_pair=np.where(el, rng.uniform(0.5, 2.0, shape), 0.0),
        s2=np.where(el, rng.uniform(0.1, 1.0, shape), 0.0),
        Z2=np.where(el, rng.uniform(0.1, 2.0, shape), 0.0), zeta2=0.5, mu=0.1, mu_t=0.1,
        L_bar=2.0, r0=4.0, T=1000, m=cis.data)


@pytest.mark.parametrize(("split", "eta", "frac", "rho"),
                         [("80-15-5", 0.05, 0.3, None), ("5-15-80", 0.2, 0.9, 2.0)])
def test_fast_and_cvxpy_agree(split: str, eta: float, frac: float, rho: float | None) -> None:
    """Same optimum (J to 1e-7 relative: cvxpy's CLARABEL tolerance), same weights (to 1e-4),
    both certified by the fast solver's Frank-Wolfe gap."""
    cis = ct.reference_cis(split, "tiny")
    const = _const(cis, np.random.default_rng(0))
    el = np.asarray(cis.eligible)
    c = 1.0
    theta = frac * (2 - eta * const.L_bar) / (eta * (1 + c))
    f = solve_stable(cis.lam, const, el, eta=eta, c=c, theta=theta, rho_bar=rho)
    g = solve_stable(cis.lam, const, el, eta=eta, c=c, theta=theta, rho_bar=rho, method="cvxpy")
    assert f.success and f.gap <= 1e-6 * f.fun
    assert g.fun == pytest.approx(f.fun, rel=1e-7)
    assert g.fun >= f.lower_bound * (1 - 1e-9)
    assert np.abs(f.lt - g.lt).max() < 1e-4
    # the design satisfies the step-stability constraint: L_s^pair <= theta, so Theorem A's
    # condition eta (L_t + (1 + c) L_s) < 2 holds for every L_t <= L_bar
    assert f.Ls_pair <= theta * (1 + 1e-9)
    assert eta * (const.L_bar + (1 + c) * f.Ls_pair) < 2
    if rho is not None:
        assert (f.lt >= cis.lam / rho - 1e-12).all()


def test_stability_constraint_binds_and_refuses() -> None:
    """A small theta forces shallower participation away from tiny q (the constraint is
    active), and a theta below what the fixed rows need is infeasible."""
    cis = ct.reference_cis("5-15-80", "tiny")
    const = _const(cis, np.random.default_rng(1))
    el = np.asarray(cis.eligible)
    loose = solve_stable(cis.lam, const, el, eta=0.05, c=1.0, theta=15.0)
    assert loose.success and loose.Ls_pair > 1.5  # unconstrained: small q, large beta/q
    tight = solve_stable(cis.lam, const, el, eta=0.05, c=1.0, theta=1.5)
    assert tight.success and tight.Ls_pair <= 1.5 * (1 + 1e-9)
    # at the same theta the constrained optimum cannot beat the unconstrained one
    assert stable_objective(cis.lam, const, loose.lt, loose.q, eta=0.05, c=1.0,
                            theta=1.5) == math.inf
    q_fixed = np.asarray(ct.named_policy(cis, "p40").q)
    res = solve_stable(cis.lam, const, q_fixed > 0, eta=0.05, c=1.0, theta=1e-3, q=q_fixed)
    assert not res.success and math.isinf(res.fun)


def test_fixed_participation_and_objective() -> None:
    """With q given only the weights are designed; stable_objective at the optimum is J."""
    cis = ct.reference_cis("80-15-5")
    const = _const(cis, np.random.default_rng(2))
    q = np.asarray(ct.deepest_exit(cis).q)
    res = solve_stable(cis.lam, const, q > 0, eta=0.1, c=1.0, theta=5.0, q=q)
    assert np.array_equal(res.q, q)
    kw = {"eta": 0.1, "c": 1.0, "theta": 5.0, "rho_bar": res.rho_bar}
    J_at = stable_objective(cis.lam, const, res.lt, q, **kw)
    assert J_at == pytest.approx(res.fun, rel=1e-12)
    # the smallest admissible theta and rho_bar can only lower it
    assert stable_objective(cis.lam, const, res.lt, q, eta=0.1, c=1.0) <= J_at
    for lt in (cis.lam, np.full(3, 1 / 3)):  # the minimiser beats the rules at the same scalars
        assert stable_objective(cis.lam, const, lt, q, **kw) >= res.fun * (1 - 1e-9)


def test_outer_loop_and_inputs() -> None:
    cis = ct.reference_cis("33-33-33")
    const = _const(cis, np.random.default_rng(3))
    pols = {"deepest": (np.asarray(ct.deepest_exit(cis).q) > 0, np.asarray(
        ct.deepest_exit(cis).q)), "shallower": (np.asarray(cis.eligible), None)}
    best, alls = stable_design(cis.lam, const, pols, etas=[0.02, 0.1], cs=[1.0],
                               theta_fracs=[0.5], rho_bars=[None])
    assert best.fun == min(r.fun for r in alls) and {r.policy for r in alls} == set(pols)
    with pytest.raises(CISInputError) as info:
        solve_stable(cis.lam, const, np.asarray(cis.eligible), eta=1.0, c=1.0, theta=5.0)
    assert info.value.field == "eta"


def _beta(lt: np.ndarray, q: np.ndarray, m: np.ndarray) -> np.ndarray:
    """beta_ik = lt_k m_i / M_k on the support of q."""
    sup = q > 0
    mk = sup.T.astype(float) @ m
    return np.where(sup, lt[None, :] * m[:, None] / np.where(mk > 0, mk, 1.0)[None, :], 0.0)


@pytest.mark.parametrize(("split", "per_round", "eta", "frac"),
                         [("80-15-5", 3, 0.05, 0.3), ("5-15-80", 1, 0.02, 0.9)])
def test_fixed_count_draw_fast_cvxpy_and_lemma_es_f(split: str, per_round: int, eta: float,
                                                    frac: float) -> None:
    """Under a fixed-count draw (n of N nodes per round) both solvers agree as in
    test_fast_and_cvxpy_agree; q is an inclusion table (entries and rows <= n/N); the design's
    constraint gives Lemma ES-f's L_s^(c) <= theta (computed independently from the
    eigenvalues of diag(a) - (1 - c) v v^T); its variance term bounds (1 + 1/c) V_s^(c) + V_n
    (Lemma 2f's exact variance under the draw) for gradients of norm^2 at the caps Z2."""
    cis = ct.reference_cis(split, "tiny")
    const = _const(cis, np.random.default_rng(4))
    el = np.asarray(cis.eligible)
    N = el.shape[0]
    c = 1.0
    theta = frac * (2 - eta * const.L_bar) / (eta * (1 + c))
    kw = {"eta": eta, "c": c, "theta": theta, "per_round": per_round}
    f = solve_stable(cis.lam, const, el, **kw)
    g = solve_stable(cis.lam, const, el, method="cvxpy", **kw)
    assert f.success and f.gap <= 1e-6 * f.fun
    assert g.fun == pytest.approx(f.fun, rel=1e-7)  # CLARABEL's tolerance, as above
    assert g.fun >= f.lower_bound * (1 - 1e-9)
    assert np.abs(f.lt - g.lt).max() < 1e-4
    # 1e-12: the water-filling's closed-form root, summed in floating point
    assert (f.q <= per_round / N * (1 + 1e-12)).all()
    assert (f.q.sum(axis=1) <= per_round / N * (1 + 1e-12)).all()
    assert np.array_equal(f.q > 0, el)
    beta = _beta(f.lt, f.q, np.asarray(cis.data, dtype=float))
    ls_draw = expected_smoothness(f.q, beta, const.L_pair, per_round=per_round)
    assert ls_draw <= f.Ls_pair * (1 + 1e-9) and f.Ls_pair <= theta * (1 + 1e-9)
    assert eta * (const.L_bar + (1 + c) * ls_draw) < 2  # Theorem A's condition, L_t <= L_bar
    # the variance term: B times sum beta^2 (s^2 + (1 + 1/c) Z2) / q (no node fixed) ...
    D = 2 - eta * (const.L_bar + (1 + c) * theta)
    B = (f.rho_bar + 1) * eta / D
    sup = f.q > 0
    safe = np.where(sup, f.q, 1.0)
    vbar = float(np.sum(np.where(sup, beta**2 * (const.s2 + (1 + 1 / c) * const.Z2) / safe, 0.0)))
    assert f.terms["variance"] == pytest.approx(B * vbar, rel=1e-12)
    # ... bounds the draw's exact variance for any gradients within the caps
    rng = np.random.default_rng(5)
    for _ in range(5):
        u = rng.normal(size=(*el.shape, 4))
        grad = u / np.linalg.norm(u, axis=2, keepdims=True) * np.sqrt(const.Z2)[..., None]
        vs, vn = variance_parts(f.q, beta, grad, const.s2, per_round=per_round)
        assert (1 + 1 / c) * vs + vn <= vbar * (1 + 1e-12)


def test_per_round_of_all_nodes_is_independent_picks_bitwise() -> None:
    """per_round = N (c = 0, caps 1) is the problem of independent picks, bit for bit; a q that
    is not the draw's inclusion table is refused."""
    cis = ct.reference_cis("80-15-5", "tiny")
    const = _const(cis, np.random.default_rng(6))
    el = np.asarray(cis.eligible)
    kw = {"eta": 0.05, "c": 1.0, "theta": 5.0}
    for q in (None, np.asarray(ct.named_policy(cis, "p40").q)):
        sup = el if q is None else q > 0
        a = solve_stable(cis.lam, const, sup, q=q, **kw)
        b = solve_stable(cis.lam, const, sup, q=q, per_round=el.shape[0], **kw)
        assert np.array_equal(a.lt, b.lt) and np.array_equal(a.q, b.q)
        assert (a.fun, a.gap, a.Ls_pair) == (b.fun, b.gap, b.Ls_pair)
    q = np.asarray(ct.deepest_exit(cis).q)
    with pytest.raises(CISInputError) as info:
        solve_stable(cis.lam, const, q > 0, q=q, per_round=3, **kw)
    assert info.value.field.startswith("q[")


def test_fixed_count_single_pair_constraint_binds() -> None:
    """Every node single-pair (deepest exit), 3 of 7 drawn: the constraint lt_k (m_i/M_k) L
    (1/q - 1 + c) <= theta binds, and Lemma ES-f's L_s^(c) at the design is theta; the
    independent form (1/q - 1) would let L_s^(c) exceed theta."""
    cis = ct.reference_cis("80-15-5")
    const = _const(cis, np.random.default_rng(7))
    part = ct.fixed_count(ct.deepest_exit(cis), 3)
    q = np.asarray(part.q)
    free = solve_stable(cis.lam, const, q > 0, q=q, eta=0.05, c=1.0, theta=15.0, per_round=3)
    # lt_k <= theta / g_k, g_k = max_i (m_i/M_k) L_ik (1/q - 1 + c): feasible iff
    # theta sum_k 1/g_k >= 1; halfway between that and the unconstrained optimum's L_s binds
    c_draw = (7 - 3) / (3 * (7 - 1))
    m = np.asarray(cis.data, dtype=float)
    sup = q > 0
    frac = np.where(sup, m[:, None] / (sup.T.astype(float) @ m)[None, :], 0.0)
    g = np.max(np.where(sup, frac * const.L_pair * (1 / np.where(sup, q, 1.0) - 1 + c_draw),
                        0.0), axis=0)
    theta = 0.5 * (1 / float(np.sum(1 / g)) + free.Ls_pair)
    assert 1 / float(np.sum(1 / g)) < theta < free.Ls_pair
    res = solve_stable(cis.lam, const, q > 0, q=q, eta=0.05, c=1.0, theta=theta, per_round=3)
    assert res.success
    ls_draw = expected_smoothness(q, _beta(res.lt, q, np.asarray(cis.data, dtype=float)),
                                  const.L_pair, per_round=3)
    assert ls_draw == pytest.approx(theta, rel=1e-9)  # SLSQP ends on the active constraint
    assert res.Ls_pair == pytest.approx(ls_draw, rel=1e-12)  # single-pair: the pair form is exact
