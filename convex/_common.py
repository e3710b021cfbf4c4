"""Shared result plumbing of the solvers (internal)."""

from __future__ import annotations

# Solver preference of every cvxpy program in the package: CLARABEL (interior point, high
# accuracy), then SCS (first order) when CLARABEL fails or is not installed.
SOLVERS: tuple[str, ...] = ("CLARABEL", "SCS")


class SolverError(RuntimeError):
    """A convex solver failed; the message says which solver, its status and why."""
