r"""The Corollary of ``docs/theory.md``: the full bound on the excess risk after :math:`T`
rounds, and its assembly for a CIS (checked by ``proofs_check.corollary``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import as_float_array, check_scalar
from ..errors import CISInputError
from ..system.aggregation import beta
from ..system.participation import Participation
from ..system.tree import CIS
from ._checks import check_smooth_convex, check_weights, per_pair
from .lemma2 import variance_bound
from .theorem1 import chi2, training_error_bound
from .theorem2 import sgd_diminishing_bound, sgd_fixed_step_bound
from .theorem3 import generalization_bound

__all__ = ["BoundTerms", "CISConstants", "cis_bound", "full_bound"]


@dataclass(frozen=True)
class BoundTerms:
    r"""The terms of the full bound (Corollary of ``docs/theory.md``).

    Attributes
    ----------
    generalisation : float
        :math:`2\sum_k \lambda_k \varepsilon_k`.
    bias : float
        :math:`(2L/\mu)\,\chi^2\,\Gamma`.
    optimisation : float
        :math:`(2L^2/(\mu\mu_t))\,\mathbb E[e_T]`.
    total : float
        ``generalisation`` plus the tight form of Theorem 1(b) with :math:`\mathbb E[e_T]`.
    total_split : float
        ``generalisation + bias + optimisation`` (:math:`\ge` ``total``).
    """

    generalisation: float
    bias: float
    optimisation: float
    total: float
    total_split: float

    def as_dict(self) -> dict[str, float]:
        """The terms by name."""
        return {
            "generalisation": self.generalisation,
            "bias": self.bias,
            "optimisation": self.optimisation,
            "total": self.total,
            "total_split": self.total_split,
        }


def _optimisation_error(
    T: int,
    *,
    L_t: float,
    mu_t: float,
    V: float,
    gap0: float,
    eta: float | None,
    b: float | None,
    gamma: float | None,
) -> float:
    if eta is not None:
        if b is not None or gamma is not None:
            raise CISInputError("eta", eta, "give either eta (fixed step) or b and gamma, not both")
        return float(sgd_fixed_step_bound(T, eta, L_t, mu_t, V, gap0))
    if b is None or gamma is None:
        raise CISInputError(
            "eta", None, "give a fixed step eta or both b and gamma (diminishing steps)"
        )
    return float(sgd_diminishing_bound(T, b, gamma, L_t, mu_t, V, gap0))


def full_bound(
    lam: ArrayLike,
    lt: ArrayLike,
    *,
    L: float,
    mu: float,
    mu_t: float,
    L_t: float,
    Gamma: float,
    V: float,
    gap0: float,
    T: int,
    eps: ArrayLike,
    eta: float | None = None,
    b: float | None = None,
    gamma: float | None = None,
) -> BoundTerms:
    r"""The full bound on the excess risk after :math:`T` rounds: Corollary, ``docs/theory.md``.

    With :math:`\mathbb E[e_T]` from Theorem 2 (fixed step ``eta``, or steps
    :math:`b/(\gamma + t)`) and Theorem 1(c),

    .. math::
        \mathbb E[R_\lambda(w_T)] - \min R_\lambda
        \le 2\sum_k \lambda_k\varepsilon_k
        + \frac{1}{2\mu}\Big(\sqrt{2L\chi^2\Gamma} + L\sqrt{2\,\mathbb E[e_T]/\mu_t}\Big)^2
        \le 2\sum_k \lambda_k\varepsilon_k + \frac{2L}{\mu}\chi^2\Gamma
        + \frac{2L^2}{\mu\mu_t}\mathbb E[e_T],

    on the event (probability :math:`\ge 1-\delta`) of Theorem 3.

    Parameters
    ----------
    lam, lt : array_like, shape (K,)
        Serving shares and training weights.
    L, mu, mu_t, Gamma : float
        As in :func:`training_error_bound`.
    L_t : float
        Smoothness of :math:`F_{\tilde\lambda}` (:math:`\mu_t \le L_t`).
    V : float
        Variance bound of Lemma 2.
    gap0 : float
        :math:`F_{\tilde\lambda}(w_0) - F_{\tilde\lambda}^*`.
    T : int
        Number of rounds (updates).
    eps : array_like, shape (K,)
        :math:`\varepsilon_k` of Theorem 3 (:func:`generalization_bound`).
    eta : float, optional
        Fixed step; otherwise give ``b`` and ``gamma``.
    b, gamma : float, optional
        Diminishing-step schedule.

    Returns
    -------
    BoundTerms

    Examples
    --------
    >>> terms = full_bound([0.5, 0.5], [0.5, 0.5], L=1.0, mu=1.0, mu_t=1.0, L_t=1.0,
    ...                    Gamma=1.0, V=0.0, gap0=1.0, T=3, eps=[0.1, 0.1], eta=0.5)
    >>> terms.as_dict()
    {'generalisation': 0.2, 'bias': 0.0, 'optimisation': 0.25, 'total': 0.325, 'total_split': 0.45}
    """
    lam_a, lt_a = check_weights(lam, lt)
    eps_a = as_float_array(eps, "eps", nonneg=True, axes=("exit",))
    if eps_a.shape != lam_a.shape:
        raise CISInputError("eps", eps_a.tolist(), f"expected {lam_a.size} values (one per exit)")
    L_ = check_scalar(L, "L")
    mu_ = check_scalar(mu, "mu")
    check_smooth_convex(L_, mu_)
    mut = check_scalar(mu_t, "mu_t")
    check_smooth_convex(L_, mut, mu_name="mu_t")
    Lt = check_scalar(L_t, "L_t")
    check_smooth_convex(Lt, mut, mu_name="mu_t", L_name="L_t")
    e_T = _optimisation_error(T, L_t=Lt, mu_t=mut, V=V, gap0=gap0, eta=eta, b=b, gamma=gamma)
    gen = float(2.0 * (lam_a * eps_a).sum())
    gam = check_scalar(Gamma, "Gamma", nonneg=True)
    c2 = chi2(lam_a, lt_a)
    bias = 2.0 * L_ / mu_ * c2 * gam
    opt = 2.0 * L_**2 / (mu_ * mut) * e_T
    tight = training_error_bound(lam_a, lt_a, L_, mu_, mut, gam, e_T)
    return BoundTerms(
        generalisation=gen,
        bias=float(bias),
        optimisation=float(opt),
        total=gen + tight,
        total_split=gen + float(bias) + float(opt),
    )


@dataclass(frozen=True, kw_only=True)
class CISConstants:
    r"""Problem constants of a CIS for :func:`cis_bound` (keyword-only).

    Attributes
    ----------
    L : float
        Smoothness of every :math:`F_k`.
    mu : float
        PL constant of :math:`F_\lambda` (Theorem 1 assumes PL, not strong convexity).
    Gamma : float
        :math:`\Gamma` of Theorem 1 (or an upper bound).
    sigma : array_like, shape (K,) or (N, K)
        Gradient-noise standard deviations :math:`\sigma` (Lemma 2 uses :math:`\sigma^2`).
    gap0 : float
        Initial gap :math:`F_{\tilde\lambda}(w_0) - F_{\tilde\lambda}^*`.
    T : int
        Number of rounds.
    mu_t : float, optional
        Strong convexity of :math:`F_{\tilde\lambda}`; ``None`` means ``mu``.
    L_t : float, optional
        Smoothness of :math:`F_{\tilde\lambda}`; ``None`` means ``L``.
    G : array_like, optional
        Gradient-norm bounds, shape (K,) or (N, K); ``None`` means 0.
    eta : float, optional
        Fixed step; otherwise ``b`` and ``gamma`` (diminishing steps).
    b, gamma : float, optional
    B_loss : float
        Loss range :math:`B` of Theorem 3.
    delta : float
        Failure probability of Theorem 3.
    rademacher : array_like, optional
        Per-exit Rademacher complexities; ``None`` means 0.
    """

    L: float
    mu: float
    Gamma: float
    sigma: ArrayLike
    gap0: float
    T: int
    mu_t: float | None = None
    L_t: float | None = None
    G: ArrayLike | None = None
    eta: float | None = None
    b: float | None = None
    gamma: float | None = None
    B_loss: float = 1.0
    delta: float = 0.05
    rademacher: ArrayLike | None = None


def cis_bound(cis: CIS, part: Participation, lt: ArrayLike, const: CISConstants) -> BoundTerms:
    r"""The full bound (Corollary of ``docs/theory.md``) of a CIS trained with weights ``lt``.

    :math:`\lambda` is the CIS's serving shares, :math:`\beta = ` :func:`cistheory.beta`
    ``(part, lt)``, :math:`V` = :func:`variance_bound` with :math:`\sigma^2` and
    :math:`G^2` from ``const``, and :math:`\varepsilon_k` = :func:`generalization_bound`
    with :math:`M_k` = ``part.exit_data``. Exits no node trains (:math:`M_k = 0`, hence
    :math:`\lambda_k = 0`) carry no generalisation term; the union bound then runs over the
    :math:`K'` trained exits.

    .. math::
        \text{total} = 2\sum_k \lambda_k \varepsilon_k
        + \frac{1}{2\mu}\Big(\sqrt{2L\chi^2\Gamma} + L\sqrt{2\,\mathbb E[e_T]/\mu_t}\Big)^2

    Examples
    --------
    >>> import cistheory
    >>> cis = cistheory.reference_cis("80-15-5")
    >>> part = cistheory.deepest_exit(cis)
    >>> const = CISConstants(L=1.0, mu=0.1, Gamma=1.0,
    ...                      sigma=cistheory.REFERENCE_SIGMA["3-9-17"], gap0=1.0, T=100,
    ...                      eta=0.5)
    >>> terms = cis_bound(cis, part, cis.lam, const)
    >>> terms.bias
    0.0
    """
    if not isinstance(const, CISConstants):
        raise CISInputError("const", const, "expected a CISConstants")
    if part.q.shape != (cis.n_nodes, cis.n_exits):
        raise CISInputError(
            "part", part.q.shape, f"participation of shape {(cis.n_nodes, cis.n_exits)} expected"
        )
    lam = cis.lam
    lam_a, lt_a = check_weights(lam, lt)
    part.check_trainable(lam_a)
    b_ = beta(part, lt_a)
    n, k = part.q.shape
    sig = per_pair(const.sigma, "sigma", (n, k))
    g = np.zeros((n, k)) if const.G is None else per_pair(const.G, "G", (n, k))
    V = variance_bound(part.q, b_, sig**2, g**2)
    mk = part.exit_data
    trained = mk > 0
    rad = (
        np.zeros(k)
        if const.rademacher is None
        else as_float_array(const.rademacher, "rademacher", nonneg=True, axes=("exit",))
    )
    if rad.shape not in {(), (k,)}:
        raise CISInputError("rademacher", rad.tolist(), f"expected a scalar or {k} values")
    rad = np.broadcast_to(rad, (k,))
    eps = np.zeros(k)
    eps[trained] = generalization_bound(mk[trained], const.delta, const.B_loss, rad[trained])
    mu_t = const.mu if const.mu_t is None else const.mu_t
    L_t = const.L if const.L_t is None else const.L_t
    return full_bound(
        lam_a,
        lt_a,
        L=const.L,
        mu=const.mu,
        mu_t=mu_t,
        L_t=L_t,
        Gamma=const.Gamma,
        V=V,
        gap0=const.gap0,
        T=const.T,
        eps=eps,
        eta=const.eta,
        b=const.b,
        gamma=const.gamma,
    )
