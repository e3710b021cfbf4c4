r"""Bound-optimal training weights for fixed participation (``docs/theory.md``, Section 5).

The problem (:mod:`convex.objective`), for serving shares :math:`\lambda` on the simplex,
variance coefficients :math:`v_k \ge 0` and weights :math:`a, b \ge 0`:

.. math::
    \min_{x \in \Delta_K,\; x \ge x_{\min}}\;
    f(x) = a\,\chi^2(\lambda \,\|\, x) + b \sum_k v_k x_k^2 .

With :math:`s_k = \sqrt a\,\lambda_k`, :math:`\beta_k = b v_k` the stationarity condition of
coordinate :math:`k` (multiplier :math:`\nu` of :math:`\sum_k x_k = 1`) is

.. math:: g_k(x_k) = -\frac{s_k^2}{x_k^2} + 2\beta_k x_k = \nu .

When every :math:`\lambda_k > 0` Newton's method on the whole KKT system in :math:`(x, \nu)`,
started at :math:`x = \lambda`, is tried first: compiled (numba, :mod:`convex._jit`) up to
``_JIT_MAX_K`` exits, on Python floats up to ``_SMALL_K`` exits without numba, and on numpy
arrays above. Otherwise, or when it does not converge with every weight above the floor, the
safeguarded iteration runs: :math:`x_k(\nu) = \max(x_{\min}, g_k^{-1}(\nu))` is increasing
and convex in :math:`\nu` (closed-form roots, :func:`convex.objective.x_of_nu`), so
:math:`S(\nu) = \sum_k x_k(\nu)` is convex increasing and Newton's method on
:math:`S(\nu) = 1` started right of the root never overshoots it. Everything is vectorised
over :math:`k`.

Exits with :math:`\lambda_k = \beta_k = 0` do not enter the objective ("free" exits): they
get the floor, plus an equal share of any mass the other exits do not want (the minimiser is
then not unique).

Certificate: the Lagrangian dual value :math:`d(\nu)` (:func:`convex.objective.lt_dual_bound`)
at the returned multiplier is a lower bound on the optimum, so the gap
:math:`f(\hat x) - d(\nu)` certifies the returned point.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from numpy.typing import ArrayLike

from cistheory._arrays import FloatArray
from cistheory.errors import CISInputError

from ._common import check_max_iter
from .objective import (
    LAM_MIN,
    check_lt_inputs,
    lt_dual_bound,
    lt_dual_value,
    lt_terms,
    renormalise,
    x_of_nu,
)
from .results import MAX_ITER, OPTIMAL, LtResult

__all__ = ["optimal_lt"]

_log = logging.getLogger(__name__)

# Newton on the multiplier converges quadratically; 200 steps (the default max_iter) is far
# above what any test or benchmark needs (< 30) and only guards against a non-terminating
# loop.
_MAX_OUTER = 200
# Relative accuracy of S(nu) = 1: a sum of K roots each accurate to a few ulps (closed
# form plus one Newton step; see convex.objective.cubic_roots).
_S_RTOL = 1e-13
# Joint Newton on (x, nu): at most 30 steps (quadratic convergence from x = lam takes < 10
# on every test problem) and stop at 1e-14 relative residual (rounding level of g_k).
_MAX_JOINT = 30
_JOINT_RTOL = 1e-14
# Up to this many exits the joint Newton runs on Python floats (`_joint_small`): one numpy
# call costs ~0.3-1 us whatever the length, a Python loop ~0.3 us per exit and step, and
# the crossover measured on the benchmark problems lies between 16 and 32 exits.
_SMALL_K = 24
# Up to this many exits the compiled kernel (numba) runs when available: it sums in order,
# so its certificate carries ~K ulps of rounding; above this the numpy path (pairwise sums)
# keeps the gap at rounding level and its call overhead no longer matters.
_JIT_MAX_K = 4096

_MSG_JOINT = "KKT system solved to rounding (Newton's method on (x, nu))"
_MSG_MULTIPLIER = "S(nu) = 1 solved to rounding (Newton's method on the multiplier)"
_MSG_CLOSED = "closed form (every weight at the floor, or free exits take the rest)"


def _converged(
    lt: FloatArray, fun: float, t_chi: float, t_var: float, nu: float, lower: float,
    nit: int, message: str,
) -> LtResult:
    """The result of a fast path that met its stopping test."""
    return LtResult(lt=lt, fun=fun, terms={"chi2": t_chi, "variance": t_var}, nu=nu,
                    lower_bound=lower, gap=fun - lower, success=True, status=OPTIMAL,
                    message=message, nit=nit, method="fast")


def _joint_newton(
    s: FloatArray, beta: FloatArray, lt_min: float, max_steps: int = _MAX_JOINT
) -> tuple[FloatArray, float, int] | None:
    r"""Newton's method on the whole KKT system :math:`g_k(x_k) = \nu`, :math:`\sum_k x_k = 1`.

    For problems with every :math:`\lambda_k > 0` (no exit at 0) this needs a handful of
    vector operations per step instead of a root solve per step. It starts from
    :math:`x = \lambda` (the :math:`b = 0` solution) and damps a step that would leave
    :math:`x > 0`. Returns ``None`` (the caller then runs the safeguarded multiplier
    iteration) unless it converges to rounding level within ``max_steps`` steps with every
    :math:`x_k \ge x_{\min}`.
    """
    x = s / s.sum()
    r2 = (s / x) ** 2
    g = 2 * beta * x - r2
    gp = (2 * r2 + 2 * beta * x) / x
    nu = float(x @ g)
    for it in range(1, max_steps + 1):
        inv = 1.0 / gp
        res = nu - g
        dnu = (1.0 - x.sum() - res @ inv) / inv.sum()
        dx = (res + dnu) * inv
        step = 1.0
        if (x + dx <= 0).any():
            neg = dx < 0
            step = 0.5 * float(np.min(-x[neg] / dx[neg]))
        x = x + step * dx
        nu += step * dnu
        r2 = (s / x) ** 2
        bx = 2 * beta * x
        g = bx - r2
        gp = (2 * r2 + bx) / x
        # rounding level of g = 2 beta x - (s/x)^2 is a few ulps of its two terms
        if step == 1.0 and np.max(np.abs(g - nu) / (r2 + bx)) <= _JOINT_RTOL and \
                abs(x.sum() - 1.0) <= _JOINT_RTOL:
            return (x, nu, it) if bool((x >= lt_min).all()) else None
    return None


def _lean_inputs(
    lam: ArrayLike, v: ArrayLike, a: float, b: float, lt_min: float
) -> tuple[FloatArray, FloatArray, float, float, float] | None:
    """Inputs of the common case (every lam_k >= LAM_MIN, a > 0, K lt_min < 1), else None.

    Accepts a strict subset of what :func:`convex.objective.check_lt_inputs` accepts, at a
    fraction of its cost: ``None`` sends the caller to the full validation, which raises the
    :class:`CISInputError` naming the field. The simplex test here uses half the tolerance
    of ``as_simplex`` so that the rounding of a different summation order cannot accept a
    point the full test rejects.
    """
    try:
        lam_a = np.asarray(lam, dtype=np.float64)
        v_a = np.asarray(v, dtype=np.float64)
        af, bf, lm = float(a), float(b), float(lt_min)
    except (TypeError, ValueError):
        return None
    k = lam_a.size
    if lam_a.ndim != 1 or v_a.shape != lam_a.shape or k == 0:
        return None
    # a > 0 and b, lt_min >= 0 finite (NaN fails every comparison)
    if not (0.0 < af < math.inf and 0.0 <= bf < math.inf and lm >= 0.0 and lm * k < 1.0):
        return None
    if k <= _SMALL_K:
        ll, vl = lam_a.tolist(), v_a.tolist()
        tot, vsum, lmin, vmin = sum(ll), sum(vl), min(ll), min(vl)
    else:
        add, low = np.add.reduce, np.minimum.reduce
        tot, vsum = float(add(lam_a)), float(add(v_a))
        lmin, vmin = float(low(lam_a)), float(low(v_a))
    # a NaN or infinity makes the sum non-finite; then min is taken over finite values only
    if not (abs(tot - 1.0) <= 0.5e-9 * max(1, k) and math.isfinite(vsum)):
        return None
    if not (lmin >= LAM_MIN and vmin >= 0.0):
        return None
    return lam_a, v_a, af, bf, lm


def _joint_small(
    lam: FloatArray, v: FloatArray, a: float, b: float, lt_min: float,
    max_steps: int = _MAX_JOINT,
) -> LtResult | None:
    r"""The joint Newton iteration of :func:`_joint_newton` on Python floats (small K).

    Same iterates and the same acceptance test (after a full step, every
    :math:`|g_k - \nu|` within ``_JOINT_RTOL`` of :math:`s_k^2/x_k^2 + 2\beta_k x_k` and
    :math:`|\sum_k x_k - 1|` within ``_JOINT_RTOL``); the pass that accepts the point also
    accumulates the objective and the dual value. With :math:`\tilde\lambda = x / \sum x`
    (the renormalisation), :math:`\sum_k \lambda_k^2/\tilde\lambda_k = (\sum x)
    \sum_k \lambda_k^2/x_k` and :math:`\sum_k v_k\tilde\lambda_k^2 = \sum_k v_k x_k^2
    / (\sum x)^2`. The multiplier after a Newton step does not depend on the one before:
    :math:`\nu^+ = (1 - \sum_k x_k + \sum_k g_k/g'_k) / \sum_k 1/g'_k`.
    Returns ``None`` where :func:`_joint_newton` would, and also when some :math:`x_k`
    equals the floor (the full path then handles the floor).
    """
    sa = math.sqrt(a)
    lam_l = lam.tolist()
    v_l = v.tolist()
    s = [sa * li for li in lam_l]
    b2 = [2.0 * b * vi for vi in v_l]
    tot = sum(s)
    x = [si / tot for si in s]
    nu = 0.0
    full = False  # the last step was a full Newton step
    tol = _JOINT_RTOL
    # every zip below runs over lists built with K entries (zip(strict=True) would cost a
    # quarter of the loop)
    for it in range(max_steps + 1):
        gs: list[float] = []  # g_k
        invs: list[float] = []  # 1 / g'_k
        g_push, inv_push = gs.append, invs.append
        sinv = sgi = sx = 0.0
        ok = full
        for xi, si, bi in zip(x, s, b2):  # noqa: B905
            q = si / xi
            r2 = q * q
            bx = bi * xi
            g = bx - r2
            if ok and abs(g - nu) > tol * (r2 + bx):
                ok = False
            inv = xi / (r2 + r2 + bx)
            g_push(g)
            inv_push(inv)
            sinv += inv
            sgi += g * inv
            sx += xi
        if ok and abs(sx - 1.0) <= tol:
            if not min(x) > lt_min:
                return None
            chi = var = inner = 0.0
            for xi, si, bi, li, vi in zip(x, s, b2, lam_l, v_l):  # noqa: B905
                chi += li * li / xi
                var += vi * xi * xi
                inner += si / xi * si + 0.5 * bi * xi * xi - nu * xi  # as lt_dual_value
            t_chi = a * (sx * chi - 1.0)
            t_var = b * (var / (sx * sx))
            obj = t_chi + t_var
            # x solves g_k(x_k) = nu to rounding: it is the inner minimiser of d(nu)
            dual = nu - a + inner
            lt = np.array(x) * (1.0 / sx)
            return _converged(lt, obj, t_chi, t_var, nu, dual, it, _MSG_JOINT)
        if it == max_steps:
            break
        nu_new = (1.0 - sx + sgi) / sinv
        xn = [xi + (nu_new - g) * inv for xi, g, inv in zip(x, gs, invs)]  # noqa: B905
        if min(xn) > 0:
            x, nu, full = xn, nu_new, True
        else:  # damp a step that would leave x > 0, as _joint_newton does
            dx = [(nu_new - g) * inv for g, inv in zip(gs, invs)]  # noqa: B905
            step = 0.5 * min(-xi / di for xi, di in zip(x, dx) if di < 0)  # noqa: B905
            x = [xi + step * di for xi, di in zip(x, dx)]  # noqa: B905
            nu += step * (nu_new - nu)
            full = False
    return None


def _joint_jit(
    lam: FloatArray, v: FloatArray, a: float, b: float, lt_min: float,
    max_steps: int = _MAX_JOINT,
) -> LtResult | None:
    """:func:`_joint_small` compiled (numba, see :mod:`convex._jit`): same iterates, test and
    certificate. ``None`` where :func:`_joint_small` would return it."""
    from ._jit import joint_kernel

    kernel = joint_kernel()
    if kernel is None:  # pragma: no cover - callers check availability first
        return None
    s = math.sqrt(a) * lam
    b2 = (2.0 * b) * v
    out, x = kernel(s, b2, lam, v, float(lt_min), _JOINT_RTOL, max_steps)
    if out[0] != 0.0:
        return None
    it, nu, sx, chi, var, inner = (float(t) for t in out[1:])
    t_chi = a * (sx * chi - 1.0)
    t_var = b * (var / (sx * sx))
    obj = t_chi + t_var
    dual = nu - a + inner
    return _converged(x * (1.0 / sx), obj, t_chi, t_var, nu, dual, int(it), _MSG_JOINT)


def _jit_available() -> bool:
    from ._jit import joint_kernel

    return joint_kernel() is not None


def _joint_vec(
    lam: FloatArray, v: FloatArray, a: float, b: float, lt_min: float,
    max_steps: int = _MAX_JOINT,
) -> LtResult | None:
    """:func:`_joint_small` on numpy arrays (any K): the same iterates and tests.

    The residual test runs once the multiplier has settled (its last change below 1e-6 of
    :math:`|\\nu| + a`, the scale of :math:`g_k` near :math:`x = \\lambda`): earlier it
    cannot pass, since Newton's error is then still about the square of that change.
    Near the solution the multiplier stops changing, so the test always runs eventually.
    """
    s = math.sqrt(a) * lam
    b2 = (2.0 * b) * v
    x = s / s.sum()
    nu = 0.0
    settled = False  # the last step was a full Newton step and nu moved by < 1e-6
    tol = _JOINT_RTOL
    # the ufuncs' own reduce and np.dot: x.sum(), x.min() and @ add ~0.3 us each of Python
    # wrapping, a tenth of a step at K = 100
    add, dot, low = np.add.reduce, np.dot, np.minimum.reduce
    for it in range(max_steps + 1):
        q = s / x
        r2 = np.multiply(q, q, out=q)
        bx = b2 * x
        g = bx - r2
        sx = float(add(x))
        if settled and abs(sx - 1.0) <= tol:
            d = r2 + bx
            d *= tol
            if bool((np.abs(g - nu) <= d).all()):
                if not float(x.min()) > lt_min:
                    return None
                lt = x * (1.0 / sx)
                t_chi = a * (float((lam * lam / lt).sum()) - 1.0)
                t_var = b * float(v @ (lt * lt))
                obj = t_chi + t_var
                # x solves g_k(x_k) = nu to rounding: the inner minimiser of d(nu). The
                # arithmetic of lt_dual_value (every s_k > 0 here): nu - a and the sum of the inner
                # terms cancel to the objective (1e-5 of a at K = 10^6), so the terms are
                # combined per exit before one pairwise sum
                inner = s / x
                inner *= s
                inner += (b * v) * (x * x)
                inner -= nu * x
                dual = float(nu - a + add(inner))
                return _converged(lt, obj, t_chi, t_var, nu, dual, it, _MSG_JOINT)
        if it == max_steps:
            break
        den = r2 + r2
        den += bx
        inv = np.divide(x, den, out=den)
        nu_new = (1.0 - sx + float(dot(g, inv))) / float(add(inv))
        dx = np.subtract(nu_new, g, out=g)
        dx *= inv
        xn = x + dx
        if float(low(xn)) > 0:
            settled = abs(nu_new - nu) <= 1e-6 * (abs(nu_new) + a)
            x, nu = xn, nu_new
        else:  # damp a step that would leave x > 0, as _joint_newton does
            neg = dx < 0
            step = 0.5 * float(np.min(-x[neg] / dx[neg]))
            x = x + step * dx
            nu += step * (nu_new - nu)
            settled = False
    return None


def _from_joint_newton(
    lam: FloatArray, v: FloatArray, a: float, b: float, lt_min: float, s: FloatArray,
    beta: FloatArray, x: FloatArray, nu: float, nit: int,
) -> LtResult:
    """The result at the point of :func:`_joint_newton`, with its certificate."""
    lt = renormalise(x, lt_min)
    obj, t_chi, t_var = lt_terms(lam, v, a, b, lt)
    # x solves g_k(x_k) = nu to rounding: it is the inner minimiser of d(nu)
    dual = lt_dual_value(nu, x, s, beta, a, 0, lt_min)
    return _converged(lt, obj, t_chi, t_var, nu, dual, nit, _MSG_JOINT)


def _newton_on_multiplier(
    al: FloatArray, be: FloatArray, lt_min: float, target: float, unbounded_at_0: bool,
    max_iter: int,
) -> tuple[FloatArray, float, int, bool]:
    r"""Safeguarded Newton on :math:`S(\nu) = \sum_k x_k(\nu) = ` ``target`` (non-free exits).

    Returns the weights :math:`x(\nu)`, :math:`\nu`, the steps taken and whether the
    stopping test was met (``False``: ``max_iter`` steps without it).
    """
    # g_k(1) gives x_k(nu) >= 1 for that k, hence S(nu) >= 1: a start right of the root
    nu = float(np.min(-(al**2) + 2 * be))
    if nu >= 0 and unbounded_at_0:
        # g_k(1) = -s_k^2 rounded to -0: x_k(nu) = s_k / sqrt(-nu) >= 1 at nu = -s_k^2
        nu = -max(float(np.max(np.where(be == 0, al, 0.0))) ** 2,
                  np.finfo(float).smallest_normal)
    x, dx = x_of_nu(nu, al, be, lt_min)
    for iters in range(1, max_iter + 1):
        s = float(x.sum())
        ds = float(dx.sum())
        if s - target <= _S_RTOL * target or ds <= 0:
            return x, nu, iters, True
        nu_new = nu - (s - target) / ds
        if not nu_new < nu:  # no progress left at double precision
            return x, nu, iters, True
        nu = nu_new
        x, dx = x_of_nu(nu, al, be, lt_min)
    # the point of the last step is tested as every other one
    done = float(x.sum()) - target <= _S_RTOL * target or float(dx.sum()) <= 0
    if not done:
        _log.warning("optimal_lt: Newton on the multiplier hit %d steps", max_iter)
    return x, nu, max_iter, done


def _by_multiplier(
    sa: FloatArray, beta: FloatArray, lt_min: float, max_iter: int
) -> tuple[FloatArray, float, int, bool]:
    """Weights, multiplier, steps and convergence of the general (safeguarded) path."""
    k = sa.size
    free = (sa == 0) & (beta == 0)
    act = ~free
    al, be = sa[act], beta[act]
    n_free = int(free.sum())
    if not act.any() or lt_min * k >= 1.0:
        nu = 0.0
        if act.any():  # every weight at the floor 1/K: any nu below all g_k(1/K) is dual feasible
            nu = float(np.min(-((al * k) ** 2) + 2 * be / k))
        return np.full(k, 1.0 / k), nu, 0, True
    lt = np.full(k, lt_min)
    # some exit with alpha > 0, beta = 0 wants unbounded mass at nu = 0: S(0-) = infinity
    unbounded_at_0 = bool(((al > 0) & (be == 0)).any())
    xs = None if unbounded_at_0 or not n_free else x_of_nu(0.0, al, be, lt_min)[0]
    if xs is not None and xs.sum() + n_free * lt_min <= 1.0:
        # the exits that matter want less than the whole mass: the rest goes to free exits
        lt[act] = xs
        lt[free] = lt_min + (1.0 - xs.sum() - n_free * lt_min) / n_free
        return lt, 0.0, 0, True
    x, nu, iters, done = _newton_on_multiplier(al, be, lt_min, 1.0 - n_free * lt_min,
                                               unbounded_at_0, max_iter)
    lt[act] = x
    return lt, nu, iters, done


def _fast(
    lam: FloatArray, v: FloatArray, a: float, b: float, lt_min: float,
    max_iter: int = _MAX_OUTER,
) -> LtResult:
    """The fast solver on validated inputs: joint Newton, else the safeguarded iteration."""
    sa = np.sqrt(a) * lam
    beta = b * v
    if lt_min * lam.size < 1.0 and bool((sa > 0).all()):
        joint = _joint_newton(sa, beta, lt_min, min(max_iter, _MAX_JOINT))
        if joint is not None:
            return _from_joint_newton(lam, v, a, b, lt_min, sa, beta, *joint)
    lt, nu, iters, done = _by_multiplier(sa, beta, lt_min, max_iter)
    lt = renormalise(lt, lt_min)
    obj, t_chi, t_var = lt_terms(lam, v, a, b, lt)
    dual = lt_dual_bound(lam, v, a, b, lt_min, nu)
    if done:
        return _converged(lt, obj, t_chi, t_var, nu, dual, iters,
                          _MSG_MULTIPLIER if iters else _MSG_CLOSED)
    return LtResult(
        lt=lt, fun=obj, terms={"chi2": t_chi, "variance": t_var}, nu=nu, lower_bound=dual,
        gap=obj - dual, success=False, status=MAX_ITER,
        message=f"iteration limit reached: max_iter = {max_iter} Newton steps on the "
                "multiplier",
        nit=iters, method="fast",
    )


def optimal_lt(
    lam: ArrayLike,
    v: ArrayLike,
    a: float,
    b: float,
    method: str = "fast",
    lt_min: float = 0.0,
    *,
    max_iter: int = _MAX_OUTER,
) -> LtResult:
    r"""Training weights minimising :math:`a\chi^2(\lambda\|\tilde\lambda) + b\,V(\tilde\lambda)`.

    Implements the :math:`q`-fixed design problem of ``docs/theory.md``, Section 5:

    .. math::
        \min_{\tilde\lambda \in \Delta_K,\ \tilde\lambda \ge \tilde\lambda_{\min}}
        a\Bigl(\sum_k \frac{\lambda_k^2}{\tilde\lambda_k} - 1\Bigr)
        + b \sum_k v_k \tilde\lambda_k^2 .

    Limits: :math:`b = 0` gives :math:`\tilde\lambda = \lambda` (Serving Rate); :math:`a = 0`
    gives :math:`\tilde\lambda \propto 1/v` (inverse variance).

    Parameters
    ----------
    lam : array, shape (K,)
        Serving shares (on the simplex).
    v : array, shape (K,)
        Variance coefficients :math:`v_k \ge 0` (see :func:`cistheory.variance_coefficients`).
    a, b : float
        Weights of :math:`\chi^2` and :math:`V` (``>= 0``, not both 0).
    method : {"fast", "cvxpy"}
        The vectorised Newton solver (any K, no loop over exits) or the cvxpy program
        (CLARABEL, SCS as fallback), built once per K and re-solved.
    lt_min : float
        Floor on every weight (``K * lt_min <= 1``).
    max_iter : int
        Fast path: the most Newton steps of the iteration that runs (the joint Newton on
        the KKT system takes at most ``min(max_iter, 30)``, then falls back to Newton on the
        multiplier, which takes at most ``max_iter``). A result that stops on the limit
        has ``success`` False and ``status`` ``"max_iter"``. The cvxpy path has its
        solvers' own limits (a solver that stops early raises :class:`convex.SolverError`).

    Returns
    -------
    LtResult
        Weights (``lt``, also ``x``), objective ``fun`` and its terms, multiplier ``nu`` and
        a certified ``lower_bound`` and ``gap`` (:mod:`convex.results`).

    Raises
    ------
    CISInputError
        Bad ``lam`` (not on the simplex), ``v`` (negative, wrong length), ``a``, ``b``,
        ``lt_min`` or ``max_iter``.

    Examples
    --------
    >>> r = optimal_lt([0.8, 0.15, 0.05], [1.0, 1.0, 1.0], a=1.0, b=0.0)
    >>> r.lt.round(6).tolist(), r.success, r.status
    ([0.8, 0.15, 0.05], True, 'optimal')
    >>> optimal_lt([0.5, 0.5], [1.0, 3.0], a=0.0, b=1.0).x.round(6).tolist()
    [0.75, 0.25]
    """
    max_iter = check_max_iter(max_iter)
    if method == "fast":
        # common case first: lean checks, then the joint Newton iteration on the KKT system
        lean = _lean_inputs(lam, v, a, b, lt_min)
        if lean is not None:
            if lean[0].size <= _JIT_MAX_K and _jit_available():
                solver = _joint_jit
            else:
                solver = _joint_small if lean[0].size <= _SMALL_K else _joint_vec
            res = solver(*lean, min(max_iter, _MAX_JOINT))
            if res is not None:
                return res
    lam_a, v_a, af, bf, lm = check_lt_inputs(lam, v, a, b, lt_min)
    if method == "fast":
        return _fast(lam_a, v_a, af, bf, lm, max_iter)
    if method == "cvxpy":
        from .cvx import solve_lt_cvxpy

        return solve_lt_cvxpy(lam_a, v_a, af, bf, lm)
    raise CISInputError("method", method, "use 'fast' or 'cvxpy'")
