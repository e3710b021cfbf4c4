r"""The federated training loop of a CIS (``docs/theory.md``, Section 3).

One round :math:`t`:

1. the server broadcasts :math:`w_t`; each node :math:`i`, independently, picks exit
   :math:`k` with probability :math:`q_{i,k}` or idles (the *selection* generator);
2. a node that picked :math:`k` runs :math:`\tau_i` local SGD steps (step :math:`\eta_t`,
   optional momentum, weight decay :math:`\rho`) on :math:`f_{i,k}` from :math:`w_t`,
   touching only the part :math:`P_k` (minibatches from the *batch* generator);
   :math:`\Delta_{i,k} = w^{(\tau)}_{i,k} - w_t`;
3. the server applies, to every parameter (heads included),

   .. math::
       w_{t+1} = w_t + \eta_s \sum_{(i,k)\ \text{picked}} \frac{\beta_{i,k}}{q_{i,k}}
       \Delta_{i,k}, \qquad \beta_{i,k} = \tilde\lambda_k m_i / M_k,

   the unbiased rule of Lemma 1 (or :math:`\beta_{i,k} q_{i,k}`, the multiplicative rule
   of the reference release, for comparison).

The reference release's defects are not reproduced (``docs/theory.md``, Section 7): the
global model is never aliased to a node's model (every node starts from the same
broadcast :math:`w_t` and the server adds all updates after every node has finished),
and every head receives its aggregated update.

Minibatches are drawn with replacement (the i.i.d. minibatch of Lemma 2): for a picked
node, one uniform :math:`u` per sample and step gives index :math:`\lfloor u\, m_i\rfloor`;
``batch_size=None`` uses the node's full data (deterministic gradients). Momentum buffers
start at zero in every round. With ``vectorised=True`` the clients of each exit run at
once (:mod:`cistheory.train.vectorised`, ``torch.func.vmap`` of ``functional_call``) with
the same result as the plain loop up to floating-point rounding. Batch-norm statistics are
not parameters: after a round, each buffer becomes the data-weighted mean of the picked
nodes whose part contains it.

A part :math:`P_k` is read from ``model.exit_slices(k)``: whole tensors for early exits,
leading slices for ordered dropout (:mod:`cistheory.train.ordered_dropout`); a client's
update is zero outside its part's entries.

With ``nodes_per_round = n`` the round first draws :math:`n` of the :math:`N` nodes
uniformly without replacement and each drawn node picks exit :math:`k` with probability
:math:`q_{i,k} N / n`; ``q`` is then the table of inclusion probabilities
:math:`\mathbb P(i \to k)` (:func:`cistheory.system.participation.fixed_count`), so the
unbiased rule :math:`\beta/q` stays unbiased (Lemma 1 needs only these marginals; the
variance is that of Lemma 2f in ``docs/theory.md``).

Training runs on ``device`` in ``precision`` (:mod:`cistheory.train.device`); on the CPU
in float32 every number is what it has always been. The model is moved there for the run
and back to where it was at the end; every random draw comes from the run's seeded CPU
generators (selection: numpy; minibatches and augmentation: torch), so a run draws the same
picks and minibatches on every device.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from .._arrays import as_simplex
from ..errors import CISInputError
from ..system.aggregation import aggregation_weights
from ..system.participation import ROW_ATOL, Participation, check_q
from .data import AUGMENTATIONS, Dataset
from .device import check_precision, resolve_device
from .local import PartSum, local_update
from .models import EarlyExitModel
from .vectorised import ClientPlan, LocalSGD, NodeStore, StackedRuns, vectorised_clients

__all__ = [
    "FedConfig",
    "LoopState",
    "RoundRecord",
    "StepSchedule",
    "TrainResult",
    "check_per_round",
    "draw_round",
    "exit_objectives",
    "round_record",
    "run_federated",
    "select_exits",
]


@dataclass(frozen=True)
class StepSchedule:
    r"""Local step size :math:`\eta_t` of round :math:`t = 0, 1, \dots`.

    - ``"constant"``: :math:`\eta_t = \eta` (``lr``);
    - ``"inverse"``: :math:`\eta_t = b / (\gamma + t)` (``lr`` = :math:`b`, ``gamma``),
      the diminishing step of Theorem 2;
    - ``"cosine"``: :math:`\eta_t = \eta_{\min} + \tfrac12 (\eta - \eta_{\min})
      (1 + \cos(\pi t / T))` with :math:`T` the number of rounds (``final`` =
      :math:`\eta_{\min}`);
    - ``"multistep"``: :math:`\eta_t = \eta\, \phi^{|\{m \in M : m \le t\}|}`, the step
      multiplied by ``factor`` :math:`\phi` at each round of ``milestones`` :math:`M`.

    Examples
    --------
    >>> StepSchedule("inverse", lr=2.0, gamma=4.0)(1, 10)
    0.4
    >>> StepSchedule("cosine", lr=0.1, final=0.001)(10, 10)
    0.001
    >>> s = StepSchedule("multistep", lr=1.0, milestones=(2, 4), factor=0.5)
    >>> [s(t, 6) for t in range(6)]
    [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """

    kind: str = "constant"
    lr: float = 0.1
    gamma: float = 1.0
    final: float = 0.0
    milestones: tuple[int, ...] = ()
    factor: float = 0.1

    def __post_init__(self) -> None:
        kinds = ("constant", "inverse", "cosine", "multistep")
        if self.kind not in kinds:
            raise CISInputError("schedule", self.kind, f"must be one of {', '.join(kinds)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise CISInputError("lr", self.lr, "must be a finite number > 0")
        if self.kind == "inverse" and not (math.isfinite(self.gamma) and self.gamma > 0):
            raise CISInputError("gamma", self.gamma, "must be > 0 (eta_0 = b / gamma)")
        if self.kind == "cosine" and not 0 <= self.final <= self.lr:
            raise CISInputError("final", self.final, "must lie in [0, lr]")
        if self.kind == "multistep":
            ms = self.milestones
            if not ms or any(
                isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 1 for m in ms
            ) or any(b <= a for a, b in itertools.pairwise(ms)):
                raise CISInputError(
                    "milestones", list(ms), "must be increasing rounds >= 1 (at least one)"
                )
            if not (math.isfinite(self.factor) and 0 < self.factor < 1):
                raise CISInputError("factor", self.factor, "must lie in (0, 1)")

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of the fields (``milestones`` and ``factor`` only for a
        multi-step schedule)."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "lr": float(self.lr),
            "gamma": float(self.gamma),
            "final": float(self.final),
        }
        if self.kind == "multistep":
            out["milestones"] = [int(m) for m in self.milestones]
            out["factor"] = float(self.factor)
        return out

    def __call__(self, t: int, rounds: int) -> float:
        """Step size of round ``t`` (0-based) of ``rounds``."""
        if self.kind == "constant":
            return self.lr
        if self.kind == "inverse":
            return self.lr / (self.gamma + t)
        if self.kind == "multistep":
            return self.lr * self.factor ** sum(1 for m in self.milestones if m <= t)
        return self.final + 0.5 * (self.lr - self.final) * (1 + math.cos(math.pi * t / rounds))


@dataclass(frozen=True)
class FedConfig:
    r"""Hyper-parameters and seeds of :func:`run_federated`.

    Attributes
    ----------
    rounds : int
    tau : int or sequence of int
        Local SGD steps, one number or one per node.
    lr : float or StepSchedule
        Local step size (a float is a constant schedule).
    server_lr : float
        :math:`\eta_s`.
    batch_size : int or None
        Minibatch size (drawn with replacement); ``None`` = the node's full data.
    weight_decay, momentum : float
        SGD's L2 coefficient :math:`\rho` and heavy-ball momentum (buffers reset each round).
    aggregation : {"unbiased", "multiplicative"}
    selection_seed, batch_seed : int
        Seeds of the exit-selection (numpy) and minibatch (torch) generators.
    init_seed : int or None
        Re-initialise the model from this seed before round 0; ``None`` (the default)
        keeps the values it has (models are initialised from a seeded generator).
    vectorised : bool
        Run the clients of each exit at once with ``vmap``
        (:mod:`cistheory.train.vectorised`).
    eval_every : int
        Record the full-data objectives :math:`F_k(w_{t+1})` every this many rounds
        (and after the last); 0 = never.
    device : {"auto", "cpu", "cuda"}
        Where to train (:func:`cistheory.train.device.resolve_device`).
    precision : {"fp32", "bf16"}
        Float32, or bfloat16 mixed precision for the forward and backward passes.
    nodes_per_round : int or None
        Draw this many nodes per round uniformly without replacement (``q`` holds the
        inclusion probabilities, rows summing to at most ``nodes_per_round / N``); ``None``:
        every node decides independently.
    augment : {"none", "crop-flip"}
        Training-time augmentation of images (:func:`cistheory.train.data.crop_flip`).
    augment_seed : int
        Seed of the augmentation generator (torch, CPU).
    """

    rounds: int = 10
    tau: int | tuple[int, ...] = 1
    lr: float | StepSchedule = 0.1
    server_lr: float = 1.0
    batch_size: int | None = 32
    weight_decay: float = 0.0
    momentum: float = 0.0
    aggregation: str = "unbiased"
    selection_seed: int = 0
    batch_seed: int = 1
    init_seed: int | None = None
    vectorised: bool = False
    eval_every: int = 0
    device: str = "auto"
    precision: str = "fp32"
    nodes_per_round: int | None = None
    augment: str = "none"
    augment_seed: int = 4

    def __post_init__(self) -> None:
        _pos_int(self.rounds, "rounds")
        if isinstance(self.tau, int | np.integer):
            _pos_int(self.tau, "tau")
        else:
            for i, t in enumerate(self.tau):
                _pos_int(t, f"tau[{i}]")
        if self.batch_size is not None:
            _pos_int(self.batch_size, "batch_size")
        if not (math.isfinite(self.server_lr) and self.server_lr > 0):
            raise CISInputError("server_lr", self.server_lr, "must be a finite number > 0")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise CISInputError("weight_decay", self.weight_decay, "must be >= 0")
        if not 0 <= self.momentum < 1:
            raise CISInputError("momentum", self.momentum, "must lie in [0, 1)")
        if self.aggregation not in {"unbiased", "multiplicative"}:
            raise CISInputError(
                "aggregation", self.aggregation, "must be 'unbiased' or 'multiplicative'"
            )
        ev = self.eval_every
        if isinstance(ev, bool) or not isinstance(ev, int) or ev < 0:
            raise CISInputError("eval_every", self.eval_every, "must be an integer >= 0")
        if self.device not in {"auto", "cpu", "cuda"}:
            raise CISInputError("device", self.device, "use one of auto, cpu, cuda")
        check_precision(self.precision)
        if self.nodes_per_round is not None:
            _pos_int(self.nodes_per_round, "nodes_per_round")
        if self.augment not in AUGMENTATIONS:
            raise CISInputError("augment", self.augment, f"use one of {', '.join(AUGMENTATIONS)}")
        if self.augment != "none" and self.batch_size is None:
            raise CISInputError("augment", self.augment, "augmentation needs a batch_size")
        self.schedule  # noqa: B018 - validates a float lr

    @property
    def schedule(self) -> StepSchedule:
        """The step schedule (a float ``lr`` is a constant one)."""
        if isinstance(self.lr, StepSchedule):
            return self.lr
        return StepSchedule("constant", float(self.lr))

    def node_steps(self, n_nodes: int) -> np.ndarray:
        """Local steps of each node, shape (N,)."""
        if isinstance(self.tau, int | np.integer):
            return np.full(n_nodes, int(self.tau), dtype=np.int64)
        if len(self.tau) != n_nodes:
            raise CISInputError("tau", list(self.tau), f"expected one value per node ({n_nodes})")
        return np.asarray(self.tau, dtype=np.int64)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (``lr`` a float or the schedule's fields, ``tau`` an int
        or a list).

        Examples
        --------
        >>> FedConfig(rounds=2, tau=(1, 2)).as_dict()["tau"]
        [1, 2]
        """
        tau = self.tau
        return {
            "rounds": int(self.rounds),
            "tau": int(tau) if isinstance(tau, int | np.integer) else [int(t) for t in tau],
            "lr": self.lr.as_dict() if isinstance(self.lr, StepSchedule) else float(self.lr),
            "server_lr": float(self.server_lr),
            "batch_size": None if self.batch_size is None else int(self.batch_size),
            "weight_decay": float(self.weight_decay),
            "momentum": float(self.momentum),
            "aggregation": self.aggregation,
            "selection_seed": int(self.selection_seed),
            "batch_seed": int(self.batch_seed),
            "init_seed": None if self.init_seed is None else int(self.init_seed),
            "vectorised": bool(self.vectorised),
            "eval_every": int(self.eval_every),
            "device": self.device,
            "precision": self.precision,
            "nodes_per_round": None if self.nodes_per_round is None else int(self.nodes_per_round),
            "augment": self.augment,
            "augment_seed": int(self.augment_seed),
        }


def _pos_int(v: Any, name: str) -> None:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
        raise CISInputError(name, v, "must be a positive integer")


@dataclass
class RoundRecord:
    r"""What happened in one round.

    Attributes
    ----------
    round : int
        0-based round index :math:`t` (the record describes :math:`w_t \to w_{t+1}`).
    lr : float
    lt : list of float
        Training weights used in this round.
    picks : list of int
        Exit picked by each node (0 = idle).
    objectives : list of float or None
        :math:`F_k(w_{t+1})` on the nodes' full data when evaluated (``None`` for an exit
        with no training population).
    objective_lt : float or None
        :math:`F_{\tilde\lambda}(w_{t+1}) = \sum_k \tilde\lambda_k F_k(w_{t+1})`
        (``None`` when an exit with positive weight has no population).
    """

    round: int
    lr: float
    lt: list[float]
    picks: list[int]
    objectives: list[float | None] | None = None
    objective_lt: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (``picks``, the longest, last); ``RoundRecord(**d)`` reads it.

        Examples
        --------
        >>> RoundRecord(0, 0.1, [1.0], [1, 0]).as_dict()["picks"]
        [1, 0]
        """
        return {
            "round": int(self.round),
            "lr": float(self.lr),
            "lt": [float(x) for x in self.lt],
            "objectives": None
            if self.objectives is None
            else [None if v is None else float(v) for v in self.objectives],
            "objective_lt": None if self.objective_lt is None else float(self.objective_lt),
            "picks": [int(p) for p in self.picks],
        }


@dataclass
class LoopState:
    """The loop's complete state after ``rounds_done`` rounds (what a checkpoint stores)."""

    rounds_done: int
    model: EarlyExitModel
    selection_rng: np.random.Generator
    batch_generator: torch.Generator
    history: list[RoundRecord] = field(default_factory=list)
    augment_generator: torch.Generator | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary: the model's ``state_dict`` as nested lists, the selection
        generator's bit-generator state, the batch (and augmentation) generators' states as
        lists of bytes.

        (A checkpoint, :func:`cistheory.train.checkpoint.save_checkpoint`, keeps the tensors
        and their dtypes instead.)
        """
        out = {
            "rounds_done": int(self.rounds_done),
            "model": _tensors_as_lists(self.model.state_dict()),
            "selection_rng": _plain(self.selection_rng.bit_generator.state),
            "batch_generator": [int(b) for b in self.batch_generator.get_state().tolist()],
            "history": [r.as_dict() for r in self.history],
        }
        if self.augment_generator is not None:
            out["augment_generator"] = [
                int(b) for b in self.augment_generator.get_state().tolist()
            ]
        return out


@dataclass
class TrainResult:
    """Result of :func:`run_federated`: final parameters (and buffers) and the history."""

    state_dict: dict[str, Tensor]
    history: list[RoundRecord]
    config: FedConfig
    q: np.ndarray
    rounds_done: int

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the ``state_dict`` as nested lists)."""
        return {
            "rounds_done": int(self.rounds_done),
            "config": self.config.as_dict(),
            "q": np.asarray(self.q, dtype=np.float64).tolist(),
            "history": [r.as_dict() for r in self.history],
            "state_dict": _tensors_as_lists(self.state_dict),
        }


def _tensors_as_lists(tensors: Mapping[str, Tensor]) -> dict[str, Any]:
    return {name: t.detach().cpu().tolist() for name, t in tensors.items()}


def _plain(x: Any) -> Any:
    """A nested structure of dicts, lists and numpy scalars as plain Python values."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


def select_exits(
    q: np.ndarray, rng: np.random.Generator, per_round: int | None = None
) -> np.ndarray:
    r"""Each node picks exit :math:`k` with probability :math:`q_{i,k}` or idles (0).

    One uniform :math:`u_i` per node: node :math:`i` picks the first :math:`k` with
    :math:`u_i < \sum_{j \le k} q_{i,j}`, and idles when :math:`u_i \ge \sum_k q_{i,k}`.

    With ``per_round = n``: first ``n`` of the :math:`N` nodes are drawn uniformly without
    replacement (``rng.choice``), then one uniform per node as above with the conditional
    probabilities :math:`r_{i,k} = q_{i,k} N / n`; a node not drawn idles. Then
    :math:`\mathbb P(i \to k) = (n/N)\, r_{i,k} = q_{i,k}`.

    Examples
    --------
    >>> select_exits(np.array([[0.0, 1.0], [0.0, 0.0]]), np.random.default_rng(0)).tolist()
    [2, 0]
    >>> picks = select_exits(np.full((4, 1), 0.5), np.random.default_rng(0), per_round=2)
    >>> int((picks > 0).sum())
    2
    """
    n_nodes = int(q.shape[0])
    drawn = None
    if per_round is not None:
        drawn = np.zeros(n_nodes, dtype=bool)
        drawn[rng.choice(n_nodes, size=int(per_round), replace=False)] = True
        q = q * (n_nodes / int(per_round))
    u = np.asarray(rng.random(n_nodes), dtype=np.float64)
    cum = np.cumsum(q, axis=1)
    picked = (u[:, None] < cum).any(axis=1)
    if drawn is not None:
        picked &= drawn
    first = np.argmax(u[:, None] < cum, axis=1) + 1
    return np.where(picked, first, 0).astype(np.int64)


def _participation(q: np.ndarray, node_data: Sequence[Dataset]) -> Participation:
    m = np.asarray([len(d) for d in node_data], dtype=np.float64)
    for i, d in enumerate(node_data):
        if len(d) == 0 and (q[i] > 0).any():
            raise CISInputError(f"node_data[{i}]", 0, "a node that trains (q > 0) needs data")
    return Participation(q=q, data=m, name="run")


@torch.no_grad()
def exit_objectives(
    model: EarlyExitModel, node_data: Sequence[Dataset], q: ArrayLike
) -> list[float | None]:
    r"""Full-data per-exit objectives :math:`F_k(w) = \sum_{i \in E_k} (m_i/M_k) f_{i,k}(w)`.

    :math:`E_k = \{i : q_{i,k} > 0\}`; the loss is ``model.loss`` (without weight decay).
    Returns one value per exit, ``None`` for an exit whose population holds no data (its
    objective is undefined). The model is evaluated in eval mode (batch norm uses its
    running statistics).

    Examples
    --------
    >>> from cistheory.train.models import NestedLinear
    >>> m = NestedLinear(1, (1,), None, bias=False)
    >>> _ = m.blocks[0].weight.data.fill_(2.0)
    >>> ds = Dataset(torch.ones(1, 1), torch.zeros(1))
    >>> exit_objectives(m, [ds], [[1.0]])
    [2.0]
    """
    qa = check_q(q, shape=(len(node_data), model.n_exits))
    part = _participation(qa, node_data)
    frac = part.data_fraction()
    was_training = model.training
    model.eval()
    out = np.zeros(model.n_exits)
    device = next(model.parameters()).device
    try:
        for i, d in enumerate(node_data):
            ks = np.flatnonzero(qa[i] > 0)
            if ks.size == 0:
                continue
            outs = model.forward_all(d.x.to(device), upto=int(ks.max()) + 1)
            y = d.y.to(device)
            for k in ks:
                out[k] += frac[i, k] * float(model.loss(outs[k], y))
    finally:
        model.train(was_training)
    return [float(v) if mk > 0 else None for v, mk in zip(out, part.exit_data, strict=True)]


def _resolve_lt(lt: ArrayLike | Callable[[int], ArrayLike], t: int, k: int) -> np.ndarray:
    val = lt(t) if callable(lt) else lt
    arr = as_simplex(val, "lt")
    if arr.size != k:
        raise CISInputError("lt", arr.tolist(), f"expected {k} weights (one per exit)")
    return arr


def run_federated(
    model: EarlyExitModel,
    node_data: Sequence[Dataset],
    q: ArrayLike,
    lt: ArrayLike | Callable[[int], ArrayLike],
    config: FedConfig,
    *,
    callback: Callable[[LoopState], bool | None] | None = None,
    resume: Mapping[str, Any] | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    r"""Train ``model`` in place with the CIS algorithm (``docs/theory.md``, Section 3).

    .. math::
        w_{t+1} = w_t + \eta_s \sum_{(i,k)\ \text{picked}} \frac{\beta_{i,k}}{q_{i,k}}
        \Delta_{i,k}, \qquad \beta_{i,k} = \tilde\lambda_k \frac{m_i}{M_k}

    (Lemma 1: the aggregate is unbiased for the full-participation update of
    :math:`F_{\tilde\lambda}`.)

    Parameters
    ----------
    model : EarlyExitModel
        The global model; holds :math:`w_T` on return.
    node_data : list of Dataset
        Training data of each node (:math:`m_i` = its length).
    q : array (N, K)
        Participation probabilities (rows sum to at most 1).
    lt : array (K,) or callable round -> array (K,)
        Training weights :math:`\tilde\lambda` on the simplex (a callable for round-dependent
        rules such as the FLOPs-proportional schedule).
    config : FedConfig
    callback : callable, optional
        Called with the :class:`LoopState` after every round; returning ``True`` stops.
    resume : mapping, optional
        A checkpoint from :func:`cistheory.train.checkpoint.load_checkpoint`; training
        continues from it (bitwise the same as an uninterrupted run).
    stop_after : int, optional
        Stop after this many rounds of this call (the state stays resumable).

    Returns
    -------
    TrainResult

    Examples
    --------
    >>> from cistheory.train.models import NestedLinear
    >>> m = NestedLinear(1, (1,), None, bias=False)
    >>> _ = m.blocks[0].weight.data.fill_(0.0)
    >>> ds = Dataset(torch.ones(1, 1), torch.ones(1))
    >>> cfg = FedConfig(rounds=1, lr=1.0, batch_size=None, init_seed=None)
    >>> run_federated(m, [ds], [[1.0]], [1.0], cfg).state_dict["blocks.0.weight"].item()
    1.0
    """
    device = resolve_device(config.device, "device")
    setup = _LoopSetup.build(model, node_data, q, config, device)
    state = _initial_state(model, config, resume)
    origin = next(model.parameters()).device
    model.to(device)
    setup.prepare(device)
    try:
        _rounds(setup, state, lt, callback, stop_after)
    finally:
        model.to(origin)
    return TrainResult(
        state_dict={nm: v.detach().clone() for nm, v in model.state_dict().items()},
        history=state.history,
        config=config,
        q=setup.q,
        rounds_done=state.rounds_done,
    )


def _rounds(
    setup: _LoopSetup,
    state: LoopState,
    lt: ArrayLike | Callable[[int], ArrayLike],
    callback: Callable[[LoopState], bool | None] | None,
    stop_after: int | None,
) -> None:
    """Rounds from ``state.rounds_done`` to the end (or ``stop_after`` more, or a stop)."""
    config = setup.config
    start = state.rounds_done
    end = config.rounds if stop_after is None else min(config.rounds, start + int(stop_after))
    for t in range(start, end):
        rec = _one_round(setup, state, lt, t)
        state.history.append(rec)
        state.rounds_done = t + 1
        if callback is not None:
            snapshot = LoopState(
                state.rounds_done,
                setup.model,
                state.selection_rng,
                state.batch_generator,
                state.history,
                state.augment_generator,
            )
            if callback(snapshot):
                break


def check_per_round(q: np.ndarray, per_round: int | None) -> None:
    r"""With ``per_round = n`` of :math:`N` nodes, every row of ``q`` (the inclusion
    probabilities :math:`\mathbb P(i \to k)`) must sum to at most :math:`n/N`."""
    if per_round is None:
        return
    n_nodes = q.shape[0]
    if per_round > n_nodes:
        raise CISInputError("nodes_per_round", per_round, f"there are only {n_nodes} nodes")
    rows = q.sum(axis=1)
    over = rows > per_round / n_nodes + ROW_ATOL
    if over.any():
        i = int(np.argmax(over))
        raise CISInputError(
            f"q[{i}]",
            q[i].tolist(),
            f"sums to {float(rows[i])!r} > {per_round}/{n_nodes}: with {per_round} nodes per "
            "round q holds inclusion probabilities (cistheory.fixed_count)",
        )


@dataclass
class _LoopSetup:
    """What stays fixed over the rounds of :func:`run_federated`."""

    model: EarlyExitModel
    node_data: Sequence[Dataset]
    q: np.ndarray
    part: Participation
    steps: np.ndarray
    config: FedConfig
    device: torch.device
    store: NodeStore | None = None
    worker: EarlyExitModel | None = None

    @classmethod
    def build(
        cls,
        model: EarlyExitModel,
        node_data: Sequence[Dataset],
        q: ArrayLike,
        config: FedConfig,
        device: torch.device,
    ) -> _LoopSetup:
        """Validate the inputs (nothing is moved yet)."""
        n, kk = len(node_data), model.n_exits
        if n == 0:
            raise CISInputError("node_data", [], "need at least one node")
        qa = check_q(q, shape=(n, kk))
        part = _participation(qa, node_data)
        steps_all = config.node_steps(n)
        check_per_round(qa, config.nodes_per_round)
        return cls(model, node_data, qa, part, steps_all, config, device)

    def prepare(self, device: torch.device) -> None:
        """Node data resident on ``device``; the vectorised store or the loop's worker."""
        if self.config.vectorised:
            self.store = NodeStore(self.node_data, device)
        else:
            self.node_data = [d.to(device) for d in self.node_data]
            self.worker = copy.deepcopy(self.model)
            if device.type == "cuda":
                self.worker.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def _initial_state(
    model: EarlyExitModel, config: FedConfig, resume: Mapping[str, Any] | None
) -> LoopState:
    """The generators seeded, or the state of a checkpoint restored; the model in train mode."""
    sel = np.random.default_rng(config.selection_seed)
    gen = torch.Generator().manual_seed(config.batch_seed)
    aug = None if config.augment == "none" else torch.Generator().manual_seed(config.augment_seed)
    history: list[RoundRecord] = []
    start = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        sel.bit_generator.state = resume["selection_rng"]
        gen.set_state(resume["batch_generator"])
        if aug is not None and resume.get("augment_generator") is not None:
            aug.set_state(resume["augment_generator"])
        history = [RoundRecord(**r) for r in resume["history"]]
        start = int(resume["rounds_done"])
    elif config.init_seed is not None:
        origin = next(model.parameters()).device
        model.to("cpu")  # initialisation draws from a CPU generator, on every device
        model.reset_parameters(torch.Generator().manual_seed(config.init_seed))
        model.to(origin)
    model.train()
    return LoopState(start, model, sel, gen, history, aug)


def draw_round(
    q: np.ndarray,
    part: Participation,
    steps: np.ndarray,
    config: FedConfig,
    lt: ArrayLike | Callable[[int], ArrayLike],
    t: int,
    state: LoopState,
) -> tuple[np.ndarray, float, ClientPlan]:
    """Round ``t``'s training weights, step size and draws (picks, minibatch and
    augmentation uniforms, in this order from the run's generators)."""
    lt_t = _resolve_lt(lt, t, q.shape[1])
    weights = aggregation_weights(part, lt_t, config.aggregation)
    lr = config.schedule(t, config.rounds)
    picks = select_exits(q, state.selection_rng, config.nodes_per_round)
    picked = np.flatnonzero(picks)
    u_all = aug = None
    if config.batch_size is not None and picked.size:
        shape = (picked.size, int(steps[picked].max()), config.batch_size)
        u_all = torch.rand(shape, generator=state.batch_generator, dtype=torch.float64)
        if state.augment_generator is not None:
            aug = torch.rand(
                (*shape, 3), generator=state.augment_generator, dtype=torch.float64
            )
    return lt_t, lr, ClientPlan(picks, weights, u_all, aug, part.data)


def _one_round(
    setup: _LoopSetup, state: LoopState, lt: ArrayLike | Callable[[int], ArrayLike], t: int
) -> RoundRecord:
    """Round ``t``: picks, minibatch draws, the clients' updates, aggregation, the record."""
    config, model = setup.config, setup.model
    lt_t, lr, plan = draw_round(setup.q, setup.part, setup.steps, config, lt, t, state)
    if config.vectorised:
        assert setup.store is not None
        stack = StackedRuns.views_of(model)
        sgd = LocalSGD(lr, config.momentum, config.weight_decay, config.precision)
        sums = vectorised_clients(model, stack, setup.store, [plan], setup.steps, sgd)
        stack.apply(*sums, server_lr=config.server_lr)
    else:
        upd = PartSum.zeros(model)
        _loop_clients(setup, upd, plan, lr)
        upd.apply(model, config.server_lr)
    return _record(setup, t, lr, lt_t, plan.picks)


def _loop_clients(setup: _LoopSetup, upd: PartSum, plan: ClientPlan, lr: float) -> None:
    """The picked clients one after the other (torch.optim.SGD); deltas and buffers into ``upd``."""
    assert setup.worker is not None
    config = setup.config
    picked = np.flatnonzero(plan.picks)
    for r, i in enumerate(picked):
        k = int(plan.picks[i])
        delta, bufs = local_update(
            setup.model,
            setup.worker,
            k,
            setup.node_data[int(i)],
            int(setup.steps[i]),
            None if plan.u is None else plan.u[r],
            lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            augment=None if plan.augment is None else plan.augment[r],
            precision=config.precision,
        )
        upd.add(delta, float(plan.weights[i, k - 1]), bufs, setup.part.data[i])


def _record(
    setup: _LoopSetup, t: int, lr: float, lt_t: np.ndarray, picks: np.ndarray
) -> RoundRecord:
    r"""The round's record, with :math:`F_k(w_{t+1})` and :math:`F_{\tilde\lambda}` when due."""
    return round_record(setup.model, setup.node_data, setup.q, setup.config, t, lr, lt_t, picks)


def round_record(
    model: EarlyExitModel,
    node_data: Sequence[Dataset],
    q: np.ndarray,
    config: FedConfig,
    t: int,
    lr: float,
    lt_t: np.ndarray,
    picks: np.ndarray,
) -> RoundRecord:
    r"""Round ``t``'s record; :math:`F_k(w_{t+1})` of ``model`` and :math:`F_{\tilde\lambda}`
    when ``config.eval_every`` says so."""
    rec = RoundRecord(round=t, lr=lr, lt=lt_t.tolist(), picks=picks.tolist())
    if config.eval_every and ((t + 1) % config.eval_every == 0 or t + 1 == config.rounds):
        fk = exit_objectives(model, node_data, q)
        rec.objectives = fk
        used = [(float(lt_t[k]), fk[k]) for k in range(len(fk)) if lt_t[k] > 0]
        total = 0.0
        for weight, value in used:
            if value is None:  # an exit with weight but no data: F_lt is undefined
                break
            total += weight * value
        else:
            rec.objective_lt = total
    return rec
