"""The CIS model: routing, serving shares, dropped load, the reference configurations."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cistheory as ct
from cistheory.system.reference import reference_spec_dict, shipped_reference_file

# Closed-form rates are sums of a few decimals: a few ulps.
EXACT = dict(rtol=1e-12, atol=1e-12)


def test_reference_80_15_5_file_gives_lambda() -> None:
    from importlib import resources

    path = resources.files("cistheory") / "data" / "reference" / "3-layer-tree-80-15-5.json"
    cis = ct.load_spec(str(path))
    np.testing.assert_allclose(cis.lam, [0.8, 0.15, 0.05], **EXACT)
    np.testing.assert_allclose(cis.served, [0.5, 0.75, 0.75, 2, 2, 2, 2], **EXACT)
    assert cis.dropped == 0.0
    assert not cis.data_given


@pytest.mark.parametrize("split", ct.RATE_SPLITS)
def test_reference_spec_dict_is_the_shipped_file(split: str) -> None:
    assert json.loads(shipped_reference_file(split)) == reference_spec_dict(split)


@pytest.mark.parametrize("split", [s for s in ct.RATE_SPLITS if s != "33-33-33"])
def test_rate_split_names_are_served_percentages(split: str) -> None:
    a, b, c = (float(x) / 100 for x in split.split("-"))
    np.testing.assert_allclose(ct.reference_cis(split).lam, [a, b, c], **EXACT)


def test_33_names_equal_thirds() -> None:
    # leaf arrival 3, every leaf and middle forwards 2: 4 of 12 at each tier
    assert ct.reference_cis("33-33-33").lam.tolist() == [1 / 3, 1 / 3, 1 / 3]


@pytest.mark.parametrize("n_nodes,shape", [(7, (1, 2, 4)), (17, (1, 4, 12)), (100, (1, 9, 90))])
def test_generated_trees(n_nodes: int, shape: tuple[int, int, int]) -> None:
    cis = ct.reference_cis("60-30-10", "2x", n_nodes=n_nodes)
    assert cis.n_nodes == n_nodes
    counts = np.bincount(cis.capacity, minlength=4)[1:]
    assert tuple(counts[::-1]) == shape
    np.testing.assert_allclose(cis.lam, [0.6, 0.3, 0.1], **EXACT)
    assert cis.data_given and cis.data.sum() <= 45000


def test_data_splits_of_7_node_tree() -> None:
    for name, (r, m, leaf) in ct.DATA_SPLITS.items():
        cis = ct.reference_cis("80-15-5", name)
        assert cis.data.tolist() == [r, m, m, leaf, leaf, leaf, leaf]


def test_capacity_mode_and_dropped_load() -> None:
    # chain root <- mid <- leaf, leaf gets 5, capacities 1, 1, 2 -> root drops 1
    cis = ct.CIS.build(parent=[-1, 0, 1], capacity=[3, 2, 1], arrival=[0, 0, 5], service=[1, 1, 2])
    np.testing.assert_allclose(cis.served, [1, 1, 2])
    np.testing.assert_allclose(cis.serving.forwarded, [1, 2, 3])
    assert cis.dropped == pytest.approx(1.0)
    np.testing.assert_allclose(cis.lam, [0.5, 0.25, 0.25])


def test_capacity_mode_unlimited_root() -> None:
    cis = ct.CIS.build(
        parent=[-1, 0, 0], capacity=[2, 1, 1], arrival=[0, 3, 1], service=[np.inf, 1, 1]
    )
    np.testing.assert_allclose(cis.served, [2, 1, 1])
    assert cis.dropped == 0.0


def test_node_depths_deep_chain_no_recursion() -> None:
    n = 200_000
    parent = np.arange(-1, n - 1)
    assert ct.node_depths(parent)[-1] == n - 1


def test_eligible_mask() -> None:
    cis = ct.reference_cis()
    assert cis.eligible.sum() == 3 + 2 * 2 + 4
    assert not cis.eligible[3, 1]


def test_spec_roundtrip_project_format(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cis = ct.reference_cis("45-35-20", "tiny")
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(ct.cis_to_spec(cis)))
    back = ct.load_spec(str(path))
    np.testing.assert_array_equal(back.parent, cis.parent)
    np.testing.assert_allclose(back.lam, cis.lam, **EXACT)
    np.testing.assert_array_equal(back.data, cis.data)
    assert back.exit_flops is not None


def test_toml_spec_with_capacities(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = """
name = "toml-cis"
[[nodes]]
id = "cloud"
exits = 2
arrival = 0.0
capacity = "inf"
data = 100
[[nodes]]
id = "phone"
parent = "cloud"
exits = 1
arrival = 4.0
capacity = 3.0
data = 10
"""
    path = tmp_path / "cis.toml"
    path.write_text(text)
    cis = ct.load_spec(str(path))
    np.testing.assert_allclose(cis.lam, [0.75, 0.25])
    assert cis.node_ids == ("cloud", "phone")


def test_resnet_exit_flops_increase_to_one() -> None:
    r = ct.resnet18_exit_flops((3, 9, 17))
    assert np.all(np.diff(r) > 0) and r[-1] == 1.0


def test_dirichlet_split_partitions_indices() -> None:
    labels = np.repeat(np.arange(10), 50)
    parts = ct.dirichlet_label_split(labels, 7, 0.5, rng=np.random.default_rng(3))
    allidx = np.sort(np.concatenate(parts))
    np.testing.assert_array_equal(allidx, np.arange(labels.size))
    again = ct.dirichlet_label_split(labels, 7, 0.5, rng=np.random.default_rng(3))
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
