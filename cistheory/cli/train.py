"""``cistheory train CONFIG``: federated training of an early-exit model in a CIS.

The work is done by :func:`cistheory.train.run.run_training` (torch loads when the command
runs, not when the parser is built); this module parses the options, draws the progress bar
on standard error and prints the summary.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..errors import CISInputError
from ._output import duration, emit_json, progress

__all__ = ["register"]


def _bar(done: int, total: int, width: int = 30) -> str:
    fill = int(width * done / total)
    return "[" + "#" * fill + "." * (width - fill) + "]"


def _cmd_train(args: argparse.Namespace) -> int:
    from ..train.config import load_config
    from ..train.fedloop import LoopState
    from ..train.run import check_output_folder, run_training

    cfg = load_config(args.config)
    if args.data_dir is not None:
        cfg["data"]["path"] = args.data_dir
    stem = args.config.split(":", 1)[1] if args.config.startswith("paper:") else Path(
        args.config
    ).stem
    out = args.out or cfg.get("output") or str(Path("runs") / stem)
    if args.stop_after is not None and args.stop_after < 1:
        raise CISInputError("--stop-after", args.stop_after, "must be >= 1")
    check_output_folder(out, resume=args.resume, force=args.force, field="--out")
    t0 = time.perf_counter()
    first: list[int] = []  # the rounds done before this invocation's first round

    def show(state: LoopState, total: int) -> None:
        done = state.rounds_done
        last = state.history[-1]
        obj = "" if last.objective_lt is None else f" F_lt={last.objective_lt:.5g}"
        if not first:
            first.append(done - 1)
        rate = (done - first[0]) / max(time.perf_counter() - t0, 1e-9)
        left = f", about {duration((total - done) / rate)} left" if done < total else ""
        line = f"\r{_bar(done, total)} {done}/{total} rounds{obj} ({rate:.3g}/s{left})"
        progress(line, end="")

    res = run_training(
        cfg,
        out,
        resume=args.resume,
        force=args.force,
        stop_after=args.stop_after,
        on_round=None if args.quiet else show,
    )
    if not args.quiet:
        progress("")
    summary = {
        "output": str(out),
        "rounds_done": res["rounds_done"],
        "complete": res["complete"],
        "final_objectives": res["final_objectives"],
    }
    for key in ("test_accuracy", "test_mse", "system_accuracy"):
        if key in res:
            summary[key] = res[key]
    emit_json(summary)
    return 0


def register(subparsers: Any) -> None:
    """Add ``train`` to the ``cistheory`` command's subparsers."""
    p = subparsers.add_parser(
        "train",
        help="federated training of an early-exit model in a CIS (needs torch)",
        description="Federated training of an early-exit model in a simulated CIS, as "
        "CONFIG says (docs/trainer.md). Writes results.json, history.csv, model.pt and "
        "checkpoint.pt to OUT; a folder holding an earlier run is refused unless --resume "
        "or --force.",
    )
    p.add_argument(
        "config",
        help="run configuration (.json or .toml; see docs/trainer.md), or paper:NAME for a "
        "shipped reference experiment (e.g. paper:cifar10-7node-equal)",
    )
    p.add_argument("--data-dir", help="directory of the dataset's files (overrides data.path)")
    p.add_argument(
        "--out", help="output directory (default: the config's 'output', else runs/<config name>)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in OUT from OUT/checkpoint.pt (refused if the checkpoint is "
        "corrupt or of another configuration)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="overwrite an earlier run's files in OUT (without --resume or --force, a folder "
        "holding a run is refused)",
    )
    p.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="stop after this many rounds of this invocation (resumable)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=_cmd_train)
