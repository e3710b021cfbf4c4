r"""The CIS round as a strategy of Flower's Message API (``docs/flower.md``).

:class:`CISStrategy` runs the algorithm of ``docs/theory.md``, Section 3, exactly as the
in-process trainer (:func:`cistheory.train.fedloop.run_federated`) does, with Flower carrying
the messages. The server owns every random state, so a run is a function of the config's
seeds whatever the transport. Round :math:`t`:

1. the round's draws are the trainer's own (:func:`cistheory.train.fedloop.draw_round`):
   each node picks exit :math:`k` with probability :math:`q_{i,k}` or idles (the *selection*
   generator; with ``nodes_per_round`` a fixed number of nodes drawn first), then the picked
   nodes' minibatch uniforms (the *batch* generator) and, with augmentation, their
   crop-and-flip uniforms (the *augment* generator);
2. node :math:`i` (picked :math:`k`) receives its own message: the part :math:`P_k`
   (``arrays``: the entries of :math:`P_k`, :mod:`cistheory.flower.parts`), a config record
   ``{round, cis-node, exit, weight, lr, steps, digest}`` and its uniforms (``batch``: ``u``
   and ``augment``); it replies with :math:`\Delta_{i,k}` on the part's entries (``delta``)
   and its part's batch-norm statistics (``buffers``);
3. the server adds, in the order of the nodes,

   .. math::
       w_{t+1} = w_t + \eta_s \sum_{(i,k)\ \text{picked and arrived}} w_{i,k}\,\Delta_{i,k},
       \qquad w_{i,k} = \beta_{i,k}/q_{i,k}\ \text{(unbiased)}\ \text{or}\ \beta_{i,k} q_{i,k},

   with no renormalisation (:class:`cistheory.flower.parts.PartSum`; Flower's
   ``aggregate_arrayrecords`` renormalises and wants equal keys, so it is not used).

A picked node that answers with an error, or not before ``round_timeout``, or that no live
Flower node stands for, is recorded as a fault and its update is left out (the weights of the
others stay; :mod:`cistheory.flower.faults` gives the bias this implies). Flower node ids are
random, so the strategy first asks every node which CIS node it is (a ``query`` message; the
node answers from its ``node_config``), and asks again any node id it has not seen, before
every round (a restarted node comes back with a new id).

Checkpoints are the trainer's (:mod:`cistheory.train.checkpoint`, with the config's digest),
so a Flower run resumes from a checkpoint of either, and the outputs are those of
``cistheory train`` plus a ``flower`` section in ``results.json``.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from .._arrays import as_simplex
from ..errors import CISInputError
from ..system.aggregation import aggregation_weights
from ..train.checkpoint import save_checkpoint
from ..train.fedloop import LoopState, RoundRecord, TrainResult, draw_round, round_record
from ..train.run import (
    check_output_folder,
    checkpoint_to_resume,
    results_document,
    write_outputs,
)
from ._records import config_record, config_value, tensors
from .faults import failure_rates, fault_bias
from .parts import PartSum, delta_problem, part_state
from .problem import FlowerProblem

__all__ = ["CISStrategy", "exchange"]

LOG = logging.getLogger("cistheory.flower")
CHECKPOINT = "checkpoint.pt"


def exchange(
    grid: Grid, messages: Iterable[Message], *, timeout: float, poll: float
) -> list[Message]:
    """Push ``messages`` and pull their replies until all came or ``timeout`` seconds passed.

    (``Grid.send_and_receive`` sleeps 3 s between pulls, a floor on every round.) A message
    whose reply has not come by then has none in the list.
    """
    msgs = list(messages)
    if not msgs:
        return []
    waiting = {mid for mid in grid.push_messages(msgs) if mid}
    replies: list[Message] = []
    deadline = time.monotonic() + timeout
    while waiting:
        got = list(grid.pull_messages(waiting))
        replies += got
        waiting -= {m.metadata.reply_to_message_id for m in got}
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(poll)
    return replies


@dataclass
class _Plan:
    """What the strategy sent in one round."""

    round: int
    lr: float
    lt: np.ndarray
    weights: np.ndarray
    picks: np.ndarray
    sent: list[tuple[Message, int, int]] = field(default_factory=list)  # (message, node, exit)


class CISStrategy(Strategy):
    """The CIS algorithm on Flower: per-node exits and weights, unbiased or multiplicative sum.

    Parameters
    ----------
    problem : FlowerProblem
        The train config's experiment (:func:`cistheory.flower.problem.load_problem`).
    round_timeout : float
        Seconds to wait for a round's replies; a reply not in by then is a fault
        (``"timeout"``). Keep it well above a healthy round's time.
    poll : float
        Seconds between pulls of replies.

    Attributes
    ----------
    model : EarlyExitModel
        The global model (a copy of the experiment's; :math:`w_t`).
    state : LoopState
        Rounds done, model, the two generators and the history (what a checkpoint holds).
    faults : list of dict
        One record per lost update: ``round`` (from 1), ``node`` (index), ``cis-node`` (spec
        id), ``exit``, ``node-id`` (Flower's), ``kind`` (``error``, ``timeout``,
        ``unmapped``, ``invalid``) and, for errors, Flower's ``code`` and ``reason``.
    node_of : dict of int to int
        CIS node index to Flower node id.
    """

    def __init__(self, problem: FlowerProblem, *, round_timeout: float = 120.0, poll: float = 0.2):
        if not round_timeout > 0:
            raise CISInputError("round-timeout", round_timeout, "must be > 0 seconds")
        self.problem = problem
        self.round_timeout = float(round_timeout)
        self.poll = float(poll)
        exp = problem.experiment
        self.model = copy.deepcopy(exp.model)
        fed = exp.fed
        if fed.init_seed is not None:
            self.model.reset_parameters(torch.Generator().manual_seed(fed.init_seed))
        self.model.train()
        self.state = LoopState(
            0,
            self.model,
            np.random.default_rng(fed.selection_seed),
            torch.Generator().manual_seed(fed.batch_seed),
            [],
            None if fed.augment == "none" else torch.Generator().manual_seed(fed.augment_seed),
        )
        self.faults: list[dict[str, Any]] = []
        self.node_of: dict[int, int] = {}
        self.round_seconds: list[float] = []
        self.connect_seconds = 0.0
        self._refused: set[int] = set()
        self._plan: _Plan | None = None

    # ------------------------------------------------------------------ node identity
    def _identify(self, grid: Grid, node_ids: Iterable[int], timeout: float) -> None:
        """Ask ``node_ids`` which CIS node each stands for; map the answers."""
        msgs = [
            Message(
                RecordDict({"query": ConfigRecord({"digest": self.problem.digest})}),
                dst_node_id=int(nid),
                message_type=MessageType.QUERY,
                ttl=timeout,
            )
            for nid in node_ids
        ]
        replies = exchange(grid, msgs, timeout=timeout, poll=self.poll)
        asked = {m.metadata.message_id: int(m.metadata.dst_node_id) for m in msgs}
        for rep in replies:  # an error made by the SuperLink names the SuperLink as sender
            nid = asked.get(rep.metadata.reply_to_message_id, int(rep.metadata.src_node_id))
            if rep.has_error():  # not asked again: a restarted node comes with a new id
                LOG.warning("node %d did not say which CIS node it is: %s", nid, rep.error.reason)
                self._refused.add(nid)
                continue
            claim = config_value(config_record(rep.content, "identity"), "cis-node", str)
            i = self.problem.node_index(claim, "cis-node")
            old = self.node_of.get(i)
            if old is not None and old != nid and old in set(grid.get_node_ids()):
                if self._plan is None:  # before this run's first round: a misconfiguration
                    raise CISInputError(
                        "cis-node", claim, f"claimed by two live Flower nodes, {old} and {nid}"
                    )
                LOG.warning("CIS node %s: Flower node %d replaces %d", claim, nid, old)
            self.node_of[i] = nid

    def connect(self, grid: Grid, timeout: float) -> None:
        """Wait until every CIS node has a Flower node (or ``timeout`` seconds passed)."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while len(self.node_of) < self.problem.n_nodes and time.monotonic() < deadline:
            self.refresh(grid, timeout=max(1.0, deadline - time.monotonic()))
            if len(self.node_of) < self.problem.n_nodes:
                time.sleep(self.poll)
        self.connect_seconds = time.monotonic() - t0
        ids = self.problem.cis.node_ids
        missing = [ids[i] for i in range(self.problem.n_nodes) if i not in self.node_of]
        if len(missing) == self.problem.n_nodes:
            raise CISInputError("nodes", 0, f"no Flower node answered within {timeout} s")
        LOG.info(
            "%d of %d CIS nodes connected in %.1f s%s",
            len(self.node_of),
            self.problem.n_nodes,
            self.connect_seconds,
            f"; missing {missing}" if missing else "",
        )

    def refresh(self, grid: Grid, timeout: float | None = None) -> None:
        """Identify the Flower nodes not seen before (a restarted node has a new id)."""
        known = set(self.node_of.values()) | self._refused
        new = [nid for nid in grid.get_node_ids() if nid not in known]
        if new:
            self._identify(grid, new, self.round_timeout if timeout is None else timeout)

    # ------------------------------------------------------------------ the Strategy API
    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Round ``server_round`` (from 1): draw the exits and uniforms, one message per picked
        node. (``arrays`` and ``config`` are not used: the strategy holds the model.)"""
        exp = self.problem.experiment
        fed = exp.fed
        t = server_round - 1
        steps = fed.node_steps(self.problem.n_nodes)
        part = exp.participation
        lt_t, lr, draws = draw_round(part.q, part, steps, fed, exp.lt, t, self.state)
        plan = _Plan(round=server_round, lr=lr, lt=lt_t, weights=draws.weights, picks=draws.picks)
        picked = np.flatnonzero(plan.picks)
        for r, i in enumerate(picked):
            k = int(plan.picks[i])
            nid = self.node_of.get(int(i))
            if nid is None:
                self._fault(server_round, int(i), k, "unmapped", reason="no live Flower node")
                continue
            batch = {}
            if draws.u is not None:
                batch["u"] = draws.u[r, : int(steps[i])]
            if draws.augment is not None:
                batch["augment"] = draws.augment[r, : int(steps[i])]
            msg = self._train_message(plan, int(i), k, nid, int(steps[i]), batch)
            plan.sent.append((msg, int(i), k))
        self._plan = plan
        return [m for m, _, _ in plan.sent]

    def _train_message(
        self, plan: _Plan, i: int, k: int, nid: int, steps: int, batch: dict[str, torch.Tensor]
    ) -> Message:
        content = RecordDict(
            {
                "arrays": ArrayRecord.from_torch_state_dict(part_state(self.model, k)),
                "config": ConfigRecord(
                    {
                        "round": plan.round,
                        "cis-node": self.problem.cis.node_ids[i],
                        "exit": k,
                        "weight": float(plan.weights[i, k - 1]),
                        "lr": float(plan.lr),
                        "steps": steps,
                        "digest": self.problem.digest,
                    }
                ),
            }
        )
        if batch:
            content["batch"] = ArrayRecord.from_torch_state_dict(batch)
        return Message(
            content,
            dst_node_id=nid,
            message_type=MessageType.TRAIN,
            group_id=str(plan.round),
            ttl=self.round_timeout,
        )

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Sum :math:`w_{i,k}\\Delta_{i,k}` over the arrived updates, in node order; record
        the picked nodes whose update did not arrive as faults."""
        plan = self._plan
        if plan is None or plan.round != server_round:
            raise CISInputError("server_round", server_round, "aggregate only the round sent")
        arrived = self._sort_replies(plan, replies)
        total = PartSum.zeros(self.model)
        data = self.problem.experiment.participation.data
        for i in sorted(arrived):
            k = int(plan.picks[i])
            total.add(
                arrived[i][0],
                float(plan.weights[i, k - 1]),
                arrived[i][1],
                float(data[i]),
                part=self.model.exit_slices(k),
            )
        total.apply(self.model, self.problem.experiment.fed.server_lr)
        metrics = MetricRecord({"sent": len(plan.sent), "arrived": len(arrived)})
        return ArrayRecord.from_torch_state_dict(self.model.state_dict()), metrics

    def _sort_replies(
        self, plan: _Plan, replies: Iterable[Message]
    ) -> dict[int, tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
        """The valid updates by node; the rest recorded as faults."""
        by_id = {m.metadata.message_id: (i, k) for m, i, k in plan.sent}
        arrived: dict[int, tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = {}
        done: set[int] = set()
        for rep in replies:
            key = by_id.get(rep.metadata.reply_to_message_id)
            if key is None or key[0] in done:
                LOG.warning("round %d: a reply to no message of this round, ignored", plan.round)
                continue
            i, k = key
            done.add(i)
            if rep.has_error():
                self._fault(plan.round, i, k, "error", code=rep.error.code, reason=rep.error.reason)
                continue
            delta, bufs = tensors(rep.content, "delta"), tensors(rep.content, "buffers")
            problem = delta_problem(self.model, k, delta)
            if problem is not None:
                self._fault(plan.round, i, k, "invalid", reason=problem)
                continue
            arrived[i] = (delta, bufs)
        for _, i, k in plan.sent:
            if i not in done:
                self._fault(
                    plan.round, i, k, "timeout", reason=f"no reply in {self.round_timeout} s"
                )
        return arrived

    def _fault(self, rnd: int, i: int, k: int, kind: str, **info: Any) -> None:
        rec = {
            "round": rnd,
            "node": i,
            "cis-node": self.problem.cis.node_ids[i],
            "exit": k,
            "node-id": self.node_of.get(i),
            "kind": kind,
            **{key: (int(v) if key == "code" else str(v)) for key, v in info.items()},
        }
        self.faults.append(rec)
        LOG.warning(
            "round %d: FAULT: CIS node %s (exit %d, Flower node %s): %s%s; its update is left "
            "out, the other weights stay",
            rnd,
            rec["cis-node"],
            k,
            rec["node-id"],
            kind,
            f" ({rec['reason']})" if "reason" in rec else "",
        )

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """No federated evaluation: the objectives are recorded by :meth:`run` (see there)."""
        return []

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Nothing to aggregate (no evaluation messages)."""
        return None

    def summary(self) -> None:
        """Log the run's set-up."""
        exp = self.problem.experiment
        LOG.info(
            "CIS strategy: %d nodes, %d exits, participation %s, %s rule, %d rounds",
            self.problem.n_nodes,
            exp.model.n_exits,
            exp.participation.name,
            exp.fed.aggregation,
            exp.fed.rounds,
        )

    # ------------------------------------------------------------------ the run
    def run(
        self,
        grid: Grid,
        out_dir: str | Path,
        *,
        resume: bool = False,
        force: bool = False,
        stop_after: int | None = None,
        connect_timeout: float = 300.0,
    ) -> dict[str, Any]:
        """Train (or continue) the config's rounds; write the outputs of ``cistheory train``
        (``results.json`` with a ``flower`` section, ``history.csv``, ``model.pt``,
        ``checkpoint.pt``) to ``out_dir``; return the results. A folder holding a run is
        refused unless ``resume`` (continue it) or ``force`` (overwrite it).

        The objectives :math:`F_k(w_{t+1})` of the history (``eval_every``) are computed by
        the server on the config's node data, as the trainer does.
        """
        out = Path(out_dir)
        fed = self.problem.experiment.fed
        self._start(out, resume, force)
        self.summary()
        self.connect(grid, connect_timeout)
        start = self.state.rounds_done
        end = fed.rounds if stop_after is None else min(fed.rounds, start + int(stop_after))
        every = int(self.problem.config["checkpoint_every"])
        for rnd in range(start + 1, end + 1):
            t0 = time.monotonic()
            self.refresh(grid)
            msgs = self.configure_train(rnd, ArrayRecord(), ConfigRecord(), grid)
            replies = exchange(grid, msgs, timeout=self.round_timeout, poll=self.poll)
            _, metrics = self.aggregate_train(rnd, replies)
            self.state.history.append(self._record(rnd))
            self.state.rounds_done = rnd
            if rnd % every == 0 or rnd == end:
                self._checkpoint(out)
            self.round_seconds.append(time.monotonic() - t0)
            assert metrics is not None
            LOG.info(
                "round %d: sent %d, arrived %d, %.2f s",
                rnd,
                metrics["sent"],
                metrics["arrived"],
                self.round_seconds[-1],
            )
        return self._finish(out)

    def _start(self, out: Path, resume: bool, force: bool) -> None:
        """Refuse an output folder as ``cistheory train`` does; restore its checkpoint when
        resuming (it must be of this config and model)."""
        check_output_folder(out, resume=resume, force=force, field="out-dir")
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            return
        ck = checkpoint_to_resume(out, self.problem.digest, self.problem.experiment)
        self.model.load_state_dict(ck["model"])
        self.state.selection_rng.bit_generator.state = ck["selection_rng"]
        self.state.batch_generator.set_state(ck["batch_generator"])
        if self.state.augment_generator is not None and ck.get("augment_generator") is not None:
            self.state.augment_generator.set_state(ck["augment_generator"])
        self.state.history = [RoundRecord(**r) for r in ck["history"]]
        self.state.rounds_done = int(ck["rounds_done"])
        self.faults = list(ck["meta"].get("flower", {}).get("faults", []))
        LOG.info("resumed from %s after %d rounds", out / CHECKPOINT, self.state.rounds_done)

    def _checkpoint(self, out: Path) -> None:
        meta = {"config_digest": self.problem.digest, "flower": {"faults": self.faults}}
        save_checkpoint(out / CHECKPOINT, self.state, meta=meta)

    def _record(self, rnd: int) -> RoundRecord:
        """The round's record; :math:`F_k(w_{t+1})` and :math:`F_{\\tilde\\lambda}` when due."""
        plan = self._plan
        assert plan is not None
        exp = self.problem.experiment
        q = exp.participation.q
        return round_record(
            self.model, exp.node_data, q, exp.fed, rnd - 1, plan.lr, plan.lt, plan.picks
        )

    def flower_report(self) -> dict[str, Any]:
        """The ``flower`` section of ``results.json``: node map, faults, timings and the bias
        the lost updates imply (:func:`cistheory.flower.faults.fault_bias` at the observed
        failure rates, beside the rule's own effective objective without faults)."""
        exp = self.problem.experiment
        n = self.problem.n_nodes
        picks = [r.picks for r in self.state.history]
        rates = failure_rates(picks, self.faults, n)
        plan = self._plan
        lt = (
            plan.lt
            if plan is not None
            else as_simplex(exp.lt(0) if callable(exp.lt) else exp.lt, "lt")
        )
        w = aggregation_weights(exp.participation, lt, exp.fed.aggregation)
        ids = exp.cis.node_ids
        return {
            "node_map": {ids[i]: nid for i, nid in sorted(self.node_of.items())},
            "faults": self.faults,
            "failure_rates": {ids[i]: float(rates[i]) for i in range(n)},
            "bias_observed": fault_bias(exp.participation, w, lt, rates).as_dict(),
            "bias_without_faults": fault_bias(exp.participation, w, lt, np.zeros(n)).as_dict(),
            "connect_seconds": self.connect_seconds,
            "round_seconds": self.round_seconds,
        }

    def _finish(self, out: Path) -> dict[str, Any]:
        exp = self.problem.experiment
        res = TrainResult(
            state_dict={n: v.detach().clone() for n, v in self.model.state_dict().items()},
            history=self.state.history,
            config=exp.fed,
            q=exp.participation.q,
            rounds_done=self.state.rounds_done,
        )
        results = results_document(
            self.problem.config, self.problem.digest, replace(exp, model=self.model), res
        )
        results["flower"] = self.flower_report()
        write_outputs(out, results, res, self.model.n_exits)
        bias = results["flower"]["bias_observed"]
        LOG.info(
            "done: %d rounds, %d lost updates; with the observed failure rates the rule trains "
            "scale %.4g x (lt %s; intended %s; TV %.4g; within-exit TV %s)",
            res.rounds_done,
            len(self.faults),
            bias["scale"],
            np.round(bias["lt"], 4).tolist(),
            np.round(bias["lt_intended"], 4).tolist(),
            bias["tv_lt"],
            np.round(bias["within_tv"], 4).tolist(),
        )
        return results
