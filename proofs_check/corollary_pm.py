r"""Corollary P (projection) and Corollary M (probability term): the laws of the projected and
of the plain iteration enumerated exactly (no additive noise, two nodes, three rounds: every
selection path with its probability).

Checked: Theorem A for the projected iteration; Corollary P's optimisation part (its
:math:`\varepsilon` terms are Theorem 3's, checked there) against the exact
:math:`\mathbb EF_\lambda(w_T) - F_\lambda^*` of the projected iterate; Corollary M's tail
probability against the exact probability of :math:`\{w_T \notin B(w^*, \varrho)\} \cup
\{F_\lambda(w_T) - F_\lambda^* > x\}`; the sympy forms against the shipped functions.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import numpy as np

from cistheory.bounds import corollary_pm, theorem_a, theorem_d

from ._core import CheckResult, Tightness, numeric_identity, numeric_inequality
from ._instances import outcomes, random_simplex
from ._second import random_instance, reference
from ._sgd_exact import PairQuadratics

__all__ = ["run"]

STATEMENT = "Corollary P/M"
T_ROUNDS = 3


def _law(pq: PairQuadratics, w0: np.ndarray, eta: float, radius: float | None
         ) -> list[tuple[float, np.ndarray]]:
    """Every path of T_ROUNDS rounds: (probability, w_T); projected onto the ball of
    ``radius`` around 0 when given (noise-free pairs)."""
    q, b = pq.inst.q, pq.inst.beta
    rounds = list(outcomes(q))
    law = [(1.0, w0)]
    for _ in range(T_ROUNDS):
        nxt = []
        for (p, w), (po, choice) in itertools.product(law, rounds):
            step = np.zeros(pq.d)
            for i, k in enumerate(choice):
                if k >= 0:
                    step += b[i, k] / q[i, k] * (pq.A[i, k] @ (w - pq.c[i, k]))
            y = w - eta * step
            if radius is not None:
                nrm = float(np.linalg.norm(y))
                y = y * min(1.0, radius / nrm) if nrm > 0 else y
            nxt.append((p * po, y))
        law = nxt
    return law


@functools.cache
def _exprs() -> tuple[Callable[..., float], ...]:
    from cistheory.symbolic import corollary_pm as sym

    return sym.projected_risk_bound_expr(2).lambdify(), sym.risk_tail_probability_expr().lambdify()


# long: one loop that enumerates two laws per instance and fills four checks
def run(rng: np.random.Generator, instances: int) -> tuple[list[CheckResult], list[Tightness]]:
    """Both corollaries on random noise-free instances with two nodes."""
    rows: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in
                                                        ("proj_dist", "proj_risk", "tail")}
    for _ in range(max(4, instances // 8)):
        pq = random_instance(rng, n_range=(2, 2), d_max=2)
        pq = PairQuadratics(inst=pq.inst, A=pq.A, c=pq.c, Sigma=np.zeros_like(pq.Sigma))
        ref = reference(pq)
        K = pq.inst.q.shape[1]
        lam = np.where(pq.inst.lt > 0, random_simplex(rng, K), 0.0)
        lam /= lam.sum()
        frac = np.where(pq.inst.lt[None] > 0,
                        pq.inst.beta / np.where(pq.inst.lt > 0, pq.inst.lt, 1.0)[None], 0.0)
        H_lam = np.einsum("k,ik,ikde->de", lam, frac, pq.A)
        h_lam = np.einsum("k,ik,ikde,ike->d", lam, frac, pq.A, pq.c)
        w_l = np.linalg.lstsq(H_lam, h_lam, rcond=None)[0]

        def f_gap(w: np.ndarray, w_l: np.ndarray = w_l, H_lam: np.ndarray = H_lam) -> float:
            dv = w - w_l
            return 0.5 * float(dv @ H_lam @ dv)

        g = H_lam @ ref.w_star - h_lam
        bias = f_gap(ref.w_star)
        L_lam = float(np.linalg.eigvalsh(H_lam)[-1])
        radius = float(np.linalg.norm(ref.w_star)) * rng.uniform(1.0, 1.5) + 0.1
        w0 = rng.normal(size=pq.d)
        w0 *= min(1.0, radius / float(np.linalg.norm(w0)))
        eta = rng.uniform(0.3, 0.95) * 2.0 / (ref.L_t + ref.Ls)
        r0 = float((w0 - ref.w_star) @ (w0 - ref.w_star))
        R = float(theorem_a.distance_bound(T_ROUNDS, eta=eta, mu_t=ref.mu_t, L_t=ref.L_t,
                                           Ls=ref.Ls, Vs=ref.Vs, Vn=0.0, r0=r0))
        proj = _law(pq, w0, eta, radius)
        rows["proj_dist"][0].append(sum(p * float((w - ref.w_star) @ (w - ref.w_star))
                                        for p, w in proj))
        rows["proj_dist"][1].append(R)
        rows["proj_risk"][0].append(sum(p * f_gap(w) for p, w in proj))
        rows["proj_risk"][1].append(corollary_pm.projected_risk_bound(
            lam=lam, eps=np.zeros(K), bias=bias, g_lam_norm=float(np.linalg.norm(g)), R_T=R,
            L_lam=L_lam))
        plain = _law(pq, w0, eta, None)
        U = theorem_d.target_error_bound(bias=bias, g_lam_norm=float(np.linalg.norm(g)), r=R,
                                         e=np.inf, rho_lam=1.0, L_lam=L_lam)
        rho_ball = float(rng.uniform(0.2, 2.0)) * np.sqrt(max(R, 1e-12))
        x = float(rng.uniform(0.5, 3.0)) * max(U, 1e-12)
        exact_p = sum(p for p, w in plain if float(np.linalg.norm(w - ref.w_star)) > rho_ball
                      or f_gap(w) > x)
        rows["tail"][0].append(exact_p)
        rows["tail"][1].append(corollary_pm.risk_tail_probability(x=x, R_T=R, radius=rho_ball,
                                                                 U_T=U))
    checks = [
        numeric_inequality("corollary_pm.projected_distance", STATEMENT,
                           "projected iteration: exact E||w_T - w*||^2 <= Theorem A",
                           *rows["proj_dist"]),
        numeric_inequality("corollary_pm.projected_risk", STATEMENT,
                           "projected: exact E F_lam(w_T) - F* <= bias + ||g|| sqrt(R_T) + "
                           "L_lam R_T/2 (Corollary P without Theorem 3's terms)",
                           *rows["proj_risk"]),
        numeric_inequality("corollary_pm.tail", STATEMENT,
                           "exact P(||w_T - w*|| > varrho or F_lam gap > x) <= R_T/varrho^2 "
                           "+ U_T/x (Corollary M's Markov steps)", *rows["tail"]),
    ]
    f_p, f_t = _exprs()
    got, want = [], []
    for _ in range(10):
        lam = random_simplex(rng, 2)
        eps, (b, gn, R, Ll, x, rad, U) = rng.uniform(0, 1, 2), rng.uniform(0.01, 2.0, size=7)
        got += [corollary_pm.projected_risk_bound(lam=lam, eps=eps, bias=b, g_lam_norm=gn,
                                                  R_T=R, L_lam=Ll),
                corollary_pm.risk_tail_probability(x=x, R_T=R, radius=rad, U_T=U)]
        want += [f_p(lam, eps, b, gn, R, Ll), f_t(x, R, rad, U)]
    checks.append(numeric_identity("corollary_pm.symbolic_vs_shipped", STATEMENT,
                                   "sympy forms (lambdified) = the shipped functions", got, want))
    return checks, []
