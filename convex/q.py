r"""Variance-optimal participation probabilities for fixed weights (``docs/theory.md``, Section 5).

The problem, for coefficients :math:`c_{i,k} \ge 0` on the eligible node-exit pairs
(:math:`c_{i,k} = \beta_{i,k}^2 (\sigma^2_{i,k} + G^2_{i,k})` in Lemma 2's bound):

.. math::
    \min_q \sum_{(i,k)\ \text{eligible}} \frac{c_{i,k}}{q_{i,k}}
    \quad\text{s.t.}\quad \sum_k q_{i,k} \le 1,\ q_{i,k} \ge q_{\min},\
    \sum_{i,k} \mathrm{cost}_k\, q_{i,k} \le C ,

with rows of *fixed* nodes set to one exit with probability 1 (their cost counts against
:math:`C`). With multipliers :math:`\nu_i \ge 0` of the rows and :math:`\rho \ge 0` of the
budget the minimiser is the water-filling

.. math::
    q_{i,k} = \max\Bigl(q_{\min}, \sqrt{\frac{c_{i,k}}{\nu_i + \rho\,\mathrm{cost}_k}}\Bigr).

For each :math:`\rho`, every :math:`\nu_i` solves :math:`\sum_k q_{i,k} = 1` (or is 0 when the
row wants less). The row sum :math:`R_i(\nu)` is decreasing; the solver runs a safeguarded
Newton method on :math:`R_i(\nu)^{-2} = 1` (exact in one step when no pair sits on the floor
and :math:`\rho = 0`) for all nodes at once, then a safeguarded Newton method on
:math:`\rho` for :math:`\text{spend}(\rho)^{-2} = C'^{-2}`, with the derivative of the spend
from the implicit function theorem and the row multipliers started at their first-order
prediction. Internally the arrays are (K, N): per-node sums add K contiguous rows.

Certificate: for any :math:`\nu \ge 0, \rho \ge 0` the Lagrangian dual

.. math::
    D(\nu, \rho) = -\sum_i \nu_i - \rho C' + \sum_{(i,k)} \min_{q \ge q_{\min}}
    \Bigl(\frac{c_{i,k}}{q} + (\nu_i + \rho\,\mathrm{cost}_k) q\Bigr) + c_{\text{fixed}}

(:math:`C'` the budget left after the fixed rows) is a lower bound on the optimum.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cistheory._arrays import FloatArray, as_float_array
from cistheory.errors import CISInputError

from ._common import check_max_iter
from .results import MAX_ITER, OPTIMAL, QResult

__all__ = ["optimal_q"]

_log = logging.getLogger(__name__)

# Iteration cap (the default max_iter) of each row-multiplier solve and of the search for
# rho: it guards against non-termination only; the safeguarded Newton steps converge in well
# under 30 steps on every test and benchmark problem.
_MAX_ITER = 200
# Relative accuracy of the row sums and of the budget equation: 1e-13 leaves room for the
# rounding of a sum of K square roots (each within a few ulps).
_RTOL = 1e-13
# Dynamic range of c: ratios below 1e-200 of the largest entry would put the row
# multipliers (about (sum sqrt c)^2) near the underflow threshold of double precision.
_DYN_RANGE = 1e-200
# Budget slack accepted as "at the minimum spend" (rounding of a sum of N*K products).
_BUDGET_RTOL = 1e-12

_MSG_OPTIMAL = "row sums and budget solved to rounding (water-filling)"


@dataclass(frozen=True)
class _Prob:
    # _validate returns (N, K) arrays; the solver works on the transposes (K, N) (see
    # `_transpose`): a per-node sum is then a sum of K contiguous rows, ~10x faster than
    # numpy's reduction over a short last axis
    c: FloatArray  # zero off free eligible pairs
    elig: np.ndarray  # bool, free (non-fixed) eligible pairs
    fixed: np.ndarray  # (N,) int, exit index or -1
    cost: FloatArray  # (K,)
    budget: float | None  # budget left for free rows
    q_min: float
    c_fixed: float
    cost_fixed: float


def _check_fixed(fixed: ArrayLike | None, el: NDArray[np.bool_]) -> NDArray[np.int64]:
    """The exit index (0-based) of each fixed node, -1 for a free node."""
    n, k = el.shape
    fx = np.full(n, -1, dtype=np.int64)
    if fixed is None:
        return fx
    fa = np.asarray(fixed)
    if fa.shape != (n,) or not np.issubdtype(fa.dtype, np.integer):
        raise CISInputError("fixed", fa.shape, f"expected {n} integer exit indices (-1: free)")
    bad = (fa < -1) | (fa >= k)
    if bad.any():
        i = int(np.argmax(bad))
        raise CISInputError(f"fixed[{i}]", int(fa[i]), f"must be -1 or an exit in 0..{k - 1}")
    rows = np.flatnonzero(fa >= 0)
    not_el = ~el[rows, fa[rows]]
    if not_el.any():
        i = int(rows[np.argmax(not_el)])
        raise CISInputError(f"fixed[{i}]", int(fa[i]), "a node is fixed at an ineligible exit")
    return fa.astype(np.int64)


def _check_rows(
    ca: FloatArray, el: NDArray[np.bool_], fx: NDArray[np.int64], q_min: float
) -> NDArray[np.bool_]:
    """Check ``c`` on fixed rows and ``q_min`` on free rows; return the free eligible pairs."""
    is_fixed = fx >= 0
    rows = np.flatnonzero(is_fixed)
    other = ca[rows].copy()
    other[np.arange(rows.size), fx[rows]] = 0.0
    if (other > 0).any():
        r, j = np.argwhere(other > 0)[0]
        raise CISInputError(
            f"c[{int(rows[r])}, {int(j)}]", float(other[r, j]),
            "c > 0 on an exit a fixed node never trains",
        )
    free_el = el & ~is_fixed[:, None]
    n_el = free_el.sum(axis=1)
    over = n_el * q_min > 1 + 1e-12
    if over.any():
        i = int(np.argmax(over))
        raise CISInputError(
            "q_min", q_min, f"node {i} has {int(n_el[i])} eligible exits: n * q_min > 1"
        )
    return np.asarray(free_el)


def _check_budget(
    budget: float | None, cost_a: FloatArray, cost_fixed: float, free_el: NDArray[np.bool_],
    q_min: float,
) -> float | None:
    """The budget left for the free rows (``None`` without a budget), or an error if even
    the fixed rows and ``q_min`` on every free eligible pair exceed it."""
    if budget is None:
        return None
    if not np.isfinite(budget):
        raise CISInputError("budget", budget, "must be a finite number")
    min_spend = cost_fixed + q_min * float((free_el * cost_a[None, :]).sum())
    if budget < min_spend * (1 - _BUDGET_RTOL) - _BUDGET_RTOL:
        raise CISInputError(
            "budget",
            budget,
            f"infeasible: the fixed rows and q_min = {q_min} on every eligible pair already "
            f"cost {min_spend!r}",
        )
    return float(budget) - cost_fixed


def _validate(
    c: ArrayLike,
    eligible: ArrayLike,
    cost: ArrayLike | None,
    budget: float | None,
    q_min: float,
    fixed: ArrayLike | None,
) -> _Prob:
    """The validated problem (``c`` zero off the free eligible pairs), or
    :class:`CISInputError` naming the first bad field."""
    ca = as_float_array(c, "c", ndim=2, nonneg=True)
    n, k = ca.shape
    el = np.asarray(eligible)
    if el.shape != (n, k) or el.dtype != np.bool_:
        raise CISInputError("eligible", el.shape, f"expected a boolean array of shape {(n, k)}")
    off = (ca > 0) & ~el
    if off.any():
        i, j = np.argwhere(off)[0]
        raise CISInputError(f"c[{i}, {j}]", float(ca[i, j]), "c > 0 on a pair that is not eligible")
    if not (np.isfinite(q_min) and 0 <= q_min <= 1):
        raise CISInputError("q_min", q_min, "must lie in [0, 1]")
    fx = _check_fixed(fixed, el)
    free_el = _check_rows(ca, el, fx, q_min)
    rows = np.flatnonzero(fx >= 0)
    c_fixed = float(ca[rows, fx[rows]].sum())
    if cost is None:
        if budget is not None:
            raise CISInputError("cost", None, "a budget needs a per-exit cost")
        cost_a = np.zeros(k)
    else:
        cost_a = as_float_array(cost, "cost", shape=(k,), nonneg=True, axes=("exit",))
    cost_fixed = float(cost_a[fx[rows]].sum())
    return _Prob(
        c=np.where(free_el, ca, 0.0),
        elig=free_el,
        fixed=fx,
        cost=cost_a,
        budget=_check_budget(budget, cost_a, cost_fixed, free_el, q_min),
        q_min=float(q_min),
        c_fixed=c_fixed,
        cost_fixed=cost_fixed,
    )


def _q_of(p: _Prob, nu: FloatArray, rho: float) -> tuple[FloatArray, FloatArray]:
    """q(nu, rho) on free eligible pairs (no upper clip) and the weights of dq/dnu (K, N)."""
    s = nu[None, :] + rho * p.cost[:, None]
    if bool((s > 0).all()):  # the common case, without masks: c = 0 gives raw = 0
        raw = np.divide(p.c, s)
        np.sqrt(raw, out=raw)
        q = np.maximum(raw, p.q_min)
        q *= p.elig
        up = raw > p.q_min  # implies c > 0
        # -dq/d(nu) = 0.5 sqrt(c) s^(-3/2) = q / (2 s) off the floor
        w = np.divide(raw, s, out=raw)
        w *= up
        w *= 0.5
        return q, w
    pos = p.c > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(pos, np.sqrt(p.c / s), 0.0)
    q = np.where(p.elig, np.maximum(p.q_min, raw), 0.0)
    up = pos & (raw > p.q_min)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(up, raw / (2 * s), 0.0)
    return q, w


def _row_sums(
    c: FloatArray, n_inel: FloatArray, q_min: float, nu: FloatArray, rho_cost: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """R_i(nu_i) = sum_k max(q_min, sqrt(c/s)) over eligible pairs and -dR_i/dnu_i.

    Arrays (K, m); needs s = nu_i + rho cost_k > 0 everywhere. A pair off the eligible set
    has c = 0, so its term max(q_min, 0) = q_min is subtracted per row (``n_inel`` of them)
    instead of masking every entry; off the floor -dq/dnu = sqrt(c) s^(-3/2) / 2 = q / (2 s).
    """
    s = np.add(nu[None, :], rho_cost[:, None])
    raw = np.divide(c, s)
    np.sqrt(raw, out=raw)
    up = raw > q_min
    r = np.maximum(raw, q_min).sum(axis=0)
    if q_min > 0:
        r -= q_min * n_inel
    np.divide(raw, s, out=s)
    s *= up
    dr = 0.5 * s.sum(axis=0)
    return r, dr


def _active_rows(p: _Prob, rho: float, n_inel: FloatArray) -> NDArray[np.bool_]:
    """Free rows whose sum at nu = 0 exceeds 1 (they need nu_i > 0)."""
    rho_cost = rho * p.cost
    if (rho_cost > 0).all():
        # every price positive: R_i(0) is finite; the row is active iff it exceeds 1
        raw0 = np.sqrt(p.c / rho_cost[:, None])
        r0 = np.maximum(raw0, p.q_min).sum(axis=0)
        if p.q_min > 0:
            r0 -= p.q_min * n_inel
        return np.asarray(r0 > 1 + _RTOL)
    zero_cost = rho_cost == 0
    # a positive-c pair with zero price wants q -> infinity: such a row is active
    inf0 = ((p.c > 0) & zero_cost[:, None]).any(axis=0)
    act = inf0.copy()
    rest = np.flatnonzero(~inf0 & p.elig.any(axis=0))
    if rest.size:
        sub = _Prob(c=p.c[:, rest], elig=p.elig[:, rest], fixed=p.fixed[rest], cost=p.cost,
                    budget=None, q_min=p.q_min, c_fixed=0.0, cost_fixed=0.0)
        act[rest] = _q_of(sub, np.zeros(rest.size), rho)[0].sum(axis=0) > 1 + _RTOL
    return np.asarray(act)


def _row_newton(
    c_a: FloatArray, inel_a: FloatArray, q_min: float, rho_cost: FloatArray, x: FloatArray,
    hi: FloatArray, max_iter: int,
) -> tuple[FloatArray, bool]:
    """R_i(nu_i) = 1 for the active rows (columns of ``c_a``) from ``x`` in the bracket
    ``(0, hi)``; returns nu and whether every row met its test within ``max_iter`` steps."""
    lo = np.zeros(x.size)
    out = np.empty(x.size)
    live = np.arange(x.size)  # rows still iterating (positions in the active rows)
    for _ in range(max_iter):
        r, dr = _row_sums(c_a, inel_a, q_min, x, rho_cost)
        above = r > 1
        lo = np.where(above, x, lo)
        hi = np.where(above, hi, x)
        done = (np.abs(r - 1) <= _RTOL) | (hi - lo <= _RTOL * hi)
        # Newton on psi(nu) = R^-2 - 1 (psi' = 2 R^-3 (-R')): exact in one step when no pair
        # is on the floor and rho = 0, since then R^-2 is linear in nu
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            cand = x - (1 - r * r) * r / (2 * dr)
        # a converged row still takes its Newton step when it stays in the bracket: from a
        # residual <= 1e-13 the step leaves one at rounding level, at no extra evaluation
        # (the certificate in _finish is computed from the returned q)
        ok = np.isfinite(cand) & (cand >= lo) & (cand <= hi)
        out[live[done]] = np.where(ok, cand, x)[done]
        keep = ~done
        if not keep.any():
            return out, True
        if not keep.all():  # shrink the working set to the rows still iterating
            live, cand, lo, hi = live[keep], cand[keep], lo[keep], hi[keep]
            c_a, inel_a = c_a[:, keep], inel_a[keep]
        ok = np.isfinite(cand) & (cand > lo) & (cand < hi)
        x = np.where(ok, cand, 0.5 * (lo + hi))
    out[live] = x
    # the point of the last step is tested as every other one
    r, _ = _row_sums(c_a, inel_a, q_min, x, rho_cost)
    above = r > 1
    lo, hi = np.where(above, x, lo), np.where(above, hi, x)
    done_all = bool(((np.abs(r - 1) <= _RTOL) | (hi - lo <= _RTOL * hi)).all())
    if not done_all:
        _log.warning("optimal_q: row multipliers hit %d steps", max_iter)
    return out, done_all


def _solve_rows(
    p: _Prob, rho: float, nu0: FloatArray | None, max_iter: int = _MAX_ITER
) -> tuple[FloatArray, bool]:
    """nu_i(rho) for every free row: 0 if the row is slack at nu = 0, else R_i(nu_i) = 1;
    and whether every row met its test within ``max_iter`` steps."""
    k, n = p.c.shape
    nu = np.zeros(n)
    n_inel = k - p.elig.sum(axis=0).astype(np.float64)
    act = _active_rows(p, rho, n_inel)
    if not act.any():
        return nu, True
    idx = np.flatnonzero(act)
    c_a, inel_a = p.c[:, idx], n_inel[idx]
    n_el = k - inel_a
    # at nu = n_el^2 max_k c every unfloored q is <= 1/n_el, and so is q_min: R <= 1
    hi = np.maximum(n_el, 1) ** 2 * c_a.max(axis=0)
    if nu0 is None:
        x = 0.5 * hi
    else:
        # a warm start (the caller's prediction of nu at this rho) inside (0, hi); a row
        # without one (nu0 <= 0) starts at hi / 2
        x = np.minimum(nu0[idx], hi)
        x = np.where(x > 0, x, 0.5 * hi)
    nu[idx], done = _row_newton(c_a, inel_a, p.q_min, rho * p.cost, x, hi, max_iter)
    return nu, done


def _spend(p: _Prob, q: FloatArray) -> float:
    return float(p.cost @ q.sum(axis=1))


def _dspend(
    p: _Prob, nu: FloatArray, rho: float, q: FloatArray, w: FloatArray
) -> tuple[float, FloatArray]:
    """d spend / d rho and d nu / d rho (from keeping active rows at sum 1)."""
    wsum = w.sum(axis=0)
    active = (nu > 0) & (wsum > 0)
    wc = p.cost @ w  # sum_k w_{i,k} cost_k
    with np.errstate(divide="ignore", invalid="ignore"):
        dnu = np.where(active, -wc / wsum, 0.0)
    # sum_{i,k} cost_k dq_{i,k}, dq = -w (dnu_i + cost_k)
    return -float(dnu @ wc + (p.cost * p.cost) @ w.sum(axis=1)), dnu


def _rho_step(
    p: _Prob, budget: float, nu: FloatArray, rho: float, q: FloatArray, w: FloatArray, sp: float
) -> tuple[float, FloatArray]:
    r"""Newton step on :math:`\psi(\rho) = \text{spend}^{-2} - C'^{-2}` and d nu / d rho.

    The spend of a pair off the floor is :math:`\propto (\nu_i + \rho\,\mathrm{cost}_k)
    ^{-1/2}`, so :math:`\psi` is close to linear where the prices dominate the row
    multipliers (exactly linear for one exit cost and slack rows); on the spend itself,
    Newton's method creeps up on the root from the left (the spend is convex in rho).
    """
    d, dnu = _dspend(p, nu, rho, q, w)
    if not d < 0:
        return np.nan, dnu
    # psi' = -2 sp^-3 d
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        cand = rho - (sp**-2 - budget**-2) / (-2 * sp**-3 * d)
    return float(cand), dnu


def _dual(p: _Prob, nu: FloatArray, rho: float) -> float:
    s = nu[None, :] + rho * p.cost[:, None]
    c = p.c
    live = p.elig & (c > 0) & (s > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        qs = np.maximum(p.q_min, np.sqrt(np.where(live, c / s, 1.0)))
    # c > 0, s > 0: attained at qs; c > 0, s = 0: inf_q c/q = 0 (q -> infinity);
    # c = 0: min_{q >= q_min} s q = s q_min
    val = np.where(live, c / qs + s * qs, np.where(p.elig & (c == 0), s * p.q_min, 0.0))
    left = 0.0 if p.budget is None else rho * p.budget
    return float(-nu.sum() - left + val.sum() + p.c_fixed)


def optimal_q(
    c: ArrayLike,
    eligible: ArrayLike,
    *,
    cost: ArrayLike | None = None,
    budget: float | None = None,
    q_min: float = 0.0,
    fixed: ArrayLike | None = None,
    max_iter: int = _MAX_ITER,
) -> QResult:
    r"""Participation probabilities minimising the sampling-variance bound for fixed weights.

    Implements the :math:`\tilde\lambda`-fixed design problem of ``docs/theory.md``,
    Section 5 (a water-filling generalising optimal client sampling, Chen, Horvath and
    Richtarik 2020):

    .. math::
        \min_q \sum_{(i,k)} \frac{c_{i,k}}{q_{i,k}}, \qquad
        q_{i,k} = \max\Bigl(q_{\min}, \sqrt{\tfrac{c_{i,k}}{\nu_i + \rho\,\mathrm{cost}_k}}\Bigr).

    Parameters
    ----------
    c : array, shape (N, K)
        Non-negative coefficients, zero off the eligible pairs. Pairs with ``c = 0`` get
        ``q_min``.
    eligible : bool array, shape (N, K)
        Pairs a node may train.
    cost : array, shape (K,), optional
        Expected compute of one training round of exit ``k``.
    budget : float, optional
        Bound :math:`C` on :math:`\sum_{i,k}\mathrm{cost}_k q_{i,k}` (fixed rows included).
    q_min : float
        Floor on every free eligible pair.
    fixed : int array, shape (N,), optional
        Exit index (0-based) a node trains with probability 1, or -1 for a free node.
    max_iter : int
        The most Newton steps of each solve of the row multipliers and of the search for
        the budget multiplier. A result that stops on the limit has ``success`` False and
        ``status`` ``"max_iter"``.

    Returns
    -------
    QResult
        ``q`` (also ``x``), objective ``fun``, multipliers ``nu`` and ``rho``, KKT residuals
        ``kkt`` and a certified ``lower_bound`` and ``gap`` (:mod:`convex.results`).

    Raises
    ------
    CISInputError
        Bad shapes or values, a fixed node at an ineligible exit, ``q_min`` too large for a
        row, a budget below the spend of the fixed rows plus ``q_min`` everywhere, or a
        ``max_iter`` below 1.

    Examples
    --------
    >>> r = optimal_q([[1.0, 4.0]], [[True, True]])
    >>> r.q.round(6).tolist()
    [[0.333333, 0.666667]]
    >>> round(r.fun, 6), r.status
    (9.0, 'optimal')
    """
    max_iter = check_max_iter(max_iter)
    p_in = _validate(c, eligible, cost, budget, q_min, fixed)
    p, scale = _unit_scale(p_in)
    iters = 0
    rho = 0.0
    nu, rows_done = _solve_rows(p, 0.0, None, max_iter)
    q, w = _q_of(p, nu, 0.0)
    limit = None if rows_done else "the row multipliers"
    if p.budget is not None and _spend(p, q) > p.budget * (1 + _RTOL):
        nu, q, rho, iters, limit = _budget_search(p, p.budget, nu, q, w, max_iter)
    q = np.minimum(q, 1.0)
    rows = np.flatnonzero(p.fixed >= 0)
    q[:, rows] = 0.0
    q[p.fixed[rows], rows] = 1.0
    res = _finish(_transpose(p_in), q, nu * scale, rho * scale, iters,
                  np.ascontiguousarray(np.asarray(c, dtype=np.float64).T))
    if limit is not None:
        res = replace(res, success=False, status=MAX_ITER,
                      message=f"iteration limit reached: max_iter = {max_iter} Newton steps on "
                              f"{limit}")
    return replace(res, q=np.ascontiguousarray(res.q.T))


def _unit_scale(p_in: _Prob) -> tuple[_Prob, float]:
    """The problem with ``c / max(c)`` in the solver's (K, N) layout, and ``max(c)``.

    Multipliers scale with ``c``, so realistic tiny coefficients (sigma^2 beta^2 ~ 1e-10)
    run at unit scale; the objective and the certificate use the input ``c``.
    """
    scale = float(p_in.c.max(initial=0.0))
    scale = scale if scale > 0 else 1.0
    tiny = (p_in.c > 0) & (p_in.c < _DYN_RANGE * scale)
    if tiny.any():
        i, j = np.argwhere(tiny)[0]
        raise CISInputError(
            f"c[{i}, {j}]", float(p_in.c[i, j]),
            f"below {_DYN_RANGE} times the largest coefficient {scale!r}: set it to 0 or "
            "solve the rows separately",
        )
    return _transpose(replace(p_in, c=p_in.c / scale)), scale


def _budget_search(
    p: _Prob, budget: float, nu: FloatArray, q: FloatArray, w: FloatArray, max_iter: int
) -> tuple[FloatArray, FloatArray, float, int, str | None]:
    r"""The budget multiplier :math:`\rho` of a binding budget (``budget`` left for the free
    rows), from the budget-free solution ``(nu, q, w)``.

    Returns ``nu``, ``q``, ``rho``, the steps on :math:`\rho` and ``None``, or, when the
    iteration limit stopped the search or the last row solve, what it stopped.
    """
    floor_spend = p.q_min * float(p.cost @ p.elig.sum(axis=1))
    if budget <= floor_spend * (1 + _BUDGET_RTOL) + _BUDGET_RTOL * max(floor_spend, 1e-300):
        # budget exactly at the minimum spend: every free pair at the floor
        return np.zeros(p.c.shape[1]), np.where(p.elig, p.q_min, 0.0), np.inf, 0, None
    lo, hi = 0.0, np.inf
    rho = 1.0 if not (p.c > 0).any() else float(p.c.max() / max(p.cost.max(), 1e-300))
    # first guess: the Newton step on psi (below) from rho = 0
    cand = _rho_step(p, budget, nu, 0.0, q, w, _spend(p, q))[0]
    if np.isfinite(cand) and cand > 0:
        rho = cand
    for iters in range(1, max_iter + 1):
        nu, rows_done = _solve_rows(p, rho, nu, max_iter)
        q, w = _q_of(p, nu, rho)
        sp = _spend(p, q)
        if sp > budget:
            lo = rho
        else:
            hi = rho
        if abs(sp - budget) <= _RTOL * max(budget, 1e-300) or (
                np.isfinite(hi) and hi - lo <= _RTOL * hi):
            return nu, q, rho, iters, None if rows_done else "the row multipliers"
        if iters == max_iter:  # keep nu, q and rho of the last point evaluated
            break
        cand, dnu = _rho_step(p, budget, nu, rho, q, w, sp)
        if np.isfinite(cand) and lo < cand < hi:
            # first-order predictor of the row multipliers at the new rho (the
            # row solve's start; it is clipped to each row's bracket there)
            pred = nu + dnu * (cand - rho)
            nu = np.where(pred > 0, pred, 0.5 * nu)
            rho = cand
        elif np.isfinite(hi):
            rho = 0.5 * (lo + hi) if lo == 0 else float(np.sqrt(lo * hi))
        else:
            rho = 4 * max(rho, 1e-300)
    _log.warning("optimal_q: budget multiplier hit %d steps", max_iter)
    return nu, q, rho, max_iter, "the budget multiplier"


def _transpose(p: _Prob) -> _Prob:
    """The problem with (K, N) arrays (the solver's layout)."""
    return replace(p, c=np.ascontiguousarray(p.c.T), elig=np.ascontiguousarray(p.elig.T))


def _finish(
    p: _Prob, q: FloatArray, nu: FloatArray, rho: float, iters: int, c_all: FloatArray
) -> QResult:
    """The result at ``q`` (solver layout (K, N)) with its KKT residuals and dual value."""
    pos = c_all > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        obj = float(np.where(pos, c_all / q, 0.0).sum())
    rows = q.sum(axis=0)
    row_ex = float(max(0.0, (rows - 1).max(initial=0.0)))
    floor_v = float(max(0.0, (p.q_min - q)[p.elig].max(initial=0.0)))
    spend = _spend(p, q) + 0.0
    budget_total = None if p.budget is None else p.budget + p.cost_fixed
    budget_ex = 0.0 if budget_total is None else max(0.0, spend - budget_total)
    rho_f = rho if np.isfinite(rho) else 0.0
    s = nu[None, :] + rho_f * p.cost[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = np.where(p.c > 0, p.c / q**2, 0.0)
    up = p.elig & (q > p.q_min * (1 + 1e-12)) & (p.c > 0)
    rel = np.abs(grad - s) / np.maximum(grad, 1e-300)
    stat = float(rel[up].max(initial=0.0))
    # on the floor the multiplier of q >= q_min is s - c/q^2 and must be >= 0
    on_floor = p.elig & ~up
    floor_mult = np.where(on_floor, s - grad, 0.0)
    scale = np.maximum(np.abs(s), np.maximum(grad, 1e-300))
    stat = max(stat, float(np.max(np.where(on_floor, -floor_mult / scale, 0.0), initial=0.0)))
    if not np.isfinite(rho):
        stat = 0.0  # every pair on the floor: the only feasible point
    # rows with nu_i > 0 must sum to 1 (relative to 1, the row bound)
    comp_rows = float(np.max(np.where(nu > 0, np.abs(1 - rows), 0.0), initial=0.0))
    comp_b = 0.0
    if budget_total is not None and rho_f > 0:
        comp_b = abs(budget_total - spend) / max(budget_total, 1e-300)
    dual = obj if not np.isfinite(rho) else _dual(p, nu, rho_f)
    return QResult(
        q=q,
        fun=obj,
        nu=nu,
        rho=float(rho),
        lower_bound=dual,
        gap=obj - dual,
        kkt={
            "primal_row": row_ex,
            "primal_floor": floor_v,
            "primal_budget": budget_ex,
            "stationarity": stat,
            "complementarity": max(comp_rows, comp_b),
        },
        spend=spend,
        success=True,
        status=OPTIMAL,
        message=_MSG_OPTIMAL,
        nit=iters,
    )
