"""Shared plumbing of the solvers (internal): solver order, the solver error, loop limits."""

from __future__ import annotations

import numpy as np

from cistheory.errors import CISInputError

__all__ = ["SOLVERS", "SolverError", "check_max_iter"]

# Solver preference of every cvxpy program in the package: CLARABEL (interior point, high
# accuracy), then SCS (first order) when CLARABEL fails or is not installed.
SOLVERS: tuple[str, ...] = ("CLARABEL", "SCS")


class SolverError(RuntimeError):
    """A convex solver failed; the message says which solver, its status and why."""


def check_max_iter(max_iter: object) -> int:
    """``max_iter`` as an ``int``, or :class:`CISInputError` unless it is an integer >= 1.

    Examples
    --------
    >>> check_max_iter(5)
    5
    >>> check_max_iter(0)
    Traceback (most recent call last):
    ...
    cistheory.errors.CISInputError: max_iter = 0: must be an integer >= 1
    """
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 1:
        raise CISInputError("max_iter", max_iter, "must be an integer >= 1")
    return int(max_iter)
