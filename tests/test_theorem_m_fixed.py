"""Theorem M under a fixed-count draw (``per_round`` of ``cistheory.bounds.modal_bound``;
docs/theory.md, Section 4.16): above the exact moments of the draw
(``cistheory.experiments.second_moments``, which shares no code with the bound) on the
validate-rates problem, identical to independent picks at ``per_round = N``, and the input
checks."""

from __future__ import annotations

import numpy as np
import pytest

from cistheory.bounds import theorem_m
from cistheory.errors import CISInputError
from cistheory.experiments.design_constants import exact_constants
from cistheory.experiments.second_moments import exact_errors, round_operator
from cistheory.experiments.validate_rates import ValidationConfig, build_problem
from cistheory.rules.registry import rule_inputs, rule_weights
from cistheory.system.participation import fixed_count, named_policy

T = 100


def _exact_modes(op: np.ndarray, z0: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, float]:
    """v_j^T E[u_t u_t^T] v_j for t = 0..T from the exact map, and max |S| over the path."""
    dd = V.shape[0]
    Z = np.outer(z0, z0).reshape(-1)
    out, top = [], 0.0
    for _ in range(T + 1):
        S = Z.reshape(dd + 1, dd + 1)[:dd, :dd]
        out.append(np.einsum("dj,de,ej->j", V, S, V))
        top = max(top, float(np.abs(S).max()))
        Z = op @ Z
    return np.array(out), top


# long: one loop over the 24 runs, each compared three ways
def _runs() -> list[dict[str, float]]:
    """Theorem M with and without ``per_round`` against the exact moments of the draw: two
    rate splits x deepest, p40 x n = 2, 4, 7 x steps 0.3 and 0.9 of 2/(L_t + L_s^(c)),
    w_0 = 0, every 1 <= t <= 100."""
    rows = []
    ts = list(range(T + 1))
    for split in ("80-15-5", "5-15-80"):
        base = build_problem(ValidationConfig(tree=(2, 2, split), data=(60, 30, 15), n_seeds=2))
        w0 = np.zeros(base.mask.shape[1])
        for pol in ("deepest", "p40"):
            part0 = named_policy(base.cis, pol)
            lt = rule_weights("serving-rate", rule_inputs(base.cis, part0, sigma=base.noise))
            for n in (2, 4, 7):
                prob = base.with_participation(fixed_count(part0, n))
                c = exact_constants(prob, lt)
                u0 = w0 - c.w_star
                for frac in (0.3, 0.9):
                    eta = frac * 2.0 / (c.L_t + c.Ls)
                    ex = exact_errors(prob, lt, eta, ts, w0, per_round=n)
                    kw = dict(eta=eta, q=c.q, beta=c.beta, H_pair=prob.H, grad_opt=c.grad_pair,
                              noise_cov=prob.noise_cov(), u0=u0)
                    mf = theorem_m.modal_bound(T, per_round=n, **kw)
                    mi = theorem_m.modal_bound(T, **kw)
                    op = round_operator(prob, lt, eta, per_round=n)
                    modes, top = _exact_modes(op, np.append(u0, 1.0), mf.basis)
                    # rounding of the exact side: v^T S v from a float64 S is off by up to
                    # D^2 * 4 eps max|S| (equality holds on deepest at n = N: every node fixed)
                    slack = modes.shape[1] ** 2 * 4 * np.finfo(float).eps * top
                    eye = np.eye(u0.size)
                    dist_f = np.array([mf.trace(eye, t) for t in ts[1:]])
                    dist_i = np.array([mi.trace(eye, t) for t in ts[1:]])
                    gap_f = np.array([0.5 * mf.trace(c.H_lt, t) for t in ts[1:]])
                    rows.append({
                        "n": n, "certified": mf.certified,
                        "mode_margin": float((mf.d + slack - modes).min()),
                        "dist_margin": float((dist_f + slack - ex.dist2[1:]).min()),
                        "gap_margin": float((gap_f + slack - ex.gap_lt[1:]).min()),
                        "ratio": float((dist_f / ex.dist2[1:]).min()),
                        "ind_ratio": float((dist_i / ex.dist2[1:]).min()),
                        "same": bool(np.array_equal(mf.d, mi.d) and mf.radius == mi.radius),
                    })
    return rows


def test_theorem_m_with_the_draw_bounds_the_exact_moments() -> None:
    """Every mode, E||w_t - w*||^2 and E F_lt(w_t) - F* of the draw under Theorem M with
    ``per_round`` at every 1 <= t <= 100 on 24 runs (all certified); at n = 7 = N (c = 0) the
    bound is that of independent picks bit for bit."""
    rows = _runs()
    assert len(rows) == 24
    assert all(r["certified"] for r in rows)
    for key in ("mode_margin", "dist_margin", "gap_margin"):
        assert min(r[key] for r in rows) >= 0.0, key
    assert all(r["same"] for r in rows if r["n"] == 7)
    assert not any(r["same"] for r in rows if r["n"] < 7)  # the draw's terms do act


def test_single_node_and_input_checks() -> None:
    """N = 1 has c = 0 (identical to None); per_round is checked as the other bounds do."""
    kw = dict(eta=0.3, q=[[0.5]], beta=[[1.0]], H_pair=[[[[1.0]]]], grad_opt=[[[0.0]]],
              noise_cov=[[[[1.0]]]], u0=[1.0])
    assert np.array_equal(theorem_m.modal_bound(5, per_round=1, **kw).d,
                          theorem_m.modal_bound(5, **kw).d)
    two = dict(kw, q=[[0.5], [0.5]], beta=[[0.5], [0.5]], H_pair=[[[[1.0]]], [[[2.0]]]],
               grad_opt=[[[1.0]], [[-0.5]]], noise_cov=[[[[1.0]]], [[[1.0]]]])
    for bad in (0, 3, 1.0, True, "1"):
        with pytest.raises(CISInputError, match="per_round"):
            theorem_m.modal_bound(2, per_round=bad, **two)  # type: ignore[arg-type]
    with pytest.raises(CISInputError, match=r"q\[0\].*per_round/N"):  # rows must sum <= n/N
        theorem_m.modal_bound(2, per_round=1, **dict(two, q=[[0.9], [0.5]]))
