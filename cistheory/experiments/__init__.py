"""Experiments that measure the bounds of ``docs/theory.md`` against exact computations.

- :mod:`~cistheory.experiments.quadratic`: quadratic objectives with nested parts, whose
  every constant is exact;
- :mod:`~cistheory.experiments.validate_rates`: the algorithm run over many seeds on such a
  problem, measured against Theorems 1 and 2 (``cistheory validate-rates``).

This layer needs numpy (and scipy for a Student-t quantile).
"""

from __future__ import annotations

from .quadratic import QuadraticProblem, nested_least_squares
from .validate_rates import (
    RunResult,
    ValidationConfig,
    ValidationResult,
    build_problem,
    student_t_halfwidth,
    validate_rates,
    with_bound_scale,
    with_lt_bound_scale,
)

__all__ = [
    "QuadraticProblem",
    "RunResult",
    "ValidationConfig",
    "ValidationResult",
    "build_problem",
    "nested_least_squares",
    "student_t_halfwidth",
    "validate_rates",
    "with_bound_scale",
    "with_lt_bound_scale",
]
