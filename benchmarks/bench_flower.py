"""Seconds per round on Flower (simulation, deployment) against the in-process loop.

The same train config (reference tree, digits MLP, p40, unbiased rule) at 7 and 100 nodes is
run in one invocation by the in-process trainer, by ``flwr run`` on the local simulation
federation and by a deployment (a SuperLink and one SuperNode per CIS node on localhost);
the table gives each one's seconds per round (rounds 2 onwards; round 1 and the start-up
separately) and its ratio to the in-process loop. A deployment holds two processes per
SuperNode: the script measures their memory in the smallest deployment and runs a larger
one only if it fits in the memory available, else says so and runs the largest reference
tree (7, 17 or 100 nodes) that fits, at most ``--fit-cap`` nodes. The machine's load average
is printed with the results: Flower's costs are mostly process start-up and polling, which
other work on the machine inflates.

Usage::

    python benchmarks/bench_flower.py [--rounds 4] [--sim-nodes 7,100] [--deploy-nodes 7,100]
        [--fit-cap 17] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

from cistheory.flower.problem import load_problem
from cistheory.flower.runs import FlowerRunSpec, deploy, simulate
from cistheory.flower.stack import processes_of
from cistheory.train.fedloop import run_federated

CONFIG = """
spec = "{spec}"
checkpoint_every = 1000
[model]
name = "mlp"
hidden = [16, 16, 16]
[data]
name = "digits"
samples = 1437
[participation]
policy = "p40"
[rule]
name = "serving-rate"
[train]
rounds = {rounds}
tau = 2
lr = 0.3
batch_size = 16
aggregation = "unbiased"
eval_every = 0
"""


TREES = (7, 17, 100)  # the reference trees' sizes (cistheory.system.reference)


def write_config(work: Path, n: int, rounds: int) -> Path:
    spec = "reference:80-15-5" if n == 7 else f"reference:80-15-5:equal:{n}"
    path = work / f"bench-{n}.toml"
    path.write_text(CONFIG.format(spec=spec, rounds=rounds), encoding="utf-8")
    return path.resolve()


def in_process(config: Path) -> dict[str, float]:
    """Seconds per round of ``run_federated`` (plain loop) after a warm-up run."""
    exp = load_problem(config).experiment
    args = (exp.node_data, exp.participation.q, exp.lt, exp.fed)
    run_federated(copy.deepcopy(exp.model), *args)  # warm-up (imports, allocator)
    t0 = time.perf_counter()
    run_federated(copy.deepcopy(exp.model), *args)
    return {"per_round": (time.perf_counter() - t0) / exp.fed.rounds}


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class _Sampler(threading.Thread):
    """The largest total RSS of a stack's processes, sampled every second."""

    def __init__(self, home: Path) -> None:
        super().__init__(daemon=True)
        self.home, self.peak, self.stop = home, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(1.0):
            self.peak = max(self.peak, _rss_mb(processes_of(self.home)))


def on_flower(mode: str, config: Path, out: Path) -> dict[str, Any]:
    """One Flower run; seconds per round from the server's report, wall time, memory."""
    spec = FlowerRunSpec(config, out, round_timeout=1800.0)
    sampler = _Sampler(out / "flower" / "flwr-home")
    sampler.start()
    t0 = time.perf_counter()
    outcome = simulate(spec) if mode == "simulation" else deploy(spec)
    wall = time.perf_counter() - t0
    sampler.stop.set()
    if not outcome.ok:
        raise RuntimeError(f"{mode} at {config}: {outcome.status}\n{outcome.output[-3000:]}")
    fl = json.loads((out / "results.json").read_text())["flower"]
    rs = fl["round_seconds"]
    return {
        "per_round": sum(rs[1:]) / max(len(rs) - 1, 1),
        "round_1": rs[0],
        "connect": fl["connect_seconds"],
        "wall": wall,
        "peak_rss_mb": sampler.peak,
    }


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--sim-nodes", default="7,100")
    p.add_argument("--deploy-nodes", default="7,100")
    p.add_argument("--fit-cap", type=int, default=17, help="largest fallback deployment")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args()
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench-flower-"))
    sims = [int(x) for x in a.sim_nodes.split(",") if x]
    deps = sorted(int(x) for x in a.deploy_nodes.split(",") if x)
    load = [os.getloadavg()[0]]
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    base = {n: in_process(write_config(work, n, a.rounds))["per_round"] for n in {*sims, *deps}}
    for n in sorted(base):
        rows.append({"mode": "in-process", "nodes": n, "per_round": base[n]})
    for n in sims:
        r = on_flower("simulation", write_config(work, n, a.rounds), work / f"sim-{n}")
        rows.append({"mode": "simulation", "nodes": n, **r})
        print(f"measured: {rows[-1]}", file=sys.stderr, flush=True)
    per_node = None
    for n in deps:
        run_n = n
        if per_node is not None and n * per_node > 0.8 * mem_available_mb():
            fits = int(0.8 * mem_available_mb() / per_node)
            smaller = [s for s in TREES if s <= min(fits, a.fit_cap) and s not in deps]
            run_n = max(smaller, default=0)
            notes.append(
                f"deployment at {n} nodes does not fit: {per_node:.0f} MB per SuperNode (measured) "
                f"x {n} = {n * per_node / 1024:.1f} GB > 80% of {mem_available_mb() / 1024:.1f} GB "
                f"available; {fits} would fit; "
                + (f"ran {run_n} instead" if run_n else "no other reference tree to run")
            )
            if not run_n:
                continue
            if run_n not in base:
                base[run_n] = in_process(write_config(work, run_n, a.rounds))["per_round"]
                rows.append({"mode": "in-process", "nodes": run_n, "per_round": base[run_n]})
        r = on_flower("deployment", write_config(work, run_n, a.rounds), work / f"deploy-{run_n}")
        per_node = r["peak_rss_mb"] / run_n
        rows.append({"mode": "deployment", "nodes": run_n, **r})
        print(f"measured: {rows[-1]}", file=sys.stderr, flush=True)
    load.append(os.getloadavg()[0])
    report = {
        "rounds": a.rounds,
        "cores": os.cpu_count(),
        "load": load,
        "rows": rows,
        "notes": notes,
    }
    if a.json:
        print(json.dumps(report))
        return
    print(
        f"{a.rounds} rounds; {os.cpu_count()} cores; load average {load[0]:.1f} before, "
        f"{load[1]:.1f} after"
    )
    head = ("mode", "nodes", "s/round", "x in-proc", "round 1", "connect", "wall", "RSS MB")
    print("{:11s} {:>5s} {:>9s} {:>9s} {:>8s} {:>8s} {:>7s} {:>7s}".format(*head))
    for r in rows:
        extra = [f"{r[k]:8.1f}" if k in r else " " * 8 for k in ("round_1", "connect")]
        tail = f"{r['wall']:7.1f} {r['peak_rss_mb']:7.0f}" if "wall" in r else ""
        print(
            f"{r['mode']:11s} {r['nodes']:5d} {r['per_round']:9.3f} "
            f"{r['per_round'] / base[r['nodes']]:9.1f} {' '.join(extra)} {tail}"
        )
    for note in notes:
        print("note:", note)


if __name__ == "__main__":
    main()
