"""Input checks shared by the bounds (internal).

Every bound validates its inputs here and raises :class:`~cistheory.errors.CISInputError`
naming the field and value; nothing is clipped and nothing returns NaN.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._arrays import FloatArray, as_float_array, as_simplex, exit_axes, first_bad
from ..errors import CISInputError
from ..system.participation import check_q

__all__ = [
    "STEP_ULPS",
    "as_result",
    "check_broadcast",
    "check_q_beta",
    "check_sgd_common",
    "check_smooth_convex",
    "check_weights",
    "per_pair",
]


STEP_ULPS = 4.0 * np.finfo(np.float64).eps
"""A step ``eta`` computed as ``1/L`` may give ``eta * L = 1 + 2**-52``; products up to this
many ulps above 1 count as ``eta <= 1/L`` (rounding of the user's division, not a clip).
Likewise ``mu <= L`` is checked up to this relative rounding (mu = L on isotropic problems)."""


def as_result(x: NDArray[np.float64]) -> float | FloatArray:
    """A 0-d array as a Python float, anything else as an array."""
    arr = np.asarray(x, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr


def check_weights(lam: ArrayLike, lt: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Validate serving shares and training weights: both on the simplex, supp(lam) in supp(lt)."""
    lam_a = as_simplex(lam, "lam")
    lt_a = as_simplex(lt, "lt")
    if lam_a.shape != lt_a.shape:
        raise CISInputError(
            "lt", lt_a.tolist(), f"expected {lam_a.size} weights (one per exit of lam)"
        )
    bad = (lam_a > 0) & (lt_a == 0)
    if bad.any():
        k = int(np.argmax(bad))
        raise CISInputError(
            f"lt[{k + 1}]",
            0.0,
            f"exit {k + 1} serves requests (lam = {lam_a[k]!r}) but has training weight 0",
        )
    return lam_a, lt_a


def check_smooth_convex(L: float, mu: float, *, mu_name: str = "mu", L_name: str = "L") -> None:
    """Check ``0 < mu <= L`` (up to :data:`STEP_ULPS`)."""
    if not mu > 0:
        raise CISInputError(mu_name, mu, "strong convexity must be > 0")
    # mu = L happens (isotropic problems); computed constants may then differ by rounding.
    if mu > L * (1.0 + STEP_ULPS):
        raise CISInputError(L_name, L, f"smoothness must be >= {mu_name} = {mu!r}")


def check_q_beta(q: ArrayLike, beta_: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Check a table ``q`` (:func:`~cistheory.system.participation.check_q`) and pair weights
    ``beta`` of the same shape, positive only where ``q > 0``."""
    qa = check_q(q)
    ba = as_float_array(beta_, "beta", nonneg=True, axes=("node", "exit"))
    if ba.shape != qa.shape:
        raise CISInputError("beta", ba.tolist(), f"expected shape {qa.shape} (as q)")
    first_bad(
        "beta",
        ba,
        (ba > 0) & (qa == 0),
        "pair has positive weight but is never picked (q = 0)",
        axes=("node", "exit"),
    )
    return qa, ba


def per_pair(x: ArrayLike, field: str, shape: tuple[int, int]) -> FloatArray:
    """A per-exit ``(K,)`` or per-pair ``(N, K)`` non-negative array, broadcast to ``(N, K)``."""
    arr = as_float_array(x, field, nonneg=True, axes=exit_axes(x))
    if arr.shape not in {(shape[1],), shape}:
        raise CISInputError(
            field, arr.tolist(), f"expected {shape[1]} values (one per exit) or shape {shape}"
        )
    return np.broadcast_to(arr, shape).astype(np.float64)


def check_sgd_common(
    t: ArrayLike, L_t: ArrayLike, mu_t: ArrayLike, V: ArrayLike, gap0: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Check the arguments Theorem 2's two bounds share."""
    ta = as_float_array(t, "t", nonneg=True)
    first_bad("t", ta, ta != np.floor(ta), "the number of updates must be an integer")
    lt_ = as_float_array(L_t, "L_t", positive=True)
    mt = as_float_array(mu_t, "mu_t", positive=True)
    va = as_float_array(V, "V", nonneg=True)
    g0 = as_float_array(gap0, "gap0", nonneg=True)
    try:
        lt_b, mt_b = np.broadcast_arrays(lt_, mt)
    except ValueError as exc:
        raise CISInputError("mu_t", mt.shape, f"does not broadcast with L_t ({exc})") from None
    first_bad("L_t", lt_b, mt_b > lt_b * (1.0 + STEP_ULPS), "smoothness must be >= mu_t")
    return ta, lt_, mt, va, g0


def check_broadcast(**arrays: FloatArray) -> None:
    """Raise unless the arrays broadcast together."""
    try:
        np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        shapes = {k: v.shape for k, v in arrays.items()}
        raise CISInputError("shapes", shapes, "arguments do not broadcast together") from None
