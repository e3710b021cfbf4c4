"""Run the figure scripts: ``python -m figures [--full | --tiny] [--only NAME] [--out DIR]``.

Each figure computes and saves its data first, then plots from the saved data. The quick
configuration (default) runs every figure in at most 10 minutes on a 2-core machine;
``--full`` runs the whole grid. Long computations keep per-run results under
``OUT/cache/`` and resume from them when run again.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from . import FIGURES


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m figures",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = ap.add_mutually_exclusive_group()
    size.add_argument(
        "--full", action="store_const", dest="size", const="full", help="the whole grid (long)"
    )
    size.add_argument(
        "--tiny",
        action="store_const",
        dest="size",
        const="tiny",
        help="a smoke-test configuration (seconds)",
    )
    ap.add_argument("--only", action="append", choices=FIGURES, help="run only this figure")
    ap.add_argument("--out", type=Path, default=Path("figures/out"), help="output folder")
    ap.add_argument("--seed", type=int, default=0, help="base seed of every figure")
    ap.add_argument("--plot-only", action="store_true", help="re-plot from saved data")
    args = ap.parse_args(argv)
    size_name = args.size or "quick"
    names = args.only or list(FIGURES)
    args.out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    for i, name in enumerate(names, start=1):
        mod = importlib.import_module(f"figures.{name}")
        print(f"[{i}/{len(names)}] {name}: {mod.SPEC.title}", flush=True)
        t0 = time.perf_counter()
        data = args.out / f"{name}.json"
        if not args.plot_only:
            data = mod.compute(size_name, args.out, seed=args.seed)
        paths = mod.plot(data, args.out)
        print(
            f"      wrote {', '.join(p.name for p in [data, *paths])} "
            f"({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
    print(f"done: {len(names)} figure(s) in {time.perf_counter() - t_all:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
