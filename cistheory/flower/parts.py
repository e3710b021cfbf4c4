r"""An exit's part :math:`P_k` of the global model, in transit and back (no Flower).

The one place of :mod:`cistheory.flower` that knows how a part is represented: the server
sends node :math:`i` the part of its exit (:func:`part_state`), the client writes it into its
model (:func:`load_part`) and sends back its update on the part's entries
(:func:`part_delta`), and the server adds the weighted deltas that come back into the global
model (:class:`cistheory.train.local.PartSum`, the trainer's own sum). They read the part
from the model's part API:
``exit_parameter_names(k)``, ``exit_buffer_names(k)`` and ``exit_slices(k)``, the entries of
each parameter in :math:`P_k` (whole tensors for early exits, the leading channels of every
tensor for ordered dropout, :mod:`cistheory.train.ordered_dropout`). Only those entries
travel, both ways; buffers travel whole.

The arithmetic is that of the in-process trainer (:func:`cistheory.train.fedloop.run_federated`),
in the same order, so a run on Flower gives its result bit for bit:

.. math::
    w_{t+1} = w_t + \eta_s \sum_{(i,k)\ \text{arrived}} w_{i,k} \Delta_{i,k},

with no renormalisation (a part's entries are summed over the replies that hold them; the
trainer adds the client's update, zero outside the part, to the whole tensor, which leaves the
other entries' values as they are), and each batch-norm statistic set to the data-weighted mean
over the arrived nodes whose part holds it (integer counters: their maximum).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from ..errors import CISInputError
from ..train.local import PartSum
from ..train.models import EarlyExitModel

__all__ = ["PartSum", "delta_problem", "load_part", "part_delta", "part_state"]


def part_state(model: EarlyExitModel, k: int) -> dict[str, Tensor]:
    """The parameters and buffers of part :math:`P_k` (exit ``k`` from 1), detached copies:
    of each parameter its entries in :math:`P_k` (``model.exit_slices(k)``), buffers whole.

    Examples
    --------
    >>> from cistheory.train.models import NestedLinear
    >>> sorted(part_state(NestedLinear(2, (1, 2)), 1))
    ['blocks.0.weight', 'heads.0.bias']
    >>> from cistheory.train.ordered_dropout import OrderedDropoutCNN
    >>> od = OrderedDropoutCNN(1, (4,), 2, widths=(0.5, 1.0))
    >>> part_state(od, 1)["blocks.0.conv.weight"].shape[:2], od.blocks[0].conv.weight.shape[:2]
    (torch.Size([2, 1]), torch.Size([4, 1]))
    """
    state = model.state_dict()
    index = model.exit_slices(k)
    names = [*model.exit_parameter_names(k), *model.exit_buffer_names(k)]
    return {n: state[n][index.get(n, ())].detach().clone() for n in names}


def load_part(model: EarlyExitModel, k: int, part: Mapping[str, Tensor]) -> None:
    """Write part :math:`P_k` into ``model`` (a client's copy); exactly its keys, each of the
    shape of its entries in :math:`P_k`, are required.

    Raises
    ------
    CISInputError
        ``part`` misses a tensor of :math:`P_k`, holds one of another part, or one of
        another shape.

    Examples
    --------
    >>> from cistheory.train.models import NestedLinear
    >>> a, b = NestedLinear(2, (1, 2)), NestedLinear(2, (1, 2))
    >>> load_part(b, 2, part_state(a, 2))
    >>> bool(torch.equal(a.heads[1].bias, b.heads[1].bias))
    True
    """
    want = [*model.exit_parameter_names(k), *model.exit_buffer_names(k)]
    if set(part) != set(want):
        wrong = sorted(set(part) ^ set(want))
        raise CISInputError("part", wrong[:3], f"not the tensors of part P_{k}")
    state = model.state_dict()
    index = model.exit_slices(k)
    entries = {n: state[n][index.get(n, ())] for n in want}
    for n in want:
        if part[n].shape != entries[n].shape:
            raise CISInputError(
                f"part[{n!r}]", list(part[n].shape), f"P_{k} holds {list(entries[n].shape)}"
            )
    with torch.no_grad():
        for n in want:
            entries[n].copy_(part[n])


def part_delta(model: EarlyExitModel, k: int, delta: Mapping[str, Tensor]) -> dict[str, Tensor]:
    r"""A client's update :math:`\Delta_{i,k}` (whole tensors, zero outside the part, as
    :func:`cistheory.train.local.local_update` returns it) restricted to the entries of
    :math:`P_k`: what travels back to the server.

    Examples
    --------
    >>> from cistheory.train.ordered_dropout import OrderedDropoutCNN
    >>> od = OrderedDropoutCNN(1, (4,), 2, widths=(0.5, 1.0))
    >>> d = {n: torch.zeros_like(p) for n, p in od.named_parameters()}
    >>> part_delta(od, 1, d)["blocks.0.conv.weight"].shape[:2]
    torch.Size([2, 1])
    """
    index = model.exit_slices(k)
    return {n: d[index.get(n, ())].contiguous() for n, d in delta.items()}


def delta_problem(model: EarlyExitModel, k: int, delta: Mapping[str, Tensor]) -> str | None:
    r"""Why ``delta`` cannot be a node's update of part :math:`P_k` (``None``: it can): not
    the parameters of the part, or a tensor not of the shape of its entries in the part.

    Examples
    --------
    >>> from cistheory.train.models import NestedLinear
    >>> m = NestedLinear(2, (1, 2))
    >>> ok = {n: torch.zeros_like(v) for n, v in part_state(m, 1).items()}
    >>> delta_problem(m, 1, ok) is None
    True
    >>> delta_problem(m, 1, {**ok, "blocks.0.weight": torch.zeros(2, 2)})
    'blocks.0.weight: shape [2, 2], the part holds [1, 1]'
    """
    if set(delta) != set(model.exit_parameter_names(k)):
        return "not the parameters of its part"
    params = dict(model.named_parameters())
    for n, index in model.exit_slices(k).items():
        want = params[n][index].shape
        if delta[n].shape != want:
            return f"{n}: shape {list(delta[n].shape)}, the part holds {list(want)}"
    return None
