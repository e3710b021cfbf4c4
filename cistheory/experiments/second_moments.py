r"""Exact first and second moments of CIS training on quadratic pair losses.

This is the *exact side* of every comparison of the bounds with measurement: it shares no code
with :mod:`cistheory.bounds` (it imports the problem and Lemma 1's pair weights only), and
follows the algorithm of ``docs/theory.md`` Section 3 exactly.

Pair :math:`(i, k)` has :math:`f_{i,k}(w) = \tfrac12 w^\top H_{i,k}w - b_{i,k}^\top w +
c_{i,k}`; a node that picked :math:`k` runs :math:`\tau` local steps
:math:`w \leftarrow w - \eta(H_{i,k}w - b_{i,k} + \xi)` with :math:`\xi` independent, mean 0,
covariance :math:`\Sigma_{i,k}`; the server adds :math:`\sum_{\text{picked}}(\beta_{i,k}/q_{i,k})
\Delta_{i,k}`. With :math:`u = w - w^*` and :math:`z = (u, 1)`, one round is the random affine
map :math:`u' = u + \sum_iX_i`, :math:`X_i = \mathbb 1[i\to k](\beta/q)(R_{i,k}z + n_{i,k})`,
where :math:`P = I - \eta H_{i,k}`, :math:`R_{i,k} = [P^\tau - I,\ (P^\tau - I)w^* + \eta
\sum_{s<\tau}P^sb_{i,k}]` and :math:`n` has covariance :math:`\eta^2\sum_{s<\tau}P^s\Sigma
P^{s\top}`. Nodes pick independently, so :math:`Z = \mathbb E[zz^\top]` evolves by a linear map

.. math::
    Z' = \bar AZ\bar A^\top + \sum_i\Big[\sum_k\frac{\beta_{i,k}^2}{q_{i,k}}(J R_{i,k}ZR_{i,k}^\top
    J^\top + N_{i,k}) - J\bar R_iZ\bar R_i^\top J^\top\Big],

:math:`\bar R_i = \sum_k\beta_{i,k}R_{i,k}`, :math:`\bar A = I + J\sum_i\bar R_i`, :math:`J`
embedding :math:`\mathbb R^D` in the state. Mean-square stability is decided by the spectral
radius of the homogeneous part (:func:`second_moment_radius`).

**Fixed-count draws** (``per_round`` :math:`= n`; :func:`cistheory.fixed_count`, Lemma 2f of
``docs/theory.md``): :math:`n` of the :math:`N` nodes are drawn uniformly without replacement,
a drawn node picks :math:`k` with probability :math:`r_{i,k}`, and :math:`q = (n/N)\,r` is the
inclusion table. Write :math:`X_i = I_iY_i` with :math:`I_i = \mathbb 1[i \text{ drawn}]` and
:math:`Y_i = \sum_k\mathbb 1[c_i = k](\beta_{i,k}/q_{i,k})(R_{i,k}z + n_{i,k})`; the
:math:`Y_i` are independent of each other and of the draw, and the noise has mean 0 given
:math:`z` and the picks. Given :math:`z`: :math:`\mathbb E X_i = \bar R_iz` (as
:math:`\pi_ir_{i,k} = q_{i,k}`); :math:`\mathbb E X_iX_i^\top = \sum_k(\beta_{i,k}^2/q_{i,k})
(R_{i,k}zz^\top R_{i,k}^\top + N_{i,k})` (at most one pick per node: unchanged); and for
:math:`i \ne j`, :math:`\mathbb E X_iX_j^\top = \pi_{ij}\,\mathbb E Y_i\,\mathbb
EY_j^\top = (1 - c)\bar R_izz^\top\bar R_j^\top` with :math:`\pi_{ij}/(\pi_i\pi_j) = 1 -
c`, :math:`c = (N - n)/(n(N - 1))` (:math:`c = 0` for :math:`N = 1`): the noise of two nodes
has no cross term (independent, mean 0), as under independent picks. With :math:`\bar R =
\sum_i\bar R_i` (so :math:`\bar A = I + J\bar R`), :math:`\sum_{i\ne j}\bar R_iZ\bar
R_j^\top = \bar RZ\bar R^\top - \sum_i\bar R_iZ\bar R_i^\top`, and averaging over
:math:`z` the exact map is

.. math::
    Z' = \bar AZ\bar A^\top - c\,J\bar RZ\bar R^\top J^\top + \sum_i\Big[\sum_k
    \frac{\beta_{i,k}^2}{q_{i,k}}(JR_{i,k}ZR_{i,k}^\top J^\top + N_{i,k}) - (1 - c)\,J\bar
    R_iZ\bar R_i^\top J^\top\Big],

the independent map at :math:`c = 0` (:math:`n = N`), and at :math:`c = 1` (:math:`n = 1`)
nothing is subtracted per node. The first moment (last column of :math:`Z`) is unchanged
(Lemma 2f(a)). The same identity with :math:`a = 0` gives the homogeneous map of
:func:`second_moment_radius`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import FloatArray
from ..errors import CISInputError
from ..system.aggregation import beta as pair_weights
from ..system.participation import ROW_ATOL
from .quadratic import QuadraticProblem

__all__ = ["ExactErrors", "exact_errors", "round_operator", "second_moment_radius"]


@dataclass(frozen=True)
class ExactErrors:
    r"""Exact expectations at the requested rounds.

    Attributes
    ----------
    t : ndarray of int
    dist2 : ndarray
        :math:`\mathbb E\|w_t - w^*\|^2` (:math:`w^*` the minimiser of :math:`F_{\tilde\lambda}`).
    gap_lt : ndarray
        :math:`\mathbb EF_{\tilde\lambda}(w_t) - F_{\tilde\lambda}^*`.
    gap_lam : ndarray
        :math:`\mathbb EF_\lambda(w_t) - F_\lambda^*`.
    radius : float
        Spectral radius of the homogeneous second-moment map (stable iff < 1).

    ``inf`` where the moments overflow (an unstable configuration at large :math:`t`).
    """

    t: np.ndarray
    dist2: FloatArray
    gap_lt: FloatArray
    gap_lam: FloatArray
    radius: float


def _pair_maps(
    prob: QuadraticProblem, q: FloatArray, w_star: FloatArray, eta: float, tau: int
) -> list[tuple[int, int, FloatArray, FloatArray, FloatArray]]:
    """(i, k, M = P^tau - I, a, N) for every pair with q > 0."""
    dd = prob.mask.shape[1]
    eye = np.eye(dd)
    cov = prob.noise_cov()
    out = []
    for i, k in zip(*np.nonzero(q > 0), strict=True):
        h, b, sig = prob.H[i, k], prob.b[i, k], cov[i, k]
        step = eye - eta * h
        power = eye.copy()
        bsum = np.zeros(dd)
        noise = np.zeros((dd, dd))
        for _ in range(tau):
            bsum += power @ b
            noise += power @ sig @ power.T
            power = step @ power
        m = power - eye
        out.append((int(i), int(k), m, m @ w_star + eta * bsum, eta**2 * noise))
    return out


def _setting(
    prob: QuadraticProblem, lt: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    q = np.asarray(prob.part.q, dtype=np.float64)
    bet = pair_weights(prob.part, lt)
    h = np.einsum("ik,ikde->de", bet, prob.H)
    w_star = np.linalg.solve(h, np.einsum("ik,ikd->d", bet, prob.b))
    return q, bet, np.asarray(w_star, dtype=np.float64)


def _coupling(prob: QuadraticProblem, q: FloatArray, per_round: int | None) -> float:
    """c = (N - n)/(n(N - 1)) of ``per_round`` = n nodes drawn of N (0 for None), checked
    against the inclusion table ``q`` and the problem's participation."""
    if per_round is None:
        return 0.0
    n_nodes = q.shape[0]
    if isinstance(per_round, bool) or not isinstance(per_round, int | np.integer):
        raise CISInputError("per_round", per_round, "must be an integer or None")
    if not 1 <= per_round <= n_nodes:
        raise CISInputError("per_round", per_round, f"must lie in 1..{n_nodes} (the nodes)")
    n = int(per_round)
    own = prob.part.per_round
    if own is not None and own != n:
        raise CISInputError(
            "per_round", n, f"the problem's participation draws {own} nodes per round"
        )
    rows = q.sum(axis=1)
    over = rows > (n / n_nodes) * (1.0 + ROW_ATOL)
    if over.any():
        i = int(np.argmax(over))
        raise CISInputError(
            f"q[{prob.cis.node_ids[i]}]", q[i].tolist(),
            f"row sums to {float(rows[i])!r} > per_round/N = {n / n_nodes!r} (a drawn node "
            "trains at most one exit)",
        )
    return 0.0 if n_nodes == 1 else (n_nodes - n) / (n * (n_nodes - 1))


def round_operator(
    prob: QuadraticProblem,
    lt: ArrayLike,
    eta: float,
    tau: int = 1,
    *,
    per_round: int | None = None,
) -> FloatArray:
    r"""The matrix of :math:`\mathrm{vec}(Z) \mapsto \mathrm{vec}(Z')` (row-major, Z of size
    (D+1) x (D+1), last coordinate the constant 1).

    ``per_round`` :math:`= n`: the exact map of a fixed-count draw of :math:`n` nodes (module
    docstring; ``prob.part.q`` is then the inclusion table :math:`(n/N)\,r`); ``None``: nodes
    pick independently.
    """
    q, bet, w_star = _setting(prob, lt)
    c = _coupling(prob, q, per_round)
    n, dd = q.shape[0], prob.mask.shape[1]
    size = dd + 1
    embed = np.vstack([np.eye(dd), np.zeros((1, dd))])
    a_bar = np.eye(size)
    r_bar = np.zeros((n, dd, size))
    op = np.zeros((size * size, size * size))
    noise = np.zeros((size, size))
    for i, k, m, a, cov in _pair_maps(prob, q, w_star, eta, tau):
        r = np.hstack([m, a[:, None]])
        bk, qk = bet[i, k], q[i, k]
        a_bar[:dd] += bk * r
        r_bar[i] += bk * r
        jr = embed @ r
        op += (bk**2 / qk) * np.kron(jr, jr)
        noise[:dd, :dd] += (bk**2 / qk) * cov
    op += np.kron(a_bar, a_bar)
    if c > 0.0:  # the draw's cross-node terms: (1 - c) R_i Z R_j^T for i != j
        jr_all = a_bar - np.eye(size)
        op -= c * np.kron(jr_all, jr_all)
    keep = 1.0 - c  # 1.0 exactly for independent picks: the subtraction is unchanged
    for i in range(n):
        jr = embed @ r_bar[i]
        op -= keep * np.kron(jr, jr)
    op[:, size * size - 1] += noise.reshape(-1)  # multiplies Z[D, D] = 1
    return op


def second_moment_radius(
    prob: QuadraticProblem,
    lt: ArrayLike,
    eta: float,
    tau: int = 1,
    *,
    per_round: int | None = None,
) -> float:
    r"""Spectral radius of :math:`S \mapsto \mathbb E[(I + X)S(I + X)^\top]`, the homogeneous
    second-moment map of one round: below 1 iff :math:`\mathbb E\|w_t - w^*\|^2` stays bounded.

    ``per_round`` as in :func:`round_operator` (a fixed-count draw of that many nodes).
    """
    q, bet, _ = _setting(prob, lt)
    c = _coupling(prob, q, per_round)
    n, dd = q.shape[0], prob.mask.shape[1]
    m_bar = np.eye(dd)
    m_i = np.zeros((n, dd, dd))
    op = np.zeros((dd * dd, dd * dd))
    for i, k, m, _a, _n in _pair_maps(prob, q, np.zeros(dd), eta, tau):
        m_bar += bet[i, k] * m
        m_i[i] += bet[i, k] * m
        op += (bet[i, k] ** 2 / q[i, k]) * np.kron(m, m)
    op += np.kron(m_bar, m_bar)
    if c > 0.0:
        m_all = m_bar - np.eye(dd)
        op -= c * np.kron(m_all, m_all)
    keep = 1.0 - c
    for i in range(n):
        op -= keep * np.kron(m_i[i], m_i[i])
    return float(np.max(np.abs(np.linalg.eigvals(op))))


def _target(prob: QuadraticProblem, lam: FloatArray) -> tuple[FloatArray, FloatArray, float]:
    """Hessian, gradient at 0 and minimum of F_lam (exit quadratics on the populations)."""
    h_lam, b_lam, c_lam = prob.weighted(lam)
    w_lam = np.linalg.lstsq(h_lam, b_lam, rcond=None)[0]
    return h_lam, b_lam, c_lam - 0.5 * float(b_lam @ w_lam)


def exact_errors(
    prob: QuadraticProblem,
    lt: ArrayLike,
    eta: float,
    T: int | Sequence[int],
    w0: ArrayLike,
    *,
    lam: ArrayLike | None = None,
    tau: int = 1,
    per_round: int | None = None,
) -> ExactErrors:
    r"""Exact :math:`\mathbb E\|w_t - w^*\|^2`, :math:`\mathbb EF_{\tilde\lambda}(w_t) -
    F_{\tilde\lambda}^*` and :math:`\mathbb EF_\lambda(w_t) - F_\lambda^*` at the rounds ``T``.

    ``lam`` defaults to the serving shares of the problem's CIS. ``per_round`` :math:`= n`:
    the exact moments of a fixed-count draw of :math:`n` nodes per round (module docstring;
    pass ``prob.part.per_round`` for a participation from :func:`cistheory.fixed_count`);
    ``None`` (the default): nodes pick independently from ``prob.part.q``.

    Examples
    --------
    >>> from cistheory.experiments.validate_rates import ValidationConfig, build_problem
    >>> prob = build_problem(ValidationConfig(n_seeds=2, rounds=10, n_records=4))
    >>> ex = exact_errors(prob, prob.cis.lam, 0.05, [0, 10], np.zeros(6))
    >>> bool(ex.gap_lam[1] < ex.gap_lam[0]), ex.radius < 1
    (True, True)

    Two of the seven nodes drawn per round: the draw's moments, and those of independent picks
    from the same inclusion table.

    >>> from cistheory import fixed_count
    >>> pf = prob.with_participation(fixed_count(prob.part, 2))
    >>> drawn = exact_errors(pf, prob.cis.lam, 0.05, 10, np.zeros(6), per_round=2)
    >>> indep = exact_errors(pf, prob.cis.lam, 0.05, 10, np.zeros(6))
    >>> bool(drawn.dist2[0] > indep.dist2[0])
    True
    """
    ts = np.atleast_1d(np.asarray(T, dtype=np.int64))
    if (ts < 0).any():
        raise CISInputError("T", ts.tolist(), "rounds must be >= 0")
    lam_a = prob.cis.lam if lam is None else np.asarray(lam, dtype=np.float64)
    _, bet, w_star = _setting(prob, lt)
    dd = prob.mask.shape[1]
    size = dd + 1
    h_lt = np.einsum("ik,ikde->de", bet, prob.H)
    h_lam, b_lam, f_lam_star = _target(prob, lam_a)
    c_lam = float(lam_a @ prob.exit_quadratic()[2])
    op = round_operator(prob, lt, eta, tau, per_round=per_round)
    z0 = np.append(np.asarray(w0, dtype=np.float64) - w_star, 1.0)
    Z = np.outer(z0, z0).reshape(-1)
    out = np.full((3, ts.size), np.inf)
    cur = 0
    # F_lam(w) - F_lam* with w = w* + u: quadratic in (u, 1)
    g_star = h_lam @ w_star - b_lam
    f_at_star = 0.5 * float(w_star @ h_lam @ w_star) - float(b_lam @ w_star) + c_lam
    with np.errstate(over="ignore", invalid="ignore"):
        for j in np.argsort(ts):
            steps = int(ts[j]) - cur
            if steps > 0:
                Z = np.linalg.matrix_power(op, steps) @ Z
                cur = int(ts[j])
            zm = Z.reshape(size, size)
            if not np.all(np.isfinite(zm)):
                continue
            S = 0.5 * (zm[:dd, :dd] + zm[:dd, :dd].T)
            m1 = zm[:dd, dd]
            out[0, j] = float(np.trace(S))
            out[1, j] = 0.5 * float(np.trace(h_lt @ S))
            out[2, j] = (
                0.5 * float(np.trace(h_lam @ S)) + float(g_star @ m1) + f_at_star - f_lam_star
            )
    rad = second_moment_radius(prob, lt, eta, tau, per_round=per_round)
    return ExactErrors(ts, out[0], out[1], out[2], rad)
