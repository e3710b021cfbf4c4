"""Rounds per second of the federated loop: vectorised (vmap) clients against the plain loop.

Both paths run the same rounds (same seeds, same picks and minibatches) side by side in one
process, at 10, 100 and 1000 nodes, for the nested linear model and the early-exit MLP.
The target is a speed-up of at least 5x at 100 nodes.

Usage::

    python benchmarks/bench_trainer.py [--quick] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from cistheory.train.data import synthetic_classification
from cistheory.train.fedloop import FedConfig, run_federated
from cistheory.train.models import EarlyExitMLP, EarlyExitModel, NestedLinear


def make_model(kind: str) -> EarlyExitModel:
    if kind == "linear":
        return NestedLinear(16, (4, 8, 16), n_classes=4)
    return EarlyExitMLP(16, (32, 32, 32), n_classes=4)


def rounds_per_second(
    kind: str, n_nodes: int, vectorised: bool, rounds: int, samples: int, tau: int
) -> float:
    rng = np.random.default_rng(0)
    nodes, _, _ = synthetic_classification(
        n_nodes, samples, dims=(4, 8, 16), n_classes=4, test_samples=0, rng=rng
    )
    q = np.full((n_nodes, 3), 0.3)  # every node trains some exit with probability 0.9
    lt = [0.5, 0.3, 0.2]
    base = {"tau": tau, "lr": 0.1, "batch_size": 16, "momentum": 0.9, "vectorised": vectorised}
    # warm-up round (first-call overheads of vmap and the allocator)
    run_federated(make_model(kind), nodes, q, lt, FedConfig(rounds=1, **base))  # type: ignore[arg-type]
    model = make_model(kind)
    t0 = time.perf_counter()
    run_federated(model, nodes, q, lt, FedConfig(rounds=rounds, **base))  # type: ignore[arg-type]
    return rounds / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds (about a minute)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for kind in ("linear", "mlp"):
        for n in (10, 100, 1000):
            # enough rounds for at least about a second of loop time, fewer in --quick
            loop_rounds = max(1, (2 if args.quick else 6) * 100 // n)
            vec_rounds = 3 * loop_rounds
            loop = rounds_per_second(kind, n, False, loop_rounds, samples=32, tau=2)
            vec = rounds_per_second(kind, n, True, vec_rounds, samples=32, tau=2)
            rows.append(
                {
                    "model": kind,
                    "nodes": n,
                    "loop_rps": loop,
                    "vmap_rps": vec,
                    "speedup": vec / loop,
                }
            )
    if args.json:
        print(json.dumps({"threads": args.threads, "results": rows}))
        return
    print(f"threads={args.threads}; tau=2 local steps, batch 16, 32 samples per node")
    print(f"{'model':<7} {'nodes':>6} {'loop r/s':>10} {'vmap r/s':>10} {'speed-up':>9}")
    for r in rows:
        print(
            f"{r['model']:<7} {r['nodes']:>6} {r['loop_rps']:>10.3g} {r['vmap_rps']:>10.3g} "
            f"{r['speedup']:>8.1f}x"
        )


if __name__ == "__main__":
    main()
