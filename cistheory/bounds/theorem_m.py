r"""Theorem M of ``docs/theory.md`` (Section 4.16): a mode-resolved second-moment bound for
quadratic pair losses (checked by ``proofs_check.theorem_m``).

Lemma ES prices the sampling noise with one scalar, as if it were injected along the slowest
direction of :math:`F_{\tilde\lambda}`. For quadratic :math:`f_{i,k}` (Hessians
:math:`H_{i,k}`, e.g. linear models with the squared loss) the noise can be followed mode by
mode. Let :math:`H = \sum\beta_{i,k}H_{i,k} = V\mathrm{diag}(\lambda)V^\top`, :math:`P = I -
\eta H`, :math:`S_t = \mathbb E[u_tu_t^\top]` with :math:`u_t = w_t - w^*` and
:math:`d_j(t) = v_j^\top S_tv_j`. With :math:`\tau = 1`,

.. math::
    S_{t+1} = PS_tP + \eta^2\,\mathbb E\,\mathrm{Cov}(g_t\mid w_t)
    \preceq PS_tP + \eta^2\big[(1 + c)\,\mathcal C(S_t) + (1 + 1/c)\Sigma_s + \Sigma_n\big],

where :math:`\mathcal C(S) = \sum_i\mathrm{Cov}(X_i)` for :math:`X_i = \sum_k
\mathbb 1[i\to k](\beta_{i,k}/q_{i,k})H_{i,k}u` with :math:`uu^\top = S` (linear in
:math:`S`), :math:`\Sigma_s = \mathrm{Cov}(A(w^*))` and :math:`\Sigma_n = \sum\beta^2_{i,k}
\Sigma_{i,k}/q_{i,k}` (the noise covariances). Since :math:`v_j^\top\mathcal C(S)v_j =
\mathrm{tr}(M_jS)` with :math:`M_j \succeq 0`, and :math:`|S_{lm}| \le \sqrt{d_ld_m}` in the
eigenbasis,

.. math::
    d_j(t+1) \le (1 - \eta\lambda_j)^2d_j(t) + \eta^2(1 + c)\sqrt{d(t)}^\top|\tilde M_j|
    \sqrt{d(t)} + \eta^2\,v_j^\top\big((1 + 1/c)\Sigma_s + \Sigma_n\big)v_j,

:math:`\tilde M_j = V^\top M_jV`. By monotonicity the recursion, started at
:math:`d_j(0) = (v_j^\top u_0)^2` and minimised over :math:`c` at every step, bounds every
:math:`d_j(t)`; then :math:`\mathrm{tr}(AS_t) \le \sqrt{\hat d(t)}^\top|V^\top AV|\sqrt{\hat d(t)}`
for any symmetric :math:`A` (:func:`trace_bound`). Stability certificate: the spectral radius
of the non-negative matrix :math:`\mathrm{diag}((1 - \eta\lambda)^2) + \eta^2(1 + c)K`,
:math:`K_{jl} = \sum_m|\tilde M_j|_{lm}`, is below 1 for some :math:`c` (the linear recursion
with :math:`K` dominates the one above).

With every node fixed (no multiplicative noise) the diagonal recursion is exact: the bound
is an equality for :math:`\mathrm{tr}(HS_t)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import FloatArray, as_float_array, check_scalar
from ..errors import CISInputError
from ._checks import check_q_beta, draw_coupling

__all__ = ["ModalBound", "mean_deviation", "modal_bound", "trace_bound"]

C_GRID = tuple(float(x) for x in np.geomspace(1e-2, 1e2, 9))
"""Young's :math:`c` values minimised over at every step (any set gives a valid bound)."""


@dataclass(frozen=True)
class ModalBound:
    r"""Result of :func:`modal_bound`.

    Attributes
    ----------
    eigenvalues : ndarray (D,)
        :math:`\lambda_j`, the spectrum of :math:`H = \sum\beta_{i,k}H_{i,k}` (ascending).
    basis : ndarray (D, D)
        :math:`V` (columns :math:`v_j`).
    d : ndarray (T + 1, D)
        :math:`\hat d_j(t) \ge v_j^\top\mathbb E[u_tu_t^\top]v_j`.
    certified : bool
        The stability certificate holds (the bounds stay finite as :math:`T \to \infty`).
    radius : float
        The smallest spectral radius of the certificate matrix over the :math:`c` tried.
    """

    eigenvalues: FloatArray
    basis: FloatArray
    d: FloatArray
    certified: bool
    radius: float

    def trace(self, A: ArrayLike, t: int) -> float:
        r"""Upper bound of :math:`\mathrm{tr}(A\,\mathbb E[u_tu_t^\top])` (:func:`trace_bound`)."""
        return trace_bound(self.d[int(t)], self.basis, A)


def _outcome_cov(x: FloatArray, q: FloatArray, mean: FloatArray) -> FloatArray:
    """Covariance of a vector that is x[k] with probability q[k] and 0 otherwise (mean = sum
    q x), as a sum of non-negative terms over the outcomes."""
    dev = x - mean[None, :]
    out = np.einsum("k,kd,ke->de", q, dev, dev)
    idle = max(1.0 - float(q.sum()), 0.0)
    return np.asarray(out + idle * np.outer(mean, mean), dtype=np.float64)


def _operators(
    qa: FloatArray, ba: FloatArray, H: FloatArray, g: FloatArray, N: FloatArray, V: FloatArray,
    coupling: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r""":math:`|\tilde M_j|` (D, D, D), :math:`\mathrm{diag}(V^\top\Sigma_sV)`,
    :math:`\mathrm{diag}(V^\top\Sigma_nV)`; a draw's ``coupling`` :math:`c > 0` adds
    :math:`c\,\bar y_i\bar y_i^\top` to every node's covariance (Theorem M, fixed-count draw)."""
    dd = V.shape[0]
    m_abs = np.zeros((dd, dd, dd))
    sig_s = np.zeros((dd, dd))
    sig_n = np.zeros((dd, dd))
    for i in range(qa.shape[0]):
        ks = np.flatnonzero(qa[i] > 0)
        if ks.size == 0:
            continue
        qi, bi = qa[i, ks], ba[i, ks]
        x = (bi / qi)[:, None] * g[i, ks]
        g_bar = (bi[:, None] * g[i, ks]).sum(axis=0)
        sig_s += _outcome_cov(x, qi, g_bar)
        if coupling > 0.0:
            sig_s += coupling * np.outer(g_bar, g_bar)
        sig_n += np.einsum("k,kde->de", bi**2 / qi, N[i, ks])
        hv = np.einsum("kde,ej->kjd", H[i, ks], V)  # (k, j, D): H_ik v_j
        for j in range(dd):
            a = (bi / qi)[:, None] * hv[:, j, :]
            h_bar = (bi[:, None] * hv[:, j, :]).sum(axis=0)
            cov = _outcome_cov(a, qi, h_bar)
            if coupling > 0.0:
                cov = cov + coupling * np.outer(h_bar, h_bar)
            m_abs[j] += V.T @ cov @ V
    return np.abs(m_abs), np.diag(V.T @ sig_s @ V).copy(), np.diag(V.T @ sig_n @ V).copy()


# long: input checks of five arrays, then the recursion of the module docstring
def modal_bound(
    T: int,
    *,
    eta: float,
    q: ArrayLike,
    beta: ArrayLike,
    H_pair: ArrayLike,
    grad_opt: ArrayLike,
    noise_cov: ArrayLike,
    u0: ArrayLike,
    per_round: int | None = None,
) -> ModalBound:
    r"""Theorem M (module docstring): per-mode bounds :math:`\hat d(t)`, :math:`t = 0..T`.

    Parameters
    ----------
    T : int
        Rounds (>= 0), one local step each, server step 1.
    eta : float
        Step (> 0).
    q, beta : array (N, K)
        Participation and pair weights.
    H_pair : array (N, K, D, D)
        Pair Hessians :math:`H_{i,k}` (symmetric; the :math:`f_{i,k}` are quadratics).
    grad_opt : array (N, K, D)
        :math:`\nabla f_{i,k}(w^*)` at the minimiser :math:`w^*` of :math:`F_{\tilde\lambda}`.
    noise_cov : array (N, K, D, D)
        Covariance :math:`\Sigma_{i,k}` of a local step's gradient noise.
    u0 : array (D,)
        :math:`w_0 - w^*`.
    per_round : int, optional
        :math:`n`: :math:`n` of the :math:`N` nodes drawn per round without replacement, each
        drawn node picking exit :math:`k` with probability :math:`r_{i,k}`, ``q`` the inclusion
        table :math:`(n/N)\,r` (:func:`cistheory.fixed_count`; rows must sum to at most
        :math:`n/N`). With :math:`c = (N - n)/(n(N - 1))` (Lemma 2f) every node's :math:`M_j`
        and :math:`\Sigma_s` terms gain :math:`c\,\bar y_i\bar y_i^\top` and the mode factor
        becomes :math:`\max((1 - \eta\lambda_j)^2 - c\,\eta^2\lambda_j^2, 0)` (Section 4.16,
        fixed-count draw). ``None`` (the default): nodes pick independently.

    Returns
    -------
    ModalBound

    Examples
    --------
    One fixed node, :math:`f = w^2/2` in 1-D, noise of variance 1, from the optimum: the
    exact :math:`\mathbb Ew_t^2 = \eta^2\sum_{j<t}(1 - \eta)^{2j}`, and the bound is that.

    >>> b = modal_bound(2, eta=0.5, q=[[1.0]], beta=[[1.0]], H_pair=[[[[1.0]]]],
    ...                 grad_opt=[[[0.0]]], noise_cov=[[[[1.0]]]], u0=[0.0])
    >>> b.d[:, 0].tolist(), b.certified
    ([0.0, 0.25, 0.3125], True)

    Two equal nodes, one of them drawn per round (:math:`c = 1`): the bound follows the exact
    :math:`\mathbb Ew_1^2 = \eta^2` (the step is the one drawn node's noisy gradient at
    :math:`w^* = 0`); independent picks from the same :math:`q` would give half of it.

    >>> kw = dict(eta=0.1, q=[[0.5], [0.5]], beta=[[0.5], [0.5]], H_pair=[[[[1.0]]], [[[1.0]]]],
    ...           grad_opt=[[[1.0]], [[-1.0]]], noise_cov=[[[[0.0]]], [[[0.0]]]], u0=[0.0])
    >>> round(float(modal_bound(1, per_round=1, **kw).d[1, 0]), 6)
    0.0101
    >>> round(float(modal_bound(1, **kw).d[1, 0]), 6)
    0.00505
    """
    n_t = int(T)
    if n_t < 0 or n_t != T:
        raise CISInputError("T", T, "must be an integer >= 0")
    eta_f = check_scalar(eta, "eta", positive=True)
    qa, ba = check_q_beta(q, beta)
    H = as_float_array(H_pair, "H_pair", ndim=4)
    dd = H.shape[-1]
    if H.shape != (*qa.shape, dd, dd):
        raise CISInputError("H_pair", H.shape, f"expected shape {qa.shape} + (D, D)")
    g = as_float_array(grad_opt, "grad_opt", shape=(*qa.shape, dd))
    N = as_float_array(noise_cov, "noise_cov", shape=(*qa.shape, dd, dd))
    u = as_float_array(u0, "u0", shape=(dd,))
    coupling = draw_coupling(qa, per_round)
    H = 0.5 * (H + np.swapaxes(H, 2, 3))
    lam, V = np.linalg.eigh(np.einsum("ik,ikde->de", ba, H))
    m_abs, s_s, s_n = _operators(qa, ba, H, g, N, V, coupling)
    p2 = (1.0 - eta_f * lam) ** 2
    if coupling > 0.0:  # the draw's -c H S H, exact on each mode; clipped to stay monotone
        p2 = np.maximum(p2 - coupling * (eta_f * lam) ** 2, 0.0)
    rows = m_abs.sum(axis=2)  # K_{jl} = sum_m |M_j|_{lm}
    no_mult = not m_abs.any()
    cs = [math.inf] if no_mult else ([0.0] if not s_s.any() else list(C_GRID))
    radius = math.inf
    for c in cs:
        gain = 0.0 if math.isinf(c) else eta_f**2 * (1.0 + c)
        radius = min(radius, float(np.max(np.abs(np.linalg.eigvals(np.diag(p2) + gain * rows)))))
    d = np.empty((n_t + 1, dd))
    d[0] = (V.T @ u) ** 2
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(n_t):
            root = np.sqrt(d[t])
            inj = np.einsum("l,jlm,m->j", root, m_abs, root)
            best = np.full(dd, math.inf)
            for c in cs:
                if math.isinf(c):
                    step = p2 * d[t] + eta_f**2 * (s_s + s_n)
                else:
                    sc = s_n if c == 0.0 else (1.0 + 1.0 / c) * s_s + s_n
                    step = p2 * d[t] + eta_f**2 * ((1.0 + c) * inj + sc)
                best = np.minimum(best, step)
            d[t + 1] = np.where(np.isnan(best), math.inf, best)
    return ModalBound(lam, V, d, bool(radius < 1.0), radius)


def trace_bound(d: ArrayLike, basis: ArrayLike, A: ArrayLike) -> float:
    r""":math:`\mathrm{tr}(AS) \le \sqrt d^\top|V^\top AV|\sqrt d` for every PSD :math:`S` with
    :math:`v_j^\top Sv_j \le d_j` (Cauchy-Schwarz: :math:`|S_{lm}| \le \sqrt{S_{ll}S_{mm}}` in the
    basis :math:`V`); an equality when :math:`V^\top AV` is diagonal and :math:`d` exact.

    Examples
    --------
    >>> trace_bound([1.0, 4.0], np.eye(2), [[1.0, 0.5], [0.5, 1.0]])
    7.0
    """
    da = as_float_array(d, "d", ndim=1, nonneg=True, allow_inf=True)
    Va = as_float_array(basis, "basis", shape=(da.size, da.size))
    Aa = as_float_array(A, "A", shape=(da.size, da.size))
    if not np.all(np.isfinite(da)):
        return math.inf
    root = np.sqrt(da)
    return float(root @ np.abs(Va.T @ Aa @ Va) @ root)


def mean_deviation(H: ArrayLike, u0: ArrayLike, eta: float, T: int) -> FloatArray:
    r""":math:`\mathbb E[w_T] - w^* = (I - \eta H)^Tu_0`, exact for a quadratic
    :math:`F_{\tilde\lambda}` with Hessian :math:`H` and one local step (Lemma 1: the mean
    follows gradient descent). Used by Theorem D's cross term.

    Examples
    --------
    >>> mean_deviation([[1.0]], [2.0], 0.5, 3).tolist()
    [0.25]
    """
    Ha = as_float_array(H, "H", ndim=2)
    u = as_float_array(u0, "u0", shape=(Ha.shape[0],))
    eta_f = check_scalar(eta, "eta", positive=True)
    if int(T) < 0:
        raise CISInputError("T", T, "must be >= 0")
    P = np.eye(Ha.shape[0]) - eta_f * Ha
    return np.asarray(np.linalg.matrix_power(P, int(T)) @ u, dtype=np.float64)
