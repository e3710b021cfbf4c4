r"""The design problem on the second-generation bound, with the step-stability constraint
(``docs/theory.md``, Section 5.2; ``docs/convex.md``).

For an eligibility policy (support :math:`S` of :math:`q` and set :math:`\mathcal F` of fixed
nodes) and scalars :math:`(\eta, c, \vartheta, \bar\rho)`, the averaged iterate's target error is
at most (Theorems A, C-avg, D, E)

.. math::
    J(\tilde\lambda, q) = A\,\chi^2(\lambda\|\tilde\lambda) + B\,\bar V_c(\tilde\lambda, q) + C_0,
    \qquad \bar V_c = \sum_{(i,k)\in S}w_{i,k}\frac{\tilde\lambda_k^2}{q_{i,k}},\quad
    w_{i,k} = \Big(\frac{m_i}{M_k}\Big)^2\big(s^2_{i,k} + [i\notin\mathcal F](1 + 1/c)\bar Z^2_{i,k}
    \big),

with :math:`A = \bar\zeta^2(\frac1{2\mu} + \frac1{2\underline\mu_t})`, :math:`\bar D = 2 -
\eta(\bar L + (1 + c)\vartheta) > 0`, :math:`B = (\bar\rho + 1)\eta/\bar D`, :math:`C_0 = (\bar\rho
+ 1)\bar r_0/(T\eta\bar D)`, subject to the simplex, :math:`\tilde\lambda_k \ge \lambda_k/\bar\rho`,
the rows :math:`\sum_kq_{i,k} \le 1`, :math:`q \ge q_{\min}`, and the **step-stability
constraints** :math:`\tilde\lambda_k(m_i/M_k)L_{i,k}(1 - q_{i,k}[i\ \text{single-pair}]) \le
\vartheta q_{i,k}` on :math:`S` (so :math:`L_s \le L_s^{\mathrm{pair}} \le \vartheta` and
:math:`\eta L_c \le 2 - \bar D`: the design can never land where Theorem A refuses). The caps
:math:`\bar Z^2_{i,k} \ge \|\nabla f_{i,k}(w^*)\|^2`, :math:`\bar\zeta^2 \ge \zeta_*^2`,
:math:`\underline\mu_t \le \mu_t`, :math:`\bar L \ge L_t`, :math:`\bar r_0 \ge \|w_0 - w^*\|^2`
must hold over the candidate designs (:class:`StableConstants`).

Under a fixed-count draw (``per_round`` :math:`= n < N`, Lemma ES-f, coupling :math:`c_n = (N -
n)/(n(N - 1))`) the rows of :math:`q` are capped at :math:`n/N`, no node is fixed, and a
single-pair node's constraint is :math:`\tilde\lambda_k(m_i/M_k)L_{i,k}(1 - (1 - c_n)q_{i,k})
\le \vartheta q_{i,k}`, so :math:`L^{(c_n)}_s \le \vartheta` (Section 5.2, last paragraph).

For fixed :math:`(S, \mathcal F, \eta, c, \vartheta, \bar\rho)` this is a convex program
(quadratic-over-linear terms, linear constraints). It is solved twice, independently: by
:func:`solve_stable` (``method="fast"``: the reduced convex function :math:`h(\tilde\lambda) =
\min_q J` with an exact water-filling per node, minimised by SLSQP, certified by a Frank-Wolfe
gap from a linear program) and by cvxpy (``method="cvxpy"``). :func:`stable_design` runs the
outer loop over what is not convex: the policies, and one-dimensional grids of
:math:`\eta, c, \vartheta, \bar\rho`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cistheory._arrays import FloatArray, as_float_array, as_simplex, check_scalar
from cistheory.bounds._checks import draw_coupling
from cistheory.bounds.corollary import CISConstants
from cistheory.errors import CISInputError
from cistheory.system.participation import Participation
from cistheory.system.tree import CIS

from .results import MAX_ITER, OPTIMAL, StableResult

__all__ = [
    "DEFAULT_ETAS",
    "StableConstants",
    "StableResult",
    "constants_from",
    "solve_stable",
    "stable_design",
    "stable_lt",
    "stable_objective",
]


@dataclass(frozen=True)
class StableConstants:
    r"""The constants of the design problem of Section 5.2 (caps over the candidate designs).

    Attributes
    ----------
    L_pair : ndarray (N, K)
        Smoothness :math:`L_{i,k}` of each pair loss.
    s2 : ndarray (N, K)
        Gradient-noise variance :math:`s^2_{i,k}` of a local step.
    Z2 : ndarray (N, K)
        Caps :math:`\bar Z^2_{i,k} \ge \|\nabla f_{i,k}(w^*)\|^2`.
    zeta2 : float
        Cap :math:`\bar\zeta^2 \ge \zeta_*^2` (Theorem E).
    mu : float
        PL constant of :math:`F_\lambda`.
    mu_t : float
        Lower cap :math:`\underline\mu_t` of the strong convexity of :math:`F_{\tilde\lambda}`.
    L_bar : float
        :math:`\bar L \ge L_t` (e.g. :math:`\max_kL(F_k)`).
    r0 : float
        Cap :math:`\bar r_0 \ge \|w_0 - w^*\|^2`.
    T : int
        Rounds.
    m : ndarray (N,)
        Samples per node.
    etas : tuple of float, optional
        The steps the design may choose (:func:`stable_lt`); ``None``: :data:`DEFAULT_ETAS`.
    """

    L_pair: FloatArray
    s2: FloatArray
    Z2: FloatArray
    zeta2: float
    mu: float
    mu_t: float
    L_bar: float
    r0: float
    T: int
    m: FloatArray
    etas: tuple[float, ...] | None = None

    def validated(self) -> StableConstants:
        """``self`` after checking every field (raises :class:`CISInputError`)."""
        shape = np.shape(self.L_pair)
        for name in ("L_pair", "s2", "Z2"):
            a = as_float_array(getattr(self, name), name, ndim=2, nonneg=True,
                               axes=("node", "exit"))
            if a.shape != shape:
                raise CISInputError(name, a.shape, f"expected shape {shape} (as L_pair)")
        as_float_array(self.m, "m", shape=(shape[0],), positive=True)
        check_scalar(self.zeta2, "zeta2", nonneg=True)
        for name in ("mu", "mu_t", "L_bar"):
            check_scalar(getattr(self, name), name, positive=True)
        check_scalar(self.r0, "r0", nonneg=True)
        if int(self.T) < 1:
            raise CISInputError("T", self.T, "must be >= 1")
        return self


@dataclass(frozen=True)
class _Problem:
    """Everything the two solvers share, for one (policy, eta, c, theta, rho_bar)."""

    lam: FloatArray
    A: float
    B: float
    C0: float
    w: FloatArray  # (N, K) coefficients of lt_k^2 / q_ik
    a: FloatArray  # (N, K) (m_i / M_k) L_ik: stability uses lt_k a_ik (1 - q [single])
    support: NDArray[np.bool_]
    free: NDArray[np.bool_]  # (N,) rows of q designed (multi-pair, not fixed)
    q_fixed: FloatArray  # (N, K) q of the rows not designed
    lt_low: FloatArray
    theta: float
    q_min: float
    cap: float = 1.0  # bound on each entry and row of q: n/N under a fixed-count draw
    keep: float = 1.0  # 1 - c of the draw: single-pair stability uses lt_k a_ik (1 - keep q)


def _coefficients(lam: FloatArray, const: StableConstants, support: NDArray[np.bool_],
                  fixed_rows: NDArray[np.bool_], eta: float, c: float, theta: float,
                  rho_bar: float | None) -> tuple[float, float, float, FloatArray, FloatArray,
                                                  FloatArray, float]:
    D = 2.0 - eta * (const.L_bar + (1.0 + c) * theta)
    if not D > 0:
        raise CISInputError("eta", eta, f"needs eta (L_bar + (1 + c) theta) < 2 (got {2 - D!r})")
    rho = 1.0 + const.L_bar / const.mu_t if rho_bar is None else float(rho_bar)
    A = const.zeta2 * (1.0 / (2 * const.mu) + 1.0 / (2 * const.mu_t))
    B = (rho + 1.0) * eta / D
    C0 = (rho + 1.0) * const.r0 / (const.T * eta * D)
    m = np.asarray(const.m, dtype=np.float64)
    mk = support.T.astype(np.float64) @ m
    frac = np.where(support, m[:, None] / np.where(mk > 0, mk, 1.0)[None, :], 0.0)
    sampled = ~fixed_rows
    w = frac**2 * (const.s2 + sampled[:, None] * (1.0 + 1.0 / c) * const.Z2)
    a = frac * const.L_pair
    low = np.zeros_like(lam) if rho_bar is None else lam / rho
    return A, B, C0, np.where(support, w, 0.0), np.where(support, a, 0.0), low, rho


def _setup(lam: ArrayLike, const: StableConstants, support: ArrayLike, q: ArrayLike | None,
           *, eta: float, c: float, theta: float, rho_bar: float | None, q_min: float,
           per_round: int | None = None) -> tuple[_Problem, float]:
    lam_a = as_simplex(lam, "lam")
    sup = np.asarray(support, dtype=bool)
    if sup.shape != np.shape(const.L_pair):
        raise CISInputError("support", sup.shape, f"expected shape {np.shape(const.L_pair)}")
    # the draw's coupling (Lemma ES-f; 0 for None and for n = N), checking that a given q is
    # an inclusion table (rows <= n/N)
    coupling = draw_coupling(np.zeros(sup.shape) if q is None else np.asarray(q, dtype=np.float64),
                             per_round)
    cap = 1.0 if per_round is None else int(per_round) / sup.shape[0]
    multi = sup.sum(axis=1) > 1
    if q is None:
        free = multi.copy()
        q_fixed = np.where(sup & ~multi[:, None], cap, 0.0)
    else:
        free = np.zeros(sup.shape[0], dtype=bool)
        q_fixed = np.asarray(q, dtype=np.float64)
    fixed_rows = np.isclose(q_fixed, 1.0, rtol=0, atol=1e-15).any(axis=1) & ~free
    if cap < 1.0:  # n < N: no node is drawn every round (Lemma ES-f), none is fixed
        fixed_rows[:] = False
    A, B, C0, w, a, low, rho = _coefficients(lam_a, const, sup, fixed_rows, eta, c, theta,
                                             rho_bar)
    return _Problem(lam_a, A, B, C0, w, a, sup, free, q_fixed, low, theta, q_min, cap,
                    1.0 - coupling), rho


def _lower_q(p: _Problem, lt: FloatArray, i: int) -> FloatArray:
    """Stability floor of a designed row: q_ik >= lt_k a_ik / theta (and q_min)."""
    return np.where(p.support[i], np.maximum(p.q_min, lt * p.a[i] / p.theta), 0.0)


def _waterfill(omega: FloatArray, low: FloatArray, on: NDArray[np.bool_], cap: float = 1.0
               ) -> tuple[FloatArray, float]:
    """min sum omega/q over low <= q <= cap, sum q <= cap (pairs ``on``; cap = 1, or n/N
    under a fixed-count draw): q and the multiplier nu of the row, exactly.
    q_k(nu) = clip(sqrt(omega_k/nu), low_k, cap) is piecewise c + r/sqrt(nu) between the
    breakpoints omega_k/cap^2 and omega_k/low_k^2, so the root of sum_k q_k(nu) = cap is found
    in closed form on the right piece."""
    q = np.where(on, low, 0.0)
    om, lo = omega[on], low[on]
    if float(lo.sum()) > cap + 1e-12:
        return np.full_like(low, np.nan), math.inf

    def total(nu: float) -> float:
        return float(np.clip(np.sqrt(om / nu), lo, cap).sum()) if nu > 0 else float(
            np.where(om > 0, cap, lo).sum())

    if total(0.0) <= cap:
        q[on] = np.where(om > 0, cap, lo)
        return q, 0.0
    pos = om > 0
    bps = np.unique(np.concatenate([om[pos] / cap**2,
                                    om[pos] / np.maximum(lo[pos], 1e-300) ** 2]))
    nu = float(bps[-1])
    prev = 0.0
    for b in bps:  # S decreases in nu; find the first breakpoint with S(b) <= cap
        if total(float(b)) <= cap:
            mid_nu = max(math.sqrt(prev * float(b)) if prev > 0 else float(b) / 2, 1e-300)
            qs = np.clip(np.sqrt(om / mid_nu), lo, cap)
            inner = pos & (qs > lo) & (qs < cap)
            const = float(qs[~inner].sum())
            r = float(np.sqrt(om[inner]).sum())
            nu = (r / (cap - const)) ** 2 if r > 0 and const < cap else float(b)
            break
        prev = float(b)
    q[on] = np.clip(np.sqrt(om / nu), lo, cap)
    return q, nu


def _h(p: _Problem, lt: FloatArray) -> tuple[float, FloatArray, FloatArray]:
    """The reduced objective h(lt) = min_q J, its gradient, and the optimal q."""
    lt = np.maximum(lt, 1e-150)  # SLSQP may step to 0 on an exit with lam_k = 0
    pos = p.lam > 0
    val = p.A * (float(np.sum(p.lam[pos] ** 2 / lt[pos])) - 1.0) + p.C0
    grad = np.where(pos, -p.A * p.lam**2 / np.where(pos, lt, 1.0) ** 2, 0.0)
    q = p.q_fixed.copy()
    for i in range(p.w.shape[0]):
        on = p.support[i]
        if not on.any():
            continue
        if p.free[i]:
            low = _lower_q(p, lt, i)
            omega = p.w[i] * lt**2
            qi, nu = _waterfill(omega, low, on, p.cap)
            if not math.isfinite(nu):
                return math.inf, grad, q
            q[i] = qi
            active = on & (qi <= low + 1e-15) & (p.a[i] * lt / p.theta >= p.q_min)
            pi = np.where(active, np.maximum(nu - omega / np.where(qi > 0, qi, 1.0) ** 2, 0.0),
                          0.0)
            grad += p.B * (2 * p.w[i] * lt / np.where(on, qi, 1.0) * on + pi * p.a[i] / p.theta)
        qi = q[i]
        val += p.B * float(np.sum(np.where(on, p.w[i] * lt**2 / np.where(on, qi, 1.0), 0.0)))
        if not p.free[i]:
            grad += p.B * np.where(on, 2 * p.w[i] * lt / np.where(on, qi, 1.0), 0.0)
    return val, grad, q


def _linear_constraints(p: _Problem) -> tuple[FloatArray, FloatArray, list[tuple[float, float]]]:
    """A_ub lt <= b_ub and bounds of the feasible weights: stability of the rows not designed
    (lt_k a_ik (1 - (1 - c) q [single]) <= theta q, c the draw's coupling, 0 for independent
    picks) and sum_k lt_k a_ik / theta <= cap (a designed row needs its floors to fit under
    its cap, 1 or n/N); the floors lt >= lam / rho_bar."""
    rows, rhs = [], []
    K = p.lam.size
    upper = np.ones(K)
    for i in range(p.w.shape[0]):
        on = p.support[i]
        if not on.any():
            continue
        if p.free[i]:
            rows.append(np.where(on, p.a[i] / p.theta, 0.0))
            rhs.append(p.cap)
            continue
        single = on.sum() == 1
        for k in np.flatnonzero(on):
            qk = p.q_fixed[i, k]
            coef = p.a[i, k] * (1.0 - p.keep * qk * single)
            if coef > 0:
                upper[k] = min(upper[k], p.theta * qk / coef)
    bounds = [(float(p.lt_low[k]), float(upper[k])) for k in range(K)]
    return (np.array(rows) if rows else np.zeros((0, K))), np.array(rhs), bounds


def _feasible_start(p: _Problem) -> FloatArray | None:
    from scipy.optimize import linprog

    A_ub, b_ub, bounds = _linear_constraints(p)
    K = p.lam.size
    # the centre of the feasible set in the max-min-slack sense keeps h finite
    c = np.zeros(K + 1)
    c[-1] = -1.0
    A = np.hstack([A_ub, np.ones((A_ub.shape[0], 1))]) if A_ub.size else np.zeros((0, K + 1))
    box = [(lo, hi) for lo, hi in bounds] + [(0.0, None)]
    A_box = []
    b_box = []
    for k, (lo, hi) in enumerate(bounds):
        row = np.zeros(K + 1)
        row[k], row[-1] = -1.0, 1.0
        A_box.append(row)
        b_box.append(-lo)
        row = np.zeros(K + 1)
        row[k], row[-1] = 1.0, 1.0
        A_box.append(row)
        b_box.append(hi)
    A_all = np.vstack([A, *A_box]) if A.size else np.array(A_box)
    b_all = np.concatenate([b_ub, b_box])
    res = linprog(c, A_ub=A_all, b_ub=b_all, A_eq=np.append(np.ones(K), 0.0)[None, :],
                  b_eq=[1.0], bounds=box, method="highs")
    if res.status != 0:
        return None
    return np.asarray(res.x[:K], dtype=np.float64)


def _fw_gap(p: _Problem, x: FloatArray, grad: FloatArray) -> float:
    """Frank-Wolfe gap max_{v feasible} <grad, x - v> >= h(x) - min h (h convex)."""
    from scipy.optimize import linprog

    A_ub, b_ub, bounds = _linear_constraints(p)
    res = linprog(grad, A_ub=A_ub if A_ub.size else None, b_ub=b_ub if A_ub.size else None,
                  A_eq=np.ones((1, x.size)), b_eq=[1.0], bounds=bounds, method="highs")
    if res.status != 0:
        return math.inf
    return max(float(grad @ x - res.fun), 0.0)


def _result(p: _Problem, lt: FloatArray, q: FloatArray, fun: float, gap: float, nit: int,
            method: str, msg: str, scalars: tuple[float, float, float, float]) -> StableResult:
    pos = p.lam > 0
    bias = p.A * (float(np.sum(p.lam[pos] ** 2 / lt[pos])) - 1.0)
    var = p.B * float(np.sum(np.where(p.support, p.w * lt[None, :] ** 2 /
                                      np.where(p.support, q, 1.0), 0.0)))
    single = (p.support.sum(axis=1) == 1)[:, None]
    ls = float(np.max(np.where(p.support, lt[None, :] * p.a * (1.0 / np.where(p.support, q, 1.0)
                                                                 - p.keep * single), 0.0),
                      initial=0.0))
    ok = math.isfinite(fun) and gap <= 1e-6 * max(abs(fun), 1.0)
    eta, c, theta, rho = scalars
    return StableResult(lt=lt, q=q, fun=fun, terms={"bias": bias, "variance": var,
                                                     "transient": p.C0},
                        lower_bound=fun - gap, gap=gap, success=ok,
                        status=OPTIMAL if ok else MAX_ITER, message=msg, nit=nit, method=method,
                        eta=eta, c=c, theta=theta, rho_bar=rho, Ls_pair=ls)


def _solve_fast(p: _Problem, scalars: tuple[float, float, float, float]) -> StableResult:
    from scipy.optimize import minimize

    x0 = _feasible_start(p)
    K = p.lam.size
    if x0 is None:
        nan = np.full(K, np.nan)
        return StableResult(nan, np.full(p.w.shape, np.nan), math.inf, {}, math.inf, 0.0, False,
                            MAX_ITER, "infeasible: no weights satisfy the stability "
                            "constraints", 0, "fast", *scalars)
    A_ub, b_ub, bounds = _linear_constraints(p)
    cons = [{"type": "eq", "fun": lambda x: np.sum(x) - 1.0, "jac": lambda x: np.ones_like(x)}]
    if A_ub.size:
        cons.append({"type": "ineq", "fun": lambda x: b_ub - A_ub @ x, "jac": lambda x: -A_ub})
    cache: dict[bytes, tuple[float, FloatArray, FloatArray]] = {}

    def h(x: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        key = np.asarray(x, dtype=np.float64).tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = _h(p, np.asarray(x, dtype=np.float64))
        return cache[key]

    res = minimize(lambda x: h(x)[0], x0, jac=lambda x: h(x)[1], method="SLSQP",
                   bounds=bounds, constraints=cons,
                   options={"maxiter": 500, "ftol": 1e-15})
    x = np.clip(np.asarray(res.x, dtype=np.float64), [b[0] for b in bounds],
                [b[1] for b in bounds])
    x = x / x.sum()
    val, grad, q = _h(p, x)
    if not math.isfinite(val):  # SLSQP's last step left the feasible set: fall back
        x = x0
        val, grad, q = _h(p, x)
    gap = _fw_gap(p, x, grad)
    return _result(p, x, q, val, gap, int(res.nit), "fast",
                   f"SLSQP: {res.message}; Frank-Wolfe gap {gap:.3g}", scalars)


# long: the cvxpy program written out term by term, as the module docstring states it
def _solve_cvxpy(p: _Problem, scalars: tuple[float, float, float, float]) -> StableResult:
    import cvxpy as cp

    from ._common import SOLVERS

    K = p.lam.size
    lt = cp.Variable(K)
    free_pairs = [(i, k) for i in np.flatnonzero(p.free) for k in np.flatnonzero(p.support[i])]
    qv = cp.Variable(len(free_pairs)) if free_pairs else None
    pos = np.flatnonzero(p.lam > 0)
    obj = p.A * (cp.sum(cp.multiply(p.lam[pos] ** 2, cp.inv_pos(lt[pos]))) - 1.0) + p.C0
    cons = [cp.sum(lt) == 1, lt >= p.lt_low]
    for j, (i, k) in enumerate(free_pairs):
        assert qv is not None
        obj += p.B * p.w[i, k] * cp.quad_over_lin(lt[k], qv[j])
        cons += [qv[j] >= p.q_min, qv[j] <= p.cap, lt[k] * p.a[i, k] <= p.theta * qv[j]]
    for i in np.flatnonzero(p.free):
        idx = [j for j, (ii, _k) in enumerate(free_pairs) if ii == i]
        assert qv is not None
        cons.append(cp.sum(qv[idx]) <= p.cap)
    for i in np.flatnonzero(~p.free & p.support.any(axis=1)):
        single = p.support[i].sum() == 1
        for k in np.flatnonzero(p.support[i]):
            qk = p.q_fixed[i, k]
            obj += p.B * p.w[i, k] / qk * cp.square(lt[k])
            cons.append(lt[k] * p.a[i, k] * (1.0 - p.keep * qk * single) <= p.theta * qk)
    prob = cp.Problem(cp.Minimize(obj), cons)
    status = "not solved"
    for name in SOLVERS:
        if name in cp.installed_solvers():
            prob.solve(solver=name)
            status = f"{name}: {prob.status}"
            if prob.status == cp.OPTIMAL:
                break
    if lt.value is None:
        nan = np.full(K, np.nan)
        return StableResult(nan, np.full(p.w.shape, np.nan), math.inf, {}, math.inf, 0.0, False,
                            MAX_ITER, status, -1, "cvxpy", *scalars)
    x = np.maximum(np.asarray(lt.value, dtype=np.float64), p.lt_low)
    x = x / x.sum()
    q = p.q_fixed.copy()
    for j, (i, k) in enumerate(free_pairs):
        assert qv is not None and qv.value is not None
        q[i, k] = float(qv.value[j])
    # the objective recomputed at the cvxpy point, and the fast solver's certificate there
    # (an independent check of the solver)
    on_lam = p.lam > 0
    val = (p.A * (float(np.sum(p.lam[on_lam] ** 2 / x[on_lam])) - 1.0) + p.C0
           + p.B * float(np.sum(np.where(p.support, p.w * x[None, :] ** 2
                                         / np.where(p.support, q, 1.0), 0.0))))
    grad = _h(p, x)[1]
    return _result(p, x, q, val, _fw_gap(p, x, grad), -1, "cvxpy", status, scalars)


def solve_stable(
    lam: ArrayLike,
    const: StableConstants,
    support: ArrayLike,
    *,
    eta: float,
    c: float,
    theta: float,
    rho_bar: float | None = None,
    q: ArrayLike | None = None,
    q_min: float = 1e-3,
    method: str = "fast",
    policy: str = "explicit",
    per_round: int | None = None,
) -> StableResult:
    r"""Minimise :math:`J` (module docstring) for one policy and fixed :math:`(\eta, c,
    \vartheta, \bar\rho)`.

    ``support`` is the (N, K) table of eligible pairs. With ``q`` given, only the weights are
    designed (the participation is that ``q``); otherwise the rows with several eligible pairs
    are designed and the others fixed at their pair. ``rho_bar=None`` uses the cap
    :math:`1 + \bar L/\underline\mu_t` of :math:`\rho_\lambda` and no floor on the weights.

    ``per_round`` :math:`= n` designs for a fixed-count draw (:func:`cistheory.fixed_count`:
    :math:`n` of the :math:`N` nodes per round without replacement, coupling :math:`c = (N -
    n)/(n(N - 1))`, Lemma ES-f): ``q`` is the inclusion table, its entries and rows are capped
    at :math:`n/N` (a given ``q`` must respect that), no node is fixed, and a single-pair node's
    stability constraint is :math:`\tilde\lambda_k(m_i/M_k)L_{i,k}(1 - (1 - c)q_{i,k}) \le
    \vartheta q_{i,k}`; ``None`` (independent picks) and :math:`n = N` give the problem above.

    Examples
    --------
    Two nodes fixed at one exit each; without noise the optimum is :math:`\tilde\lambda =
    \lambda` (no bias, no variance).

    >>> const = StableConstants(L_pair=np.ones((2, 2)), s2=np.zeros((2, 2)),
    ...                         Z2=np.zeros((2, 2)), zeta2=1.0, mu=0.5, mu_t=0.5, L_bar=1.0,
    ...                         r0=1.0, T=100, m=np.ones(2))
    >>> res = solve_stable([0.7, 0.3], const, np.eye(2, dtype=bool), eta=0.5, c=1.0,
    ...                    theta=1.0)
    >>> res.lt.round(6).tolist(), res.success
    ([0.7, 0.3], True)

    One of the two nodes drawn per round (:math:`c = 1`): each trains its exit with
    probability 1/2 and nothing is subtracted, so the constraints read :math:`\tilde\lambda_k
    \le \vartheta/2` and cap both weights at 1/2 (:math:`L^{(c)}_s = \beta L/q = 1`).

    >>> res = solve_stable([0.7, 0.3], const, np.eye(2, dtype=bool), eta=0.5, c=1.0,
    ...                    theta=1.0, per_round=1)
    >>> res.lt.round(6).tolist(), res.q.tolist(), round(res.Ls_pair, 6)
    ([0.5, 0.5], [[0.5, 0.0], [0.0, 0.5]], 1.0)
    """
    const.validated()
    for name, val in (("eta", eta), ("c", c), ("theta", theta)):
        check_scalar(val, name, positive=True)
    if method not in ("fast", "cvxpy"):
        raise CISInputError("method", method, "use 'fast' or 'cvxpy'")
    p, rho = _setup(lam, const, support, q, eta=eta, c=c, theta=theta, rho_bar=rho_bar,
                    q_min=q_min, per_round=per_round)
    scalars = (float(eta), float(c), float(theta), rho)
    res = _solve_fast(p, scalars) if method == "fast" else _solve_cvxpy(p, scalars)
    return StableResult(**{**res.__dict__, "policy": policy})


def stable_objective(
    lam: ArrayLike,
    const: StableConstants,
    lt: ArrayLike,
    q: ArrayLike,
    *,
    eta: float,
    c: float,
    rho_bar: float | None = None,
    theta: float | None = None,
    per_round: int | None = None,
) -> float:
    r""":math:`J` at a given design :math:`(\tilde\lambda, q)`: the bound the design problem
    assigns to it, at ``theta`` or (``None``) at the smallest admissible
    :math:`\vartheta = L_s^{\mathrm{pair}}(\tilde\lambda, q)`, and at ``rho_bar`` or (``None``)
    at the smallest admissible :math:`\bar\rho = \rho_\lambda = \max_k\lambda_k/\tilde\lambda_k`;
    ``inf`` when the design violates
    the stability constraint (:math:`L_s^{\mathrm{pair}} > \vartheta`), when
    :math:`\eta(\bar L + (1 + c)\vartheta) \ge 2`, or when :math:`\tilde\lambda_k <
    \lambda_k/\bar\rho`. ``per_round``: as in :func:`solve_stable` (``q`` the draw's inclusion
    table; a single-pair node's term of :math:`L_s^{\mathrm{pair}}` is :math:`\beta L(1/q - 1 +
    c)`).

    Examples
    --------
    >>> const = StableConstants(L_pair=np.ones((2, 2)), s2=np.ones((2, 2)),
    ...                         Z2=np.zeros((2, 2)), zeta2=1.0, mu=0.5, mu_t=0.5, L_bar=1.0,
    ...                         r0=1.0, T=100, m=np.ones(2))
    >>> J = stable_objective([0.5, 0.5], const, [0.5, 0.5], np.eye(2), eta=0.5, c=1.0)
    >>> round(J, 6)
    0.36
    """
    lam_a = as_simplex(lam, "lam")
    lt_a = as_simplex(lt, "lt")
    qa = np.asarray(q, dtype=np.float64)
    sup = qa > 0
    m = np.asarray(const.m, dtype=np.float64)
    mk = sup.T.astype(np.float64) @ m
    frac = np.where(sup, m[:, None] / np.where(mk > 0, mk, 1.0)[None, :], 0.0)
    single = (sup.sum(axis=1) == 1)[:, None]
    safe = np.where(sup, qa, 1.0)
    keep = 1.0 - draw_coupling(qa, per_round)
    ls_pair = float(np.max(np.where(sup, lt_a * frac * const.L_pair * (1.0 / safe
                                                                       - keep * single),
                                    0.0), initial=0.0))
    if theta is None:
        theta = max(ls_pair, 1e-12)
    elif ls_pair > theta * (1 + 1e-12):
        return math.inf
    if eta * (const.L_bar + (1.0 + c) * theta) >= 2.0:
        return math.inf
    if rho_bar is None:
        rho_bar = float(np.max(np.where(lt_a > 0, lam_a / np.where(lt_a > 0, lt_a, 1.0), 0.0)))
    elif (lt_a < lam_a / rho_bar - 1e-12).any():
        return math.inf
    p, _ = _setup(lam_a, const, sup, qa, eta=eta, c=c, theta=theta, rho_bar=rho_bar,
                  q_min=0.0, per_round=per_round)
    pos = lam_a > 0
    val = p.A * (float(np.sum(lam_a[pos] ** 2 / lt_a[pos])) - 1.0) + p.C0
    return val + p.B * float(np.sum(np.where(sup, p.w * lt_a[None, :] ** 2 / safe, 0.0)))


def stable_design(
    lam: ArrayLike,
    const: StableConstants,
    policies: dict[str, tuple[ArrayLike, ArrayLike | None]],
    *,
    etas: Sequence[float],
    cs: Sequence[float] = (0.25, 1.0, 4.0),
    theta_fracs: Sequence[float] = (1e-6, 0.05, 0.25, 0.5, 0.9),
    rho_bars: Sequence[float | None] = (None, 1.0, 1.25, 2.0, 4.0),
    method: str = "fast",
    per_round: int | None = None,
) -> tuple[StableResult, list[StableResult]]:
    r"""The outer loop of Section 5.2: every policy (``name -> (support, q or None)``), step
    :math:`\eta`, :math:`c`, :math:`\vartheta` as a fraction of its largest admissible value
    :math:`(2 - \eta\bar L)/(\eta(1 + c))`, and :math:`\bar\rho`; returns the best design and
    all the solved ones. Each inner problem is convex (:func:`solve_stable`, which also says
    what ``per_round``, a fixed-count draw, changes).

    Examples
    --------
    >>> const = StableConstants(L_pair=np.ones((2, 2)), s2=np.ones((2, 2)),
    ...                         Z2=np.zeros((2, 2)), zeta2=0.0, mu=0.5, mu_t=0.5, L_bar=1.0,
    ...                         r0=1.0, T=100, m=np.ones(2))
    >>> best, _ = stable_design([0.5, 0.5], const, {"deepest": (np.eye(2, dtype=bool), None)},
    ...                         etas=[0.1, 0.5])
    >>> best.policy, best.eta
    ('deepest', 0.1)
    """
    out = []
    for name, (support, q) in policies.items():
        for eta in etas:
            for c in cs:
                tmax = (2.0 - eta * const.L_bar) / (eta * (1.0 + c))
                if not tmax > 0:
                    continue
                for frac in theta_fracs:
                    for rho in rho_bars:
                        res = solve_stable(lam, const, support, eta=eta, c=c, theta=frac * tmax,
                                           rho_bar=rho, q=q, method=method, policy=name,
                                           per_round=per_round)
                        if math.isfinite(res.fun):
                            out.append(res)
    if not out:
        raise CISInputError("etas", list(etas), "no step admits a feasible design")
    return min(out, key=lambda r: r.fun), out


DEFAULT_ETAS: tuple[float, ...] = (0.0125, 0.025, 0.05, 0.1, 0.2, 0.4)
"""Steps of the outer loop when none is given."""


def constants_from(part: Participation, const: CISConstants) -> StableConstants:
    r"""Map the first generation's constants to Section 5.2's (the illustrative constants of
    :func:`convex.reference_constants`, or a user's :class:`cistheory.CISConstants`):
    :math:`L_{i,k} = \bar L = L` (or ``L_t``), :math:`s^2 = \sigma^2`,
    :math:`\bar Z^2 = G^2` if ``G`` is given, else :math:`2L\bar\Gamma`,
    :math:`\bar\zeta^2 = 2L\bar\Gamma` (Theorem E), :math:`\underline\mu_t` = ``mu_t`` (or
    ``mu``), :math:`\bar r_0 = 2\,\mathrm{gap}_0/\underline\mu_t`.

    Examples
    --------
    >>> import cistheory
    >>> from convex.design import reference_constants
    >>> cis = cistheory.reference_cis("80-15-5")
    >>> sc = constants_from(cistheory.deepest_exit(cis), reference_constants())
    >>> sc.zeta2, sc.r0
    (0.2, 20.0)
    """
    shape = part.q.shape
    L = float(const.L)
    mu_t = float(const.mu if const.mu_t is None else const.mu_t)
    sig = np.broadcast_to(np.asarray(const.sigma, dtype=np.float64), shape)
    Z2 = (np.broadcast_to(np.asarray(const.G, dtype=np.float64), shape) ** 2
          if const.G is not None else np.full(shape, 2 * L * float(const.Gamma)))
    return StableConstants(
        L_pair=np.full(shape, L), s2=sig**2, Z2=np.asarray(Z2, dtype=np.float64),
        zeta2=2 * L * float(const.Gamma), mu=float(const.mu), mu_t=mu_t,
        L_bar=float(L if const.L_t is None else const.L_t), r0=2 * float(const.gap0) / mu_t,
        T=int(const.T), m=np.asarray(part.data, dtype=np.float64)).validated()


def stable_lt(
    cis: CIS,
    part: Participation,
    const: StableConstants,
    *,
    etas: Sequence[float] | None = None,
) -> StableResult:
    r"""Bound-optimal weights for a given participation (the ``bound-optimal`` rule): the
    outer loop of :func:`stable_design` with the participation fixed, over ``etas`` (default:
    ``const.etas``, else :data:`DEFAULT_ETAS`). A participation that draws ``per_round`` of
    the nodes per round (:func:`cistheory.fixed_count`) is designed with that draw's constants
    (Lemma ES-f; ``per_round`` of :func:`solve_stable`).

    Examples
    --------
    >>> import cistheory
    >>> from convex.design import reference_constants
    >>> cis = cistheory.reference_cis("80-15-5")
    >>> part = cistheory.deepest_exit(cis)
    >>> res = stable_lt(cis, part, constants_from(part, reference_constants()))
    >>> bool(res.success), res.lt.shape
    (True, (3,))
    """
    q = np.asarray(part.q, dtype=np.float64)
    steps = etas if etas is not None else (const.etas or DEFAULT_ETAS)
    # the participation is given: one c (it weighs only the sampled rows' gradient caps against
    # theta) and a coarser theta grid keep the rule quick; any grid gives a valid bound
    best, _ = stable_design(cis.lam, const, {part.name: (q > 0, q)}, etas=steps, cs=(1.0,),
                            theta_fracs=(1e-6, 0.25, 0.9), rho_bars=(None, 1.0, 1.25, 2.0),
                            per_round=part.per_round)
    return best
