"""CPU float32 results are bitwise what they were before devices and precisions existed.

``tests/data/train_golden.json`` was recorded by ``tests/golden_train.py`` from the trainer as
it stood before the device, precision and many-runs changes (plain loop and vmapped clients,
a batch-norm ResNet, a configuration run end to end). The same cases run here on CPU in
float32 with one torch thread and must give the same bytes.

The bytes depend on which CPU kernels torch dispatches to (its CPU capability, e.g. AVX2 or
AVX512, picks differently vectorised reductions). On a machine whose capability differs from
the recorded one the comparison is of the float64 sums instead, to a relative 1e-4: a few
float32 ulps per operation, accumulated over the few rounds of these cases, are far below it,
and any change of the algorithm (a different pick, minibatch or weight) moves the sums by
orders of magnitude more.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from tests import golden_train

GOLDEN = json.loads(golden_train.GOLDEN.read_text(encoding="utf-8"))
SAME_KERNELS = golden_train.cpu_capability() == GOLDEN["cpu_capability"]


def _compare(got: Any, want: Any, where: str) -> None:
    if isinstance(want, dict) and "sha256" in want:
        assert got["shape"] == want["shape"] and got["dtype"] == want["dtype"], where
        if SAME_KERNELS:
            assert got["sha256"] == want["sha256"], f"{where}: bytes changed"
        else:
            assert math.isclose(got["sum"], want["sum"], rel_tol=1e-4, abs_tol=1e-6), where
    elif isinstance(want, dict):
        assert set(got) == set(want), where
        for key in want:
            _compare(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for j, (g, w) in enumerate(zip(got, want, strict=True)):
            _compare(g, w, f"{where}[{j}]")
    elif isinstance(want, float) and not SAME_KERNELS:
        assert math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-6), where
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


@pytest.mark.parametrize("case", sorted(golden_train.CASES))
def test_cpu_fp32_results_are_bitwise_unchanged(case: str) -> None:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        got = golden_train.CASES[case]()
    finally:
        torch.set_num_threads(threads)
    _compare(json.loads(json.dumps(got)), GOLDEN["cases"][case], case)


def test_figure_records_are_unchanged_by_the_many_runs_engine() -> None:
    """The tiny accuracy and p40 figures, now trained many runs at once, give the records
    recorded from the one-by-one trainings before the engine existed."""
    got = json.loads(json.dumps(golden_train.figure_runs()))
    _compare(got, GOLDEN["figures"], "figures")


def test_engines_write_the_same_records(tmp_path: Any) -> None:
    from figures import accuracy
    from figures._experiment import RunSpec, run_grid

    cfg = accuracy.CONFIG["tiny"]
    specs = [RunSpec(split, "tiny", rule, 2, setting=cfg["setting"])
             for split in cfg["splits"] for rule in cfg["rules"]]
    single = run_grid(specs, tmp_path / "single", engine="single")
    batched = run_grid(specs, tmp_path / "batched", engine="batched")
    assert single == batched
