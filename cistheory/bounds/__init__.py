r"""The bounds of ``docs/theory.md``, Section 4: one module per statement.

Each module is named as the statement it encodes and as the module of ``proofs_check`` that
checks it; the sympy forms live in the same-named modules of :mod:`cistheory.symbolic`.

First generation (Sections 4.1-4.9, kept for comparison; Theorem 2 and 2' assume a gradient
bound along the trajectory, which Section 4.10 shows can fail):

======================================  ====================================  ===============
function                                statement in ``docs/theory.md``       module
======================================  ====================================  ===============
:func:`variance_exact`                  Lemma 2 (exact variance)              ``lemma2``
:func:`variance_bound`                  Lemma 2 (convex bound)                ``lemma2``
:func:`variance_inclusion`              Lemma 2f (a fixed number per round)   ``lemma2_fixed``
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

Second generation (Sections 4.10-4.20; no assumption along the trajectory, constants per
design, ``inf`` outside a statement's conditions):

=============================================  ============================  =================
function                                       statement                     module
=============================================  ============================  =================
:func:`variance_parts`                         Lemma 2 (:math:`V_s, V_n`)    ``lemma2``
:func:`expected_smoothness` (and ``_nodes``,   Lemma ES                      ``lemma_es``
``_pairwise``), :func:`sampling_lipschitz`
:func:`distance_bound` (``_simple``,           Theorem A (a)-(c)             ``theorem_a``
``_diminishing``, ``_nonconvex``)
:func:`local_distance_bound`                   Theorem B (tau local steps)   ``theorem_b``
:func:`gap_bound_averaged`, ``gap_bound_last``,  Theorem C, C-avg, C'          ``theorem_c``
:func:`combined_sequences`
:func:`quadratic_sequences`                    Theorem Q                     ``theorem_q``
:func:`modal_bound`, :func:`trace_bound`       Theorem M                     ``theorem_m``
:func:`target_error_bound` (``_e``,            Theorem D                     ``theorem_d``
``_convex``), :func:`relative_smoothness`
:func:`heterogeneity_at_optimum`,              Theorem E                     ``theorem_e``
:func:`bias_bound_gradient`, ``bias_bound_zeta``
:func:`projected_risk_bound`,                  Corollary P, Corollary M      ``corollary_pm``
:func:`risk_tail_probability`
=============================================  ============================  =================

Every function validates its inputs and raises :class:`~cistheory.errors.CISInputError`
naming the offending field; it never returns NaN and never clips. This layer needs numpy only.
"""

from __future__ import annotations

from .corollary import BoundTerms, CISConstants, cis_bound, full_bound
from .corollary_pm import projected_risk_bound, risk_tail_probability
from .lemma2 import variance_bound, variance_exact, variance_parts
from .lemma2_fixed import uniform_inclusion, variance_inclusion
from .lemma_es import (
    expected_smoothness,
    expected_smoothness_nodes,
    expected_smoothness_pairwise,
    sampling_lipschitz,
)
from .theorem1 import bias_bound, chi2, training_error_bound
from .theorem2 import sgd_diminishing_bound, sgd_fixed_step_bound
from .theorem2_local import drift_factor, local_sgd_bound, local_variance_bound
from .theorem3 import generalization_bound, linear_rademacher
from .theorem_a import (
    distance_bound,
    distance_bound_diminishing,
    distance_bound_nonconvex,
    distance_bound_simple,
    step_limit,
)
from .theorem_b import local_distance_bound
from .theorem_c import combined_sequences, gap_bound_averaged, gap_bound_last
from .theorem_d import (
    relative_smoothness,
    target_error_bound,
    target_error_bound_convex,
    target_error_bound_e,
)
from .theorem_e import bias_bound_gradient, bias_bound_zeta, heterogeneity_at_optimum
from .theorem_m import ModalBound, modal_bound, trace_bound
from .theorem_q import SequenceBound, quadratic_sequences

__all__ = [
    "BoundTerms",
    "CISConstants",
    "ModalBound",
    "SequenceBound",
    "bias_bound",
    "bias_bound_gradient",
    "bias_bound_zeta",
    "chi2",
    "cis_bound",
    "combined_sequences",
    "distance_bound",
    "distance_bound_diminishing",
    "distance_bound_nonconvex",
    "distance_bound_simple",
    "drift_factor",
    "expected_smoothness",
    "expected_smoothness_nodes",
    "expected_smoothness_pairwise",
    "full_bound",
    "gap_bound_averaged",
    "gap_bound_last",
    "generalization_bound",
    "heterogeneity_at_optimum",
    "linear_rademacher",
    "local_distance_bound",
    "local_sgd_bound",
    "local_variance_bound",
    "modal_bound",
    "projected_risk_bound",
    "quadratic_sequences",
    "relative_smoothness",
    "risk_tail_probability",
    "sampling_lipschitz",
    "sgd_diminishing_bound",
    "sgd_fixed_step_bound",
    "step_limit",
    "target_error_bound",
    "target_error_bound_convex",
    "target_error_bound_e",
    "trace_bound",
    "training_error_bound",
    "uniform_inclusion",
    "variance_bound",
    "variance_exact",
    "variance_inclusion",
    "variance_parts",
]
