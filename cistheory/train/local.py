r"""One node's local update: :math:`\tau` SGD steps on one exit's loss (``docs/theory.md``,
Section 3, step 2).

The one implementation of a client's work, used by the in-process loop
(:func:`cistheory.train.fedloop.run_federated`, plain mode) and by the Flower client
(:mod:`cistheory.flower`): given the global model, the exit :math:`k`, the node's data and the
uniforms that pick its minibatches, it returns :math:`\Delta_{i,k} = w^{(\tau)} - w_t` on the
parameters of the part :math:`P_k` and the part's batch-norm buffers after the steps.
:class:`PartSum` is the server's side of the same round, shared by both as well.

It runs where the models are (``model`` and ``worker`` on the same device, the node's data
there or on the CPU; the uniforms always come from a CPU generator), in float32 or in
bfloat16 mixed precision (:func:`cistheory.train.device.autocast`). On the CPU in float32
it computes exactly what it always has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..errors import CISInputError
from .data import Dataset, crop_flip
from .device import autocast
from .models import EarlyExitModel

__all__ = ["PartSum", "batch_index", "local_update", "mask_to_part"]


def batch_index(u: Tensor, m: Tensor) -> Tensor:
    """Indices ``floor(u * m)`` (clamped below ``m``) for uniforms ``u`` of shape (..., B).

    Examples
    --------
    >>> batch_index(torch.tensor([[0.0, 0.5, 0.999]]), torch.tensor([4])).tolist()
    [[0, 2, 3]]
    """
    mm = m.to(u.dtype).view(-1, *([1] * (u.dim() - 1)))
    return torch.minimum((u * mm).to(torch.int64), m.view_as(mm) - 1)


def mask_to_part(delta: Tensor, index: tuple[slice, ...]) -> Tensor:
    r"""``delta`` on the entries ``index`` of the part :math:`P_k` and zero elsewhere
    (``delta`` itself when the part holds the whole tensor, ``index == ()``).

    Entries outside a part never influence the entries inside it during local SGD (the
    forward pass reads only the part; weight decay and momentum act entry by entry), so
    zeroing them after the steps is exactly training the part alone.

    Examples
    --------
    >>> mask_to_part(torch.ones(2, 3), (slice(0, 1), slice(0, 2))).tolist()
    [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    """
    if index == ():
        return delta
    out = torch.zeros_like(delta)
    out[index] = delta[index]
    return out


def _to_device(x: Tensor, device: torch.device) -> Tensor:
    """A minibatch on the model's device, channels-last for images on a GPU."""
    x = x.to(device, non_blocking=True)
    if device.type == "cuda" and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def local_update(
    model: EarlyExitModel,
    worker: EarlyExitModel,
    k: int,
    data: Dataset,
    steps: int,
    u: Tensor | None,
    lr: float,
    *,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    augment: Tensor | None = None,
    precision: str = "fp32",
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    r"""One node's local SGD on exit ``k`` (torch.optim.SGD); returns ``(Delta, buffers)``.

    .. math::
        w^{(0)} = w_t, \qquad w^{(s+1)} = w^{(s)} - \eta\, g^{(s)}_{i,k}, \qquad
        \Delta_{i,k} = w^{(\tau)} - w_t ,

    touching only the parameters of the part :math:`P_k` (with momentum and weight decay as
    torch.optim.SGD applies them).

    Parameters
    ----------
    model : EarlyExitModel
        The global model :math:`w_t` (not modified).
    worker : EarlyExitModel
        A model of the same shape, overwritten with :math:`w_t` and trained in place.
    k : int
        The exit, from 1.
    data : Dataset
        The node's data.
    steps : int
        Local steps :math:`\tau`.
    u : Tensor of shape (steps, B), or None
        Uniforms that pick each step's minibatch (``batch_index``); ``None`` is full batch.
    lr : float
        Local step :math:`\eta`.
    momentum, weight_decay : float
        As in torch.optim.SGD.
    augment : Tensor of shape (steps, B, 3), or None
        Uniforms of the random crop and flip of each minibatch image
        (:func:`cistheory.train.data.crop_flip`); ``None``: no augmentation.
    precision : {"fp32", "bf16"}
        Float32, or bfloat16 autocast for the forward and backward passes.

    Returns
    -------
    delta : dict of str to Tensor
        :math:`\Delta_{i,k}` by parameter name (the names of
        ``model.exit_parameter_names(k)``), zero outside the part's entries
        (``model.exit_slices(k)``).
    buffers : dict of str to Tensor
        The part's buffers (batch-norm statistics) after the steps.

    Examples
    --------
    >>> from cistheory.train.models import NestedLinear
    >>> g = torch.Generator().manual_seed(0)
    >>> m = NestedLinear(2, (1, 2), n_classes=None, bias=False, generator=g)
    >>> data = Dataset(torch.ones(4, 2), torch.zeros(4))
    >>> delta, _ = local_update(m, NestedLinear(2, (1, 2), n_classes=None, bias=False), 1,
    ...                         data, 1, None, 0.1)
    >>> sorted(delta) == sorted(m.exit_parameter_names(1))
    True
    """
    worker.load_state_dict(model.state_dict())
    worker.train()
    names = model.exit_parameter_names(k)
    params = dict(worker.named_parameters())
    opt = torch.optim.SGD(
        [params[n] for n in names], lr=lr, momentum=momentum, weight_decay=weight_decay
    )
    device = params[names[0]].device
    m = torch.tensor([len(data)])
    for s in range(steps):
        if u is None:
            xb, yb = data.x, data.y
        else:
            idx = batch_index(u[s], m).to(data.x.device)
            xb, yb = data.x[idx], data.y[idx]
        if augment is not None:
            xb = crop_flip(xb, augment[s])
        xb, yb = _to_device(xb, device), yb.to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        if precision == "fp32":
            worker.loss(worker(xb, exit=k), yb).backward()
        else:
            with autocast(precision, device):
                out = worker(xb, exit=k)
            worker.loss(out.float(), yb).backward()
        opt.step()
    glob = dict(model.named_parameters())
    part = model.exit_slices(k)
    delta = {n: mask_to_part(params[n].detach() - glob[n].detach(), part[n]) for n in names}
    wbuf = dict(worker.named_buffers())
    bufs = {n: wbuf[n].detach().clone() for n in model.exit_buffer_names(k)}
    return delta, bufs


@dataclass
class PartSum:
    r"""The server's sum of one round: :math:`\sum w_{i,k} \Delta_{i,k}` and buffer means.

    Examples
    --------
    >>> from cistheory.train.models import NestedLinear
    >>> m = NestedLinear(1, (1,), None, bias=False)
    >>> _ = m.blocks[0].weight.data.fill_(1.0)
    >>> s = PartSum.zeros(m)
    >>> s.add({"blocks.0.weight": torch.tensor([[2.0]])}, 0.5)
    >>> s.apply(m, server_lr=1.0)
    >>> m.blocks[0].weight.item()
    2.0
    """

    agg: dict[str, Tensor]
    buf_sum: dict[str, Tensor] = field(default_factory=dict)
    buf_mass: dict[str, float] = field(default_factory=dict)

    @classmethod
    def zeros(cls, model: EarlyExitModel) -> PartSum:
        """An empty sum for ``model``'s parameters."""
        return cls({n: torch.zeros_like(p) for n, p in model.named_parameters()})

    def add(
        self,
        delta: Mapping[str, Tensor],
        weight: float,
        buffers: Mapping[str, Tensor] | None = None,
        mass: float = 0.0,
        part: Mapping[str, tuple[slice, ...]] | None = None,
    ) -> None:
        r"""Add :math:`w_{i,k} \Delta_{i,k}` and the node's buffers (weighted by ``mass``,
        its data size :math:`m_i`). ``part`` (``model.exit_slices(k)``) places each tensor of
        ``delta`` on its entries (as :func:`cistheory.flower.parts.part_delta` cuts it);
        ``None``: whole tensors."""
        for n, d in delta.items():
            if n not in self.agg:
                raise CISInputError("delta", n, "not a parameter of the model")
            index = () if part is None else part.get(n, ())
            if index == ():
                self.agg[n] += weight * d
            else:
                self.agg[n][index] += weight * d
        for n, b in (buffers or {}).items():
            if b.is_floating_point():
                self.buf_sum[n] = self.buf_sum.get(n, torch.zeros_like(b)) + mass * b
                self.buf_mass[n] = self.buf_mass.get(n, 0.0) + float(mass)
            else:
                self.buf_sum[n] = torch.maximum(self.buf_sum.get(n, b), b)

    def apply(self, model: EarlyExitModel, server_lr: float) -> None:
        r""":math:`w \leftarrow w + \eta_s\,\text{sum}`; buffers to their weighted means."""
        params = dict(model.named_parameters())
        buffers = dict(model.named_buffers())
        with torch.no_grad():
            for n, p in params.items():
                p.add_(self.agg[n], alpha=server_lr)
            for n, b in self.buf_sum.items():
                buffers[n].copy_(b / self.buf_mass[n] if n in self.buf_mass else b)
