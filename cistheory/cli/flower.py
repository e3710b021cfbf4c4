"""``cistheory flower sim|deploy CONFIG``: a train config on Flower on this machine.

``sim`` runs ``flwr run`` on the local simulation federation; ``deploy`` starts a SuperLink
and one SuperNode per CIS node on localhost and runs ``flwr run`` against them
(:mod:`cistheory.flower.runs`, extra ``cistheory[flower]``). Flower's output streams to
standard error (faults included); the summary goes to standard output. Exit status 0 when
the run completed, 1 when it failed (the logs are in ``OUT/flower/logs``), 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import CISInputError
from ._output import emit_json, progress

__all__ = ["register"]


def _kill(text: str) -> tuple[str, int]:
    node, _, rnd = text.partition("@")
    if not node or not rnd.isdigit() or int(rnd) < 1:
        raise CISInputError("--kill", text, "expected NODE@ROUND, e.g. 3@1")
    return node, int(rnd)


def _cmd_flower(args: argparse.Namespace) -> int:
    from ..flower.runs import FlowerRunSpec, deploy, simulate
    from ..train.config import load_config

    config = Path(args.config).resolve()
    out = args.out or load_config(config).get("output") or str(Path("runs") / config.stem)
    if args.stop_after is not None and args.stop_after < 1:
        raise CISInputError("--stop-after", args.stop_after, "must be >= 1")
    spec = FlowerRunSpec(
        config=config,
        out=Path(out).resolve(),
        resume=args.resume,
        force=args.force,
        stop_after=args.stop_after or 0,
        round_timeout=args.round_timeout,
        device=args.device,
    )
    if args.mode == "sim" and args.kill:
        raise CISInputError("--kill", args.kill, "only for deploy")
    if args.mode == "deploy" and args.client_cpus is not None:
        raise CISInputError("--client-cpus", args.client_cpus, "only for sim")
    show = None if args.quiet else progress
    if args.mode == "sim":
        outcome = simulate(spec, client_cpus=args.client_cpus, on_line=show)
    else:
        kill = _kill(args.kill) if args.kill else None
        outcome = deploy(spec, kill=kill, on_line=show)
    summary: dict[str, Any] = {
        "output": str(spec.out),
        "logs": str(spec.out / "flower" / "logs"),
        "ok": outcome.ok,
        "status": outcome.status,
    }
    results = spec.out / "results.json"
    if outcome.ok and results.is_file():
        doc = json.loads(results.read_text(encoding="utf-8"))
        summary.update(
            rounds_done=doc["rounds_done"],
            complete=doc["complete"],
            final_objectives=doc["final_objectives"],
            faults=len(doc["flower"]["faults"]),
            bias_observed=doc["flower"]["bias_observed"],
        )
    emit_json(summary)
    return 0 if outcome.ok else 1


def register(subparsers: Any) -> None:
    """Add ``flower`` to the ``cistheory`` command's subparsers."""
    p = subparsers.add_parser(
        "flower",
        help="a train config on Flower: local simulation or localhost deployment",
        description="The training of 'cistheory train' on Flower (docs/flower.md): 'sim' runs "
        "flwr run on the local simulation federation, 'deploy' starts a SuperLink and one "
        "SuperNode per CIS node on localhost and runs flwr run against them; every process "
        "is stopped at the end. Writes the outputs of 'train' to OUT (Flower's state and "
        "logs in OUT/flower); a folder holding an earlier run is refused unless --resume or "
        "--force. Needs the extra cistheory[flower].",
    )
    p.add_argument(
        "mode", choices=["sim", "deploy"], help="sim: local simulation; deploy: localhost"
    )
    p.add_argument("config", help="run configuration (.json or .toml; see docs/trainer.md)")
    p.add_argument(
        "--out", help="output directory (default: the config's 'output', else runs/<config name>)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in OUT from OUT/checkpoint.pt"
    )
    p.add_argument("--force", action="store_true", help="overwrite an earlier run's files in OUT")
    p.add_argument("--stop-after", type=int, default=None, help="stop after this many rounds")
    p.add_argument(
        "--round-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for a round's replies (later ones are faults; default 120)",
    )
    p.add_argument(
        "--device",
        default="cpu",
        choices=["cpu", "cuda", "auto"],
        help="where the clients train (auto: cuda when there is one; default cpu)",
    )
    p.add_argument(
        "--client-cpus",
        type=int,
        default=None,
        help="sim: CPUs per simulated client (default: all, one client at a time)",
    )
    p.add_argument(
        "--kill", help="deploy: SIGKILL the SuperNode of NODE once round ROUND is done (NODE@ROUND)"
    )
    p.add_argument("--quiet", action="store_true", help="do not stream Flower's output")
    p.set_defaults(func=_cmd_flower)
