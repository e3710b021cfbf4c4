"""Configuration features of the paper's experiments: IDX datasets, the tier-Dirichlet split,
multi-step schedules, nodes per round, serving scores, per-node metrics, ordered dropout."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import cistheory as ct
from cistheory.errors import CISInputError
from cistheory.train.config import build_experiment, config_digest, parse_config
from cistheory.train.data import Dataset, load_idx, split_tiers_dirichlet
from cistheory.train.ordered_dropout import OrderedDropoutCNN
from cistheory.train.run import run_training


def _idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    """An IDX file of unsigned bytes: magic 0x0000 08 ndim, big-endian sizes, the bytes."""
    head = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    raw = head + array.astype(np.uint8).tobytes()
    if compress:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


def write_mnist(directory: Path, n_train: int = 60, n_test: int = 20) -> None:
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    _idx(directory / "train-images-idx3-ubyte", rng.integers(0, 256, (n_train, 28, 28)))
    _idx(directory / "train-labels-idx1-ubyte", rng.integers(0, 10, n_train))
    _idx(directory / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28)), True)
    _idx(directory / "t10k-labels-idx1-ubyte", rng.integers(0, 10, n_test), True)


def test_idx_files_read_as_written(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    raw = np.frombuffer((tmp_path / "train-images-idx3-ubyte").read_bytes()[16:], np.uint8)
    plain = load_idx(tmp_path, normalise=False)
    assert tuple(plain.x.shape) == (60, 1, 28, 28)
    assert float(plain.x[3, 0, 5, 7]) == pytest.approx(raw[3 * 784 + 5 * 28 + 7] / 255.0)
    test = load_idx(tmp_path, train=False, variant="fashion-mnist")  # from the .gz files
    assert len(test) == 20 and test.y.dtype == torch.int64
    plain_test = load_idx(tmp_path, train=False, normalise=False)
    torch.testing.assert_close(test.x, (plain_test.x - 0.2860) / 0.3530)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05ab")
    with pytest.raises(CISInputError, match="bytes of data"):
        load_idx(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x00")
    with pytest.raises(CISInputError, match="not an IDX file"):
        load_idx(tmp_path)
    with pytest.raises(CISInputError, match="variant"):
        load_idx(tmp_path, variant="emnist")


def test_tier_sizes_with_a_dirichlet_split_of_the_end_devices() -> None:
    cis = ct.reference_cis("80-15-5", "equal", n_nodes=100)
    ds = Dataset(torch.arange(4500.0).view(-1, 1), torch.arange(4500) % 10)
    parts = split_tiers_dirichlet(ds, cis, 0.5, rng=np.random.default_rng(0), total=4500)
    seen = torch.cat([p.x[:, 0] for p in parts])
    assert seen.numel() == seen.unique().numel()  # no sample twice
    sizes = np.array([len(p) for p in parts])
    expect = np.floor(4500 * cis.data / cis.data.sum() + 1e-9)
    np.testing.assert_array_equal(sizes[:10], expect[:10])  # root and middles: their sizes
    assert sizes[10:].sum() == expect[10:].sum()  # the leaves share theirs
    assert sizes[10:].std() > 0  # unevenly (Dirichlet)


CONFIG = {
    "spec": "reference:80-15-5",
    "model": {"name": "mlp", "hidden": [8, 8, 8]},
    "data": {"name": "synthetic", "samples": 350, "test_samples": 100},
    "train": {"rounds": 3, "tau": 2, "lr": 0.2, "batch_size": 8, "eval_every": 0},
}


def test_old_configurations_keep_their_digest() -> None:
    """New fields enter the normalised configuration only when given: a checkpoint written
    before them still resumes (digest recorded from the code before these fields)."""
    doc = {
        "spec": "reference:80-15-5",
        "model": {"name": "mlp"},
        "data": {"name": "synthetic", "samples": 350},
        "participation": {"policy": "p40"},
        "rule": {"name": "balanced-adj", "sigma": [0.00374, 0.00224, 0.00101]},
        "train": {"rounds": 6, "tau": 2, "lr": 0.3, "schedule": "cosine", "final_lr": 0.03,
                  "batch_size": 8},
    }
    assert config_digest(parse_config(doc)) == (
        "1bbe2fdc1a72c8c4130c5678992e18ab8d17da21e3fd71552112f8a8e4dd6ddd"
    )


def test_results_carry_per_node_and_per_exit_metrics(tmp_path: Path) -> None:
    cfg = parse_config({**CONFIG, "serving": {"score": "max-softmax"}})
    res = run_training(cfg, tmp_path)
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["serving_score"] == "max-softmax" and doc["device"] == "cpu"
    nodes, exits = doc["per_node"], doc["per_exit"]
    assert [n["node"] for n in nodes] == [str(i) for i in range(7)]
    assert sum(n["served"] for n in nodes) == 100 - doc["dropped_requests"]
    assert [e["served"] for e in exits] == [
        sum(n["served"] for n in nodes if n["exit"] == k) for k in (1, 2, 3)
    ]
    correct = sum(n["accuracy"] * n["served"] for n in nodes if n["served"])
    assert correct / sum(n["served"] for n in nodes) == pytest.approx(res["system_accuracy"])
    for e in exits:
        members = [n for n in nodes if n["exit"] == e["exit"] and n["served"]]
        loss = sum(n["loss"] * n["served"] for n in members) / e["served"]
        assert e["loss"] == pytest.approx(loss, rel=1e-12)  # float64 sums in another order
    entropy = run_training(parse_config(CONFIG), tmp_path / "entropy")
    assert entropy["serving_score"] == "entropy"


def test_multistep_schedule_and_nodes_per_round_from_a_config(tmp_path: Path) -> None:
    cfg = parse_config({
        **CONFIG,
        "participation": {"policy": "deepest", "nodes_per_round": 3},
        "train": {**CONFIG["train"], "rounds": 4, "schedule": "multistep", "milestones": [2, 3],
                  "lr_factor": 0.5},
    })
    exp = build_experiment(cfg)
    np.testing.assert_allclose(exp.participation.q.sum(axis=1), np.full(7, 3 / 7))
    res = run_training(cfg, tmp_path)
    assert [r["lr"] for r in res["history"]] == [0.2, 0.2, 0.1, 0.05]
    assert all(sum(p > 0 for p in r["picks"]) <= 3 for r in res["history"])
    for bad, field in (
        ({"participation": {"nodes_per_round": 0}}, "participation.nodes_per_round"),
        ({"train": {"schedule": "multistep"}}, "milestones"),
        ({"model": {"name": "mlp", "family": "ordered-dropout"}}, "model.family"),
        ({"model": {"name": "cnn", "widths": [0.5, 1.0]}}, "model.widths"),
        ({"data": {"name": "synthetic", "augment": "mixup"}}, "data.augment"),
        ({"serving": {"score": "margin"}}, "serving.score"),
        ({"train": {"precision": "fp16"}}, "precision"),
    ):
        with pytest.raises(CISInputError, match=field):
            parse_config({"spec": "reference:80-15-5", **bad})


def test_ordered_dropout_and_mnist_from_a_config(tmp_path: Path) -> None:
    write_mnist(tmp_path / "mnist", n_train=140)
    cfg = parse_config({
        "spec": "reference:80-15-5:equal",
        "model": {"name": "cnn", "family": "ordered-dropout", "channels": [4, 4, 8]},
        "data": {"name": "mnist", "path": str(tmp_path / "mnist"), "samples": 140,
                 "augment": "crop-flip"},
        "train": {"rounds": 2, "tau": 1, "batch_size": 4, "eval_every": 0},
    })
    exp = build_experiment(cfg)
    assert isinstance(exp.model, OrderedDropoutCNN) and exp.model.widths == (0.25, 0.5, 1.0)
    assert [len(d) for d in exp.node_data] == [46, 23, 23, 11, 11, 11, 11]
    res = run_training(cfg, tmp_path / "out")
    assert res["complete"] and len(res["test_accuracy"]) == 3
