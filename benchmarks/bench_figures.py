"""Wall time of ``python -m figures`` (quick): trainings one by one against many runs at once.

Runs the figure scripts twice in one invocation, in fresh output folders, first with
``--engine single`` (every training alone, the figures' path before the many-runs engine)
then with ``--engine batched`` (the trainings of one data split, participation and seed at
once), and compares every data file the two wrote (JSON and CSV) byte for byte. Prints both
times, their ratio and whether the numbers are identical.

Usage::

    python benchmarks/bench_figures.py [--size quick|tiny] [--only NAME ...] [--json]
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=("quick", "tiny"), default="quick")
    p.add_argument("--only", action="append", default=[], help="only this figure (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        single, single_per = _run("single", Path(tmp) / "single", args.size, args.only)
        batched, batched_per = _run("batched", Path(tmp) / "batched", args.size, args.only)
        cmp = _compare(Path(tmp) / "single", Path(tmp) / "batched")
    doc = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "size": args.size,
        "only": args.only,
        "single_s": single,
        "batched_s": batched,
        "speedup": single / batched,
        "per_figure_s": {"single": single_per, "batched": batched_per},
        **cmp,
    }
    if args.json:
        print(json.dumps(doc))
        return
    print(
        f"python -m figures ({args.size}{', only ' + ' '.join(args.only) if args.only else ''})"
        f" on {doc['machine']}"
    )
    print(f"  --engine single : {single:8.1f} s")
    print(f"  --engine batched: {batched:8.1f} s")
    print(f"  speed-up        : {single / batched:8.2f}x")
    for name in single_per:
        b = batched_per.get(name, float("nan"))
        print(f"    {name:<14} {single_per[name]:8.1f} s -> {b:8.1f} s")
    print(
        f"  data files identical: {len(cmp['identical'])}/{len(cmp['files'])}"
        + (
            ""
            if cmp["all_identical"]
            else f" (differ: {sorted(set(cmp['files']) - set(cmp['identical']))})"
        )
    )


if __name__ == "__main__":
    main()
