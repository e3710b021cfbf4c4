"""The ServerApp and the ClientApp of a CIS run on Flower (``docs/flower.md``).

The Flower app project ``cistheory/flower/app/pyproject.toml`` names them
(``cistheory.flower.apps:server_app``, ``cistheory.flower.apps:client_app``) and holds the
run config's keys and defaults (:data:`RUN_CONFIG`), overridden with ``flwr run ...
--run-config 'config="/abs/train.toml" out-dir="/abs/runs/x"'``.

A client is one CIS node. In a deployment its SuperNode says which one with
``--node-config 'cis-node="ID"'`` (``ID`` a node id of the spec); in a simulation node
``partition-id`` ``i`` is the spec's ``i``-th node (``num-supernodes`` must equal the
spec's node count). It trains the exit it is sent with
:func:`cistheory.train.local.local_update`, the in-process trainer's own local update, on
``device`` (``cpu``, ``cuda`` or ``auto``).
"""

from __future__ import annotations

import copy
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from ..errors import CISInputError
from ..train.data import Dataset
from ..train.device import resolve_device
from ..train.local import local_update
from ._records import config_record, config_value, tensors
from .parts import load_part, part_delta
from .problem import FlowerProblem, load_problem
from .strategy import LOG, CISStrategy

__all__ = ["RUN_CONFIG", "ServerOptions", "client_app", "node_index", "server_app", "train_part"]

RUN_CONFIG: dict[str, Any] = {
    "config": "",
    "out-dir": "",
    "resume": False,
    "force": False,
    "stop-after": 0,
    "round-timeout": 120.0,
    "connect-timeout": 300.0,
    "poll-seconds": 0.2,
    "device": "cpu",
}
"""The run config's keys and defaults (those of the app project's ``pyproject.toml``)."""


@dataclass(frozen=True)
class ServerOptions:
    """The run config, checked (keys of :data:`RUN_CONFIG`)."""

    config: str
    out_dir: str
    resume: bool
    force: bool
    stop_after: int | None
    round_timeout: float
    connect_timeout: float
    poll: float

    @classmethod
    def from_run_config(cls, rc: dict[str, Any]) -> ServerOptions:
        """Read and check a run config.

        Examples
        --------
        >>> ServerOptions.from_run_config({**RUN_CONFIG, "config": "/t.toml", "out-dir": "x"})
        Traceback (most recent call last):
        ...
        cistheory.errors.CISInputError: out-dir = 'x': give an absolute path
        """
        unknown = sorted(set(rc) - set(RUN_CONFIG))
        if unknown:
            raise CISInputError(
                unknown[0], rc[unknown[0]], f"unknown key; use {sorted(RUN_CONFIG)}"
            )
        rc = {**RUN_CONFIG, **rc}
        for key in ("config", "out-dir"):
            if not str(rc[key]).startswith("/"):
                raise CISInputError(key, rc[key], "give an absolute path")
        stop = int(rc["stop-after"])
        if stop < 0:
            raise CISInputError("stop-after", stop, "must be >= 0 (0: all rounds)")
        for key in ("round-timeout", "connect-timeout", "poll-seconds"):
            if not float(rc[key]) > 0:
                raise CISInputError(key, rc[key], "must be > 0 seconds")
        return cls(
            config=str(rc["config"]),
            out_dir=str(rc["out-dir"]),
            resume=bool(rc["resume"]),
            force=bool(rc["force"]),
            stop_after=stop or None,
            round_timeout=float(rc["round-timeout"]),
            connect_timeout=float(rc["connect-timeout"]),
            poll=float(rc["poll-seconds"]),
        )


server_app = ServerApp()
"""The ServerApp: runs :class:`cistheory.flower.strategy.CISStrategy` on the run config."""


@server_app.main()
def _server_main(grid: Grid, context: Context) -> None:
    handler = logging.StreamHandler(sys.stderr)  # Flower streams this process's output
    handler.setFormatter(logging.Formatter("[cistheory] %(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    try:
        opts = ServerOptions.from_run_config(dict(context.run_config))
        torch.set_num_threads(1)
        strategy = CISStrategy(
            load_problem(opts.config), round_timeout=opts.round_timeout, poll=opts.poll
        )
        strategy.run(
            grid,
            opts.out_dir,
            resume=opts.resume,
            force=opts.force,
            stop_after=opts.stop_after,
            connect_timeout=opts.connect_timeout,
        )
    finally:
        LOG.removeHandler(handler)


client_app = ClientApp()
"""The ClientApp: one CIS node (identity from its ``node_config``)."""


def node_index(problem: FlowerProblem, node_config: dict[str, Any]) -> int:
    """The CIS node (index in spec order) a Flower node stands for.

    ``cis-node`` (a node id of the spec) when set, else the simulation's ``partition-id``
    (which must then range over exactly the spec's nodes).
    """
    if "cis-node" in node_config:
        return problem.node_index(node_config["cis-node"], "node-config cis-node")
    if "partition-id" in node_config:
        n = int(node_config.get("num-partitions", -1))
        if n != problem.n_nodes:
            raise CISInputError(
                "num-supernodes", n, f"the spec has {problem.n_nodes} nodes; run as many"
            )
        return int(node_config["partition-id"])
    raise CISInputError("node-config", dict(node_config), "set cis-node to a node id of the spec")


@client_app.query()
def _identify(msg: Message, context: Context) -> Message:
    problem = load_problem(str(context.run_config["config"]))
    _check_digest(problem, config_record(msg.content, "query"))
    i = node_index(problem, dict(context.node_config))
    ident = ConfigRecord({"cis-node": problem.cis.node_ids[i]})
    return Message(RecordDict({"identity": ident}), reply_to=msg)


def _check_digest(problem: FlowerProblem, cfg: ConfigRecord) -> None:
    if config_value(cfg, "digest", str) != problem.digest:
        raise CISInputError("config", problem.path, "this node's config differs from the server's")


@client_app.train()
def _train(msg: Message, context: Context) -> Message:
    t0 = time.perf_counter()
    problem = load_problem(str(context.run_config["config"]))
    cfg = config_record(msg.content, "config")
    _check_digest(problem, cfg)
    i = node_index(problem, dict(context.node_config))
    sent_to = config_value(cfg, "cis-node", str)
    if sent_to != problem.cis.node_ids[i]:
        raise CISInputError("cis-node", sent_to, f"the message reached node {i}")
    batch = tensors(msg.content, "batch")
    delta, bufs = train_part(
        problem,
        i,
        config_value(cfg, "exit", int),
        tensors(msg.content, "arrays"),
        steps=config_value(cfg, "steps", int),
        u=batch.get("u"),
        augment=batch.get("augment"),
        lr=config_value(cfg, "lr", float),
        device=resolve_device(str(context.run_config.get("device", "cpu")), "device"),
    )
    reply = RecordDict(
        {
            "delta": ArrayRecord.from_torch_state_dict(delta),
            "metrics": MetricRecord(
                {
                    "num-examples": len(problem.experiment.node_data[i]),
                    "seconds": time.perf_counter() - t0,
                }
            ),
        }
    )
    if bufs:
        reply["buffers"] = ArrayRecord.from_torch_state_dict(bufs)
    return Message(reply, reply_to=msg)


def train_part(
    problem: FlowerProblem,
    i: int,
    k: int,
    part: dict[str, torch.Tensor],
    *,
    steps: int,
    u: torch.Tensor | None,
    lr: float,
    device: torch.device,
    augment: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    r"""Node ``i``'s update of part :math:`P_k` from the received ``part``: ``(Delta,
    buffers)`` on the CPU, by :func:`cistheory.train.local.local_update` on ``device`` in the
    config's precision, with the config's augmentation; ``Delta`` on the entries of
    :math:`P_k` (:func:`cistheory.flower.parts.part_delta`).

    The uniforms ``u`` and ``augment`` stay on the CPU (the minibatch indices are drawn
    there), so the samples picked and their crops do not depend on the device.
    """
    exp = problem.experiment
    model = copy.deepcopy(exp.model)
    load_part(model, k, part)
    model.to(device)
    worker = copy.deepcopy(model)
    if device.type == "cuda":  # as the trainer's worker
        worker.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    data = exp.node_data[i]
    if device.type != "cpu":
        data = Dataset(data.x.to(device), data.y.to(device))
    delta, bufs = local_update(
        model,
        worker,
        k,
        data,
        steps,
        u,
        lr,
        momentum=exp.fed.momentum,
        weight_decay=exp.fed.weight_decay,
        augment=augment,
        precision=exp.fed.precision,
    )
    delta = part_delta(model, k, delta)
    return {n: d.cpu() for n, d in delta.items()}, {n: b.cpu() for n, b in bufs.items()}
