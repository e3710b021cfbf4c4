r"""Theorem C (function values without the condition number): C-avg, the last-iterate windows
and the combined sequences C', against exact moments of CIS training on quadratics.

Checked: the mean of the exact :math:`e_t` over :math:`t < T` (which C-avg's proof bounds, and
which bounds the averaged iterate by Jensen) under C-avg; the exact :math:`e_T` under Theorem C
and the exact :math:`e_t, r_t` under C' at every round; C' never certified on unstable
dynamics; Theorem C recomputed by plain loops (reference); and C-avg's sympy form.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from cistheory.bounds import theorem_c

from ._core import CheckResult, Tightness, numeric_identity, numeric_inequality, tightness
from ._second import exact_path, random_instance, reference, second_moment_radius

__all__ = ["run"]

STATEMENT = "Theorem C"
T_ROUNDS = 30


def _reference_last(T: int, eta: float, mu_t: float, L_t: float, Ls: float, Vs: float,
                    Vn: float, r0: float, c: float) -> float:
    """Theorem C by plain loops from the statement (Theorem A's R_t recomputed here)."""
    Lc, Vc = L_t + (1 + c) * Ls, (1 + 1 / c) * Vs + Vn
    D = eta * (2 - eta * Lc)
    if D <= 0:
        return math.inf
    rho = 1 - eta * mu_t * (2 - eta * Lc)
    R = [r0]
    for _ in range(T):
        R.append(rho * R[-1] + eta**2 * Vc)
    a = eta * (1 + eta * L_t) / 2
    kap = a * (1 + c) * Ls + eta / 2 * max(eta * L_t - 1, 0.0) * L_t
    best = math.inf
    for K in range(1, T + 1):
        val = (R[T - K + 1] + K * eta**2 * Vc) / (K * D)
        for k in range(1, K):
            X = kap * (R[T - k] + k * eta**2 * Vc) / D + k * a * Vc
            val += X / (k * (k + 1))
        best = min(best, val)
    return best


def _reference_candidates(eta: float, L_t: float, Ls: float, Vs: float, Vn: float
                          ) -> list[float]:
    """The c values of C' as documented: 6 log-spaced in (0, c_max) and the floor's
    minimiser; [inf] without L_s, [0] without V_s."""
    if Ls == 0:
        return [math.inf] if eta * L_t <= 2 else []
    if Vs == 0:
        return [0.0] if eta * (L_t + Ls) <= 2 else []
    cmax = (2 / eta - L_t) / Ls - 1
    if cmax <= 0:
        return []
    out = [float(x) for x in cmax * np.geomspace(1e-5, 1 - 1e-6, 6)]
    a, b, h = 2 - eta * (L_t + Ls), eta * Ls, Vs + Vn
    cstar = (-b * Vs + math.sqrt((b * Vs) ** 2 + a * b * h * Vs)) / (b * h)
    return out + ([cstar] if 0 < cstar < cmax else [])


# long: Theorem C' written out from its statement, one ingredient after another
def _reference_combined(T: int, eta: float, mu_t: float, L_t: float, Ls: float, Vs: float,
                        Vn: float, r0: float, e0: float) -> tuple[list[float], list[float]]:
    """C' (without Theorem Q) by plain loops, the windows of C at every round."""
    fam = []
    for c in _reference_candidates(eta, L_t, Ls, Vs, Vn):
        cc = 0.0 if math.isinf(c) else c
        Vc = Vn if c == 0 else (Vs + Vn if math.isinf(c) else (1 + 1 / c) * Vs + Vn)
        Lc = L_t if math.isinf(c) else L_t + (1 + c) * Ls
        if eta * Lc > 2:
            continue
        a = eta * (1 + eta * L_t) / 2
        fam.append(dict(Vc=Vc, D=eta * (2 - eta * Lc),
                        rho=min(max(1 - eta * mu_t * (2 - eta * Lc), 0.0), 1.0), a=a,
                        kap=2 * a * (1 + cc) * Ls + eta * max(eta * L_t - 1, 0.0) * L_t,
                        aB=(1 - 2 * mu_t * eta * (1 - L_t * eta / 2)
                            + 2 * L_t * eta**2 * (1 + cc) * Ls) if eta * L_t <= 2 else math.inf))
    r, e = [r0], [e0]
    for t in range(1, T + 1):
        rt = min((p["rho"] * r[t - 1] + eta**2 * p["Vc"] for p in fam), default=math.inf)
        et = L_t * rt / 2
        for p in fam:
            if math.isfinite(p["aB"]):
                et = min(et, p["aB"] * e[t - 1] + L_t * eta**2 * p["Vc"] / 2)
            harm = 0.0
            for K in range(1, t + 1):
                XK = p["kap"] * sum(e[t - K:t]) + K * p["a"] * p["Vc"]
                S1 = (([*r, rt][t - K + 1]) + K * eta**2 * p["Vc"]) / (K * p["D"])
                S2 = [*r, rt][t - K] / (2 * eta * K) + XK / K
                et = min(et, min(S1, S2) + harm)
                harm += XK / (K * (K + 1))
        r.append(rt)
        e.append(et)
    return e, r


@functools.cache
def _avg_expr() -> Callable[..., float]:
    from cistheory.symbolic.theorem_c import gap_bound_averaged_expr

    return gap_bound_averaged_expr().lambdify()


# long: one loop over instances filling five checks, then the checks
def run(rng: np.random.Generator, instances: int) -> tuple[list[CheckResult], list[Tightness]]:
    """Theorem C, C-avg and C' on random instances, steps up to twice the limit."""
    rows: dict[str, tuple[list[float], list[float]]] = {}

    def add(key: str, lo: np.ndarray | float, hi: np.ndarray | float) -> None:
        lo_a, hi_a = np.atleast_1d(lo), np.atleast_1d(hi)
        fin = np.isfinite(hi_a)
        r = rows.setdefault(key, ([], []))
        r[0].extend(lo_a[fin].tolist())
        r[1].extend(hi_a[fin].tolist())

    cert_unstable = 0
    ref_got, ref_want, sym_got, sym_want = [], [], [], []
    final: tuple[list[float], list[float]] = ([], [])
    for j in range(max(6, instances // 6)):
        pq = random_instance(rng, small_q=j % 2 == 0)
        ref = reference(pq)
        w0 = ref.w_star + rng.normal(size=pq.d) * rng.uniform(0.2, 2.0)
        u0 = w0 - ref.w_star
        r0, e0 = float(u0 @ u0), 0.5 * float(u0 @ pq.H @ u0)
        limit = 2.0 / (ref.L_t + ref.Ls)
        for f in (0.5, 0.95, 1.5):
            eta = f * limit
            ex = exact_path(pq, w0, np.full(T_ROUNDS, eta))
            kw = dict(eta=eta, mu_t=ref.mu_t, L_t=ref.L_t, Ls=ref.Ls, Vs=ref.Vs, Vn=ref.Vn)
            for quad in (False, True):
                seq = theorem_c.combined_sequences(T_ROUNDS, r0=r0, e0=e0, quadratic=quad, **kw)
                add("combined_e", ex["gap"], seq.e)
                add("combined_r", ex["dist2"], seq.r)
                if seq.certified and second_moment_radius(pq, eta) > 1 + 1e-9:
                    cert_unstable += 1
                if quad and f < 1:
                    final[0].append(float(ex["gap"][-1]))
                    final[1].append(float(seq.e[-1]))
            c = 1.0 if ref.Vs > 0 else 0.0
            if ref.Ls == 0:
                c = math.inf
            Ts = np.arange(1, T_ROUNDS + 1)
            means = np.cumsum(ex["gap"][:-1]) / Ts
            add("averaged", means, np.asarray(
                theorem_c.gap_bound_averaged(Ts, r0=r0, c=c, **kw)))
            for T in (5, 15, T_ROUNDS):
                add("last", ex["gap"][T], theorem_c.gap_bound_last(T, r0=r0, c=c, **kw))
            if f < 1 and math.isfinite(c) and c > 0 and ref.Ls > 0:
                c = float(rng.uniform(0.05, 0.95) * ((2 / eta - ref.L_t) / ref.Ls - 1))
                T = int(rng.integers(1, 25))
                ref_got.append(theorem_c.gap_bound_last(T, r0=r0, c=c, **kw))
                ref_want.append(_reference_last(T, r0=r0, c=c, **kw))
                sym_got.append(float(theorem_c.gap_bound_averaged(T, r0=r0, c=c, **kw)))
                sym_want.append(_avg_expr()(T=T, r0=r0, c=c, **kw))
    comb_got: list[float] = []
    comb_want: list[float] = []
    for _ in range(max(3, instances // 15)):
        mu, L_t = rng.uniform(0.05, 0.5), rng.uniform(0.6, 2.0)
        Ls, Vs, Vn, r0, e0 = (float(x) for x in rng.uniform(0.01, 1.0, size=5))
        eta = rng.uniform(0.2, 0.95) * 2 / (L_t + Ls)
        seq = theorem_c.combined_sequences(10, eta=eta, mu_t=mu, L_t=L_t, Ls=Ls, Vs=Vs, Vn=Vn,
                                           r0=r0, e0=e0, harmonic_at=np.arange(1, 11))
        e_ref, r_ref = _reference_combined(10, eta, mu, L_t, Ls, Vs, Vn, r0, e0)
        comb_got += [*seq.e.tolist(), *seq.r.tolist()]
        comb_want += [*e_ref, *r_ref]
    spec = {
        "averaged": "(1/T) sum_{t<T} exact e_t <= C-avg (which bounds E F(averaged iterate))",
        "last": "exact E F_lt(w_T) - F* <= Theorem C (last iterate, harmonic windows)",
        "combined_e": "exact e_t <= C' (A, descent, C windows; with Q when quadratic)",
        "combined_r": "exact E||w_t - w*||^2 <= C' distance sequence",
    }
    checks = [numeric_inequality(f"theorem_c.{k}", STATEMENT, v, *rows.get(k, ([], [])))
              for k, v in spec.items()]
    checks += [
        CheckResult("theorem_c.never_certified_unstable", STATEMENT,
                    "C' is certified only on mean-square stable dynamics", "numeric",
                    cert_unstable == 0, max(6, instances // 6),
                    0.0 if cert_unstable == 0 else -1.0),
        numeric_identity("theorem_c.last_reference", STATEMENT,
                         "Theorem C shipped = plain-loop recomputation from the statement",
                         ref_got, ref_want),
        numeric_identity("theorem_c.combined_reference", STATEMENT,
                         "C' shipped (windows at every round) = plain-loop recomputation",
                         comb_got, comb_want),
        numeric_identity("theorem_c.symbolic_vs_shipped", STATEMENT,
                         "C-avg's sympy form (lambdified) = the shipped function",
                         sym_got, sym_want),
    ]
    return checks, [tightness(STATEMENT, f"combined_sequences e (t={T_ROUNDS}, quadratic)",
                              final[1], final[0])]
