"""The list of checked statements and the runner."""

from __future__ import annotations

import importlib
import logging
import time

import numpy as np

from ._core import CheckFn, CheckResult, Report, Tightness

__all__ = ["MODULES", "run_all", "run_module"]

logger = logging.getLogger(__name__)

# One module per statement of docs/theory.md, in the order of the document: the first
# generation (Sections 4.1-4.8), then the second (Sections 4.11-4.19).
MODULES: tuple[str, ...] = (
    "lemma1",
    "lemma2",
    "theorem1",
    "theorem2",
    "theorem2_local",
    "theorem3",
    "corollary",
    "lemma_es",
    "theorem_a",
    "theorem_b",
    "theorem_c",
    "theorem_q",
    "theorem_m",
    "theorem_d",
    "theorem_e",
    "corollary_pm",
    "proposition_v",
)


def run_module(
    name: str, rng: np.random.Generator, instances: int
) -> tuple[list[CheckResult], list[Tightness]]:
    """Run the checks of one module (``name`` from :data:`MODULES`)."""
    if name not in MODULES:
        raise ValueError(f"unknown proofs_check module {name!r}; choose from {MODULES}")
    mod = importlib.import_module(f"proofs_check.{name}")
    fn: CheckFn = mod.run
    return fn(rng, instances)


def run_all(
    instances: int = 500, seed: int = 0, modules: tuple[str, ...] | None = None
) -> Report:
    """Run every check.

    Parameters
    ----------
    instances : int
        Random instances per numeric inequality (>= 1).
    seed : int
        Seed of the single ``np.random.Generator``; each module gets a child generator
        spawned from it in registry order, so one module's results do not depend on which
        other modules run.
    modules : tuple of str, optional
        Subset of :data:`MODULES` (default: all).
    """
    if instances < 1:
        raise ValueError(f"instances must be >= 1, got {instances}")
    rng = np.random.default_rng(seed)
    children = dict(zip(MODULES, rng.spawn(len(MODULES)), strict=True))
    checks: list[CheckResult] = []
    tight: list[Tightness] = []
    for name in modules or MODULES:
        if name not in children:
            raise ValueError(f"unknown proofs_check module {name!r}; choose from {MODULES}")
        start = time.perf_counter()
        c, t = run_module(name, children[name], instances)
        logger.info("%s: %d checks in %.1f s", name, len(c), time.perf_counter() - start)
        checks.extend(c)
        tight.extend(t)
    return Report(checks=tuple(checks), tightness=tuple(tight))
