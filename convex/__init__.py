"""convex: bound-optimal training weights and participation for a CIS (``docs/convex.md``).

Fast exact solvers (numpy only) for the weights (:func:`optimal_lt`), the participation
probabilities (:func:`optimal_q`) and the joint problem (:func:`solve_joint`), each with a
certificate; cvxpy programs (:mod:`convex.cvx`, imported when used) to cross-check them;
and the mapping from a CIS and its constants to the design problem (:func:`design`); the
design problem on the second-generation bound, with the step-stability constraint
(:mod:`convex.stable`, ``docs/theory.md`` Section 5.2).

Every solver returns a result in the vocabulary of :class:`scipy.optimize.OptimizeResult`
(``x``, ``fun``, ``success``, ``status``, ``message``, ``nit``) with its certificates
(``lower_bound``, ``gap``, multipliers ``nu`` and ``rho``, ``kkt``) and ``as_dict()``; see
:mod:`convex.results`.

Modules, bottom up: :mod:`convex.results` (result classes), :mod:`convex.objective` (the
weights problem's objective, inputs, roots and dual), :mod:`convex.lt`, :mod:`convex.q`,
:mod:`convex.joint`, :mod:`convex.design`; :mod:`convex.cvx` imports only the first two.
"""

from __future__ import annotations

from ._common import SolverError
from .design import (
    Eligibility,
    bound_optimal_lt,
    compare_eligibility,
    design,
    design_coefficients,
    design_terms,
    eligibility,
    reference_constants,
)
from .joint import joint_objective, solve_joint
from .lt import optimal_lt
from .objective import lt_objective
from .q import optimal_q
from .results import DesignResult, JointResult, LtResult, QResult
from .stable import (
    StableConstants,
    StableResult,
    constants_from,
    solve_stable,
    stable_design,
    stable_lt,
    stable_objective,
)

__all__ = [
    "DesignResult",
    "Eligibility",
    "JointResult",
    "LtResult",
    "QResult",
    "SolverError",
    "StableConstants",
    "StableResult",
    "bound_optimal_lt",
    "compare_eligibility",
    "constants_from",
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
    "solve_stable",
    "stable_design",
    "stable_lt",
    "stable_objective",
]
