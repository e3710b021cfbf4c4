"""Numeric bounds (cistheory.bounds) against exact computations.

Every bound is compared with an independent exact value (closed forms on quadratics, exact
moment propagation of SGD, enumeration of selection outcomes, exact binomial tails), and
each has a deliberately wrong variant that the same comparison catches on some instance.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import cistheory
from cistheory.bounds import (
    BoundTerms,
    CISConstants,
    bias_bound,
    chi2,
    cis_bound,
    full_bound,
    generalization_bound,
    linear_rademacher,
    sgd_diminishing_bound,
    sgd_fixed_step_bound,
    training_error_bound,
    variance_bound,
    variance_exact,
)
from cistheory.errors import CISInputError

# A bound compared with an exact value computed in floating point: the exact side carries
# rounding of a few hundred flops on O(1) numbers (eigen-solves, matrix products), so a bound
# may sit below it by at most this relative amount when the two are equal in exact arithmetic.
REL = 1e-9


def _le(bound: float, exact: float) -> bool:
    return bound >= exact - REL * max(1.0, abs(exact))


# ---------------------------------------------------------------------------------------------
# Random strongly convex quadratics F_k(w) = 1/2 (w - c_k)^T A_k (w - c_k) + b_k
# ---------------------------------------------------------------------------------------------


@dataclass
class Quadratics:
    A: np.ndarray  # (K, d, d) SPD
    c: np.ndarray  # (K, d)
    b: np.ndarray  # (K,)
    lam: np.ndarray
    lt: np.ndarray

    @property
    def L(self) -> float:
        return float(max(np.linalg.eigvalsh(a).max() for a in self.A))

    def hessian(self, weights: np.ndarray) -> np.ndarray:
        return np.einsum("k,kij->ij", weights, self.A)

    def minimiser(self, weights: np.ndarray) -> np.ndarray:
        rhs = np.einsum("k,kij,kj->i", weights, self.A, self.c)
        return np.linalg.solve(self.hessian(weights), rhs)

    def value(self, weights: np.ndarray, w: np.ndarray) -> float:
        diff = w[None, :] - self.c
        per = 0.5 * np.einsum("ki,kij,kj->k", diff, self.A, diff) + self.b
        return float(weights @ per)

    def strong_convexity(self, weights: np.ndarray) -> float:
        return float(np.linalg.eigvalsh(self.hessian(weights)).min())

    @property
    def mu(self) -> float:
        return self.strong_convexity(self.lam)

    @property
    def mu_t(self) -> float:
        return self.strong_convexity(self.lt)

    @property
    def Gamma(self) -> float:
        return self.value(self.lt, self.minimiser(self.lt)) - float(self.lt @ self.b)

    def gap(self, weights: np.ndarray, w: np.ndarray) -> float:
        return self.value(weights, w) - self.value(weights, self.minimiser(weights))


def _simplex(rng: np.random.Generator, k: int, zeros: np.ndarray | None = None) -> np.ndarray:
    x = rng.dirichlet(np.full(k, 0.7))
    if zeros is not None and zeros.any() and not zeros.all():
        x = np.where(zeros, 0.0, x)
    return x / x.sum()


def make_quadratics(
    rng: np.random.Generator, k: int, d: int, *, isotropic: bool, cond: float
) -> Quadratics:
    """K quadratics in R^d; ``isotropic`` gives A_k = a I for all k (Cauchy-Schwarz tight)."""
    if isotropic:
        a = rng.uniform(0.5, 2.0)
        A = np.stack([a * np.eye(d)] * k)
    else:
        mats = []
        for _ in range(k):
            q, _r = np.linalg.qr(rng.standard_normal((d, d)))
            eig = np.exp(rng.uniform(0.0, np.log(cond), size=d))
            mats.append((q * eig) @ q.T)
        A = np.stack(mats)
        A = 0.5 * (A + A.transpose(0, 2, 1))
    c = rng.normal(scale=2.0, size=(k, d))
    b = rng.normal(size=k)
    lam_zero = rng.random(k) < 0.25
    lam = _simplex(rng, k, lam_zero)
    lt = _simplex(rng, k)
    if rng.random() < 0.2:  # training weights may drop exits that serve nothing
        lt = _simplex(rng, k, (lam == 0) & (rng.random(k) < 0.5))
    return Quadratics(A=A, c=c, b=b, lam=lam, lt=lt)


quadratics = st.builds(
    lambda seed, k, d, iso, cond: make_quadratics(
        np.random.default_rng(seed), k, d, isotropic=iso, cond=cond
    ),
    st.integers(0, 2**32 - 1),
    st.integers(1, 4),
    st.integers(1, 4),
    st.booleans(),
    st.sampled_from([1.0, 3.0, 30.0]),
)


def _instances(n: int, seed: int) -> list[Quadratics]:
    """A fixed list of instances for the wrong-variant tests (seed named per test)."""
    rng = np.random.default_rng(seed)
    return [
        make_quadratics(rng, int(rng.integers(2, 4)), int(rng.integers(1, 4)),
                        isotropic=bool(i % 2), cond=3.0)
        for i in range(n)
    ]


def exact_bias(p: Quadratics) -> float:
    return p.gap(p.lam, p.minimiser(p.lt))


def the_bias_bound(p: Quadratics) -> float:
    return bias_bound(p.lam, p.lt, p.L, p.mu, p.Gamma)


@given(quadratics)
def test_bias_bound_above_exact_bias(p: Quadratics) -> None:
    """Theorem 1(a): F_lam(w_t*) - F_lam* <= (L/mu) chi2 Gamma on every quadratic."""
    assert _le(the_bias_bound(p), exact_bias(p))


def test_bias_bound_zero_when_weights_are_shares() -> None:
    p = make_quadratics(np.random.default_rng(11), 3, 2, isotropic=False, cond=3.0)
    assert bias_bound(p.lam, p.lam, p.L, p.mu, p.Gamma) == 0.0
    assert exact_bias(Quadratics(p.A, p.c, p.b, p.lam, p.lam)) == pytest.approx(0.0, abs=1e-12)


def test_bias_bound_wrong_variant_is_caught() -> None:
    """(L/(2mu)) chi2 Gamma falls below the exact bias on some instance (isotropic, K = 2)."""
    insts = _instances(60, seed=101)
    for p in insts:
        assert _le(the_bias_bound(p), exact_bias(p))
    wrong = [0.5 * the_bias_bound(p) < exact_bias(p) * (1 - 1e-6) for p in insts]
    assert any(wrong)


def _training_sides(p: Quadratics, w: np.ndarray) -> tuple[float, float]:
    return p.gap(p.lt, w), p.gap(p.lam, w)


@given(quadratics, st.integers(0, 2**32 - 1), st.floats(0.0, 3.0))
def test_training_error_bound_above_exact(p: Quadratics, seed: int, scale: float) -> None:
    """Theorem 1(b): both forms bound F_lam(w) - F_lam* at a random w; tight <= split."""
    rng = np.random.default_rng(seed)
    w = p.minimiser(p.lt) + scale * rng.standard_normal(p.c.shape[1])
    e, left = _training_sides(p, w)
    e = max(e, 0.0)
    tight = training_error_bound(p.lam, p.lt, p.L, p.mu, p.mu_t, p.Gamma, e)
    split = training_error_bound(p.lam, p.lt, p.L, p.mu, p.mu_t, p.Gamma, e, split=True)
    assert _le(tight, left)
    assert split >= tight * (1 - 1e-12)


def test_training_error_bound_wrong_variant_is_caught() -> None:
    """Dropping the 2 in sqrt(2e/mu_t) is caught (lt = lam, isotropic: bound = e exactly)."""
    rng = np.random.default_rng(202)
    caught = False
    for p in _instances(40, seed=203):
        w = p.minimiser(p.lt) + rng.standard_normal(p.c.shape[1])
        e, left = _training_sides(p, w)
        assert _le(training_error_bound(p.lam, p.lt, p.L, p.mu, p.mu_t, p.Gamma, e), left)
        c2 = chi2(p.lam, p.lt)
        wrong = (np.sqrt(2 * p.L * c2 * p.Gamma) + p.L * np.sqrt(e / p.mu_t)) ** 2 / (2 * p.mu)
        caught |= wrong < left * (1 - 1e-6)
        q = Quadratics(p.A, p.c, p.b, p.lam, p.lam)
        e, left = _training_sides(q, w)
        wrong = q.L**2 * e / (q.mu * q.mu_t) / 2
        caught |= wrong < left * (1 - 1e-6)
    assert caught


def test_chi2_matches_definition() -> None:
    lam = np.array([0.5, 0.3, 0.2, 0.0])
    lt = np.array([0.25, 0.25, 0.25, 0.25])
    assert chi2(lam, lt) == pytest.approx(((lam - lt) ** 2 / lt).sum(), rel=1e-15)
    # with a dropped exit (lam = lt = 0 there) the sum runs over supp(lt)
    assert chi2([0.5, 0.5, 0.0], [0.25, 0.75, 0.0]) == pytest.approx(1 / 3, rel=1e-15)


# ---------------------------------------------------------------------------------------------
# Lemma 2: variance of the aggregate, exact by enumeration and by Monte Carlo
# ---------------------------------------------------------------------------------------------


@dataclass
class Selection:
    q: np.ndarray  # (N, K)
    beta: np.ndarray  # (N, K)
    grad: np.ndarray  # (N, K, d)
    s2: np.ndarray  # (N, K)


def make_selection(rng: np.random.Generator, n: int, k: int, d: int, *, fixed: bool) -> Selection:
    q = np.zeros((n, k))
    for i in range(n):
        kappa = int(rng.integers(1, k + 1))
        if fixed:
            q[i, kappa - 1] = 1.0
        else:
            raw = rng.dirichlet(np.ones(kappa + 1))  # last entry: idle
            q[i, :kappa] = raw[:kappa]
            q[i, :kappa] = np.where(q[i, :kappa] < 0.02, 0.0, q[i, :kappa])
            if not q[i].any():
                q[i, kappa - 1] = 0.5
    data = rng.integers(1, 10, size=n).astype(float)
    pop = q > 0
    mk = pop.T.astype(float) @ data
    lt = rng.dirichlet(np.ones(k))
    beta = np.where(pop, data[:, None] / np.where(mk > 0, mk, 1.0)[None, :], 0.0) * lt
    grad = rng.normal(size=(n, k, d))
    s2 = rng.uniform(0.0, 2.0, size=(n, k))
    return Selection(q=q, beta=beta, grad=grad, s2=s2)


def enumerate_variance(sel: Selection) -> float:
    """E||g - grad F||^2 by summing over every selection outcome (each node: an exit or idle)."""
    n, k = sel.q.shape
    target = np.einsum("ik,ikd->d", sel.beta, sel.grad)
    total = 0.0
    for choice in itertools.product(range(k + 1), repeat=n):  # k means idle
        prob = 1.0
        mean = np.zeros(sel.grad.shape[2])
        noise = 0.0
        for i, c in enumerate(choice):
            if c == k:
                prob *= 1.0 - sel.q[i].sum()
                continue
            prob *= sel.q[i, c]
            if sel.q[i, c] == 0:
                break
            weight = sel.beta[i, c] / sel.q[i, c]
            mean += weight * sel.grad[i, c]
            noise += weight**2 * sel.s2[i, c]  # independent zero-mean minibatch noise
        if prob == 0:
            continue
        total += prob * (float(((mean - target) ** 2).sum()) + noise)
    return total


selections = st.builds(
    lambda seed, n, k, d, fixed: make_selection(np.random.default_rng(seed), n, k, d, fixed=fixed),
    st.integers(0, 2**32 - 1),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 3),
    st.booleans(),
)


@given(selections)
def test_variance_exact_equals_enumeration(sel: Selection) -> None:
    """Lemma 2's closed form equals the enumeration over all (K + 1)^N selection outcomes."""
    got = variance_exact(sel.q, sel.beta, sel.grad, sel.s2)
    want = enumerate_variance(sel)
    # both sides sum at most 4^4 O(1) terms: rounding well below 1e-10 relative
    assert got == pytest.approx(want, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("seed", [301, 302, 303])
def test_variance_exact_agrees_with_monte_carlo(seed: int) -> None:
    """N = 12 nodes, K = 3, d = 3: 40,000 simulated rounds with Gaussian minibatch noise.

    The sample mean of ||g - grad F||^2 must lie within 4 standard errors (estimated from the
    same samples) of the closed form: a correct formula fails this with probability < 1e-4.
    """
    rng = np.random.default_rng(seed)
    sel = make_selection(rng, 12, 3, 3, fixed=False)
    n, _k, d = sel.grad.shape
    samples = 40_000
    cum = np.concatenate([np.cumsum(sel.q, axis=1), np.ones((n, 1))], axis=1)
    u = rng.random((samples, n, 1))
    choice = (u > cum[None, :, :]).sum(axis=2)  # in 0..k, k = idle
    target = np.einsum("ik,ikd->d", sel.beta, sel.grad)
    weight = np.where(sel.q > 0, sel.beta / np.where(sel.q > 0, sel.q, 1.0), 0.0)
    w_pad = np.concatenate([weight, np.zeros((n, 1))], axis=1)
    g_pad = np.concatenate([sel.grad, np.zeros((n, 1, d))], axis=1)
    sd_pad = np.sqrt(np.concatenate([sel.s2, np.zeros((n, 1))], axis=1) / d)
    rows = np.arange(n)[None, :]
    wsel = w_pad[rows, choice]  # (S, N)
    noise = rng.standard_normal((samples, n, d)) * sd_pad[rows, choice][:, :, None]
    g = np.einsum("sn,snd->sd", wsel, g_pad[rows, choice] + noise)
    err = ((g - target) ** 2).sum(axis=1)
    exact = variance_exact(sel.q, sel.beta, sel.grad, sel.s2)
    se = err.std(ddof=1) / np.sqrt(samples)
    assert abs(err.mean() - exact) <= 4 * se


def _bound_inputs(sel: Selection, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    norms2 = (sel.grad**2).sum(axis=2)
    G2 = norms2 * rng.uniform(1.0, 2.0, size=norms2.shape)
    sigma2 = sel.s2 * rng.uniform(1.0, 2.0, size=sel.s2.shape)
    return sigma2, G2


@given(selections, st.integers(0, 2**32 - 1))
def test_variance_bound_above_exact(sel: Selection, seed: int) -> None:
    """V(lt, q) >= exact variance whenever ||grad f|| <= G and s^2 <= sigma^2."""
    sigma2, G2 = _bound_inputs(sel, np.random.default_rng(seed))
    assert _le(variance_bound(sel.q, sel.beta, sigma2, G2),
               variance_exact(sel.q, sel.beta, sel.grad, sel.s2))


@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(1, 3))
def test_variance_bound_equals_exact_when_fixed(seed: int, n: int, k: int) -> None:
    """Every node fixed and s^2 = sigma^2: V equals the exact variance (G plays no role)."""
    sel = make_selection(np.random.default_rng(seed), n, k, 2, fixed=True)
    G2 = np.full(sel.q.shape, 100.0)
    got = variance_bound(sel.q, sel.beta, sel.s2, G2)
    assert got == pytest.approx(variance_exact(sel.q, sel.beta, sel.grad, sel.s2), rel=1e-12)


def test_variance_bound_wrong_variants_are_caught() -> None:
    """Without 1/q, or without G^2 for sampled nodes, the bound falls below the exact value."""
    rng = np.random.default_rng(304)
    caught_q = caught_g = False
    for _ in range(30):
        sel = make_selection(rng, 3, 2, 2, fixed=False)
        norms2 = (sel.grad**2).sum(axis=2)
        exact = variance_exact(sel.q, sel.beta, sel.grad, sel.s2)
        assert _le(variance_bound(sel.q, sel.beta, sel.s2, norms2), exact)
        no_q = float((sel.beta**2 * (sel.s2 + norms2)).sum())
        pos = sel.q > 0
        no_g = float(np.where(pos, sel.beta**2 * sel.s2 / np.where(pos, sel.q, 1), 0).sum())
        caught_q |= no_q < exact * (1 - 1e-6)
        caught_g |= no_g < exact * (1 - 1e-6)
    assert caught_q and caught_g


def test_variance_bound_matches_variance_coefficients_on_reference() -> None:
    """V(lt, q) = sum_k v_k lt_k^2 with v from cistheory.variance_coefficients (p40 variant)."""
    cis = cistheory.reference_cis("80-15-5")
    part = cistheory.shallower_with_probability(cis, {2: 0.4, 3: 0.8})
    sigma = np.asarray(cistheory.REFERENCE_SIGMA["3-9-17"])
    G = np.array([0.01, 0.02, 0.03])
    lt = np.array([0.5, 0.3, 0.2])
    v = cistheory.variance_coefficients(part, sigma, G)
    got = variance_bound(part.q, cistheory.beta(part, lt), sigma**2, G**2)
    assert got == pytest.approx(float(v @ lt**2), rel=1e-12)  # same sums, different order


# ---------------------------------------------------------------------------------------------
# Theorem 2: exact expected error of SGD on quadratics with additive noise
# ---------------------------------------------------------------------------------------------


@dataclass
class SGDProblem:
    A: np.ndarray  # (d, d) SPD Hessian of F_lt
    Sigma: np.ndarray  # (d, d) noise covariance
    u0: np.ndarray  # w_0 - w*

    @property
    def L_t(self) -> float:
        return float(np.linalg.eigvalsh(self.A).max())

    @property
    def mu_t(self) -> float:
        return float(np.linalg.eigvalsh(self.A).min())

    @property
    def V(self) -> float:
        return float(np.trace(self.Sigma))

    @property
    def gap0(self) -> float:
        return float(0.5 * self.u0 @ self.A @ self.u0)

    def exact_gaps(self, steps: np.ndarray) -> np.ndarray:
        """E[F(w_t)] - F* for t = 0..len(steps): update t uses steps[t] (no Monte Carlo).

        w_{t+1} - w* = (I - eta_t A)(w_t - w*) - eta_t xi_t, so the second moment obeys
        S_{t+1} = P S_t P + eta_t^2 Sigma and E[F(w_t)] - F* = tr(A S_t) / 2.
        """
        d = self.A.shape[0]
        S = np.outer(self.u0, self.u0)
        out = [0.5 * np.trace(self.A @ S)]
        for eta in steps:
            P = np.eye(d) - eta * self.A
            S = P @ S @ P + eta**2 * self.Sigma
            out.append(0.5 * np.trace(self.A @ S))
        return np.asarray(out)


def make_sgd(
    rng: np.random.Generator, d: int, cond: float, noise: float, dist: float
) -> SGDProblem:
    q, _r = np.linalg.qr(rng.standard_normal((d, d)))
    eig = np.exp(rng.uniform(0.0, np.log(cond), size=d))
    A = (q * eig) @ q.T
    A = 0.5 * (A + A.T)
    root = rng.standard_normal((d, d)) * noise
    return SGDProblem(A=A, Sigma=root @ root.T, u0=dist * rng.standard_normal(d))


sgd_problems = st.builds(
    lambda seed, d, cond, noise, dist: make_sgd(np.random.default_rng(seed), d, cond, noise, dist),
    st.integers(0, 2**32 - 1),
    st.integers(1, 3),
    st.sampled_from([1.0, 2.0, 10.0]),
    st.sampled_from([0.0, 0.1, 1.0, 3.0]),
    st.sampled_from([0.0, 0.3, 1.0, 5.0]),
)

T = 60


@given(sgd_problems, st.sampled_from([1.0, 0.999, 0.5, 0.1]))
def test_fixed_step_bound_above_exact_sgd(p: SGDProblem, h: float) -> None:
    """Theorem 2 (fixed step eta = h/L_t <= 1/L_t) >= exact E[F(w_t)] - F* for t = 0..T."""
    eta = h / p.L_t
    exact = p.exact_gaps(np.full(T, eta))
    t = np.arange(T + 1)
    bound = sgd_fixed_step_bound(t, eta, p.L_t, p.mu_t, p.V, p.gap0)
    assert isinstance(bound, np.ndarray)
    assert all(_le(bd, ex) for bd, ex in zip(bound, exact, strict=True))
    assert bound[0] == pytest.approx(p.gap0, rel=1e-12)  # t = 0 is w_0 itself


@given(sgd_problems, st.sampled_from([1.5, 2.0, 5.0]), st.sampled_from([1.0, 1.5, 4.0]))
def test_diminishing_bound_above_exact_sgd(p: SGDProblem, bmu: float, slack: float) -> None:
    """Theorem 2 (eta_t = b/(gamma + t), b mu_t > 1, b/gamma <= 1/L_t) >= exact, t = 0..T."""
    b = bmu / p.mu_t
    gamma = slack * b * p.L_t
    t = np.arange(T + 1)
    exact = p.exact_gaps(b / (gamma + t[:-1]))
    bound = sgd_diminishing_bound(t, b, gamma, p.L_t, p.mu_t, p.V, p.gap0)
    assert isinstance(bound, np.ndarray)
    assert all(_le(bd, ex) for bd, ex in zip(bound, exact, strict=True))


def _fixed_variant(t: np.ndarray, eta: float, p: SGDProblem, shift: int, fl: float) -> np.ndarray:
    floor = fl * eta * p.L_t * p.V / (2 * p.mu_t)
    return floor + (1 - eta * p.mu_t) ** (t + shift) * (p.gap0 - floor)


def _dim_variant(t: np.ndarray, b: float, gamma: float, p: SGDProblem, shift: int) -> np.ndarray:
    nu = max(b**2 * p.L_t * p.V / (2 * (b * p.mu_t - 1)), gamma * p.gap0)
    return nu / (gamma + t + shift)


def test_sgd_bounds_wrong_variants_are_caught() -> None:
    """Exponent t + 1, half the noise floor, and the diminishing bound one update ahead
    (nu / (gamma + t + 1): Bottou et al.'s iterate k read as k updates) each fall below the
    exact error somewhere."""
    rng = np.random.default_rng(401)
    t = np.arange(T + 1)
    caught = dict.fromkeys(["exp+1", "floor/2", "dim-shift"], False)
    for i in range(20):
        p = make_sgd(rng, 1 + i % 3, [1.0, 3.0][i % 2], [0.0, 1.0][(i // 2) % 2], 2.0)
        eta = 1.0 / p.L_t
        exact = p.exact_gaps(np.full(T, eta))
        assert np.all(sgd_fixed_step_bound(t, eta, p.L_t, p.mu_t, p.V, p.gap0) >= exact - REL)
        caught["exp+1"] |= bool(np.any(_fixed_variant(t, eta, p, 1, 1.0) < exact - 1e-6))
        caught["floor/2"] |= bool(np.any(_fixed_variant(t, eta, p, 0, 0.5) < exact - 1e-6))
        b, gamma = 2.0 / p.mu_t, 2.0 * p.L_t / p.mu_t
        exact_d = p.exact_gaps(b / (gamma + t[:-1]))
        caught["dim-shift"] |= bool(np.any(_dim_variant(t, b, gamma, p, 1) < exact_d - 1e-6))
    assert all(caught.values()), caught


def test_fixed_step_bound_indexing_golden() -> None:
    """Scalar quadratic by hand: a = 1, eta = 1/2, V = 2, gap0 = 3.

    Exact: gap_{t+1} = (1 - eta a)^2 gap_t + eta^2 a V / 2 = gap_t / 4 + 1/4.
    Bound: floor eta L V / (2 mu) = 1/2, so 1/2 + (1/2)^t (3 - 1/2); t counts updates.
    """
    p = SGDProblem(A=np.eye(1), Sigma=2.0 * np.eye(1), u0=np.array([np.sqrt(6.0)]))
    exact = p.exact_gaps(np.full(3, 0.5))
    assert exact.tolist() == pytest.approx([3.0, 1.0, 0.5, 0.375], rel=1e-14)
    bound = sgd_fixed_step_bound(np.arange(4), 0.5, 1.0, 1.0, 2.0, 3.0)
    # floor eta L V / (2 mu) = 0.5; (1/2)^t (3 - 0.5)
    assert np.asarray(bound).tolist() == pytest.approx([3.0, 1.75, 1.125, 0.8125], rel=1e-14)


# ---------------------------------------------------------------------------------------------
# Theorem 1(c) with Theorem 2: the training part of the full bound after T rounds, exactly
# ---------------------------------------------------------------------------------------------


@given(quadratics, st.sampled_from([0.0, 0.5, 2.0]), st.sampled_from([0, 1, 5, 30]))
def test_training_part_of_full_bound_above_exact(p: Quadratics, noise: float, rounds: int) -> None:
    """SGD on F_lt with additive isotropic noise: E[F_lam(w_T)] - F_lam* <= total - gen."""
    d = p.c.shape[1]
    H_t = p.hessian(p.lt)
    L_t = float(np.linalg.eigvalsh(H_t).max())
    w0 = np.zeros(d)
    w_t = p.minimiser(p.lt)
    eta = 1.0 / L_t
    Sigma = noise * np.eye(d)
    # exact second moment of w_T - w_t* (mean and covariance propagated together)
    S = np.outer(w0 - w_t, w0 - w_t)
    for _ in range(rounds):
        P = np.eye(d) - eta * H_t
        S = P @ S @ P + eta**2 * Sigma
    m = w0 - w_t  # mean of w_T - w_t*
    for _ in range(rounds):
        m = (np.eye(d) - eta * H_t) @ m
    # E[F_lam(w)] - F_lam* = 1/2 E[(u + s)^T H (u + s)] with u = w - w_t*, s = w_t* - w*
    H = p.hessian(p.lam)
    shift = w_t - p.minimiser(p.lam)
    exact = 0.5 * (np.trace(H @ S) + shift @ H @ shift) + float(shift @ H @ m)
    terms = full_bound(p.lam, p.lt, L=p.L, mu=p.mu, mu_t=p.mu_t, L_t=L_t, Gamma=p.Gamma,
                       V=noise * d, gap0=p.gap(p.lt, w0), T=rounds, eps=np.zeros_like(p.lam),
                       eta=eta)
    assert _le(terms.total, exact)
    assert terms.total_split >= terms.total * (1 - 1e-12)


# ---------------------------------------------------------------------------------------------
# Theorem 3: exact binomial tails and exact Rademacher averages
# ---------------------------------------------------------------------------------------------


def _failure_probability(M: np.ndarray, eps: np.ndarray, B: float) -> float:
    """P(some exit k has sup_w |R_k - F_k| > eps_k), exactly.

    Class: |w| <= W, x = X s with s a fair sign, loss (B/2)(1 + w x/(W X)) in [0, B],
    (B/(2 W X))-Lipschitz in w x. R_k(w) = B/2, so sup_w |R_k - F_k| = (B/2)|mean of s|,
    and sum s = 2 Bin(M, 1/2) - M. Exits hold disjoint samples: independent events.
    """
    keep = 1.0
    for m, e in zip(M.astype(int), eps, strict=True):
        thr = 2 * m * e / B  # fail iff |2 X - m| > thr, X ~ Bin(m, 1/2)
        hi = np.floor((m + thr) / 2)  # fail iff X > hi or X < m - hi
        lo = np.ceil((m - thr) / 2)
        p_ok = stats.binom.cdf(hi, m, 0.5) - stats.binom.cdf(lo - 1, m, 0.5)
        keep *= float(p_ok)
    return 1.0 - keep


@given(
    st.lists(st.integers(5, 400), min_size=1, max_size=4),
    st.sampled_from([0.01, 0.05, 0.2, 0.5]),
    st.sampled_from([0.5, 1.0, 3.0]),
)
def test_generalization_bound_holds_with_stated_probability(
    m_list: list[int], delta: float, B: float
) -> None:
    """Theorem 3: the deviation exceeds eps_k for some k with probability <= delta (exact)."""
    M = np.asarray(m_list, dtype=float)
    rad = linear_rademacher(M, B / 2.0, 1.0, 1.0)  # rho W X with rho = B/(2 W X)
    eps = generalization_bound(M, delta, B, rad)
    assert _failure_probability(M, eps, B) <= delta


def test_generalization_bound_wrong_variant_is_caught() -> None:
    """Without the square roots (1/M instead of 1/sqrt(M)) the failure probability > delta."""
    M = np.array([100.0, 200.0, 400.0])
    delta, B = 0.05, 1.0
    wrong = 2 * (B / 2) / M + B * np.log(2 * 3 / delta) / (2 * M)
    right = generalization_bound(M, delta, B, linear_rademacher(M, B / 2, 1.0, 1.0))
    assert _failure_probability(M, right, B) <= delta < _failure_probability(M, wrong, B)


@given(st.integers(1, 10), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_linear_rademacher_above_exact_empirical(m: int, d: int, seed: int) -> None:
    """E_s sup_{|w|<=W} (1/M) sum s_i <w, x_i> = (W/M) E||sum s_i x_i||, by enumerating s."""
    rng = np.random.default_rng(seed)
    X, W = 1.5, 2.0
    x = rng.standard_normal((m, d))
    x *= X / np.linalg.norm(x, axis=1, keepdims=True) * rng.uniform(0.2, 1.0, size=(m, 1))
    if seed % 2:  # aligned points: the sup is as large as it gets
        x[:] = x[0]
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=m)))
    exact = W / m * float(np.linalg.norm(signs @ x, axis=1).mean())
    assert _le(float(linear_rademacher(m, 1.0, W, X)), exact)


def test_linear_rademacher_wrong_variant_is_caught() -> None:
    """rho W X / M (instead of / sqrt(M)) is below the exact average for aligned points."""
    m, X, W = 6, 1.0, 1.0
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=m)))
    exact = W / m * float(np.abs(signs.sum(axis=1) * X).mean())
    assert W * X / m < exact <= float(linear_rademacher(m, 1.0, W, X))


# ---------------------------------------------------------------------------------------------
# Corollary: full bound and the CIS wrapper
# ---------------------------------------------------------------------------------------------


def test_full_bound_terms_compose() -> None:
    lam, lt = np.array([0.8, 0.15, 0.05]), np.array([0.5, 0.3, 0.2])
    eps = np.array([0.1, 0.05, 0.02])
    kw = dict(L=2.0, mu=0.5, mu_t=0.4, L_t=1.5, Gamma=0.3, V=0.2, gap0=1.0, T=50, eps=eps)
    for sched in ({"eta": 0.5}, {"b": 5.0, "gamma": 8.0}):
        terms = full_bound(lam, lt, **kw, **sched)  # type: ignore[arg-type]
        if "eta" in sched:
            e_T = float(sgd_fixed_step_bound(50, 0.5, 1.5, 0.4, 0.2, 1.0))
        else:
            e_T = float(sgd_diminishing_bound(50, 5.0, 8.0, 1.5, 0.4, 0.2, 1.0))
        assert terms.generalisation == pytest.approx(2 * float(lam @ eps), rel=1e-15)
        assert terms.bias == pytest.approx(2 * 2.0 / 0.5 * chi2(lam, lt) * 0.3, rel=1e-15)
        assert terms.optimisation == pytest.approx(2 * 4.0 / (0.5 * 0.4) * e_T, rel=1e-15)
        tight = training_error_bound(lam, lt, 2.0, 0.5, 0.4, 0.3, e_T)
        assert terms.total == pytest.approx(terms.generalisation + tight, rel=1e-15)
        assert terms.total_split == pytest.approx(
            terms.generalisation + terms.bias + terms.optimisation, rel=1e-15
        )
        assert terms.total <= terms.total_split
        assert set(terms.as_dict()) == {
            "generalisation", "bias", "optimisation", "total", "total_split"
        }


@pytest.mark.parametrize("schedule", [{"eta": 0.5}, {"b": 20.0, "gamma": 20.0}])
def test_cis_bound_on_reference(schedule: dict[str, float]) -> None:
    cis = cistheory.reference_cis("80-15-5")
    part = cistheory.deepest_exit(cis)
    sigma = np.asarray(cistheory.REFERENCE_SIGMA["3-9-17"])
    const = CISConstants(L=1.0, mu=0.1, Gamma=1.0, sigma=sigma, gap0=1.0, T=100,
                         rademacher=[0.01, 0.01, 0.01], **schedule)
    at_lam = cis_bound(cis, part, cis.lam, const)
    equal = cis_bound(cis, part, cistheory.equal(3), const)
    assert isinstance(at_lam, BoundTerms)
    assert at_lam.bias == 0.0
    assert equal.bias > 0.0
    # V from the CIS: every node fixed, equal data per tier -> sum lt_k^2 sigma_k^2 / n_k
    n_k = part.exit_nodes
    V = float((cis.lam**2 * sigma**2 / n_k).sum())
    M = part.exit_data
    eps = generalization_bound(M, 0.05, 1.0, [0.01, 0.01, 0.01])
    direct = full_bound(cis.lam, cis.lam, L=1.0, mu=0.1, mu_t=0.1, L_t=1.0, Gamma=1.0, V=V,
                        gap0=1.0, T=100, eps=eps, **schedule)
    assert at_lam.as_dict() == pytest.approx(direct.as_dict(), rel=1e-12)
    assert all(np.isfinite(list(equal.as_dict().values())))


# ---------------------------------------------------------------------------------------------
# Invalid input: CISInputError naming the field
# ---------------------------------------------------------------------------------------------

LAM, LT = [0.5, 0.5], [0.5, 0.5]
Q1, B1 = [[0.5, 0.5]], [[0.25, 0.25]]

BAD_CASES: list[tuple[str, Callable[[], object], str]] = [
    ("mu<=0", lambda: bias_bound(LAM, LT, 1.0, 0.0, 1.0), "mu"),
    ("L<mu", lambda: bias_bound(LAM, LT, 0.5, 1.0, 1.0), "L"),
    ("Gamma<0", lambda: bias_bound(LAM, LT, 1.0, 1.0, -1.0), "Gamma"),
    ("lt off simplex", lambda: chi2(LAM, [0.7, 0.7]), "lt"),
    ("lt negative", lambda: chi2(LAM, [1.5, -0.5]), "lt[2]"),
    ("lam>0, lt=0", lambda: chi2(LAM, [1.0, 0.0]), "lt[2]"),
    ("lengths", lambda: chi2(LAM, [0.2, 0.3, 0.5]), "lt"),
    ("NaN", lambda: bias_bound(LAM, LT, float("nan"), 1.0, 1.0), "L"),
    ("mu_t<=0", lambda: training_error_bound(LAM, LT, 1.0, 1.0, 0.0, 1.0, 0.1), "mu_t"),
    ("mu_t>L", lambda: training_error_bound(LAM, LT, 1.0, 1.0, 2.0, 1.0, 0.1), "L"),
    ("e<0", lambda: training_error_bound(LAM, LT, 1.0, 1.0, 1.0, 1.0, -0.1), "e"),
    ("q>1", lambda: variance_bound([[1.5, 0.0]], B1, [1, 1], [1, 1]), "q[0, 1]"),
    ("q row>1", lambda: variance_bound([[0.6, 0.6]], B1, [1, 1], [1, 1]), "q[0]"),
    ("beta where q=0", lambda: variance_bound([[1.0, 0.0]], B1, [1, 1], [1, 1]), "beta[0, 2]"),
    ("sigma2<0", lambda: variance_bound(Q1, B1, [1.0, -1.0], [1, 1]), "sigma2[2]"),
    ("G2 shape", lambda: variance_bound(Q1, B1, [1, 1], [1, 1, 1]), "G2"),
    ("noise_var<0", lambda: variance_exact(Q1, B1, [[[1.0], [1.0]]], [[0.1, -0.1]]),
     "noise_var[0, 2]"),
    ("grad shape", lambda: variance_exact(Q1, B1, [[1.0, 1.0]], [[0.1, 0.1]]), "grad"),
    ("eta>1/L", lambda: sgd_fixed_step_bound(1, 1.5, 1.0, 0.5, 1.0, 1.0), "eta"),
    ("eta<=0", lambda: sgd_fixed_step_bound(1, 0.0, 1.0, 0.5, 1.0, 1.0), "eta"),
    ("t<0", lambda: sgd_fixed_step_bound(-1, 0.5, 1.0, 0.5, 1.0, 1.0), "t"),
    ("t not int", lambda: sgd_fixed_step_bound([1, 1.5], 0.5, 1.0, 0.5, 1.0, 1.0), "t[1]"),
    ("L_t<mu_t", lambda: sgd_fixed_step_bound(1, 0.5, 1.0, 2.0, 1.0, 1.0), "L_t"),
    ("V<0", lambda: sgd_fixed_step_bound(1, 0.5, 1.0, 0.5, -1.0, 1.0), "V"),
    ("gap0<0", lambda: sgd_diminishing_bound(1, 4.0, 4.0, 1.0, 0.5, 1.0, -1.0), "gap0"),
    ("b mu<=1", lambda: sgd_diminishing_bound(1, 2.0, 4.0, 1.0, 0.5, 1.0, 1.0), "b"),
    ("b/gamma>1/L", lambda: sgd_diminishing_bound(1, 4.0, 3.0, 1.0, 0.5, 1.0, 1.0), "gamma"),
    ("M<=0", lambda: generalization_bound([10.0, 0.0], 0.05, 1.0, 0.0), "M[2]"),
    ("delta", lambda: generalization_bound([10.0], 1.0, 1.0, 0.0), "delta"),
    ("B<=0", lambda: generalization_bound([10.0], 0.05, 0.0, 0.0), "B"),
    ("rademacher<0", lambda: generalization_bound([10.0], 0.05, 1.0, -0.1), "rademacher"),
    ("rho<0", lambda: linear_rademacher(10.0, -1.0, 1.0, 1.0), "rho"),
    ("eta and b", lambda: full_bound(LAM, LT, L=1, mu=1, mu_t=1, L_t=1, Gamma=0, V=0, gap0=1,
                                     T=1, eps=[0, 0], eta=0.5, b=2.0, gamma=2.0), "eta"),
    ("no schedule", lambda: full_bound(LAM, LT, L=1, mu=1, mu_t=1, L_t=1, Gamma=0, V=0, gap0=1,
                                       T=1, eps=[0, 0]), "eta"),
    ("eps shape", lambda: full_bound(LAM, LT, L=1, mu=1, mu_t=1, L_t=1, Gamma=0, V=0, gap0=1,
                                     T=1, eps=[0], eta=0.5), "eps"),
]


@pytest.mark.parametrize(("case", "call", "field"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_invalid_input_names_field(case: str, call: Callable[[], object], field: str) -> None:
    with pytest.raises(CISInputError) as info:
        call()
    assert info.value.field == field, case


def test_cis_bound_rejects_wrong_shapes() -> None:
    cis = cistheory.reference_cis("80-15-5")
    part = cistheory.deepest_exit(cis)
    const = CISConstants(L=1.0, mu=0.1, Gamma=1.0, sigma=[1.0, 1.0], gap0=1.0, T=10, eta=0.5)
    with pytest.raises(CISInputError) as info:
        cis_bound(cis, part, cis.lam, const)
    assert info.value.field == "sigma"
    const = CISConstants(L=1.0, mu=0.1, Gamma=1.0, sigma=[1.0, 1.0, 1.0], gap0=1.0, T=10)
    with pytest.raises(CISInputError) as info:
        cis_bound(cis, part, cis.lam, const)
    assert info.value.field == "eta"


def test_step_exactly_one_over_L_is_accepted() -> None:
    """eta = 1/L computed in floating point is admissible (eta * L may round above 1)."""
    for L in (3.0, 7.0, 0.1, 49.0):
        assert np.isfinite(sgd_fixed_step_bound(5, 1.0 / L, L, L / 2, 1.0, 1.0))
