"""A fixed number of nodes per round, drawn without replacement (Lemma 2f of docs/theory.md).

Every outcome of a small tree is enumerated: the drawn set (all C(N, n) of them, equally
likely), each drawn node's exit, and each picked pair's noise sign. The expectation and the
variance of the server's aggregate are then exact sums, written here without any code of
the package, and compared with the weights the trainer uses (unbiasedness, Lemma 1), the
variance formula of Lemma 2f and the bound V of Lemma 2.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from cistheory import CISInputError, Participation, aggregation_weights, fixed_count
from cistheory.bounds import (
    uniform_inclusion,
    variance_bound,
    variance_exact,
    variance_inclusion,
)
from cistheory.train.data import Dataset
from cistheory.train.fedloop import FedConfig, run_federated, select_exits
from cistheory.train.models import NestedLinear

N, K, D, PER_ROUND = 4, 2, 3, 2


def _instance(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Conditional exit probabilities r (rows <= 1, some idling), data sizes, lt, gradients
    and noise vectors of a random small tree."""
    rng = np.random.default_rng(seed)
    r = rng.dirichlet(np.ones(K + 1), size=N)[:, :K]  # last column: idle
    r[0] = [0.0, 1.0]  # a node that always trains exit 2 once drawn
    m = rng.integers(1, 6, size=N).astype(float)
    lt = rng.dirichlet(np.ones(K))
    grads = rng.normal(size=(N, K, D))
    noise = rng.normal(size=(N, K, D))  # g = grad +- noise, each sign with probability 1/2
    return r, m, lt, grads, noise


def _enumerate(
    r: np.ndarray, weights: np.ndarray, grads: np.ndarray, noise: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and second moment of sum_{picked} w_{i,k} g_{i,k} over every outcome."""
    mean = np.zeros(D)
    second = np.zeros((D, D))
    subsets = list(itertools.combinations(range(N), PER_ROUND))
    for drawn in subsets:
        p_set = 1.0 / len(subsets)
        # each drawn node: exit 1..K or idle (0), with its probability
        options = [[(k, r[i, k - 1]) for k in range(1, K + 1)] + [(0, 1 - r[i].sum())]
                   for i in drawn]
        for choice in itertools.product(*options):
            p_choice = p_set * float(np.prod([p for _, p in choice]))
            if p_choice == 0.0:
                continue
            picked = [(i, k) for i, (k, _) in zip(drawn, choice, strict=True) if k > 0]
            for signs in itertools.product((1.0, -1.0), repeat=len(picked)):
                p = p_choice / 2 ** len(picked)
                g = np.zeros(D)
                for (i, k), sgn in zip(picked, signs, strict=True):
                    g += weights[i, k - 1] * (grads[i, k - 1] + sgn * noise[i, k - 1])
                mean += p * g
                second += p * np.outer(g, g)
    return mean, second


@pytest.mark.parametrize("seed", range(4))
def test_inclusion_q_makes_the_aggregate_unbiased_and_lemma2f_exact(seed: int) -> None:
    r, m, lt, grads, noise = _instance(seed)
    base = Participation(q=r, data=m, name="r")
    part = fixed_count(base, PER_ROUND)
    np.testing.assert_array_equal(part.q, r * PER_ROUND / N)
    w = aggregation_weights(part, lt, "unbiased")  # what the trainer multiplies by
    mean, second = _enumerate(r, w, grads, noise)
    # the full-participation target: sum_{i,k} beta_{i,k} grad f_{i,k}
    pop = r > 0
    big_m = (pop * m[:, None]).sum(axis=0)
    beta_ref = np.where(pop, lt[None, :] * m[:, None] / big_m[None, :], 0.0)
    target = (beta_ref[:, :, None] * grads).sum(axis=(0, 1))
    # float64 sums of at most a few hundred terms of order one: 1e-12 absolute
    np.testing.assert_allclose(mean, target, rtol=0, atol=1e-12)
    variance = float(np.trace(second) - mean @ mean)
    s2 = (noise**2).sum(axis=2)  # E||xi||^2 of the +-noise
    _, pi2 = uniform_inclusion(N, PER_ROUND)
    formula = variance_inclusion(part.q, beta_ref, grads, s2, pi2)
    assert formula == pytest.approx(variance, rel=1e-10, abs=1e-12)
    # sampling without replacement is not Lemma 2's independent picks
    independent = variance_exact(part.q, beta_ref, grads, s2)
    assert abs(independent - variance) > 1e-6
    # the bound V (every node sampled: no entry of q equals 1) still covers it
    g2 = (grads**2).sum(axis=2)
    assert variance <= variance_bound(part.q, beta_ref, s2, g2) * (1 + 1e-12)


def test_the_multiplicative_rule_stays_biased() -> None:
    r, m, lt, grads, noise = _instance(7)
    part = fixed_count(Participation(q=r, data=m, name="r"), PER_ROUND)
    mean_u, _ = _enumerate(r, aggregation_weights(part, lt, "unbiased"), grads, noise)
    mean_m, _ = _enumerate(r, aggregation_weights(part, lt, "multiplicative"), grads, noise)
    assert np.abs(mean_u - mean_m).max() > 1e-3


def test_select_exits_draws_exactly_n_and_the_inclusion_frequencies() -> None:
    r, m, _, _, _ = _instance(1)
    part = fixed_count(Participation(q=r, data=m, name="r"), PER_ROUND)
    rng = np.random.default_rng(0)
    reps = 20000
    counts = np.zeros((N, K))
    for _ in range(reps):
        picks = select_exits(part.q, rng, per_round=PER_ROUND)
        assert int((picks > 0).sum()) <= PER_ROUND
        for i, k in enumerate(picks):
            if k:
                counts[i, k - 1] += 1
    freq = counts / reps
    se = np.sqrt(part.q * (1 - part.q) / reps)
    # 5 standard errors per entry (two-sided normal tail 6e-7; 8 entries)
    assert np.all(np.abs(freq - part.q) <= 5 * se + 1e-12)


def test_the_loop_trains_n_nodes_per_round_and_refuses_a_q_too_large() -> None:
    nodes = [Dataset(torch.ones(2, 2), torch.zeros(2)) for _ in range(N)]
    q = np.full((N, 2), 0.25)  # rows sum to 1/2 = 2/4: fine for 2 per round
    cfg = FedConfig(rounds=5, batch_size=None, nodes_per_round=PER_ROUND, selection_seed=3)
    res = run_federated(NestedLinear(2, (1, 2), None), nodes, q, [0.5, 0.5], cfg)
    assert all(sum(p > 0 for p in rec.picks) <= PER_ROUND for rec in res.history)
    assert any(sum(p > 0 for p in rec.picks) == PER_ROUND for rec in res.history)
    with pytest.raises(CISInputError, match=r"q\[0\]"):
        run_federated(NestedLinear(2, (1, 2), None), nodes, np.full((N, 2), 0.3), [0.5, 0.5],
                      cfg)
    with pytest.raises(CISInputError, match="nodes_per_round"):
        fixed_count(Participation(q=q, data=np.ones(N), name="q"), N + 1)
