"""Devices and precisions: auto picks what exists, cuda without a GPU is refused in one line,
bf16 mixed precision works on the CPU (slowly) and keeps float32 parameters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cistheory.errors import CISInputError
from cistheory.train.checkpoint import load_checkpoint, save_checkpoint
from cistheory.train.data import Dataset, crop_flip, synthetic_classification
from cistheory.train.device import autocast, resolve_device
from cistheory.train.fedloop import FedConfig, LoopState, exit_objectives, run_federated
from cistheory.train.manyruns import Run, run_many
from cistheory.train.models import EarlyExitMLP, EarlyExitResNet18
from cistheory.train.ordered_dropout import OrderedDropoutCNN

HAS_GPU = torch.cuda.is_available()


def test_auto_is_the_cpu_here_and_cuda_is_refused_without_a_gpu() -> None:
    assert resolve_device("auto") == torch.device("cuda" if HAS_GPU else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(CISInputError, match="device = 'tpu'"):
        resolve_device("tpu")
    if not HAS_GPU:
        with pytest.raises(CISInputError) as info:
            resolve_device("cuda")
        assert str(info.value) == (
            "device = 'cuda': no CUDA GPU is available here (torch.cuda.is_available() is False)"
        )
        nodes = [Dataset(torch.ones(2, 8), torch.zeros(2, dtype=torch.int64))]
        with pytest.raises(CISInputError, match="device = 'cuda'"):
            run_federated(EarlyExitMLP(8, (4,), 2), nodes, [[1.0]], [1.0],
                          FedConfig(rounds=1, device="cuda"))
    with pytest.raises(CISInputError, match="precision"):
        FedConfig(precision="fp16")


def test_cli_refuses_cuda_without_a_gpu_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if HAS_GPU:
        pytest.skip("this machine has a GPU: cuda is accepted")  # pragma: no cover
    from cistheory.cli import main

    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({"spec": "reference:80-15-5", "train": {"device": "cuda"}}))
    out = tmp_path / "out"
    assert main(["train", str(cfg), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: train.device = 'cuda': no CUDA GPU is available here "
        "(torch.cuda.is_available() is False)"
    ]
    assert not out.exists()  # nothing written


def _bf16_case(make: object, images: bool, vectorised: bool) -> None:
    rng = np.random.default_rng(0)
    nodes, _, _ = synthetic_classification(4, 12, dims=(2, 4, 8), rng=rng)
    if images:
        nodes = [Dataset(d.x.reshape(-1, 1, 2, 4).repeat(1, 1, 4, 2), d.y) for d in nodes]
    q = np.full((4, 3), 0.3)
    res, objective = {}, {}
    for precision in ("fp32", "bf16"):
        model = make()  # type: ignore[operator]
        cfg = FedConfig(rounds=3, tau=2, batch_size=6, lr=0.05, momentum=0.5, init_seed=0,
                        precision=precision, vectorised=vectorised)
        res[precision] = run_federated(model, nodes, q, [0.3, 0.3, 0.4], cfg)
        assert all(v.dtype == torch.float32 for v in res[precision].state_dict.values()
                   if v.is_floating_point())
        objective[precision] = np.asarray(exit_objectives(model, nodes, q))
    assert [r.picks for r in res["fp32"].history] == [r.picks for r in res["bf16"].history]
    # the objectives of the two precisions agree to a few percent (bf16 keeps 8 bits)
    np.testing.assert_allclose(objective["bf16"], objective["fp32"], rtol=0.05)
    # and bf16 really ran in bf16: the parameters differ from the fp32 run's
    a, b = res["fp32"].state_dict, res["bf16"].state_dict
    assert any(not torch.equal(a[n], b[n]) for n in a)


def test_bf16_lowers_the_training_objective() -> None:
    rng = np.random.default_rng(2)
    nodes, _, _ = synthetic_classification(4, 40, dims=(2, 4, 8), rng=rng)
    q = np.full((4, 3), 0.3)
    start = EarlyExitMLP(8, (16, 16, 16), 4)
    start.reset_parameters(torch.Generator().manual_seed(0))
    before = exit_objectives(start, nodes, q)
    model = EarlyExitMLP(8, (16, 16, 16), 4)
    cfg = FedConfig(rounds=8, tau=4, batch_size=8, lr=0.2, init_seed=0, precision="bf16")
    run_federated(model, nodes, q, [0.3, 0.3, 0.4], cfg)
    after = exit_objectives(model, nodes, q)
    assert all(a < b for a, b in zip(after, before, strict=True)), (after, before)


@pytest.mark.parametrize("vectorised", [False, True])
def test_bf16_trains_tiny_models_on_the_cpu(vectorised: bool) -> None:
    _bf16_case(lambda: EarlyExitMLP(8, (8, 8, 8), 4), False, vectorised)
    _bf16_case(lambda: EarlyExitResNet18((3, 9, 17), 4, in_channels=1, width=2), True, vectorised)
    _bf16_case(lambda: OrderedDropoutCNN(1, (4, 4, 8), 4), True, vectorised)


def test_autocast_is_nothing_in_fp32() -> None:
    with autocast("fp32", torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")
    with autocast("bf16", torch.device("cpu")):
        assert torch.is_autocast_enabled("cpu")


def test_many_runs_in_bf16_equal_single_runs_in_bf16() -> None:
    rng = np.random.default_rng(1)
    nodes, _, _ = synthetic_classification(4, 10, rng=rng)
    cfgs = [FedConfig(rounds=2, tau=2, batch_size=4, precision="bf16", vectorised=True,
                      init_seed=s, batch_seed=s) for s in (0, 1)]
    runs = [Run(np.full((4, 3), 0.3), [0.2, 0.3, 0.5], c) for c in cfgs]
    together = run_many(EarlyExitMLP(8, (8, 8, 8), 4), nodes, runs)
    for res, run in zip(together, runs, strict=True):
        alone = run_federated(EarlyExitMLP(8, (8, 8, 8), 4), nodes, run.q, run.lt, run.config)
        for n in alone.state_dict:
            assert torch.equal(res.state_dict[n], alone.state_dict[n]), n


def test_crop_flip_matches_a_per_image_reference() -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 3, 6, 7, generator=gen)
    u = torch.rand(2, 5, 3, generator=gen, dtype=torch.float64)
    got = crop_flip(x, u, pad=2)
    for a in range(2):
        for b in range(5):
            img = torch.nn.functional.pad(x[a, b], (2, 2, 2, 2))
            dy, dx = int(u[a, b, 0] * 5), int(u[a, b, 1] * 5)
            ref = img[:, dy : dy + 6, dx : dx + 7]
            if u[a, b, 2] < 0.5:
                ref = ref.flip(-1)
            assert torch.equal(got[a, b], ref)


def test_augmentation_is_seeded_and_resumes_bitwise(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(4)
    nodes = [Dataset(torch.randn(6, 1, 8, 8, generator=gen), torch.arange(6) % 3) for _ in range(3)]
    q = np.full((3, 3), 0.3)

    def cfg(**kw: object) -> FedConfig:
        return FedConfig(rounds=4, tau=2, batch_size=3, augment="crop-flip", augment_seed=9,
                         **kw)  # type: ignore[arg-type]

    def make() -> OrderedDropoutCNN:
        return OrderedDropoutCNN(1, (4, 4, 8), 3)

    full = run_federated(make(), nodes, q, [0.3, 0.3, 0.4], cfg())
    plain = run_federated(make(), nodes, q, [0.3, 0.3, 0.4], replace_augment(cfg(), "none"))
    assert any(not torch.equal(full.state_dict[n], plain.state_dict[n]) for n in full.state_dict)
    saved: list[LoopState] = []

    def keep(state: LoopState) -> None:
        if state.rounds_done == 2:
            save_checkpoint(tmp_path / "c.pt", state)

    run_federated(make(), nodes, q, [0.3, 0.3, 0.4], cfg(), callback=keep, stop_after=2)
    ck = load_checkpoint(tmp_path / "c.pt")
    assert "augment_generator" in ck and not saved
    resumed = run_federated(make(), nodes, q, [0.3, 0.3, 0.4], cfg(), resume=ck)
    for n in full.state_dict:
        assert torch.equal(resumed.state_dict[n], full.state_dict[n]), n
    vec = run_federated(make(), nodes, q, [0.3, 0.3, 0.4], cfg(vectorised=True))
    for n in full.state_dict:
        # the same draws; float32 convolutions batched differently: a few ulps over 4 rounds
        torch.testing.assert_close(vec.state_dict[n], full.state_dict[n], rtol=1e-5, atol=1e-5)


def replace_augment(cfg: FedConfig, augment: str) -> FedConfig:
    from dataclasses import replace

    return replace(cfg, augment=augment)
