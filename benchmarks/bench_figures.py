"""Wall time of ``python -m figures`` (quick): trainings one by one against many runs at once.

Runs the figure scripts in one invocation, in fresh output folders, first with
``--engine single`` (every training alone, the figures' path before the many-runs engine)
then with ``--engine batched`` (the trainings of one data split, participation and seed at
once), and compares every data file the two wrote (JSON and CSV) byte for byte. Prints both
times, their ratio and whether the numbers are identical.

Only the figures that train through the engine (:data:`ENGINE_FIGURES`: ``accuracy`` and
``p40``, the callers of ``figures._experiment.run_grid``) run differently under the two
engines. By default they run under both, and the other figures run once (``--engine`` does
not reach their code) and their time is added to both totals, so the whole-run ratio is
``(rest + single) / (rest + batched)`` with every term measured in this invocation.
``--all-twice`` runs every figure under both engines instead.

Usage::

    python benchmarks/bench_figures.py [--size quick|tiny] [--only NAME ...] [--all-twice]
                                       [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from figures import FIGURES

ENGINE_FIGURES: tuple[str, ...] = ("accuracy", "p40")
"""The figures whose trainings go through ``figures._experiment.run_grid`` (the engine)."""


def _run(engine: str, out: Path, size: str, only: list[str]) -> tuple[float, dict[str, float]]:
    """Wall seconds of one ``python -m figures`` and each figure's own seconds (from its
    ``NAME: wrote ... (X s)`` line)."""
    cmd = [sys.executable, "-m", "figures", "--engine", engine, "--out", str(out)]
    if size != "quick":
        cmd.append(f"--{size}")
    for name in only:
        cmd += ["--only", name]
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    wall = time.perf_counter() - t0
    per = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^(\w+): wrote .* \(([\d.]+) s\)$", proc.stdout, re.M)
    }
    return wall, per


def _compare(a: Path, b: Path) -> dict[str, Any]:
    """Data files of two output folders: which are byte-identical."""
    names = sorted(p.name for p in a.iterdir() if p.suffix in {".json", ".csv"} and p.is_file())
    same = [n for n in names if (b / n).is_file() and (a / n).read_bytes() == (b / n).read_bytes()]
    return {"files": names, "identical": same, "all_identical": same == names}


def _measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Run the figures as the options say; the times and the comparison."""
    names = args.only or list(FIGURES)
    both = names if args.all_twice else [n for n in names if n in ENGINE_FIGURES]
    once = [n for n in names if n not in both]
    single, single_per = _run("single", tmp / "single", args.size, both) if both else (0.0, {})
    batched, batched_per = _run("batched", tmp / "batched", args.size, both) if both else (0.0, {})
    rest, rest_per = _run("batched", tmp / "rest", args.size, once) if once else (0.0, {})
    cmp = (
        _compare(tmp / "single", tmp / "batched")
        if both
        else {"files": [], "identical": [], "all_identical": True}
    )
    return {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "size": args.size,
        "only": args.only,
        "both_engines": both,
        "once": once,
        "single_s": single,
        "batched_s": batched,
        "rest_s": rest,
        "speedup": single / batched if batched else float("nan"),
        "total_single_s": single + rest,
        "total_batched_s": batched + rest,
        "total_speedup": (single + rest) / (batched + rest) if batched + rest else float("nan"),
        "per_figure_s": {"single": single_per, "batched": batched_per, "once": rest_per},
        **cmp,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=("quick", "tiny"), default="quick")
    p.add_argument("--only", action="append", default=[], help="only this figure (repeatable)")
    p.add_argument(
        "--all-twice",
        action="store_true",
        help="run every figure under both engines (default: only those that train)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        doc = _measure(args, Path(tmp))
    if args.json:
        print(json.dumps(doc))
        return
    print(
        f"python -m figures ({args.size}{', only ' + ' '.join(args.only) if args.only else ''})"
        f" on {doc['machine']}"
    )
    if doc["both_engines"]:
        print(f"  under both engines: {', '.join(doc['both_engines'])}")
        print(f"    --engine single : {doc['single_s']:8.1f} s")
        print(f"    --engine batched: {doc['batched_s']:8.1f} s")
        print(f"    speed-up        : {doc['speedup']:8.2f}x")
        for name, t in doc["per_figure_s"]["single"].items():
            b = doc["per_figure_s"]["batched"].get(name, float("nan"))
            print(f"      {name:<14} {t:8.1f} s -> {b:8.1f} s ({t / b:.2f}x)")
    if doc["once"]:
        print(f"  run once (the engine does not reach them): {doc['rest_s']:8.1f} s")
        for name, t in doc["per_figure_s"]["once"].items():
            print(f"      {name:<14} {t:8.1f} s")
    print(
        f"  whole run: {doc['total_single_s']:.1f} s one run at a time, "
        f"{doc['total_batched_s']:.1f} s many runs at once: {doc['total_speedup']:.2f}x"
    )
    print(
        f"  data files identical: {len(doc['identical'])}/{len(doc['files'])}"
        + (
            ""
            if doc["all_identical"]
            else f" (differ: {sorted(set(doc['files']) - set(doc['identical']))})"
        )
    )


if __name__ == "__main__":
    main()
