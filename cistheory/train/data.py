r"""Offline datasets and their splits across the nodes of a CIS.

- Synthetic tasks with a difficulty structure: a sample of difficulty :math:`\ell` is
  labelled by a teacher that reads the first :math:`d_\ell` features only, so a shallow exit
  (reading :math:`d_1` features) can answer the easy samples and the hard ones need deeper
  exits, while the deepest exit can answer all; nodes differ by a feature shift (controlled
  heterogeneity) and may differ in their mix of difficulties.
- The handwritten digits shipped with scikit-learn (optional extra ``cistheory[digits]``).
- CIFAR-10/100 read from a local directory in the standard python pickle format, MNIST and
  Fashion-MNIST from local IDX files; nothing is ever downloaded.
- Splits: by sizes (shuffled), proportional to a CIS's data sizes (the reference tier
  splits, ``cistheory.DATA_SPLITS``), the Dirichlet label split, and the tier sizes of a
  CIS with the end devices' share split by a Dirichlet law over labels (the 100-node
  variant).
- The standard CIFAR augmentation (random crop after 4-pixel padding, horizontal flip) on
  a batch already on the device, from uniforms drawn by the caller's generator.
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from .._arrays import as_float_array, as_simplex
from ..errors import CISInputError
from ..system.reference import dirichlet_label_split
from ..system.tree import CIS

__all__ = [
    "AUGMENTATIONS",
    "Dataset",
    "NodeData",
    "SyntheticTask",
    "crop_flip",
    "digits",
    "dirichlet_split",
    "load_cifar",
    "load_idx",
    "split_by_sizes",
    "split_for_cis",
    "split_tiers_dirichlet",
    "synthetic_classification",
    "synthetic_regression",
    "synthetic_task",
]


@dataclass(frozen=True)
class Dataset:
    """Samples ``x``, targets ``y`` and, when known, a per-sample ``difficulty`` level.

    Examples
    --------
    >>> d = Dataset(torch.zeros(3, 2), torch.tensor([0, 1, 0]))
    >>> len(d), len(d.subset([0, 2]))
    (3, 2)
    """

    x: torch.Tensor
    y: torch.Tensor
    difficulty: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        if self.y.shape[0] != n:
            raise CISInputError("y", tuple(self.y.shape), f"expected {n} targets (len(x))")
        if self.difficulty is not None and self.difficulty.shape[0] != n:
            raise CISInputError(
                "difficulty", tuple(self.difficulty.shape), f"expected {n} levels (len(x))"
            )

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, index: ArrayLike) -> Dataset:
        """The samples at ``index`` (an integer array)."""
        idx = torch.as_tensor(np.asarray(index, dtype=np.int64), device=self.x.device)
        diff = None if self.difficulty is None else self.difficulty[idx]
        return Dataset(self.x[idx], self.y[idx], diff)

    def to(self, device: torch.device | str) -> Dataset:
        """The same samples on ``device`` (the dataset itself when already there)."""
        dev = torch.device(device)
        if self.x.device == dev and self.y.device == dev:
            return self
        diff = None if self.difficulty is None else self.difficulty.to(dev)
        return Dataset(self.x.to(dev), self.y.to(dev), diff)


NodeData = list[Dataset]
"""Training data of each node, indexed like the CIS's nodes."""


@dataclass(frozen=True)
class SyntheticTask:
    r"""A teacher for synthetic early-exit tasks with a difficulty structure.

    Features come in blocks :math:`B_b = [d_{b-1}, d_b)` (:math:`d_0 = 0`). A sample of
    difficulty :math:`\ell` has :math:`x = s + \xi` with :math:`\xi_j \sim \mathcal N(0, 1)`
    on the blocks :math:`b \le \ell` and :math:`\mathcal N(0, \epsilon^2)` on deeper blocks
    (:math:`\epsilon` = ``deep_scale``, the shift :math:`s` makes nodes heterogeneous). Its
    score reads only the blocks up to its difficulty,

    .. math:: z = \sum_{b \le \ell} T_b^\top x_{B_b},

    with label :math:`\arg\max_c z_c` (classification) or target
    :math:`z_1 + \varepsilon`, :math:`\varepsilon \sim \mathcal N(0, \text{noise}^2)`
    (regression). One teacher :math:`T` serves every level, its block :math:`b` scaled by
    ``depth_gain`` :math:`^{b-1}`: exit :math:`k` (reading blocks :math:`\le k`) can answer
    every sample of difficulty :math:`\le k` with :math:`T` and loses the hard ones, whose
    deep blocks dominate the score.
    """

    dims: tuple[int, ...]
    n_classes: int | None
    teacher: np.ndarray
    noise: float
    deep_scale: float

    def block_mask(self, level: int) -> np.ndarray:
        """Boolean mask of the features a sample of difficulty ``level`` is labelled by."""
        return np.arange(self.dims[-1]) < self.dims[level - 1]

    def sample(
        self,
        n: int,
        rng: np.random.Generator,
        *,
        shift: ArrayLike | None = None,
        difficulty_probs: ArrayLike | None = None,
    ) -> Dataset:
        """Draw ``n`` samples; ``shift`` is the feature mean, ``difficulty_probs`` the mix."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise CISInputError("n", n, "must be a non-negative integer")
        d = self.dims[-1]
        k = len(self.dims)
        mean = np.zeros(d) if shift is None else as_float_array(shift, "shift", shape=(d,))
        probs = (
            np.full(k, 1.0 / k)
            if difficulty_probs is None
            else as_simplex(difficulty_probs, "difficulty_probs")
        )
        if probs.size != k:
            raise CISInputError("difficulty_probs", probs.tolist(), f"expected {k} levels")
        level = rng.choice(k, size=int(n), p=probs) + 1
        read = np.stack([self.block_mask(lev) for lev in range(1, k + 1)])[level - 1]
        noise = rng.standard_normal((int(n), d)) * np.where(read, 1.0, self.deep_scale)
        x = mean + noise
        scores = (x * read) @ self.teacher
        diff = torch.as_tensor(level, dtype=torch.int64)
        xt = torch.as_tensor(x, dtype=torch.float32)
        if self.n_classes is None:
            target = scores[:, 0] + self.noise * rng.standard_normal(int(n))
            return Dataset(xt, torch.as_tensor(target, dtype=torch.float32), diff)
        return Dataset(xt, torch.as_tensor(scores.argmax(axis=1), dtype=torch.int64), diff)


def synthetic_task(
    dims: Sequence[int],
    n_classes: int | None,
    *,
    rng: np.random.Generator,
    depth_gain: float = 2.0,
    deep_scale: float = 0.01,
    noise: float = 0.0,
) -> SyntheticTask:
    """Draw a teacher (see :class:`SyntheticTask`) for nested feature counts ``dims``."""
    d = tuple(int(v) for v in dims)
    if not d or d[0] < 1 or any(b <= a for a, b in itertools.pairwise(d)):
        raise CISInputError("dims", list(dims), "must be positive and strictly increasing")
    if n_classes is not None and (isinstance(n_classes, bool) or int(n_classes) < 2):
        raise CISInputError("n_classes", n_classes, "must be >= 2 or None")
    if not depth_gain > 0:
        raise CISInputError("depth_gain", depth_gain, "must be > 0")
    if not 0 <= deep_scale <= 1:
        raise CISInputError("deep_scale", deep_scale, "must lie in [0, 1]")
    if not noise >= 0:
        raise CISInputError("noise", noise, "must be >= 0")
    width = 1 if n_classes is None else int(n_classes)
    teacher = rng.standard_normal((d[-1], width)) / np.sqrt(d[0])
    for b, (lo, hi) in enumerate(itertools.pairwise((0, *d))):
        teacher[lo:hi] *= depth_gain**b
    return SyntheticTask(
        d, None if n_classes is None else int(n_classes), teacher, float(noise), float(deep_scale)
    )


def _sizes(samples: int | Sequence[int], n_nodes: int) -> list[int]:
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, int) or n_nodes < 1:
        raise CISInputError("n_nodes", n_nodes, "must be a positive integer")
    sizes = [samples] * n_nodes if isinstance(samples, int | np.integer) else list(samples)
    if len(sizes) != n_nodes:
        raise CISInputError("samples", samples, f"expected one size per node ({n_nodes})")
    for i, s in enumerate(sizes):
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1:
            raise CISInputError(f"samples[{i}]", s, "must be a positive integer")
    return [int(s) for s in sizes]


def _synthetic(
    n_classes: int | None,
    n_nodes: int,
    samples: int | Sequence[int],
    *,
    dims: Sequence[int],
    heterogeneity: float,
    difficulty_probs: ArrayLike | None,
    test_samples: int,
    noise: float,
    rng: np.random.Generator,
) -> tuple[NodeData, Dataset, SyntheticTask]:
    sizes = _sizes(samples, n_nodes)
    if not heterogeneity >= 0:
        raise CISInputError("heterogeneity", heterogeneity, "must be >= 0")
    task = synthetic_task(dims, n_classes, rng=rng, noise=noise)
    k = len(task.dims)
    if difficulty_probs is None:
        mix = np.full((n_nodes, k), 1.0 / k)
    else:
        mix = np.asarray(as_float_array(difficulty_probs, "difficulty_probs", nonneg=True))
        mix = np.broadcast_to(mix, (n_nodes, k)) if mix.shape == (k,) else mix
        if mix.shape != (n_nodes, k):
            raise CISInputError(
                "difficulty_probs", mix.tolist(), f"expected ({k},) or ({n_nodes}, {k})"
            )
    shifts = heterogeneity * rng.standard_normal((n_nodes, task.dims[-1]))
    nodes = [
        task.sample(m, rng, shift=shifts[i], difficulty_probs=mix[i]) for i, m in enumerate(sizes)
    ]
    test = task.sample(int(test_samples), rng)
    return nodes, test, task


def synthetic_classification(
    n_nodes: int,
    samples: int | Sequence[int],
    *,
    dims: Sequence[int] = (2, 4, 8),
    n_classes: int = 4,
    heterogeneity: float = 0.5,
    difficulty_probs: ArrayLike | None = None,
    test_samples: int = 1000,
    rng: np.random.Generator,
) -> tuple[NodeData, Dataset, SyntheticTask]:
    r"""Synthetic classification with a difficulty structure, split across nodes.

    Node :math:`i` draws its samples with feature mean :math:`s_i \sim \mathcal N(0,
    h^2 I)` (:math:`h` = ``heterogeneity``) and difficulty mix ``difficulty_probs`` (one
    row for all nodes or one per node); the test set is unshifted with a uniform mix.

    Returns
    -------
    nodes : list of Dataset
    test : Dataset
    task : SyntheticTask

    Examples
    --------
    >>> nodes, test, _ = synthetic_classification(3, 20, rng=np.random.default_rng(0))
    >>> [len(d) for d in nodes], int(test.difficulty.max())
    ([20, 20, 20], 3)
    """
    return _synthetic(
        n_classes,
        n_nodes,
        samples,
        dims=dims,
        heterogeneity=heterogeneity,
        difficulty_probs=difficulty_probs,
        test_samples=test_samples,
        noise=0.0,
        rng=rng,
    )


def synthetic_regression(
    n_nodes: int,
    samples: int | Sequence[int],
    *,
    dims: Sequence[int] = (2, 4, 8),
    heterogeneity: float = 0.5,
    difficulty_probs: ArrayLike | None = None,
    noise: float = 0.1,
    test_samples: int = 1000,
    rng: np.random.Generator,
) -> tuple[NodeData, Dataset, SyntheticTask]:
    """Synthetic least-squares task (scalar targets), as :func:`synthetic_classification`."""
    return _synthetic(
        None,
        n_nodes,
        samples,
        dims=dims,
        heterogeneity=heterogeneity,
        difficulty_probs=difficulty_probs,
        test_samples=test_samples,
        noise=noise,
        rng=rng,
    )


def digits(*, images: bool = False) -> Dataset:
    """The 1,797 8x8 handwritten digits shipped with scikit-learn (no download).

    Features are scaled to [0, 1]; ``images=True`` gives shape (n, 1, 8, 8) for a CNN,
    otherwise (n, 64).

    Raises
    ------
    ImportError
        scikit-learn is not installed (``pip install cistheory[digits]``).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "the digits dataset needs scikit-learn: pip install 'cistheory[digits]'"
        ) from exc
    bunch = load_digits()
    x = torch.as_tensor(np.asarray(bunch.data, dtype=np.float32) / 16.0)
    if images:
        x = x.reshape(-1, 1, 8, 8)
    return Dataset(x, torch.as_tensor(np.asarray(bunch.target, dtype=np.int64)))


# Per-channel mean and standard deviation of the CIFAR-10 training images (the usual
# normalisation constants; applied only with ``normalise=True``).
_CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
_CIFAR_STD = (0.2470, 0.2435, 0.2616)


def _unpickle(path: Path) -> dict[bytes, Any]:
    # The CIFAR archives are python pickles; only open files from a source you trust.
    with path.open("rb") as fh:
        doc = pickle.load(fh, encoding="bytes")
    if not isinstance(doc, dict):
        raise CISInputError("path", str(path), "not a CIFAR batch (expected a pickled dict)")
    return doc


def load_cifar(
    directory: str | Path,
    *,
    variant: str = "cifar10",
    train: bool = True,
    label: str = "fine",
    normalise: bool = True,
) -> Dataset:
    """Read CIFAR-10 or CIFAR-100 from a local directory in the python pickle format.

    CIFAR-10 reads ``data_batch_1`` .. ``data_batch_5`` (train) or ``test_batch``;
    CIFAR-100 reads ``train`` or ``test`` with ``fine_labels`` (``label="fine"``) or
    ``coarse_labels``. Images come out as float tensors of shape (n, 3, 32, 32) in [0, 1],
    standardised per channel when ``normalise``.

    Raises
    ------
    CISInputError
        A missing directory or file, or a file without the expected keys.
    """
    root = Path(directory)
    if not root.is_dir():
        raise CISInputError("directory", str(directory), "not a directory")
    if variant == "cifar10":
        names = [f"data_batch_{j}" for j in range(1, 6)] if train else ["test_batch"]
        key = b"labels"
    elif variant == "cifar100":
        names = ["train" if train else "test"]
        if label not in {"fine", "coarse"}:
            raise CISInputError("label", label, "must be 'fine' or 'coarse'")
        key = b"fine_labels" if label == "fine" else b"coarse_labels"
    else:
        raise CISInputError("variant", variant, "must be 'cifar10' or 'cifar100'")
    xs, ys = [], []
    for name in names:
        path = root / name
        if not path.is_file():
            raise CISInputError("directory", str(directory), f"missing CIFAR file {name!r}")
        doc = _unpickle(path)
        if b"data" not in doc or key not in doc:
            raise CISInputError(str(path), sorted(doc), f"expected keys b'data' and {key!r}")
        data = np.asarray(doc[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072:
            raise CISInputError(f"{path}.data", data.shape, "expected shape (n, 3072)")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(np.asarray(doc[key], dtype=np.int64))
    x = torch.as_tensor(np.concatenate(xs).astype(np.float32) / 255.0)
    if normalise:
        mean = torch.tensor(_CIFAR_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(_CIFAR_STD).view(1, 3, 1, 1)
        x = (x - mean) / std
    return Dataset(x, torch.as_tensor(np.concatenate(ys)))


def split_by_sizes(dataset: Dataset, sizes: Sequence[int], *, rng: np.random.Generator) -> NodeData:
    """Shuffle ``dataset`` and give node ``i`` the next ``sizes[i]`` samples."""
    s = [int(v) for v in sizes]
    if any(v < 0 for v in s):
        raise CISInputError("sizes", list(sizes), "must be non-negative")
    if sum(s) > len(dataset):
        raise CISInputError("sizes", list(sizes), f"total {sum(s)} exceeds {len(dataset)} samples")
    perm = rng.permutation(len(dataset))
    cuts = np.cumsum([0, *s])
    return [dataset.subset(np.sort(perm[a:b])) for a, b in itertools.pairwise(cuts)]


def split_for_cis(
    dataset: Dataset, cis: CIS, *, rng: np.random.Generator, total: int | None = None
) -> NodeData:
    r"""Split proportionally to the CIS's data sizes :math:`m_i` (the reference tier splits).

    Node :math:`i` gets :math:`\lfloor T m_i / \sum_j m_j \rfloor` samples, with
    :math:`T` = ``total`` (default: all of ``dataset``).

    Examples
    --------
    >>> from cistheory import reference_cis
    >>> ds = Dataset(torch.zeros(450, 1), torch.zeros(450, dtype=torch.int64))
    >>> [len(d) for d in split_for_cis(ds, reference_cis("80-15-5", "tiny"),
    ...                                rng=np.random.default_rng(0))]
    [345, 44, 44, 3, 3, 3, 3]
    """
    if not cis.data_given:
        raise CISInputError("spec.data", None, "the CIS gives no data sizes to split by")
    t = len(dataset) if total is None else int(total)
    if not 0 < t <= len(dataset):
        raise CISInputError("total", total, f"must lie in 1..{len(dataset)}")
    frac = cis.data / cis.data.sum()
    sizes = np.floor(t * frac + 1e-9).astype(np.int64)
    if (sizes == 0).any():
        i = int(np.argmax(sizes == 0))
        raise CISInputError(
            f"data[{cis.node_ids[i]}]", float(cis.data[i]), f"gets no samples out of {t}"
        )
    return split_by_sizes(dataset, sizes.tolist(), rng=rng)


def dirichlet_split(
    dataset: Dataset, n_nodes: int, alpha: float = 0.5, *, rng: np.random.Generator
) -> NodeData:
    """Split by a Dirichlet(``alpha``) law over labels (:func:`cistheory.dirichlet_label_split`)."""
    if dataset.y.dtype.is_floating_point:
        raise CISInputError("dataset.y", str(dataset.y.dtype), "a label split needs integer labels")
    parts = dirichlet_label_split(dataset.y.numpy(), n_nodes, alpha, rng=rng)
    return [dataset.subset(p) for p in parts]


def split_tiers_dirichlet(
    dataset: Dataset,
    cis: CIS,
    alpha: float = 0.5,
    *,
    rng: np.random.Generator,
    total: int | None = None,
) -> NodeData:
    r"""Tier sizes of the CIS, the end devices' share split by a Dirichlet law over labels.

    Every node gets :math:`\lfloor T m_i / \sum_j m_j \rfloor` samples by its spec size
    (:func:`split_for_cis`); the nodes that serve or forward requests of others (those with
    children) receive theirs uniformly at random, and the leaves pool their sizes and split
    the pool by :func:`dirichlet_split` (label proportions from
    :math:`\mathrm{Dir}(\alpha)`), so the end devices are non-i.i.d. and uneven, as in the
    reference release's 100-node files.

    Examples
    --------
    >>> from cistheory import reference_cis
    >>> ds = Dataset(torch.zeros(900, 1), torch.arange(900) % 10)
    >>> parts = split_tiers_dirichlet(ds, reference_cis("80-15-5", "equal"),
    ...                               rng=np.random.default_rng(0))
    >>> [len(d) for d in parts[:3]], sum(len(d) for d in parts[3:])
    ([300, 150, 150], 300)
    """
    if not cis.data_given:
        raise CISInputError("spec.data", None, "the CIS gives no data sizes to split by")
    t = len(dataset) if total is None else int(total)
    if not 0 < t <= len(dataset):
        raise CISInputError("total", total, f"must lie in 1..{len(dataset)}")
    sizes = np.floor(t * cis.data / cis.data.sum() + 1e-9).astype(np.int64)
    leaf = np.ones(cis.n_nodes, dtype=bool)
    leaf[cis.parent[cis.parent >= 0]] = False
    perm = rng.permutation(len(dataset))
    out: list[Dataset | None] = [None] * cis.n_nodes
    start = 0
    for i in np.flatnonzero(~leaf):
        out[i] = dataset.subset(np.sort(perm[start : start + sizes[i]]))
        start += int(sizes[i])
    pool = dataset.subset(np.sort(perm[start : start + int(sizes[leaf].sum())]))
    for i, part in zip(np.flatnonzero(leaf), dirichlet_split(pool, int(leaf.sum()), alpha,
                                                                rng=rng), strict=True):
        out[i] = part
    return [d for d in out if d is not None]


AUGMENTATIONS: tuple[str, ...] = ("none", "crop-flip")
"""Training-time augmentations: none, or the standard CIFAR random crop and flip."""


def crop_flip(x: torch.Tensor, u: torch.Tensor, pad: int = 4) -> torch.Tensor:
    r"""Random crop after zero padding and random horizontal flip, per image, on any device.

    For image :math:`n` with uniforms :math:`(u_0, u_1, u_2)`: pad by ``pad`` pixels with
    zeros (the mean colour of standardised data), crop at offsets
    :math:`(\lfloor (2p+1) u_0 \rfloor, \lfloor (2p+1) u_1 \rfloor)` and flip left-right
    when :math:`u_2 < 1/2`: the standard CIFAR augmentation, computed by indexing so that a
    whole minibatch (or a stack of them) is augmented at once where it lies.

    Parameters
    ----------
    x : Tensor (..., C, H, W)
    u : Tensor (..., 3)
        Uniforms in [0, 1), one triple per image (leading shapes equal to ``x``'s).
    pad : int

    Examples
    --------
    >>> x = torch.arange(4.0).view(1, 1, 2, 2)
    >>> crop_flip(x, torch.tensor([[0.5, 0.5, 0.9]]), pad=1)[0, 0].tolist()
    [[0.0, 1.0], [2.0, 3.0]]
    >>> crop_flip(x, torch.tensor([[0.5, 0.5, 0.1]]), pad=1)[0, 0].tolist()
    [[1.0, 0.0], [3.0, 2.0]]
    """
    lead = x.shape[:-3]
    c, h, w = x.shape[-3:]
    flat = x.reshape(-1, c, h, w)
    uu = u.reshape(-1, 3).to(device=x.device, dtype=torch.float64)
    n = flat.shape[0]
    span = 2 * pad + 1
    dy = torch.clamp((uu[:, 0] * span).to(torch.int64), max=span - 1)
    dx = torch.clamp((uu[:, 1] * span).to(torch.int64), max=span - 1)
    flip = uu[:, 2] < 0.5
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = dy[:, None] + ar_h[None, :]
    cols = dx[:, None] + torch.where(flip[:, None], (w - 1 - ar_w)[None, :], ar_w[None, :])
    padded = torch.nn.functional.pad(flat, (pad, pad, pad, pad)).permute(0, 2, 3, 1)
    idx = torch.arange(n, device=x.device)[:, None, None]
    out = padded[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    return out.reshape(*lead, c, h, w)


# Mean and standard deviation of the training images' pixels (the usual normalisation
# constants; applied only with ``normalise=True``).
_IDX_STATS = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}
_IDX_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (optionally gzip-compressed) as an array."""
    import gzip

    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise CISInputError(str(path), raw[:4].hex(), "not an IDX file of unsigned bytes")
    ndim = raw[3]
    head = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * j : 8 + 4 * j], "big") for j in range(ndim)]
    if len(raw) != head + int(np.prod(dims)):
        raise CISInputError(str(path), dims, f"expected {int(np.prod(dims))} bytes of data")
    return np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(dims)


def load_idx(
    directory: str | Path,
    *,
    variant: str = "mnist",
    train: bool = True,
    normalise: bool = True,
) -> Dataset:
    """Read MNIST or Fashion-MNIST from local IDX files (the format of their distributions).

    Reads ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (``train``) or the
    ``t10k-`` pair, each optionally gzip-compressed (``.gz``). Images come out as float
    tensors of shape (n, 1, 28, 28) in [0, 1], standardised when ``normalise``.

    Raises
    ------
    CISInputError
        A missing directory or file, a file that is not IDX, counts that disagree.
    """
    if variant not in _IDX_STATS:
        raise CISInputError("variant", variant, f"must be one of {sorted(_IDX_STATS)}")
    root = Path(directory)
    if not root.is_dir():
        raise CISInputError("directory", str(directory), "not a directory")
    arrays = []
    for name in _IDX_FILES[bool(train)]:
        path = root / name
        if not path.is_file():
            path = root / f"{name}.gz"
        if not path.is_file():
            raise CISInputError("directory", str(directory), f"missing IDX file {name!r}")
        arrays.append(_read_idx(path))
    images, labels = arrays
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise CISInputError(
            "directory", str(directory), f"images {images.shape} and labels {labels.shape}"
        )
    x = torch.as_tensor(images.astype(np.float32) / 255.0).unsqueeze(1)
    if normalise:
        mean, std = _IDX_STATS[variant]
        x = (x - mean) / std
    return Dataset(x, torch.as_tensor(labels.astype(np.int64)))
