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
from numpy.typing import ArrayLike, NDArray

from cistheory._arrays import FloatArray, as_float_array, as_simplex
from cistheory.errors import CISInputError

from ._common import check_max_iter
from .lt import optimal_lt
from .q import optimal_q
from .results import MAX_ITER, OPTIMAL, JointResult

__all__ = ["joint_objective", "solve_joint"]

_log = logging.getLogger(__name__)

# Pairs with q = 0 (their exit has weight 0) enter v_k through w / q: a stand-in for 1/0
# that keeps v finite and pins such an exit at 0 unless lambda_k > 0 requires mass.
_TINY_Q = 1e-300


@dataclass(frozen=True)
class _Joint:
    """A validated joint problem (arguments of :func:`solve_joint`)."""

    lam: FloatArray
    vf: FloatArray  # v_fixed
    w: FloatArray
    el: NDArray[np.bool_]
    fixed: NDArray[np.int64]
    free: NDArray[np.bool_]  # free eligible pairs
    a: float
    b: float
    lt_min: float
    q_min: float
    cost: FloatArray | None
    budget: float | None
    budget_left: float | None  # budget less the cost of the fixed rows


def _joint_inputs(
    lam: ArrayLike, v_fixed: ArrayLike, w: ArrayLike, eligible: ArrayLike, a: float, b: float,
    fixed: ArrayLike | None, lt_min: float, q_min: float, cost: ArrayLike | None,
    budget: float | None,
) -> _Joint:
    lam_a = as_simplex(lam, "lam")
    k = lam_a.size
    vf = as_float_array(v_fixed, "v_fixed", shape=(k,), nonneg=True, axes=("exit",))
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
    cost_a = (
        None if cost is None
        else as_float_array(cost, "cost", shape=(k,), nonneg=True, axes=("exit",))
    )
    budget_left = None
    if budget is not None and cost_a is not None:
        budget_left = float(budget) - float(cost_a[fx[np.flatnonzero(fx >= 0)]].sum())
    return _Joint(lam_a, vf, wa, el, fx, free, a, b, lt_min, q_min, cost_a, budget, budget_left)


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


def _lower_bound(p: _Joint, x: FloatArray, q: FloatArray, rho: float) -> float:
    """The convexity (Frank-Wolfe) lower bound on the optimum of J at the point (x, q), with
    the budget multiplier ``rho`` for the budget's part (module docstring)."""
    lam, w, a, b, free, cost, left = p.lam, p.w, p.a, p.b, p.free, p.cost, p.budget_left
    j = joint_objective(lam, p.vf, w, a, b, x, q)[0]
    need = lam > 0
    v = _v_of_q(p.vf, w, q)
    gx = np.where(need, -a * lam**2 / np.where(need, x, 1.0) ** 2, 0.0) + 2 * b * x * v
    # d/dq of x^2/q; at x_k = q = 0 the closure of x^2/q has the subgradient 0, which keeps
    # the linearisation a valid lower bound
    live = free & (w > 0) & (q > 0)
    gq = np.where(live, -b * w * (x[None, :] / np.where(live, q, 1.0)) ** 2, 0.0)
    gq = np.where(free, gq, 0.0)
    k = x.size
    lin_x = p.lt_min * gx.sum() + (1 - k * p.lt_min) * gx.min()
    n_el = free.sum(axis=1)
    price = gq + (rho * cost[None, :] if cost is not None and left is not None else 0.0)
    price = np.where(free, price, np.inf)
    row_min = np.minimum(0.0, np.min(price, axis=1, initial=np.inf))
    row_min = np.where(n_el > 0, row_min, 0.0)
    lin_q = float(
        (np.where(free, price, 0.0).sum(axis=1) * p.q_min + (1 - n_el * p.q_min) * row_min).sum()
    )
    if cost is not None and left is not None:
        lin_q -= rho * left
    cur = float(gx @ x) + float((gq * np.where(free, q, 0.0)).sum())
    return j + lin_x + lin_q - cur


class _Blocks:
    """The two exact block solvers of the alternation on a problem ``p``."""

    def __init__(self, p: _Joint) -> None:
        self.p = p
        self.has_pairs = (p.w > 0).any(axis=0)
        self.need = p.lam > 0

    def objective(self, x: FloatArray, q: FloatArray) -> float:
        p = self.p
        return joint_objective(p.lam, p.vf, p.w, p.a, p.b, x, q)[0]

    def q_step(self, x: FloatArray) -> tuple[FloatArray, float]:
        """The participation minimising J at weights ``x``, and its budget multiplier."""
        p = self.p
        r = optimal_q(p.b * p.w * x[None, :] ** 2, p.el, cost=p.cost, budget=p.budget,
                      q_min=p.q_min, fixed=p.fixed)
        return r.q, (r.rho if np.isfinite(r.rho) else 0.0)

    def lt_step(self, x: FloatArray, q: FloatArray) -> FloatArray:
        """The weights minimising J at participation ``q`` (``x``: the current weights)."""
        p = self.p
        v = _v_of_q(p.vf, p.w, q)
        dead = self.has_pairs & ~((p.w > 0) & (q > 0)).any(axis=0)
        if dead.any():
            # an exit at weight 0 got q = 0 (its c is 0), so v_k = infinity would keep it at 0
            # for ever: price it with the q it would get at a small positive weight instead
            probe = x.copy()
            probe[dead] = 1e-3 * max(float(x.max()), 1.0 / p.lam.size)
            v[dead] = _v_of_q(p.vf, p.w, self.q_step(probe)[0])[dead]
        return optimal_lt(p.lam, v, p.a, p.b, lt_min=p.lt_min).lt

    def feasible(self, x: FloatArray) -> bool:
        return bool((x >= self.p.lt_min).all() and (x[self.need] > 0).all())


def _extrapolate(
    blocks: _Blocks, x: FloatArray, r: FloatArray, u: FloatArray
) -> FloatArray | None:
    """The SQUAREM point ``x - 2 alpha r + alpha^2 u``, ``alpha = -|r|/|u|`` pulled back
    towards -1 until it is feasible; ``None`` when only ``alpha = -1`` (the plain double
    step) remains."""
    nr, nu_ = float(np.linalg.norm(r)), float(np.linalg.norm(u))
    if not (nu_ > 0 and nr > 0):
        return None
    alpha = min(-nr / nu_, -1.0)
    while alpha < -1.0:
        xe = x - 2 * alpha * r + alpha**2 * u
        if blocks.feasible(xe) and abs(xe.sum() - 1) <= 1e-12:
            return xe
        alpha = 0.5 * (alpha - 1.0)
    return None


def _squarem_round(
    blocks: _Blocks, x: FloatArray, q: FloatArray
) -> tuple[FloatArray, FloatArray, float, float]:
    r"""One accelerated round from ``(x, q)``: the new point, its :math:`\rho` and J.

    Alternation x -> F(x) = argmin_lt J(lt, q*(x)) is a majorise-minimise iteration of
    phi(x) = min_q J(x, q); it is accelerated by SQUAREM (Varadhan and Roland 2008): from
    x0, x1 = F(x0), x2 = F(x1), r = x1 - x0, u = x2 - 2 x1 + x0, alpha = -|r|/|u|,
    x' = x0 - 2 alpha r + alpha^2 u (pulled back towards x2 until feasible); the next point
    is whichever of F(x') and x2 has the lower phi, so phi never increases.
    """
    x1 = blocks.lt_step(x, q)
    q1, _ = blocks.q_step(x1)
    x2 = blocks.lt_step(x1, q1)
    q2, rho2 = blocks.q_step(x2)
    j2 = blocks.objective(x2, q2)
    xe = _extrapolate(blocks, x, x1 - x, x2 - 2 * x1 + x)
    if xe is not None:
        qe, _ = blocks.q_step(xe)
        xe = blocks.lt_step(xe, qe)
        qe, rhoe = blocks.q_step(xe)
        je = blocks.objective(xe, qe)
        if je < j2:
            return xe, qe, rhoe, je
    return x2, q2, rho2, j2


def _alternate(p: _Joint, gap_rtol: float, max_iter: int) -> JointResult:
    """The fast path of :func:`solve_joint` (``b > 0``): accelerated alternation until the
    certified gap closes to ``gap_rtol`` or ``max_iter`` rounds."""
    blocks = _Blocks(p)
    k = p.lam.size
    # absolute floor of the stopping test: rounding of J, whose terms are at most of the
    # order of a and b (max w + max v_fixed); matters only when J* ~ 0
    atol = 1e-14 * (p.a + p.b * (float(p.w.max(initial=0.0)) + float(p.vf.max(initial=0.0))))
    x = np.full(k, 1.0 / k)
    q, rho = blocks.q_step(x)
    done = False
    lb = -np.inf
    it = 0
    obj = blocks.objective(x, q)
    for it in range(1, max_iter + 1):  # noqa: B007 - reported
        x, q, rho, obj = _squarem_round(blocks, x, q)
        lb = max(lb, _lower_bound(p, x, q, rho))
        if obj - lb <= gap_rtol * abs(obj) + atol:
            done = True
            break
    else:
        _log.warning("solve_joint: gap %.3g after %d alternations", obj - lb, max_iter)
    obj, t_chi, t_var = joint_objective(p.lam, p.vf, p.w, p.a, p.b, x, q)
    gap = float(obj - lb)
    message = (f"certified gap {gap:.3g} within gap_rtol = {gap_rtol:g}" if done else
               f"iteration limit reached: max_iter = {max_iter} alternation rounds, gap "
               f"{gap:.3g}")
    return JointResult(
        lt=x, q=q, fun=obj, terms={"chi2": t_chi, "variance": t_var}, rho=rho,
        lower_bound=float(lb), gap=gap, success=done, status=OPTIMAL if done else MAX_ITER,
        message=message, nit=it, method="fast",
    )


def _without_variance(p: _Joint) -> JointResult:
    """``b = 0``: lt solves the chi2 problem alone; q (which then does not enter J) is chosen
    to minimise V at that lt as a tie-break."""
    k = p.lam.size
    lres = optimal_lt(p.lam, np.zeros(k), p.a, 0.0, lt_min=p.lt_min)
    q = optimal_q(p.w * lres.lt[None, :] ** 2, p.el, cost=p.cost, budget=p.budget,
                  q_min=p.q_min, fixed=p.fixed).q
    return JointResult(
        lt=lres.lt, q=q, fun=lres.fun, terms=dict(lres.terms), rho=0.0,
        lower_bound=lres.lower_bound, gap=lres.gap, success=lres.success, status=lres.status,
        message=f"b = 0: the weights problem alone ({lres.message})", nit=0, method="fast",
    )


def _solve_cvxpy(p: _Joint) -> JointResult:
    """The joint cvxpy program, certified by the fast path's convexity lower bound."""
    from .cvx import JointProgram

    prog = JointProgram(p.el, p.fixed, with_budget=p.budget is not None)
    res = prog.solve(p.lam, p.vf, p.w, p.a, p.b, lt_min=p.lt_min, q_min=p.q_min, cost=p.cost,
                     budget=p.budget)
    obj, t_chi, t_var = joint_objective(p.lam, p.vf, p.w, p.a, p.b, res.lt, res.q)
    # the same convexity lower bound as the fast path, at the solver's point: an
    # independent certificate of the cvxpy answer
    lb_cvx = _lower_bound(p, res.lt, res.q, res.rho)
    return JointResult(
        lt=res.lt, q=res.q, fun=obj, terms={"chi2": t_chi, "variance": t_var}, rho=res.rho,
        lower_bound=lb_cvx, gap=obj - lb_cvx, success=res.success, status=res.status,
        message=res.message, nit=res.nit, method="cvxpy",
    )


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
        Stop when ``gap <= gap_rtol * fun + 1e-14 * (a + b * (max w + max v_fixed))``
        (fast path; the absolute part is rounding of a near-zero objective).
    max_iter : int
        Cap on accelerated alternation rounds (each: two alternations and one extrapolated
        point); a result that stops on it has ``success`` False, ``status`` ``"max_iter"``
        and its (certified) gap.

    Returns
    -------
    JointResult
        ``lt`` (also ``x``) and ``q``, objective ``fun`` and its terms, the budget
        multiplier ``rho`` and a certified ``lower_bound`` and ``gap``
        (:mod:`convex.results`).

    Raises
    ------
    CISInputError
        Bad shapes or values (as :func:`convex.optimal_q` and :func:`convex.optimal_lt`),
        ``w > 0`` on a pair that is not free, an unknown ``method`` or ``max_iter < 1``.

    Examples
    --------
    >>> r = solve_joint([0.5, 0.5], [0.0, 0.0], [[1.0, 1.0]], [[True, True]], 1.0, 1.0)
    >>> r.lt.round(6).tolist(), r.q.round(6).tolist(), r.status
    ([0.5, 0.5], [[0.5, 0.5]], 'optimal')
    """
    max_iter = check_max_iter(max_iter)
    p = _joint_inputs(lam, v_fixed, w, eligible, a, b, fixed, lt_min, q_min, cost, budget)
    if method == "cvxpy":
        return _solve_cvxpy(p)
    if method != "fast":
        raise CISInputError("method", method, "use 'fast' or 'cvxpy'")
    if b == 0:
        return _without_variance(p)
    return _alternate(p, gap_rtol, max_iter)
