"""The paper's figures: each a module with ``SPEC``, ``compute(size, out, seed)`` and ``plot``.

``compute`` writes the figure's data (CSV/JSON) and returns the JSON path; ``plot`` reads it
and writes PNG and PDF. ``python -m figures`` runs them all (see ``figures/__main__.py``).
"""

from __future__ import annotations

__all__ = ["FIGURES"]

FIGURES: tuple[str, ...] = (
    "rules_weights",
    "bound_path",
    "convergence",
    "ranking",
    "accuracy",
    "p40",
    "q_heatmap",
)
"""Figure module names, in the order ``python -m figures`` runs them."""
