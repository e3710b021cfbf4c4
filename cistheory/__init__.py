"""cistheory: theory, bound-optimal weights and simulation for federated training of CIS.

This namespace re-exports the public names of the numpy-only layers (``docs/architecture.md``):
the system (:mod:`cistheory.system`), the bounds (:mod:`cistheory.bounds`), the rules
(:mod:`cistheory.rules`) and the experiments (:mod:`cistheory.experiments`). The symbolic
layer (:mod:`cistheory.symbolic`, sympy), the solvers (``convex``, cvxpy) and the trainer
(:mod:`cistheory.train`, torch) load when used.
"""

from __future__ import annotations

from .bounds import (
    BoundTerms,
    CISConstants,
    bias_bound,
    chi2,
    cis_bound,
    drift_factor,
    full_bound,
    generalization_bound,
    linear_rademacher,
    local_sgd_bound,
    local_variance_bound,
    sgd_diminishing_bound,
    sgd_fixed_step_bound,
    training_error_bound,
    variance_bound,
    variance_exact,
)
from .errors import CISInputError
from .experiments import ValidationConfig, ValidationResult, validate_rates
from .rules import (
    RULES,
    balanced_adj,
    equal,
    flops_proportional,
    inverse_variance,
    normalise,
    serving_rate,
    variance_coefficients,
)
from .system import (
    CIS,
    DATA_SPLITS,
    P40,
    RATE_SPLITS,
    REFERENCE_SIGMA,
    EffectiveObjective,
    Participation,
    Serving,
    aggregation_weights,
    beta,
    cis_to_spec,
    deepest_exit,
    dirichlet_label_split,
    effective_objective,
    explicit,
    load_spec,
    named_policy,
    node_depths,
    parse_spec,
    reference_cis,
    resnet18_exit_flops,
    shallower_with_probability,
    three_tier_cis,
)

__version__ = "0.1.0"

__all__ = [
    "CIS",
    "DATA_SPLITS",
    "P40",
    "RATE_SPLITS",
    "REFERENCE_SIGMA",
    "RULES",
    "BoundTerms",
    "CISConstants",
    "CISInputError",
    "EffectiveObjective",
    "Participation",
    "Serving",
    "ValidationConfig",
    "ValidationResult",
    "__version__",
    "aggregation_weights",
    "balanced_adj",
    "beta",
    "bias_bound",
    "chi2",
    "cis_bound",
    "cis_to_spec",
    "deepest_exit",
    "dirichlet_label_split",
    "drift_factor",
    "effective_objective",
    "equal",
    "explicit",
    "flops_proportional",
    "full_bound",
    "generalization_bound",
    "inverse_variance",
    "linear_rademacher",
    "load_spec",
    "local_sgd_bound",
    "local_variance_bound",
    "named_policy",
    "node_depths",
    "normalise",
    "parse_spec",
    "reference_cis",
    "resnet18_exit_flops",
    "serving_rate",
    "sgd_diminishing_bound",
    "sgd_fixed_step_bound",
    "shallower_with_probability",
    "three_tier_cis",
    "training_error_bound",
    "validate_rates",
    "variance_bound",
    "variance_coefficients",
    "variance_exact",
]
