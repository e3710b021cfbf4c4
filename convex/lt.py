r"""Bound-optimal training weights for fixed participation (``docs/theory.md``, Section 5).

The problem, for serving shares :math:`\lambda` on the simplex, variance coefficients
:math:`v_k \ge 0` (:math:`V = \sum_k v_k \tilde\lambda_k^2`, Lemma 2) and weights
:math:`a, b \ge 0`:

.. math::
    \min_{x \in \Delta_K,\; x \ge x_{\min}}\;
    f(x) = a\,\chi^2(\lambda \,\|\, x) + b \sum_k v_k x_k^2,
    \qquad \chi^2(\lambda \,\|\, x) = \sum_k \frac{\lambda_k^2}{x_k} - 1 .

With :math:`\alpha_k = a\lambda_k^2`, :math:`\beta_k = b v_k` the stationarity condition of
coordinate :math:`k` (multiplier :math:`\nu` of :math:`\sum_k x_k = 1`) is

.. math:: g_k(x_k) = -\frac{\alpha_k}{x_k^2} + 2\beta_k x_k = \nu ,

and :math:`g_k` is increasing and concave on :math:`(0, \infty)`. Its inverse
:math:`x_k(\nu) = \max(x_{\min}, g_k^{-1}(\nu))` is increasing and convex in :math:`\nu`, so
:math:`S(\nu) = \sum_k x_k(\nu)` is convex increasing and Newton's method on
:math:`S(\nu) = 1` started right of the root never overshoots it. Each :math:`g_k^{-1}(\nu)`
is the positive root of a cubic, in closed form (Cardano's formula or its trigonometric
form, written without cancellation) polished by one Newton step; everything is vectorised
over :math:`k`.

Exits with :math:`\alpha_k = 0` have :math:`x_k(\nu) = \max(x_{\min}, \nu / (2\beta_k))`;
exits with :math:`\alpha_k = \beta_k = 0` do not enter the objective ("free" exits): they get
the floor, plus an equal share of any mass the other exits do not want (the minimiser is then
not unique).

Certificate: for any :math:`\nu` the Lagrangian dual

.. math::
    d(\nu) = \nu - a + \sum_k \min_{x \ge x_{\min}}
             \Bigl(\frac{\alpha_k}{x} + \beta_k x^2 - \nu x\Bigr)

is a lower bound on the optimum; its inner minimiser is :math:`x_k(\nu)` itself, so the gap
:math:`f(\hat x) - d(\nu)` certifies the returned point.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from cistheory._arrays import FloatArray, as_float_array, as_simplex
from cistheory.errors import CISInputError

__all__ = ["LtResult", "lt_objective", "optimal_lt"]

_log = logging.getLogger(__name__)

# Newton on the multiplier converges quadratically; 200 steps is far above what any test or
# benchmark needs (< 30) and only guards against a non-terminating loop.
_MAX_OUTER = 200
# Smallest positive serving share accepted: a lam_k below 1e-100 would put a lam_k^2 and
# the multiplier near the underflow threshold of double precision (use 0 instead).
_LAM_MIN = 1e-100
# Relative accuracy of S(nu) = 1: a sum of K roots each accurate to a few ulps (closed
# form plus one Newton step; see _roots).
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


@dataclass(frozen=True)
class LtResult:
    r"""Minimiser of :math:`a\chi^2(\lambda\|x) + b\sum_k v_k x_k^2` on the simplex.

    Attributes
    ----------
    lt : ndarray, shape (K,)
        The weights :math:`\tilde\lambda` (on the simplex, at least the floor).
    objective : float
        :math:`a\chi^2 + b V` at ``lt``.
    terms : dict
        ``{"chi2": a * chi2, "variance": b * sum v lt^2}``.
    multiplier : float
        :math:`\nu`, multiplier of :math:`\sum_k x_k = 1` (:math:`\nabla f = \nu` off the floor).
    dual : float
        The dual value :math:`d(\nu)`, a lower bound on the optimum.
    gap : float
        ``objective - dual`` (a certified duality gap, up to rounding).
    method : str
        ``"fast"`` or ``"cvxpy"``.
    status : str
        ``"optimal"`` (fast path), or the cvxpy solver's status.
    iterations : int
        Newton steps on the multiplier (fast path) or solver iterations (cvxpy, -1 if unknown).
    """

    lt: FloatArray
    objective: float
    terms: dict[str, float]
    multiplier: float
    dual: float
    gap: float
    method: str
    status: str
    iterations: int


def _check_inputs(
    lam: ArrayLike, v: ArrayLike, a: float, b: float, lt_min: float
) -> tuple[FloatArray, FloatArray, float, float, float]:
    lam_a = as_simplex(lam, "lam")
    v_a = as_float_array(v, "v", ndim=1, nonneg=True)
    if v_a.size != lam_a.size:
        raise CISInputError("v", v_a.tolist()[:10], f"expected {lam_a.size} values, one per exit")
    for name, val in (("a", a), ("b", b), ("lt_min", lt_min)):
        if not (np.isfinite(val) and val >= 0):
            raise CISInputError(name, val, "must be a finite number >= 0")
    if not a + b > 0:
        raise CISInputError("a, b", (a, b), "at least one of a and b must be > 0")
    tiny = (lam_a > 0) & (lam_a < _LAM_MIN)
    if tiny.any():
        j = int(np.argmax(tiny))
        raise CISInputError(f"lam[{j + 1}]", float(lam_a[j]),
                            f"serving shares must be 0 or >= {_LAM_MIN} (double-precision range)")
    k = lam_a.size
    if lt_min * k > 1 + 1e-12:
        raise CISInputError("lt_min", lt_min, f"K * lt_min = {lt_min * k!r} > 1: no feasible lt")
    return lam_a, v_a, float(a), float(b), float(lt_min)


def lt_objective(lam: ArrayLike, v: ArrayLike, a: float, b: float, lt: ArrayLike) -> float:
    r"""The objective :math:`a(\sum_k \lambda_k^2/x_k - 1) + b\sum_k v_k x_k^2` at ``lt``.

    Raises
    ------
    CISInputError
        If ``lt`` is not on the simplex or is zero where :math:`\lambda > 0`.

    Examples
    --------
    >>> lt_objective([0.5, 0.5], [1.0, 1.0], 1.0, 1.0, [0.5, 0.5])
    0.5
    """
    lam_a = as_simplex(lam, "lam")
    x = as_simplex(lt, "lt")
    v_a = as_float_array(v, "v", ndim=1, nonneg=True)
    return _objective(lam_a, v_a, float(a), float(b), x)[0]


def _objective(
    lam: FloatArray, v: FloatArray, a: float, b: float, x: FloatArray
) -> tuple[float, float, float]:
    need = lam > 0
    if (x[need] <= 0).any():
        k = int(np.flatnonzero(need & (x <= 0))[0])
        raise CISInputError(f"lt[{k + 1}]", float(x[k]), "lt must be > 0 where lambda > 0")
    safe = np.where(need, x, 1.0)
    chi2 = float(np.sum(np.where(need, lam**2 / safe, 0.0)) - 1.0)
    var = float(np.sum(v * x**2))
    return a * chi2 + b * var, a * chi2, b * var


def _renormalise(x: FloatArray, lt_min: float) -> FloatArray:
    """Scale the entries above the floor so that the sum is 1 (removes ~1e-15 round-off)."""
    x = np.maximum(x, lt_min)
    up = x > lt_min
    mass = float(x[up].sum())
    if mass > 0:
        x = x.copy()
        x[up] *= (1.0 - lt_min * float((~up).sum())) / mass
    return x


def _roots(nu: float, s: FloatArray, beta: FloatArray) -> FloatArray:
    r"""Positive roots of :math:`-s^2/x^2 + 2\beta x = \nu` for :math:`s > 0`, closed form.

    The cubic :math:`2\beta x^3 - \nu x^2 - s^2 = 0` has one positive root, written without
    cancellation in two regimes (:math:`s = \sqrt a\,\lambda`, so a tiny :math:`\lambda_k`
    whose square underflows still gets its root):

    * :math:`\kappa = 2\beta s / |\nu|^{3/2} < 2/\sqrt{27}` (then :math:`\nu < 0`): with
      :math:`x = s / (\sqrt{|\nu|}\,u)`, :math:`u^3 - u = \kappa`, whose root is
      :math:`u = \tfrac{2}{\sqrt3}\cos(\tfrac13\arccos(\kappa\sqrt{27}/2))`;
    * otherwise Cardano's formula with all terms positive: with :math:`c = s^2/(2\beta)`,
      :math:`h = \nu/(6\beta)`, :math:`t = h/c^{1/3}`,
      :math:`x = c^{1/3}(t + z + t^2/z)`,
      :math:`z = (t^3 + \tfrac12 + (t^3 + \tfrac14)^{1/2})^{1/3}` when :math:`h \le c^{1/3}`,
      and :math:`x = h(1 + z + 1/z)`, :math:`z = (1 + r/2 + (r(1 + r/4))^{1/2})^{1/3}`,
      :math:`r = c/h^3`, when :math:`h > c^{1/3}`.

    One Newton step (monotone for the concave left side) polishes the rounding of the closed
    form; :math:`\beta = 0` gives :math:`x = s/\sqrt{-\nu}` exactly.
    """
    if nu >= 0 and not (beta > 0).all():  # beta = 0 and nu >= 0: no finite root
        raise FloatingPointError("no root")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cc = np.cbrt(s) ** 2 / np.cbrt(2 * beta)  # c^(1/3), c = s^2 / (2 beta)
        h = nu / (6 * beta)
        if nu < 0:
            sq = np.sqrt(-nu)
            kappa = 2 * beta * (s / sq) / -nu
            trig = kappa < 2 / np.sqrt(27.0)
            u = 2 / np.sqrt(3.0) * np.cos(np.arccos(np.minimum(kappa * np.sqrt(27.0) / 2, 1.0)) / 3)
            x_trig = s / (sq * u)
        else:
            trig = np.zeros(s.shape, dtype=bool)
            x_trig = s
        t = h / cc
        t3 = t**3
        z1 = np.cbrt(t3 + 0.5 + np.sqrt(np.maximum(t3 + 0.25, 0.0)))
        x_small_h = cc * (t + z1 + t * t / z1)
        r = (cc / h) ** 3
        z2 = np.cbrt(1 + r / 2 + np.sqrt(r * (1 + r / 4)))
        x_big_h = h * (1 + z2 + 1 / z2)
        x = np.where(trig, x_trig, np.where(h > cc, x_big_h, x_small_h))
        if nu < 0:
            x = np.where(beta > 0, x, s / sq)
        # Newton step (nu - g)/g', written as x (...)/(...) so that a subnormal x does not
        # overflow; skipped where beta = 0 (exact) or the step is not finite
        r2 = (s / x) ** 2
        step = x * (nu + r2 - 2 * beta * x) / (2 * r2 + 2 * beta * x)
        x = np.where(np.isfinite(step) & (beta > 0), x + step, x)
    return np.asarray(x, dtype=np.float64)


def _x_of_nu(
    nu: float, s: FloatArray, beta: FloatArray, lt_min: float
) -> tuple[FloatArray, FloatArray]:
    """x_k(nu) for the non-free exits and dx_k/dnu."""
    x = np.empty_like(s)
    dx = np.zeros_like(s)
    pos = s > 0
    if pos.any():
        r = _roots(nu, s[pos], beta[pos])
        x[pos] = r
        dx[pos] = r / (2 * (s[pos] / r) ** 2 + 2 * beta[pos] * r)
    lin = ~pos
    if lin.any():
        x[lin] = max(nu, 0.0) / (2 * beta[lin])
        dx[lin] = 1.0 / (2 * beta[lin]) if nu > 0 else 0.0
    floor = x < lt_min
    x[floor] = lt_min
    dx[floor] = 0.0
    return x, dx


def _dual(nu: float, x: FloatArray, s: FloatArray, beta: FloatArray, a: float,
          n_free: int, lt_min: float) -> float:
    pos = s > 0
    inner = np.where(pos, s / np.where(pos, x, 1.0) * s, 0.0) + beta * x**2 - nu * x
    # a free exit contributes min_{x >= lt_min} -nu x: -nu lt_min if nu <= 0, else -infinity
    free = 0.0 if n_free == 0 else (-nu * lt_min * n_free if nu <= 0 else -np.inf)
    return float(nu - a + np.sum(inner) + free)


def _joint_newton(
    s: FloatArray, beta: FloatArray, lt_min: float
) -> tuple[FloatArray, float, int] | None:
    r"""Newton's method on the whole KKT system :math:`g_k(x_k) = \nu`, :math:`\sum_k x_k = 1`.

    For problems with every :math:`\lambda_k > 0` (no exit at 0) this needs a handful of
    vector operations per step instead of a root solve per step. It starts from
    :math:`x = \lambda` (the :math:`b = 0` solution) and damps a step that would leave
    :math:`x > 0`. Returns ``None`` (the caller then runs the safeguarded multiplier
    iteration) unless it converges to rounding level with every :math:`x_k \ge x_{\min}`.
    """
    x = s / s.sum()
    r2 = (s / x) ** 2
    g = 2 * beta * x - r2
    gp = (2 * r2 + 2 * beta * x) / x
    nu = float(x @ g)
    for it in range(1, _MAX_JOINT + 1):
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
    """Inputs of the common case (every lam_k >= _LAM_MIN, a > 0, K lt_min < 1), else None.

    Accepts a strict subset of what :func:`_check_inputs` accepts, at a fraction of its
    cost: ``None`` sends the caller to the full validation, which raises the
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
    if not (lmin >= _LAM_MIN and vmin >= 0.0):
        return None
    return lam_a, v_a, af, bf, lm


def _joint_small(
    lam: FloatArray, v: FloatArray, a: float, b: float, lt_min: float
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
    for it in range(_MAX_JOINT + 1):
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
                inner += si / xi * si + 0.5 * bi * xi * xi - nu * xi  # as _dual
            t_chi = a * (sx * chi - 1.0)
            t_var = b * (var / (sx * sx))
            obj = t_chi + t_var
            # x solves g_k(x_k) = nu to rounding: it is the inner minimiser of d(nu)
            dual = nu - a + inner
            lt = np.array(x) * (1.0 / sx)
            return LtResult(lt=lt, objective=obj, terms={"chi2": t_chi, "variance": t_var},
                            multiplier=nu, dual=dual, gap=obj - dual, method="fast",
                            status="optimal", iterations=it)
        if it == _MAX_JOINT:
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
    lam: FloatArray, v: FloatArray, a: float, b: float, lt_min: float
) -> LtResult | None:
    """:func:`_joint_small` compiled (numba, see :mod:`convex._jit`): same iterates, test and
    certificate. ``None`` where :func:`_joint_small` would return it."""
    from ._jit import joint_kernel

    kernel = joint_kernel()
    if kernel is None:  # pragma: no cover - callers check availability first
        return None
    s = math.sqrt(a) * lam
    b2 = (2.0 * b) * v
    out, x = kernel(s, b2, lam, v, float(lt_min), _JOINT_RTOL, _MAX_JOINT)
    if out[0] != 0.0:
        return None
    it, nu, sx, chi, var, inner = (float(t) for t in out[1:])
    t_chi = a * (sx * chi - 1.0)
    t_var = b * (var / (sx * sx))
    obj = t_chi + t_var
    dual = nu - a + inner
    return LtResult(lt=x * (1.0 / sx), objective=obj, terms={"chi2": t_chi, "variance": t_var},
                    multiplier=nu, dual=dual, gap=obj - dual, method="fast", status="optimal",
                    iterations=int(it))


def _jit_available() -> bool:
    from ._jit import joint_kernel

    return joint_kernel() is not None


def _joint_vec(
    lam: FloatArray, v: FloatArray, a: float, b: float, lt_min: float
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
    for it in range(_MAX_JOINT + 1):
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
                # arithmetic of _dual (every s_k > 0 here): nu - a and the sum of the inner
                # terms cancel to the objective (1e-5 of a at K = 10^6), so the terms are
                # combined per exit before one pairwise sum
                inner = s / x
                inner *= s
                inner += (b * v) * (x * x)
                inner -= nu * x
                dual = float(nu - a + add(inner))
                return LtResult(lt=lt, objective=obj, terms={"chi2": t_chi, "variance": t_var},
                                multiplier=nu, dual=dual, gap=obj - dual, method="fast",
                                status="optimal", iterations=it)
        if it == _MAX_JOINT:
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

def _fast(lam: FloatArray, v: FloatArray, a: float, b: float, lt_min: float) -> LtResult:
    k = lam.size
    sa = np.sqrt(a) * lam
    beta = b * v
    free = (sa == 0) & (beta == 0)
    act = ~free
    al, be = sa[act], beta[act]
    n_free = int(free.sum())
    lt = np.full(k, lt_min)
    iters = 0
    nu = 0.0
    # some exit with alpha > 0, beta = 0 wants unbounded mass at nu = 0: S(0-) = infinity
    unbounded_at_0 = bool(((al > 0) & (be == 0)).any())
    joint = None
    if lt_min * k < 1.0 and bool((sa > 0).all()):
        joint = _joint_newton(sa, beta, lt_min)
    if joint is not None:
        x_j, nu, iters = joint
        lt = _renormalise(x_j, lt_min)
        obj, t_chi, t_var = _objective(lam, v, a, b, lt)
        # x_j solves g_k(x_k) = nu to rounding: it is the inner minimiser of d(nu)
        dual = _dual(nu, x_j, sa, beta, a, 0, lt_min)
        return LtResult(lt=lt, objective=obj, terms={"chi2": t_chi, "variance": t_var},
                        multiplier=nu, dual=dual, gap=obj - dual, method="fast",
                        status="optimal", iterations=iters)
    if not act.any() or lt_min * k >= 1.0:
        lt = np.full(k, 1.0 / k)
        if act.any():  # every weight at the floor 1/K: any nu below all g_k(1/K) is dual feasible
            nu = float(np.min(-((al * k) ** 2) + 2 * be / k))
    else:
        xs = None if unbounded_at_0 or not n_free else _x_of_nu(0.0, al, be, lt_min)[0]
        if xs is not None and xs.sum() + n_free * lt_min <= 1.0:
            # the exits that matter want less than the whole mass: the rest goes to free exits
            lt[act] = xs
            lt[free] = lt_min + (1.0 - xs.sum() - n_free * lt_min) / n_free
        else:
            target = 1.0 - n_free * lt_min
            # g_k(1) gives x_k(nu) >= 1 for that k, hence S(nu) >= 1: a start right of the root
            nu = float(np.min(-(al**2) + 2 * be))
            if nu >= 0 and unbounded_at_0:
                # g_k(1) = -s_k^2 rounded to -0: x_k(nu) = s_k / sqrt(-nu) >= 1 at nu = -s_k^2
                nu = -max(float(np.max(np.where(be == 0, al, 0.0))) ** 2,
                          np.finfo(float).smallest_normal)
            x, dx = _x_of_nu(nu, al, be, lt_min)
            for iters in range(1, _MAX_OUTER + 1):  # noqa: B007 - iters is reported
                s = float(x.sum())
                ds = float(dx.sum())
                if s - target <= _S_RTOL * target or ds <= 0:
                    break
                nu_new = nu - (s - target) / ds
                if not nu_new < nu:  # no progress left at double precision
                    break
                nu = nu_new
                x, dx = _x_of_nu(nu, al, be, lt_min)
            else:
                _log.warning("optimal_lt: Newton on the multiplier hit %d steps", _MAX_OUTER)
            lt[act] = x
    lt = _renormalise(lt, lt_min)
    obj, t_chi, t_var = _objective(lam, v, a, b, lt)
    dual = lt_dual_bound(lam, v, a, b, lt_min, nu)
    return LtResult(
        lt=lt,
        objective=obj,
        terms={"chi2": t_chi, "variance": t_var},
        multiplier=nu,
        dual=dual,
        gap=obj - dual,
        method="fast",
        status="optimal",
        iterations=iters,
    )


def optimal_lt(
    lam: ArrayLike,
    v: ArrayLike,
    a: float,
    b: float,
    method: str = "fast",
    lt_min: float = 0.0,
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

    Returns
    -------
    LtResult
        Weights, objective and its terms, multiplier and a certified duality gap.

    Raises
    ------
    CISInputError
        Bad ``lam`` (not on the simplex), ``v`` (negative, wrong length), ``a``, ``b`` or
        ``lt_min``.

    Examples
    --------
    >>> r = optimal_lt([0.8, 0.15, 0.05], [1.0, 1.0, 1.0], a=1.0, b=0.0)
    >>> r.lt.round(6).tolist()
    [0.8, 0.15, 0.05]
    >>> optimal_lt([0.5, 0.5], [1.0, 3.0], a=0.0, b=1.0).lt.round(6).tolist()
    [0.75, 0.25]
    """
    if method == "fast":
        # common case first: lean checks, then the joint Newton iteration on the KKT system
        lean = _lean_inputs(lam, v, a, b, lt_min)
        if lean is not None:
            if lean[0].size <= _JIT_MAX_K and _jit_available():
                solver = _joint_jit
            else:
                solver = _joint_small if lean[0].size <= _SMALL_K else _joint_vec
            res = solver(*lean)
            if res is not None:
                return res
    lam_a, v_a, af, bf, lm = _check_inputs(lam, v, a, b, lt_min)
    if method == "fast":
        return _fast(lam_a, v_a, af, bf, lm)
    if method == "cvxpy":
        from .cvx import solve_lt_cvxpy

        return solve_lt_cvxpy(lam_a, v_a, af, bf, lm)
    raise CISInputError("method", method, "use 'fast' or 'cvxpy'")


def lt_dual_bound(
    lam: FloatArray, v: FloatArray, a: float, b: float, lt_min: float, nu: float
) -> float:
    """Lagrangian dual value d(nu), a lower bound on the optimum for any nu (internal use)."""
    sa = np.sqrt(a) * lam
    beta = b * v
    free = (sa == 0) & (beta == 0)
    act = ~free
    if not act.any():
        return 0.0 if nu <= 0 else -np.inf
    al, be = sa[act], beta[act]
    try:
        x, _ = _x_of_nu(nu, al, be, lt_min)
    except FloatingPointError:
        return -np.inf
    return _dual(nu, x, al, be, a, int(free.sum()), lt_min)
