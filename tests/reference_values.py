"""Reference values used by the tests, each with its source.

- ``BALANCED_ADJ_80_15_5``: the reference release's Balanced Adj weights ("ERR_MIN_BIAS_OPT_MEAN")
  for the 80-15-5 tree with exits 3-9-17, recomputed in :func:`release_balanced_adj` exactly as
  that release does (opt-error weight of exit e = 1 / (sigma_e^2 * (1/n_e)^2 * n_e), normalised;
  serving shares normalised; mean of the two; normalised), written with dicts and loops so it
  shares no code with :mod:`cistheory.rules`.
"""

from __future__ import annotations

import math

REFERENCE_SIGMA_3_9_17 = (0.00374, 0.00224, 0.00101)  # THEORY.md section 7
NODES_PER_EXIT_7 = (4, 2, 1)  # leaves, middles, root of the 7-node tree
LAMBDA_80_15_5 = (0.8, 0.15, 0.05)  # served at leaves / middles / root


def release_balanced_adj(
    lam: tuple[float, ...], sigma: tuple[float, ...], n_per_exit: tuple[int, ...]
) -> list[float]:
    """The reference release's Balanced Adj rule, restated independently."""
    opt = {}
    for e, (s, n) in enumerate(zip(sigma, n_per_exit, strict=True)):
        share = 1.0 / n  # each node's data fraction m_i / M_e with equal data
        opt[e] = 1.0 / (s**2 * share**2 * n)
    total_opt = sum(opt.values())
    opt = {e: w / total_opt for e, w in opt.items()}
    total_lam = sum(lam)
    mixed = {e: (lam[e] / total_lam + opt[e]) / 2 for e in range(len(lam))}
    total = sum(mixed.values())
    return [mixed[e] / total for e in range(len(lam))]


BALANCED_ADJ_80_15_5 = release_balanced_adj(
    LAMBDA_80_15_5, REFERENCE_SIGMA_3_9_17, NODES_PER_EXIT_7
)
assert math.isclose(sum(BALANCED_ADJ_80_15_5), 1.0)
