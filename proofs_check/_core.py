r"""Result objects and the two kinds of check: symbolic (sympy, three-valued) and numeric.

A *numeric* check evaluates an inequality ``lhs <= rhs`` (or an identity ``lhs == rhs``) on
many instances and records the worst relative slack

.. math:: \mathrm{slack} = \frac{\mathrm{rhs} - \mathrm{lhs}}{\max(|\mathrm{lhs}|,
    |\mathrm{rhs}|, \mathrm{floor})}

(for an identity, minus the relative residual). A check passes when the worst slack is
``>= -tol``; ``tol`` is stated with each check.

A *symbolic* check asks sympy whether an expression equals zero. ``Expr.equals`` answers
True, False or None; anything but True fails (None means unproven). Next to each symbolic
step a numeric residual at random points is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "FLOAT_TOL",
    "CheckResult",
    "Report",
    "Tightness",
    "numeric_identity",
    "numeric_inequality",
    "symbolic_zero",
    "tightness",
]

# Relative tolerance for float64 evaluations of both sides of an inequality: the
# expressions here are sums and products of at most a few thousand float64 terms and small
# linear solves of well-conditioned matrices (condition number <= 1e3 by construction), whose
# relative rounding error is far below 1e-9; a real violation of a bound is orders larger.
FLOAT_TOL = 1e-9

Kind = Literal["symbolic", "numeric"]


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one proof step checked on some instances.

    Attributes
    ----------
    name : str
        Unique identifier, e.g. ``"theorem1.bias_bound"``.
    statement : str
        The statement of ``docs/theory.md`` the step belongs to, e.g. ``"Theorem 1(a)"``.
    step : str
        What is checked, in words.
    kind : {"symbolic", "numeric"}
    passed : bool
    instances : int
        Instances (or random evaluation points for a symbolic step) tried.
    worst_slack : float
        Smallest relative slack over the instances (negative: violated).
    tol : float
        Tolerance applied to the slack.
    residual : float or None
        For symbolic steps, the largest absolute numeric residual at random points.
    detail : str
        Extra information (e.g. a violation frequency).
    skipped : bool
        The check could not run (an optional dependency is missing); it neither passes nor
        fails the run, and the report says so.
    """

    name: str
    statement: str
    step: str
    kind: Kind
    passed: bool
    instances: int
    worst_slack: float
    tol: float = FLOAT_TOL
    residual: float | None = None
    detail: str = ""
    skipped: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (non-finite floats become strings)."""
        return {k: _jsonable(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Tightness:
    """How tight an upper bound is: bound / actual over the instances.

    Attributes
    ----------
    statement : str
    bound : str
        Which bound (e.g. ``"bias_bound"``).
    instances : int
    median_ratio : float
    worst_ratio : float
        The largest ratio (the loosest instance); the smallest is ``best_ratio``.
    best_ratio : float
        The smallest ratio (closest to 1; below 1 would be a violation).
    """

    statement: str
    bound: str
    instances: int
    median_ratio: float
    worst_ratio: float
    best_ratio: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {k: _jsonable(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Report:
    """All checks and tightness ratios of one run."""

    checks: tuple[CheckResult, ...]
    tightness: tuple[Tightness, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        """True when every check passed (and there is at least one)."""
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        """The checks that failed."""
        return tuple(c for c in self.checks if not c.passed)

    def as_dict(self) -> dict[str, Any]:
        """The JSON object printed by ``python -m proofs_check --json``."""
        return {
            "checks": [c.as_dict() for c in self.checks],
            "tightness": [t.as_dict() for t in self.tightness],
            "passed": self.passed,
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    return v


def _relative_slack(lhs: np.ndarray, rhs: np.ndarray, floor: float) -> np.ndarray:
    scale = np.maximum(np.maximum(np.abs(lhs), np.abs(rhs)), floor)
    return np.asarray((rhs - lhs) / scale, dtype=np.float64)


def numeric_inequality(
    name: str,
    statement: str,
    step: str,
    lhs: ArrayLike,
    rhs: ArrayLike,
    *,
    floor: float = 1e-12,
    tol: float = FLOAT_TOL,
    detail: str = "",
) -> CheckResult:
    """Check ``lhs <= rhs`` elementwise; instances = number of elements.

    ``floor`` keeps the relative slack defined when both sides are ~0 (then the absolute
    slack is compared with ``tol * floor``).
    """
    lo = np.atleast_1d(np.asarray(lhs, dtype=np.float64)).ravel()
    hi = np.atleast_1d(np.asarray(rhs, dtype=np.float64)).ravel()
    lo, hi = np.broadcast_arrays(lo, hi)
    finite = bool(np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)))
    slack = _relative_slack(lo, hi, floor) if lo.size else np.array([np.inf])
    worst = float(slack.min()) if finite else float("-inf")
    return CheckResult(
        name=name,
        statement=statement,
        step=step,
        kind="numeric",
        passed=finite and lo.size > 0 and worst >= -tol,
        instances=int(lo.size),
        worst_slack=worst,
        tol=tol,
        detail=detail,
    )


def numeric_identity(
    name: str,
    statement: str,
    step: str,
    lhs: ArrayLike,
    rhs: ArrayLike,
    *,
    floor: float = 1e-12,
    tol: float = FLOAT_TOL,
    detail: str = "",
) -> CheckResult:
    """Check ``lhs == rhs`` elementwise up to relative ``tol``; slack = -relative residual."""
    lo = np.asarray(lhs, dtype=np.float64)
    hi = np.asarray(rhs, dtype=np.float64)
    lo, hi = np.broadcast_arrays(np.atleast_1d(lo), np.atleast_1d(hi))
    finite = bool(np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)))
    scale = np.maximum(np.maximum(np.abs(lo), np.abs(hi)), floor)
    res = np.abs(lo - hi) / scale
    # instances: leading axis (one instance may compare a vector)
    n = int(lo.shape[0]) if lo.ndim else 1
    worst = -float(res.max()) if finite and res.size else float("-inf")
    return CheckResult(
        name=name,
        statement=statement,
        step=step,
        kind="numeric",
        passed=finite and worst >= -tol,
        instances=n,
        worst_slack=worst,
        tol=tol,
        detail=detail,
    )


def symbolic_zero(
    name: str,
    statement: str,
    step: str,
    expr: Any,
    symbols: Sequence[Any],
    rng: np.random.Generator,
    *,
    points: int = 20,
    positive: Sequence[Any] = (),
    unit: Sequence[Any] = (),
    detail: str = "",
) -> CheckResult:
    """Prove ``expr == 0`` with sympy (three-valued, :func:`cistheory.symbolic.prove_equal`,
    the project's one sympy check) and record a numeric residual.

    Parameters
    ----------
    expr : sympy expression
        Should be identically zero.
    symbols : sequence of sympy symbols
        Free symbols, substituted with random values for the residual.
    positive : sequence of symbols
        Drawn from (0.1, 3) instead of (-3, 3).
    unit : sequence of symbols
        Drawn from (0.05, 0.95) (probabilities, step factors).
    """
    import sympy as sp

    from cistheory.symbolic import prove_equal

    verdict = prove_equal(expr, 0)
    proved = verdict is True
    f = sp.lambdify(list(symbols), expr, modules="numpy")
    worst = 0.0
    pos = set(positive)
    uni = set(unit)
    for _ in range(points):
        vals = []
        for s in symbols:
            if s in uni:
                vals.append(rng.uniform(0.05, 0.95))
            elif s in pos:
                vals.append(rng.uniform(0.1, 3.0))
            else:
                vals.append(rng.uniform(-3.0, 3.0))
        worst = max(worst, abs(float(f(*vals))))
    # The residual is evaluated in float64 on O(1) inputs: 1e-9 absolute is rounding.
    numeric_ok = worst <= 1e-9
    note = f"sympy equals(0) -> {verdict}"
    return CheckResult(
        name=name,
        statement=statement,
        step=step,
        kind="symbolic",
        passed=proved and numeric_ok,
        instances=points,
        worst_slack=0.0 if proved else float("-inf"),
        tol=1e-9,
        residual=worst,
        detail=(note + ("; " + detail if detail else "")),
    )


def tightness(statement: str, bound: str, bound_values: ArrayLike, actual: ArrayLike) -> Tightness:
    """Ratios bound / actual over instances with actual > 0."""
    b = np.asarray(bound_values, dtype=np.float64).ravel()
    a = np.asarray(actual, dtype=np.float64).ravel()
    keep = a > 1e-14
    r = b[keep] / a[keep]
    if r.size == 0:
        return Tightness(statement, bound, 0, float("nan"), float("nan"), float("nan"))
    return Tightness(
        statement=statement,
        bound=bound,
        instances=int(r.size),
        median_ratio=float(np.median(r)),
        worst_ratio=float(r.max()),
        best_ratio=float(r.min()),
    )


CheckFn = Callable[[np.random.Generator, int], tuple[list[CheckResult], list[Tightness]]]
