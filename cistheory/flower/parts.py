r"""An exit's part :math:`P_k` of the global model, in transit and back (no Flower).

The one place of :mod:`cistheory.flower` that knows how a part is represented: the server
sends node :math:`i` the part of its exit (:func:`part_state`), the client writes it into its
model (:func:`load_part`), and the server adds the weighted deltas that come back into the
global model (:class:`PartSum`). They use the model's part API as it is today:
``exit_parameter_names(k)`` and ``exit_buffer_names(k)`` (whole named tensors). A model whose
parts are, say, nested channel slices needs these three to change and nothing else.

The arithmetic is that of the in-process trainer (:func:`cistheory.train.fedloop.run_federated`),
in the same order, so a run on Flower gives its result bit for bit:

.. math::
    w_{t+1} = w_t + \eta_s \sum_{(i,k)\ \text{arrived}} w_{i,k} \Delta_{i,k},

with no renormalisation (a part's keys are summed over the replies that hold them), and each
batch-norm statistic set to the data-weighted mean over the arrived nodes whose part holds it
(integer counters: their maximum).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..errors import CISInputError
from ..train.models import EarlyExitModel

__all__ = ["PartSum", "load_part", "part_state"]


def part_state(model: EarlyExitModel, k: int) -> dict[str, Tensor]:
    """The parameters and buffers of part :math:`P_k` (exit ``k`` from 1), detached copies.

    Examples
    --------
    >>> from cistheory.train.models import NestedLinear
    >>> sorted(part_state(NestedLinear(2, (1, 2)), 1))
    ['blocks.0.weight', 'heads.0.bias']
    """
    state = model.state_dict()
    names = [*model.exit_parameter_names(k), *model.exit_buffer_names(k)]
    return {n: state[n].detach().clone() for n in names}


def load_part(model: EarlyExitModel, k: int, part: Mapping[str, Tensor]) -> None:
    """Write part :math:`P_k` into ``model`` (a client's copy); exactly its keys are required.

    Raises
    ------
    CISInputError
        ``part`` misses a tensor of :math:`P_k` or holds one of another part.

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
    with torch.no_grad():
        for n in want:
            state[n].copy_(part[n])


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
    ) -> None:
        r"""Add :math:`w_{i,k} \Delta_{i,k}` and the node's buffers (weighted by ``mass``,
        its data size :math:`m_i`)."""
        for n, d in delta.items():
            if n not in self.agg:
                raise CISInputError("delta", n, "not a parameter of the model")
            self.agg[n] += weight * d
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
