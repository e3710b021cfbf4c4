"""Array types and input checks shared by the package (internal).

Every check raises :class:`~cistheory.errors.CISInputError` naming the field and the value.
Entries of tables are named as the documentation names them: nodes by their id, exits from 1,
e.g. ``q[edge-2, 1]`` for node ``edge-2``'s first exit. The axes of an array say which is
which (``axes=("node", "exit")``); without ``axes`` an entry is named by its 0-based index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import CISInputError

__all__ = [
    "Axis",
    "BoolArray",
    "FloatArray",
    "IntArray",
    "as_float_array",
    "as_simplex",
    "check_scalar",
    "entry_name",
    "exit_axes",
    "first_bad",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

Axis = Literal["node", "exit", "index"]
"""How an axis is named in messages: ``node`` by id (``labels``), ``exit`` from 1."""


def entry_name(
    field: str,
    idx: Sequence[int] | NDArray[Any],
    axes: Sequence[Axis] | None = None,
    labels: Sequence[str] | None = None,
) -> str:
    """The name of entry ``idx`` of the table ``field``, e.g. ``q[3, 2]`` or ``lt[1]``.

    Examples
    --------
    >>> entry_name("q", (0, 1), ("node", "exit"), ["cloud", "edge"])
    'q[cloud, 2]'
    >>> entry_name("lt", (0,), ("exit",))
    'lt[1]'
    """
    parts = [int(i) for i in idx]
    if not parts:
        return field
    names: list[str] = []
    for j, i in enumerate(parts):
        axis = axes[j] if axes is not None and j < len(axes) else "index"
        if axis == "node":
            names.append(str(labels[i]) if labels is not None else str(i))
        elif axis == "exit":
            names.append(str(i + 1))
        else:
            names.append(str(i))
    return f"{field}[{', '.join(names)}]"


def exit_axes(x: ArrayLike) -> tuple[Axis, ...]:
    """How to name the entries of a per-exit ``(K,)`` or per-pair ``(N, K)`` array.

    Examples
    --------
    >>> exit_axes([0.1, 0.2]), exit_axes([[0.1, 0.2]])
    (('exit',), ('node', 'exit'))
    """
    try:
        nd = np.ndim(x)
    except (TypeError, ValueError):  # ragged: as_float_array refuses it with its own message
        return ("exit",)
    return ("node", "exit") if nd == 2 else ("exit",)


def first_bad(
    field: str,
    arr: ArrayLike,
    bad: ArrayLike,
    reason: str,
    *,
    axes: Sequence[Axis] | None = None,
    labels: Sequence[str] | None = None,
) -> None:
    """Raise for the first entry of ``arr`` (broadcast to ``bad``'s shape) where ``bad``."""
    mask = np.asarray(bad, dtype=bool)
    if not mask.any():
        return
    values = np.asarray(arr)
    shape = np.broadcast_shapes(values.shape, mask.shape)
    full = np.broadcast_to(values, shape)
    idx = tuple(int(i) for i in np.argwhere(np.broadcast_to(mask, shape))[0])
    name = field if values.ndim == 0 else entry_name(field, idx, axes, labels)
    value = full[idx]
    raise CISInputError(name, value.item() if hasattr(value, "item") else value, reason)


def as_float_array(
    x: ArrayLike,
    field: str,
    *,
    ndim: int | None = None,
    shape: Sequence[int] | None = None,
    nonneg: bool = False,
    positive: bool = False,
    allow_inf: bool = False,
    axes: Sequence[Axis] | None = None,
    labels: Sequence[str] | None = None,
) -> FloatArray:
    """Convert to a float array and check it, raising :class:`CISInputError` on failure.

    ``labels`` alone (without ``axes``) names a 1-d array's entries by node id.
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CISInputError(field, x, f"not a numeric array ({exc})") from None
    if ndim is not None and arr.ndim != ndim:
        raise CISInputError(field, x, f"expected a {ndim}-d array, got shape {arr.shape}")
    if shape is not None and tuple(arr.shape) != tuple(shape):
        raise CISInputError(field, x, f"expected shape {tuple(shape)}, got {arr.shape}")
    if axes is None and labels is not None:
        axes = ("node",)
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    first_bad(field, arr, bad, "must be a finite number", axes=axes, labels=labels)
    if positive:
        first_bad(field, arr, arr <= 0, "must be > 0", axes=axes, labels=labels)
    elif nonneg:
        first_bad(field, arr, arr < 0, "must be >= 0", axes=axes, labels=labels)
    return arr


def as_simplex(x: ArrayLike, field: str, *, atol: float = 1e-9) -> FloatArray:
    """Check that ``x`` is a probability vector over the exits (non-negative, sums to one).

    The sum may differ from one by ``atol`` per entry (rounding of user-given decimals);
    nothing is normalised.
    """
    arr = as_float_array(x, field, ndim=1, nonneg=True, axes=("exit",))
    if arr.size == 0:
        raise CISInputError(field, x, "must not be empty")
    total = float(arr.sum())
    if abs(total - 1.0) > atol * max(1, arr.size):
        raise CISInputError(field, arr.tolist(), f"must sum to 1 (sums to {total!r})")
    return arr


def check_scalar(x: Any, field: str, *, positive: bool = False, nonneg: bool = False) -> float:
    """Check a finite scalar, optionally positive or non-negative."""
    if isinstance(x, bool):
        raise CISInputError(field, x, "must be a number")
    try:
        val = float(x)
    except (TypeError, ValueError, OverflowError):
        raise CISInputError(field, x, "must be a number") from None
    if not np.isfinite(val):
        raise CISInputError(field, x, "must be a finite number")
    if positive and val <= 0:
        raise CISInputError(field, x, "must be > 0")
    if nonneg and val < 0:
        raise CISInputError(field, x, "must be >= 0")
    return val
