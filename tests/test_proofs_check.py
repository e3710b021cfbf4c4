"""proofs_check: every check passes on fewer instances, and broken bounds are caught."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cistheory.bounds as bounds
from cistheory.bounds import theorem2_local as local_sgd
from cistheory.errors import CISInputError
from proofs_check import MODULES, run_all, run_module
from proofs_check.__main__ import main

N_TEST = 40


@pytest.mark.parametrize("module", MODULES)
def test_every_check_passes(module: str) -> None:
    checks, tight = run_module(module, np.random.default_rng(1), N_TEST)
    assert checks, module
    failed = [(c.name, c.worst_slack, c.detail) for c in checks if not c.passed]
    assert not failed
    assert {c.kind for c in checks} <= {"symbolic", "numeric"}
    for t in tight:  # an upper bound is never below the actual value
        assert t.instances == 0 or t.best_ratio >= 1.0 - 1e-9


def test_every_statement_has_symbolic_and_numeric_checks() -> None:
    report = run_all(instances=10, seed=3)
    by_module: dict[str, set[str]] = {}
    for c in report.checks:
        by_module.setdefault(c.name.split(".")[0], set()).add(c.kind)
    for mod in ("lemma1", "lemma2", "theorem1", "theorem2", "theorem2_local", "theorem3",
                "lemma_es", "theorem_a", "theorem_b", "theorem_e"):
        assert by_module[mod] == {"symbolic", "numeric"}, mod
    assert report.passed


def _failed_names(module: str) -> set[str]:
    checks, _ = run_module(module, np.random.default_rng(2), N_TEST)
    return {c.name for c in checks if not c.passed}


def test_halved_bias_bound_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = bounds.bias_bound
    monkeypatch.setattr(bounds, "bias_bound", lambda *a, **k: 0.5 * real(*a, **k))
    assert "theorem1.bias_shipped" in _failed_names("theorem1")


def test_training_error_bound_without_bias_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = bounds.training_error_bound

    def no_bias(lam, lt, L, mu, mu_t, Gamma, e, **kw):  # type: ignore[no-untyped-def]
        return real(lam, lt, L, mu, mu_t, 0.0, e, **kw)

    monkeypatch.setattr(bounds, "training_error_bound", no_bias)
    assert "theorem1.b_shipped" in _failed_names("theorem1")


def test_halved_variance_bound_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = bounds.variance_bound
    monkeypatch.setattr(bounds, "variance_bound", lambda *a, **k: 0.5 * real(*a, **k))
    assert "lemma2.variance_bound" in _failed_names("lemma2")


def test_wrong_variance_exact_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # forgetting the -||sum_k beta grad||^2 term
    def wrong(q, beta, grad, noise_var):  # type: ignore[no-untyped-def]
        q, beta, grad = np.asarray(q), np.asarray(beta), np.asarray(grad)
        pos = q > 0
        sq = (grad**2).sum(axis=2)
        return float(np.where(pos, beta**2 * (sq + noise_var) / np.where(pos, q, 1), 0).sum())

    monkeypatch.setattr(bounds, "variance_exact", wrong)
    assert "lemma2.shipped_variance_exact" in _failed_names("lemma2")


def test_off_by_one_fixed_step_bound_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = bounds.sgd_fixed_step_bound
    monkeypatch.setattr(
        bounds, "sgd_fixed_step_bound", lambda t, *a: real(np.asarray(t) + 1, *a)
    )
    assert "theorem2.fixed_shipped" in _failed_names("theorem2")


def test_diminishing_bound_without_gamma_gap_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_gap(t, b, gamma, L_t, mu_t, V, gap0):  # type: ignore[no-untyped-def]
        nu = b**2 * L_t * V / (2 * (b * mu_t - 1))
        return nu / (gamma + np.asarray(t, dtype=float))

    monkeypatch.setattr(bounds, "sgd_diminishing_bound", no_gap)
    assert "theorem2.diminishing_shipped" in _failed_names("theorem2")


def test_local_bound_with_tau1_contraction_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # claiming the tau = 1 constants (no drift term, full contraction) for tau > 1
    def optimistic(t, *, tau, L_t, mu_t, V, gap0, G, L, eta=None, b=None, gamma=None):  # type: ignore[no-untyped-def]
        if eta is None:
            return bounds.sgd_diminishing_bound(t, tau * b, gamma, L_t, mu_t, 0.0, gap0)
        return bounds.sgd_fixed_step_bound(t, tau * eta, L_t, mu_t, 0.0, gap0)

    monkeypatch.setattr(local_sgd, "local_sgd_bound", optimistic)
    failed = _failed_names("theorem2_local")
    assert failed & {"theorem2_local.final_fixed", "theorem2_local.final_diminishing"}


def test_shrunken_generalization_bound_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = bounds.generalization_bound
    monkeypatch.setattr(bounds, "generalization_bound", lambda *a: 0.2 * real(*a))
    assert "theorem3.violation_frequency" in _failed_names("theorem3")


def test_cli_json_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--instances", "5", "--seed", "4", "--json", "--only", "lemma1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] is True
    assert {"name", "statement", "step", "kind", "passed", "instances", "worst_slack"} <= set(
        out["checks"][0]
    )


def test_cli_fails_on_broken_bound(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = bounds.bias_bound
    monkeypatch.setattr(bounds, "bias_bound", lambda *a, **k: 0.5 * real(*a, **k))
    assert main(["--instances", "60", "--only", "theorem1"]) == 1
    assert "FAILED theorem1.bias_shipped" in capsys.readouterr().out


# ---- cistheory.local_sgd ----------------------------------------------------------------


def test_local_bound_at_zero_is_gap0_and_decreases_to_floor() -> None:
    ts = np.arange(0, 2000, 100)
    out = local_sgd.local_sgd_bound(ts, tau=3, L_t=2.0, mu_t=0.5, V=1.0, gap0=4.0, G=1.0,
                                    L=2.0, eta=0.04)
    assert isinstance(out, np.ndarray)
    assert out[0] == pytest.approx(4.0, rel=1e-15)  # t = 0: nothing done yet
    alpha = 0.12
    c = 2.0 * 1.0 / 2 + 3 * local_sgd.drift_factor(3) / (4 * 9) * 4.0 * 1.0 * alpha
    # far horizon: the fixed point 2 alpha C / mu_t (relative 1e-12: (1 - 0.03)^1900 ~ 1e-25)
    assert out[-1] == pytest.approx(2 * alpha * c / 0.5, rel=1e-12)
    assert np.all(np.diff(out) <= 0)


@given(
    tau=st.integers(1, 6),
    u=st.floats(0.05, 1.0),
    V=st.floats(0.0, 10.0),
    gap0=st.floats(0.0, 10.0),
    t=st.integers(0, 500),
)
def test_local_bound_matches_its_docstring_formula(
    tau: int, u: float, V: float, gap0: float, t: int
) -> None:
    """Property: the returned value is the formula of the docstring (fixed step)."""
    L_t, mu_t, G, L = 2.0, 0.3, 1.5, 3.0
    eta = u / (4 * tau * L_t)
    alpha = tau * eta
    S = (tau - 1) * (2 * tau - 1) / 6
    C = L_t * V / 2 + 3 * S / (4 * tau**2) * L**2 * G**2 * alpha
    dstar = 2 * alpha * C / mu_t
    want = dstar + (1 - alpha * mu_t / 2) ** t * (gap0 - dstar)
    got = local_sgd.local_sgd_bound(t, tau=tau, L_t=L_t, mu_t=mu_t, V=V, gap0=gap0, G=G, L=L,
                                    eta=eta)
    # two algebraically equal float64 forms of O(1e2) magnitude: 1e-12 relative + 1e-12 abs
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_local_variance_bound_reduces_to_lemma2_at_tau1() -> None:
    rng = np.random.default_rng(5)
    q = np.array([[0.0, 1.0], [0.3, 0.5], [1.0, 0.0]])
    beta = np.array([[0.0, 0.4], [0.3, 0.6], [0.7, 0.0]])
    s2, g2 = rng.uniform(0, 1, size=(3, 2)), rng.uniform(0, 1, size=(3, 2))
    got = local_sgd.local_variance_bound(q, beta, s2, g2, tau=1, eta=0.1, L=1.0)
    # same summation, different code path: a few ulps
    assert got == pytest.approx(bounds.variance_bound(q, beta, s2, g2), rel=1e-14)
    # local steps shrink a fixed node's noise term (sigma^2 / tau) when there is no drift
    no_drift = local_sgd.local_variance_bound(q, beta, s2, np.zeros((3, 2)), tau=4,
                                              eta=1e-300, L=1.0)
    assert no_drift < bounds.variance_bound(q, beta, s2, np.zeros((3, 2)))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"eta": 0.2}, "eta"),  # tau eta = 0.6 > 1/(4 L_t)
        ({"b": 0.01, "gamma": 1.0}, "b"),  # tau b mu_t <= 2
        ({"b": 10.0, "gamma": 1.0}, "b"),  # first round step too large
        ({}, "b"),
        ({"eta": 0.01, "b": 1.0, "gamma": 100.0}, "eta"),
    ],
)
def test_local_bound_rejects_bad_steps(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(CISInputError) as info:
        local_sgd.local_sgd_bound(3, tau=3, L_t=1.0, mu_t=0.5, V=1.0, gap0=1.0, G=1.0, L=1.0,
                                  **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tau": 0}, "tau"),
        ({"tau": 2.5}, "tau"),
        ({"mu_t": 2.0}, "mu_t"),
        ({"V": float("nan")}, "V"),
        ({"gap0": -1.0}, "gap0"),
        ({"t": -1}, "t"),
        ({"t": 1.5}, "t"),
    ],
)
def test_local_bound_validates(kwargs: dict[str, float], field: str) -> None:
    args: dict[str, float] = {"t": 2, "tau": 2, "L_t": 1.0, "mu_t": 0.5, "V": 1.0,
                              "gap0": 1.0, "G": 1.0, "L": 1.0, "eta": 0.05}
    args.update(kwargs)
    t = args.pop("t")
    with pytest.raises(CISInputError) as info:
        local_sgd.local_sgd_bound(t, **args)  # type: ignore[arg-type]
    assert info.value.field == field


def test_local_variance_bound_validates() -> None:
    with pytest.raises(CISInputError) as info:
        local_sgd.local_variance_bound([[0.0]], [[0.5]], [1.0], [1.0], tau=1, eta=0.1, L=1.0)
    assert info.value.field == "beta[0, 1]"  # node 0, exit 1
    with pytest.raises(CISInputError):
        local_sgd.local_variance_bound([[1.5]], [[0.5]], [1.0], [1.0], tau=1, eta=0.1, L=1.0)
    # a row of q above 1 (each entry a probability): refused by check_q, as everywhere
    with pytest.raises(CISInputError) as info:
        local_sgd.local_variance_bound(
            [[0.7, 0.7]], [[0.5, 0.5]], [1.0, 1.0], [0.0, 0.0], tau=1, eta=0.1, L=1.0
        )
    assert info.value.field == "q[0]"


def test_local_bound_accepts_its_step_limit_up_to_rounding() -> None:
    # issue 10: eta = 0.25 / L_t / tau gives tau * eta * L_t = 1/4 + 1 ulp
    L_t, tau = 0.5056378869683275, 3
    eta = 0.25 / L_t / tau
    assert tau * eta * L_t > 0.25
    args = dict(tau=tau, L_t=L_t, mu_t=0.1, V=1.0, gap0=1.0, G=1.0, L=1.0)
    at_limit = local_sgd.local_sgd_bound(5, eta=eta, **args)  # type: ignore[arg-type]
    below = local_sgd.local_sgd_bound(5, eta=eta * (1 - 1e-12), **args)  # type: ignore[arg-type]
    assert at_limit == pytest.approx(below, rel=1e-9)
    with pytest.raises(CISInputError):  # a real excess is still refused
        local_sgd.local_sgd_bound(5, eta=eta * (1 + 1e-9), **args)  # type: ignore[arg-type]


def test_local_bound_diminishing_matches_its_docstring_formula() -> None:
    tau, b, gamma, L_t, mu_t, V, gap0, G, L = 3, 2.0, 30.0, 1.0, 0.5, 0.7, 2.0, 1.2, 1.5
    alpha0 = tau * b / gamma
    C = L_t * V / 2 + 3 * local_sgd.drift_factor(tau) / (4 * tau**2) * L**2 * G**2 * alpha0
    nu = max((tau * b) ** 2 * C / (tau * b * mu_t / 2 - 1), gamma * gap0)
    ts = np.arange(50)
    got = local_sgd.local_sgd_bound(ts, tau=tau, L_t=L_t, mu_t=mu_t, V=V, gap0=gap0, G=G, L=L,
                                    b=b, gamma=gamma)
    # same float64 expression evaluated in the same order: a few ulps
    np.testing.assert_allclose(got, nu / (gamma + ts), rtol=1e-14)


def test_every_check_cited_in_the_theory_exists() -> None:
    """docs/theory.md cites checks as ``module.name``; each must be a check proofs_check runs."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "theory.md").read_text()
    cited = set()
    for block in re.findall(r"\[check:(.*?)\]", text, flags=re.S):
        cited |= set(re.findall(r"`([a-z0-9_]+\.[a-z0-9_]+)`", block)) - {"cistheory.beta"}
    names = {c.name for c in run_all(instances=2, seed=5).checks}
    assert cited and not cited - names, sorted(cited - names)


def test_pepit_check_says_it_skipped_without_pepit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PEPit the check is reported as skipped (not passed silently, not failed)."""
    import builtins

    from proofs_check._pepit import pepit_checks

    real_import = builtins.__import__

    def no_pepit(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "PEPit" or name.startswith("PEPit."):
            raise ImportError("no PEPit here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pepit)
    (check,) = pepit_checks()
    assert check.skipped and "skipped" in check.detail and check.instances == 0


def test_pepit_worst_case_against_theorem_a() -> None:
    """PEPit (extra 'verify', part of 'dev'): Theorem A over PEPit's exact worst case >= 1."""
    import PEPit  # noqa: F401  (the dev extra installs it)

    from proofs_check._pepit import pepit_checks

    (check,) = pepit_checks()
    assert check.passed and not check.skipped and check.instances == 8
    assert check.worst_slack >= -1e-6  # smallest bound/worst - 1 (1.037 measured)
