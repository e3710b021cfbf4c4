"""Input checks shared by the bounds (internal).

Every bound validates its inputs here and raises :class:`~cistheory.errors.CISInputError`
naming the field and value; nothing is clipped and nothing returns NaN.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._arrays import FloatArray, as_float_array, as_simplex, exit_axes, first_bad
from ..errors import CISInputError
from ..system.participation import ROW_ATOL, check_q

__all__ = [
    "STEP_ULPS",
    "as_result",
    "check_broadcast",
    "check_q_beta",
    "check_sgd_common",
    "check_smooth_convex",
    "check_weights",
    "draw_coupling",
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


def draw_coupling(qa: FloatArray, per_round: int | None) -> float:
    r"""The coupling :math:`c = (N - n)/(n(N - 1))` of ``per_round`` :math:`= n` of the
    :math:`N` rows of ``qa`` drawn uniformly without replacement (Lemma 2f of
    ``docs/theory.md``); 0 for ``None`` (nodes pick independently), for :math:`n = N` and for
    :math:`N = 1`.

    ``qa`` holds the inclusion table :math:`q_{i,k} = (n/N)\,r_{i,k}`, so every row must sum
    to at most :math:`n/N` (up to :data:`~cistheory.system.participation.ROW_ATOL`).
    """
    if per_round is None:
        return 0.0
    n_nodes = qa.shape[0]
    if isinstance(per_round, bool) or not isinstance(per_round, int | np.integer):
        raise CISInputError("per_round", per_round, "must be an integer or None")
    if not 1 <= per_round <= n_nodes:
        raise CISInputError("per_round", per_round, f"must lie in 1..{n_nodes} (the nodes)")
    n = int(per_round)
    pi = n / n_nodes
    rows = qa.sum(axis=1)
    over = rows > pi * (1.0 + ROW_ATOL)
    if over.any():
        i = int(np.argmax(over))
        raise CISInputError(
            f"q[{i}]", qa[i].tolist(),
            f"row sums to {float(rows[i])!r} > per_round/N = {pi!r} (a drawn node trains at "
            "most one exit)",
        )
    return 0.0 if n_nodes == 1 else (n_nodes - n) / (n * (n_nodes - 1))
