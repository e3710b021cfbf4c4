"""The design problem on the second-generation bound: the fast solver against cvxpy, the
step-stability constraint, the outer loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cistheory as ct
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
