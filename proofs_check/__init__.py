"""proofs_check: every step of every proof of ``docs/theory.md``, checked.

Symbolic steps are proved with sympy (three-valued: an unproven step fails); numeric steps
evaluate each inequality of a proof on random instances where its left side is exact
(closed-form quadratics, exact moments of SGD, enumeration of selection outcomes) or, for
Theorem 3, on many Monte Carlo draws. ``python -m proofs_check`` prints the table.
"""

from __future__ import annotations

from ._core import CheckResult, Report, Tightness
from .registry import MODULES, run_all, run_module

__all__ = ["MODULES", "CheckResult", "Report", "Tightness", "run_all", "run_module"]
