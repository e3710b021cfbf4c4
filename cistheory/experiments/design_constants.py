r"""The constants of the second-generation bounds for one design :math:`(\tilde\lambda, q)`,
computed exactly on a quadratic problem (``docs/theory.md``, Section 4.20).

For quadratic pair losses (:class:`~cistheory.experiments.quadratic.QuadraticProblem`; linear
models with the squared loss are of this form) every constant is an eigenvalue, a linear
solve or a finite sum: :math:`\mu_t(\tilde\lambda, q)`, :math:`L_t`, the pair constants
:math:`L_{i,k}`, :math:`\Gamma(\tilde\lambda)`, :math:`\zeta_*^2`, :math:`V_s, V_n, V^*`,
:math:`L_s(\tilde\lambda, q)` and the target's :math:`\mu, L_\lambda, \|g_\lambda\|`. This is
the *bound side*: it calls :mod:`cistheory.bounds` for the statements' constants. The exact
errors the bounds are compared with come from
:mod:`cistheory.experiments.second_moments`, which shares no code with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .. import bounds as bd
from .._arrays import FloatArray, as_simplex
from ..errors import CISInputError
from ..system.aggregation import beta as pair_weights
from .quadratic import QuadraticProblem

__all__ = ["DesignConstants", "exact_constants"]


@dataclass(frozen=True)
class DesignConstants:
    r"""Exact constants of one design on a quadratic problem.

    Attributes
    ----------
    lam, lt, q, beta : ndarray
        The design (``beta`` from Lemma 1's definition).
    mu_t, L_t : float
        Extreme Hessian eigenvalues of :math:`F_{\tilde\lambda}`.
    L_pair, ell_pair : ndarray (N, K)
        Largest Hessian eigenvalue of each :math:`f_{i,k}` (0 off the support) and its
        Lipschitz constant of the gradient (the largest absolute eigenvalue).
    L, mu, L_lam : float
        :math:`\max_k L(F_k)`; the PL constant of :math:`F_\lambda` (smallest positive
        Hessian eigenvalue) and its smoothness.
    Gamma, chi2, zeta2 : float
        :math:`\Gamma`, :math:`\chi^2(\lambda\|\tilde\lambda)`, :math:`\zeta_*^2`.
    g_lam : ndarray (D,)
        :math:`g_\lambda = \nabla F_\lambda(w^*)`.
    g_lam_norm : float
        :math:`\|g_\lambda\|`.
    bias : float
        :math:`F_\lambda(w^*) - F_\lambda^*`, exactly.
    Vs, Vn, Vstar : float
        Sampling and noise parts of the variance at the optimum, :math:`V^* = V_s + V_n`.
    Ls, Ls_pair, Lambda : float
        Lemma ES's constants.
    rho_lam : float
        :math:`\rho_\lambda` of Theorem D.
    w_star : ndarray (D,)
    grad_pair : ndarray (N, K, D)
        :math:`\nabla f_{i,k}(w^*)`.
    H_lt, H_lam : ndarray (D, D)
    """

    lam: FloatArray
    lt: FloatArray
    q: FloatArray
    beta: FloatArray
    mu_t: float
    L_t: float
    L_pair: FloatArray
    ell_pair: FloatArray
    L: float
    mu: float
    L_lam: float
    Gamma: float
    chi2: float
    zeta2: float
    g_lam: FloatArray
    g_lam_norm: float
    bias: float
    Vs: float
    Vn: float
    Vstar: float
    Ls: float
    Ls_pair: float
    Lambda: float
    rho_lam: float
    w_star: FloatArray
    grad_pair: FloatArray
    H_lt: FloatArray
    H_lam: FloatArray

    def scalars(self) -> dict[str, float]:
        """The scalar constants, JSON-ready."""
        keys = ("mu_t", "L_t", "L", "mu", "L_lam", "Gamma", "chi2", "zeta2", "g_lam_norm",
                "bias", "Vs", "Vn", "Vstar", "Ls", "Ls_pair", "Lambda", "rho_lam")
        return {k: float(getattr(self, k)) for k in keys}

    def distances(self, w0: ArrayLike) -> tuple[float, float]:
        r""":math:`(\|w_0 - w^*\|^2,\ F_{\tilde\lambda}(w_0) - F_{\tilde\lambda}^*)`."""
        u = np.asarray(w0, dtype=np.float64) - self.w_star
        return float(u @ u), 0.5 * float(u @ self.H_lt @ u)


def _extremes(h: FloatArray) -> tuple[float, float]:
    ev = np.linalg.eigvalsh(0.5 * (h + h.T))
    return float(ev[0]), float(ev[-1])


# long: one constant after another, each a line or two, in the order of the attributes
def exact_constants(
    prob: QuadraticProblem, lt: ArrayLike, *, lam: ArrayLike | None = None
) -> DesignConstants:
    r"""Every constant of the second-generation bounds for the design (``lt``, the problem's
    participation), exactly (module docstring).

    A participation from :func:`cistheory.fixed_count` (``per_round`` set) gets the constants
    of its draw: :math:`V_s`, :math:`L_s`, :math:`L_s^{\mathrm{pair}}` and :math:`\Lambda` of
    Lemma ES-f (``docs/theory.md``, Section 4.11f), not those of independent picks from the
    same ``q``, which the draw can exceed.

    Raises
    ------
    CISInputError
        When :math:`F_{\tilde\lambda}` is not strongly convex.

    Examples
    --------
    >>> from cistheory.experiments.validate_rates import ValidationConfig, build_problem
    >>> prob = build_problem(ValidationConfig(n_seeds=2, rounds=10, n_records=4))
    >>> c = exact_constants(prob, prob.cis.lam)
    >>> c.chi2, bool(c.bias < 1e-20), bool(c.Ls <= c.Ls_pair)
    (0.0, True, True)
    """
    lam_a = prob.cis.lam if lam is None else as_simplex(lam, "lam")
    lt_a = as_simplex(lt, "lt")
    part = prob.part
    q = np.asarray(part.q, dtype=np.float64)
    bet = pair_weights(part, lt_a)
    pos = q > 0
    h_lt, b_lt, _ = prob.weighted(lt_a)
    mu_t, L_t = _extremes(h_lt)
    if not mu_t > 0:
        raise CISInputError("lt", lt_a.tolist(), "F_lt is not strongly convex")
    w_star = np.linalg.solve(h_lt, b_lt)
    hk, bk, _ = prob.exit_quadratic()
    grad_exit = np.einsum("kde,e->kd", hk, w_star) - bk
    ck = prob.exit_quadratic()[2]
    inf_k = np.zeros(hk.shape[0])  # inf F_k; an exit without population has lt_k = 0
    for k in np.flatnonzero(part.exit_data > 0):
        wk = np.linalg.lstsq(hk[k], bk[k], rcond=None)[0]
        inf_k[k] = float(ck[k]) - 0.5 * float(bk[k] @ wk)
    f_lt_star = float(prob.weighted(lt_a)[2]) - 0.5 * float(b_lt @ w_star)
    h_lam, b_lam, _ = prob.weighted(lam_a)
    ev_lam = np.linalg.eigvalsh(h_lam)
    mu = float(ev_lam[ev_lam > 1e-12 * max(float(ev_lam[-1]), 1.0)][0])
    w_lam = np.linalg.lstsq(h_lam, b_lam, rcond=None)[0]
    g_lam = h_lam @ w_star - b_lam
    dev = w_star - w_lam
    L_pair = np.zeros(q.shape)
    ell_pair = np.zeros(q.shape)
    for i, k in zip(*np.nonzero(pos), strict=True):
        ev = np.linalg.eigvalsh(prob.H[i, k])
        L_pair[i, k] = max(float(ev[-1]), 0.0)
        ell_pair[i, k] = float(np.abs(ev).max())
    grad_pair = np.einsum("ikde,e->ikd", prob.H, w_star) - prob.b
    grad_pair = np.where(pos[:, :, None], grad_pair, 0.0)
    draw = part.per_round  # a fixed-count draw couples the nodes (Lemma ES-f)
    vs, vn = bd.variance_parts(q, bet, grad_pair, np.where(pos, prob.noise**2, 0.0),
                               per_round=draw)
    return DesignConstants(
        lam=lam_a, lt=lt_a, q=q, beta=bet, mu_t=mu_t, L_t=L_t, L_pair=L_pair,
        ell_pair=ell_pair,
        L=float(max(_extremes(hk[k])[1] for k in range(hk.shape[0]))),
        mu=mu, L_lam=float(ev_lam[-1]),
        Gamma=f_lt_star - float(lt_a @ inf_k),
        chi2=bd.chi2(lam_a, lt_a),
        zeta2=bd.heterogeneity_at_optimum(lt_a, grad_exit),
        g_lam=np.asarray(g_lam, dtype=np.float64),
        g_lam_norm=float(np.linalg.norm(g_lam)),
        bias=0.5 * float(dev @ h_lam @ dev),
        Vs=vs, Vn=vn, Vstar=vs + vn,
        Ls=bd.expected_smoothness(q, bet, L_pair, per_round=draw),
        Ls_pair=bd.expected_smoothness_pairwise(q, bet, L_pair, per_round=draw),
        Lambda=bd.sampling_lipschitz(q, bet, ell_pair, per_round=draw),
        rho_lam=bd.relative_smoothness(lam_a, lt_a, L=float(np.max(ev_lam)), mu_t=mu_t),
        w_star=np.asarray(w_star, dtype=np.float64), grad_pair=grad_pair, H_lt=h_lt,
        H_lam=h_lam,
    )
