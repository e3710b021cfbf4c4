"""The system of ``docs/theory.md``, Sections 1-3: the CIS, its participation and aggregation.

- :mod:`~cistheory.system.tree`: the tree, rates and serving shares (Section 1);
- :mod:`~cistheory.system.spec`: spec files (``docs/spec-format.md``);
- :mod:`~cistheory.system.reference`: the reference configuration (Section 7);
- :mod:`~cistheory.system.participation`: the probabilities ``q``, their one check and the
  named policies (Section 2);
- :mod:`~cistheory.system.aggregation`: the pair weights ``beta`` and the server's rules
  (Section 3, Lemma 1).

This layer needs numpy only.
"""

from __future__ import annotations

from .aggregation import (
    AGGREGATION_RULES,
    EffectiveObjective,
    aggregation_weights,
    beta,
    effective_objective,
)
from .participation import (
    P40,
    POLICIES,
    ROW_ATOL,
    Participation,
    check_q,
    deepest_exit,
    explicit,
    fixed_count,
    named_policy,
    q_table,
    shallower_with_probability,
)
from .reference import (
    DATA_SPLITS,
    RATE_SPLITS,
    REFERENCE_SIGMA,
    TIER_DATA_FRACTIONS,
    dirichlet_label_split,
    reference_cis,
    reference_spec_dict,
    resnet18_exit_flops,
    three_tier_cis,
)
from .spec import cis_to_spec, load_spec, parse_spec
from .tree import CIS, Serving, node_depths, serve

__all__ = [
    "AGGREGATION_RULES",
    "CIS",
    "DATA_SPLITS",
    "P40",
    "POLICIES",
    "RATE_SPLITS",
    "REFERENCE_SIGMA",
    "ROW_ATOL",
    "TIER_DATA_FRACTIONS",
    "EffectiveObjective",
    "Participation",
    "Serving",
    "aggregation_weights",
    "beta",
    "check_q",
    "cis_to_spec",
    "deepest_exit",
    "dirichlet_label_split",
    "effective_objective",
    "explicit",
    "fixed_count",
    "load_spec",
    "named_policy",
    "node_depths",
    "parse_spec",
    "q_table",
    "reference_cis",
    "reference_spec_dict",
    "resnet18_exit_flops",
    "serve",
    "shallower_with_probability",
    "three_tier_cis",
]
