"""A train config run on Flower on this machine: simulation or deployment (no Flower import).

:func:`simulate` runs ``flwr run`` on the local simulation federation (one simulated
SuperNode per CIS node); :func:`deploy` starts a SuperLink and one SuperNode per CIS node
(``--node-config cis-node=ID``, the spec's node ids) as separate processes on localhost and
runs ``flwr run`` against them. Both keep Flower's state and logs in ``OUT/flower/`` and stop
every process they started when they return, fail or are interrupted (SIGINT, SIGTERM).
``cistheory flower sim|deploy`` is the command line of these two functions.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from ..errors import CISInputError
from ..train.run import check_output_folder
from .problem import FlowerProblem, load_problem
from .stack import FlowerStack, RunOutcome

__all__ = ["FlowerRunSpec", "deploy", "simulate"]


@dataclass(frozen=True)
class FlowerRunSpec:
    """What to run: a train config, the output directory and the run config's options.

    Attributes
    ----------
    config : Path
        The train config (made absolute).
    out : Path
        Output directory (made absolute): the server's outputs, ``flower/`` (Flower's state
        and the processes' logs).
    resume, force, stop_after, round_timeout, device :
        As the run config's ``resume``, ``force``, ``stop-after``, ``round-timeout`` and
        ``device``.
    """

    config: Path
    out: Path
    resume: bool = False
    force: bool = False
    stop_after: int = 0
    round_timeout: float = 120.0
    device: str = "cpu"

    def problem(self) -> FlowerProblem:
        """The config's problem, its experiment built now: a bad config fails before any
        process starts."""
        problem = load_problem(self.config.resolve())
        problem.experiment  # noqa: B018 - builds (and so validates) the experiment
        return problem

    def run_config(self) -> dict[str, Any]:
        """The ``--run-config`` of ``flwr run``."""
        return {
            "config": str(self.config.resolve()),
            "out-dir": str(self.out.resolve()),
            "resume": self.resume,
            "force": self.force,
            "stop-after": self.stop_after,
            "round-timeout": float(self.round_timeout),
            "device": self.device,
        }

    def check_out(self) -> None:
        """Refuse the output folder as ``cistheory train`` does (a folder holding a run,
        unless ``resume`` or ``force``), before any process starts."""
        check_output_folder(self.out, resume=self.resume, force=self.force)


@contextmanager
def _stack(workdir: Path) -> Iterator[FlowerStack]:
    """A :class:`FlowerStack` closed on every exit path, SIGTERM included."""
    in_main = threading.current_thread() is threading.main_thread()
    old = signal.getsignal(signal.SIGTERM) if in_main else None

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    if in_main:
        signal.signal(signal.SIGTERM, stop)
    try:
        with FlowerStack(workdir) as st:
            yield st
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old)


def simulate(
    spec: FlowerRunSpec,
    *,
    client_cpus: int | None = None,
    on_line: Callable[[str], None] | None = None,
    timeout: float = 3600.0,
) -> RunOutcome:
    """``flwr run`` on the local simulation federation, ``num-supernodes`` = the spec's nodes.

    ``client_cpus`` is Flower's ``client-resources-num-cpus`` (default: all cores, one Ray
    actor, the cheapest on a small machine).
    """
    problem = spec.problem()
    spec.check_out()
    cpus = int(client_cpus if client_cpus is not None else os.cpu_count() or 1)
    if cpus < 1:
        raise CISInputError("--client-cpus", cpus, "must be >= 1")
    with _stack(spec.out / "flower") as st:
        return st.run(
            "local-sim",
            spec.run_config(),
            federation_config={
                "num-supernodes": problem.n_nodes,
                "client-resources-num-cpus": cpus,
            },
            on_line=on_line,
            timeout=timeout,
        )


def deploy(
    spec: FlowerRunSpec,
    *,
    kill: tuple[str, int] | None = None,
    on_line: Callable[[str], None] | None = None,
    timeout: float = 7200.0,
) -> RunOutcome:
    """A SuperLink and one SuperNode per CIS node on localhost, then ``flwr run`` against them.

    ``kill = (NODE, ROUND)`` SIGKILLs the SuperNode of CIS node ``NODE`` (its spec id) once
    round ``ROUND`` is reported: a fault drill (the node's later updates are lost).
    """
    problem = spec.problem()
    spec.check_out()
    if kill is not None:
        problem.node_index(kill[0], "--kill")
    ids = list(problem.cis.node_ids)
    with _stack(spec.out / "flower") as st:
        st.start_superlink()
        st.start_supernodes(ids)
        return st.run(
            "deploy", spec.run_config(), on_line=_killer(st, kill, on_line), timeout=timeout
        )


def _killer(
    st: FlowerStack, kill: tuple[str, int] | None, on_line: Callable[[str], None] | None
) -> Callable[[str], None]:
    done: list[bool] = []
    mark = None if kill is None else f"[cistheory] round {kill[1]}:"

    def watch(line: str) -> None:
        if on_line is not None:
            on_line(line)
        if kill is not None and mark is not None and not done and mark in line:
            st.kill(f"supernode-{kill[0]}")
            done.append(True)
            if on_line is not None:
                on_line(f"[cistheory] SIGKILLed the SuperNode of CIS node {kill[0]}")

    return watch
