r"""The weights problem of ``docs/theory.md``, Section 5: objective, inputs, roots and dual.

For serving shares :math:`\lambda` on the simplex, variance coefficients :math:`v_k \ge 0`
(:math:`V = \sum_k v_k \tilde\lambda_k^2`, Lemma 2) and weights :math:`a, b \ge 0`:

.. math::
    \min_{x \in \Delta_K,\; x \ge x_{\min}}\;
    f(x) = a\,\chi^2(\lambda \,\|\, x) + b \sum_k v_k x_k^2,
    \qquad \chi^2(\lambda \,\|\, x) = \sum_k \frac{\lambda_k^2}{x_k} - 1 .

With :math:`s_k = \sqrt a\,\lambda_k` and :math:`\beta_k = b v_k` the stationarity condition of
coordinate :math:`k` (multiplier :math:`\nu` of :math:`\sum_k x_k = 1`) is

.. math:: g_k(x_k) = -\frac{s_k^2}{x_k^2} + 2\beta_k x_k = \nu ,

and :math:`g_k` is increasing and concave on :math:`(0, \infty)`. Its inverse
:math:`x_k(\nu) = \max(x_{\min}, g_k^{-1}(\nu))` (:func:`x_of_nu`) is increasing and convex in
:math:`\nu`; each :math:`g_k^{-1}(\nu)` is the positive root of a cubic, in closed form
(:func:`cubic_roots`). Exits with :math:`s_k = 0` have
:math:`x_k(\nu) = \max(x_{\min}, \nu / (2\beta_k))`; exits with :math:`s_k = \beta_k = 0` do
not enter the objective ("free" exits).

Certificate: for any :math:`\nu` the Lagrangian dual

.. math::
    d(\nu) = \nu - a + \sum_k \min_{x \ge x_{\min}}
             \Bigl(\frac{s_k^2}{x} + \beta_k x^2 - \nu x\Bigr)

is a lower bound on the optimum (:func:`lt_dual_bound`); its inner minimiser is
:math:`x_k(\nu)` itself, so the gap :math:`f(\hat x) - d(\nu)` certifies a point
:math:`\hat x`.

The fast solver (:mod:`convex.lt`) and the cvxpy program (:mod:`convex.cvx`) share these
pieces.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from cistheory._arrays import FloatArray, as_float_array, as_simplex
from cistheory.errors import CISInputError

__all__ = [
    "LAM_MIN",
    "check_lt_inputs",
    "cubic_roots",
    "lt_dual_bound",
    "lt_dual_value",
    "lt_objective",
    "lt_terms",
    "renormalise",
    "x_of_nu",
]

LAM_MIN = 1e-100
"""Smallest positive serving share accepted: a ``lam_k`` below 1e-100 would put ``lam_k^2``
and the multiplier near the underflow threshold of double precision (use 0 instead)."""


def check_lt_inputs(
    lam: ArrayLike, v: ArrayLike, a: float, b: float, lt_min: float
) -> tuple[FloatArray, FloatArray, float, float, float]:
    """Validate the inputs of the weights problem; return them as arrays and floats.

    Raises
    ------
    CISInputError
        Naming the field: ``lam`` off the simplex or with an entry in
        ``(0, LAM_MIN)``, ``v`` negative or of the wrong length, ``a``, ``b`` or ``lt_min``
        negative or not finite, ``a = b = 0``, or ``K * lt_min > 1``.

    Examples
    --------
    >>> check_lt_inputs([0.5, 0.5], [1, 2], 1, 0, 0.1)[1:]
    (array([1., 2.]), 1.0, 0.0, 0.1)
    """
    lam_a = as_simplex(lam, "lam")
    v_a = as_float_array(v, "v", ndim=1, nonneg=True, axes=("exit",))
    if v_a.size != lam_a.size:
        raise CISInputError("v", v_a.tolist()[:10], f"expected {lam_a.size} values, one per exit")
    for name, val in (("a", a), ("b", b), ("lt_min", lt_min)):
        if not (np.isfinite(val) and val >= 0):
            raise CISInputError(name, val, "must be a finite number >= 0")
    if not a + b > 0:
        raise CISInputError("a, b", (a, b), "at least one of a and b must be > 0")
    tiny = (lam_a > 0) & (lam_a < LAM_MIN)
    if tiny.any():
        j = int(np.argmax(tiny))
        raise CISInputError(f"lam[{j + 1}]", float(lam_a[j]),
                            f"serving shares must be 0 or >= {LAM_MIN} (double-precision range)")
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
    v_a = as_float_array(v, "v", ndim=1, nonneg=True, axes=("exit",))
    return lt_terms(lam_a, v_a, float(a), float(b), x)[0]


def lt_terms(
    lam: FloatArray, v: FloatArray, a: float, b: float, x: FloatArray
) -> tuple[float, float, float]:
    r"""The objective and its two terms :math:`(f, a\chi^2, bV)` at ``x`` (validated arrays).

    Raises
    ------
    CISInputError
        If ``x`` is zero where :math:`\lambda > 0`.

    Examples
    --------
    >>> lt_terms(np.array([0.5, 0.5]), np.ones(2), 1.0, 2.0, np.array([0.5, 0.5]))
    (1.0, 0.0, 1.0)
    """
    need = lam > 0
    if (x[need] <= 0).any():
        k = int(np.flatnonzero(need & (x <= 0))[0])
        raise CISInputError(f"lt[{k + 1}]", float(x[k]), "lt must be > 0 where lambda > 0")
    safe = np.where(need, x, 1.0)
    chi2 = float(np.sum(np.where(need, lam**2 / safe, 0.0)) - 1.0)
    var = float(np.sum(v * x**2))
    return a * chi2 + b * var, a * chi2, b * var


def renormalise(x: FloatArray, lt_min: float) -> FloatArray:
    """Scale the entries above the floor so that the sum is 1 (removes ~1e-15 round-off).

    Examples
    --------
    >>> renormalise(np.array([0.1, 0.3, 0.7]), 0.1).tolist()
    [0.1, 0.27, 0.63]
    """
    x = np.maximum(x, lt_min)
    up = x > lt_min
    mass = float(x[up].sum())
    if mass > 0:
        x = x.copy()
        x[up] *= (1.0 - lt_min * float((~up).sum())) / mass
    return x


def cubic_roots(nu: float, s: FloatArray, beta: FloatArray) -> FloatArray:
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

    Raises
    ------
    FloatingPointError
        If :math:`\nu \ge 0` and some :math:`\beta_k = 0` (no finite root).

    Examples
    --------
    >>> cubic_roots(-4.0, np.array([1.0]), np.array([0.0])).tolist()
    [0.5]
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


def x_of_nu(
    nu: float, s: FloatArray, beta: FloatArray, lt_min: float
) -> tuple[FloatArray, FloatArray]:
    r""":math:`x_k(\nu) = \max(x_{\min}, g_k^{-1}(\nu))` for the non-free exits, and
    :math:`dx_k/d\nu`.

    Examples
    --------
    >>> x, dx = x_of_nu(1.0, np.array([0.0]), np.array([0.5]), 0.0)
    >>> x.tolist(), dx.tolist()
    ([1.0], [1.0])
    """
    x = np.empty_like(s)
    dx = np.zeros_like(s)
    pos = s > 0
    if pos.any():
        r = cubic_roots(nu, s[pos], beta[pos])
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


def lt_dual_value(nu: float, x: FloatArray, s: FloatArray, beta: FloatArray, a: float,
                  n_free: int, lt_min: float) -> float:
    r"""The dual value :math:`d(\nu)` given the inner minimisers ``x`` of the non-free exits.

    ``n_free`` free exits contribute :math:`\min_{x \ge x_{\min}} -\nu x`.

    Examples
    --------
    One exit, :math:`a = 1, b = 0`: the optimum :math:`f(1) = 0` is attained by the dual.

    >>> lt_dual_value(-1.0, np.array([1.0]), np.array([1.0]), np.array([0.0]), 1.0, 0, 0.0)
    0.0
    """
    pos = s > 0
    inner = np.where(pos, s / np.where(pos, x, 1.0) * s, 0.0) + beta * x**2 - nu * x
    # a free exit contributes min_{x >= lt_min} -nu x: -nu lt_min if nu <= 0, else -infinity
    free = 0.0 if n_free == 0 else (-nu * lt_min * n_free if nu <= 0 else -np.inf)
    return float(nu - a + np.sum(inner) + free)


def lt_dual_bound(
    lam: FloatArray, v: FloatArray, a: float, b: float, lt_min: float, nu: float
) -> float:
    r"""The Lagrangian dual value :math:`d(\nu)`: a lower bound on the optimum for any
    :math:`\nu` (``-inf`` where the inner minimum is unbounded).

    Examples
    --------
    >>> lt_dual_bound(np.array([0.5, 0.5]), np.ones(2), 1.0, 0.0, 0.0, -1.0)
    0.0
    """
    sa = np.sqrt(a) * lam
    beta = b * v
    free = (sa == 0) & (beta == 0)
    act = ~free
    if not act.any():
        return 0.0 if nu <= 0 else -np.inf
    al, be = sa[act], beta[act]
    try:
        x, _ = x_of_nu(nu, al, be, lt_min)
    except FloatingPointError:
        return -np.inf
    return lt_dual_value(nu, x, al, be, a, int(free.sum()), lt_min)
