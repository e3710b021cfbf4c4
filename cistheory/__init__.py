"""cistheory: theory, bound-optimal weights and simulation for federated training of CIS.

The core (this namespace) needs only numpy. The symbolic layer (sympy), the solvers
(``convex``, cvxpy) and the trainer (``cistheory.train``, torch) load when used.
"""

from __future__ import annotations

from .bounds import (
    BoundTerms,
    CISConstants,
    bias_bound,
    chi2,
    cis_bound,
    full_bound,
    generalization_bound,
    linear_rademacher,
    sgd_diminishing_bound,
    sgd_fixed_step_bound,
    training_error_bound,
    variance_bound,
    variance_exact,
)
from .errors import CISInputError
from .local_sgd import drift_factor, local_sgd_bound, local_variance_bound
from .participation import (
    P40,
    EffectiveObjective,
    Participation,
    aggregation_weights,
    beta,
    deepest_exit,
    effective_objective,
    explicit,
    named_policy,
    shallower_with_probability,
)
from .reference import (
    DATA_SPLITS,
    RATE_SPLITS,
    REFERENCE_SIGMA,
    dirichlet_label_split,
    reference_cis,
    resnet18_exit_flops,
    three_tier_cis,
)
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
from .spec import cis_to_spec, load_spec, parse_spec
from .system import CIS, Serving, node_depths
from .validate import ValidationConfig, ValidationResult, validate_rates

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
