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
from .corollary_pm import projected_risk_bound_expr, risk_tail_probability_expr
from .design import endpoint_minimiser, stationarity
from .lemma2 import variance_bound_expr, variance_exact_expr
from .lemma_es import (
    expected_smoothness_expr,
    expected_smoothness_pairwise_expr,
    sampling_lipschitz_expr,
)
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
from .theorem_a import (
    distance_bound_diminishing_expr,
    distance_bound_expr,
    distance_bound_nonconvex_expr,
    distance_bound_simple_expr,
)
from .theorem_b import local_distance_bound_expr
from .theorem_c import gap_bound_averaged_expr
from .theorem_d import (
    target_error_bound_convex_expr,
    target_error_bound_e_expr,
    target_error_bound_expr,
)
from .theorem_e import (
    bias_bound_gradient_expr,
    bias_bound_zeta_expr,
    heterogeneity_at_optimum_expr,
)
from .theorem_m import modal_fixed_node_expr
from .theorem_q import quadratic_floor_expr

__all__ = [
    "RESIDUAL_SEED",
    "SymbolicBound",
    "SymbolicFact",
    "bias_bound_expr",
    "bias_bound_gradient_expr",
    "bias_bound_zeta_expr",
    "chi2_expr",
    "chi2_simplex_identity",
    "diminishing_rate",
    "distance_bound_diminishing_expr",
    "distance_bound_expr",
    "distance_bound_nonconvex_expr",
    "distance_bound_simple_expr",
    "endpoint_minimiser",
    "expected_smoothness_expr",
    "expected_smoothness_pairwise_expr",
    "fixed_step_limit",
    "full_bound_expr",
    "gap_bound_averaged_expr",
    "generalization_bound_expr",
    "heterogeneity_at_optimum_expr",
    "linear_rademacher_expr",
    "local_distance_bound_expr",
    "modal_fixed_node_expr",
    "projected_risk_bound_expr",
    "prove_equal",
    "quadratic_floor_expr",
    "risk_tail_probability_expr",
    "sampling_lipschitz_expr",
    "sgd_diminishing_bound_expr",
    "sgd_fixed_step_bound_expr",
    "stationarity",
    "target_error_bound_convex_expr",
    "target_error_bound_e_expr",
    "target_error_bound_expr",
    "training_error_bound_expr",
    "variance_bound_expr",
    "variance_exact_expr",
    "zero_bias_limit",
]
