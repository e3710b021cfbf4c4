"""Mutation tests: every shipped formula, broken one factor or term at a time, must make
``proofs_check`` fail.

Each mutant rewrites one snippet of a bound module's source (the snippet must occur exactly
once), executes the rewritten module and puts its functions in place of the originals
everywhere they are referenced (the package namespace, other bound modules, the checks), then
runs the ``proofs_check`` module of that statement on a few instances. The mutant counts as
killed when some check fails. Both generations are covered: the first-generation statements
are kept for comparison and must stay checked.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import types
from typing import Any

import numpy as np
import pytest

from proofs_check import run_module

N_MUTANT = 16  # instances per module run: enough for every mutant below to be caught

_YOUNG = "return lt + (1.0 + cf) * ls, (1.0 + 1.0 / cf) * vs + vn"  # L_c and V_c of Theorem A

# (id, bound module, snippet, replacement, proofs_check module)
MUTANTS: list[tuple[str, str, str, str, str]] = [
    # Lemma 2 (V_s, V_n without cancellation)
    ("V1 noise without 1/q", "lemma2", "vn = float(np.where(pos, ba**2 * s2 / safe_q, 0.0)",
     "vn = float(np.where(pos, ba**2 * s2, 0.0)", "lemma_es"),
    ("V2 idle term dropped", "lemma2", "+ (idle * (xbar**2).sum(axis=1)).sum()", "", "lemma_es"),
    ("V3 pick without 1/q", "lemma2", "ba[:, :, None] * ga / safe_q[:, :, None]",
     "ba[:, :, None] * ga", "lemma_es"),
    ("V4 variance bound: sampled term dropped", "lemma2",
     "num = ba**2 * (s2 + sampled[:, None] * g2)", "num = ba**2 * s2", "lemma2"),
    ("V5 variance bound without 1/q", "lemma2",
     "np.where(pos, num / np.where(pos, qa, 1.0), 0.0)", "np.where(pos, num, 0.0)", "lemma2"),
    # Lemma ES
    ("E1 -vv^T dropped", "lemma_es", "np.diag(a) - keep * np.outer(v, v)", "np.diag(a)",
     "lemma_es"),
    ("E2 a without 1/q", "lemma_es", "a = ba[i, ks] * la[i, ks] / qa[i, ks]",
     "a = ba[i, ks] * la[i, ks]", "lemma_es"),
    ("E3 single pair without -1", "lemma_es", "(1.0 / qa[i, k] - keep)", "(1.0 / qa[i, k])",
     "lemma_es"),
    ("E4 pairwise without -[single]", "lemma_es",
     "vals = np.where(pos, ba * la * (1.0 / safe - single)",
     "vals = np.where(pos, ba * la * (1.0 / safe - 1.0)", "lemma_es"),
    ("E5 Lambda beta not squared", "lemma_es", "ba**2 * la**2 * (1.0 / safe - single)",
     "ba * la**2 * (1.0 / safe - single)", "lemma_es"),
    ("E6 Lambda max instead of sum", "lemma_es",
     "ba**2 * la**2 * (1.0 / safe - single), 0.0).sum())",
     "ba**2 * la**2 * (1.0 / safe - single), 0.0).max())", "lemma_es"),
    # Lemma ES-f (a fixed-count draw)
    ("F1 L_s ignores the draw", "lemma_es",
     "keep = 1.0 - draw_coupling(qa, per_round)  # the share",
     "keep = 1.0  # the share", "lemma_es"),
    ("F2 L_s^pair ignores the draw", "lemma_es",
     "single = keep * (pos.sum(axis=1) == 1)[:, None]\n    safe = np.where(pos, qa, 1.0)\n    vals",
     "single = (pos.sum(axis=1) == 1)[:, None]\n    safe = np.where(pos, qa, 1.0)\n    vals",
     "lemma_es"),
    ("F3 Lambda ignores the draw", "lemma_es",
     "single = keep * (pos.sum(axis=1) == 1)[:, None]\n    safe = np.where(pos, qa, 1.0)\n"
     "    return",
     "single = (pos.sum(axis=1) == 1)[:, None]\n    safe = np.where(pos, qa, 1.0)\n    return",
     "lemma_es"),
    ("F4 V_s of the draw without the spread of the drawn set", "lemma2",
     "return float(within + c * n_nodes * spread)", "return float(within)", "lemma_es"),
    ("F5 coupling (N - n)/(N(N - 1))", "_checks",
     "else (n_nodes - n) / (n * (n_nodes - 1))", "else (n_nodes - n) / (n_nodes * (n_nodes - 1))",
     "lemma_es"),
    ("F6 V_s of the draw: idle share from 1", "lemma2",
     "idle = np.maximum(pi - qa.sum(axis=1), 0.0)", "idle = np.maximum(1.0 - qa.sum(axis=1), 0.0)",
     "lemma_es"),
    # Theorem A
    ("A1 descent factor 2 -> 1", "theorem_a", "max(2.0 - eta * lc, 0.0)",
     "max(1.0 - eta * lc, 0.0)", "theorem_a"),
    ("A2 descent factor 2 -> 3", "theorem_a", "max(2.0 - eta * lc, 0.0)",
     "max(3.0 - eta * lc, 0.0)", "theorem_a"),
    ("A3 L_c without (1 + c)", "theorem_a", _YOUNG,
     "return lt + cf * ls, (1.0 + 1.0 / cf) * vs + vn", "theorem_a"),
    ("A4 V_c without (1 + 1/c)", "theorem_a", _YOUNG,
     "return lt + (1.0 + cf) * ls, vs + vn", "theorem_a"),
    ("A5 V_c without V_n", "theorem_a", _YOUNG,
     "return lt + (1.0 + cf) * ls, (1.0 + 1.0 / cf) * vs", "theorem_a"),
    ("A6 step condition 2/L_c -> 4/L_c", "theorem_a", "if eta * lc > 2.0 * (1.0 + STEP_ULPS):",
     "if eta * lc > 4.0 * (1.0 + STEP_ULPS):", "theorem_a"),
    ("A7 exponent t + 1", "theorem_a", "return np.exp(ta * log_rho), -np.expm1",
     "return np.exp((ta + 1) * log_rho), -np.expm1", "theorem_a"),
    ("A8 floor x1.5", "theorem_a", "powt * r0 + eta**2 * vc * geo, dtype",
     "powt * r0 + 1.5 * eta**2 * vc * geo, dtype", "theorem_a"),
    ("A9 c = 0 branch without L_s", "theorem_a", "return lt + ls, vn", "return lt, vn",
     "theorem_a"),
    ("A10 Corollary A1 without (1 + 1/c)", "theorem_a", "(1.0 + 1.0 / c_f) * eta_f * v / mu",
     "eta_f * v / mu", "theorem_a"),
    ("A11 Corollary A1 step 2/L_c", "theorem_a", "(1.0 + c_f) * ls) > 1.0 + STEP_ULPS",
     "(1.0 + c_f) * ls) > 2.0 + STEP_ULPS", "theorem_a"),
    ("A12 diminishing b^2 -> b", "theorem_a", "nu = max(b_f**2 * vc", "nu = max(b_f * vc",
     "theorem_a"),
    ("A13 non-convex without (1 + c)", "theorem_a", "+ (1.0 + c_f) * eta_f**2 * lam_f",
     "+ eta_f**2 * lam_f", "theorem_a"),
    ("A14 non-convex (1 - 2 eta mu)^2", "theorem_a", "rho = (1.0 - eta_f * mu) ** 2",
     "rho = (1.0 - 2.0 * eta_f * mu) ** 2", "theorem_a"),
    ("A15 non-convex square dropped", "theorem_a", "rho = (1.0 - eta_f * mu) ** 2",
     "rho = (1.0 - eta_f * mu)", "theorem_a"),
    # Theorem B
    ("B1 drift term dropped", "theorem_b", "drift = 4.0 * s_tau", "drift = 0.0 * s_tau",
     "theorem_b"),
    ("B2 drift factor halved", "theorem_b", "return (n - 1) * (2 * n - 1) / 6.0",
     "return (n - 1) * (2 * n - 1) / 12.0", "theorem_b"),
    ("B3 noise drift dropped", "theorem_b", "+ (n_tau - 1) * float(", "+ 0 * float(",
     "theorem_b"),
    ("B4 kappa -> L", "theorem_b", "lp + alpha * (1.0 + 1.0 / th) * omega * lp**2", "lp",
     "theorem_b"),
    ("B5 B's 4 -> 2", "theorem_b", "4.0 * eta_f**2 * s_tau * kl_max",
     "2.0 * eta_f**2 * s_tau * kl_max", "theorem_b"),
    ("B6 V_n/tau -> V_n/tau^2", "theorem_b", "0.0).sum()) / n_tau", "0.0).sum()) / n_tau**2",
     "theorem_b"),
    ("B7 B without (1 + theta)", "theorem_b", "1.0 - alpha * (1.0 + th) * lc",
     "1.0 - alpha * lc", "theorem_b"),
    # Theorem C
    ("C1 a = eta/2", "theorem_c", "a = 0.5 * eta_f * (1.0 + eta_f * lt)", "a = 0.5 * eta_f",
     "theorem_c"),
    ("C2 weights 1/(k(k+2))", "theorem_c", "w = X / (k * (k + 1))\n    harm",
     "w = X / (k * (k + 2))\n    harm", "theorem_c"),
    ("C3 C' a halved", "theorem_c", "a = 0.5 * eta * (1.0 + eta * lt)",
     "a = 0.25 * eta * (1.0 + eta * lt)", "theorem_c"),
    ("C4 descent without L_t eta/2", "theorem_c", "(1.0 - lt * eta / 2.0)", "1.0", "theorem_c"),
    ("C5 C-avg floor halved", "theorem_c", "+ eta_f * vc / den)", "+ 0.5 * eta_f * vc / den)",
     "theorem_c"),
    # Theorem Q
    ("Q1 floor 1/(2 - eta L) -> 1/2", "theorem_q", "** (2 * t)) / (2.0 - eta * L_t)",
     "** (2 * t)) / 2.0", "theorem_q"),
    ("Q2 gain without (1 + c)", "theorem_q", "gain = eta**2 * (1.0 + cc) * Ls",
     "gain = eta**2 * Ls", "theorem_q"),
    ("Q3 transient /4", "theorem_q", "np.minimum(rr * e0_f, 0.5 * phi * r0_f)",
     "np.minimum(rr * e0_f, 0.25 * phi * r0_f)", "theorem_q"),
    ("Q4 kernel exponent 2j + 2", "theorem_q", "lam * np.abs(1.0 - eta_f * lam) ** (2 * j)",
     "lam * np.abs(1.0 - eta_f * lam) ** (2 * j + 2)", "theorem_q"),
    ("Q5 floor x1.5", "theorem_q", "0.5 * eta * vc * (1.0", "0.75 * eta * vc * (1.0",
     "theorem_q"),
    # Theorem M
    ("M1 mode factor cubed", "theorem_m", "p2 = (1.0 - eta_f * lam) ** 2",
     "p2 = (1.0 - eta_f * lam) ** 2 * 0.9", "theorem_m"),
    ("M2 injection without (1 + c)", "theorem_m", "((1.0 + c) * inj + sc)", "(inj + sc)",
     "theorem_m"),
    ("M3 sampling without (1 + 1/c)", "theorem_m", "(1.0 + 1.0 / c) * s_s + s_n",
     "s_s + s_n", "theorem_m"),
    ("M4 noise dropped", "theorem_m", "eta_f**2 * (s_s + s_n)", "eta_f**2 * s_s", "theorem_m"),
    ("M5 idle outcomes dropped", "theorem_m", "return np.asarray(out + idle * np.outer",
     "return np.asarray(out + 0.0 * np.outer", "theorem_m"),
    ("M6 trace bound without abs", "theorem_m", "root @ np.abs(Va.T @ Aa @ Va) @ root",
     "root @ (Va.T @ Aa @ Va) @ root", "theorem_m"),
    ("M7 draw: M_j without the node's mean", "theorem_m",
     "cov = cov + coupling * np.outer(h_bar, h_bar)", "cov = cov", "theorem_m"),
    ("M8 draw: Sigma_s without the node's mean", "theorem_m",
     "sig_s += coupling * np.outer(g_bar, g_bar)", "sig_s += 0.0 * np.outer(g_bar, g_bar)",
     "theorem_m"),
    ("M9 draw: mode factor loses 2c eta^2 lambda^2", "theorem_m",
     "p2 - coupling * (eta_f * lam) ** 2", "p2 - 2.0 * coupling * (eta_f * lam) ** 2",
     "theorem_m"),
    # Theorem D
    ("D1 cross term dropped", "theorem_d", "return b + cross + min(", "return b + min(",
     "theorem_d"),
    ("D2 L_lam r/4", "theorem_d", "min(0.5 * L_lam_f * r_f, rho * e_f)",
     "min(0.25 * L_lam_f * r_f, rho * e_f)", "theorem_d"),
    ("D3 e-form without the 2", "theorem_d", "+ 2.0 * math.sqrt(L * chi2 * gam * e_f / m_t)",
     "+ math.sqrt(L * chi2 * gam * e_f / m_t)", "theorem_d"),
    ("D4 e-form l1 term halved", "theorem_d", "+ L * l1 * e_f / m_t",
     "+ 0.5 * L * l1 * e_f / m_t", "theorem_d"),
    ("D5 rho e dropped", "theorem_d", "min(0.5 * L_lam_f * r_f, rho * e_f)",
     "0.5 * L_lam_f * r_f", "theorem_d"),
    ("D6 convex form without the 2", "theorem_d", "math.sqrt(2.0 * chi2 * z * e_f / m_t)",
     "math.sqrt(chi2 * z * e_f / m_t)", "theorem_d"),
    ("D7 relative smoothness /4 mu_t", "theorem_d", "/ (2.0 * m))", "/ (4.0 * m))",
     "theorem_d"),
    # Theorem E
    ("E7 zeta halved", "theorem_e", "return float(lt_a @ (g**2).sum(axis=1))",
     "return float(lt_a @ (g**2).sum(axis=1)) / 2", "theorem_e"),
    ("E8 PL bias /(4 mu)", "theorem_e", "return g2 / (2.0 * check_scalar",
     "return g2 / (4.0 * check_scalar", "theorem_e"),
    ("E9 zeta bias chi2 not squared", "theorem_e", "(lam_a - lt_a) ** 2 / np.where",
     "np.abs(lam_a - lt_a) / np.where", "theorem_e"),
    # Corollary P/M
    ("P1 generalisation without the 2", "corollary_pm", "return float(2.0 * np.dot(lam_a, eps_a))",
     "return float(np.dot(lam_a, eps_a))", "corollary_pm"),
    ("P2 cross term dropped", "corollary_pm", "+ g * math.sqrt(r) +", "+", "corollary_pm"),
    ("P3 Markov R/rho", "corollary_pm", "r / rad**2 + u / x_f", "r / rad**3 + u / x_f",
     "corollary_pm"),
    # first generation (kept, marked as such)
    ("F1 chi2 not squared", "theorem1", "terms = np.where(pos, (lam_a - lt_a) ** 2",
     "terms = np.where(pos, np.abs(lam_a - lt_a)", "theorem1"),
    ("F2 Theorem 1(a) L/mu -> 1/mu", "theorem1", "L_ / mu_ * chi2", "1.0 / mu_ * chi2",
     "theorem1"),
    ("F3 Theorem 2 floor /(4 mu_t)", "theorem2", "floor = eta_a * lt_ * va / (2.0 * mt)",
     "floor = eta_a * lt_ * va / (4.0 * mt)", "theorem2"),
    ("F4 Theorem 2 exponent t + 1", "theorem2", "return as_result(base**ta * g0 + (1.0 - base**ta)",
     "return as_result(base**(ta + 1) * g0 + (1.0 - base**(ta + 1))", "theorem2"),
    ("F5 Theorem 2 diminishing b mu - 1 -> b mu", "theorem2",
     "nu = np.maximum(ba**2 * lt_ * va / (2.0 * (bm - 1.0))",
     "nu = np.maximum(ba**2 * lt_ * va / (2.0 * bm)", "theorem2"),
    ("F6 drift factor halved", "theorem2_local", "return (tau_i - 1) * (2 * tau_i - 1) / 6.0",
     "return (tau_i - 1) * (2 * tau_i - 1) / 12.0", "theorem2_local"),
    ("F7 drift term dropped", "theorem2_local", "c3 = 3.0 * drift_factor(tau_i)",
     "c3 = 0.0 * drift_factor(tau_i)", "theorem2_local"),
    ("F8 Theorem 2' D* halved", "theorem2_local", "d_star = 2.0 * alpha * C / mu",
     "d_star = alpha * C / mu", "theorem2_local"),
    ("F9 Lemma 2' fixed noise sigma/tau", "theorem2_local", "np.sqrt(s2 / tau_i)",
     "np.sqrt(s2) / tau_i", "theorem2_local"),
]


def _apply(monkeypatch: pytest.MonkeyPatch, module_name: str, old: str, new: str) -> None:
    """Replace the functions of ``module_name`` by those of its source with ``old`` -> ``new``
    in every loaded module of the project that refers to them."""
    module = importlib.import_module(module_name)
    src = inspect.getsource(module)
    assert src.count(old) == 1, f"snippet must occur once in {module_name}: {old!r}"
    ns: dict[str, Any] = {"__name__": module_name, "__file__": module.__file__,
                          "__package__": module.__package__}
    exec(compile(src.replace(old, new), str(module.__file__), "exec"), ns)
    originals = {name: getattr(module, name) for name, obj in ns.items()
                 if isinstance(obj, types.FunctionType | type) and hasattr(module, name)
                 and getattr(obj, "__module__", None) == module_name}
    for mod in list(sys.modules.values()):
        if not isinstance(mod, types.ModuleType) or not mod.__name__.startswith(
            ("cistheory", "proofs_check", "convex")
        ):
            continue
        for attr, val in list(vars(mod).items()):
            for name, orig in originals.items():
                if val is orig:
                    monkeypatch.setattr(mod, attr, ns[name])


@pytest.mark.parametrize(("mid", "module", "old", "new", "check"), MUTANTS,
                         ids=[m[0] for m in MUTANTS])
def test_mutant_is_killed(monkeypatch: pytest.MonkeyPatch, mid: str, module: str, old: str,
                          new: str, check: str) -> None:
    """proofs_check fails on every mutant of every shipped formula."""
    _apply(monkeypatch, f"cistheory.bounds.{module}", old, new)
    checks, _ = run_module(check, np.random.default_rng(11), N_MUTANT)
    failed = [c.name for c in checks if not c.passed]
    assert failed, f"mutant {mid} survived proofs_check.{check}"


def test_unmutated_modules_pass() -> None:
    """The same runs without a mutant pass (so a kill is the mutant's doing)."""
    for check in sorted({m[4] for m in MUTANTS}):
        checks, _ = run_module(check, np.random.default_rng(11), N_MUTANT)
        assert all(c.passed for c in checks), check
