r"""Quadratic per node-exit objectives with nested parts: the exactly solvable test problem.

Node :math:`i`'s loss of exit :math:`k` is a quadratic supported on the exit's part
:math:`P_k` (the first :math:`d_k` coordinates),

.. math:: f_{i,k}(w) = \tfrac12 w^\top H_{i,k} w - b_{i,k}^\top w + c_{i,k},

so every constant of ``docs/theory.md`` (smoothness, strong convexity, minimisers,
:math:`\Gamma`) follows from eigenvalues and linear solves. :func:`nested_least_squares`
builds them from node-specific least-squares data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from .._arrays import FloatArray
from ..errors import CISInputError
from ..system.participation import Participation
from ..system.tree import CIS

__all__ = ["QuadraticProblem", "nested_least_squares"]


@dataclass(frozen=True)
class QuadraticProblem:
    r"""Per node-exit quadratics.

    .. math:: f_{i,k}(w) = \tfrac12 w^\top H_{i,k} w - b_{i,k}^\top w + c_{i,k}

    Attributes
    ----------
    cis : CIS
    part : Participation
    H : ndarray (N, K, D, D)
        Hessians, zero outside :math:`P_k \times P_k`.
    b : ndarray (N, K, D)
    c : ndarray (N, K)
    mask : ndarray of bool (K, D)
        :math:`P_k`: the first :math:`d_k` coordinates.
    noise : ndarray (N, K)
        Noise standard deviations :math:`s_{i,k}`.
    """

    cis: CIS
    part: Participation
    H: FloatArray
    b: FloatArray
    c: FloatArray
    mask: NDArray[np.bool_]
    noise: FloatArray

    @property
    def n_exits(self) -> int:
        """:math:`K`."""
        return int(self.mask.shape[0])

    def exit_quadratic(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        r"""Per-exit :math:`(H_k, b_k, c_k)` of :math:`F_k = \sum_{i\in E_k} (m_i/M_k) f_{i,k}`."""
        frac = self.part.data_fraction()  # (N, K)
        hk = np.einsum("ik,ikde->kde", frac, self.H)
        bk = np.einsum("ik,ikd->kd", frac, self.b)
        ck = np.einsum("ik,ik->k", frac, self.c)
        return hk, bk, ck

    def weighted(self, weights: FloatArray) -> tuple[FloatArray, FloatArray, float]:
        r""":math:`(H, b, c)` of :math:`\sum_k w_k F_k`."""
        hk, bk, ck = self.exit_quadratic()
        return (
            np.einsum("k,kde->de", weights, hk),
            np.einsum("k,kd->d", weights, bk),
            float(weights @ ck),
        )

    def noise_cov(self) -> FloatArray:
        r"""Covariance :math:`\Sigma_{i,k}` of one local step's gradient noise, (N, K, D, D).

        The noise of pair :math:`(i, k)` is uniform on the sphere of radius :math:`s_{i,k}`
        in :math:`P_k`, so :math:`\Sigma_{i,k} = (s_{i,k}^2/d_k) I_{P_k}` and
        :math:`\mathrm{tr}\,\Sigma_{i,k} = s^2_{i,k}`.
        """
        dims = self.mask.sum(axis=1).astype(np.float64)  # (K,)
        diag = self.mask[:, :, None] & np.eye(self.mask.shape[1], dtype=bool)[None]
        per_exit = diag.astype(np.float64) / dims[:, None, None]  # (K, D, D)
        return np.asarray((self.noise**2)[:, :, None, None] * per_exit[None], dtype=np.float64)

    def with_participation(self, part: Participation) -> QuadraticProblem:
        """The same pair losses with another participation (``part.q`` of the same shape)."""
        if part.q.shape != self.part.q.shape:
            raise CISInputError("part", part.q.shape, f"expected shape {self.part.q.shape}")
        return replace(self, part=part)

    def exit_minima(self) -> FloatArray:
        r""":math:`\inf F_k` for every exit (minimised over :math:`P_k`)."""
        hk, bk, ck = self.exit_quadratic()
        out = np.empty(self.n_exits)
        for k in range(self.n_exits):
            m = self.mask[k]
            sol = np.linalg.solve(hk[k][np.ix_(m, m)], bk[k][m])
            out[k] = ck[k] - 0.5 * float(bk[k][m] @ sol)
        return out


def nested_least_squares(
    cis: CIS,
    part: Participation,
    dims: NDArray[np.int64],
    *,
    rng: np.random.Generator,
    ridge: float,
    heterogeneity: float,
    noise: float,
    whiten: bool = False,
) -> QuadraticProblem:
    r"""Nested least squares: exit :math:`k` predicts with the first :math:`d_k` coordinates.

    .. math::
        f_{i,k}(w) = \frac{1}{2 m_i}\lVert X_{i,:d_k} w_{:d_k} - y_i\rVert^2
                     + \frac{\rho}{2}\lVert w_{:d_k}\rVert^2 ,

    with node-specific feature shifts and targets (scale ``heterogeneity``), so exits and
    nodes disagree. ``whiten`` makes every node's features orthonormal
    (:math:`X_i^\top X_i / m_i = I`). Every pair's gradient noise has standard deviation
    ``noise``. The data are drawn from ``rng``.
    """
    n, k_ex = part.q.shape
    sizes = cis.data
    dd = int(dims[-1])
    mask = np.arange(dd)[None, :] < np.asarray(dims)[:, None]
    w_true = rng.normal(size=dd) / np.sqrt(np.arange(1, dd + 1))
    h = np.zeros((n, k_ex, dd, dd))
    b = np.zeros((n, k_ex, dd))
    c = np.zeros((n, k_ex))
    for i in range(n):
        mi = int(sizes[i])
        shift = heterogeneity * rng.normal(size=dd)
        x = rng.normal(size=(mi, dd)) + shift
        if whiten:
            x = np.sqrt(mi) * np.linalg.qr(x)[0]
        wi = w_true + 0.5 * heterogeneity * rng.normal(size=dd)
        y = x @ wi + 0.3 * rng.normal(size=mi)
        for k in range(k_ex):
            xs = x[:, mask[k]]
            idx = np.flatnonzero(mask[k])
            h[i, k][np.ix_(idx, idx)] = xs.T @ xs / mi + ridge * np.eye(idx.size)
            b[i, k, idx] = xs.T @ y / mi
            c[i, k] = float(y @ y) / (2 * mi)
    noise_a = np.full((n, k_ex), float(noise))
    return QuadraticProblem(cis=cis, part=part, H=h, b=b, c=c, mask=mask, noise=noise_a)
