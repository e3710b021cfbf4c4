"""validate-rates: honest checks, exact first-step moments, a tight case catching wrong bounds."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from cistheory import CISInputError
from cistheory import bounds as bd
from cistheory.cli.validate import format_table, register
from cistheory.experiments.validate_rates import (
    SLOPE_TOL,
    RunResult,
    ValidationConfig,
    ValidationResult,
    build_problem,
    student_t_halfwidth,
    validate_rates,
    with_bound_scale,
    with_lt_bound_scale,
)

# A small setting (about 5 s). The fitted slope of a mean over S seeds carries Monte-Carlo
# noise of order 1/sqrt(S) (about +-0.15 at 200 seeds and 1500 rounds on this problem);
# 400 seeds and 2000 rounds keep it inside SLOPE_TOL.
SMALL = ValidationConfig(n_seeds=400, rounds=2000, n_records=24)

# The tight setting: equal widths and orthonormal features make every Hessian (1 + rho) I,
# every node fixed at its exit (no sampling), lt = lambda: Theorem 1(b) is an equality at
# t = 0 and Theorem 2's variance bound is exact.
TIGHT = ValidationConfig(
    n_seeds=400, rounds=200, n_records=16, dims=(3, 3, 3), whiten=True, shallow=(0.0, 0.0),
    rules=("serving-rate",),
)


@pytest.fixture(scope="module")
def small() -> ValidationResult:
    return validate_rates(SMALL)


@pytest.fixture(scope="module")
def tight() -> ValidationResult:
    return validate_rates(TIGHT)


def _recompute_checks(res: ValidationResult) -> dict[str, bool]:
    """The three checks and ``under_bound_lt``, recomputed from the reported numbers alone."""
    under = True
    under_lt = True
    for r in res.runs:
        m, c, b = (np.asarray(x) for x in (r.measured, r.ci, r.bound))
        under &= bool(np.all(m + c <= b * (1 + 1e-12)))  # rounding only, see validate.py
        m, c, b = (np.asarray(x) for x in (r.measured_lt, r.ci_lt, r.bound_lt))
        under_lt &= bool(np.all(m + c <= b * (1 + 1e-12)))  # rounding only, see validate.py
    dim = [r for r in res.runs if r.schedule == "diminishing"]
    slope_ok = True
    for r in dim:
        t = np.asarray(r.t, dtype=float)
        tail = (t >= SMALL.tail * t.max()) & (t > 0)
        x = r.constants["gamma"] + t[tail]
        slope = np.polyfit(np.log(x), np.log(np.asarray(r.measured)[tail]), 1)[0]
        assert slope == pytest.approx(r.slope, rel=1e-9)  # the reported slope is that fit
        slope_lt = np.polyfit(np.log(x), np.log(np.asarray(r.measured_lt)[tail]), 1)[0]
        assert slope_lt == pytest.approx(r.slope_lt, rel=1e-9)
        if r.chi2 == 0:
            slope_ok &= abs(slope + 1) <= SLOPE_TOL
    chi = np.array([r.chi2 for r in dim])
    floor = np.array([r.floor for r in dim])
    order = np.argsort(chi, kind="stable")
    steps = np.diff(chi[order]) > 0
    order_ok = bool(np.all(np.diff(floor[order])[steps] > 0))
    return {
        "under_bound": under,
        "under_bound_lt": under_lt,
        "slope_ok": slope_ok,
        "floor_order_matches_chi2": order_ok,
    }


def test_checks_recomputed_from_numbers(small: ValidationResult) -> None:
    mine = _recompute_checks(small)
    for key, val in mine.items():
        assert small.checks[key] == val, key


def test_small_setting_shows_the_claims(small: ValidationResult) -> None:
    # The statements the command exists to show, on a small setting.
    assert small.checks == {
        "floor_order_matches_chi2": True,
        "gradient_bound_holds": True,
        "slope_ok": True,
        "under_bound": True,
        "under_bound_lt": True,
    }
    rules = {r.lt_rule for r in small.runs}
    assert rules == {"serving-rate", "balanced-adj", "equal"}
    chis = sorted({r.chi2 for r in small.runs})
    assert chis[0] == 0.0 and len(chis) == 3
    # the measured floor estimates the exact bias F_lambda(w_t*) - F_lambda*: the gap is
    # the O(1/t) remainder and Monte-Carlo noise; the largest bias is resolved within 20%
    big = max((r for r in small.runs if r.schedule == "diminishing"), key=lambda r: r.chi2)
    assert big.floor == pytest.approx(big.bias_exact, rel=0.2)
    # Theorem 1(a): the exact bias lies under its bound
    for r in small.runs:
        assert r.bias_exact <= r.bias_bound


def test_halved_bound_is_caught(tight: ValidationResult) -> None:
    assert tight.checks["under_bound"]
    for r in tight.runs:
        # t = 0: no randomness, Theorem 1(b) with e = gap0 is an equality here
        assert r.ci[0] <= 1e-12 * r.measured[0]  # identical samples: rounding in the std only
        assert r.measured[0] == pytest.approx(r.bound[0], rel=1e-12)  # rounding only
    wrong = with_bound_scale(tight, 0.5)
    assert not wrong.checks["under_bound"]
    assert with_bound_scale(tight, 1.0).checks == tight.checks


def _theorem2(r: RunResult) -> np.ndarray:
    c = r.constants
    t = np.asarray(r.t)
    if r.schedule == "fixed":
        return np.asarray(
            bd.sgd_fixed_step_bound(t, c["eta"], c["L_t"], c["mu_t"], c["V"], c["gap0"])
        )
    return np.asarray(
        bd.sgd_diminishing_bound(t, c["b"], c["gamma"], c["L_t"], c["mu_t"], c["V"], c["gap0"])
    )


def test_training_objective_error(small: ValidationResult) -> None:
    lam = np.asarray(small.config["lambda"])
    for r in small.runs:
        c = r.constants
        # t = 0: w_0 for every seed, so e_0 is F_lt(w_0) - F_lt* = gap0, computed there from
        # (H, b, c) and here as (w_0 - w*)^T H (w_0 - w*)/2: equal up to rounding
        assert r.measured_lt[0] == pytest.approx(c["gap0"], rel=1e-12)
        assert r.ci_lt[0] <= 1e-12 * r.measured_lt[0]  # identical samples: rounding only
        # bound_lt is Theorem 2 with the run's constants, and it is the e-bar inside bound
        np.testing.assert_allclose(r.bound_lt, _theorem2(r), rtol=1e-12)
        full = [
            bd.training_error_bound(lam, np.asarray(r.lt), c["L"], c["mu"], c["mu_t"],
                                    c["Gamma"], e)
            for e in r.bound_lt
        ]
        np.testing.assert_allclose(r.bound, full, rtol=1e-12)
        if r.chi2 == 0.0:  # lt = lambda: the training objective is F_lambda itself
            np.testing.assert_allclose(r.measured_lt, r.measured, rtol=1e-9)
    # every lt trains its own objective without bias: e_t decays as 1/t under the
    # diminishing step for every rule, chi2 > 0 included (SLOPE_TOL as for slope_ok)
    for r in small.runs:
        if r.schedule == "diminishing":
            assert r.slope_lt is not None and abs(r.slope_lt + 1) <= SLOPE_TOL, r.lt_rule
        else:
            assert r.slope_lt is None


def test_halved_theorem2_bound_is_caught(tight: ValidationResult) -> None:
    assert tight.checks["under_bound_lt"]
    wrong = with_lt_bound_scale(tight, 0.5)
    assert not wrong.checks["under_bound_lt"]
    assert wrong.checks["under_bound"] == tight.checks["under_bound"]  # only bound_lt moved
    assert with_lt_bound_scale(tight, 1.0).checks == tight.checks
    # not only at t = 0 (where the fixed-step bound equals gap0): on this isotropic problem
    # the exact stationary fixed-step error is eta V / (2 (2 - eta L)) = 2/3 of Theorem 2's
    # floor eta V / 2 at eta L = 1/2, so half the bound lies under the whole interval
    fixed = next(r for r in tight.runs if r.schedule == "fixed")
    t = np.asarray(fixed.t)
    low = np.asarray(fixed.measured_lt) - np.asarray(fixed.ci_lt)
    assert (low[t >= 1] > 0.5 * np.asarray(fixed.bound_lt)[t >= 1]).any()


def test_bound_without_variance_term_is_caught(tight: ValidationResult) -> None:
    # Theorem 2 with V = 0 (forgetting the gradient noise) is wrong: the measured error
    # stays at the noise floor. Caught with the whole confidence interval above it.
    fixed = next(r for r in tight.runs if r.schedule == "fixed")
    c = fixed.constants
    lam = np.asarray(tight.config["lambda"])
    e0 = np.atleast_1d(
        bd.sgd_fixed_step_bound(np.asarray(fixed.t), c["eta"], c["L_t"], c["mu_t"], 0.0, c["gap0"])
    )
    wrong = np.array(
        [bd.training_error_bound(lam, lam, c["L"], c["mu"], c["mu_t"], 0.0, float(e)) for e in e0]
    )
    low = np.asarray(fixed.measured) - np.asarray(fixed.ci)
    assert (low > wrong).any()


def _exact_first_step(
    cfg: ValidationConfig,
    schedule: str,
    lt: np.ndarray | None = None,
    target: np.ndarray | None = None,
) -> float:
    """E[F_target(w_1)] - F_target* after one step on F_lt, from exact moments of g.

    ``lt`` (the training weights) and ``target`` (the objective measured) default to lambda.
    """
    prob = build_problem(cfg)
    lam = prob.cis.lam
    lt = lam if lt is None else lt
    target = lam if target is None else target
    q = prob.part.q
    frac = prob.part.data_fraction()
    beta = frac * lt[None, :]
    h_tr, _, _ = prob.weighted(lt)
    h_lam, b_lam, _ = prob.weighted(target)
    w_star = np.linalg.solve(h_lam, b_lam)
    eig = np.linalg.eigvalsh(h_tr)
    eta = cfg.fixed_step / eig.max()  # the first step of both schedules
    assert schedule in {"fixed", "diminishing"}
    w0 = np.zeros(w_star.size)
    grads = np.einsum("ikde,e->ikd", prob.H, w0) - prob.b  # (N, K, D)
    mean_g = np.einsum("ik,ikd->d", beta, grads)
    second = 0.0  # E[(g - Eg)^T H (g - Eg)], a sum over independent nodes
    dims = prob.mask.sum(axis=1)
    for i in range(q.shape[0]):
        mi = np.einsum("k,kd->d", beta[i], grads[i])
        e_quad = 0.0
        for k in range(q.shape[1]):
            if q[i, k] > 0:
                a = beta[i, k] / q[i, k]
                gk = grads[i, k]
                on_pk = h_lam[np.ix_(prob.mask[k], prob.mask[k])]
                # xi uniform on the sphere of radius s in P_k: E xi xi^T = s^2 / d_k I
                noise = prob.noise[i, k] ** 2 / dims[k] * np.trace(on_pk)
                e_quad += q[i, k] * a**2 * (gk @ h_lam @ gk + noise)
        second += e_quad - mi @ h_lam @ mi
    d = w0 - w_star
    d1 = d - eta * mean_g
    return float(0.5 * (d1 @ h_lam @ d1) + 0.5 * eta**2 * second)


def test_first_step_matches_exact_moments() -> None:
    cfg = dataclasses.replace(
        SMALL, n_seeds=4000, rounds=10, n_records=4, rules=("serving-rate", "equal")
    )
    res = validate_rates(cfg)
    lam = res.config["lambda"]
    for r in res.runs:
        j = r.t.index(1)
        lt = np.asarray(r.lt)
        # 2 x the 95% half-width is about 4 standard errors of the mean over 4000 seeds
        exact = _exact_first_step(cfg, r.schedule, lt, np.asarray(lam))
        assert abs(r.measured[j] - exact) <= 2 * r.ci[j], (r.lt_rule, r.schedule, exact)
        exact_lt = _exact_first_step(cfg, r.schedule, lt, lt)  # e_1 of the training objective
        assert abs(r.measured_lt[j] - exact_lt) <= 2 * r.ci_lt[j], (r.lt_rule, r.schedule)
        if r.lt_rule == "equal":  # F_lt and F_lambda differ: the two checks are distinct
            assert abs(exact_lt - exact) > 4 * max(r.ci[j], r.ci_lt[j])


def test_results_do_not_depend_on_chunking() -> None:
    cfg = ValidationConfig(n_seeds=4, rounds=50, n_records=6, chunk=500)
    a = validate_rates(cfg)
    b = validate_rates(dataclasses.replace(cfg, chunk=7))
    for ra, rb in zip(a.runs, b.runs, strict=True):
        assert ra.measured == rb.measured


def test_student_t_halfwidth_known_value() -> None:
    # t_{0.975, 9} = 2.2621571628 (standard tables); sample sd of 0..9 is sqrt(55/6)
    hw = float(student_t_halfwidth(np.arange(10.0)))
    assert hw == pytest.approx(2.2621571628 * np.sqrt(55 / 6) / np.sqrt(10), rel=1e-9)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"n_seeds": 1}, "n_seeds"),
        ({"dims": (3, 2, 4)}, "dims"),
        ({"fixed_step": 1.5}, "fixed_step"),
        ({"b_factor": 0.9}, "b_factor"),
        ({"rules": ("nope",)}, "rules"),
        ({"rules": ("mix:2",)}, "rules"),
        ({"shallow": (1.0, 0.0)}, "shallow[0]"),
    ],
)
def test_bad_config(change: dict[str, object], field: str) -> None:
    with pytest.raises(CISInputError) as exc:
        validate_rates(dataclasses.replace(ValidationConfig(), **change))  # type: ignore[arg-type]
    assert exc.value.field == field


def test_cli_json_and_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="cistheory")
    sub = parser.add_subparsers(dest="cmd")
    register(sub)
    out = tmp_path / "v.json"
    args = parser.parse_args(
        ["validate-rates", "--quick", "--json", "--seeds", "20", "--out", str(out)]
    )
    rc = args.func(args)
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == printed
    assert set(printed) >= {"config", "runs", "checks"}
    assert printed["config"]["n_seeds"] == 20
    run = printed["runs"][0]
    assert set(run) >= {
        "lt_rule", "lt", "chi2", "schedule", "t", "measured", "ci", "bound", "slope", "floor",
        "measured_lt", "ci_lt", "bound_lt", "slope_lt",
    }
    assert rc == (0 if all(printed["checks"].values()) else 1)
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed


def test_table_output(small: ValidationResult) -> None:
    text = format_table(small)
    assert "under_bound" in text and "serving-rate" in text


def test_validate_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, cistheory.experiments, cistheory.cli.validate; "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
