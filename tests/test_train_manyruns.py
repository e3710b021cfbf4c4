"""Many runs at once give every run its single-run result (bitwise on the CPU)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from cistheory.errors import CISInputError
from cistheory.train.data import Dataset, synthetic_classification
from cistheory.train.fedloop import FedConfig, StepSchedule, run_federated
from cistheory.train.manyruns import Run, run_many
from cistheory.train.models import EarlyExitCNN, EarlyExitMLP, EarlyExitResNet18, NestedLinear
from cistheory.train.ordered_dropout import OrderedDropoutCNN


def _nodes(images: bool, n: int = 6) -> list[Dataset]:
    rng = np.random.default_rng(11)
    nodes, _, _ = synthetic_classification(n, [5 + 2 * i for i in range(n)], rng=rng)
    if images:
        nodes = [Dataset(d.x.reshape(-1, 1, 2, 4).repeat(1, 1, 4, 2), d.y) for d in nodes]
    return nodes


def _runs(n: int, batch_size: int | None) -> list[Run]:
    """Runs that differ in every per-run field: seeds, q, lt, aggregation."""
    rng = np.random.default_rng(3)
    out = []
    for r in range(4):
        q = rng.uniform(0.25, 0.33, size=(n, 3))
        q[r % n] = [0.0, 0.0, 1.0]
        cfg = FedConfig(
            rounds=3,
            tau=tuple(1 + i % 3 for i in range(n)),
            lr=StepSchedule("cosine", lr=0.02, final=0.002),
            batch_size=batch_size,
            momentum=0.5,
            weight_decay=1e-2,
            aggregation="multiplicative" if r == 3 else "unbiased",
            selection_seed=10 + r,
            batch_seed=20 + (r % 2),
            init_seed=30 + (r // 2),
            vectorised=True,
        )
        out.append(Run(q, rng.dirichlet(np.ones(3)), cfg))
    return out


MODELS: dict[str, tuple[Callable[[], torch.nn.Module], bool]] = {
    "linear": (lambda: NestedLinear(8, (2, 4, 8), 4), False),
    "mlp": (lambda: EarlyExitMLP(8, (8, 8, 8), 4), False),
    "cnn": (lambda: EarlyExitCNN(1, (3, 4, 5), 4), True),
    "resnet-batch": (lambda: EarlyExitResNet18((3, 9, 17), 4, in_channels=1, width=2), True),
    "od-cnn": (lambda: OrderedDropoutCNN(1, (4, 4, 8), 4, widths=(0.25, 0.5, 1.0)), True),
}


BITWISE = {"linear", "mlp"}


@pytest.mark.parametrize("batch_size", [4, None])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_r_runs_at_once_equal_r_single_runs(name: str, batch_size: int | None) -> None:
    """Same picks and weights; bitwise the same parameters and buffers on the CPU in float32
    for linear layers (the MLP and the nested linear model), float32 rounding for
    convolutions."""
    make, images = MODELS[name]
    nodes = _nodes(images)
    runs = _runs(len(nodes), batch_size)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        together = run_many(make(), nodes, runs)  # type: ignore[arg-type]
        alone = [run_federated(make(), nodes, r.q, r.lt, r.config) for r in runs]  # type: ignore[arg-type]
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(together, alone, strict=True):
        assert [r.picks for r in a.history] == [r.picks for r in b.history]
        assert [r.lt for r in a.history] == [r.lt for r in b.history]
        assert set(a.state_dict) == set(b.state_dict)
        for key in b.state_dict:
            if name in BITWISE:
                assert torch.equal(a.state_dict[key], b.state_dict[key]), key
            else:
                # vmap turns a convolution over P pairs into one grouped convolution of P
                # groups, whose kernels depend on P: a few float32 ulps per operation,
                # accumulated over 3 rounds of a few steps (measured: at most 4e-6 on values
                # of order one, the running variances of the deepest batch norms).
                torch.testing.assert_close(
                    a.state_dict[key], b.state_dict[key], rtol=1e-5, atol=1e-5
                )


def test_runs_share_the_local_optimiser() -> None:
    nodes = _nodes(False, 3)
    base = FedConfig(rounds=1, batch_size=2)
    runs = [Run(np.full((3, 3), 0.3), [0.3, 0.3, 0.4], base)] * 2
    other = Run(np.full((3, 3), 0.3), [0.3, 0.3, 0.4], FedConfig(rounds=1, batch_size=2, lr=0.2))
    with pytest.raises(CISInputError, match=r"runs\[2\]\.config\.lr"):
        run_many(NestedLinear(8, (2, 4, 8), 4), nodes, [*runs, other])
    with pytest.raises(CISInputError, match="runs"):
        run_many(NestedLinear(8, (2, 4, 8), 4), nodes, [])
    with pytest.raises(CISInputError, match=r"runs\[0\]\.q"):
        run_many(NestedLinear(8, (2, 4, 8), 4), nodes, [Run(np.ones((3, 3)), [1, 0, 0], base)])


def test_evaluation_and_model_untouched() -> None:
    """Per-round objectives are those of each run's model; the template is not modified."""
    nodes = _nodes(False, 4)
    model = EarlyExitMLP(8, (8, 8, 8), 4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = FedConfig(rounds=2, batch_size=3, eval_every=1, vectorised=True, init_seed=1)
    q = np.full((4, 3), 0.3)
    lts = ([0.2, 0.3, 0.5], [0.6, 0.2, 0.2])
    together = run_many(model, nodes, [Run(q, lt, cfg) for lt in lts])
    for res, lt in zip(together, lts, strict=True):
        alone = run_federated(EarlyExitMLP(8, (8, 8, 8), 4), nodes, q, lt, cfg)
        assert [r.objectives for r in res.history] == [r.objectives for r in alone.history]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
