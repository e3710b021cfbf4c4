"""The reference workload on one device: step rates, one round, R runs at once, the FLOP floor.

On the early-exit ResNet-18 (exits 3-9-17, CIFAR shapes, random images resident on the
device), in one process:

1. images per second of a training step (forward, backward, SGD update) at each exit;
2. the wall time of one round of the reference 7-node tree (equal data split, every node
   its deepest exit, local epochs of about one root epoch), plain loop and vmapped clients;
3. the time of that round for ``R`` runs at once (:func:`cistheory.train.manyruns.run_many`),
   per run;
4. the FLOPs of that work, counted with ``torch.utils.flop_counter`` (forward and backward
   of every step), against the device's measured ceiling (a large matrix product in the
   same precision): achieved rate, its fraction of the ceiling, and the floor time
   FLOPs / ceiling.

``--device cuda`` runs the reference sizes (width 64, batch 128, 15,000 / 7,500 / 3,750
samples, 118-120 steps per node; sized for a few minutes on one GPU; ``--precision bf16``
for mixed precision). ``--device cpu`` (or ``--quick``) runs a CPU-sized version of the same
measurements: width 8, batch 32, node data and local steps scaled down (3 steps per node), so
that it ends in a couple of minutes on two cores; its numbers are CPU numbers, not GPU ones.

Usage::

    python benchmarks/bench_gpu.py [--device cpu|cuda] [--precision fp32|bf16] [--runs R]
                                   [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cistheory import reference_cis
from cistheory.train.config import root_epoch_steps
from cistheory.train.data import Dataset
from cistheory.train.device import autocast, resolve_device
from cistheory.train.fedloop import FedConfig, LoopState, run_federated
from cistheory.train.manyruns import Run, run_many
from cistheory.train.models import EarlyExitResNet18


@dataclass(frozen=True)
class Sizes:
    width: int
    batch: int
    scale: float  # node data relative to the reference split
    steps: int | None  # local steps per node; None: the reference root-epoch steps
    step_reps: int


GPU = Sizes(width=64, batch=128, scale=1.0, steps=None, step_reps=20)
CPU = Sizes(width=8, batch=32, scale=0.01, steps=3, step_reps=3)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ceiling(device: torch.device, precision: str) -> float:
    """FLOP/s of a large square matrix product in the precision (the device's ceiling)."""
    n = 8192 if device.type == "cuda" else 1024
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    reps = 20 if device.type == "cuda" else 3
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def step_flops(model: EarlyExitResNet18, k: int, batch: int, device: torch.device) -> float:
    """FLOPs of one forward and backward pass at exit ``k`` on a batch."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    with FlopCounterMode(display=False) as counter:
        model.loss(model(x, exit=k), y).backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def step_rate(
    model: EarlyExitResNet18, k: int, sizes: Sizes, device: torch.device, precision: str
) -> float:
    """Images per second of SGD steps (momentum 0.9, weight decay 5e-4) at exit ``k``."""
    names = model.exit_parameter_names(k)
    params = dict(model.named_parameters())
    opt = torch.optim.SGD([params[n] for n in names], lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(sizes.batch, 3, 32, 32, device=device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (sizes.batch,), device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast(precision, device):
            out = model(x, exit=k)
        model.loss(out.float(), y).backward()
        opt.step()

    for _ in range(2):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(sizes.step_reps):
        step()
    _sync(device)
    return sizes.batch * sizes.step_reps / (time.perf_counter() - t0)


def _nodes(sizes: Sizes, device: torch.device) -> tuple[list[Dataset], tuple[int, ...], Any]:
    cis = reference_cis("80-15-5", "equal")
    m = np.maximum(np.round(cis.data * sizes.scale), sizes.batch).astype(int)
    gen = torch.Generator().manual_seed(0)
    nodes = [
        Dataset(
            torch.randn(int(n), 3, 32, 32, generator=gen),
            torch.randint(0, 10, (int(n),), generator=gen),
        )
        for n in m
    ]
    if sizes.steps is None:
        steps = root_epoch_steps(m.astype(float), 0, sizes.batch)
    else:
        steps = (sizes.steps,) * len(m)
    return nodes, steps, cis


def _round_seconds(times: list[float]) -> float:
    """The second round's duration (the first carries the warm-up)."""
    return times[2] - times[1]


def one_round(
    sizes: Sizes, device: torch.device, precision: str, vectorised: bool, runs: int
) -> float:
    """Wall seconds of one round of the 7-node tree (of ``runs`` runs at once when > 1)."""
    nodes, steps, cis = _nodes(sizes, device)
    q = np.zeros((7, 3))
    q[np.arange(7), cis.capacity - 1] = 1.0
    cfg = FedConfig(
        rounds=2,
        tau=steps,
        lr=0.1,
        batch_size=sizes.batch,
        momentum=0.9,
        weight_decay=5e-4,
        vectorised=vectorised or runs > 1,
        device=str(device.type),
        precision=precision,
    )
    model = EarlyExitResNet18((3, 9, 17), 10, width=sizes.width)
    times = [time.perf_counter()]
    if runs == 1:

        def tick(_: LoopState) -> None:
            _sync(device)
            times.append(time.perf_counter())

        run_federated(model, nodes, q, [0.8, 0.15, 0.05], cfg, callback=tick)
    else:

        def tick_many(_: int, __: Any) -> None:
            _sync(device)
            times.append(time.perf_counter())

        from dataclasses import replace

        all_runs = [Run(q, [0.8, 0.15, 0.05], replace(cfg, batch_seed=r)) for r in range(runs)]
        run_many(model, nodes, all_runs, callback=tick_many)
    return _round_seconds(times)


def round_flops(sizes: Sizes, device: torch.device) -> float:
    """FLOPs of one round: every node's steps at its deepest exit (forward and backward)."""
    _, steps, cis = _nodes(sizes, device)
    model = EarlyExitResNet18((3, 9, 17), 10, width=sizes.width).to(device)
    per_exit = {k: step_flops(model, k, sizes.batch, device) for k in (1, 2, 3)}
    return float(sum(s * per_exit[int(k)] for s, k in zip(steps, cis.capacity, strict=True)))


# long: the four measurements and their report in one place
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--runs", type=int, default=4, help="runs at once (default 4)")
    p.add_argument("--quick", action="store_true", help="the CPU-sized configuration")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sizes = CPU if (args.quick or device.type == "cpu") else GPU
    if device.type == "cuda":
        machine = torch.cuda.get_device_name(device)
    else:
        machine = (
            f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} torch threads"
        )
    peak = ceiling(device, args.precision)
    model = EarlyExitResNet18((3, 9, 17), 10, width=sizes.width).to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    rates = {k: step_rate(model, k, sizes, device, args.precision) for k in (1, 2, 3)}
    flops = round_flops(sizes, device)
    loop = one_round(sizes, device, args.precision, vectorised=False, runs=1)
    vmap = one_round(sizes, device, args.precision, vectorised=True, runs=1)
    many = one_round(sizes, device, args.precision, vectorised=True, runs=args.runs)
    doc = {
        "machine": machine,
        "device": device.type,
        "precision": args.precision,
        "sizes": sizes.__dict__,
        "ceiling_flops": peak,
        "images_per_s": {str(k): v for k, v in rates.items()},
        "round_flops": flops,
        "round_s": {
            "loop": loop,
            "vmap": vmap,
            f"{args.runs}_runs_at_once": many,
            "per_run_at_once": many / args.runs,
        },
        "fraction_of_ceiling": {
            "loop": flops / loop / peak,
            "vmap": flops / vmap / peak,
            "runs_at_once": args.runs * flops / many / peak,
        },
        "floor_s": flops / peak,
    }
    if args.json:
        print(json.dumps(doc))
        return
    print(
        f"{machine}; {args.precision}; ResNet-18 3-9-17 width {sizes.width}, batch "
        f"{sizes.batch}, 7-node equal split x{sizes.scale:g}"
    )
    print(f"ceiling (matrix product): {peak / 1e12:.3f} TFLOP/s")
    for k, v in rates.items():
        print(f"  training step at exit {k}: {v:10.1f} images/s")
    print(f"one round: {flops / 1e9:.2f} GFLOP, floor {flops / peak:.3f} s at the ceiling")
    for name, t, f in (
        ("plain loop", loop, flops),
        ("vmapped clients", vmap, flops),
        (f"{args.runs} runs at once", many, args.runs * flops),
    ):
        print(
            f"  {name:<18} {t:8.2f} s   {f / t / 1e12:.4f} TFLOP/s = "
            f"{f / t / peak:6.1%} of the ceiling"
        )
    print(f"  per run at once    {many / args.runs:8.2f} s")


if __name__ == "__main__":
    main()
