r"""Many runs at once: ``R`` federated trainings as one vectorised program.

Runs that share the model's shape and the nodes' data (seeds, rules ``lt``, participation
tables ``q`` and aggregation rules may differ; the local optimiser, the rounds, the steps
per node, the device and the precision may not) train together: their parameters and
batch-norm buffers are stacked along a leading run dimension
(:class:`cistheory.train.vectorised.StackedRuns`), every run draws its own picks and
minibatches from its own generators exactly as :func:`cistheory.train.fedloop.run_federated`
would (:func:`cistheory.train.fedloop.draw_round`), and in each round all (run, node) pairs
that picked exit :math:`k` run their local SGD in one ``vmap`` call
(:func:`cistheory.train.vectorised.vectorised_clients`), the nodes of one exit within a run
included. Each run's server sum is formed from its own pairs only.

Equivalence: every run gets the result it would get alone with ``vectorised=True``. On the
CPU in float32 this holds bitwise (``tests/test_train_manyruns.py``): ``vmap`` computes each
pair's gradient by the same kernels whatever the number of pairs beside it, and the server
sum of a run is the same ``tensordot`` over the same pairs. On a GPU the batched kernels
(cuBLAS, cuDNN) may choose other algorithms for other batch sizes, so runs agree up to
float32 rounding accumulated over the rounds.

Memory grows with ``R`` (a copy of the parameters, the local iterates and the activations
of every pair); runs whose weights do not depend on what differs between them should be
deduplicated by the caller (the figures key trainings by their ``lt`` schedule).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ..errors import CISInputError
from ..system.participation import Participation, check_q
from .data import Dataset
from .device import resolve_device
from .fedloop import (
    FedConfig,
    LoopState,
    RoundRecord,
    TrainResult,
    _initial_state,
    _participation,
    check_per_round,
    draw_round,
    round_record,
)
from .models import EarlyExitModel
from .vectorised import ClientPlan, LocalSGD, NodeStore, StackedRuns, vectorised_clients

__all__ = ["SHARED_FIELDS", "Run", "run_many"]

SHARED_FIELDS: tuple[str, ...] = (
    "rounds",
    "tau",
    "lr",
    "server_lr",
    "batch_size",
    "weight_decay",
    "momentum",
    "device",
    "precision",
    "augment",
    "eval_every",
)
"""The fields of :class:`FedConfig` every run of one call must share."""


@dataclass(frozen=True)
class Run:
    """One training of :func:`run_many`: its ``q``, its weights ``lt`` and its config."""

    q: ArrayLike
    lt: ArrayLike | Callable[[int], ArrayLike]
    config: FedConfig


def _check_shared(runs: Sequence[Run]) -> None:
    first = runs[0].config
    for j, run in enumerate(runs[1:], start=1):
        for name in SHARED_FIELDS:
            if getattr(run.config, name) != getattr(first, name):
                raise CISInputError(
                    f"runs[{j}].config.{name}",
                    getattr(run.config, name),
                    f"runs trained at once share {name} (runs[0] has {getattr(first, name)!r})",
                )


@dataclass
class _RunState:
    q: np.ndarray
    part: Participation
    lt: ArrayLike | Callable[[int], ArrayLike]
    config: FedConfig
    loop: LoopState


# long: validation, per-run initialisation, the round loop and the results in one place
def run_many(
    model: EarlyExitModel,
    node_data: Sequence[Dataset],
    runs: Sequence[Run],
    *,
    callback: Callable[[int, list[RoundRecord]], None] | None = None,
) -> list[TrainResult]:
    r"""Train every run of ``runs`` from ``model`` at once; one :class:`TrainResult` each.

    Each run :math:`r` performs the algorithm of ``docs/theory.md``, Section 3,

    .. math::
        w^r_{t+1} = w^r_t + \eta_s \sum_{(i,k)\ \text{picked in } r} w^r_{i,k}
        \Delta^r_{i,k},

    with its own ``q``, ``lt``, aggregation rule and seeds, and starts from ``model``'s
    values re-initialised from its ``init_seed`` (when set). ``model`` itself is not
    modified.

    Parameters
    ----------
    model : EarlyExitModel
        The shape (and, for runs without ``init_seed``, the initial values).
    node_data : list of Dataset
        Training data of each node, shared by every run.
    runs : sequence of Run
        Their configs share :data:`SHARED_FIELDS`.
    callback : callable, optional
        ``callback(t, records)`` after round ``t`` with every run's record.

    Returns
    -------
    list of TrainResult
        In the order of ``runs``; state dicts on the CPU.

    Examples
    --------
    >>> import torch
    >>> from cistheory.train.models import NestedLinear
    >>> m = NestedLinear(1, (1,), None, bias=False)
    >>> ds = Dataset(torch.ones(2, 1), torch.ones(2))
    >>> cfgs = [FedConfig(rounds=1, lr=lr, batch_size=None, init_seed=0) for lr in (0.5, 0.5)]
    >>> out = run_many(m, [ds], [Run([[1.0]], [1.0], cfgs[0]), Run([[0.5]], [1.0], cfgs[1])])
    >>> [r.rounds_done for r in out]
    [1, 1]
    """
    if not runs:
        raise CISInputError("runs", [], "need at least one run")
    if not node_data:
        raise CISInputError("node_data", [], "need at least one node")
    _check_shared(runs)
    first = runs[0].config
    device = resolve_device(first.device)
    n, kk = len(node_data), model.n_exits
    steps = first.node_steps(n)
    states: list[_RunState] = []
    for j, run in enumerate(runs):
        qa = check_q(run.q, shape=(n, kk), field=f"runs[{j}].q")
        check_per_round(qa, run.config.nodes_per_round)
        part = _participation(qa, node_data)
        copy_r = copy.deepcopy(model).cpu()
        loop = _initial_state(copy_r, run.config, None)
        states.append(_RunState(qa, part, run.lt, run.config, loop))
    stack = StackedRuns.stack([s.loop.model.state_dict() for s in states], model)
    stack = StackedRuns(
        {k: v.to(device) for k, v in stack.params.items()},
        {k: v.to(device) for k, v in stack.buffers.items()},
    )
    for s in states:
        s.loop.model = model  # the per-run copies are no longer needed
    template = copy.deepcopy(model).to(device).train()
    store = NodeStore(node_data, device)
    evaluator = copy.deepcopy(model).cpu() if first.eval_every else None
    for t in range(first.rounds):
        plans: list[ClientPlan] = []
        drawn = []
        for s in states:
            lt_t, lr, plan = draw_round(s.q, s.part, steps, s.config, s.lt, t, s.loop)
            plans.append(plan)
            drawn.append((lt_t, lr))
        lr = drawn[0][1]
        sgd = LocalSGD(lr, first.momentum, first.weight_decay, first.precision)
        sums = vectorised_clients(template, stack, store, plans, steps, sgd)
        stack.apply(*sums, server_lr=first.server_lr)
        records = []
        for r, s in enumerate(states):
            if evaluator is not None:
                evaluator.load_state_dict({k: v.cpu() for k, v in stack.state_dict(r).items()})
            rec = round_record(
                evaluator if evaluator is not None else model,
                node_data,
                s.q,
                s.config,
                t,
                lr,
                drawn[r][0],
                plans[r].picks,
            )
            s.loop.history.append(rec)
            s.loop.rounds_done = t + 1
            records.append(rec)
        if callback is not None:
            callback(t, records)
    return [
        TrainResult(
            state_dict={k: v.cpu() for k, v in stack.state_dict(r).items()},
            history=s.loop.history,
            config=s.config,
            q=s.q,
            rounds_done=s.loop.rounds_done,
        )
        for r, s in enumerate(states)
    ]
