r"""Results of the convex solvers, in the vocabulary of :class:`scipy.optimize.OptimizeResult`.

Every result class of the package (:class:`LtResult`, :class:`QResult`,
:class:`JointResult`, the cvxpy answers :class:`QCvxResult` and :class:`JointCvxResult`,
:class:`DesignResult` and :class:`StableResult`) is a frozen dataclass with

=============== =====================================================================
``x``           the solution; the same object as the named field (``lt`` for the
                weights problems, the joint problem and the design, ``q`` for the
                participation problem)
``fun``         the objective value at ``x``
``success``     ``True`` when the solver met its stopping test
``status``      :data:`OPTIMAL` (``"optimal"``: stopping test met) or
                :data:`MAX_ITER` (``"max_iter"``: stopped on its iteration limit
                ``max_iter``; see :data:`MAX_ITER`)
``message``     a sentence saying how the solver stopped
``nit``         iterations (which ones is documented per class; -1 if unknown)
``method``      ``"fast"`` or ``"cvxpy"``
=============== =====================================================================

and the certificates it has, under the same names everywhere: ``lower_bound`` (a certified
lower bound on the optimum), ``gap`` (``fun - lower_bound``), ``kkt`` (residuals of the
optimality conditions), and the multipliers ``nu`` (of :math:`\sum_k x_k = 1` for the
weights, of the rows :math:`\sum_k q_{i,k} \le 1` for the participation) and ``rho`` (of the
compute budget), named as in ``docs/theory.md``, Section 5.

Every result serialises the same way: ``as_dict()`` returns its fields by name (``x`` is
listed under its named field) as a JSON-ready dictionary: arrays become (nested) lists,
numpy scalars Python numbers, and non-finite numbers ``None`` (JSON has no infinity).

Examples
--------
>>> import numpy as np
>>> r = QCvxResult(q=np.array([[0.5, 0.5]]), fun=8.0, rho=float("inf"), success=True,
...                status=OPTIMAL, message="CLARABEL: optimal", nit=7)
>>> r.x is r.q
True
>>> r.as_dict()["q"], r.as_dict()["rho"]
([[0.5, 0.5]], None)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from cistheory._arrays import FloatArray

if TYPE_CHECKING:
    from cistheory.bounds.corollary import BoundTerms

__all__ = [
    "MAX_ITER",
    "OPTIMAL",
    "DesignResult",
    "JointCvxResult",
    "JointResult",
    "LtResult",
    "QCvxResult",
    "QResult",
    "StableResult",
]

OPTIMAL = "optimal"
"""``status`` of a result whose solver met its stopping test (``success`` is ``True``)."""

MAX_ITER = "max_iter"
"""``status`` of a result whose solver stopped on its iteration limit (``success`` is
``False``): the point is the last iterate and the certificate is computed there as usual, so
``lower_bound`` is still a valid lower bound on the optimum and ``gap`` (and ``kkt``) say how
far the point is from optimal. The weights and the joint design stay feasible; a
participation ``q`` may exceed a row sum or the budget by the amounts in its ``kkt``."""


def _json_ready(value: Any) -> Any:
    """``value`` with arrays as lists, numpy scalars as Python numbers, non-finite as None."""
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, np.ndarray | list | tuple):
        return [_json_ready(v) for v in (value.tolist() if isinstance(value, np.ndarray)
                                         else value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Serialisable:
    """``as_dict`` for the result dataclasses of this module."""

    def as_dict(self) -> dict[str, Any]:
        """The fields by name, JSON-ready (lists for arrays, ``None`` for non-finite numbers).

        Examples
        --------
        >>> import json, numpy as np
        >>> r = JointCvxResult(lt=np.array([1.0]), q=np.array([[1.0]]), fun=0.5, rho=0.0,
        ...                    success=True, status=OPTIMAL, message="", nit=-1)
        >>> json.dumps(r.as_dict(), allow_nan=False)[:33]
        '{"lt": [1.0], "q": [[1.0]], "fun"'
        """
        return {f.name: _json_ready(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class LtResult(_Serialisable):
    r"""Minimiser of :math:`a\chi^2(\lambda\|x) + b\sum_k v_k x_k^2` on the simplex.

    Attributes
    ----------
    lt : ndarray, shape (K,)
        The weights :math:`\tilde\lambda` (on the simplex, at least the floor); also ``x``.
    fun : float
        :math:`a\chi^2 + b V` at ``lt``.
    terms : dict
        ``{"chi2": a * chi2, "variance": b * sum v lt^2}``.
    nu : float
        :math:`\nu`, multiplier of :math:`\sum_k x_k = 1` (:math:`\nabla f = \nu` off the
        floor).
    lower_bound : float
        The dual value :math:`d(\nu)`, a lower bound on the optimum.
    gap : float
        ``fun - lower_bound`` (a certified duality gap, up to rounding).
    success, status, message
        See :mod:`convex.results`; the fast path reports :data:`MAX_ITER` when Newton's
        method on the multiplier used ``max_iter`` steps without meeting its test.
    nit : int
        Newton steps (joint Newton on the KKT system, or on the multiplier) on the fast
        path, solver iterations with cvxpy (-1 if unknown).
    method : str
        ``"fast"`` or ``"cvxpy"``.
    """

    lt: FloatArray
    fun: float
    terms: dict[str, float]
    nu: float
    lower_bound: float
    gap: float
    success: bool
    status: str
    message: str
    nit: int
    method: str

    @property
    def x(self) -> FloatArray:
        """The solution: the same object as ``lt``."""
        return self.lt


@dataclass(frozen=True)
class QResult(_Serialisable):
    r"""Minimiser of :math:`\sum c_{i,k}/q_{i,k}` under row, floor and budget constraints.

    Attributes
    ----------
    q : ndarray, shape (N, K)
        Participation probabilities (zero off the eligible pairs; fixed rows one-hot); also
        ``x``.
    fun : float
        :math:`\sum c/q` over eligible pairs (pairs with :math:`c = 0` contribute 0).
    nu : ndarray, shape (N,)
        Row multipliers (0 for fixed rows).
    rho : float
        Budget multiplier (0 without a budget or when it is slack; ``inf`` when the budget
        equals the minimum spend and every free pair sits on the floor).
    lower_bound : float
        :math:`D(\nu, \rho)`, a lower bound on the optimum.
    gap : float
        ``fun - lower_bound``.
    kkt : dict
        ``primal_row`` (max row-sum excess), ``primal_floor`` (max floor violation),
        ``primal_budget`` (budget excess, 0 without budget), ``stationarity`` (max relative
        residual of :math:`c/q^2 = \nu_i + \rho\,\mathrm{cost}_k` off the floor, and sign
        of the floor multiplier on it), ``complementarity`` (max relative
        :math:`\nu_i (1 - \sum_k q_{i,k})` and :math:`\rho (C - \text{spend})`).
    spend : float
        :math:`\sum \mathrm{cost}_k q_{i,k}` (0 without ``cost``).
    success, status, message
        See :mod:`convex.results`; :data:`MAX_ITER` when the search for :math:`\rho` or the
        last solve of the row multipliers used ``max_iter`` steps without meeting its test.
    nit : int
        Newton steps on :math:`\rho` (0 when the budget is slack or absent).
    method : str
        ``"fast"``.
    """

    q: FloatArray
    fun: float
    nu: FloatArray
    rho: float
    lower_bound: float
    gap: float
    kkt: dict[str, float]
    spend: float
    success: bool
    status: str
    message: str
    nit: int
    method: str = "fast"

    @property
    def x(self) -> FloatArray:
        """The solution: the same object as ``q``."""
        return self.q


@dataclass(frozen=True)
class JointResult(_Serialisable):
    r"""Minimiser of the joint design objective :math:`J(x, q)`.

    Attributes
    ----------
    lt : ndarray, shape (K,)
        The weights, the variable :math:`x` of :math:`J(x, q)`; also ``x``.
    q : ndarray, shape (N, K)
        The participation, the second block.
    fun : float
        :math:`J(x, q)` (without the generalisation constant).
    terms : dict
        ``{"chi2": a * chi2, "variance": b * V}``.
    rho : float
        Budget multiplier of the last participation solve (0 without a budget); it enters
        the lower bound.
    lower_bound : float
        Certified lower bound on the optimum of :math:`J`.
    gap : float
        ``fun - lower_bound``.
    success, status, message
        See :mod:`convex.results`; the fast path reports :data:`OPTIMAL` when the relative
        gap reached ``gap_rtol`` and :data:`MAX_ITER` when it did not within ``max_iter``
        rounds.
    nit : int
        Accelerated alternation rounds (0 when ``b = 0``); the solver's iterations with
        cvxpy (-1 if unknown).
    method : str
        ``"fast"`` or ``"cvxpy"``.
    """

    lt: FloatArray
    q: FloatArray
    fun: float
    terms: dict[str, float]
    rho: float
    lower_bound: float
    gap: float
    success: bool
    status: str
    message: str
    nit: int
    method: str

    @property
    def x(self) -> FloatArray:
        """The solution's weights: the same object as ``lt``."""
        return self.lt


@dataclass(frozen=True)
class QCvxResult(_Serialisable):
    """cvxpy answer to the participation problem (:class:`convex.cvx.QProgram`).

    Attributes
    ----------
    q : ndarray, shape (N, K)
        Also ``x``.
    fun : float
        :math:`\\sum c/q`, recomputed in numpy at ``q``.
    rho : float
        Budget multiplier (the solver's dual value; 0 without a budget).
    success, status, message, nit, method
        See :mod:`convex.results` (a solver that does not reach an optimal solution raises
        :class:`convex.SolverError` instead); ``message`` names the solver, ``nit`` is its
        iteration count (-1 if unknown), ``method`` is ``"cvxpy"``.
    """

    q: FloatArray
    fun: float
    rho: float
    success: bool
    status: str
    message: str
    nit: int
    method: str = "cvxpy"

    @property
    def x(self) -> FloatArray:
        """The solution: the same object as ``q``."""
        return self.q


@dataclass(frozen=True)
class JointCvxResult(_Serialisable):
    """cvxpy answer to the joint problem (:class:`convex.cvx.JointProgram`).

    Attributes
    ----------
    lt : ndarray, shape (K,)
        Also ``x``.
    q : ndarray, shape (N, K)
    fun : float
        The solver's objective value (unscaled, constant :math:`-A` added).
    rho : float
        Budget multiplier (the solver's dual value, at least 0; 0 without a budget).
    success, status, message, nit, method
        As for :class:`QCvxResult`.
    """

    lt: FloatArray
    q: FloatArray
    fun: float
    rho: float
    success: bool
    status: str
    message: str
    nit: int
    method: str = "cvxpy"

    @property
    def x(self) -> FloatArray:
        """The solution's weights: the same object as ``lt``."""
        return self.lt


@dataclass(frozen=True)
class DesignResult(_Serialisable):
    r"""The bound-optimal design of a CIS under one eligibility policy.

    Attributes
    ----------
    lt : ndarray, shape (K,)
        Also ``x``.
    q : ndarray, shape (N, K)
    fun : float
        :math:`J = ` generalisation + :math:`A\chi^2 + BV + C_0`.
    terms : dict
        ``generalisation``, ``bias`` (:math:`A\chi^2`), ``variance`` (:math:`BV`),
        ``optimisation_constant`` (:math:`C_0`).
    lower_bound : float
        ``fun - gap``: a certified lower bound on :math:`J` over the policy's designs.
    gap : float
        Certified gap of the convex part: the convexity (Frank-Wolfe) lower bound of
        :func:`convex.solve_joint` at the returned point (for cvxpy too, which makes it an
        independent check of the solver), or the weights solver's duality gap when every
        node is fixed.
    success, status, message
        Those of the solver used (:func:`convex.solve_joint`, or :func:`convex.optimal_lt`
        when every node is fixed).
    nit : int
        ``nit`` of the solver used: alternation rounds of the joint solver, or Newton steps
        of the weights solver when every node is fixed (solver iterations with cvxpy, -1 if
        unknown).
    method : str
        ``"fast"`` or ``"cvxpy"``.
    A, B : float
        The weights of :math:`\chi^2` and :math:`V` (:func:`convex.design_coefficients`).
    policy : str
        Name of the eligibility policy.
    bound : BoundTerms
        :func:`cistheory.bounds.cis_bound` at the design (tight form in ``total``).
    """

    lt: FloatArray
    q: FloatArray
    fun: float
    terms: dict[str, float]
    lower_bound: float
    gap: float
    success: bool
    status: str
    message: str
    nit: int
    method: str
    A: float
    B: float
    policy: str
    bound: BoundTerms = field(repr=False)

    @property
    def x(self) -> FloatArray:
        """The solution's weights: the same object as ``lt``."""
        return self.lt


@dataclass(frozen=True)
class StableResult(_Serialisable):
    r"""A solution of the design problem of Section 5.2 at fixed :math:`(\eta, c, \vartheta,
    \bar\rho)` (or the best over the outer loop of :func:`stable_design`).

    Attributes
    ----------
    lt : ndarray (K,)
        Also ``x``.
    q : ndarray (N, K)
    fun : float
        :math:`J`.
    terms : dict
        ``bias`` (:math:`A\chi^2`), ``variance`` (:math:`B\bar V_c`), ``transient``
        (:math:`C_0`).
    lower_bound, gap : float
        A certified lower bound on the optimum over the feasible designs and ``fun - lower_bound``.
    success, status, message, nit, method
        As every result of :mod:`convex.results`.
    eta, c, theta, rho_bar : float
        The outer-loop scalars.
    policy : str
    Ls_pair : float
        :math:`L_s^{\mathrm{pair}}` of the design (at most ``theta``).
    """

    lt: FloatArray
    q: FloatArray
    fun: float
    terms: dict[str, float]
    lower_bound: float
    gap: float
    success: bool
    status: str
    message: str
    nit: int
    method: str
    eta: float
    c: float
    theta: float
    rho_bar: float
    policy: str = "explicit"
    Ls_pair: float = field(default=0.0)

    @property
    def x(self) -> FloatArray:
        """The weights: the same object as ``lt``."""
        return self.lt
