"""Serving shares of a generated tree of a million nodes.

Prints the time of each stage, for forwarding rates and for service capacities, the
vectorised routing against a per-node Python loop on a smaller tree, and capacity mode on a
chain (the deepest tree) against the level-by-level method it replaced, side by side.

    python benchmarks/bench_rates.py [--nodes 1000000] [--repeat 3] [--chain 100000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import cistheory as ct
from cistheory.system.tree import _route_by_level  # the level-by-level routing


def random_tree(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A random recursive tree (parent[i] < i) with valid forwarding rates and capacities."""
    parent = np.empty(n, dtype=np.int64)
    parent[0] = -1
    parent[1:] = (rng.random(n - 1) * np.arange(1, n)).astype(np.int64)
    depth = ct.node_depths(parent)
    k = 3
    cap = np.clip(k - depth, 1, k)
    arrival = np.where(np.bincount(parent[1:], minlength=n) == 0, rng.random(n), 0.0)
    frac = rng.random(n)
    frac[0] = 0.0
    inflow = arrival.copy()
    fwd = np.zeros(n)
    order = np.argsort(-depth, kind="stable")
    cuts = np.flatnonzero(np.diff(depth[order])) + 1
    for nodes in np.split(order, cuts):
        fwd[nodes] = frac[nodes] * inflow[nodes]
        ch = nodes[parent[nodes] >= 0]
        inflow += np.bincount(parent[ch], weights=fwd[ch], minlength=n)
    service = rng.random(n) * 2
    service[0] = np.inf
    return dict(parent=parent, capacity=cap, arrival=arrival, forward=fwd, service=service)


def loop_lambda(
    parent: np.ndarray, cap: np.ndarray, arrival: np.ndarray, forward: np.ndarray
) -> np.ndarray:
    """Per-node Python reference for the forwarding-rate serving shares."""
    n = parent.size
    inflow = [float(a) for a in arrival]
    for i in range(n):
        if parent[i] >= 0:
            inflow[int(parent[i])] += float(forward[i])
    per_exit = [0.0] * int(cap.max())
    for i in range(n):
        per_exit[int(cap[i]) - 1] += inflow[i] - float(forward[i])
    s = sum(per_exit)
    return np.array([x / s for x in per_exit])


def chain_capacity(n: int, repeat: int) -> None:
    """Capacity mode on a chain of ``n`` nodes: the heavy-path scan (what ``CIS.build`` runs
    for a tree deeper than 8 log2 N) against the level-by-level routing it replaced there,
    same input, same answer, timed side by side."""
    parent = np.arange(-1, n - 1, dtype=np.int64)
    rng = np.random.default_rng(7)
    arrival = rng.random(n)
    service = rng.random(n) * 0.9
    service[0] = np.inf
    t_new = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        cis = ct.CIS.build(
            parent=parent, capacity=np.ones(n), arrival=arrival, service=service, n_exits=1
        )
        _ = cis.served
        t_new = min(t_new, time.perf_counter() - t0)
    t0 = time.perf_counter()
    served, fwd, _ = _route_by_level(parent, arrival, service, ct.node_depths(parent))
    t_old = time.perf_counter() - t0
    scale = max(float(arrival.sum()), 1.0)
    err = max(np.abs(served - cis.served).max(), np.abs(fwd - cis.serving.forwarded).max())
    assert err <= 1e-9 * scale, err  # the two sum in different orders: rounding only
    print(
        f"  capacity mode, chain of {n:,} nodes: level by level {t_old:.2f} s, "
        f"heavy-path scan (build + route) {t_new:.3f} s, ratio {t_old / t_new:.0f}x "
        f"(max difference {err:.1e})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--loop-nodes", type=int, default=200_000)
    ap.add_argument("--chain", type=int, default=100_000, help="nodes of the capacity chain")
    args = ap.parse_args()
    rng = np.random.default_rng(20261125)
    tree = random_tree(args.nodes, rng)
    print(
        f"random recursive tree: {args.nodes:,} nodes, depth {ct.node_depths(tree['parent']).max()}"
    )
    for mode in ("forward", "service"):
        best = np.inf
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            cis = ct.CIS.build(
                parent=tree["parent"],
                capacity=tree["capacity"],
                arrival=tree["arrival"],
                n_exits=3,
                **{mode: tree[mode]},
            )
            lam = cis.lam
            best = min(best, time.perf_counter() - t0)
        print(
            f"  {mode:8s}: build + validate + route + lambda  {best:.3f} s"
            f"   lambda={np.round(lam, 4)}"
        )
    t0 = time.perf_counter()
    tier = ct.three_tier_cis(1000, 999, "80-15-5", data="tiny")
    lam = tier.lam
    t_tier = time.perf_counter() - t0
    print(
        f"  three-tier tree, {tier.n_nodes:,} nodes (1000 middles x 999 leaves): "
        f"{t_tier:.3f} s   lambda={np.round(lam, 4)}"
    )
    small = {k: v[: args.loop_nodes] for k, v in random_tree(args.loop_nodes, rng).items()}
    t0 = time.perf_counter()
    ref = loop_lambda(small["parent"], small["capacity"], small["arrival"], small["forward"])
    t_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = ct.CIS.build(
        parent=small["parent"],
        capacity=small["capacity"],
        arrival=small["arrival"],
        forward=small["forward"],
        n_exits=3,
    ).lam
    t_fast = time.perf_counter() - t0
    assert np.allclose(ref, fast, rtol=1e-9)
    print(
        f"  {args.loop_nodes:,} nodes: python loop {t_loop:.3f} s, vectorised {t_fast:.3f} s, "
        f"ratio {t_loop / t_fast:.1f}x (same lambda)"
    )
    chain_capacity(args.chain, args.repeat)


if __name__ == "__main__":
    main()
