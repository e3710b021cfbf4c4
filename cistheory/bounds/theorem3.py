r"""Theorem 3 of ``docs/theory.md``: uniform deviation of the per-exit objectives from their
risks (checked by ``proofs_check.theorem3``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import FloatArray, as_float_array, check_scalar
from ..errors import CISInputError
from ._checks import check_broadcast

__all__ = ["generalization_bound", "linear_rademacher"]


def linear_rademacher(M: ArrayLike, rho: ArrayLike, W: ArrayLike, X: ArrayLike) -> FloatArray:
    r"""Rademacher complexity bound of a Lipschitz loss of linear predictors (Theorem 3).

    For :math:`\|w\| \le W`, :math:`\|x\| \le X` and a loss :math:`\rho`-Lipschitz in
    :math:`\langle w, x\rangle`, on :math:`M` samples (``docs/theory.md``, Theorem 3)

    .. math:: \mathfrak R_M \le \frac{\rho W X}{\sqrt M}.

    Parameters
    ----------
    M : array_like
        Sample counts (> 0), e.g. :math:`M_k` per exit.
    rho, W, X : array_like
        Non-negative constants (broadcast with ``M``).

    Returns
    -------
    ndarray

    Examples
    --------
    >>> linear_rademacher([100, 400], 1.0, 2.0, 1.0).tolist()
    [0.2, 0.1]
    """
    Ma = as_float_array(M, "M", positive=True, axes=("exit",))
    r = as_float_array(rho, "rho", nonneg=True)
    w = as_float_array(W, "W", nonneg=True)
    x = as_float_array(X, "X", nonneg=True)
    check_broadcast(M=Ma, rho=r, W=w, X=x)
    return np.asarray(r * w * x / np.sqrt(Ma), dtype=np.float64)


def generalization_bound(M: ArrayLike, delta: float, B: float, rademacher: ArrayLike) -> FloatArray:
    r"""Uniform deviation per exit: Theorem 3 of ``docs/theory.md``.

    Losses in :math:`[0, B]`. With probability at least :math:`1 - \delta`, simultaneously
    for all :math:`K` exits, :math:`\sup_w |R_k(w) - F_k(w)| \le \varepsilon_k` with

    .. math::
        \varepsilon_k = 2\,\mathfrak R_{M_k} + B \sqrt{\frac{\ln(2K/\delta)}{2 M_k}},

    :math:`K` the length of ``M`` (a union bound over the exits). Hence
    :math:`R_\lambda(w) - \min R_\lambda \le F_\lambda(w) - F_\lambda^*
    + 2\sum_k \lambda_k \varepsilon_k`.

    Parameters
    ----------
    M : array_like, shape (K,)
        Training samples per exit :math:`M_k > 0`.
    delta : float
        Failure probability in (0, 1).
    B : float
        Loss range :math:`B > 0`.
    rademacher : array_like, shape (K,) or scalar
        Rademacher complexities :math:`\mathfrak R_{M_k} \ge 0` (e.g. from
        :func:`linear_rademacher`).

    Returns
    -------
    ndarray, shape (K,)

    Examples
    --------
    >>> generalization_bound([50.0], 2 * np.exp(-1.0), 1.0, 0.0).tolist()
    [0.1]
    """
    Ma = as_float_array(M, "M", positive=True, axes=("exit",))
    if Ma.ndim != 1 or Ma.size == 0:
        raise CISInputError("M", Ma.tolist(), "expected a non-empty 1-d array (one per exit)")
    d = check_scalar(delta, "delta")
    if not 0 < d < 1:
        raise CISInputError("delta", delta, "a probability must lie in (0, 1)")
    b = check_scalar(B, "B", positive=True)
    rad = as_float_array(rademacher, "rademacher", nonneg=True, axes=("exit",))
    if rad.shape not in {(), Ma.shape}:
        raise CISInputError("rademacher", rad.tolist(), f"expected a scalar or {Ma.size} values")
    k = Ma.size
    return np.asarray(2.0 * rad + b * np.sqrt(np.log(2.0 * k / d) / (2.0 * Ma)), dtype=np.float64)
