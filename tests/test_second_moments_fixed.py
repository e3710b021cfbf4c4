"""The exact second moments under a fixed-count draw (``per_round`` of
``cistheory.experiments.second_moments``; docs/theory.md, Section 4.11f): against a
propagation written here that enumerates every drawn set and every pick, the independent map at
``per_round = N``, the input checks, and Theorem A with Lemma ES-f's constants above them on the
validate-rates problem."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from cistheory.bounds import theorem_a
from cistheory.errors import CISInputError
from cistheory.experiments.design_constants import exact_constants
from cistheory.experiments.quadratic import QuadraticProblem, nested_least_squares
from cistheory.experiments.second_moments import (
    exact_errors,
    round_operator,
    second_moment_radius,
)
from cistheory.experiments.validate_rates import ValidationConfig, build_problem
from cistheory.rules.registry import rule_inputs, rule_weights
from cistheory.system.aggregation import beta
from cistheory.system.participation import explicit, fixed_count, named_policy
from cistheory.system.tree import CIS

# Both sides are sums of a few hundred products of O(1) numbers: rounding stays near 1e-14
# relative, so 1e-10 leaves four orders of margin and still catches any wrong term.
REL = 1e-10


def _tiny(rng: np.random.Generator) -> tuple[QuadraticProblem, np.ndarray, int, int]:
    """A random problem with 2-4 nodes, 1-2 exits, dimension 1-2, drawn ``n`` of the nodes;
    returns (problem with the fixed-count participation, per-node table r, n, tau)."""
    n_nodes, k_ex = int(rng.integers(2, 5)), int(rng.integers(1, 3))
    dd = int(rng.integers(1, 3))
    cis = CIS.build(parent=[-1, 0, 0, 1][:n_nodes], capacity=[k_ex] * n_nodes,
                    arrival=[1.0] * n_nodes, service=[math.inf] * n_nodes,
                    data=rng.uniform(1.0, 3.0, size=n_nodes), n_exits=k_ex)
    r = rng.dirichlet(np.ones(k_ex + 1), size=n_nodes)[:, :k_ex]  # some idle mass
    if rng.random() < 0.5:
        r[0] = 0.0
        r[0, -1] = 1.0  # a node that always trains the last exit once drawn
    n = int(rng.integers(1, n_nodes + 1))
    part = fixed_count(explicit(cis, r), n)
    dims = np.minimum(np.arange(1, k_ex + 1), dd) if k_ex > 1 else np.array([dd])
    dims[-1] = dd
    prob = nested_least_squares(cis, part, dims, rng=rng, ridge=0.5, heterogeneity=1.0,
                                noise=float(rng.uniform(0.0, 0.5)))
    return prob, r, n, int(rng.integers(1, 3))


def _outcomes(r: np.ndarray, n: int) -> list[tuple[float, list[int]]]:
    """Every (probability, exit per node or -1) of n of the N nodes drawn, then the picks."""
    n_nodes, k_ex = r.shape
    sets = list(itertools.combinations(range(n_nodes), n))
    out = []
    for drawn in sets:
        choices = [[(float(r[i, k]), k) for k in range(k_ex) if r[i, k] > 0]
                   + [(1.0 - float(r[i].sum()), -1)] for i in drawn]
        for combo in itertools.product(*choices):
            pick = [-1] * n_nodes
            p = 1.0 / len(sets)
            for i, (pk, k) in zip(drawn, combo, strict=True):
                p *= pk
                pick[i] = k
            if p > 0:
                out.append((p, pick))
    return out


def _brute_force(prob: QuadraticProblem, lt: np.ndarray, r: np.ndarray, n: int, eta: float,
                 tau: int, w0: np.ndarray, rounds: int) -> tuple[list[np.ndarray], np.ndarray]:
    """E[(w, 1)(w, 1)^T] after 0..rounds rounds, in w coordinates, from the local steps
    composed as augmented matrices and the outcomes listed; and the homogeneous map's
    matrix (on vec of the D x D block of u = w - w*)."""
    q = prob.part.q
    bet = beta(prob.part, lt)
    dd = prob.mask.shape[1]
    size = dd + 1
    cov = prob.noise_cov()
    delta, noise, lin = {}, {}, {}
    for i, k in zip(*np.nonzero(q > 0), strict=True):
        step = np.eye(size)
        step[:dd, :dd] -= eta * prob.H[i, k]
        step[:dd, dd] = eta * prob.b[i, k]
        delta[i, k] = np.linalg.matrix_power(step, tau) - np.eye(size)
        c = np.zeros((dd, dd))
        for _ in range(tau):
            c = step[:dd, :dd] @ c @ step[:dd, :dd].T + eta**2 * cov[i, k]
        noise[i, k] = c
        lin[i, k] = delta[i, k][:dd, :dd]
    maps, homog = [], np.zeros((dd * dd, dd * dd))
    for p, pick in _outcomes(r, n):
        a = np.eye(size)
        nz = np.zeros((size, size))
        m = np.eye(dd)
        for i, k in enumerate(pick):
            if k >= 0:
                wgt = bet[i, k] / q[i, k]
                a = a + wgt * delta[i, k]
                nz[:dd, :dd] += wgt**2 * noise[i, k]
                m = m + wgt * lin[i, k]
        maps.append((p, a, nz))
        homog += p * np.kron(m, m)
    z = np.append(w0, 1.0)
    W = np.outer(z, z)
    out = [W]
    for _ in range(rounds):
        nxt = np.zeros((size, size))
        for p, a, nz in maps:
            nxt += p * (a @ W @ a.T + nz)
        W = nxt
        out.append(W)
    return out, homog


def _w_star(prob: QuadraticProblem, lt: np.ndarray) -> np.ndarray:
    bet = beta(prob.part, lt)
    return np.linalg.solve(np.einsum("ik,ikde->de", bet, prob.H),
                           np.einsum("ik,ikd->d", bet, prob.b))


def test_fixed_count_moments_match_the_enumerated_draw() -> None:
    rng = np.random.default_rng(20)
    for _ in range(12):
        prob, r, n, tau = _tiny(rng)
        n_nodes, k_ex = r.shape
        dd = prob.mask.shape[1]
        lt = rng.dirichlet(np.ones(k_ex))
        eta = float(rng.uniform(0.05, 0.4))
        w0 = np.asarray(rng.normal(size=dd)) * 2.0
        ref, homog = _brute_force(prob, lt, r, n, eta, tau, w0, 3)
        ws = _w_star(prob, lt)
        to_u = np.eye(dd + 1)
        to_u[:dd, dd] = -ws
        op = round_operator(prob, lt, eta, tau, per_round=n)
        Z = np.outer(np.append(w0 - ws, 1.0), np.append(w0 - ws, 1.0)).reshape(-1)
        ex = exact_errors(prob, lt, eta, [0, 1, 2, 3], w0, tau=tau, per_round=n)
        for t in range(4):
            want = to_u @ ref[t] @ to_u.T
            got = Z.reshape(dd + 1, dd + 1)
            scale = float(np.abs(want).max())
            assert np.abs(got - want).max() <= REL * scale, (n_nodes, n, t)
            assert ex.dist2[t] == pytest.approx(float(np.trace(want[:dd, :dd])), rel=REL)
            Z = op @ Z
        rad = float(np.abs(np.linalg.eigvals(homog)).max())
        assert second_moment_radius(prob, lt, eta, tau, per_round=n) == pytest.approx(
            rad, rel=1e-9)  # eigenvalues of two nonsymmetric matrices: conditioning margin
        if n < n_nodes:  # the draw is not independent picks from the same q
            ind = round_operator(prob, lt, eta, tau)
            assert not np.allclose(ind, op, rtol=1e-6, atol=0.0)


def test_all_nodes_drawn_is_the_independent_map_exactly() -> None:
    rng = np.random.default_rng(21)
    for _ in range(6):
        prob, r, _, tau = _tiny(rng)
        n_nodes, k_ex = r.shape
        full = prob.with_participation(fixed_count(explicit(prob.cis, r), n_nodes))
        lt = rng.dirichlet(np.ones(k_ex))
        assert np.array_equal(round_operator(full, lt, 0.2, tau, per_round=n_nodes),
                              round_operator(full, lt, 0.2, tau))
        assert (second_moment_radius(full, lt, 0.2, tau, per_round=n_nodes)
                == second_moment_radius(full, lt, 0.2, tau))
        # and both are the enumeration of independent picks (every node drawn)
        ref, _ = _brute_force(full, lt, r, n_nodes, 0.2, tau, np.ones(prob.mask.shape[1]), 2)
        ws = _w_star(full, lt)
        ex = exact_errors(full, lt, 0.2, [2], np.ones(prob.mask.shape[1]), tau=tau)
        want = float(np.trace(ref[2][:-1, :-1]) - 2 * ref[2][:-1, -1] @ ws + ws @ ws)
        assert ex.dist2[0] == pytest.approx(want, rel=1e-9)  # w -> u adds cancellation


def test_per_round_input_checks() -> None:
    rng = np.random.default_rng(22)
    prob, r, n, _ = _tiny(rng)
    n_nodes, k_ex = r.shape
    lt = np.full(k_ex, 1.0 / k_ex)
    for bad in (0, n_nodes + 1, True, 1.5):
        with pytest.raises(CISInputError, match="per_round") as err:
            round_operator(prob, lt, 0.1, per_round=bad)  # type: ignore[arg-type]
        assert "\n" not in str(err.value)
    other = 1 + (n % n_nodes)
    with pytest.raises(CISInputError, match=f"draws {n} nodes"):
        exact_errors(prob, lt, 0.1, 1, np.zeros(prob.mask.shape[1]), per_round=other)
    # independent picks whose rows sum above n/N cannot be an inclusion table of n nodes
    full = prob.with_participation(explicit(prob.cis, np.full((n_nodes, k_ex), 1.0 / k_ex)))
    with pytest.raises(CISInputError, match=r"q\[0\].*per_round/N"):
        second_moment_radius(full, lt, 0.1, per_round=1)


def _validate_rates_runs() -> list[dict[str, float]]:
    """Theorem A (distance, every t <= 100) with Lemma ES-f's and with independent constants,
    against the exact moments of the draw, on the validate-rates problem."""
    rows = []
    for split in ("80-15-5", "5-15-80"):
        base = build_problem(ValidationConfig(tree=(2, 2, split), data=(60, 30, 15), n_seeds=2))
        w0 = np.zeros(base.mask.shape[1])
        ts = np.arange(101)
        for pol in ("deepest", "p40"):
            part0 = named_policy(base.cis, pol)
            lt = rule_weights("serving-rate", rule_inputs(base.cis, part0, sigma=base.noise))
            for n in (2, 4, 7):
                part = fixed_count(part0, n)
                prob = base.with_participation(part)
                c = exact_constants(prob, lt)
                ci = exact_constants(prob.with_participation(explicit(base.cis, part.q)), lt)
                r0 = c.distances(w0)[0]
                for frac in (0.3, 0.9):
                    eta = frac * 2.0 / (c.L_t + c.Ls)
                    ex = exact_errors(prob, lt, eta, ts.tolist(), w0, per_round=n).dist2
                    args = dict(eta=eta, mu_t=c.mu_t, L_t=c.L_t, Vn=c.Vn, r0=r0)
                    fix = np.asarray(theorem_a.distance_bound(ts, Ls=c.Ls, Vs=c.Vs, **args))
                    ind = np.asarray(theorem_a.distance_bound(ts, Ls=ci.Ls, Vs=ci.Vs, **args))
                    rows.append({"n": n, "ratio": float((fix[1:] / ex[1:]).min()),
                                 "ratio_T": float(fix[-1] / ex[-1]),
                                 "ind_ratio": float((ind[1:] / ex[1:]).min())})
    return rows


def test_theorem_a_with_the_draws_constants_bounds_the_exact_moments() -> None:
    """Lemma ES-f (e): Theorem A with L_s^(c), V_s^(c) is above the exact E||w_t - w*||^2 of
    the draw at every 1 <= t <= 100 (24 runs: two rate splits x deepest, p40 x n = 2, 4, 7 x steps
    0.3 and 0.9 of the limit); at n = 7 = N the two sets of constants coincide."""
    rows = _validate_rates_runs()
    assert len(rows) == 24
    assert min(row["ratio"] for row in rows) >= 1.0
    for row in rows:
        if row["n"] == 7:
            assert row["ind_ratio"] == row["ratio"]
