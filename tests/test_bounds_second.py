"""The second-generation bounds: the circular-assumption reproducer (one node, q = 0.1),
refusals, inputs, and the constants of a design against the exact computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cistheory import bounds as bd
from cistheory.errors import CISInputError
from cistheory.experiments.design_constants import exact_constants
from cistheory.experiments.second_moments import exact_errors
from cistheory.experiments.validate_rates import ValidationConfig, build_problem
from proofs_check._second import exact_path, reproducer


def test_reproducer_first_generation_below_exact_second_refuses() -> None:
    """One node, q = 0.1, f = w^2/2, eta = 1/L_t = 1: E w_{t+1}^2 = 9 E w_t^2 (gaps 0.5, 4.5,
    40.5, 364.5). Theorem 2 with V = 40 (G over the ball of radius 2|w0|) gives 20 at t = 3,
    below the exact 364.5; every second-generation statement refuses (inf)."""
    ex = exact_path(reproducer(0.1), np.ones(1), np.ones(3))
    assert ex["gap"].tolist() == pytest.approx([0.5, 4.5, 40.5, 364.5], rel=1e-12)
    old = bd.sgd_fixed_step_bound(3, 1.0, 1.0, 1.0, 40.0, 0.5)
    assert old == pytest.approx(20.0) and old < ex["gap"][3]
    Ls = bd.expected_smoothness([[0.1]], [[1.0]], [[1.0]])
    assert Ls == pytest.approx(9.0)
    kw = dict(eta=1.0, mu_t=1.0, L_t=1.0, Ls=Ls, Vs=0.0, Vn=0.0)
    assert math.isinf(bd.distance_bound(3, r0=1.0, **kw))
    assert math.isinf(bd.distance_bound(3, r0=1.0, c=0.0, **kw))
    seq = bd.combined_sequences(3, r0=1.0, e0=0.5, quadratic=True, **kw)
    assert not seq.certified
    assert np.isinf(seq.e[1:]).all() or seq.e[3] >= ex["gap"][3]
    mb = bd.modal_bound(3, eta=1.0, q=[[0.1]], beta=[[1.0]], H_pair=[[[[1.0]]]],
                        grad_opt=[[[0.0]]], noise_cov=[[[[0.0]]]], u0=[1.0])
    assert not mb.certified and mb.d[3, 0] >= ex["dist2"][3] * (1 - 1e-12)


def test_variance_exact_has_no_cancellation() -> None:
    assert bd.variance_exact([[1]], [[1]], [[[1e10]]], [[1]]) == 1.0
    assert bd.variance_parts([[1]], [[1]], [[[1e10]]], [[1]]) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: bd.distance_bound(1, eta=0.1, mu_t=2.0, L_t=1.0, Ls=0, Vs=0, Vn=0, r0=1),
         "mu_t"),
        (lambda: bd.distance_bound(1.5, eta=0.1, mu_t=1.0, L_t=1.0, Ls=0, Vs=0, Vn=0, r0=1),
         "t"),
        (lambda: bd.distance_bound(1, eta=0.1, mu_t=1.0, L_t=1.0, Ls=1, Vs=1, Vn=0, r0=1, c=0),
         "c"),
        (lambda: bd.expected_smoothness([[0.7, 0.7]], [[0.5, 0.5]], [[1, 1]]), "q[0]"),
        (lambda: bd.expected_smoothness([[0.5]], [[0.5]], [[1, 1]]), "L_pair"),
        (lambda: bd.target_error_bound(bias=0, g_lam_norm=1, r=-1, e=0, rho_lam=1, L_lam=1),
         "r"),
        (lambda: bd.local_distance_bound(1, tau=0, eta=0.1, mu_t=1, L_t=1, Ls=0, Vs=0,
                                         q=[[1]], beta=[[1]], L_pair=[[1]], noise_var=[[0]],
                                         grad2_opt=[[0]], r0=1, c=math.inf, theta=1), "tau"),
    ],
)
def test_bad_input_names_the_field(call, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CISInputError) as info:
        call()
    assert info.value.field == field


def test_design_constants_match_the_exact_variance_and_smoothness() -> None:
    """V* of a design equals the exact conditional variance of the aggregate at w* (computed
    by the exact one-round map from w*, noise included), and Lemma ES holds there."""
    prob = build_problem(ValidationConfig(n_seeds=2, rounds=10, n_records=4))
    c = exact_constants(prob, [0.4, 0.3, 0.3])
    eta = 0.05
    ex = exact_errors(prob, [0.4, 0.3, 0.3], eta, [1], c.w_star)
    # from w*: E||w_1 - w*||^2 = eta^2 E||g - grad F(w*)||^2 = eta^2 V*
    assert ex.dist2[0] == pytest.approx(eta**2 * c.Vstar, rel=1e-9)
    assert 0 <= c.Ls <= c.Ls_pair
    assert c.mu_t <= c.L_t and c.Gamma >= 0 and c.zeta2 <= 2 * c.L * c.Gamma * (1 + 1e-12)
