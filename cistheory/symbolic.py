r"""Symbolic (sympy) forms of the bounds of ``docs/theory.md`` and the facts users rely on.

Every numeric bound of :mod:`cistheory.bounds` has a builder here returning a
:class:`SymbolicBound`: the sympy expression, its symbols grouped like the numeric
function's arguments, and :meth:`SymbolicBound.lambdify`, a numpy function called with the
same arguments as the numeric one (the tests check the two agree).

The facts (limits, the rate in :math:`T`, the endpoint minimisers of the bias-variance
trade-off, the stationarity equation) return :class:`SymbolicFact`: a three-valued sympy
verdict (``True``, ``False`` or ``None`` = unproven, which counts as a failure) next to a
numeric residual computed independently at seeded random points.

This module imports sympy; ``import cistheory`` does not import it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from . import bounds as nb
from .errors import CISInputError

__all__ = [
    "SymbolicBound",
    "SymbolicFact",
    "bias_bound_expr",
    "chi2_expr",
    "chi2_simplex_identity",
    "diminishing_rate",
    "endpoint_minimiser",
    "fixed_step_limit",
    "full_bound_expr",
    "generalization_bound_expr",
    "linear_rademacher_expr",
    "sgd_diminishing_bound_expr",
    "sgd_fixed_step_bound_expr",
    "stationarity",
    "training_error_bound_expr",
    "variance_bound_expr",
    "variance_exact_expr",
    "zero_bias_limit",
]

# Seed of the random points at which every fact's numeric residual is evaluated.
RESIDUAL_SEED = 20_240_301
_N_POINTS = 16


def _sym_array(name: str, shape: tuple[int, ...], **assumptions: bool) -> np.ndarray:
    """An object array of symbols ``name_{i,j,...}`` (1-based indices)."""
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        sub = ",".join(str(i + 1) for i in idx)
        out[idx] = sp.Symbol(f"{name}_{{{sub}}}", **assumptions)
    return out


@dataclass(frozen=True)
class SymbolicBound:
    r"""A bound as a sympy expression with its symbols grouped like the numeric arguments.

    Attributes
    ----------
    name : str
        Name of the numeric function in :mod:`cistheory.bounds` it mirrors.
    expr : sympy.Expr or sympy.Matrix
        The expression.
    args : tuple of (str, sympy.Symbol or ndarray of sympy.Symbol)
        Argument name and its symbol (a scalar) or array of symbols (shaped like the numeric
        argument).
    """

    name: str
    expr: Any
    args: tuple[tuple[str, Any], ...]

    @property
    def symbols(self) -> tuple[Any, ...]:
        """All symbols, flattened in argument order (row-major within an array)."""
        out: list[Any] = []
        for _name, sym in self.args:
            if isinstance(sym, np.ndarray):
                out.extend(sym.reshape(-1).tolist())
            else:
                out.append(sym)
        return tuple(out)

    def lambdify(self) -> Callable[..., Any]:
        """A numpy function taking the numeric function's arguments (positional or by name).

        Returns a float for a scalar expression and an ndarray for a matrix.
        """
        fn = sp.lambdify(self.symbols, self.expr, modules="numpy")
        names = [n for n, _s in self.args]
        shapes = [s.shape if isinstance(s, np.ndarray) else None for _n, s in self.args]
        matrix = isinstance(self.expr, sp.MatrixBase)

        def call(*args: Any, **kwargs: Any) -> Any:
            values = dict(zip(names, args, strict=False))
            values.update(kwargs)
            missing = [n for n in names if n not in values]
            if missing:
                raise CISInputError(missing[0], None, f"argument of {self.name} missing")
            flat: list[float] = []
            for n, shape in zip(names, shapes, strict=True):
                if shape is None:
                    flat.append(float(values[n]))
                else:
                    arr = np.asarray(values[n], dtype=np.float64)
                    if arr.shape != shape:
                        raise CISInputError(n, arr.tolist(), f"expected shape {shape}")
                    flat.extend(arr.reshape(-1).tolist())
            out = fn(*flat)
            if matrix:
                return np.asarray(out, dtype=np.float64).reshape(-1)
            return float(out)

        return call


@dataclass(frozen=True)
class SymbolicFact:
    r"""A symbolic statement, sympy's three-valued verdict, and a numeric residual.

    Attributes
    ----------
    name : str
        Short identifier.
    statement : str
        The claim in words.
    lhs, rhs : sympy expressions
        The two sides sympy compared.
    proven : bool or None
        sympy's verdict; ``None`` (sympy cannot decide) is unproven.
    residual : float
        Worst numeric discrepancy found at ``RESIDUAL_SEED`` random admissible points,
        computed without the symbolic result where possible (see each fact).
    tolerance : float
        Largest residual accepted, with its reason in ``reason``.
    reason : str
        Why the tolerance is what it is.
    """

    name: str
    statement: str
    lhs: Any
    rhs: Any
    proven: bool | None
    residual: float
    tolerance: float
    reason: str = field(default="")

    @property
    def passed(self) -> bool:
        """Proven by sympy (``True``, not ``None``) and the numeric residual within tolerance."""
        return self.proven is True and self.residual <= self.tolerance


def _equals(lhs: Any, rhs: Any) -> bool | None:
    """Three-valued equality; matrices compare entrywise (all True -> True, any False ->
    False, otherwise None)."""
    if isinstance(lhs, sp.MatrixBase) or isinstance(rhs, sp.MatrixBase):
        verdicts = [_equals(a, b) for a, b in zip(sp.Matrix(lhs), sp.Matrix(rhs), strict=True)]
        if all(v is True for v in verdicts):
            return True
        if any(v is False for v in verdicts):
            return False
        return None
    diff = sp.simplify(sp.sympify(lhs) - sp.sympify(rhs))
    verdict = diff.equals(0)
    return None if verdict is None else bool(verdict)


# ---------------------------------------------------------------------------------------------
# Bounds
# ---------------------------------------------------------------------------------------------


def _check_dim(n: int, name: str) -> int:
    if int(n) != n or int(n) < 1:
        raise CISInputError(name, n, "must be a positive integer")
    return int(n)


def chi2_expr(K: int) -> SymbolicBound:
    r"""Theorem 1's divergence, :math:`\sum_k (\lambda_k - \tilde\lambda_k)^2/\tilde\lambda_k`.

    Symbols :math:`\lambda_k, \tilde\lambda_k > 0` (full support). Mirrors
    :func:`cistheory.bounds.chi2`.

    Examples
    --------
    >>> f = chi2_expr(2).lambdify()
    >>> round(f([0.5, 0.5], [0.25, 0.75]), 12)
    0.333333333333
    """
    K = _check_dim(K, "K")
    lam = _sym_array("lambda", (K,), positive=True)
    lt = _sym_array(r"\tilde\lambda", (K,), positive=True)
    expr = sp.Add(*[(lam[k] - lt[k]) ** 2 / lt[k] for k in range(K)])
    return SymbolicBound("chi2", expr, (("lam", lam), ("lt", lt)))


_L, _MU, _MU_T, _L_T, _GAMMA_C, _E = sp.symbols("L mu mu_t L_t Gamma e", positive=True)


def bias_bound_expr(K: int) -> SymbolicBound:
    r"""Theorem 1(a): :math:`(L/\mu)\,\chi^2\,\Gamma` (mirrors :func:`cistheory.bias_bound`).

    Examples
    --------
    >>> bias_bound_expr(2).lambdify()([0.5, 0.5], [0.25, 0.75], 2.0, 1.0, 3.0)
    2.0
    """
    c = chi2_expr(K)
    expr = _L / _MU * c.expr * _GAMMA_C
    return SymbolicBound(
        "bias_bound", expr, (*c.args, ("L", _L), ("mu", _MU), ("Gamma", _GAMMA_C))
    )


def training_error_bound_expr(K: int, *, split: bool = False) -> SymbolicBound:
    r"""Theorem 1(b): tight or split form (mirrors :func:`cistheory.training_error_bound`).

    .. math::
        \frac{1}{2\mu}\Big(\sqrt{2L\chi^2\Gamma} + L\sqrt{2e/\mu_t}\Big)^2
        \quad\text{or}\quad \frac{2L}{\mu}\chi^2\Gamma + \frac{2L^2}{\mu\mu_t}e

    Examples
    --------
    >>> f = training_error_bound_expr(2).lambdify()
    >>> round(f([0.5, 0.5], [0.5, 0.5], 2.0, 1.0, 1.0, 1.0, 0.5), 12)
    2.0
    """
    c = chi2_expr(K)
    if split:
        expr = 2 * _L / _MU * c.expr * _GAMMA_C + 2 * _L**2 / (_MU * _MU_T) * _E
    else:
        root = sp.sqrt(2 * _L * c.expr * _GAMMA_C) + _L * sp.sqrt(2 * _E / _MU_T)
        expr = root**2 / (2 * _MU)
    args = (*c.args, ("L", _L), ("mu", _MU), ("mu_t", _MU_T), ("Gamma", _GAMMA_C), ("e", _E))
    return SymbolicBound("training_error_bound", expr, args)


def variance_exact_expr(N: int, K: int, d: int) -> SymbolicBound:
    r"""Lemma 2, exact variance (mirrors :func:`cistheory.variance_exact`), every :math:`q > 0`.

    .. math::
        \sum_i \Big[\sum_k \frac{\beta_{i,k}^2}{q_{i,k}}\big(\|\nabla f_{i,k}\|^2
        + s^2_{i,k}\big) - \Big\|\sum_k \beta_{i,k}\nabla f_{i,k}\Big\|^2\Big]

    Examples
    --------
    >>> variance_exact_expr(1, 1, 1).lambdify()([[0.5]], [[1.0]], [[[1.0]]], [[0.0]])
    1.0
    """
    N, K, d = _check_dim(N, "N"), _check_dim(K, "K"), _check_dim(d, "d")
    q = _sym_array("q", (N, K), positive=True)
    beta = _sym_array("beta", (N, K), nonnegative=True)
    grad = _sym_array("g", (N, K, d), real=True)
    s2 = _sym_array("s2", (N, K), nonnegative=True)
    total = sp.Integer(0)
    for i in range(N):
        for k in range(K):
            sq = sp.Add(*[grad[i, k, j] ** 2 for j in range(d)])
            total += beta[i, k] ** 2 / q[i, k] * (sq + s2[i, k])
        for j in range(d):
            total -= sp.Add(*[beta[i, k] * grad[i, k, j] for k in range(K)]) ** 2
    args = (("q", q), ("beta", beta), ("grad", grad), ("noise_var", s2))
    return SymbolicBound("variance_exact", total, args)


def variance_bound_expr(N: int, K: int, fixed: Sequence[bool]) -> SymbolicBound:
    r"""Lemma 2, convex bound :math:`V` (mirrors :func:`cistheory.variance_bound`).

    .. math::
        \sum_{i,k} \frac{\beta_{i,k}^2(\sigma^2_{i,k} + [i\ \text{sampled}] G^2_{i,k})}{q_{i,k}}

    ``fixed[i]`` says whether node :math:`i`'s configuration fixes one exit (then give
    :math:`q_{i,\cdot}` with a 1 in that exit and zero :math:`\beta` elsewhere). All
    :math:`q_{i,k}` are symbols and must be positive where evaluated; pairs with zero
    :math:`q` are not representable (the numeric function skips them).
    """
    N, K = _check_dim(N, "N"), _check_dim(K, "K")
    if len(fixed) != N:
        raise CISInputError("fixed", list(fixed), f"expected {N} flags")
    q = _sym_array("q", (N, K), positive=True)
    beta = _sym_array("beta", (N, K), nonnegative=True)
    s2 = _sym_array("sigma2", (N, K), nonnegative=True)
    g2 = _sym_array("G2", (N, K), nonnegative=True)
    total = sp.Add(
        *[
            beta[i, k] ** 2 * (s2[i, k] + (0 if fixed[i] else g2[i, k])) / q[i, k]
            for i in range(N)
            for k in range(K)
        ]
    )
    args = (("q", q), ("beta", beta), ("sigma2", s2), ("G2", g2))
    return SymbolicBound("variance_bound", total, args)


_T = sp.Symbol("t", nonnegative=True, integer=True)
_ETA, _V, _GAP0, _B, _GAMMA = sp.symbols("eta V gap0 b gamma", positive=True)


def sgd_fixed_step_bound_expr() -> SymbolicBound:
    r"""Theorem 2, fixed step (mirrors :func:`cistheory.sgd_fixed_step_bound`).

    .. math::
        \frac{\eta L_t V}{2\mu_t} + (1 - \eta\mu_t)^t
        \Big(\mathrm{gap}_0 - \frac{\eta L_t V}{2\mu_t}\Big)

    Examples
    --------
    >>> sgd_fixed_step_bound_expr().lambdify()(1, 0.5, 1.0, 0.5, 2.0, 3.0)
    2.5
    """
    floor = _ETA * _L_T * _V / (2 * _MU_T)
    expr = floor + (1 - _ETA * _MU_T) ** _T * (_GAP0 - floor)
    args = (("t", _T), ("eta", _ETA), ("L_t", _L_T), ("mu_t", _MU_T), ("V", _V), ("gap0", _GAP0))
    return SymbolicBound("sgd_fixed_step_bound", expr, args)


def _nu() -> Any:
    return sp.Max(_B**2 * _L_T * _V / (2 * (_B * _MU_T - 1)), _GAMMA * _GAP0)


def sgd_diminishing_bound_expr() -> SymbolicBound:
    r"""Theorem 2, steps :math:`b/(\gamma + t)` (mirrors :func:`cistheory.sgd_diminishing_bound`).

    .. math::
        \frac{\nu}{\gamma + t}, \quad
        \nu = \max\Big\{\frac{b^2 L_t V}{2(b\mu_t - 1)}, \gamma\,\mathrm{gap}_0\Big\}

    Examples
    --------
    >>> sgd_diminishing_bound_expr().lambdify()(4, 4.0, 4.0, 1.0, 0.5, 1.0, 1.0)
    1.0
    """
    expr = _nu() / (_GAMMA + _T)
    args = (
        ("t", _T),
        ("b", _B),
        ("gamma", _GAMMA),
        ("L_t", _L_T),
        ("mu_t", _MU_T),
        ("V", _V),
        ("gap0", _GAP0),
    )
    return SymbolicBound("sgd_diminishing_bound", expr, args)


def linear_rademacher_expr() -> SymbolicBound:
    r"""Theorem 3, :math:`\rho W X/\sqrt M` (mirrors :func:`cistheory.linear_rademacher`)."""
    M, rho, W, X = sp.symbols("M rho W X", positive=True)
    return SymbolicBound(
        "linear_rademacher", rho * W * X / sp.sqrt(M), (("M", M), ("rho", rho), ("W", W), ("X", X))
    )


def generalization_bound_expr(K: int) -> SymbolicBound:
    r"""Theorem 3, :math:`\varepsilon_k = 2\mathfrak R_k + B\sqrt{\ln(2K/\delta)/(2M_k)}`.

    A :math:`K`-vector (sympy Matrix); mirrors :func:`cistheory.generalization_bound`.
    """
    K = _check_dim(K, "K")
    M = _sym_array("M", (K,), positive=True)
    rad = _sym_array("R", (K,), nonnegative=True)
    delta, B = sp.symbols("delta B", positive=True)
    dev = [B * sp.sqrt(sp.log(2 * K / delta) / (2 * M[k])) for k in range(K)]
    eps = sp.Matrix([2 * rad[k] + dev[k] for k in range(K)])
    args = (("M", M), ("delta", delta), ("B", B), ("rademacher", rad))
    return SymbolicBound("generalization_bound", eps, args)


def full_bound_expr(K: int, *, schedule: str = "fixed", split: bool = False) -> SymbolicBound:
    r"""Corollary: ``total`` (or ``total_split``) of :func:`cistheory.full_bound`.

    .. math::
        2\sum_k\lambda_k\varepsilon_k
        + \frac{1}{2\mu}\Big(\sqrt{2L\chi^2\Gamma} + L\sqrt{2\,\mathbb E[e_T]/\mu_t}\Big)^2

    with :math:`\mathbb E[e_T]` from Theorem 2 at :math:`t = T` (``schedule`` ``"fixed"``:
    argument ``eta``; ``"diminishing"``: ``b``, ``gamma``).
    """
    if schedule == "fixed":
        opt = sgd_fixed_step_bound_expr()
    elif schedule == "diminishing":
        opt = sgd_diminishing_bound_expr()
    else:
        raise CISInputError("schedule", schedule, "must be 'fixed' or 'diminishing'")
    te = training_error_bound_expr(K, split=split)
    T = sp.Symbol("T", nonnegative=True, integer=True)
    e_T = opt.expr.subs(_T, T)
    eps = _sym_array("epsilon", (K,), nonnegative=True)
    lam = te.args[0][1]
    gen = 2 * sp.Add(*[lam[k] * eps[k] for k in range(K)])
    expr = gen + te.expr.subs(_E, e_T)
    sched_args = tuple(a for a in opt.args if a[0] in {"eta", "b", "gamma"})
    args = (
        *te.args[:5],
        ("L_t", _L_T),
        ("Gamma", _GAMMA_C),
        ("V", _V),
        ("gap0", _GAP0),
        ("T", T),
        ("eps", eps),
        *sched_args,
    )
    return SymbolicBound("full_bound", expr, args)


# ---------------------------------------------------------------------------------------------
# Facts
# ---------------------------------------------------------------------------------------------


def _rng() -> np.random.Generator:
    return np.random.default_rng(RESIDUAL_SEED)


def fixed_step_limit() -> SymbolicFact:
    r"""As :math:`t\to\infty` the fixed-step bound tends to the noise floor
    :math:`\eta L_t V/(2\mu_t)` (Theorem 2).

    sympy cannot assume :math:`0 < \eta\mu_t < 1` directly, so the step is written
    :math:`\eta = (1 - e^{-s})/\mu_t` with :math:`s > 0`, which covers exactly
    :math:`0 < \eta\mu_t < 1`. Residual: the numeric :func:`cistheory.sgd_fixed_step_bound`
    at :math:`t = 4000` with :math:`\eta\mu_t \ge 0.05` (so the transient is below
    :math:`10^{-89}`) minus the floor, relative.
    """
    s = sp.Symbol("s", positive=True)
    b = sgd_fixed_step_bound_expr()
    eta_s = (1 - sp.exp(-s)) / _MU_T
    lhs = sp.limit(b.expr.subs(_ETA, eta_s), _T, sp.oo)
    rhs = (_ETA * _L_T * _V / (2 * _MU_T)).subs(_ETA, eta_s)
    rng = _rng()
    worst = 0.0
    for _ in range(_N_POINTS):
        mu_t = rng.uniform(0.1, 2.0)
        L_t = mu_t * rng.uniform(1.0, 10.0)
        eta = rng.uniform(0.5, 1.0) / L_t  # eta mu_t >= 0.05: (1 - eta mu_t)^4000 < 1e-89
        V, gap0 = rng.uniform(0.0, 5.0), rng.uniform(0.0, 5.0)
        floor = eta * L_t * V / (2 * mu_t)
        val = float(nb.sgd_fixed_step_bound(4000, eta, L_t, mu_t, V, gap0))
        worst = max(worst, abs(val - floor) / max(floor, 1.0))
    return SymbolicFact(
        name="fixed_step_limit",
        statement="lim_{t->oo} fixed-step bound = eta L_t V / (2 mu_t)",
        lhs=lhs,
        rhs=rhs,
        proven=_equals(lhs, rhs),
        residual=max(worst, 0.0),
        tolerance=1e-12,
        reason="the transient is < 1e-89 at t = 4000; what remains is rounding of O(1) "
        "numbers, a few ulps",
    )


def zero_bias_limit(K: int) -> SymbolicFact:
    r"""Training at the serving shares removes the bias: the bias bound of Theorem 1(a) tends
    to 0 as :math:`\tilde\lambda \to \lambda` (along :math:`\tilde\lambda = \lambda + h\,d`,
    :math:`\sum_k d_k = 0`, :math:`h \to 0`).

    Residual: the numeric :func:`cistheory.bias_bound` at :math:`\tilde\lambda = \lambda`.
    """
    K = _check_dim(K, "K")
    bb = bias_bound_expr(K)
    lam, lt = bb.args[0][1], bb.args[1][1]
    h = sp.Symbol("h", real=True)
    d = _sym_array("d", (K,), real=True)
    subs = {lt[k]: lam[k] + h * d[k] for k in range(K)}
    if K > 1:
        subs[lt[K - 1]] = lam[K - 1] - h * sp.Add(*d[: K - 1].tolist())
    lhs = sp.limit(bb.expr.subs(subs), h, 0)
    rng = _rng()
    worst = 0.0
    for _ in range(_N_POINTS):
        lam_n = rng.dirichlet(np.ones(K))
        L = rng.uniform(1.0, 5.0)
        worst = max(worst, abs(nb.bias_bound(lam_n, lam_n, L, L / 3, rng.uniform(0, 5))))
    return SymbolicFact(
        name="zero_bias_limit",
        statement="lt -> lam gives bias bound (L/mu) chi2 Gamma -> 0",
        lhs=lhs,
        rhs=sp.Integer(0),
        proven=_equals(lhs, 0),
        residual=worst,
        tolerance=0.0,
        reason="chi2(lam, lam) sums exact zeros",
    )


def diminishing_rate() -> SymbolicFact:
    r"""The diminishing-step bound decays as :math:`\Theta(1/T)`: :math:`T\cdot\nu/(\gamma+T)
    \to \nu \in (0, \infty)` (Theorem 2).

    The verdict is ``True`` only if sympy proves both the limit and :math:`\nu > 0`.
    Residual: :math:`|T\,b_T/\nu - 1|` for the numeric
    :func:`cistheory.sgd_diminishing_bound` at :math:`T = 10^{12}`, minus the exact
    :math:`\gamma/(\gamma + T)`.
    """
    T = sp.Symbol("T", positive=True)
    expr = sgd_diminishing_bound_expr().expr.subs(_T, T)
    lhs = sp.limit(T * expr, T, sp.oo)
    rhs = _nu()
    eq = _equals(lhs, rhs)
    positive = rhs.is_positive
    proven: bool | None
    if eq is True and positive is True:
        proven = True
    elif eq is False or positive is False:
        proven = False
    else:
        proven = None
    rng = _rng()
    worst = 0.0
    big = 1e12
    for _ in range(_N_POINTS):
        mu_t = rng.uniform(0.1, 2.0)
        L_t = mu_t * rng.uniform(1.0, 5.0)
        b = rng.uniform(1.1, 5.0) / mu_t
        gamma = b * L_t * rng.uniform(1.0, 2.0)
        V, gap0 = rng.uniform(0.0, 5.0), rng.uniform(0.1, 5.0)
        nu = max(b**2 * L_t * V / (2 * (b * mu_t - 1)), gamma * gap0)
        val = float(nb.sgd_diminishing_bound(big, b, gamma, L_t, mu_t, V, gap0))
        worst = max(worst, abs(abs(big * val / nu - 1) - gamma / (gamma + big)))
    return SymbolicFact(
        name="diminishing_rate",
        statement="T * (diminishing bound at T) -> nu > 0: the bound is Theta(1/T)",
        lhs=lhs,
        rhs=rhs,
        proven=proven,
        residual=worst,
        tolerance=1e-12,
        reason="T b_T / nu - 1 = -gamma/(gamma + T) exactly; what remains is rounding of "
        "O(1) ratios, a few ulps",
    )


def chi2_simplex_identity(K: int) -> SymbolicFact:
    r"""On the simplex, :math:`\chi^2 = \sum_k \lambda_k^2/\tilde\lambda_k - 1` (the form the
    design problem uses). Checked with :math:`\lambda_K = 1 - \sum_{k<K}\lambda_k` and likewise
    for :math:`\tilde\lambda`. Residual against the numeric :func:`cistheory.chi2`."""
    K = _check_dim(K, "K")
    c = chi2_expr(K)
    lam, lt = c.args[0][1], c.args[1][1]
    rhs = sp.Add(*[lam[k] ** 2 / lt[k] for k in range(K)]) - 1
    subs = {
        lam[K - 1]: 1 - sp.Add(*lam[: K - 1].tolist()),
        lt[K - 1]: 1 - sp.Add(*lt[: K - 1].tolist()),
    }
    lhs_s, rhs_s = c.expr.subs(subs), rhs.subs(subs)
    rng = _rng()
    worst = 0.0
    for _ in range(_N_POINTS):
        lam_n, lt_n = rng.dirichlet(np.ones(K)), rng.dirichlet(np.ones(K))
        other = float((lam_n**2 / lt_n).sum() - 1)
        worst = max(worst, abs(nb.chi2(lam_n, lt_n) - other) / max(1.0, abs(other)))
    return SymbolicFact(
        name="chi2_simplex_identity",
        statement="chi2(lam||lt) = sum lam_k^2/lt_k - 1 when lam, lt sum to 1",
        lhs=lhs_s,
        rhs=rhs_s,
        proven=_equals(lhs_s, rhs_s),
        residual=worst,
        # Dirichlet(1) draws can have lt_k ~ 1e-3, making terms ~1e3: relative rounding
        tolerance=1e-10,
        reason="two sums of K terms up to ~1e3 in size: rounding ~1e-13 relative",
    )


def _kkt_symbols(K: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any, Any, Any]:
    x = _sym_array("x", (K,), positive=True)
    lam = _sym_array("lambda", (K,), positive=True)
    v = _sym_array("v", (K,), positive=True)
    a, b = sp.symbols("a b", positive=True)
    nu = sp.Symbol("nu", real=True)
    return x, lam, v, a, b, nu


def _lagrangian(K: int) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, Any, Any, Any]:
    x, lam, v, a, b, nu = _kkt_symbols(K)
    chi2_s = sp.Add(*[lam[k] ** 2 / x[k] for k in range(K)]) - 1
    obj = a * chi2_s + b * sp.Add(*[v[k] * x[k] ** 2 for k in range(K)])
    lagr = obj - nu * (sp.Add(*x.tolist()) - 1)
    return lagr, x, lam, v, a, b, nu


def stationarity(K: int) -> SymbolicFact:
    r"""Stationarity of :math:`\min_{\tilde\lambda} a\chi^2(\lambda\|\tilde\lambda) +
    b\sum_k v_k\tilde\lambda_k^2` on the simplex (``docs/theory.md``, Section 5).

    With :math:`\chi^2 = \sum_k \lambda_k^2/x_k - 1` and multiplier :math:`\nu` of
    :math:`\sum_k x_k = 1`, the derivative of the Lagrangian in :math:`x_k` vanishes iff

    .. math:: -a\lambda_k^2/x_k^2 + 2 b v_k x_k = \nu .

    Residual: central finite differences of the numeric objective against the claimed
    left side, at random points.
    """
    K = _check_dim(K, "K")
    lagr, x, lam, v, a, b, nu = _lagrangian(K)
    lhs = sp.Matrix([sp.diff(lagr, x[k]) for k in range(K)])
    rhs = sp.Matrix([-a * lam[k] ** 2 / x[k] ** 2 + 2 * b * v[k] * x[k] - nu for k in range(K)])
    rng = _rng()
    worst = 0.0
    h = 1e-5
    for _ in range(_N_POINTS):
        lam_n, v_n = rng.dirichlet(np.ones(K)), rng.uniform(0.5, 2.0, K)
        x_n = rng.uniform(0.2, 1.0, K)
        a_n, b_n = rng.uniform(0.1, 2.0, 2)

        def obj(xx: np.ndarray, lam_n: np.ndarray = lam_n, v_n: np.ndarray = v_n,
                a_n: float = a_n, b_n: float = b_n) -> float:
            return float(a_n * ((lam_n**2 / xx).sum() - 1) + b_n * (v_n * xx**2).sum())

        for k in range(K):
            step = np.zeros(K)
            step[k] = h
            fd = (obj(x_n + step) - obj(x_n - step)) / (2 * h)
            claim = -a_n * lam_n[k] ** 2 / x_n[k] ** 2 + 2 * b_n * v_n[k] * x_n[k]
            worst = max(worst, abs(fd - claim) / max(1.0, abs(claim)))
    return SymbolicFact(
        name="stationarity",
        statement="d/dx_k [a chi2 + b sum v x^2 - nu (sum x - 1)] = "
        "-a lam_k^2/x_k^2 + 2 b v_k x_k - nu",
        lhs=lhs,
        rhs=rhs,
        proven=_equals(lhs, rhs),
        residual=worst,
        tolerance=1e-6,
        reason="central differences with h = 1e-5 on x in [0.2, 1]: truncation h^2 f''' "
        "~ 1e-10 * 1e3, plus rounding eps/h ~ 1e-11",
    )


def endpoint_minimiser(K: int, endpoint: str) -> SymbolicFact:
    r"""The two endpoint minimisers of :math:`a\chi^2(\lambda\|\tilde\lambda) +
    b\sum_k v_k \tilde\lambda_k^2` on the simplex, from sympy's solve of the KKT system.

    ``endpoint="b0"`` (:math:`b = 0`): :math:`\tilde\lambda = \lambda` (Serving Rate).
    ``endpoint="a0"`` (:math:`a = 0`): :math:`\tilde\lambda_k \propto 1/v_k` (inverse
    variance). The objective is strictly convex on the open simplex, so the KKT point is the
    minimiser. Each stationarity equation is solved for :math:`x_k > 0` in terms of
    :math:`\nu` (its sign is forced: :math:`\nu < 0` at :math:`b = 0`, :math:`\nu > 0` at
    :math:`a = 0`), then :math:`\sum_k x_k(\nu) = 1` is solved for :math:`\nu`; with
    :math:`\sum_k\lambda_k = 1` substituted. Residual: the numeric KKT residual (max over
    :math:`k` of the stationarity equation's spread, and :math:`|\sum_k x_k - 1|`) of the
    claimed closed form at random points.
    """
    K = _check_dim(K, "K")
    if endpoint not in {"a0", "b0"}:
        raise CISInputError("endpoint", endpoint, "must be 'a0' (a -> 0) or 'b0' (b -> 0)")
    lagr, x, lam, v, a, b, _nu_sym = _lagrangian(K)
    nu = sp.Symbol("nu", negative=True) if endpoint == "b0" else sp.Symbol("nu", positive=True)
    lagr = lagr.subs(_nu_sym, nu).subs(b if endpoint == "b0" else a, 0)
    x_of_nu = []
    for k in range(K):
        roots = sp.solve(sp.Eq(sp.diff(lagr, x[k]), 0), x[k])
        pos = [r for r in roots if r.is_positive is True]
        if len(pos) != 1:
            raise RuntimeError(f"stationarity in x_{k + 1} has {len(pos)} positive roots")
        x_of_nu.append(pos[0])
    nu_roots = sp.solve(sp.Eq(sp.Add(*x_of_nu), 1), nu)
    if len(nu_roots) != 1:
        raise RuntimeError(f"sum x(nu) = 1 has {len(nu_roots)} admissible roots")
    sol = sp.Matrix([xk.subs(nu, nu_roots[0]) for xk in x_of_nu])
    if endpoint == "b0":
        last = {lam[K - 1]: 1 - sp.Add(*lam[: K - 1].tolist())}
        lhs = sol.subs(last)
        rhs = sp.Matrix(lam.tolist()).subs(last)
        statement = "b = 0: argmin a chi2(lam||lt) on the simplex is lt = lam"
    else:
        inv = [1 / v[k] for k in range(K)]
        lhs = sol
        rhs = sp.Matrix([inv[k] / sp.Add(*inv) for k in range(K)])
        statement = "a = 0: argmin b sum v_k lt_k^2 on the simplex is lt proportional to 1/v"
    rng = _rng()
    worst = 0.0
    for _ in range(_N_POINTS):
        lam_n, v_n = rng.dirichlet(np.ones(K)), rng.uniform(0.1, 10.0, K)
        a_n, b_n = rng.uniform(0.1, 5.0, 2)
        if endpoint == "b0":
            x_n, grad = lam_n, -a_n * lam_n**2 / lam_n**2
        else:
            x_n = (1 / v_n) / (1 / v_n).sum()
            grad = 2 * b_n * v_n * x_n
        worst = max(worst, float(np.ptp(grad)) / max(1.0, float(np.abs(grad).max())),
                    abs(float(x_n.sum()) - 1.0))
    return SymbolicFact(
        name=f"endpoint_minimiser_{endpoint}",
        statement=statement,
        lhs=lhs,
        rhs=rhs,
        proven=_equals(lhs, rhs),
        residual=worst,
        tolerance=1e-13,
        reason="a normalisation and K products of O(1) numbers: a few ulps",
    )
