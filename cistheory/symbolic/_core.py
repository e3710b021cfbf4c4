r"""The shared machinery of the symbolic layer: bound objects, facts and the one check.

:func:`prove_equal` is the project's single way of asking sympy whether two expressions
are equal: three-valued (``True``, ``False`` or ``None``), and ``None`` (unproven) counts as a
failure wherever it is used (:class:`SymbolicFact`, ``proofs_check``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from ..errors import CISInputError

__all__ = [
    "ETA",
    "GAMMA",
    "GAMMA_C",
    "GAP0",
    "L_T",
    "MU",
    "MU_T",
    "N_POINTS",
    "RESIDUAL_SEED",
    "B",
    "E",
    "L",
    "SymbolicBound",
    "SymbolicFact",
    "T",
    "V",
    "check_dim",
    "prove_equal",
    "residual_rng",
    "sym_array",
]

RESIDUAL_SEED = 20_240_301
"""Seed of the random points at which every fact's numeric residual is evaluated."""

N_POINTS = 16
"""Random points per numeric residual."""

L, MU, MU_T, L_T, GAMMA_C, E = sp.symbols("L mu mu_t L_t Gamma e", positive=True)
T = sp.Symbol("t", nonnegative=True, integer=True)
ETA, V, GAP0, B, GAMMA = sp.symbols("eta V gap0 b gamma", positive=True)


def sym_array(name: str, shape: tuple[int, ...], **assumptions: bool) -> np.ndarray:
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


def prove_equal(lhs: Any, rhs: Any) -> bool | None:
    """Three-valued equality of two sympy expressions: ``True`` (proven), ``False``
    (refuted) or ``None`` (sympy cannot decide, which callers count as unproven).

    The difference is simplified and asked ``equals(0)``; matrices compare entrywise (all
    ``True`` gives ``True``, any ``False`` gives ``False``, otherwise ``None``).

    Examples
    --------
    >>> x = sp.Symbol("x", positive=True)
    >>> prove_equal(sp.sqrt(x**2), x), prove_equal(x, x + 1)
    (True, False)
    """
    if isinstance(lhs, sp.MatrixBase) or isinstance(rhs, sp.MatrixBase):
        verdicts = [prove_equal(a, b) for a, b in zip(sp.Matrix(lhs), sp.Matrix(rhs), strict=True)]
        if all(v is True for v in verdicts):
            return True
        if any(v is False for v in verdicts):
            return False
        return None
    diff = sp.simplify(sp.sympify(lhs) - sp.sympify(rhs))
    verdict = diff.equals(0)
    return None if verdict is None else bool(verdict)


def check_dim(n: int, name: str) -> int:
    """A positive integer dimension, or :class:`~cistheory.errors.CISInputError`."""
    if int(n) != n or int(n) < 1:
        raise CISInputError(name, n, "must be a positive integer")
    return int(n)


def residual_rng() -> np.random.Generator:
    """The generator of the numeric residuals (seeded with :data:`RESIDUAL_SEED`)."""
    return np.random.default_rng(RESIDUAL_SEED)
