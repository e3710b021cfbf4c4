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

# The reference release's tree files: SHA-256 of each file as the release has it
# (github.com/arodio/FedCIS; the 7- and 17-node files at commit 7c7f1bc, the 100-node files
# at commit d1606a6, all under specs/). The shipped copies in cistheory/data/reference/ are
# those bytes, except 3-layer-tree-5-15-80.json (see RELEASE_5_15_80_COMMENTS).
RELEASE_7_NODE_SHA256 = {
    "5-15-80": "b656ecec938769a386d7f1721a78599aacca462d58130316f29c508b0eee50d1",
    "10-30-60": "305addc8492b4a2c1f0e65baa10891e440b27dcd44f7fd51a18f4d60d196a805",
    "20-35-45": "3aad8712b230480b0821adb74330a807bb5aca2c9be56b5f2a9fa99949e944df",
    "33-33-33": "dbadfebfe1a1dbfb17fc4a52a307c40f7d4c7eab46a176879fec25f663bf9121",
    "45-35-20": "42423fa90911ae772ceba080af31fb02bc0929f3c428ca58596c30ec133d73b3",
    "60-30-10": "db207be02ceba575cffc26d35f4a85fd689cebf71a40d6cd7b797f2a095c01a6",
    "80-15-5": "614fef5fd30f32b97bb7c87cd4488bae30afa5247d4b183da964a165a600e598",
}
RELEASE_17_NODE_SHA256 = {
    "45-35-20": "5f6abc11f1dd03c862a6d37667bc3681cce34cc269b5a77cb80a5719da46ddc6",
    "60-30-10": "1511036864ca21b342e373014662826f4b382834bfbac502d09bb09a41926c87",
    "80-15-5": "4e071a1374ecbe5a20b34cc1f7e8e317b3c51aa7b00791a925495d4847559290",
}
RELEASE_100_NODE_SHA256 = {
    "5-15-80": "20870a90a545cd3705c9c7fcfaea27b3c940fe7f7e398a200773df44b4914878",
    "10-30-60": "5d006f1b8215330cc0c93cfde4c3713be192002a4b43b356f9368317ddd8a334",
    "20-35-45": "b3c9cc8be5ae2bdda0f3957b86611bb72c003b42fc7e6629b9eb0b379c7260f6",
    "33-33-33": "f4950eec5b5111b8cfa8fe64e939d78b02a5fe06443cd86324ad103992db1129",
    "45-35-20": "7594a6675d3df5c8d3f766597741ba25f9282bf0f8cacee67b1c2168187f819a",
    "60-30-10": "8627de47fc3694f8ba23bacfc02ce9c3facf4c3f1b19931624cc5ad1965d218a",
    "80-0-20": "a32c96b1e4b739245c6a70f73b409a1e2d81af6c52bd5d9a73c3cfaf1ed65794",
    "80-15-5": "9ffaea34af9077ab0a4b47d89e139018d03aa6d09fbb4a13f1b1b79ca79561b0",
}
# The release's 7-node 5-15-80 file carries four '#' comments, which JSON does not allow;
# the shipped copy ends those four lines before " # ...". (1-based line, comment) as there.
RELEASE_5_15_80_COMMENTS = (
    (2, " # edges"),
    (28, " # number of exits"),
    (38, " # arrival rate"),
    (47, " # forward rate"),
)
# The shares each 7-node file is named after (A% leaves, B% middles, C% root); the release's
# 33-33-33 file serves exactly a third at each tier (leaf arrival 3, every forward 2).
PUBLISHED_SHARES = {
    "5-15-80": (0.05, 0.15, 0.80),
    "10-30-60": (0.10, 0.30, 0.60),
    "20-35-45": (0.20, 0.35, 0.45),
    "33-33-33": (1 / 3, 1 / 3, 1 / 3),
    "45-35-20": (0.45, 0.35, 0.20),
    "60-30-10": (0.60, 0.30, 0.10),
    "80-15-5": (0.80, 0.15, 0.05),
}
