"""Ordered dropout: each part is the nested leading slice, and training width p_k moves only it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cistheory.errors import CISInputError
from cistheory.train.data import Dataset
from cistheory.train.fedloop import FedConfig, run_federated
from cistheory.train.models import EarlyExitModel
from cistheory.train.ordered_dropout import (
    OrderedDropoutCNN,
    OrderedDropoutResNet18,
    check_widths,
    width_channels,
)

WIDTHS = (0.25, 0.5, 1.0)


def _models() -> list[EarlyExitModel]:
    return [
        OrderedDropoutCNN(1, (4, 8, 8), n_classes=3, widths=WIDTHS),
        OrderedDropoutResNet18(WIDTHS, n_classes=3, in_channels=1, width=4),
    ]


def _x() -> torch.Tensor:
    return torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def test_width_channels_is_ceil_of_p_c() -> None:
    for p in (0.1, 0.25, 0.3, 0.5, 0.7, 1.0):
        for c in (1, 3, 10, 64):
            want = math.ceil(round(p * c, 9))
            assert width_channels(p, c) == max(1, want)
    assert width_channels(0.3, 10) == 3  # 0.3 * 10 = 3.0000000000000004 in floating point
    with pytest.raises(CISInputError, match="widths"):
        check_widths([0.5, 0.5])
    with pytest.raises(CISInputError, match=r"widths\[0\]"):
        check_widths([0.0, 1.0])


@pytest.mark.parametrize("idx", range(2))
def test_each_part_is_the_nested_leading_slice(idx: int) -> None:
    model = _models()[idx]
    params = dict(model.named_parameters())
    for k in range(1, model.n_exits + 1):
        sl = model.exit_slices(k)
        assert list(sl) == list(params)  # every tensor has entries in every part
        for name, index in sl.items():
            # a leading block: every slice starts at 0
            assert all(s.start in (0, None) and s.step is None for s in index), (name, index)
        if k > 1:  # nested: P_{k-1} within P_k
            inner, outer = model.exit_masks(k - 1), model.exit_masks(k)
            for name in params:
                assert not (inner[name] & ~outer[name]).any(), name
                assert inner[name].sum() <= outer[name].sum()
    full = model.exit_masks(model.n_exits)
    assert all(bool(m.all()) for m in full.values())  # width 1.0 is the whole model
    # channel counts: the first convolution keeps ceil(p C) output channels
    first = next(n for n in params if n.endswith("weight") and params[n].dim() == 4)
    for k, p in enumerate(WIDTHS, start=1):
        rows = model.exit_slices(k)[first][0]
        assert rows.stop == width_channels(p, params[first].shape[0])


@pytest.mark.parametrize("idx", range(2))
def test_exit_k_reads_exactly_its_slice(idx: int) -> None:
    """The gradient of exit k's loss vanishes outside P_k and changing entries outside P_k
    does not change exit k's output."""
    model = _models()[idx]
    model.eval()  # fixed statistics: the output is a function of the parameters only
    x, y = _x(), torch.tensor([0, 1, 2, 0])
    for k in range(1, model.n_exits + 1):
        masks = model.exit_masks(k)
        model.train()
        model.zero_grad(set_to_none=True)
        model.loss(model(x, exit=k), y).backward()
        for n, p in model.named_parameters():
            assert p.grad is not None
            assert torch.all(p.grad[~masks[n]] == 0), (k, n)
            assert torch.any(p.grad[masks[n]] != 0), (k, n)
        model.eval()
        before = model(x, exit=k).detach()
        with torch.no_grad():
            saved = {n: p.clone() for n, p in model.named_parameters()}
            for n, p in model.named_parameters():
                p[~masks[n]] += 1.0
        assert torch.equal(model(x, exit=k).detach(), before), k
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(saved[n])


@pytest.mark.parametrize("vectorised", [False, True])
@pytest.mark.parametrize("idx", range(2))
def test_a_node_training_width_k_changes_only_its_slice(idx: int, vectorised: bool) -> None:
    """With weight decay and momentum (which would move every entry), nodes that all train
    width p_1 leave every entry outside P_1 bitwise as it was, and the statistics of the
    other widths too."""
    model = _models()[idx]
    gen = torch.Generator().manual_seed(1)
    nodes = [Dataset(torch.randn(6, 1, 8, 8, generator=gen), torch.arange(6) % 3) for _ in range(3)]
    q = np.zeros((3, 3))
    q[:, 0] = 1.0
    before = {n: t.detach().clone() for n, t in model.state_dict().items()}
    cfg = FedConfig(
        rounds=2, tau=2, batch_size=3, weight_decay=0.1, momentum=0.9, lr=0.05,
        vectorised=vectorised,
    )
    res = run_federated(model, nodes, q, [1.0, 0.0, 0.0], cfg)
    masks = model.exit_masks(1)
    own = set(model.exit_buffer_names(1))
    for n, was in before.items():
        now = res.state_dict[n]
        if n in masks:
            assert torch.equal(now[~masks[n]], was[~masks[n]]), n
            assert not torch.equal(now[masks[n]], was[masks[n]]), n
        elif n in own:
            assert not torch.equal(now, was), n  # width 1's statistics were trained
        else:
            assert torch.equal(now, was), n  # other widths' statistics untouched


def test_loop_and_vectorised_agree_for_ordered_dropout() -> None:
    gen = torch.Generator().manual_seed(2)
    nodes = [Dataset(torch.randn(5, 1, 8, 8, generator=gen), torch.arange(5) % 3) for _ in range(4)]
    q = np.full((4, 3), 0.3)
    a, b = (
        run_federated(
            OrderedDropoutResNet18(WIDTHS, 3, in_channels=1, width=4),
            nodes,
            q,
            [0.3, 0.3, 0.4],
            FedConfig(rounds=2, tau=2, batch_size=4, momentum=0.5, lr=0.02, vectorised=v),
        )
        for v in (False, True)
    )
    assert [r.picks for r in a.history] == [r.picks for r in b.history]
    for n in a.state_dict:
        # float32 convolutions batched differently (grouped under vmap): a few ulps per
        # operation over 2 rounds x 2 steps
        torch.testing.assert_close(a.state_dict[n], b.state_dict[n], rtol=1e-5, atol=1e-5)
