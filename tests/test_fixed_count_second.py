"""Lemma ES-f (docs/theory.md, Section 4.11f): the second-generation constants under a
fixed-count draw, against outcomes enumerated here, and their input checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cistheory.bounds import expected_smoothness, sampling_lipschitz, variance_parts
from cistheory.errors import CISInputError
from cistheory.system.participation import explicit, fixed_count
from proofs_check import run_module


def _draw_variance(r: np.ndarray, n: int, b: np.ndarray, x: np.ndarray) -> float:
    """Var of sum over picks of (b/q) x[i, k] with q = (n/N) r, every set and pick listed."""
    big_n, k_ex = r.shape
    q = r * n / big_n
    sets = list(itertools.combinations(range(big_n), n))
    first, second = np.zeros(x.shape[2]), 0.0
    for drawn in sets:
        opts = [[(r[i, k], k) for k in range(k_ex) if r[i, k] > 0]
                + ([(1.0 - r[i].sum(), -1)] if r[i].sum() < 1 else []) for i in drawn]
        for combo in itertools.product(*opts):
            p = 1.0 / len(sets)
            v = np.zeros(x.shape[2])
            for i, (pk, k) in zip(drawn, combo, strict=True):
                p *= pk
                if k >= 0:
                    v = v + b[i, k] / q[i, k] * x[i, k]
            first += p * v
            second += p * float(v @ v)
    return second - float(first @ first)


def test_independent_constants_are_exceeded_and_the_draws_are_not() -> None:
    """The counterexample of Lemma ES-f (d): two nodes, one drawn, f_1 = w_1^2/2,
    f_2 = (w_2 - w_1)^2/4, at w = (1, 2)."""
    r, b, L = np.ones((2, 1)), np.full((2, 1), 0.5), np.ones((2, 1))
    q = r / 2
    delta = np.array([[[1.0, 0.0]], [[-0.5, 0.5]]])
    exact = _draw_variance(r, 1, b, delta)
    inner = 0.75  # <grad F(w) - grad F(w*), w - w*>
    assert exact == pytest.approx(5 / 8, rel=1e-12)
    assert expected_smoothness(q, b, L) * inner < exact  # independent L_s: 3/8
    assert expected_smoothness(q, b, L, per_round=1) * inner >= exact  # 3/4


def test_variance_parts_per_round_is_the_enumerated_variance() -> None:
    rng = np.random.default_rng(4)
    for _ in range(15):
        big_n, k_ex = int(rng.integers(2, 6)), int(rng.integers(1, 4))
        n = int(rng.integers(1, big_n + 1))
        r = rng.dirichlet(np.ones(k_ex + 1), size=big_n)[:, :k_ex]
        b = rng.uniform(0.1, 1.0, size=(big_n, k_ex))
        b /= b.sum()
        g = rng.normal(size=(big_n, k_ex, 2))
        vs, vn = variance_parts(r * n / big_n, b, g, np.zeros((big_n, k_ex)), per_round=n)
        # float64 sums of a few hundred O(1) terms: 1e-10 relative is rounding
        assert vs == pytest.approx(_draw_variance(r, n, b, g), rel=1e-10, abs=1e-12)
        assert vn == 0.0
        ind, _ = variance_parts(r * n / big_n, b, g, np.zeros((big_n, k_ex)))
        if n == big_n:
            assert vs == pytest.approx(ind, rel=1e-12)


@pytest.mark.parametrize(("per_round", "field", "text"), [
    (0, "per_round", "must lie in 1..2"),
    (3, "per_round", "must lie in 1..2"),
    (True, "per_round", "must be an integer"),
    (1.0, "per_round", "must be an integer"),
])
def test_per_round_refused_in_one_line(per_round: object, field: str, text: str) -> None:
    with pytest.raises(CISInputError) as err:
        expected_smoothness([[0.5], [0.5]], [[0.5], [0.5]], [[1.0], [1.0]],
                            per_round=per_round)  # type: ignore[arg-type]
    assert err.value.field == field and text in str(err.value)


def test_rows_above_the_inclusion_probability_are_refused() -> None:
    """With one of two nodes drawn, a row of q may sum to at most 1/2."""
    with pytest.raises(CISInputError) as err:
        sampling_lipschitz([[0.5], [0.75]], [[0.5], [0.5]], [[1.0], [1.0]], per_round=1)
    assert err.value.field == "q[1]" and "> per_round/N = 0.5" in str(err.value)
    with pytest.raises(CISInputError):
        variance_parts([[0.75], [0.5]], [[0.5], [0.5]], [[[1.0]], [[1.0]]], [[0.0], [0.0]],
                       per_round=1)


def test_exact_constants_use_the_participations_draw() -> None:
    from cistheory.experiments.design_constants import exact_constants
    from cistheory.experiments.validate_rates import ValidationConfig, build_problem

    prob = build_problem(ValidationConfig(n_seeds=2, rounds=10, n_records=4))
    drawn = fixed_count(prob.part, 2)
    same_q = explicit(prob.cis, drawn.q, name="independent")
    lt = prob.cis.lam
    c_draw = exact_constants(prob.with_participation(drawn), lt)
    c_ind = exact_constants(prob.with_participation(same_q), lt)
    assert c_draw.Ls == expected_smoothness(drawn.q, c_draw.beta, c_draw.L_pair, per_round=2)
    assert c_draw.Ls > c_ind.Ls and c_draw.Vs > c_ind.Vs and c_draw.Vn == c_ind.Vn


def test_fixed_count_checks_pass_and_are_run() -> None:
    checks, _ = run_module("lemma_es", np.random.default_rng(2), 40)
    fixed = [c for c in checks if c.name.startswith("lemma_es.fixed_count")]
    assert len(fixed) == 11 and all(c.passed for c in fixed), [c.name for c in fixed
                                                                if not c.passed]
