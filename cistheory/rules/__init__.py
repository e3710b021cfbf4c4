"""Training-weight rules (``docs/theory.md``, Section 6): the formulas and the one registry.

:mod:`~cistheory.rules.formulas` holds the formulas (numpy only);
:mod:`~cistheory.rules.registry` maps each rule's name to its formula and to what it needs,
and is the only path from a name to weights.
"""

from __future__ import annotations

from .formulas import (
    balanced_adj,
    equal,
    flops_proportional,
    inverse_variance,
    normalise,
    serving_rate,
    variance_coefficients,
)
from .registry import RULE_NAMES, RULES, Rule, RuleInputs, get_rule, rule_inputs, rule_weights

__all__ = [
    "RULES",
    "RULE_NAMES",
    "Rule",
    "RuleInputs",
    "balanced_adj",
    "equal",
    "flops_proportional",
    "get_rule",
    "inverse_variance",
    "normalise",
    "rule_inputs",
    "rule_weights",
    "serving_rate",
    "variance_coefficients",
]
