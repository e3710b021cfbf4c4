r"""Theorem E of ``docs/theory.md`` (Section 4.17): the bias of training on
:math:`\tilde\lambda`, with the heterogeneity measured at the optimum (checked by
``proofs_check.theorem_e``).

At the minimiser :math:`w^*` of :math:`F_{\tilde\lambda}`, with :math:`g_\lambda = \nabla
F_\lambda(w^*) = \sum_k(\lambda_k - \tilde\lambda_k)\nabla F_k(w^*)` and :math:`F_\lambda`
satisfying PL with :math:`\mu`,

.. math::
    F_\lambda(w^*) - F_\lambda^* \le \frac{\|g_\lambda\|^2}{2\mu}
    \le \frac{\chi^2\zeta_*^2}{2\mu} \le \frac L\mu\chi^2\Gamma, \qquad
    \zeta_*^2 = \sum_k\tilde\lambda_k\|\nabla F_k(w^*)\|^2 .

:math:`\zeta_*^2 \le 2L\Gamma` replaces Theorem 1(a)'s :math:`2L\Gamma`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import as_float_array, check_scalar
from ..errors import CISInputError
from ._checks import check_weights

__all__ = ["bias_bound_gradient", "bias_bound_zeta", "heterogeneity_at_optimum"]


def heterogeneity_at_optimum(lt: ArrayLike, grad_exit: ArrayLike) -> float:
    r"""The heterogeneity at the optimum :math:`\zeta_*^2 = \sum_k\tilde\lambda_k
    \|\nabla F_k(w^*)\|^2` (Theorem E).

    Parameters
    ----------
    lt : array (K,)
        Training weights.
    grad_exit : array (K, D)
        :math:`\nabla F_k(w^*)` at the minimiser of :math:`F_{\tilde\lambda}`.

    Examples
    --------
    >>> heterogeneity_at_optimum([0.5, 0.5], [[1.0, 0.0], [-1.0, 0.0]])
    1.0
    """
    lt_a = as_float_array(lt, "lt", ndim=1, nonneg=True, axes=("exit",))
    g = as_float_array(grad_exit, "grad_exit", ndim=2)
    if g.shape[0] != lt_a.size:
        raise CISInputError("grad_exit", g.shape, f"expected {lt_a.size} rows (one per exit)")
    return float(lt_a @ (g**2).sum(axis=1))


def bias_bound_gradient(g_lam_norm2: float, mu: float) -> float:
    r"""Theorem E, first form: :math:`F_\lambda(w^*) - F_\lambda^* \le \|g_\lambda\|^2/(2\mu)`
    (PL of :math:`F_\lambda` at :math:`w^*`).

    Examples
    --------
    >>> bias_bound_gradient(2.0, 0.5)
    2.0
    """
    g2 = check_scalar(g_lam_norm2, "g_lam_norm2", nonneg=True)
    return g2 / (2.0 * check_scalar(mu, "mu", positive=True))


def bias_bound_zeta(lam: ArrayLike, lt: ArrayLike, zeta2: float, mu: float) -> float:
    r"""Theorem E, second form: :math:`F_\lambda(w^*) - F_\lambda^* \le
    \chi^2(\lambda\|\tilde\lambda)\,\zeta_*^2/(2\mu)`.

    Examples
    --------
    >>> round(bias_bound_zeta([0.5, 0.5], [0.25, 0.75], 3.0, 0.5), 6)
    1.0
    """
    lam_a, lt_a = check_weights(lam, lt)
    z = check_scalar(zeta2, "zeta2", nonneg=True)
    pos = lt_a > 0
    chi2 = float(np.where(pos, (lam_a - lt_a) ** 2 / np.where(pos, lt_a, 1.0), 0.0).sum())
    return chi2 * z / (2.0 * check_scalar(mu, "mu", positive=True))
