"""convex: bound-optimal training weights and participation for a CIS (``docs/convex.md``).

Fast exact solvers (numpy only) for the weights (:func:`optimal_lt`), the participation
probabilities (:func:`optimal_q`) and the joint problem (:func:`solve_joint`), each with a
certificate; cvxpy programs (:mod:`convex.cvx`, imported when used) to cross-check them;
and the mapping from a CIS and its constants to the design problem (:func:`design`).
"""

from __future__ import annotations

from ._common import SolverError
from .design import (
    DesignResult,
    Eligibility,
    bound_optimal_lt,
    compare_eligibility,
    design,
    design_coefficients,
    design_terms,
    eligibility,
    reference_constants,
)
from .joint import JointResult, joint_objective, solve_joint
from .lt import LtResult, lt_objective, optimal_lt
from .q import QResult, optimal_q

__all__ = [
    "DesignResult",
    "Eligibility",
    "JointResult",
    "LtResult",
    "QResult",
    "SolverError",
    "bound_optimal_lt",
    "compare_eligibility",
    "design",
    "design_coefficients",
    "design_terms",
    "eligibility",
    "joint_objective",
    "lt_objective",
    "optimal_lt",
    "optimal_q",
    "reference_constants",
    "solve_joint",
]
