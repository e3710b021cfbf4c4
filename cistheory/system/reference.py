r"""The reference configurations of the authors' experiments, and tree generators.

Facts (``docs/theory.md``, Section 7): a 7-node three-tier tree (root ``0`` with 3 exits,
middles ``1-2`` with 2, leaves ``3-6`` with 1), rate splits ``A-B-C`` that serve A% at the
leaves, B% at the middles and C% at the root, three data splits of 45,000 training images,
and per-exit gradient-noise constants for the early-exit ResNet-18 with exits after units
3-9-17 or 9-13-17. Generators build the 17- and 100-node variants and any other
three-tier tree, and split a labelled dataset by a Dirichlet law over labels.
"""

from __future__ import annotations

import json
from fractions import Fraction
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import FloatArray, IntArray, as_float_array, check_scalar
from ..errors import CISInputError
from .tree import CIS

__all__ = [
    "DATA_SPLITS",
    "RATE_SPLITS",
    "REFERENCE_SIGMA",
    "THIRDS_NAME",
    "TIER_DATA_FRACTIONS",
    "dirichlet_label_split",
    "reference_cis",
    "reference_spec_dict",
    "resnet18_exit_flops",
    "shipped_reference_file",
    "three_tier_cis",
]

RATE_SPLITS: tuple[str, ...] = (
    "5-15-80",
    "10-30-60",
    "20-35-45",
    "33-33-33",
    "45-35-20",
    "60-30-10",
    "80-15-5",
)
"""Reference rate splits, ``leaves-middles-root`` percentages of requests served."""

DATA_SPLITS: dict[str, tuple[int, int, int]] = {
    "equal": (15000, 7500, 3750),
    "2x": (25714, 6428, 1607),
    "tiny": (34504, 4480, 384),
}
"""Training samples of (root, each middle, each leaf) in the 7-node tree, of 45,000."""

TIER_DATA_FRACTIONS: dict[str, tuple[float, float, float]] = {
    name: (r / 45000, 2 * m / 45000, 4 * leaf / 45000) for name, (r, m, leaf) in DATA_SPLITS.items()
}
"""Share of the 45,000 samples held by the (root, middle, leaf) tier, for any tree size."""

REFERENCE_SIGMA: dict[str, tuple[float, float, float]] = {
    "3-9-17": (0.00374, 0.00224, 0.00101),
    "9-13-17": (0.00216, 0.00126, 0.00101),
}
"""Per-exit gradient-noise constants of the reference release (7-node tree), by exit units."""


def resnet18_unit_macs(
    strides: tuple[int, int, int, int] = (1, 1, 2, 2), width: int = 64, image: int = 32
) -> IntArray:
    """Multiply-accumulates of the 17 units of a CIFAR ResNet-18 (stem, then 16 half-blocks).

    Each basic block is two units; the first unit of a block carries the 1x1 shortcut
    convolution when the block changes resolution or width. Heads are not counted.
    """
    macs = [3 * width * 9 * image * image]
    in_ch, size = width, image
    for s in range(4):
        out = width * 2**s
        for b in range(2):
            stride = strides[s] if b == 0 else 1
            size_out = size // stride
            conv1 = in_ch * out * 9 * size_out**2
            shortcut = in_ch * out * size_out**2 if (stride != 1 or in_ch != out) else 0
            macs.append(conv1 + shortcut)
            macs.append(out * out * 9 * size_out**2)
            in_ch, size = out, size_out
    return np.asarray(macs, dtype=np.int64)


def resnet18_exit_flops(exits: tuple[int, ...] = (3, 9, 17)) -> FloatArray:
    """Relative compute :math:`r_k` of a ResNet-18 cut after each exit unit (full model = 1)."""
    cum = np.cumsum(resnet18_unit_macs())
    for e in exits:
        if not 1 <= e <= 17:
            raise CISInputError("exits", e, "exit units lie in 1..17")
    return np.asarray([cum[e - 1] / cum[-1] for e in exits], dtype=np.float64)


THIRDS_NAME = "33-33-33"
"""The reference release's name of the equal split: its 7-node file serves a third at each
tier (leaf arrival 3, every leaf and middle forwarding 2), so the name stands for
:math:`(100/3, 100/3, 100/3)`."""


def _parse_split(split: str) -> tuple[Fraction, Fraction, Fraction]:
    """The percentages ``A-B-C`` of a rate split, exact; they must sum to 100.

    ``33-33-33`` is the release's name for equal thirds (:data:`THIRDS_NAME`).
    """
    if not isinstance(split, str):
        raise CISInputError("split", split, "expected 'A-B-C' percentages, e.g. '80-15-5'")
    if split == THIRDS_NAME:
        third = Fraction(100, 3)
        return third, third, third
    try:
        parts = tuple(Fraction(x.strip()) for x in split.split("-"))
    except (ValueError, ZeroDivisionError):
        raise CISInputError(
            "split", split, "expected 'A-B-C' percentages, e.g. '80-15-5'"
        ) from None
    if len(parts) != 3 or any(not 0 <= p <= 100 for p in parts):
        raise CISInputError("split", split, "expected three percentages in [0, 100], 'A-B-C'")
    if sum(parts) != 100:
        total = float(sum(parts))
        raise CISInputError(
            "split",
            split,
            f"A + B + C must be 100 (it is {total:g}); '{THIRDS_NAME}' names equal thirds",
        )
    return parts[0], parts[1], parts[2]


def _tree_shape(n_middles: int, leaves_per_middle: int) -> tuple[IntArray, IntArray]:
    n = 1 + n_middles + n_middles * leaves_per_middle
    parent = np.empty(n, dtype=np.int64)
    parent[0] = -1
    parent[1 : 1 + n_middles] = 0
    parent[1 + n_middles :] = 1 + np.repeat(np.arange(n_middles), leaves_per_middle)
    cap = np.ones(n, dtype=np.int64)
    cap[0] = 3
    cap[1 : 1 + n_middles] = 2
    return parent, cap


def _default_leaf_arrival(n_leaves: int, split: str) -> Fraction:
    if n_leaves == 4:
        return Fraction(3) if split == THIRDS_NAME else Fraction(5, 2)
    if n_leaves == 12:
        return Fraction(1)
    return Fraction(10, n_leaves)


def three_tier_cis(
    n_middles: int,
    leaves_per_middle: int,
    split: str = "80-15-5",
    *,
    data: str | ArrayLike | None = "equal",
    leaf_arrival: float | None = None,
    total_samples: int = 45000,
    exits: tuple[int, ...] = (3, 9, 17),
) -> CIS:
    r"""A three-tier CIS: root (3 exits), ``n_middles`` middles (2), leaves (1).

    Leaves receive all requests at rate ``leaf_arrival`` each. A leaf forwards
    :math:`a (B + C)/100` and a middle with :math:`g` leaves forwards :math:`a\,C\,g/100`,
    the convention of the reference release's tree files: leaves serve A%, middles B% and
    the root C% of the arrivals. The rates are computed in exact rational arithmetic and
    rounded once, so the 7-node trees are those of the release's files number for number.

    Parameters
    ----------
    n_middles, leaves_per_middle : int
        Tree shape; the 7-, 17- and 100-node variants are (2, 2), (4, 3) and (9, 10).
    split : str
        ``"A-B-C"`` percentages served at leaves, middles, root, summing to 100;
        ``"33-33-33"`` is the release's name for equal thirds.
    data : {"equal", "2x", "tiny"}, array of shape (N,), or None
        Data split: a tier-share name of the reference splits (:data:`TIER_DATA_FRACTIONS`),
        explicit sizes, or ``None`` for no data sizes (equal data assumed).
    leaf_arrival : float, optional
        Arrival rate at each leaf (> 0); defaults to the reference (2.5 for 4 leaves, 3 for
        the 33-33-33 file, 1 for 12 leaves, else a total of 10).
    exits : tuple of int
        Exit units of the ResNet-18, for the relative FLOPs of each exit.
    """
    _, b_pct, c_pct = _parse_split(split)
    if n_middles < 1 or leaves_per_middle < 1:
        raise CISInputError("tree", (n_middles, leaves_per_middle), "need >= 1 middle and leaf")
    parent, cap = _tree_shape(n_middles, leaves_per_middle)
    n = parent.size
    n_leaves = n_middles * leaves_per_middle
    if leaf_arrival is None:
        lam_leaf = _default_leaf_arrival(n_leaves, split)
    else:
        lam_leaf = Fraction(check_scalar(leaf_arrival, "leaf_arrival", positive=True))
    arrival = np.zeros(n)
    arrival[1 + n_middles :] = float(lam_leaf)
    forward = np.zeros(n)
    forward[1 : 1 + n_middles] = float(lam_leaf * c_pct * leaves_per_middle / 100)
    forward[1 + n_middles :] = float(lam_leaf * (b_pct + c_pct) / 100)
    sizes: FloatArray | None
    if data is None:
        sizes = None
    elif isinstance(data, str):
        if data not in TIER_DATA_FRACTIONS:
            raise CISInputError(
                "data", data, f"unknown data split; use one of {sorted(DATA_SPLITS)}"
            )
        if (n_middles, leaves_per_middle) == (2, 2):
            r, m, leaf = DATA_SPLITS[data]
        else:
            fr, fm, fl = TIER_DATA_FRACTIONS[data]
            r = int(total_samples * fr)
            m = int(total_samples * fm / n_middles)
            leaf = int(total_samples * fl / n_leaves)
        sizes = np.concatenate([[r], np.full(n_middles, m), np.full(n_leaves, leaf)]).astype(float)
    else:
        sizes = as_float_array(data, "data", shape=(n,), nonneg=True)
    return CIS.build(
        parent=parent,
        capacity=cap,
        arrival=arrival,
        forward=forward,
        data=sizes,
        n_exits=3,
        exit_flops=resnet18_exit_flops(exits),
        name=f"{n}-node {split}" + (f" data={data}" if isinstance(data, str) else ""),
    )


def reference_cis(
    split: str = "80-15-5",
    data: str | None = "equal",
    *,
    n_nodes: int = 7,
    exits: tuple[int, ...] = (3, 9, 17),
) -> CIS:
    """The reference CIS: ``n_nodes`` in {7, 17, 100}, a rate split and a data split.

    Examples
    --------
    >>> reference_cis("80-15-5").lam.round(6).tolist()
    [0.8, 0.15, 0.05]
    """
    shapes = {7: (2, 2), 17: (4, 3), 100: (9, 10)}
    if n_nodes not in shapes:
        raise CISInputError("n_nodes", n_nodes, "reference trees have 7, 17 or 100 nodes")
    return three_tier_cis(*shapes[n_nodes], split, data=data, exits=exits)


def shipped_reference_file(split: str) -> str:
    """Text of the shipped reference file ``3-layer-tree-<split>.json`` (7 nodes).

    The seven files are the reference release's (``arodio/FedCIS``, commit ``7c7f1bc``,
    ``specs/``), byte for byte, except ``3-layer-tree-5-15-80.json``, whose four ``#``
    comments (not JSON) are removed (``docs/spec-format.md``).
    """
    if split not in RATE_SPLITS:
        raise CISInputError("split", split, f"no shipped file; use one of {', '.join(RATE_SPLITS)}")
    path = resources.files("cistheory") / "data" / "reference" / f"3-layer-tree-{split}.json"
    return path.read_text(encoding="utf-8")


def reference_spec_dict(split: str) -> dict[str, Any]:
    """The reference release's document (field names as there, typo included) of the 7-node
    tree with rate split ``split``: the shipped file, parsed."""
    doc: dict[str, Any] = json.loads(shipped_reference_file(split))
    return doc


def dirichlet_label_split(
    labels: ArrayLike, n_nodes: int, alpha: float = 0.5, *, rng: np.random.Generator
) -> list[IntArray]:
    r"""Split sample indices among nodes with label proportions drawn from Dirichlet(alpha).

    For each label :math:`y`, proportions :math:`p \sim \mathrm{Dir}(\alpha \mathbf 1_N)`
    assign that label's (shuffled) samples to the nodes. Every index goes to exactly one node.

    Parameters
    ----------
    labels : array of int, shape (n,)
    n_nodes : int
    alpha : float
        Concentration; small values give very uneven label mixes (0.5 in the reference).
    rng : numpy.random.Generator
        The split's own seeded generator.
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise CISInputError("labels", y.shape, "must be a 1-d array")
    if n_nodes < 1:
        raise CISInputError("n_nodes", n_nodes, "must be >= 1")
    if not alpha > 0:
        raise CISInputError("alpha", alpha, "must be > 0")
    parts: list[list[IntArray]] = [[] for _ in range(n_nodes)]
    for lab in np.unique(y):
        idx = np.flatnonzero(y == lab)
        rng.shuffle(idx)
        p = rng.dirichlet(np.full(n_nodes, alpha))
        cuts = (np.cumsum(p)[:-1] * idx.size).astype(np.int64)
        for node, chunk in enumerate(np.split(idx, cuts)):
            parts[node].append(chunk)
    return [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]
