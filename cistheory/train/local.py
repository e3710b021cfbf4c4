r"""One node's local update: :math:`\tau` SGD steps on one exit's loss (``docs/theory.md``,
Section 3, step 2).

The one implementation of a client's work, used by the in-process loop
(:func:`cistheory.train.fedloop.run_federated`, plain mode) and by the Flower client
(:mod:`cistheory.flower`): given the global model, the exit :math:`k`, the node's data and the
uniforms that pick its minibatches, it returns :math:`\Delta_{i,k} = w^{(\tau)} - w_t` on the
parameters of the part :math:`P_k` and the part's batch-norm buffers after the steps.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .data import Dataset
from .models import EarlyExitModel

__all__ = ["batch_index", "local_update"]


def batch_index(u: Tensor, m: Tensor) -> Tensor:
    """Indices ``floor(u * m)`` (clamped below ``m``) for uniforms ``u`` of shape (..., B).

    Examples
    --------
    >>> batch_index(torch.tensor([[0.0, 0.5, 0.999]]), torch.tensor([4])).tolist()
    [[0, 2, 3]]
    """
    mm = m.to(u.dtype).view(-1, *([1] * (u.dim() - 1)))
    return torch.minimum((u * mm).to(torch.int64), m.view_as(mm) - 1)


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

    Returns
    -------
    delta : dict of str to Tensor
        :math:`\Delta_{i,k}` by parameter name (the names of
        ``model.exit_parameter_names(k)``).
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
    m = torch.tensor([len(data)])
    for s in range(steps):
        if u is None:
            xb, yb = data.x, data.y
        else:
            idx = batch_index(u[s], m)
            xb, yb = data.x[idx], data.y[idx]
        opt.zero_grad(set_to_none=True)
        worker.loss(worker(xb, exit=k), yb).backward()
        opt.step()
    glob = dict(model.named_parameters())
    delta = {n: params[n].detach() - glob[n].detach() for n in names}
    wbuf = dict(worker.named_buffers())
    bufs = {n: wbuf[n].detach().clone() for n in model.exit_buffer_names(k)}
    return delta, bufs
