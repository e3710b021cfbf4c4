r"""cvxpy formulations of the design problem (``docs/theory.md``, Section 5).

Every program is DCP and DPP: it is built once with ``cp.Parameter`` values and re-solved
when the rates or constants change (``assert prob.is_dpp()``). The solver is named
(CLARABEL, SCS as fallback); a status other than optimal raises :class:`SolverError`
saying which solver answered what.

* :class:`LtProgram` — :math:`\min a\chi^2(\lambda\|x) + b\sum_k v_k x_k^2` on the simplex
  with a floor (``chi2`` as :math:`\sum_k \alpha_k\,\mathrm{inv\_pos}(x_k) - a`,
  :math:`\alpha = a\lambda^2`).
* :class:`QProgram` — :math:`\min \sum c_{i,k}/q_{i,k}` on the eligible pairs of given
  free rows, floor, row sums and an optional budget.
* :class:`JointProgram` — the joint problem
  :math:`\min_{x, q} A\chi^2(\lambda\|x) + B\,V(x, q)` with
  :math:`V = \sum_k v^{\mathrm{fix}}_k x_k^2 + \sum_{(i,k)\ \text{free}} w_{i,k}\,
  x_k^2 / q_{i,k}` (``quad_over_lin`` terms).

Scaling: the objective is divided by a positive scale chosen from the parameter values
(the largest coefficient) so that the solver's absolute tolerances act on numbers of order
one; the reported objective is recomputed in numpy at the returned point.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cistheory._arrays import FloatArray
from cistheory.errors import CISInputError

from ._common import SOLVERS, SolverError
from .objective import check_lt_inputs, lt_dual_bound, lt_terms, renormalise
from .results import OPTIMAL, JointCvxResult, LtResult, QCvxResult

__all__ = ["JointProgram", "LtProgram", "QProgram", "solve_lt_cvxpy", "solve_q_cvxpy"]

_log = logging.getLogger(__name__)


def _solve(prob: Any, what: str) -> str:
    """Solve with CLARABEL, then SCS; raise SolverError with every status if both fail.

    Returns the name of the solver that reached an optimal solution.
    """
    import cvxpy as cp

    tried: list[str] = []
    for name in SOLVERS:
        if name not in cp.installed_solvers():
            tried.append(f"{name}: not installed")
            continue
        try:
            if name == "SCS":
                prob.solve(solver=name, eps=1e-9, max_iters=200000)
            else:
                # tolerances 1e-10 (defaults 1e-8): objectives near 0 relative to the
                # coefficients (chi2 = 0 at lt = lam) need the tighter absolute gap
                prob.solve(solver=name, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
        except cp.error.SolverError as exc:
            tried.append(f"{name}: {exc}")
            continue
        if prob.status == cp.OPTIMAL:
            return name
        tried.append(f"{name}: status {prob.status}")
        _log.info("%s: %s returned %s", what, name, prob.status)
    raise SolverError(f"{what}: no solver reached an optimal solution ({'; '.join(tried)})")


def _nit(prob: Any) -> int:
    """The solver's iteration count, -1 if it does not report one."""
    stats = prob.solver_stats
    it = stats.num_iters if stats is not None and stats.num_iters is not None else -1
    return int(it)


def _message(prob: Any, solver: str) -> str:
    return f"{solver}: {prob.status}"


def _qol_epigraph(t: Any, num: Any, den: Any) -> Any:
    r"""Second-order-cone epigraph of elementwise ``quad_over_lin``: :math:`t \ge num^2/den`.

    :math:`\|(2\,num,\ t - den)\| \le t + den` with :math:`den \ge 0`; one vectorised cone
    instead of one ``quad_over_lin`` atom per entry. With :math:`num = 0` the cone only asks
    :math:`t, den \ge 0`, so a zero coefficient puts no barrier on :math:`den` (an
    ``inv_pos`` term with a zero coefficient would keep :math:`den` away from 0).
    """
    import cvxpy as cp

    return cp.SOC(t + den, cp.vstack([2 * num, t - den]), axis=0)


def _fix_rows(q: FloatArray, q_min: float) -> FloatArray:
    """Scale the above-floor part of rows summing above 1 (interior-point round-off ~1e-9)."""
    q = np.maximum(q, 0.0)
    rows = q.sum(axis=1)
    over = rows > 1
    if over.any():
        floor = np.where(q > 0, np.minimum(q, q_min), 0.0)[over]
        extra = q[over] - floor
        room = 1.0 - floor.sum(axis=1)
        q[over] = floor + extra * (room / extra.sum(axis=1))[:, None]
    return q


def _scale(*arrays: ArrayLike) -> float:
    m = max(float(np.max(np.abs(np.asarray(a, dtype=np.float64)), initial=0.0)) for a in arrays)
    return m if m > 0 else 1.0


def _set_budget(prog: Any, cost: ArrayLike | None, budget: float | None,
                rows_fixed: NDArray[np.int64]) -> None:
    """Set a budgeted program's cost per free pair and the budget left after fixed rows."""
    if cost is None or budget is None:
        raise CISInputError("budget", budget, "this program was built with a budget")
    cost_a = np.asarray(cost, dtype=np.float64)
    prog.cost.value = cost_a[prog.cols]
    prog.budget.value = float(budget) - float(cost_a[prog.fixed[rows_fixed]].sum())


class LtProgram:
    r"""The :math:`\tilde\lambda` problem with :math:`K` exits, built once, solved many times.

    .. math::
        \min_{x \in \Delta_K, x \ge x_{\min}} \sum_k \alpha_k / x_k + \sum_k \beta_k x_k^2,
        \quad \alpha = a\lambda^2/s,\ \beta = b v / s

    Examples
    --------
    >>> prog = LtProgram(3)
    >>> r = prog.solve([0.8, 0.15, 0.05], [1.0, 1.0, 1.0], 1.0, 0.0)
    >>> r.fun < 1e-8, r.status  # the solver's duality-gap tolerance
    (True, 'optimal')
    >>> bool(np.allclose(r.lt, [0.8, 0.15, 0.05], atol=1e-4))  # the point: sqrt of that
    True
    """

    def __init__(self, k: int) -> None:
        import cvxpy as cp

        self.k = int(k)
        self.x = cp.Variable(self.k)
        self.t = cp.Variable(self.k)
        # sqrt(alpha) = sqrt(a) * lam: t_k >= alpha_k / x_k is quad_over_lin(sqrt(alpha_k), x_k)
        self.sqrt_alpha = cp.Parameter(self.k, nonneg=True)
        self.beta = cp.Parameter(self.k, nonneg=True)
        self.lt_min = cp.Parameter(nonneg=True)
        obj = cp.sum(self.t) + cp.sum(cp.multiply(self.beta, cp.square(self.x)))
        self.simplex = cp.sum(self.x) == 1
        self.prob = cp.Problem(
            cp.Minimize(obj),
            [self.simplex, self.x >= self.lt_min, _qol_epigraph(self.t, self.sqrt_alpha, self.x)],
        )
        assert self.prob.is_dpp()

    def solve(
        self, lam: ArrayLike, v: ArrayLike, a: float, b: float, lt_min: float = 0.0
    ) -> LtResult:
        """Set the parameters and solve; inputs validated as in :func:`convex.optimal_lt`."""
        lam_a, v_a, af, bf, lm = check_lt_inputs(lam, v, a, b, lt_min)
        if lam_a.size != self.k:
            raise CISInputError("lam", lam_a.tolist()[:10], f"this program has K = {self.k}")
        alpha, beta = af * lam_a**2, bf * v_a
        s = _scale(alpha, beta)
        self.sqrt_alpha.value = np.sqrt(alpha / s)
        self.beta.value = beta / s
        self.lt_min.value = lm
        solver = _solve(self.prob, "optimal_lt (cvxpy)")
        x = np.asarray(self.x.value, dtype=np.float64)
        x = renormalise(x, lm)  # solver round-off around the floor and the sum (~1e-9)
        obj, t_chi, t_var = lt_terms(lam_a, v_a, af, bf, x)
        # cvxpy's equality dual y enters the Lagrangian as f + y (sum x - 1): nu = -y
        nu = -float(self.simplex.dual_value) * s
        dual = lt_dual_bound(lam_a, v_a, af, bf, lm, nu)
        return LtResult(
            lt=x,
            fun=obj,
            terms={"chi2": t_chi, "variance": t_var},
            nu=nu,
            lower_bound=dual,
            gap=obj - dual,
            success=True,
            status=OPTIMAL,
            message=_message(self.prob, solver),
            nit=_nit(self.prob),
            method="cvxpy",
        )


@lru_cache(maxsize=16)
def _lt_program(k: int) -> LtProgram:
    return LtProgram(k)


def solve_lt_cvxpy(
    lam: FloatArray, v: FloatArray, a: float, b: float, lt_min: float = 0.0
) -> LtResult:
    """Solve the lt problem with a cached :class:`LtProgram` (one per K)."""
    return _lt_program(int(np.asarray(lam).size)).solve(lam, v, a, b, lt_min)


class QProgram:
    r"""The :math:`q` problem on a fixed eligibility pattern, built once.

    .. math::
        \min_q \sum_p \mathrm{quad\_over\_lin}(\sqrt{c_p}, q_p)
        \ \text{s.t.}\ \sum_{p \in \text{row } i} q_p \le 1,\ q \ge q_{\min},\
        \sum_p \mathrm{cost}_p q_p \le C'

    Pairs ``p`` are the eligible pairs of free rows (fixed rows are constants).
    """

    def __init__(self, eligible: ArrayLike, fixed: ArrayLike | None = None,
                 with_budget: bool = False) -> None:
        import cvxpy as cp
        import scipy.sparse as sp

        el = np.asarray(eligible, dtype=bool)
        n, k = el.shape
        fx = np.full(n, -1) if fixed is None else np.asarray(fixed, dtype=np.int64)
        self.free = el & (fx < 0)[:, None]
        self.fixed = fx
        self.rows, self.cols = np.nonzero(self.free)
        p = self.rows.size
        self.shape = (n, k)
        self.q = cp.Variable(p)
        self.t = cp.Variable(p)
        self.sqrt_c = cp.Parameter(p, nonneg=True)
        self.q_min = cp.Parameter(nonneg=True)
        urows, inv = np.unique(self.rows, return_inverse=True)
        self.row_mat = sp.csr_matrix((np.ones(p), (inv, np.arange(p))), shape=(urows.size, p))
        cons = [self.q >= self.q_min, _qol_epigraph(self.t, self.sqrt_c, self.q)]
        if p:
            self.row_con = self.row_mat @ self.q <= 1
            cons.append(self.row_con)
        self.with_budget = with_budget
        if with_budget:
            self.cost = cp.Parameter(p, nonneg=True)
            self.budget = cp.Parameter()
            self.budget_con = self.cost @ self.q <= self.budget
            cons.append(self.budget_con)
        self.prob = cp.Problem(cp.Minimize(cp.sum(self.t)), cons)
        assert self.prob.is_dpp()

    def solve(
        self, c: ArrayLike, *, cost: ArrayLike | None = None, budget: float | None = None,
        q_min: float = 0.0,
    ) -> QCvxResult:
        """Set ``c`` (N, K), the floor and the budget, and solve."""
        ca = np.asarray(c, dtype=np.float64)
        s = _scale(ca)
        self.sqrt_c.value = np.sqrt(ca[self.rows, self.cols] / s)
        self.q_min.value = float(q_min)
        rows_fixed = np.flatnonzero(self.fixed >= 0)
        if self.with_budget:
            _set_budget(self, cost, budget, rows_fixed)
        solver = _solve(self.prob, "optimal_q (cvxpy)")
        q = np.zeros(self.shape)
        q[self.rows, self.cols] = np.maximum(np.asarray(self.q.value), float(q_min))
        q[rows_fixed, self.fixed[rows_fixed]] = 1.0
        q = _fix_rows(q, float(q_min))
        with np.errstate(divide="ignore", invalid="ignore"):
            obj = float(np.where(ca > 0, ca / q, 0.0).sum())
        rho = float(self.budget_con.dual_value) * s if self.with_budget else 0.0
        return QCvxResult(q=q, fun=obj, rho=rho, success=True, status=OPTIMAL,
                          message=_message(self.prob, solver), nit=_nit(self.prob))


def solve_q_cvxpy(
    c: ArrayLike, eligible: ArrayLike, *, cost: ArrayLike | None = None,
    budget: float | None = None, q_min: float = 0.0, fixed: ArrayLike | None = None,
) -> QCvxResult:
    """Build a :class:`QProgram` and solve it once (see :func:`convex.optimal_q`)."""
    prog = QProgram(eligible, fixed, with_budget=budget is not None)
    return prog.solve(c, cost=cost, budget=budget, q_min=q_min)


class JointProgram:
    r"""The joint design problem, built once for an eligibility pattern.

    .. math::
        \min_{x, q}\ \sum_k \mathrm{quad\_over\_lin}(\sqrt{\alpha_k}, x_k)
        + \sum_k \gamma_k x_k^2
        + \sum_{p=(i,k)} \omega_p\,\mathrm{quad\_over\_lin}(x_k, q_p)

    with :math:`\alpha = A\lambda^2`, :math:`\gamma = B v^{\mathrm{fix}}`,
    :math:`\omega = B w` (all scaled by one positive number), :math:`x` on the simplex with a
    floor and :math:`q` as in :class:`QProgram`. The constant :math:`-A` of :math:`\chi^2`
    and the generalisation term are added outside the solver.
    """

    def __init__(self, eligible: ArrayLike, fixed: ArrayLike | None = None,
                 with_budget: bool = False) -> None:
        import cvxpy as cp
        import scipy.sparse as sp

        el = np.asarray(eligible, dtype=bool)
        n, k = el.shape
        fx = np.full(n, -1) if fixed is None else np.asarray(fixed, dtype=np.int64)
        self.shape = (n, k)
        self.fixed = fx
        self.free = el & (fx < 0)[:, None]
        self.rows, self.cols = np.nonzero(self.free)
        p = self.rows.size
        self.x = cp.Variable(k)
        self.q = cp.Variable(p)
        self.t_chi = cp.Variable(k)
        self.t_var = cp.Variable(p)
        self.sqrt_alpha = cp.Parameter(k, nonneg=True)
        self.gamma = cp.Parameter(k, nonneg=True)
        self.omega = cp.Parameter(p, nonneg=True)
        self.lt_min = cp.Parameter(nonneg=True)
        self.q_min = cp.Parameter(nonneg=True)
        terms = cp.sum(self.t_chi) + cp.sum(cp.multiply(self.gamma, cp.square(self.x)))
        cons = [
            cp.sum(self.x) == 1,
            self.x >= self.lt_min,
            self.q >= self.q_min,
            _qol_epigraph(self.t_chi, self.sqrt_alpha, self.x),
        ]
        if p:
            # t_p >= x_k^2 / q_p: quad_over_lin(x_k, q_p) for every free pair p = (i, k)
            cons.append(_qol_epigraph(self.t_var, self.x[self.cols], self.q))
            terms = terms + self.omega @ self.t_var
        if p:
            urows, inv = np.unique(self.rows, return_inverse=True)
            mat = sp.csr_matrix((np.ones(p), (inv, np.arange(p))), shape=(urows.size, p))
            cons.append(mat @ self.q <= 1)
        self.with_budget = with_budget
        if with_budget:
            self.cost = cp.Parameter(p, nonneg=True)
            self.budget = cp.Parameter()
            self.budget_con = self.cost @ self.q <= self.budget
            cons.append(self.budget_con)
        self.prob = cp.Problem(cp.Minimize(terms), cons)
        assert self.prob.is_dpp()

    def solve(
        self,
        lam: ArrayLike,
        v_fixed: ArrayLike,
        w: ArrayLike,
        a: float,
        b: float,
        *,
        lt_min: float = 0.0,
        q_min: float = 0.0,
        cost: ArrayLike | None = None,
        budget: float | None = None,
    ) -> JointCvxResult:
        r"""Set the parameters and solve.

        ``w`` (N, K) are the per-pair coefficients of :math:`x_k^2/q_{i,k}` on free pairs;
        ``v_fixed`` (K,) the coefficients of :math:`x_k^2` from fixed rows.
        """
        lam_a = np.asarray(lam, dtype=np.float64)
        w_a = np.asarray(w, dtype=np.float64)
        alpha = a * lam_a**2
        gamma = b * np.asarray(v_fixed, dtype=np.float64)
        omega = b * w_a[self.rows, self.cols]
        s = _scale(alpha, gamma, omega)
        self.sqrt_alpha.value = np.sqrt(alpha / s)
        self.gamma.value = gamma / s
        self.omega.value = omega / s
        self.lt_min.value = float(lt_min)
        self.q_min.value = float(q_min)
        rows_fixed = np.flatnonzero(self.fixed >= 0)
        if self.with_budget:
            _set_budget(self, cost, budget, rows_fixed)
        solver = _solve(self.prob, "joint design (cvxpy)")
        x = renormalise(np.asarray(self.x.value, dtype=np.float64), float(lt_min))
        q = np.zeros(self.shape)
        q[self.rows, self.cols] = np.maximum(np.asarray(self.q.value), float(q_min))
        q[rows_fixed, self.fixed[rows_fixed]] = 1.0
        q = _fix_rows(q, float(q_min))
        obj = float(self.prob.value) * s - a
        rho = float(self.budget_con.dual_value) * s if self.with_budget else 0.0
        return JointCvxResult(lt=x, q=q, fun=obj, rho=max(rho, 0.0), success=True,
                              status=OPTIMAL, message=_message(self.prob, solver),
                              nit=_nit(self.prob))
