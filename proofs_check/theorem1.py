r"""Theorem 1 (training error = bias + optimisation): every step on random quadratics.

Instances: :math:`F_k(w) = \tfrac12 (w - c_k)^\top A_k (w - c_k)` with random positive
definite :math:`A_k` (so :math:`\inf F_k = 0` and every minimiser is in closed form),
:math:`L = \max_k \lambda_{\max}(A_k)`, :math:`\mu = \lambda_{\min}(\sum_k \lambda_k A_k)`,
:math:`\mu_t = \lambda_{\min}(\sum_k \tilde\lambda_k A_k)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cistheory import bounds

from ._core import (
    CheckResult,
    Tightness,
    numeric_identity,
    numeric_inequality,
    symbolic_zero,
    tightness,
)
from ._instances import random_simplex

__all__ = ["QuadraticExits", "random_quadratic_exits", "run"]


@dataclass(frozen=True)
class QuadraticExits:
    """Per-exit quadratics ``F_k(w) = 0.5 (w - c_k)^T A_k (w - c_k)``."""

    A: np.ndarray  # (K, d, d)
    c: np.ndarray  # (K, d)

    @property
    def L(self) -> float:
        """Common smoothness constant: the largest eigenvalue over exits."""
        return float(max(np.linalg.eigvalsh(a)[-1] for a in self.A))

    def values(self, w: np.ndarray) -> np.ndarray:
        """``F_k(w)`` for all k, shape (K,)."""
        r = w[None, :] - self.c
        return 0.5 * np.einsum("kd,kde,ke->k", r, self.A, r)

    def grads(self, w: np.ndarray) -> np.ndarray:
        """``grad F_k(w)``, shape (K, d)."""
        return np.einsum("kde,ke->kd", self.A, w[None, :] - self.c)

    def hessian(self, weights: np.ndarray) -> np.ndarray:
        """Hessian of ``sum_k weights_k F_k``."""
        return np.einsum("k,kde->de", weights, self.A)

    def minimiser(self, weights: np.ndarray) -> np.ndarray:
        """``argmin sum_k weights_k F_k`` (closed form)."""
        H = self.hessian(weights)
        h = np.einsum("k,kde,ke->d", weights, self.A, self.c)
        # h lies in range(H) (each A_k c_k is in range(A_k)); lstsq gives the minimiser of
        # least norm when H is singular (F_lambda ignoring the head of an unserved exit)
        return np.asarray(np.linalg.lstsq(H, h, rcond=None)[0], dtype=np.float64)

    def pl_constant(self, weights: np.ndarray) -> float:
        """PL constant of the quadratic: its smallest positive Hessian eigenvalue."""
        ev = np.linalg.eigvalsh(self.hessian(weights))
        return float(ev[ev > 1e-9 * ev[-1]][0])

    def gap(self, weights: np.ndarray, w: np.ndarray) -> float:
        """``sum_k weights_k F_k(w) - min``, as ``0.5 r^T H r`` (no cancellation)."""
        r = w - self.minimiser(weights)
        return float(0.5 * r @ self.hessian(weights) @ r)

    def mixed(self, weights: np.ndarray, w: np.ndarray) -> float:
        """``sum_k weights_k F_k(w)``."""
        return float(weights @ self.values(w))


def random_spd(rng: np.random.Generator, d: int, lo: float, hi: float) -> np.ndarray:
    """Random symmetric matrix with eigenvalues in [lo, hi]."""
    qmat, _ = np.linalg.qr(rng.normal(size=(d, d)))
    eig = rng.uniform(lo, hi, size=d)
    return np.asarray((qmat * eig) @ qmat.T, dtype=np.float64)


def random_quadratic_exits(rng: np.random.Generator, k: int, d: int) -> QuadraticExits:
    """K random strongly convex quadratics with spread-out minimisers."""
    A = np.stack([random_spd(rng, d, rng.uniform(0.02, 0.3), rng.uniform(0.5, 3.0)) for _ in
                  range(k)])
    c = rng.normal(size=(k, d)) * rng.uniform(0.1, 3.0)
    return QuadraticExits(A=A, c=c)


def random_headed_exits(rng: np.random.Generator, k: int, shared: int) -> QuadraticExits:
    """Exits sharing ``shared`` trunk coordinates, each with one private head coordinate.

    ``F_k`` reads only the trunk and head ``k``; with ``lambda_k = 0`` the target ignores head
    ``k`` and is PL but not strongly convex (Remark 1 of Section 4.9).
    """
    d = shared + k
    A = np.zeros((k, d, d))
    c = rng.normal(size=(k, d)) * rng.uniform(0.1, 3.0)
    for j in range(k):
        idx = [*range(shared), shared + j]
        A[j][np.ix_(idx, idx)] = random_spd(rng, len(idx), rng.uniform(0.02, 0.3),
                                            rng.uniform(0.5, 3.0))
        c[j, [i for i in range(shared, d) if i != shared + j]] = 0.0
    return QuadraticExits(A=A, c=c)


def _weights(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    lam = random_simplex(rng, k)
    mode = rng.integers(0, 4)
    if mode == 0:
        lt = lam.copy()  # Serving Rate: no bias
    elif mode == 1:
        lam[rng.integers(0, k)] = 0.0  # an exit that serves nothing
        lam /= lam.sum()
        lt = random_simplex(rng, k, min_weight=0.01)
    else:
        lt = random_simplex(rng, k, min_weight=0.01)
    return lam, lt


def _symbolic(rng: np.random.Generator) -> list[CheckResult]:
    """The symbolic steps of Theorem 1: part (a), then parts (b) and (c)."""
    return _symbolic_a(rng) + _symbolic_bc(rng)


def _symbolic_a(rng: np.random.Generator) -> list[CheckResult]:
    """Theorem 1(a): the gradient identity at the minimiser and the weighted Cauchy-Schwarz."""
    import sympy as sp

    K = 3
    lam = sp.symbols("lam1:4", positive=True)
    lt = sp.symbols("lt1:4", positive=True)
    g = sp.symbols("g1:4", real=True)  # one coordinate of grad F_k(w_t*)
    # grad F_lt(w_t*) = 0 eliminates g3: lt3 g3 = -(lt1 g1 + lt2 g2)
    g3 = -(lt[0] * g[0] + lt[1] * g[1]) / lt[2]
    gs = [g[0], g[1], g3]
    grad_lam = sum(lam[k] * gs[k] for k in range(K))
    identity = grad_lam - sum((lam[k] - lt[k]) * gs[k] for k in range(K))
    out = [
        symbolic_zero(
            "theorem1.gradient_identity_symbolic",
            "Theorem 1(a)",
            "grad F_lam(w_t*) = sum_k (lam_k - lt_k) grad F_k(w_t*) when grad F_lt(w_t*) = 0",
            identity,
            [*lam, *lt, g[0], g[1]],
            rng,
            positive=[*lam, *lt],
        )
    ]
    # Cauchy-Schwarz with weights sqrt(lt_k): Lagrange's identity
    # (sum a_k^2)(sum b_k^2) - (sum a_k b_k)^2 = sum_{j<k} (a_j b_k - a_k b_j)^2 >= 0
    # with a_k = (lam_k - lt_k)/sqrt(lt_k), b_k = sqrt(lt_k) g_k.
    a = [(lam[k] - lt[k]) / sp.sqrt(lt[k]) for k in range(K)]
    b = [sp.sqrt(lt[k]) * g[k] for k in range(K)]
    out.append(_bias_vs_shipped(rng))
    lagrange = (
        sum(x**2 for x in a) * sum(y**2 for y in b)
        - sum(a[k] * b[k] for k in range(K)) ** 2
        - sum((a[j] * b[k] - a[k] * b[j]) ** 2 for j in range(K) for k in range(j + 1, K))
    )
    out.append(
        symbolic_zero(
            "theorem1.cauchy_schwarz_symbolic",
            "Theorem 1(a)",
            "Lagrange identity: CS gap is a sum of squares; sum a_k^2 = chi2 (lam || lt)",
            lagrange,
            [*lam, *lt, *g],
            rng,
            positive=[*lam, *lt],
        )
    )
    return out


def _symbolic_bc(rng: np.random.Generator) -> list[CheckResult]:
    """Theorem 1(b), (c): the split of the square, its constants, Jensen for the root."""
    import sympy as sp

    out: list[CheckResult] = []
    x, y = sp.symbols("x y", real=True)
    out.append(
        symbolic_zero(
            "theorem1.square_split_symbolic",
            "Theorem 1(b)",
            "2x^2 + 2y^2 - (x + y)^2 = (x - y)^2 >= 0",
            2 * x**2 + 2 * y**2 - (x + y) ** 2 - (x - y) ** 2,
            [x, y],
            rng,
        )
    )
    # Split form: (1/2mu)(2 (2 L chi2 Gamma) + 2 L^2 (2 e / mu_t)) = the split bound
    L, mu, mut, c2, Gam, e = sp.symbols("L mu mu_t chi2 Gamma e", positive=True)
    split = (2 * (2 * L * c2 * Gam) + 2 * L**2 * (2 * e / mut)) / (2 * mu)
    out.append(
        symbolic_zero(
            "theorem1.split_constants_symbolic",
            "Theorem 1(b)",
            "(1/2mu)(2 a^2 + 2 b^2) with a^2 = 2L chi2 Gamma, b^2 = 2L^2 e/mu_t "
            "= (2L/mu) chi2 Gamma + (2L^2/(mu mu_t)) e",
            split - (2 * L / mu * c2 * Gam + 2 * L**2 / (mu * mut) * e),
            [L, mu, mut, c2, Gam, e],
            rng,
            positive=[L, mu, mut, c2, Gam, e],
        )
    )
    # Jensen for the square root (two-point law, weight p):
    # E[s^2] - (E s)^2 = p (1 - p) (s1 - s2)^2 >= 0, i.e. E sqrt(e) <= sqrt(E e).
    p, s1, s2 = sp.symbols("p s1 s2", positive=True)
    out.append(
        symbolic_zero(
            "theorem1.jensen_symbolic",
            "Theorem 1(c)",
            "E[s^2] - (E[s])^2 = p(1-p)(s1 - s2)^2 (two-point law), so E sqrt(e) <= sqrt(E e)",
            p * s1**2 + (1 - p) * s2**2 - (p * s1 + (1 - p) * s2) ** 2
            - p * (1 - p) * (s1 - s2) ** 2,
            [p, s1, s2],
            rng,
            unit=[p],
            positive=[s1, s2],
        )
    )
    out.append(_jensen_shipped(rng))
    return out


def _bias_vs_shipped(rng: np.random.Generator) -> CheckResult:
    """Theorem 1(a)'s sympy form, lambdified, against the shipped bias_bound (replaces a
    check of (lam - lt) g = [(lam - lt)/sqrt(lt)][sqrt(lt) g], which sympy reduced to 0 when
    the expression was built and so could not fail)."""
    from cistheory.symbolic.theorem1 import bias_bound_expr

    f = bias_bound_expr(3).lambdify()
    got, want = [], []
    for _ in range(20):
        lam, lt = random_simplex(rng, 3), random_simplex(rng, 3, min_weight=0.01)
        L, mu, gam = rng.uniform(0.5, 3.0), rng.uniform(0.05, 0.5), rng.uniform(0.0, 3.0)
        got.append(bounds.bias_bound(lam, lt, L, mu, gam))
        want.append(f(lam, lt, L, mu, gam))
    return numeric_identity("theorem1.bias_symbolic_vs_shipped", "Theorem 1(a)",
                            "(L/mu) chi2 Gamma: sympy form (lambdified) = shipped bias_bound",
                            got, want)


def _jensen_shipped(rng: np.random.Generator) -> CheckResult:
    """Theorem 1(c)'s step on the shipped function: for random two-point laws of e,
    E[bound(e)] <= bound(E e) (the bound is concave in e). Replaces a check of the binomial
    expansion (A + C s)^2, true whatever the package computes."""
    lo, hi = [], []
    for _ in range(40):
        lam, lt = random_simplex(rng, 3), random_simplex(rng, 3, min_weight=0.01)
        mu, mut, gam = (rng.uniform(0.05, 1.0) for _ in range(3))
        L = max(mu, mut) * rng.uniform(1.0, 5.0)
        e1, e2, p = rng.uniform(0.0, 5.0), rng.uniform(0.0, 5.0), rng.uniform(0.05, 0.95)
        for split in (False, True):
            b = [bounds.training_error_bound(lam, lt, L, mu, mut, gam, e, split=split)
                 for e in (e1, e2, p * e1 + (1 - p) * e2)]
            lo.append(p * b[0] + (1 - p) * b[1])
            hi.append(b[2])
    return numeric_inequality("theorem1.jensen_shipped", "Theorem 1(c)",
                              "E[training_error_bound(e)] <= training_error_bound(E e) "
                              "(two-point laws; the shipped bound is concave in e)", lo, hi)


Rows = dict[str, list[tuple[float, float]]]


def _instance(
    rng: np.random.Generator,
) -> tuple[QuadraticExits, np.ndarray, np.ndarray, int, int]:
    """A random problem: plain quadratics, or (a quarter) exits with private heads and an
    unserved exit, so that F_lam is PL but not strongly convex."""
    k, d = int(rng.integers(2, 5)), int(rng.integers(1, 5))
    if rng.random() < 0.25:
        P = random_headed_exits(rng, k, int(rng.integers(1, 3)))
        d = P.A.shape[1]
        lt = random_simplex(rng, k, min_weight=0.01)
        lam = random_simplex(rng, k)
        lam[rng.integers(0, k)] = 0.0  # an unserved exit: F_lam is PL only
        lam /= lam.sum()
    else:
        P = random_quadratic_exits(rng, k, d)
        lam, lt = _weights(rng, k)
    return P, lam, lt, k, d


def _part_a(rows: Rows, P: QuadraticExits, lam: np.ndarray, lt: np.ndarray, mu: float) -> None:
    """Every step of Theorem 1(a) at the minimiser of F_lt."""

    def add(key: str, lhs: float, rhs: float) -> None:
        rows.setdefault(key, []).append((lhs, rhs))

    L = P.L
    w_t = P.minimiser(lt)
    Gamma = P.mixed(lt, w_t)  # sum_k lt_k inf F_k = 0
    supp = lt > 0
    chi2_own = float(np.sum((lam[supp] - lt[supp]) ** 2 / lt[supp]))
    grads_t = P.grads(w_t)
    grad_lam_t = lam @ grads_t
    bias = P.gap(lam, w_t)
    add("pl", bias, float(grad_lam_t @ grad_lam_t) / (2 * mu))
    add("grad_identity", float(np.abs(grad_lam_t - (lam - lt) @ grads_t).max()), 0.0)
    weighted = (lam - lt) @ grads_t
    cs_rhs = chi2_own * float(np.sum(lt * np.sum(grads_t**2, axis=1)))
    add("cauchy_schwarz", float(weighted @ weighted), cs_rhs)
    for kk in range(len(lam)):  # ||grad F_k||^2 <= 2L (F_k - inf F_k)
        add("smooth_grad", float(grads_t[kk] @ grads_t[kk]), 2 * L * P.values(w_t)[kk])
    add("gamma_step", cs_rhs, chi2_own * 2 * L * Gamma)
    add("bias_own", bias, L / mu * chi2_own * Gamma)
    add("bias_shipped", bias, bounds.bias_bound(lam, lt, L, mu, Gamma))
    add("chi2_shipped", bounds.chi2(lam, lt), chi2_own)


def _part_bc(
    rows: Rows,
    rng: np.random.Generator,
    P: QuadraticExits,
    lam: np.ndarray,
    lt: np.ndarray,
    mu: float,
    d: int,
) -> None:
    """Theorem 1(b) at random points around the minimiser of F_lt, and 1(c) on a random
    discrete law of w (exact expectations)."""

    def add(key: str, lhs: float, rhs: float) -> None:
        rows.setdefault(key, []).append((lhs, rhs))

    L = P.L
    mu_t = float(np.linalg.eigvalsh(P.hessian(lt))[0])
    w_t = P.minimiser(lt)
    Gamma = P.mixed(lt, w_t)
    supp = lt > 0
    chi2_own = float(np.sum((lam[supp] - lt[supp]) ** 2 / lt[supp]))
    grad_lam_t = lam @ P.grads(w_t)
    for _ in range(3):
        w = w_t + rng.normal(size=d) * 10.0 ** rng.uniform(-3, 1)
        e = P.gap(lt, w)
        gl = lam @ P.grads(w)
        exact = P.gap(lam, w)
        add("pl_any", exact, float(gl @ gl) / (2 * mu))
        diff = gl - grad_lam_t
        add("lipschitz", float(np.sqrt(diff @ diff)), L * float(np.linalg.norm(w - w_t)))
        add("growth", float((w - w_t) @ (w - w_t)), 2 * e / mu_t)
        tight_own = (np.sqrt(2 * L * chi2_own * Gamma) + L * np.sqrt(2 * e / mu_t)) ** 2 / (
            2 * mu
        )
        split_own = 2 * L / mu * chi2_own * Gamma + 2 * L**2 / (mu * mu_t) * e
        add("b_own", exact, tight_own)
        add("b_shipped", exact, bounds.training_error_bound(lam, lt, L, mu, mu_t, Gamma, e))
        add("b_tight_le_split", tight_own, split_own)
        add(
            "b_split_shipped",
            exact,
            bounds.training_error_bound(lam, lt, L, mu, mu_t, Gamma, e, split=True),
        )
    n_pts = int(rng.integers(2, 6))
    probs = rng.dirichlet(np.ones(n_pts))
    pts = w_t + rng.normal(size=(n_pts, d)) * 10.0 ** rng.uniform(-2, 1, size=(n_pts, 1))
    e_mean = float(sum(p * P.gap(lt, x) for p, x in zip(probs, pts, strict=True)))
    exact_mean = float(sum(p * P.gap(lam, x) for p, x in zip(probs, pts, strict=True)))
    add("c_shipped", exact_mean, bounds.training_error_bound(lam, lt, L, mu, mu_t, Gamma, e_mean))


_STEPS = {
    "pl": ("Theorem 1(a)", "PL: F_lam(w_t*) - F_lam* <= ||grad F_lam(w_t*)||^2 / (2 mu)"),
    "cauchy_schwarz": (
        "Theorem 1(a)",
        "||sum (lam-lt) grad F_k||^2 <= chi2 sum lt_k ||grad F_k||^2",
    ),
    "smooth_grad": ("Theorem 1(a)", "||grad F_k(w)||^2 <= 2L (F_k(w) - inf F_k)"),
    "gamma_step": ("Theorem 1(a)", "chi2 sum lt_k ||grad F_k(w_t*)||^2 <= 2L chi2 Gamma"),
    "bias_own": ("Theorem 1(a)", "exact bias <= (L/mu) chi2 Gamma (own formula)"),
    "bias_shipped": ("Theorem 1(a)", "exact bias <= cistheory.bounds.bias_bound"),
    "pl_any": ("Theorem 1(b)", "PL at any w"),
    "lipschitz": ("Theorem 1(b)", "||grad F_lam(w) - grad F_lam(w_t*)|| <= L ||w - w_t*||"),
    "growth": ("Theorem 1(b)", "||w - w_t*||^2 <= 2 e / mu_t"),
    "b_own": ("Theorem 1(b)", "exact training error <= tight form (own formula)"),
    "b_shipped": ("Theorem 1(b)", "exact <= cistheory.bounds.training_error_bound"),
    "b_tight_le_split": ("Theorem 1(b)", "tight form <= split form"),
    "b_split_shipped": ("Theorem 1(b)", "exact <= training_error_bound(split=True)"),
    "c_shipped": (
        "Theorem 1(c)",
        "E[F_lam(w)] - F_lam* <= training_error_bound with E[e] (discrete laws)",
    ),
}
"""The numeric inequalities of the proof: key -> (statement, step)."""


def _results(rows: Rows) -> tuple[list[CheckResult], list[Tightness]]:
    """The checks and tightness ratios of the collected rows."""

    def arrays(key: str) -> tuple[np.ndarray, np.ndarray]:
        lhs, rhs = (np.array(v) for v in zip(*rows[key], strict=True))
        return lhs, rhs

    checks = [
        numeric_inequality(f"theorem1.{key}", stmt, step, *arrays(key))
        for key, (stmt, step) in _STEPS.items()
    ]
    lhs, _ = arrays("grad_identity")
    checks.append(
        numeric_identity(
            "theorem1.grad_identity",
            "Theorem 1(a)",
            "grad F_lam(w_t*) = sum (lam_k - lt_k) grad F_k(w_t*) (max abs residual)",
            lhs,
            np.zeros_like(lhs),
            floor=1.0,
        )
    )
    checks.append(
        numeric_identity(
            "theorem1.chi2_shipped",
            "Theorem 1",
            "cistheory.bounds.chi2 = sum (lam-lt)^2/lt",
            *arrays("chi2_shipped"),
            floor=1e-12,
        )
    )
    tight = []
    for key, name, stmt in (
        ("bias_shipped", "bias_bound", "Theorem 1(a)"),
        ("b_shipped", "training_error_bound", "Theorem 1(b)"),
        ("b_split_shipped", "training_error_bound(split)", "Theorem 1(b)"),
        ("c_shipped", "training_error_bound(E[e])", "Theorem 1(c)"),
    ):
        lhs, rhs = arrays(key)
        tight.append(tightness(stmt, name, rhs, lhs))
    return checks, tight


def run(rng: np.random.Generator, instances: int) -> tuple[list[CheckResult], list[Tightness]]:
    """Every inequality of the proof of Theorem 1 on random quadratics."""
    checks = _symbolic(rng)
    rows: Rows = {}
    for _ in range(instances):
        P, lam, lt, _k, d = _instance(rng)
        mu = P.pl_constant(lam)
        _part_a(rows, P, lam, lt, mu)
        _part_bc(rows, rng, P, lam, lt, mu, d)
    num_checks, tight = _results(rows)
    return checks + num_checks, tight
