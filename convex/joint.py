r"""The joint design problem in :math:`(\tilde\lambda, q)` (``docs/theory.md``, Section 5).

.. math::
    J(x, q) = a\Bigl(\sum_k \frac{\lambda_k^2}{x_k} - 1\Bigr)
    + b\Bigl(\sum_k v^{\mathrm{fix}}_k x_k^2 + \sum_{(i,k)\ \text{free}} w_{i,k}
    \frac{x_k^2}{q_{i,k}}\Bigr),

jointly convex (:math:`x^2/q` is the perspective of :math:`x^2`). The fast solver alternates
the two exact block solvers (:func:`convex.optimal_q` for :math:`x` fixed,
:func:`convex.optimal_lt` for :math:`q` fixed), accelerated by SQUAREM extrapolation on
:math:`x` with a monotone safeguard, and stops on a certified gap from the convexity
(Frank-Wolfe) lower bound

.. math::
    J^\star \ge J(z) + \min_{z' \in \mathcal F} \nabla J(z)^\top (z' - z),

where the linear minimisation splits over the simplex (closed form) and the rows of
:math:`q`; with a budget its value is bounded below by weak duality with the budget
multiplier :math:`\rho` of the last :math:`q` solve:
:math:`\min_{q\in\mathcal Q} g^\top q \ge -\rho C' + \sum_i \min_{q_i \in \text{row}_i}
\sum_k (g_{i,k} + \rho\,\mathrm{cost}_k) q_{i,k}`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from cistheory._arrays import FloatArray, as_float_array, as_simplex
from cistheory.errors import CISInputError

from .lt import optimal_lt
from .q import optimal_q

__all__ = ["JointResult", "joint_objective", "solve_joint"]

_log = logging.getLogger(__name__)

# Pairs with q = 0 (their exit has weight 0) enter v_k through w / q: a stand-in for 1/0
# that keeps v finite and pins such an exit at 0 unless lambda_k > 0 requires mass.
_TINY_Q = 1e-300


@dataclass(frozen=True)
class JointResult:
    r"""Minimiser of the joint design objective.

    Attributes
    ----------
    lt : ndarray (K,)
    q : ndarray (N, K)
    objective : float
        :math:`J(x, q)` (without the generalisation constant).
    terms : dict
        ``{"chi2": a * chi2, "variance": b * V}``.
    lower_bound : float
        Certified lower bound on the optimum of :math:`J`.
    gap : float
        ``objective - lower_bound``.
    method : str
    status : str
        ``"optimal"`` when the relative gap reached ``gap_rtol``, else ``"max_iter"``.
    iterations : int
    """

    lt: FloatArray
    q: FloatArray
    objective: float
    terms: dict[str, float]
    lower_bound: float
    gap: float
    method: str
    status: str
    iterations: int


def _v_of_q(v_fixed: FloatArray, w: FloatArray, q: FloatArray) -> FloatArray:
    pos = w > 0
    return np.asarray(
        v_fixed + np.where(pos, w / np.maximum(q, _TINY_Q), 0.0).sum(axis=0), dtype=np.float64
    )


def joint_objective(
    lam: ArrayLike, v_fixed: ArrayLike, w: ArrayLike, a: float, b: float,
    lt: ArrayLike, q: ArrayLike,
) -> tuple[float, float, float]:
    r""":math:`J(x, q)` and its two terms :math:`(a\chi^2, bV)`.

    Examples
    --------
    >>> joint_objective([1.0], [0.0], [[1.0]], 1.0, 1.0, [1.0], [[0.5]])
    (2.0, 0.0, 2.0)
    """
    lam_a = np.asarray(lam, dtype=np.float64)
    x = np.asarray(lt, dtype=np.float64)
    qa = np.asarray(q, dtype=np.float64)
    wa = np.asarray(w, dtype=np.float64)
    need = lam_a > 0
    chi2 = float(np.sum(np.where(need, lam_a**2 / np.where(need, x, 1.0), 0.0)) - 1.0)
    # a pair with x_k = 0 contributes 0 (the closure of x^2/q at the origin)
    live = (wa > 0) & (x[None, :] > 0)
    with np.errstate(divide="ignore"):
        var = float(np.sum(np.asarray(v_fixed) * x**2)) + float(
            np.where(live, wa * x[None, :] ** 2 / np.where(live, qa, 1.0), 0.0).sum()
        )
    return a * chi2 + b * var, a * chi2, b * var


def _lower_bound(
    lam: FloatArray, v_fixed: FloatArray, w: FloatArray, a: float, b: float,
    x: FloatArray, q: FloatArray, free: np.ndarray, q_min: float, lt_min: float,
    cost: FloatArray | None, budget_left: float | None, rho: float,
) -> float:
    j = joint_objective(lam, v_fixed, w, a, b, x, q)[0]
    need = lam > 0
    v = _v_of_q(v_fixed, w, q)
    gx = np.where(need, -a * lam**2 / np.where(need, x, 1.0) ** 2, 0.0) + 2 * b * x * v
    # d/dq of x^2/q; at x_k = q = 0 the closure of x^2/q has the subgradient 0, which keeps
    # the linearisation a valid lower bound
    live = free & (w > 0) & (q > 0)
    gq = np.where(live, -b * w * (x[None, :] / np.where(live, q, 1.0)) ** 2, 0.0)
    gq = np.where(free, gq, 0.0)
    k = x.size
    lin_x = lt_min * gx.sum() + (1 - k * lt_min) * gx.min()
    n_el = free.sum(axis=1)
    price = gq + (rho * cost[None, :] if cost is not None and budget_left is not None else 0.0)
    price = np.where(free, price, np.inf)
    row_min = np.minimum(0.0, np.min(price, axis=1, initial=np.inf))
    row_min = np.where(n_el > 0, row_min, 0.0)
    lin_q = float(
        (np.where(free, price, 0.0).sum(axis=1) * q_min + (1 - n_el * q_min) * row_min).sum()
    )
    if cost is not None and budget_left is not None:
        lin_q -= rho * budget_left
    cur = float(gx @ x) + float((gq * np.where(free, q, 0.0)).sum())
    return j + lin_x + lin_q - cur


def solve_joint(
    lam: ArrayLike,
    v_fixed: ArrayLike,
    w: ArrayLike,
    eligible: ArrayLike,
    a: float,
    b: float,
    *,
    fixed: ArrayLike | None = None,
    lt_min: float = 0.0,
    q_min: float = 0.0,
    cost: ArrayLike | None = None,
    budget: float | None = None,
    method: str = "fast",
    gap_rtol: float = 1e-9,
    max_iter: int = 1000,
) -> JointResult:
    r"""Minimise :math:`J(x, q)` jointly over the weights and participation.

    .. math::
        \min_{x \in \Delta_K, x \ge x_{\min};\ q \in \mathcal Q}
        a\,\chi^2(\lambda\|x) + b\,V(x, q)

    Parameters
    ----------
    lam : array (K,)
        Serving shares.
    v_fixed : array (K,)
        Coefficients of :math:`x_k^2` from fixed rows (:math:`\sum_{i\ \text{fixed at}\ k}
        (m_i/M_k)^2\sigma^2_{i,k}`).
    w : array (N, K)
        Coefficients of :math:`x_k^2/q_{i,k}` on free eligible pairs (zero elsewhere).
    eligible : bool array (N, K)
    a, b : float
    fixed, lt_min, q_min, cost, budget
        As in :func:`convex.optimal_q` and :func:`convex.optimal_lt`.
    method : {"fast", "cvxpy"}
        Alternating exact block solvers with a certified gap, or :class:`convex.cvx.JointProgram`.
    gap_rtol : float
        Stop when ``gap <= gap_rtol * objective + 1e-14 * (a + b * (max w + max v_fixed))``
        (fast path; the absolute part is rounding of a near-zero objective).
    max_iter : int
        Cap on accelerated alternation rounds (each: two alternations and one extrapolated
        point); the result then has status ``"max_iter"`` and its gap.

    Examples
    --------
    >>> r = solve_joint([0.5, 0.5], [0.0, 0.0], [[1.0, 1.0]], [[True, True]], 1.0, 1.0)
    >>> r.lt.round(6).tolist(), r.q.round(6).tolist()
    ([0.5, 0.5], [[0.5, 0.5]])
    """
    lam_a = as_simplex(lam, "lam")
    k = lam_a.size
    vf = as_float_array(v_fixed, "v_fixed", shape=(k,), nonneg=True)
    wa = as_float_array(w, "w", ndim=2, nonneg=True)
    el = np.asarray(eligible, dtype=bool)
    n = wa.shape[0]
    if wa.shape != (n, k) or el.shape != (n, k):
        raise CISInputError("w", wa.shape, f"w and eligible must have shape (N, {k})")
    fx = np.full(n, -1, dtype=np.int64) if fixed is None else np.asarray(fixed, dtype=np.int64)
    free = el & (fx < 0)[:, None]
    if (wa[~free] > 0).any():
        i, j = np.argwhere((wa > 0) & ~free)[0]
        raise CISInputError(f"w[{i}, {j}]", float(wa[i, j]), "w > 0 on a pair that is not free")
    cost_a = None if cost is None else as_float_array(cost, "cost", shape=(k,), nonneg=True)
    if method == "cvxpy":
        from .cvx import JointProgram

        prog = JointProgram(el, fx, with_budget=budget is not None)
        res = prog.solve(lam_a, vf, wa, a, b, lt_min=lt_min, q_min=q_min, cost=cost_a,
                         budget=budget)
        obj, t_chi, t_var = joint_objective(lam_a, vf, wa, a, b, res.lt, res.q)
        # the same convexity lower bound as the fast path, at the solver's point: an
        # independent certificate of the cvxpy answer
        b_left = None
        if budget is not None and cost_a is not None:
            b_left = float(budget) - float(cost_a[fx[fx >= 0]].sum())
        lb_cvx = _lower_bound(lam_a, vf, wa, a, b, res.lt, res.q, free, q_min, lt_min, cost_a,
                              b_left, res.rho)
        return JointResult(
            lt=res.lt, q=res.q, objective=obj, terms={"chi2": t_chi, "variance": t_var},
            lower_bound=lb_cvx, gap=obj - lb_cvx, method="cvxpy", status=res.status,
            iterations=-1,
        )
    if method != "fast":
        raise CISInputError("method", method, "use 'fast' or 'cvxpy'")
    budget_left = None
    if budget is not None and cost_a is not None:
        rows_f = np.flatnonzero(fx >= 0)
        budget_left = float(budget) - float(cost_a[fx[rows_f]].sum())
    if b == 0:
        # no variance term: lt solves the chi2 problem alone; q (which then does not enter J)
        # is chosen to minimise V at that lt as a tie-break
        lres = optimal_lt(lam_a, np.zeros(k), a, 0.0, lt_min=lt_min)
        q = optimal_q(wa * lres.lt[None, :] ** 2, el, cost=cost_a, budget=budget, q_min=q_min,
                      fixed=fx).q
        return JointResult(
            lt=lres.lt, q=q, objective=lres.objective, terms=dict(lres.terms),
            lower_bound=lres.dual, gap=lres.gap, method="fast", status="optimal",
            iterations=0,
        )
    has_pairs = (wa > 0).any(axis=0)
    # absolute floor of the stopping test: rounding of J, whose terms are at most of the
    # order of a and b (max w + max v_fixed); matters only when J* ~ 0
    atol = 1e-14 * (a + b * (float(wa.max(initial=0.0)) + float(vf.max(initial=0.0))))
    need = lam_a > 0

    def q_step(x: FloatArray) -> tuple[FloatArray, float]:
        r = optimal_q(b * wa * x[None, :] ** 2, el, cost=cost_a, budget=budget, q_min=q_min,
                      fixed=fx)
        return r.q, (r.rho if np.isfinite(r.rho) else 0.0)

    def lt_step(x: FloatArray, q: FloatArray) -> FloatArray:
        v = _v_of_q(vf, wa, q)
        dead = has_pairs & ~((wa > 0) & (q > 0)).any(axis=0)
        if dead.any():
            # an exit at weight 0 got q = 0 (its c is 0), so v_k = infinity would keep it at 0
            # for ever: price it with the q it would get at a small positive weight instead
            probe = x.copy()
            probe[dead] = 1e-3 * max(float(x.max()), 1.0 / k)
            v[dead] = _v_of_q(vf, wa, q_step(probe)[0])[dead]
        return optimal_lt(lam_a, v, a, b, lt_min=lt_min).lt

    def feasible(x: FloatArray) -> bool:
        return bool((x >= lt_min).all() and (x[need] > 0).all())

    # Alternation x -> F(x) = argmin_lt J(lt, q*(x)) is a majorise-minimise iteration of
    # phi(x) = min_q J(x, q); it is accelerated by SQUAREM (Varadhan and Roland 2008):
    # from x0, x1 = F(x0), x2 = F(x1), r = x1 - x0, u = x2 - 2 x1 + x0, alpha = -|r|/|u|,
    # x' = x0 - 2 alpha r + alpha^2 u (pulled back towards x2 until feasible); the next point
    # is whichever of F(x') and x2 has the lower phi, so phi never increases.
    x = np.full(k, 1.0 / k)
    q, rho = q_step(x)
    status = "max_iter"
    lb = -np.inf
    it = 0
    obj = joint_objective(lam_a, vf, wa, a, b, x, q)[0]
    for it in range(1, max_iter + 1):  # noqa: B007 - reported
        x1 = lt_step(x, q)
        q1, _ = q_step(x1)
        x2 = lt_step(x1, q1)
        q2, rho2 = q_step(x2)
        j2 = joint_objective(lam_a, vf, wa, a, b, x2, q2)[0]
        r = x1 - x
        u = x2 - 2 * x1 + x
        nr, nu_ = float(np.linalg.norm(r)), float(np.linalg.norm(u))
        best = (x2, q2, rho2, j2)
        if nu_ > 0 and nr > 0:
            alpha = min(-nr / nu_, -1.0)
            while alpha < -1.0:
                xe = x - 2 * alpha * r + alpha**2 * u
                if feasible(xe) and abs(xe.sum() - 1) <= 1e-12:
                    break
                alpha = 0.5 * (alpha - 1.0)
            if alpha < -1.0:
                qe, _ = q_step(xe)
                xe = lt_step(xe, qe)
                qe, rhoe = q_step(xe)
                je = joint_objective(lam_a, vf, wa, a, b, xe, qe)[0]
                if je < j2:
                    best = (xe, qe, rhoe, je)
        x, q, rho, obj = best
        lb = max(lb, _lower_bound(lam_a, vf, wa, a, b, x, q, free, q_min, lt_min, cost_a,
                                  budget_left, rho))
        if obj - lb <= gap_rtol * abs(obj) + atol:
            status = "optimal"
            break
    else:
        _log.warning("solve_joint: gap %.3g after %d alternations", obj - lb, max_iter)
    obj, t_chi, t_var = joint_objective(lam_a, vf, wa, a, b, x, q)
    return JointResult(
        lt=x, q=q, objective=obj, terms={"chi2": t_chi, "variance": t_var},
        lower_bound=float(lb), gap=float(obj - lb), method="fast", status=status, iterations=it,
    )
