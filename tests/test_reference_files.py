"""The shipped reference files are the reference release's, and give its published shares."""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import pytest

import cistheory as ct
from cistheory.cli import main
from tests.reference_values import (
    PUBLISHED_SHARES,
    RELEASE_5_15_80_COMMENTS,
    RELEASE_7_NODE_SHA256,
    RELEASE_17_NODE_SHA256,
    RELEASE_100_NODE_SHA256,
)

DATA = resources.files("cistheory") / "data" / "reference"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _path(name: str) -> str:
    return str(DATA / name)


@pytest.mark.parametrize("split", sorted(set(RELEASE_7_NODE_SHA256) - {"5-15-80"}))
def test_seven_node_files_are_the_release_bytes(split: str) -> None:
    data = (DATA / f"3-layer-tree-{split}.json").read_bytes()
    assert _sha(data) == RELEASE_7_NODE_SHA256[split]


def test_5_15_80_is_the_release_file_without_its_comments() -> None:
    """Putting the release's four '#' comments back gives the release's bytes exactly."""
    lines = (DATA / "3-layer-tree-5-15-80.json").read_text(encoding="utf-8").split("\n")
    assert not any("#" in line for line in lines)
    for number, comment in RELEASE_5_15_80_COMMENTS:
        lines[number - 1] += comment
    restored = "\n".join(lines).encode("utf-8")
    assert _sha(restored) == RELEASE_7_NODE_SHA256["5-15-80"]


def test_the_seven_rate_splits_are_shipped() -> None:
    assert set(RELEASE_7_NODE_SHA256) == set(ct.RATE_SPLITS) == set(PUBLISHED_SHARES)


@pytest.mark.parametrize("split", ct.RATE_SPLITS)
def test_file_gives_its_published_shares_exactly(split: str) -> None:
    cis = ct.load_spec(_path(f"3-layer-tree-{split}.json"))
    assert cis.lam.tolist() == list(PUBLISHED_SHARES[split])  # exact: sums of halves
    assert cis.dropped == 0.0 and not cis.data_given


@pytest.mark.parametrize("split", ct.RATE_SPLITS)
def test_built_in_name_is_the_file(split: str) -> None:
    """``reference:SPLIT`` builds the file's tree number for number (exact rationals)."""
    shipped = ct.load_spec(_path(f"3-layer-tree-{split}.json"))
    built = ct.reference_cis(split, None)
    for field in ("parent", "capacity", "arrival", "forward"):
        assert np.array_equal(getattr(built, field), getattr(shipped, field)), field
    assert built.lam.tolist() == list(PUBLISHED_SHARES[split])


def test_33_33_33_forwards_2_as_the_release() -> None:
    cis = ct.load_spec(_path("3-layer-tree-33-33-33.json"))
    assert cis.forward is not None and cis.forward.tolist() == [0, 2, 2, 2, 2, 2, 2]
    assert cis.lam.tolist() == [1 / 3, 1 / 3, 1 / 3]


@pytest.mark.parametrize("split", sorted(RELEASE_17_NODE_SHA256))
def test_17_node_files(split: str) -> None:
    name = f"17-node/3-layer-tree-{split}-17_clients.json"
    assert _sha((DATA / name).read_bytes()) == RELEASE_17_NODE_SHA256[split]
    shipped = ct.load_spec(_path(name))
    built = ct.reference_cis(split, None, n_nodes=17)
    for field in ("parent", "capacity", "arrival", "forward"):
        assert np.array_equal(getattr(built, field), getattr(shipped, field)), field


# The release computed its 100-node rates in floating point (1/9 times a share), the generator
# rounds the exact rational once: the two differ by at most one rounding of numbers below 1.
ULP_100 = 2.3e-16


@pytest.mark.parametrize("split", sorted(RELEASE_100_NODE_SHA256))
def test_100_node_files(split: str) -> None:
    name = f"100-node/3-layer-tree-{split}.json"
    assert _sha((DATA / name).read_bytes()) == RELEASE_100_NODE_SHA256[split]
    shipped = ct.load_spec(_path(name))
    # the release generated its 100-node "33-33-33" file as 34-33-33 (specs/README.MD there)
    built = ct.reference_cis("34-33-33" if split == "33-33-33" else split, None, n_nodes=100)
    assert np.array_equal(built.parent, shipped.parent)
    assert np.array_equal(built.capacity, shipped.capacity)
    assert shipped.forward is not None and built.forward is not None
    assert np.abs(built.arrival - shipped.arrival).max() <= ULP_100
    assert np.abs(built.forward - shipped.forward).max() <= ULP_100
    assert np.abs(built.lam - shipped.lam).max() <= 4 * ULP_100


@pytest.mark.parametrize(
    "split,total",
    [("80-15-6", "101"), ("50-50-50", "150"), ("1-1-1", "3"), ("0-0-0", "0"), ("34-33-32", "99")],
)
def test_split_not_summing_to_100_is_refused(
    split: str, total: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rates", f"reference:{split}", "--json"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == (
        f"error: split = '{split}': A + B + C must be 100 (it is {total}); "
        "'33-33-33' names equal thirds\n"
    )
