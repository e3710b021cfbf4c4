"""Participation policies, aggregation weights and the configuration rules."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import cistheory as ct
from tests.reference_values import BALANCED_ADJ_80_15_5, REFERENCE_SIGMA_3_9_17

# Normalisations of a few numbers: a few ulps.
EXACT = dict(rtol=1e-12, atol=1e-14)


def test_balanced_adj_reproduces_reference_release() -> None:
    cis = ct.reference_cis("80-15-5")
    v = ct.variance_coefficients(ct.deepest_exit(cis), REFERENCE_SIGMA_3_9_17)
    np.testing.assert_allclose(ct.balanced_adj(cis.lam, v), BALANCED_ADJ_80_15_5, **EXACT)


def test_variance_coefficients_fixed_equal_data() -> None:
    cis = ct.reference_cis("80-15-5", "2x")
    sig = np.array([0.3, 0.2, 0.1])
    v = ct.variance_coefficients(ct.deepest_exit(cis), sig)
    np.testing.assert_allclose(v, sig**2 / np.array([4, 2, 1]), **EXACT)


def test_variance_coefficients_sampled_nodes_pay_G() -> None:
    cis = ct.reference_cis("80-15-5")
    part = ct.shallower_with_probability(cis, {2: 0.4, 3: 0.8})
    sig = np.array([1.0, 1.0, 1.0])
    v0 = ct.variance_coefficients(part, sig)
    v1 = ct.variance_coefficients(part, sig, grad_bound=[2.0, 2.0, 2.0])
    assert np.all(v1 > v0)
    # exit 3 is trained by the root only, with q = 0.2 and data fraction 1
    assert v1[2] == pytest.approx((1 + 4) / 0.2)


def test_p40_probabilities() -> None:
    cis = ct.reference_cis("80-15-5")
    part = ct.shallower_with_probability(cis, {2: 0.4, 3: 0.8})
    np.testing.assert_allclose(part.q[0], [0.4, 0.4, 0.2], **EXACT)
    np.testing.assert_allclose(part.q[1], [0.4, 0.6, 0.0], **EXACT)
    np.testing.assert_allclose(part.q[3], [1.0, 0.0, 0.0], **EXACT)
    assert part.populations[:, 0].all()
    np.testing.assert_allclose(part.exit_data, [45000, 30000, 15000])


def test_flops_schedule() -> None:
    r = [0.1, 0.5, 1.0]
    np.testing.assert_allclose(ct.flops_proportional(r, 0), [1 / 3] * 3, **EXACT)
    np.testing.assert_allclose(
        ct.flops_proportional(r, 19), [0.1 / 0.5, 0.2 / 0.5, 0.2 / 0.5], **EXACT
    )
    np.testing.assert_allclose(
        ct.flops_proportional(r, 99), [0.1 / 1.6, 0.5 / 1.6, 1 / 1.6], **EXACT
    )


def test_equal_and_serving_rate() -> None:
    np.testing.assert_allclose(ct.equal(3), [1 / 3] * 3)
    np.testing.assert_allclose(ct.serving_rate([2, 1, 1]), [0.5, 0.25, 0.25])


def test_inverse_variance_minimises_V() -> None:
    v = np.array([1.0, 2.0, 4.0])
    lt = ct.inverse_variance(v)
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = rng.dirichlet(np.ones(3))
        assert np.sum(v * lt**2) <= np.sum(v * x**2) + 1e-15


def _enumerate_expectation(q: np.ndarray, w: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """E[sum over picked pairs w_ik Delta_ik], by enumerating every selection outcome."""
    n, k = q.shape
    total = np.zeros(delta.shape[2:])
    for choice in itertools.product(range(k + 1), repeat=n):  # k means idle
        prob = 1.0
        agg = np.zeros(delta.shape[2:])
        for i, c in enumerate(choice):
            if c == k:
                prob *= 1 - q[i].sum()
            else:
                prob *= q[i, c]
                agg = agg + w[i, c] * delta[i, c]
        total = total + prob * agg
    return total


def test_unbiased_weights_unbiased_by_enumeration() -> None:
    cis = ct.CIS.build(
        parent=[-1, 0, 0, 1],
        capacity=[3, 2, 1, 1],
        arrival=[0, 0, 1, 2],
        forward=[0, 1, 0.5, 1],
        data=[5, 3, 2, 7],
    )
    q = np.array([[0.2, 0.3, 0.4], [0.5, 0.25, 0], [0.9, 0, 0], [1.0, 0, 0]])
    part = ct.explicit(cis, q)
    lt = np.array([0.5, 0.3, 0.2])
    delta = np.random.default_rng(1).normal(size=(4, 3, 2))
    w = ct.aggregation_weights(part, lt, "unbiased")
    got = _enumerate_expectation(q, w, delta)
    target = np.einsum("ik,ikd->d", ct.beta(part, lt), delta)
    np.testing.assert_allclose(got, target, rtol=1e-12, atol=1e-12)
    # the multiplicative rule is biased, and the effective objective says by how much
    wm = ct.aggregation_weights(part, lt, "multiplicative")
    eff = ct.effective_objective(part, wm)
    gotm = _enumerate_expectation(q, wm, delta)
    np.testing.assert_allclose(gotm, np.einsum("ik,ikd->d", eff.pair, delta), rtol=1e-12)
    assert not np.allclose(eff.lt, lt)
    effu = ct.effective_objective(part, w)
    np.testing.assert_allclose(effu.lt, lt, **EXACT)
    np.testing.assert_allclose(effu.within_tv, 0, atol=1e-14)
    assert effu.scale == pytest.approx(1.0)


def test_multiplicative_rule_reference_bias_number() -> None:
    cis = ct.reference_cis("80-15-5")
    part = ct.shallower_with_probability(cis, {2: 0.4, 3: 0.8})
    lt = cis.lam
    eff = ct.effective_objective(part, ct.aggregation_weights(part, lt, "multiplicative"))
    # exit 1: leaves q=1 (data 4*3750), middles q=.4 (2*7500), root q=.4 (15000)
    m = np.array([15000, 7500, 7500, 3750, 3750, 3750, 3750.0])
    mass1 = lt[0] * np.sum(m * part.q[:, 0] ** 2) / 45000
    mass2 = lt[1] * np.sum(m * part.q[:, 1] ** 2) / 30000
    mass3 = lt[2] * 0.2**2
    expect = np.array([mass1, mass2, mass3])
    np.testing.assert_allclose(eff.lt, expect / expect.sum(), **EXACT)
    assert eff.within_tv[0] > 0.1  # the rule also reweights the nodes within exit 1
