"""Small array validators shared by the package (internal)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import CISInputError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


def _index_str(idx: Any) -> str:
    if isinstance(idx, tuple):
        return "[" + ", ".join(str(int(i)) for i in idx) + "]"
    return f"[{int(idx)}]"


def as_float_array(
    x: ArrayLike,
    field: str,
    *,
    ndim: int | None = None,
    shape: Sequence[int] | None = None,
    nonneg: bool = False,
    positive: bool = False,
    allow_inf: bool = False,
    labels: Sequence[str] | None = None,
) -> FloatArray:
    """Convert to a float array and check it, raising :class:`CISInputError` on failure."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CISInputError(field, x, f"not a numeric array ({exc})") from None
    if ndim is not None and arr.ndim != ndim:
        raise CISInputError(field, x, f"expected a {ndim}-d array, got shape {arr.shape}")
    if shape is not None and tuple(arr.shape) != tuple(shape):
        raise CISInputError(field, x, f"expected shape {tuple(shape)}, got {arr.shape}")
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if bad.any():
        idx = np.argwhere(bad)[0]
        raise CISInputError(
            _field_at(field, idx, labels), arr[tuple(idx)].item(), "must be a finite number"
        )
    if positive:
        bad = arr <= 0
        if bad.any():
            idx = np.argwhere(bad)[0]
            raise CISInputError(
                _field_at(field, idx, labels), arr[tuple(idx)].item(), "must be > 0"
            )
    elif nonneg:
        bad = arr < 0
        if bad.any():
            idx = np.argwhere(bad)[0]
            raise CISInputError(
                _field_at(field, idx, labels), arr[tuple(idx)].item(), "must be >= 0"
            )
    return arr


def _field_at(field: str, idx: NDArray[Any], labels: Sequence[str] | None) -> str:
    if idx.size == 0:
        return field
    if labels is not None and idx.size == 1:
        return f"{field}[{labels[int(idx[0])]!s}]"
    return field + _index_str(tuple(idx))


def as_simplex(x: ArrayLike, field: str, *, atol: float = 1e-9) -> FloatArray:
    """Check that ``x`` is a probability vector (non-negative, sums to one within ``atol``)."""
    arr = as_float_array(x, field, ndim=1, nonneg=True)
    if arr.size == 0:
        raise CISInputError(field, x, "must not be empty")
    total = float(arr.sum())
    if abs(total - 1.0) > atol * max(1, arr.size):
        raise CISInputError(field, x, f"must sum to 1 (sums to {total!r})")
    return arr


def check_scalar(x: float, field: str, *, positive: bool = False, nonneg: bool = False) -> float:
    """Check a finite scalar, optionally positive or non-negative."""
    try:
        val = float(x)
    except (TypeError, ValueError):
        raise CISInputError(field, x, "must be a number") from None
    if not np.isfinite(val):
        raise CISInputError(field, x, "must be a finite number")
    if positive and val <= 0:
        raise CISInputError(field, x, "must be > 0")
    if nonneg and val < 0:
        raise CISInputError(field, x, "must be >= 0")
    return val
