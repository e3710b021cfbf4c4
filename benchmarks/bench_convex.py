"""Benchmark: the fast convex solvers against cvxpy, measured side by side in one run.

Prints three tables (nothing is asserted):

1. ``optimal_lt``: fast Newton vs cvxpy first solve (build + solve) and DPP re-solve, K = 3,
   10, 100, 1000 (and the fast path alone at K = 10^6).
2. ``optimal_q``: fast water-filling (without and with a binding budget) at 10^3 .. 10^6
   node-exit pairs vs cvxpy (build + solve) up to the size cvxpy finishes in about a minute.
3. The joint design on the 7-, 17- and 100-node reference trees ("shallower" policy).

Targets: fast >= 100x faster than a cvxpy re-solve for K <= 100;
10^6 pairs in under 1 s. Usage::

    python benchmarks/bench_convex.py [--quick] [--cvxpy-cap SECONDS]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np

import cistheory
from convex import design, optimal_lt, optimal_q, reference_constants
from convex.cvx import LtProgram, QProgram


def _time(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` calls (one warm-up call first)."""
    fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def bench_lt(ks: list[int], big: int | None, rng: np.random.Generator) -> None:
    from convex._jit import joint_kernel

    if joint_kernel() is not None:
        import numba

        kind = f"compiled Newton kernel (numba {numba.__version__})"
        optimal_lt([0.5, 0.5], [1.0, 1.0], 1.0, 1.0)  # compile (or load from cache) first
    else:
        kind = "Python/numpy Newton (numba not installed or CISTHEORY_NO_JIT set)"
    print(f"\noptimal_lt: fast path = {kind}")
    print("optimal_lt: fast vs cvxpy (CLARABEL); times in ms, ratios = cvxpy / fast")
    print(f"{'K':>8} {'fast':>10} {'cvx first':>11} {'cvx resolve':>12} "
          f"{'first/fast':>11} {'resolve/fast':>13} {'rel diff J':>11}")
    for k in ks:
        lam = rng.dirichlet(np.ones(k))
        v = rng.uniform(0.1, 10.0, k)
        repeat = 201 if k <= 100 else 11
        t_fast = _time(partial(optimal_lt, lam, v, 1.0, 0.5), repeat)
        t0 = time.perf_counter()
        prog = LtProgram(k)
        first = prog.solve(lam, v, 1.0, 0.5)
        t_first = time.perf_counter() - t0
        lam2 = rng.dirichlet(np.ones(k))
        # 21 re-solves (5 at K = 1000): the median of a few ms calls on a shared machine
        t_re = _time(partial(prog.solve, lam2, v, 2.0, 0.5), 21 if k <= 100 else 5)
        fast = optimal_lt(lam, v, 1.0, 0.5)
        rel = abs(first.fun - fast.fun) / abs(fast.fun)
        print(f"{k:>8} {1e3 * t_fast:>10.3f} {1e3 * t_first:>11.1f} {1e3 * t_re:>12.2f} "
              f"{t_first / t_fast:>11.0f} {t_re / t_fast:>13.0f} {rel:>11.1e}")
    if big:
        lam = rng.dirichlet(np.ones(big))
        v = rng.uniform(0.1, 10.0, big)
        t_fast = _time(lambda: optimal_lt(lam, v, 1.0, 0.5), 3)
        r = optimal_lt(lam, v, 1.0, 0.5)
        print(f"{big:>8} {1e3 * t_fast:>10.1f} {'-':>11} {'-':>12} {'-':>11} {'-':>13} "
              f"{'gap ' + format(r.gap / r.fun, '.0e'):>11}")


def _q_problem(pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    k = 4
    n = pairs // k
    el = rng.uniform(size=(n, k)) < 0.85
    el[:, -1] = True
    c = np.where(el, rng.exponential(size=(n, k)), 0.0)
    return c, el


def bench_q(sizes: list[int], cap: float, rng: np.random.Generator) -> None:
    print("\noptimal_q: fast water-filling vs cvxpy (CLARABEL) with a binding budget; times in "
          "s;\ncvx first = build + DPP compile + solve, cvx resolve = new c and budget; "
          "ratios against fast+budget")
    print(f"{'pairs':>9} {'fast':>8} {'fast+budget':>12} {'rho steps':>10} {'cvx first':>10} "
          f"{'cvx resolve':>12} {'first/fast':>11} {'resolve/fast':>13} {'rel diff J':>11}")
    cost = np.array([0.05, 0.4, 0.7, 1.0])
    done: list[tuple[int, float]] = []  # (pairs, cvxpy seconds) measured so far
    for pairs in sizes:
        c, el = _q_problem(pairs, rng)
        repeat = 5 if pairs <= 10**5 else 3
        t_fast = _time(partial(optimal_q, c, el, cost=cost, q_min=0.01), repeat)
        free = optimal_q(c, el, cost=cost, q_min=0.01)
        budget = 0.6 * free.spend
        t_bud = _time(partial(optimal_q, c, el, cost=cost, budget=budget, q_min=0.01), repeat)
        rb = optimal_q(c, el, cost=cost, budget=budget, q_min=0.01)
        # skip a size cvxpy would take past the cap, extrapolating its growth (a power law
        # fitted to the last two sizes measured; linear before that)
        estimate = 0.0
        if done:
            (n1, t1), power = done[-1], 1.0
            if len(done) > 1:
                n0, t0_ = done[-2]
                power = max(1.0, float(np.log(t1 / t0_) / np.log(n1 / n0)))
            estimate = t1 * (pairs / n1) ** power
        cells = ["skipped", "-", "-", "-", "-"]
        if estimate <= cap:
            t0 = time.perf_counter()
            prog = QProgram(el, with_budget=True)
            res = prog.solve(c, cost=cost, budget=budget, q_min=0.01)
            t_cvx = time.perf_counter() - t0
            done.append((pairs, t_cvx))
            c2 = c * rng.uniform(0.5, 1.5, size=c.shape)
            t0 = time.perf_counter()
            prog.solve(c2, cost=cost, budget=0.9 * budget, q_min=0.01)
            t_re = time.perf_counter() - t0
            cells = [f"{t_cvx:.2f}", f"{t_re:.3f}", f"{t_cvx / t_bud:.0f}", f"{t_re / t_bud:.0f}",
                     f"{abs(res.fun - rb.fun) / rb.fun:.1e}"]
        print(f"{pairs:>9} {t_fast:>8.3f} {t_bud:>12.3f} {rb.nit:>10} {cells[0]:>10} "
              f"{cells[1]:>12} {cells[2]:>11} {cells[3]:>13} {cells[4]:>11}")


def bench_joint(nodes: list[int]) -> None:
    print("\njoint design (shallower policy, q_min 0.01): fast alternation vs cvxpy; times in s")
    print(f"{'nodes':>6} {'fast':>8} {'iters':>6} {'gap/J':>8} {'cvxpy':>8} {'cvxpy/fast':>11} "
          f"{'rel diff J':>11}")
    const = reference_constants(np.array([0.3, 0.2, 0.1]))
    const = cistheory.bounds.CISConstants(
        L=const.L, mu=const.mu, Gamma=0.01, sigma=const.sigma, G=np.array([0.2, 0.2, 0.2]),
        gap0=const.gap0, T=const.T, eta=const.eta,
    )
    for n in nodes:
        cis = cistheory.reference_cis("80-15-5", "tiny", n_nodes=n)
        t0 = time.perf_counter()
        fast = design(cis, "shallower", const, q_min=0.01)
        t_fast = time.perf_counter() - t0
        t0 = time.perf_counter()
        cv = design(cis, "shallower", const, q_min=0.01, method="cvxpy")
        t_cv = time.perf_counter() - t0
        rel = abs(cv.fun - fast.fun) / fast.fun
        print(f"{n:>6} {t_fast:>8.3f} {fast.nit:>6} {fast.gap / fast.fun:>8.0e} "
              f"{t_cv:>8.2f} {t_cv / t_fast:>11.1f} {rel:>11.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (seconds)")
    parser.add_argument("--cvxpy-cap", type=float, default=60.0,
                        help="skip cvxpy sizes expected to take longer than this (s)")
    args = parser.parse_args()
    rng = np.random.default_rng(2024)
    # import cvxpy and compile one throwaway program first, so the "first solve" column
    # measures building and solving a program, not loading the library
    LtProgram(2).solve([0.5, 0.5], [1.0, 1.0], 1.0, 1.0)
    if args.quick:
        bench_lt([3, 10, 100], None, rng)
        bench_q([10**3, 10**4, 10**5], min(args.cvxpy_cap, 5.0), rng)
        bench_joint([7, 17])
    else:
        bench_lt([3, 10, 100, 1000], 10**6, rng)
        bench_q([10**3, 3 * 10**3, 10**4, 3 * 10**4, 10**5, 10**6], args.cvxpy_cap, rng)
        bench_joint([7, 17, 100])


if __name__ == "__main__":
    main()
