r"""Symbolic (sympy) forms of the bounds of ``docs/theory.md`` and the facts users rely on.

One module per statement, named as in :mod:`cistheory.bounds` and ``proofs_check``. Every
numeric bound has a builder returning a :class:`SymbolicBound`: the sympy expression, its
symbols grouped like the numeric function's arguments, and :meth:`SymbolicBound.lambdify`, a
numpy function called with the same arguments as the numeric one (the tests check the two
agree).

The facts (limits, the rate in :math:`T`, the endpoint minimisers of the bias-variance
trade-off, the stationarity equation) return :class:`SymbolicFact`: a three-valued sympy
verdict from :func:`prove_equal` (``True``, ``False`` or ``None`` = unproven, which counts as
a failure) next to a numeric residual computed independently at seeded random points.

This package imports sympy; ``import cistheory`` does not import it.
"""

from __future__ import annotations

from ._core import RESIDUAL_SEED, SymbolicBound, SymbolicFact, prove_equal
from .corollary import full_bound_expr
from .design import endpoint_minimiser, stationarity
from .lemma2 import variance_bound_expr, variance_exact_expr
from .theorem1 import (
    bias_bound_expr,
    chi2_expr,
    chi2_simplex_identity,
    training_error_bound_expr,
    zero_bias_limit,
)
from .theorem2 import (
    diminishing_rate,
    fixed_step_limit,
    sgd_diminishing_bound_expr,
    sgd_fixed_step_bound_expr,
)
from .theorem3 import generalization_bound_expr, linear_rademacher_expr

__all__ = [
    "RESIDUAL_SEED",
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
    "prove_equal",
    "sgd_diminishing_bound_expr",
    "sgd_fixed_step_bound_expr",
    "stationarity",
    "training_error_bound_expr",
    "variance_bound_expr",
    "variance_exact_expr",
    "zero_bias_limit",
]
