r"""Theorem D (Theorem 1(b) without PL at :math:`w`) and its expectation forms, on quadratic
exits with exact values.

Checked at random points: the distance form with the exact bias and with Theorem E's PL
bias; the general :math:`e`-form (only :math:`L`-smooth :math:`F_k`) also on exits with an
indefinite Hessian (non-convex :math:`F_k`, bounded below on a one-dimensional cosine
perturbation); the convex :math:`e`-form; the equality :math:`F_\lambda(w) - F_\lambda^* = e`
at :math:`\tilde\lambda = \lambda`. In expectation: the exact :math:`\mathbb EF_\lambda(w_t) -
F_\lambda^*` of CIS training under the distance form with exact :math:`\mathbb Er, \mathbb Ee`,
and under Theorem M's quadratic identity form. Sympy forms against the shipped functions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from cistheory.bounds import theorem_d, theorem_m

from ._core import CheckResult, Tightness, numeric_identity, numeric_inequality
from ._instances import random_simplex
from ._second import exact_path, random_instance, reference
from .theorem1 import random_quadratic_exits

__all__ = ["run"]

STATEMENT = "Theorem D"


def _pointwise(rng: np.random.Generator, n: int) -> dict[str, tuple[list[float], list[float]]]:
    rows: dict[str, tuple[list[float], list[float]]] = {}

    def add(key: str, lo: float, hi: float) -> None:
        r = rows.setdefault(key, ([], []))
        r[0].append(lo)
        r[1].append(hi)

    for _ in range(n):
        K, d = int(rng.integers(2, 4)), int(rng.integers(1, 4))
        ex = random_quadratic_exits(rng, K, d)
        lam = random_simplex(rng, K)
        lt = random_simplex(rng, K, min_weight=0.02)
        H_lt, H_lam = ex.hessian(lt), ex.hessian(lam)
        w_t, w_l = ex.minimiser(lt), ex.minimiser(lam)
        ev_t, ev_l = np.linalg.eigvalsh(H_lt), np.linalg.eigvalsh(H_lam)
        mu_t, mu, L_lam, L = float(ev_t[0]), float(ev_l[0]), float(ev_l[-1]), ex.L
        F_lam_star = float(lam @ ex.values(w_l))
        g = np.einsum("k,kd->d", lam, ex.grads(w_t))
        bias = float(lam @ ex.values(w_t)) - F_lam_star
        gamma = float(lt @ ex.values(w_t))  # inf F_k = 0 for these exits
        zeta2 = float(lt @ (ex.grads(w_t) ** 2).sum(axis=1))
        rho = theorem_d.relative_smoothness(lam, lt, L=L, mu_t=mu_t)
        for _ in range(5):
            w = w_t + rng.normal(size=d) * rng.uniform(0.05, 3.0)
            u = w - w_t
            r, e = float(u @ u), 0.5 * float(u @ H_lt @ u)
            target = float(lam @ ex.values(w)) - F_lam_star
            add("distance_exact_bias", target, theorem_d.target_error_bound(
                bias=bias, g_lam_norm=float(np.linalg.norm(g)), r=r, e=e, rho_lam=rho,
                L_lam=L_lam))
            add("distance_pl_bias", target, theorem_d.target_error_bound(
                bias=float(g @ g) / (2 * mu), g_lam_norm=float(np.linalg.norm(g)), r=r, e=e,
                rho_lam=rho, L_lam=L_lam))
            add("e_form", target, theorem_d.target_error_bound_e(
                e, lam=lam, lt=lt, L=L, mu=mu, mu_t=mu_t, Gamma=gamma))
            add("convex_e_form", target, theorem_d.target_error_bound_convex(
                e, lam=lam, lt=lt, zeta2=zeta2, mu=mu, mu_t=mu_t, L=L))
            add("equality", e, theorem_d.target_error_bound_e(
                e, lam=lt, lt=lt, L=L, mu=mu_t, mu_t=mu_t, Gamma=gamma))
    return rows


class _CosExits:
    """One-dimensional exits F_k(w) = a_k (w - c_k)^2 / 2 + s_k cos(w)."""

    def __init__(self, a: np.ndarray, s: np.ndarray, c: np.ndarray) -> None:
        self.a, self.s, self.c = a, s, c

    def value(self, w: np.ndarray | float, wts: np.ndarray) -> np.ndarray:
        w_a = np.asarray(w, dtype=float)
        return np.asarray(sum(wts[k] * (self.a[k] / 2 * (w_a - self.c[k]) ** 2
                                        + self.s[k] * np.cos(w_a)) for k in range(len(wts))))

    def minimum(self, wts: np.ndarray, grid: np.ndarray) -> tuple[float, float]:
        """Minimiser and minimum: the best grid point, polished by Newton steps."""
        x = float(grid[int(np.argmin(self.value(grid, wts)))])
        a, s, c = self.a, self.s, self.c
        for _ in range(50):
            g = sum(wts[k] * (a[k] * (x - c[k]) - s[k] * math.sin(x)) for k in range(len(wts)))
            h = sum(wts[k] * (a[k] - s[k] * math.cos(x)) for k in range(len(wts)))
            if h <= 0:
                break
            x -= g / h
        return x, float(self.value(x, wts))


def _nonconvex_e_form(rng: np.random.Generator, n: int) -> tuple[list[float], list[float]]:
    r"""One-dimensional exits :math:`F_k(w) = \frac{a_k}2(w - c_k)^2 + s_k\cos(w)` with
    :math:`s_k > a_k > 0`: bounded below, :math:`(a_k + s_k)`-smooth and not convex; the
    instances where :math:`F_\lambda` and :math:`F_{\tilde\lambda}` are strongly convex (their
    curvature on a fine grid stays above 0.05) are kept. Minima on a dense grid polished by
    Newton steps (reference side)."""
    lo, hi = [], []
    grid = np.linspace(-30, 30, 120_001)
    for _ in range(n):
        K = 2  # exit 1 non-convex (s > a), exit 2 strongly convex
        a = np.array([rng.uniform(0.2, 1.0), rng.uniform(2.0, 4.0)])
        s = np.array([a[0] * rng.uniform(1.2, 3.0), rng.uniform(0.0, 0.5)])
        c = rng.normal(size=K) * 2

        ex = _CosExits(a, s, c)
        lam = np.array([1.0, 1.0]) - random_simplex(rng, K) * 0.5
        lt = np.array([1.0, 1.0]) - random_simplex(rng, K) * 0.5
        lam, lt = lam / lam.sum(), lt / lt.sum()
        lam, lt = lam[::-1] if lam[0] > lam[1] else lam, lt[::-1] if lt[0] > lt[1] else lt
        w_t, f_t = ex.minimum(lt, grid)
        _, f_l = ex.minimum(lam, grid)
        inf_k = [ex.minimum(np.eye(K)[k], grid)[1] for k in range(K)]
        L = float(max(a + s))
        ws = np.linspace(-30, 30, 6001)
        curv_t = sum(lt[k] * (a[k] - s[k] * np.cos(ws)) for k in range(K))
        curv_l = sum(lam[k] * (a[k] - s[k] * np.cos(ws)) for k in range(K))
        if curv_t.min() <= 0.05 or curv_l.min() <= 0.05:
            continue
        mu_t, mu = float(curv_t.min()), float(curv_l.min())
        gamma = f_t - float(lt @ inf_k)
        for w in w_t + rng.normal(size=5) * 2:
            e = float(ex.value(w, lt)) - f_t
            lo.append(float(ex.value(w, lam)) - f_l)
            hi.append(theorem_d.target_error_bound_e(e, lam=lam, lt=lt, L=L, mu=mu, mu_t=mu_t,
                                                     Gamma=gamma))
    return lo, hi


def _expectation(rng: np.random.Generator, n: int) -> dict[str, tuple[list[float], list[float]]]:
    """E F_lam(w_t) - F_lam* of CIS training (exact) under the expectation forms."""
    rows: dict[str, tuple[list[float], list[float]]] = {"expect": ([], []), "modal": ([], [])}
    for _ in range(n):
        pq = random_instance(rng)
        ref = reference(pq)
        K = pq.inst.q.shape[1]
        lam = random_simplex(rng, K)
        lam = np.where(pq.inst.lt > 0, lam, 0.0)
        lam = lam / lam.sum()
        frac = np.where(pq.inst.lt[None] > 0, pq.inst.beta / np.where(pq.inst.lt > 0, pq.inst.lt,
                                                                     1.0)[None], 0.0)
        H_lam = np.einsum("k,ik,ikde->de", lam, frac, pq.A)
        h_lam = np.einsum("k,ik,ikde,ike->d", lam, frac, pq.A, pq.c)
        w_l = np.linalg.lstsq(H_lam, h_lam, rcond=None)[0]
        g = H_lam @ ref.w_star - h_lam
        dev = ref.w_star - w_l
        bias = 0.5 * float(dev @ H_lam @ dev)
        ev = np.linalg.eigvalsh(H_lam)
        w0 = ref.w_star + rng.normal(size=pq.d)
        eta = rng.uniform(0.2, 0.9) * 2 / (ref.L_t + ref.Ls)
        ex = exact_path(pq, w0, np.full(15, eta))
        mb = theorem_m.modal_bound(15, eta=eta, q=pq.inst.q, beta=pq.inst.beta, H_pair=pq.A,
                                   grad_opt=ref.grad_pair, noise_cov=pq.Sigma,
                                   u0=w0 - ref.w_star)
        for t in (1, 5, 15):
            S, m = ex["second"][t], ex["mean"][t]
            target = bias + float(g @ m) + 0.5 * float(np.trace(H_lam @ S))
            rows["expect"][0].append(target)
            rows["expect"][1].append(theorem_d.target_error_bound(
                bias=bias, g_lam_norm=float(np.linalg.norm(g)), r=float(ex["dist2"][t]),
                e=float(ex["gap"][t]), rho_lam=theorem_d.relative_smoothness(lam, pq.inst.lt),
                L_lam=float(ev[-1])))
            mean = theorem_m.mean_deviation(pq.H, w0 - ref.w_star, eta, t)
            rows["modal"][0].append(target)
            rows["modal"][1].append(bias + float(g @ mean) + 0.5 * mb.trace(H_lam, t))
    return rows


@functools.cache
def _exprs() -> tuple[Callable[..., float], ...]:
    from cistheory.symbolic import theorem_d as sym

    return (sym.target_error_bound_expr().lambdify(), sym.target_error_bound_e_expr(3).lambdify(),
            sym.target_error_bound_convex_expr(3).lambdify())


def _lambdified(rng: np.random.Generator, n: int) -> CheckResult:
    f0, f1, f2 = _exprs()
    got, want = [], []
    for _ in range(n):
        lam, lt = random_simplex(rng, 3), random_simplex(rng, 3, min_weight=0.02)
        b, g, r, e, rho, Ll = (float(x) for x in rng.uniform(0.01, 3.0, size=6))
        got.append(theorem_d.target_error_bound(bias=b, g_lam_norm=g, r=r, e=e, rho_lam=rho,
                                                L_lam=Ll))
        want.append(f0(b, g, r, e, rho, Ll))
        L, mu_t, gam = (float(x) for x in rng.uniform(0.5, 3.0, size=3))
        mu = float(rng.uniform(0.05, 0.5))
        got.append(theorem_d.target_error_bound_e(e, lam=lam, lt=lt, L=L, mu=mu, mu_t=mu_t,
                                                  Gamma=gam))
        want.append(f1(e, lam, lt, L, mu, mu_t, gam))
        got.append(theorem_d.target_error_bound_convex(e, lam=lam, lt=lt, zeta2=gam, mu=mu,
                                                       mu_t=mu_t, L=L))
        want.append(f2(e, lam, lt, gam, mu, mu_t, L))
    return numeric_identity("theorem_d.symbolic_vs_shipped", STATEMENT,
                            "sympy forms (distance, issue's e-form, convex e-form), lambdified "
                            "= the shipped functions", got, want)


def run(rng: np.random.Generator, instances: int) -> tuple[list[CheckResult], list[Tightness]]:
    """Theorem D pointwise, in expectation, on non-convex exits; sympy forms."""
    rows = _pointwise(rng, max(10, instances // 4))
    spec = {
        "distance_exact_bias": "F_lam(w) - F* <= bias + ||g|| sqrt(r) + min(L_lam r/2, rho e)",
        "distance_pl_bias": "the same with Theorem E's PL bias ||g||^2/(2 mu)",
        "e_form": "F_lam(w) - F* <= (L/mu) chi2 Gamma + e + 2 sqrt(L chi2 Gamma e/mu_t) "
                  "+ L ||lam - lt||_1 e/mu_t",
        "convex_e_form": "F_lam(w) - F* <= chi2 zeta2/(2 mu) + sqrt(2 chi2 zeta2 e/mu_t) + rho e",
    }
    checks = [numeric_inequality(f"theorem_d.{k}", STATEMENT, v, *rows[k])
              for k, v in spec.items()]
    checks.append(numeric_identity("theorem_d.equality", STATEMENT,
                                   "lt = lam: the e-form equals e (F_lam = F_lt)",
                                   *rows["equality"]))
    checks.append(numeric_inequality("theorem_d.e_form_nonconvex", STATEMENT,
                                     "the e-form on non-convex L-smooth F_k (1-D, cosine "
                                     "perturbation; reference minima by grid + Newton)",
                                     *_nonconvex_e_form(rng, max(6, instances // 8))))
    exp_rows = _expectation(rng, max(5, instances // 8))
    checks.append(numeric_inequality("theorem_d.expectation", STATEMENT,
                                     "exact E F_lam(w_t) - F* <= bias + ||g|| sqrt(E r) + "
                                     "L_lam E r/2 (CIS training)", *exp_rows["expect"]))
    checks.append(numeric_inequality("theorem_d.modal_identity", STATEMENT,
                                     "exact E F_lam(w_t) - F* <= bias + <g, E w_t - w*> + "
                                     "tr bound of H_lam (Theorem M)", *exp_rows["modal"]))
    checks.append(_lambdified(rng, max(10, instances // 10)))
    return checks, []
