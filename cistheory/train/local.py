r"""One node's local update: :math:`\tau` SGD steps on one exit's loss (``docs/theory.md``,
Section 3, step 2).

The one implementation of a client's work, used by the in-process loop
(:func:`cistheory.train.fedloop.run_federated`, plain mode) and by the Flower client
(:mod:`cistheory.flower`): given the global model, the exit :math:`k`, the node's data and the
uniforms that pick its minibatches, it returns :math:`\Delta_{i,k} = w^{(\tau)} - w_t` on the
parameters of the part :math:`P_k` and the part's batch-norm buffers after the steps.

It runs where the models are (``model`` and ``worker`` on the same device, the node's data
there or on the CPU; the uniforms always come from a CPU generator), in float32 or in
bfloat16 mixed precision (:func:`cistheory.train.device.autocast`). On the CPU in float32
it computes exactly what it always has.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .data import Dataset, crop_flip
from .device import autocast
from .models import EarlyExitModel

__all__ = ["batch_index", "local_update", "mask_to_part"]


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
