"""Early-exit models: parts P_k, shared trunks, initialisation, the ResNet-18 layout."""

from __future__ import annotations

import pytest
import torch

from cistheory.errors import CISInputError
from cistheory.train.models import (
    EarlyExitCNN,
    EarlyExitMLP,
    EarlyExitModel,
    EarlyExitResNet18,
    NestedLinear,
)


def small_models() -> list[tuple[EarlyExitModel, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    return [
        (NestedLinear(6, (2, 4, 6), n_classes=3), torch.randn(4, 6, generator=gen)),
        (NestedLinear(6, (2, 5), n_classes=None, bias=False), torch.randn(4, 6, generator=gen)),
        (EarlyExitMLP(6, (5, 7, 4), n_classes=3), torch.randn(4, 6, generator=gen)),
        (EarlyExitCNN(1, (3, 4, 5), n_classes=3), torch.randn(2, 1, 8, 8, generator=gen)),
        (
            EarlyExitResNet18((3, 9, 17), n_classes=3, width=4),
            torch.randn(2, 3, 8, 8, generator=gen),
        ),
        (
            EarlyExitResNet18((2, 13, 16), n_classes=3, width=4, norm="group"),
            torch.randn(2, 3, 8, 8, generator=gen),
        ),
    ]


@pytest.mark.parametrize("idx", range(6))
def test_forward_matches_forward_all(idx: int) -> None:
    model, x = small_models()[idx]
    model.eval()  # batch norm with running statistics: both calls see the same function
    outs = model.forward_all(x)
    assert len(outs) == model.n_exits
    for k in range(1, model.n_exits + 1):
        # same operations in the same order: bitwise equal
        assert torch.equal(model(x, exit=k), outs[k - 1])
    assert len(model.forward_all(x, upto=2)) == 2


@pytest.mark.parametrize("idx", range(6))
def test_exit_part_is_exactly_what_the_exit_reads(idx: int) -> None:
    """Exit k's loss has a gradient on every parameter of P_k and on nothing else."""
    model, x = small_models()[idx]
    n = x.shape[0]
    y = torch.randn(n) if model.task == "regression" else torch.arange(n) % 3
    for k in range(1, model.n_exits + 1):
        model.zero_grad(set_to_none=True)
        model.loss(model(x, exit=k), y).backward()
        names = set(model.exit_parameter_names(k))
        assert names
        for n, p in model.named_parameters():
            assert (p.grad is not None) == (n in names), (k, n)
    # parts are nested in their units: P_k without head k lies in P_{k+1}
    for k in range(1, model.n_exits):
        trunk = {n for n in model.exit_parameter_names(k) if not n.startswith("heads.")}
        assert trunk <= set(model.exit_parameter_names(k + 1))


def test_forward_runs_only_the_units_it_needs() -> None:
    model = EarlyExitResNet18((3, 9, 17), n_classes=10, width=4)
    ran: list[int] = []
    for j, unit in enumerate(model.blocks):
        unit.register_forward_hook(lambda *_, j=j: ran.append(j))
    model(torch.zeros(2, 3, 8, 8), exit=2)
    assert ran == list(range(9))


def test_resnet18_layout() -> None:
    """17 units; the trunk has the 11,168,832 parameters of the CIFAR ResNet-18 backbone."""
    model = EarlyExitResNet18((3, 9, 17), n_classes=10)
    assert len(model.blocks) == 17
    trunk = sum(p.numel() for n, p in model.named_parameters() if n.startswith("blocks."))
    # torchvision-style CIFAR ResNet-18: 11,173,962 parameters with one 512x10 linear head
    assert trunk == 11_173_962 - (512 * 10 + 10)
    heads = [h[-1].in_features for h in model.heads]
    assert heads == [64, 128, 512]  # widths after units 3 (stage 1), 9 (stage 2), 17 (stage 4)
    out = model.forward_all(torch.zeros(2, 3, 8, 8))
    assert [tuple(o.shape) for o in out] == [(2, 10)] * 3
    with pytest.raises(CISInputError, match="exits"):
        EarlyExitResNet18((9, 3), n_classes=10, width=4)
    with pytest.raises(CISInputError, match="norm"):
        EarlyExitResNet18(norm="layer", width=4)


def test_nested_linear_formula() -> None:
    """h_k(x) = sum_{j<=k} W_j x[d_{j-1}:d_j] + b_k: one weight matrix cut in column blocks."""
    m = NestedLinear(7, (2, 5, 7), n_classes=4)
    x = torch.randn(3, 7, generator=torch.Generator().manual_seed(1))
    w = torch.cat([b.weight for b in m.blocks], dim=1)
    for k, d in enumerate((2, 5, 7), start=1):
        expect = x[:, :d] @ w[:, :d].T + m.heads[k - 1].bias
        # float32 sums in another grouping: a few ulps
        torch.testing.assert_close(m(x, exit=k), expect, rtol=1e-6, atol=1e-6)
    assert m.exit_parameter_names(2) == ["blocks.0.weight", "blocks.1.weight", "heads.1.bias"]


def test_regression_loss_is_half_squared_error() -> None:
    m = NestedLinear(1, (1,), n_classes=None, bias=False)
    with torch.no_grad():
        m.blocks[0].weight.fill_(2.0)
    out = m(torch.tensor([[1.0], [3.0]]), exit=1)  # predictions 2, 6
    assert float(m.loss(out, torch.tensor([0.0, 4.0])).detach()) == (4.0 / 2 + 4.0 / 2) / 2
    assert m.loss(out, torch.tensor([0.0, 4.0]), reduction="none").detach().tolist() == [2.0, 2.0]


def test_initialisation_is_seeded_and_leaves_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a = EarlyExitMLP(5, (4, 4), 3, generator=torch.Generator().manual_seed(3))
    b = EarlyExitMLP(5, (4, 4), 3, generator=torch.Generator().manual_seed(3))
    c = EarlyExitMLP(5, (4, 4), 3, generator=torch.Generator().manual_seed(4))
    EarlyExitResNet18(width=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (n, p), (_, pb), (_, pc) in zip(
        a.named_parameters(), b.named_parameters(), c.named_parameters(), strict=True
    ):
        assert torch.equal(p, pb), n
        assert not torch.equal(p, pc), n
    bound = 1 / 5**0.5  # torch's default scale 1/sqrt(fan_in) for the first layer
    assert float(a.blocks[0][0].weight.detach().abs().max()) <= bound


def test_input_errors() -> None:
    m = NestedLinear(4, (2, 4), 3)
    for bad in (0, 3, True, 1.0):
        with pytest.raises(CISInputError, match="exit"):
            m(torch.zeros(1, 4), exit=bad)  # type: ignore[arg-type]
    with pytest.raises(CISInputError, match="dims"):
        NestedLinear(4, (3, 2), 3)
    with pytest.raises(CISInputError, match="d_in"):
        NestedLinear(3, (2, 4), 3)
    with pytest.raises(CISInputError, match="n_classes"):
        EarlyExitMLP(4, (3,), n_classes=1)
    with pytest.raises(CISInputError, match=r"hidden\[1\]"):
        EarlyExitMLP(4, (3, 0), n_classes=3)
    with pytest.raises(CISInputError, match="reduction"):
        m.loss(m(torch.zeros(1, 4), exit=1), torch.tensor([0]), reduction="sum")
