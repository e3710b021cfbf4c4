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
start at zero in every round. For buffer-free models the clients of each exit run
vectorised over nodes (``torch.func.vmap`` of ``functional_call``) with the same result
as the plain loop up to floating-point rounding. Batch-norm statistics are not parameters:
after a round, each buffer becomes the data-weighted mean of the picked nodes whose part
contains it.
"""

from __future__ import annotations

import copy
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
from ..system.participation import Participation, check_q
from .data import Dataset
from .local import batch_index, local_update
from .models import EarlyExitModel

__all__ = [
    "FedConfig",
    "LoopState",
    "RoundRecord",
    "StepSchedule",
    "TrainResult",
    "exit_objectives",
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
      :math:`\eta_{\min}`).

    Examples
    --------
    >>> StepSchedule("inverse", lr=2.0, gamma=4.0)(1, 10)
    0.4
    >>> StepSchedule("cosine", lr=0.1, final=0.001)(10, 10)
    0.001
    """

    kind: str = "constant"
    lr: float = 0.1
    gamma: float = 1.0
    final: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in {"constant", "inverse", "cosine"}:
            raise CISInputError("schedule", self.kind, "must be 'constant', 'inverse' or 'cosine'")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise CISInputError("lr", self.lr, "must be a finite number > 0")
        if self.kind == "inverse" and not (math.isfinite(self.gamma) and self.gamma > 0):
            raise CISInputError("gamma", self.gamma, "must be > 0 (eta_0 = b / gamma)")
        if self.kind == "cosine" and not 0 <= self.final <= self.lr:
            raise CISInputError("final", self.final, "must lie in [0, lr]")

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of the fields."""
        return {
            "kind": self.kind,
            "lr": float(self.lr),
            "gamma": float(self.gamma),
            "final": float(self.final),
        }

    def __call__(self, t: int, rounds: int) -> float:
        """Step size of round ``t`` (0-based) of ``rounds``."""
        if self.kind == "constant":
            return self.lr
        if self.kind == "inverse":
            return self.lr / (self.gamma + t)
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
        Run the clients of each exit with ``vmap`` (buffer-free models only).
    eval_every : int
        Record the full-data objectives :math:`F_k(w_{t+1})` every this many rounds
        (and after the last); 0 = never.
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

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary: the model's ``state_dict`` as nested lists, the selection
        generator's bit-generator state, the batch generator's state as a list of bytes.

        (A checkpoint, :func:`cistheory.train.checkpoint.save_checkpoint`, keeps the tensors
        and their dtypes instead.)
        """
        return {
            "rounds_done": int(self.rounds_done),
            "model": _tensors_as_lists(self.model.state_dict()),
            "selection_rng": _plain(self.selection_rng.bit_generator.state),
            "batch_generator": [int(b) for b in self.batch_generator.get_state().tolist()],
            "history": [r.as_dict() for r in self.history],
        }


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


def select_exits(q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    r"""Each node picks exit :math:`k` with probability :math:`q_{i,k}` or idles (0).

    One uniform :math:`u_i` per node: node :math:`i` picks the first :math:`k` with
    :math:`u_i < \sum_{j \le k} q_{i,j}`, and idles when :math:`u_i \ge \sum_k q_{i,k}`.

    Examples
    --------
    >>> select_exits(np.array([[0.0, 1.0], [0.0, 0.0]]), np.random.default_rng(0)).tolist()
    [2, 0]
    """
    u = np.asarray(rng.random(int(q.shape[0])), dtype=np.float64)
    cum = np.cumsum(q, axis=1)
    picked = (u[:, None] < cum).any(axis=1)
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
    try:
        for i, d in enumerate(node_data):
            ks = np.flatnonzero(qa[i] > 0)
            if ks.size == 0:
                continue
            outs = model.forward_all(d.x, upto=int(ks.max()) + 1)
            for k in ks:
                out[k] += frac[i, k] * float(model.loss(outs[k], d.y))
    finally:
        model.train(was_training)
    return [float(v) if mk > 0 else None for v, mk in zip(out, part.exit_data, strict=True)]


class _Padded:
    """Node data stacked into padded tensors (for the vectorised clients)."""

    def __init__(self, node_data: Sequence[Dataset]) -> None:
        self.m = torch.as_tensor([len(d) for d in node_data], dtype=torch.int64)
        m_max = int(self.m.max())
        x0, y0 = node_data[0].x, node_data[0].y
        self.x = x0.new_zeros((len(node_data), m_max, *x0.shape[1:]))
        self.y = y0.new_zeros((len(node_data), m_max, *y0.shape[1:]))
        self.mask = torch.zeros(len(node_data), m_max, dtype=x0.dtype)
        for i, d in enumerate(node_data):
            self.x[i, : len(d)] = d.x
            self.y[i, : len(d)] = d.y
            self.mask[i, : len(d)] = 1.0


def _local_vmap(
    model: EarlyExitModel,
    k: int,
    nodes: np.ndarray,
    padded: _Padded,
    steps: np.ndarray,
    u: Tensor | None,
    lr: float,
    cfg: FedConfig,
) -> dict[str, Tensor]:
    """Local SGD of the nodes ``nodes`` (all on exit ``k``) at once; returns stacked Delta."""
    from torch.func import functional_call, grad, vmap

    names = model.exit_parameter_names(k)
    glob = {n: p.detach() for n, p in model.named_parameters() if n in set(names)}
    g = len(nodes)
    p = {n: glob[n].unsqueeze(0).expand(g, *glob[n].shape).clone() for n in names}
    buf = {n: torch.zeros_like(v) for n, v in p.items()}
    node_t = torch.as_tensor(nodes)

    def loss_one(pk: dict[str, Tensor], xb: Tensor, yb: Tensor, wb: Tensor) -> Tensor:
        out = functional_call(model, pk, (xb,), {"exit": k})
        return (model.loss(out, yb, reduction="none") * wb).sum() / wb.sum()

    gfn = vmap(grad(loss_one))
    m = padded.m[node_t]
    for s in range(int(steps.max())):
        if u is None:
            xb, yb, wb = padded.x[node_t], padded.y[node_t], padded.mask[node_t]
        else:
            idx = batch_index(u[:, s], m)
            rows = node_t.view(-1, 1)
            xb, yb = padded.x[rows, idx], padded.y[rows, idx]
            wb = torch.ones(idx.shape, dtype=padded.mask.dtype)
        grads = gfn(p, xb, yb, wb)
        active = torch.as_tensor(steps > s)
        for n in names:
            d = grads[n] + cfg.weight_decay * p[n] if cfg.weight_decay else grads[n]
            shape = (g, *([1] * (p[n].dim() - 1)))
            act = active.view(shape)
            if cfg.momentum:
                buf[n] = torch.where(act, cfg.momentum * buf[n] + d, buf[n])
                d = buf[n]
            p[n] = torch.where(act, p[n] - lr * d, p[n])
    return {n: p[n] - glob[n].unsqueeze(0) for n in names}


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
    setup = _LoopSetup.build(model, node_data, q, config)
    state = _initial_state(model, config, resume)
    start = state.rounds_done
    end = config.rounds if stop_after is None else min(config.rounds, start + int(stop_after))
    for t in range(start, end):
        rec = _one_round(setup, state, lt, t)
        state.history.append(rec)
        state.rounds_done = t + 1
        if callback is not None:
            snapshot = LoopState(
                state.rounds_done, model, state.selection_rng, state.batch_generator, state.history
            )
            if callback(snapshot):
                break
    return TrainResult(
        state_dict={nm: v.detach().clone() for nm, v in model.state_dict().items()},
        history=state.history,
        config=config,
        q=setup.q,
        rounds_done=state.rounds_done,
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
    padded: _Padded | None
    worker: EarlyExitModel | None

    @classmethod
    def build(
        cls, model: EarlyExitModel, node_data: Sequence[Dataset], q: ArrayLike, config: FedConfig
    ) -> _LoopSetup:
        n, kk = len(node_data), model.n_exits
        if n == 0:
            raise CISInputError("node_data", [], "need at least one node")
        qa = check_q(q, shape=(n, kk))
        part = _participation(qa, node_data)
        steps_all = config.node_steps(n)
        if config.vectorised and any(True for _ in model.buffers()):
            raise CISInputError(
                "vectorised", True, "the model has buffers (batch norm); use the loop"
            )
        padded = _Padded(node_data) if config.vectorised else None
        worker = None if config.vectorised else copy.deepcopy(model)
        return cls(model, node_data, qa, part, steps_all, config, padded, worker)


def _initial_state(
    model: EarlyExitModel, config: FedConfig, resume: Mapping[str, Any] | None
) -> LoopState:
    """The generators seeded, or the state of a checkpoint restored; the model in train mode."""
    sel = np.random.default_rng(config.selection_seed)
    gen = torch.Generator().manual_seed(config.batch_seed)
    history: list[RoundRecord] = []
    start = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        sel.bit_generator.state = resume["selection_rng"]
        gen.set_state(resume["batch_generator"])
        history = [RoundRecord(**r) for r in resume["history"]]
        start = int(resume["rounds_done"])
    elif config.init_seed is not None:
        model.reset_parameters(torch.Generator().manual_seed(config.init_seed))
    model.train()
    return LoopState(start, model, sel, gen, history)


def _one_round(
    setup: _LoopSetup, state: LoopState, lt: ArrayLike | Callable[[int], ArrayLike], t: int
) -> RoundRecord:
    """Round ``t``: picks, minibatch draws, the clients' updates, aggregation, the record."""
    config, model = setup.config, setup.model
    lt_t = _resolve_lt(lt, t, model.n_exits)
    weights = aggregation_weights(setup.part, lt_t, config.aggregation)
    lr = config.schedule(t, config.rounds)
    picks = select_exits(setup.q, state.selection_rng)
    picked = np.flatnonzero(picks)
    u_all = None
    if config.batch_size is not None and picked.size:
        u_all = torch.rand(
            (picked.size, int(setup.steps[picked].max()), config.batch_size),
            generator=state.batch_generator,
            dtype=torch.float64,
        )
    upd = _Update.zeros(model)
    if config.vectorised:
        _vmap_clients(setup, upd, picks, picked, u_all, weights, lr)
    else:
        _loop_clients(setup, upd, picks, picked, u_all, weights, lr)
    upd.apply(model, config.server_lr)
    return _record(setup, t, lr, lt_t, picks)


@dataclass
class _Update:
    """The server's aggregate of one round: parameter deltas and batch-norm statistics."""

    agg: dict[str, Tensor]
    buf_sum: dict[str, Tensor] = field(default_factory=dict)
    buf_mass: dict[str, float] = field(default_factory=dict)

    @classmethod
    def zeros(cls, model: EarlyExitModel) -> _Update:
        return cls({nm: torch.zeros_like(p) for nm, p in model.named_parameters()})

    def add_buffers(self, bufs: Mapping[str, Tensor], mass: float) -> None:
        """Floating statistics: ``mass``-weighted sums; integer counters: the maximum."""
        for nm, b in bufs.items():
            if b.is_floating_point():
                self.buf_sum[nm] = self.buf_sum.get(nm, torch.zeros_like(b)) + mass * b
                self.buf_mass[nm] = self.buf_mass.get(nm, 0.0) + float(mass)
            else:
                self.buf_sum[nm] = torch.maximum(self.buf_sum.get(nm, b), b)

    def apply(self, model: EarlyExitModel, server_lr: float) -> None:
        r""":math:`w \leftarrow w + \eta_s\,\text{agg}`; buffers to the weighted means."""
        params = dict(model.named_parameters())
        buffers = dict(model.named_buffers())
        with torch.no_grad():
            for nm, p in params.items():
                p.add_(self.agg[nm], alpha=server_lr)
            for nm, b in self.buf_sum.items():
                buffers[nm].copy_(b / self.buf_mass[nm] if nm in self.buf_mass else b)


def _vmap_clients(
    setup: _LoopSetup,
    upd: _Update,
    picks: np.ndarray,
    picked: np.ndarray,
    u_all: Tensor | None,
    weights: np.ndarray,
    lr: float,
) -> None:
    """The picked clients of each exit at once (vmap); their weighted deltas into ``upd``."""
    assert setup.padded is not None
    for k in range(1, setup.model.n_exits + 1):
        rows = np.flatnonzero(picks[picked] == k)
        if rows.size == 0:
            continue
        nodes = picked[rows]
        u_k = None if u_all is None else u_all[torch.as_tensor(rows)]
        deltas = _local_vmap(
            setup.model, k, nodes, setup.padded, setup.steps[nodes], u_k, lr, setup.config
        )
        w = torch.as_tensor(weights[nodes, k - 1], dtype=torch.float64)
        for nm, dl in deltas.items():
            upd.agg[nm] += torch.tensordot(w.to(dl.dtype), dl, dims=1)


def _loop_clients(
    setup: _LoopSetup,
    upd: _Update,
    picks: np.ndarray,
    picked: np.ndarray,
    u_all: Tensor | None,
    weights: np.ndarray,
    lr: float,
) -> None:
    """The picked clients one after the other (torch.optim.SGD); deltas and buffers into ``upd``."""
    assert setup.worker is not None
    for r, i in enumerate(picked):
        k = int(picks[i])
        u_i = None if u_all is None else u_all[r]
        delta, bufs = local_update(
            setup.model,
            setup.worker,
            k,
            setup.node_data[int(i)],
            int(setup.steps[i]),
            u_i,
            lr,
            momentum=setup.config.momentum,
            weight_decay=setup.config.weight_decay,
        )
        w_ik = float(weights[i, k - 1])
        for nm, dl in delta.items():
            upd.agg[nm] += w_ik * dl
        upd.add_buffers(bufs, setup.part.data[i])


def _record(
    setup: _LoopSetup, t: int, lr: float, lt_t: np.ndarray, picks: np.ndarray
) -> RoundRecord:
    r"""The round's record, with :math:`F_k(w_{t+1})` and :math:`F_{\tilde\lambda}` when due."""
    config = setup.config
    rec = RoundRecord(round=t, lr=lr, lt=lt_t.tolist(), picks=picks.tolist())
    if config.eval_every and ((t + 1) % config.eval_every == 0 or t + 1 == config.rounds):
        fk = exit_objectives(setup.model, setup.node_data, setup.q)
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
