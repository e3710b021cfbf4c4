"""Offline datasets and splits: synthetic difficulty structure, digits, CIFAR pickles."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from cistheory import reference_cis
from cistheory.errors import CISInputError
from cistheory.train.data import (
    Dataset,
    digits,
    dirichlet_split,
    load_cifar,
    split_by_sizes,
    split_for_cis,
    synthetic_classification,
    synthetic_regression,
)


def test_difficulty_structure() -> None:
    """Exit k's features answer every sample of difficulty <= k exactly or nearly; not deeper."""
    rng = np.random.default_rng(0)
    nodes, test, task = synthetic_classification(
        2, 400, dims=(2, 4, 8), n_classes=4, heterogeneity=0.0, test_samples=3000, rng=rng
    )
    x, y, lev = test.x.double().numpy(), test.y.numpy(), test.difficulty.numpy()
    acc = np.zeros((3, 3))  # acc[k-1, l-1]: teacher cut to exit k's features, on level l
    for k, d in enumerate((2, 4, 8)):
        pred = (x[:, :d] @ task.teacher[:d]).argmax(axis=1)
        acc[k] = [float((pred[lev == lv] == y[lev == lv]).mean()) for lv in (1, 2, 3)]
    # the level-k samples are labelled by exactly exit k's features
    np.testing.assert_array_equal(np.diag(acc), [1.0, 1.0, 1.0])
    # shallower features lose the hard samples (chance is 1/4)
    assert acc[0, 1] < 0.5 and acc[0, 2] < 0.5 and acc[1, 2] < 0.5
    # deeper features still answer easy samples (deep blocks there have scale 0.01)
    assert acc[1, 0] > 0.9 and acc[2, 0] > 0.9 and acc[2, 1] > 0.9
    # every level present, in roughly equal shares (uniform mix: 1/3 each, n = 3000;
    # binomial standard error 0.0086, five of them)
    shares = np.bincount(lev, minlength=4)[1:] / lev.size
    np.testing.assert_allclose(shares, [1 / 3] * 3, atol=0.043)
    assert all(len(d) == 400 for d in nodes)


def test_heterogeneity_and_difficulty_mix() -> None:
    rng = np.random.default_rng(1)
    probs = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    nodes, _, _ = synthetic_classification(
        2, 2000, heterogeneity=2.0, difficulty_probs=probs, test_samples=0, rng=rng
    )
    assert set(nodes[0].difficulty.tolist()) == {1}
    assert set(nodes[1].difficulty.tolist()) == {3}
    means = [d.x.mean(dim=0) for d in nodes]
    # shifts ~ N(0, 4 I) in 8 dimensions differ by far more than the sampling error
    # (standard error of a mean 1/sqrt(2000) = 0.022 per coordinate)
    assert float((means[0] - means[1]).norm()) > 1.0
    flat, _, _ = synthetic_classification(2, 2000, heterogeneity=0.0, test_samples=0, rng=rng)
    # unshifted: means within 5 standard errors (0.11) of 0 per coordinate
    assert all(float(d.x.mean(dim=0).abs().max()) < 0.11 for d in flat)


def test_regression_noise_level() -> None:
    rng = np.random.default_rng(2)
    nodes, _, task = synthetic_regression(
        1, 5000, dims=(3, 6), noise=0.5, heterogeneity=0.0, test_samples=0, rng=rng
    )
    d = nodes[0]
    x, y, lev = d.x.double().numpy(), d.y.double().numpy(), d.difficulty.numpy()
    pred = np.where(lev == 1, x[:, :3] @ task.teacher[:3, 0], x @ task.teacher[:, 0])
    # residual std estimates noise = 0.5; its standard error is 0.5 / sqrt(2 * 5000) = 0.005
    # (float32 storage of y adds ~1e-7)
    assert abs(float(np.std(y - pred)) - 0.5) < 0.025


def test_digits_optional_extra() -> None:
    pytest.importorskip("sklearn")
    d = digits()
    assert tuple(d.x.shape) == (1797, 64) and d.y.dtype == torch.int64
    assert float(d.x.min()) == 0.0 and float(d.x.max()) == 1.0
    assert set(d.y.tolist()) == set(range(10))
    img = digits(images=True)
    assert tuple(img.x.shape) == (1797, 1, 8, 8)
    assert torch.equal(img.x.reshape(1797, 64), d.x)


def _write_pickle(path: Path, doc: dict[bytes, object]) -> None:
    with path.open("wb") as fh:
        pickle.dump(doc, fh)


def test_cifar10_pickle_format(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    batches = []
    for j in range(1, 6):
        data = rng.integers(0, 256, size=(2, 3072), dtype=np.uint8)
        labels = [j % 10, (j + 1) % 10]
        batches.append((data, labels))
        _write_pickle(tmp_path / f"data_batch_{j}", {b"data": data, b"labels": labels})
    _write_pickle(
        tmp_path / "test_batch",
        {b"data": rng.integers(0, 256, size=(3, 3072), dtype=np.uint8), b"labels": [0, 1, 2]},
    )
    train = load_cifar(tmp_path, normalise=False)
    assert tuple(train.x.shape) == (10, 3, 32, 32)
    assert train.y.tolist() == [lab for _, labs in batches for lab in labs]
    # layout: 1024 red, 1024 green, 1024 blue values, each row-major 32 x 32
    raw = batches[1][0][1]
    for c, i, j in ((0, 0, 0), (1, 5, 7), (2, 31, 31)):
        assert float(train.x[3, c, i, j]) == pytest.approx(raw[c * 1024 + i * 32 + j] / 255.0)
    test = load_cifar(tmp_path, train=False)
    assert len(test) == 3
    # standardised: channel 0 value v maps to (v - 0.4914) / 0.2470
    plain = load_cifar(tmp_path, train=False, normalise=False)
    expect = (plain.x[:, 0] - 0.4914) / 0.2470
    torch.testing.assert_close(test.x[:, 0], expect)
    (tmp_path / "data_batch_4").unlink()
    with pytest.raises(CISInputError, match="data_batch_4"):
        load_cifar(tmp_path)


def test_cifar100_pickle_format(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    for name, n in (("train", 4), ("test", 2)):
        _write_pickle(
            tmp_path / name,
            {
                b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
                b"fine_labels": list(range(90, 90 + n)),
                b"coarse_labels": list(range(n)),
            },
        )
    assert load_cifar(tmp_path, variant="cifar100").y.tolist() == [90, 91, 92, 93]
    assert load_cifar(tmp_path, variant="cifar100", label="coarse").y.tolist() == [0, 1, 2, 3]
    assert len(load_cifar(tmp_path, variant="cifar100", train=False)) == 2
    with pytest.raises(CISInputError, match="variant"):
        load_cifar(tmp_path, variant="cifar1000")
    with pytest.raises(CISInputError, match="directory"):
        load_cifar(tmp_path / "missing")


def _pool(n: int, classes: int = 10) -> Dataset:
    return Dataset(torch.arange(n, dtype=torch.float32)[:, None], torch.arange(n) % classes)


def test_splits_partition_the_samples() -> None:
    pool = _pool(450)
    nodes = split_for_cis(pool, reference_cis("80-15-5", "2x"), rng=np.random.default_rng(0))
    # 2x split: 25,714 / 6,428 / 1,607 of 45,000 -> floor(450 * share)
    assert [len(d) for d in nodes] == [257, 64, 64, 16, 16, 16, 16]
    seen = torch.cat([d.x[:, 0] for d in nodes])
    assert seen.unique().numel() == seen.numel()  # disjoint
    by_size = split_by_sizes(pool, [100, 350], rng=np.random.default_rng(1))
    assert sorted(torch.cat([d.x[:, 0] for d in by_size]).tolist()) == list(range(450))
    with pytest.raises(CISInputError, match="sizes"):
        split_by_sizes(pool, [400, 100], rng=np.random.default_rng(1))


def test_dirichlet_split_covers_every_sample_once() -> None:
    pool = _pool(1000)
    nodes = dirichlet_split(pool, 20, 0.5, rng=np.random.default_rng(2))
    assert len(nodes) == 20
    assert sorted(torch.cat([d.x[:, 0] for d in nodes]).tolist()) == list(range(1000))
    # small alpha: label mixes are uneven (some node misses some label)
    assert any(len(set(d.y.tolist())) < 10 for d in nodes)
    with pytest.raises(CISInputError, match="integer labels"):
        dirichlet_split(Dataset(torch.zeros(3, 1), torch.zeros(3)), 2, rng=np.random.default_rng(0))


def test_dataset_validation() -> None:
    with pytest.raises(CISInputError, match="y"):
        Dataset(torch.zeros(3, 2), torch.zeros(2))
    with pytest.raises(CISInputError, match="samples"):
        synthetic_classification(2, [10], rng=np.random.default_rng(0))
    with pytest.raises(CISInputError, match="dims"):
        synthetic_classification(2, 10, dims=(4, 2), rng=np.random.default_rng(0))
