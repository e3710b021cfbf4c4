r"""Vectorised clients: the local updates of many (run, node) pairs at once.

One round of ``R`` runs that share a model shape and the nodes' data: for each exit
:math:`k`, every pair (run :math:`r`, node :math:`i`) that picked :math:`k` starts from run
:math:`r`'s broadcast :math:`w^r_t` and runs its :math:`\tau_i` local SGD steps on its own
minibatches; all these pairs run as one program, ``torch.func.vmap`` of ``grad`` of
``functional_call`` over stacked per-pair parameters (and batch-norm buffers), with the
steps and updates of :func:`cistheory.train.local.local_update` written entry-wise
(:math:`d = g + \rho w`, :math:`b \leftarrow \mu b + d`, :math:`w \leftarrow w - \eta b`). A
pair with fewer steps than the longest keeps its parameters and buffers once it is done.
The server's sum for run :math:`r` is formed per exit from its own pairs,

.. math:: a^r \mathrel{+}= \sum_{i \to k} w^r_{i,k}\, \Delta^r_{i,k} ,

one ``tensordot`` per run and exit over exactly the pairs a single run of :math:`r` would
have, so that each run's arithmetic is the one it has alone: on the CPU the per-pair
gradients of ``vmap`` do not depend on how many pairs run beside them, and ``R`` runs at once
give each run bitwise its single-run result (``tests/test_train_manyruns.py``). Batch-norm
statistics (not parameters) of run :math:`r` become the data-weighted mean over its picked
nodes whose part holds them, as in the plain loop.

Node data is stored once on the device, flat, with per-node offsets: a minibatch of a pair
is gathered by index ``offset_i + floor(u m_i)``, a full batch by a padded index with a
mask. Everything here runs on the device of the stacked parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from .data import Dataset, crop_flip
from .device import autocast
from .local import batch_index, mask_to_part
from .models import EarlyExitModel

__all__ = ["ClientPlan", "NodeStore", "StackedRuns", "vectorised_clients"]


class NodeStore:
    """The nodes' data concatenated on one device, with each node's offset and size."""

    def __init__(self, node_data: Sequence[Dataset], device: torch.device) -> None:
        self.sizes = torch.as_tensor([len(d) for d in node_data], dtype=torch.int64)
        self.offsets = torch.cumsum(self.sizes, 0) - self.sizes
        self.x = torch.cat([d.x for d in node_data]).to(device)
        self.y = torch.cat([d.y for d in node_data]).to(device)
        self.device = device
        self._sizes_dev = self.sizes.to(device)
        self._offsets_dev = self.offsets.to(device)

    def minibatch(self, nodes: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Samples ``floor(u m_i)`` of each pair's node: ``x`` (P, B, ...), ``y``, weights."""
        idx = batch_index(u, self._sizes_dev[nodes])
        flat = self._offsets_dev[nodes].view(-1, 1) + idx
        return (
            self.x[flat],
            self.y[flat],
            torch.ones(idx.shape, dtype=self.x.dtype, device=self.device),
        )

    def full(self, nodes: Tensor, width: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Every sample of each pair's node, padded with zeros of weight 0 to ``width`` (by
        default the size of the largest node of all: one padded width for every exit, hence
        the same reductions whichever nodes train)."""
        sizes = self._sizes_dev[nodes]
        width = int(self.sizes.max()) if width is None else int(width)
        ar = torch.arange(width, device=self.device)
        valid = ar.view(1, -1) < sizes.view(-1, 1)
        flat = self._offsets_dev[nodes].view(-1, 1) + torch.minimum(
            ar.view(1, -1), sizes.view(-1, 1) - 1
        )
        shape = (*valid.shape, *([1] * (self.x.dim() - 1)))
        x = torch.where(valid.view(shape), self.x[flat], 0)
        y = torch.where(valid, self.y[flat], 0)
        return x, y, valid.to(self.x.dtype)


@dataclass
class StackedRuns:
    """Parameters and buffers of ``R`` runs, stacked along a leading run dimension."""

    params: dict[str, Tensor]
    buffers: dict[str, Tensor]

    @classmethod
    def views_of(cls, model: EarlyExitModel) -> StackedRuns:
        """One run whose tensors are views of ``model``'s (updates write through)."""
        return cls(
            {n: p.detach().unsqueeze(0) for n, p in model.named_parameters()},
            {n: b.detach().unsqueeze(0) for n, b in model.named_buffers()},
        )

    @classmethod
    def stack(cls, states: Sequence[Mapping[str, Tensor]], model: EarlyExitModel) -> StackedRuns:
        """Stack the ``state_dict``-s of several runs of ``model``'s shape."""
        names = [n for n, _ in model.named_parameters()]
        bufs = [n for n, _ in model.named_buffers()]
        return cls(
            {n: torch.stack([s[n].detach() for s in states]) for n in names},
            {n: torch.stack([s[n].detach() for s in states]) for n in bufs},
        )

    @torch.no_grad()
    def apply(
        self,
        agg: Mapping[str, Tensor],
        buf_sum: Mapping[str, Tensor],
        buf_mass: Mapping[str, Tensor],
        *,
        server_lr: float,
    ) -> None:
        r""":math:`w^r \leftarrow w^r + \eta_s a^r` for every run; each run's buffers to the
        data-weighted means of its pairs (integer counters to their maximum); a run none of
        whose pairs held a buffer keeps it."""
        for nm, p in self.params.items():
            p.add_(agg[nm], alpha=server_lr)
        for nm, total in buf_sum.items():
            if nm not in buf_mass:
                self.buffers[nm].copy_(total)
                continue
            for r, mass in enumerate(buf_mass[nm].tolist()):
                if mass > 0:
                    self.buffers[nm][r].copy_(total[r] / mass)

    def state_dict(self, r: int) -> dict[str, Tensor]:
        """Run ``r``'s parameters and buffers (copies)."""
        out = {n: v[r].clone() for n, v in self.params.items()}
        out.update({n: v[r].clone() for n, v in self.buffers.items()})
        return out


@dataclass
class ClientPlan:
    """One run's draws for a round: who trains which exit, minibatches, server weights.

    Attributes
    ----------
    picks : ndarray (N,)
        Exit picked by each node (0 = idle).
    weights : ndarray (N, K)
        Server pair weights :math:`w_{i,k}`.
    u : Tensor (picked, S, B) or None
        Minibatch uniforms of the picked nodes in node order (``None``: full batch).
    augment : Tensor (picked, S, B, 3) or None
        Crop-and-flip uniforms of the picked nodes (``None``: no augmentation).
    data : ndarray (N,)
        Node sample counts (the masses of the batch-norm means).
    """

    picks: np.ndarray
    weights: np.ndarray
    u: Tensor | None
    augment: Tensor | None = None
    data: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True)
class LocalSGD:
    """The local optimiser's settings shared by every pair."""

    lr: float
    momentum: float
    weight_decay: float
    precision: str = "fp32"


def _pairs(plans: Sequence[ClientPlan], k: int) -> tuple[list[int], list[int], list[int]]:
    """(run, node, row of the node among its run's picked) of every pair at exit ``k``."""
    runs, nodes, rows = [], [], []
    for r, plan in enumerate(plans):
        picked = np.flatnonzero(plan.picks)
        for row, i in enumerate(picked):
            if plan.picks[i] == k:
                runs.append(r)
                nodes.append(int(i))
                rows.append(row)
    return runs, nodes, rows


def _gather_draws(
    plans: Sequence[ClientPlan], runs: list[int], rows: list[int], attr: str, steps: int
) -> Tensor | None:
    """Each pair's uniforms (``u`` or ``augment``), padded with zeros to ``steps`` steps."""
    first = getattr(plans[runs[0]], attr)
    if first is None:
        return None
    parts = []
    for r, row in zip(runs, rows, strict=True):
        t = getattr(plans[r], attr)[row]
        if t.shape[0] < steps:
            t = torch.cat([t, t.new_zeros((steps - t.shape[0], *t.shape[1:]))])
        parts.append(t[:steps])
    return torch.stack(parts)


def vectorised_clients(
    model: EarlyExitModel,
    stack: StackedRuns,
    store: NodeStore,
    plans: Sequence[ClientPlan],
    steps: np.ndarray,
    sgd: LocalSGD,
) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
    """One round's client work of every run; returns the server sums and buffer statistics.

    Returns
    -------
    agg : dict name -> Tensor (R, ...)
        :math:`\\sum_{(i,k)\\ \\text{picked}} w_{i,k} \\Delta_{i,k}` of each run (zeros where
        nothing trained).
    buf_sum : dict name -> Tensor (R, ...)
        Mass-weighted sums of the floating buffers (integer buffers: their maximum).
    buf_mass : dict name -> Tensor (R,)
        The masses (sample counts) behind each buffer sum; 0 where no pair held it.
    """
    agg = {n: torch.zeros_like(v) for n, v in stack.params.items()}
    buf_sum: dict[str, Tensor] = {}
    buf_mass: dict[str, Tensor] = {}
    for k in range(1, model.n_exits + 1):
        runs_k, nodes_k, rows_k = _pairs(plans, k)
        for runs, nodes, rows, width in _groups(stack, store, plans, runs_k, nodes_k, rows_k):
            node_steps = steps[np.asarray(nodes)]
            s_max = int(node_steps.max())
            u = _gather_draws(plans, runs, rows, "u", s_max)
            aug = _gather_draws(plans, runs, rows, "augment", s_max)
            deltas, bufs = _local_vmap(
                model, k, stack, store, runs, nodes, node_steps, u, aug, sgd, width
            )
            _aggregate(model, k, plans, runs, nodes, deltas, agg)
            _buffer_stats(plans, runs, nodes, bufs, stack, buf_sum, buf_mass)
    return agg, buf_sum, buf_mass


def _groups(
    stack: StackedRuns,
    store: NodeStore,
    plans: Sequence[ClientPlan],
    runs: list[int],
    nodes: list[int],
    rows: list[int],
) -> list[tuple[list[int], list[int], list[int], int | None]]:
    """The pairs of one exit as vmapped groups: one group, except for full-batch gradients of
    a model with batch statistics, whose pairs are grouped by node size so that no padded
    sample enters a batch's mean and variance."""
    if not runs:
        return []
    if not stack.buffers or plans[runs[0]].u is not None:
        return [(runs, nodes, rows, None)]
    sizes = store.sizes[torch.as_tensor(nodes)].tolist()
    out: list[tuple[list[int], list[int], list[int], int | None]] = []
    for size in sorted(set(sizes)):
        sel = [j for j, m in enumerate(sizes) if m == size]
        out.append(([runs[j] for j in sel], [nodes[j] for j in sel], [rows[j] for j in sel], size))
    return out


def _aggregate(
    model: EarlyExitModel,
    k: int,
    plans: Sequence[ClientPlan],
    runs: list[int],
    nodes: list[int],
    deltas: dict[str, Tensor],
    agg: dict[str, Tensor],
) -> None:
    """Each run's weighted sum of its pairs' deltas at exit ``k``, added to ``agg[r]``."""
    part = model.exit_slices(k)
    run_arr = np.asarray(runs)
    whole = bool((run_arr == run_arr[0]).all())
    for r in dict.fromkeys(runs):
        sel = np.flatnonzero(run_arr == r)
        w = torch.as_tensor(plans[r].weights[np.asarray(nodes)[sel], k - 1], dtype=torch.float64)
        for nm, dl in deltas.items():
            mine = dl if whole else dl[int(sel[0]) : int(sel[-1]) + 1].clone()
            mine = mask_to_part(mine, (slice(None), *part[nm]) if part[nm] else ())
            agg[nm][r] += torch.tensordot(w.to(device=mine.device, dtype=mine.dtype), mine, dims=1)


def _buffer_stats(
    plans: Sequence[ClientPlan],
    runs: list[int],
    nodes: list[int],
    bufs: dict[str, Tensor],
    stack: StackedRuns,
    buf_sum: dict[str, Tensor],
    buf_mass: dict[str, Tensor],
) -> None:
    """Batch-norm statistics of the pairs into per-run sums: floats weighted by the node's
    sample count, integer counters by their maximum."""
    if not bufs:
        return
    run_t = torch.as_tensor(runs)
    mass = torch.as_tensor(
        [float(plans[r].data[i]) for r, i in zip(runs, nodes, strict=True)], dtype=torch.float64
    )
    n_runs = next(iter(stack.params.values())).shape[0]
    for nm, b in bufs.items():
        dev = b.device
        if b.is_floating_point():
            total = buf_sum.setdefault(nm, torch.zeros_like(stack.buffers[nm]))
            w = mass.to(device=dev, dtype=b.dtype).view(-1, *([1] * (b.dim() - 1)))
            total.index_add_(0, run_t.to(dev), w * b)
            m = buf_mass.setdefault(nm, torch.zeros(n_runs, dtype=torch.float64))
            m.index_add_(0, run_t, mass)
        else:
            cur = buf_sum.setdefault(nm, stack.buffers[nm].clone())
            for j, r in enumerate(runs):
                cur[r] = torch.maximum(cur[r], b[j])


# long: one vmapped local-SGD loop (draws, forward/backward, entry-wise update, buffers)
def _local_vmap(
    model: EarlyExitModel,
    k: int,
    stack: StackedRuns,
    store: NodeStore,
    runs: list[int],
    nodes: list[int],
    steps: np.ndarray,
    u: Tensor | None,
    aug: Tensor | None,
    sgd: LocalSGD,
    width: int | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Local SGD of the pairs ``(runs[j], nodes[j])`` (all on exit ``k``); stacked deltas and
    the pairs' buffers after their steps."""
    from torch.func import functional_call, grad, vmap

    names = model.exit_parameter_names(k)
    bnames = model.exit_buffer_names(k)
    device = store.device
    whole = all(r == runs[0] for r in runs)
    run_t = torch.as_tensor(runs, device=device)
    g = len(runs)
    if whole:
        glob = {n: stack.params[n][runs[0]].unsqueeze(0) for n in names}
        p = {n: glob[n].expand(g, *glob[n].shape[1:]).clone() for n in names}
        b = {
            n: stack.buffers[n][runs[0]].unsqueeze(0).expand(g, *stack.buffers[n].shape[1:]).clone()
            for n in bnames
        }
    else:
        glob = {n: stack.params[n].index_select(0, run_t) for n in names}
        p = {n: glob[n].clone() for n in names}
        b = {n: stack.buffers[n].index_select(0, run_t) for n in bnames}
    buf = {n: torch.zeros_like(v) for n, v in p.items()}
    node_t = torch.as_tensor(nodes, device=device)
    precision = sgd.precision

    def loss_one(
        pk: dict[str, Tensor], bk: dict[str, Tensor], xb: Tensor, yb: Tensor, wb: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        out = functional_call(model, {**pk, **bk}, (xb,), {"exit": k})
        if precision != "fp32":
            out = out.float()
        return (model.loss(out, yb, reduction="none") * wb).sum() / wb.sum(), bk

    gfn = vmap(grad(loss_one, has_aux=True))
    u_dev = None if u is None else u.to(device)
    full = store.full(node_t, width) if u is None else None
    for s in range(int(steps.max())):
        if u_dev is None:
            assert full is not None
            xb, yb, wb = full
        else:
            xb, yb, wb = store.minibatch(node_t, u_dev[:, s])
        if aug is not None:
            xb = crop_flip(xb, aug[:, s])
        active = torch.as_tensor(steps > s, device=device)
        before = {n: v.clone() for n, v in b.items()} if b else {}
        with autocast(precision, device):
            grads, b = gfn(p, b, xb, yb, wb)
        for n in names:
            d = grads[n] + sgd.weight_decay * p[n] if sgd.weight_decay else grads[n]
            shape = (g, *([1] * (p[n].dim() - 1)))
            act = active.view(shape)
            if sgd.momentum:
                buf[n] = torch.where(act, sgd.momentum * buf[n] + d, buf[n])
                d = buf[n]
            p[n] = torch.where(act, p[n] - sgd.lr * d, p[n])
        for n in before:
            b[n] = torch.where(active.view(g, *([1] * (b[n].dim() - 1))), b[n], before[n])
    return {n: p[n] - glob[n] for n in names}, b
