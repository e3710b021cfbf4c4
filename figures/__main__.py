"""Run the figure scripts: python -m figures [--full | --tiny] [--only NAME] [--out DIR].

Each figure computes and saves its data first, then plots from the saved data. The quick
configuration (default) runs every figure in at most 10 minutes on a 2-core machine;
--full runs the whole grid. Long computations keep per-run results under OUT/cache/ and
resume from them when run again. Progress, with the time left, goes to standard error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from cistheory._io import check_folder
from cistheory.cli._output import ArgumentParser, Progress, emit, progress, run_command
from cistheory.errors import CISInputError

from . import FIGURES


def _parser() -> ArgumentParser:
    ap = ArgumentParser(
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
    ap.add_argument(
        "--only", action="append", choices=FIGURES, help="run only this figure (repeatable)"
    )
    ap.add_argument(
        "--out", type=Path, default=Path("figures/out"), help="output folder (default figures/out)"
    )
    ap.add_argument("--seed", type=int, default=0, help="base seed of every figure (default 0)")
    ap.add_argument(
        "--plot-only",
        action="store_true",
        help="re-plot from the data saved in OUT by an earlier run (nothing is computed)",
    )
    ap.add_argument(
        "--engine",
        choices=("batched", "single"),
        default="batched",
        help="train the runs of one data split and seed at once (default) or one by one",
    )
    ap.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default=None,
        help="where the trainings run (default: cpu for the figures, auto for --paper: a GPU "
        "when there is one)",
    )
    paper = ap.add_argument_group("the paper's grid on CIFAR (--paper)")
    paper.add_argument(
        "--paper",
        action="store_true",
        help="train the reference experiments on local CIFAR files (see figures/paper.py)",
    )
    paper.add_argument("--data-dir", type=Path, help="directory of the CIFAR pickle files")
    paper.add_argument(
        "--dataset", choices=("cifar10", "cifar100"), default="cifar10", help="(default cifar10)"
    )
    paper.add_argument(
        "--family",
        choices=("early-exit", "ordered-dropout"),
        default="early-exit",
        help="the model family (default early-exit)",
    )
    paper.add_argument(
        "--precision", choices=("fp32", "bf16"), default="fp32", help="(default fp32)"
    )
    paper.add_argument("--seeds", type=int, default=1, help="seeds per cell (default 1)")
    return ap


def _run(args: argparse.Namespace) -> int:
    if args.paper:
        return _paper(args)
    from ._experiment import set_options

    set_options(engine=args.engine, device=args.device)
    size_name = args.size or "quick"
    names = args.only or list(FIGURES)
    if args.seed < 0:
        raise CISInputError("--seed", args.seed, "must be >= 0")
    out = check_folder(args.out, "--out")
    mods = [importlib.import_module(f"figures.{name}") for name in names]
    if args.plot_only:
        missing = [m.SPEC.name for m in mods if not (out / f"{m.SPEC.name}.json").is_file()]
        if missing:
            raise CISInputError(
                "--plot-only",
                str(out),
                f"no saved data for {', '.join(missing)}; run without --plot-only first",
            )
    out.mkdir(parents=True, exist_ok=True)
    cost = {m.SPEC.name: (m.SPEC.cost if size_name != "tiny" else 1.0) for m in mods}
    bar = Progress(sum(cost.values()), "figures", steps=len(mods))
    t_all = time.perf_counter()
    for mod in mods:
        name = mod.SPEC.name
        progress(f"figures: {name}: {mod.SPEC.title}")
        t0 = time.perf_counter()
        data = out / f"{name}.json"
        if not args.plot_only:
            data = mod.compute(size_name, out, seed=args.seed)
        paths = mod.plot(data, out)
        emit(f"{name}: wrote {', '.join(p.name for p in [data, *paths])} "
             f"({time.perf_counter() - t0:.1f} s)")
        bar.step(f"{name} done", cost[name])
    emit(f"done: {len(mods)} figure(s) in {time.perf_counter() - t_all:.1f} s -> {out}")
    return 0


def _paper(args: argparse.Namespace) -> int:
    """``--paper``: the grid of figures/paper.py (bad input: one line, status 2)."""
    from .paper import SPEC, PaperOptions, run

    if args.size == "full" or args.only:
        raise CISInputError("--paper", "--full/--only", "runs its own grid; use --tiny or nothing")
    if args.data_dir is None:
        raise CISInputError("--data-dir", None, "--paper needs the CIFAR files")
    if args.seeds < 1:
        raise CISInputError("--seeds", args.seeds, "must be >= 1")
    opts = PaperOptions(
        data_dir=args.data_dir,
        dataset=args.dataset,
        family=args.family,
        device=args.device or "auto",
        precision=args.precision,
        size=args.size or "full",
        seeds=args.seeds,
    )
    out = check_folder(args.out, "--out")
    opts.files()  # the dataset's files are there, before anything is printed or written
    t0 = time.perf_counter()
    progress(f"figures: paper: {SPEC.title} ({opts.dataset}, {opts.family}, {opts.size})")
    paths = run(opts, out, plot_only=args.plot_only)
    emit(f"paper: wrote {', '.join(p.name for p in paths)} ({time.perf_counter() - t0:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m figures``; returns the exit status."""
    parser = _parser()
    return run_command(lambda: _run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
