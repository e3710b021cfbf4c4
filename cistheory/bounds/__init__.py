r"""The bounds of ``docs/theory.md``, Section 4: one module per statement.

Each module is named as the statement it encodes and as the module of ``proofs_check`` that
checks it; the sympy forms live in the same-named modules of :mod:`cistheory.symbolic`.

======================================  ====================================  ===============
function                                statement in ``docs/theory.md``       module
======================================  ====================================  ===============
:func:`variance_exact`                  Lemma 2 (exact variance)              ``lemma2``
:func:`variance_bound`                  Lemma 2 (convex bound)                ``lemma2``
:func:`chi2`                            Theorem 1 (the divergence)            ``theorem1``
:func:`bias_bound`                      Theorem 1(a)                          ``theorem1``
:func:`training_error_bound`            Theorem 1(b), 1(c)                    ``theorem1``
:func:`sgd_fixed_step_bound`            Theorem 2 (fixed step)                ``theorem2``
:func:`sgd_diminishing_bound`           Theorem 2 (diminishing steps)         ``theorem2``
:func:`drift_factor`                    Lemma 2' (drift)                      ``theorem2_local``
:func:`local_variance_bound`            Lemma 2' (variance)                   ``theorem2_local``
:func:`local_sgd_bound`                 Theorem 2'                            ``theorem2_local``
:func:`linear_rademacher`               Theorem 3 (linear predictors)         ``theorem3``
:func:`generalization_bound`            Theorem 3                             ``theorem3``
:func:`full_bound`, :func:`cis_bound`   Corollary                             ``corollary``
======================================  ====================================  ===============

Every function validates its inputs and raises :class:`~cistheory.errors.CISInputError`
naming the offending field; it never returns NaN and never clips. This layer needs numpy only.
"""

from __future__ import annotations

from .corollary import BoundTerms, CISConstants, cis_bound, full_bound
from .lemma2 import variance_bound, variance_exact
from .theorem1 import bias_bound, chi2, training_error_bound
from .theorem2 import sgd_diminishing_bound, sgd_fixed_step_bound
from .theorem2_local import drift_factor, local_sgd_bound, local_variance_bound
from .theorem3 import generalization_bound, linear_rademacher

__all__ = [
    "BoundTerms",
    "CISConstants",
    "bias_bound",
    "chi2",
    "cis_bound",
    "drift_factor",
    "full_bound",
    "generalization_bound",
    "linear_rademacher",
    "local_sgd_bound",
    "local_variance_bound",
    "sgd_diminishing_bound",
    "sgd_fixed_step_bound",
    "training_error_bound",
    "variance_bound",
    "variance_exact",
]
