r"""Early-exit models for the federated trainer.

Every model is an :class:`EarlyExitModel`: a chain of *units* (``blocks``) and one *head*
per exit (``heads``). Exit :math:`k` reads the units up to its exit point and head
:math:`k`; these parameters form its part :math:`P_k` (``docs/theory.md``, Section 1), so
a node that trains exit :math:`k` touches :math:`P_k` only and leaves every other
parameter unchanged.

Models:

- :class:`NestedLinear`: exit :math:`k` is linear in the first :math:`d_k` features
  (nested widths as in ordered dropout); logistic (softmax) or least-squares loss, so every
  :math:`f_{i,k}` is convex with constants known in closed form.
- :class:`EarlyExitMLP`: fully connected blocks, a linear head after each.
- :class:`EarlyExitCNN`: strided 3x3 convolutions, a pooled linear head after each.
- :class:`EarlyExitResNet18`: the CIFAR ResNet-18 cut into 17 units (stem, then each basic
  block as two units; stage strides 1, 1, 2, 2; no max-pool), exits after chosen units
  (``docs/theory.md``, Section 7).

Parameters are initialised from an explicit :class:`torch.Generator`
(:meth:`EarlyExitModel.reset_parameters`); constructing a model leaves torch's global
random state as it was.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CISInputError

__all__ = [
    "EarlyExitCNN",
    "EarlyExitMLP",
    "EarlyExitModel",
    "EarlyExitResNet18",
    "NestedLinear",
    "SlicedModule",
    "exit_flops",
]


class EarlyExitModel(nn.Module):
    r"""Base class: units ``blocks``, heads ``heads``, exit points ``exit_units``.

    Exit :math:`k` (1-based) runs units ``0 .. exit_units[k-1] - 1`` and head ``k - 1``.
    Subclasses fill ``blocks``, ``heads``, ``exit_units`` and ``n_classes`` (``None`` for a
    scalar least-squares output).

    Attributes
    ----------
    n_exits : int
        Number of exits :math:`K`.
    task : str
        ``"classification"`` (softmax cross-entropy) or ``"regression"``
        (:math:`\tfrac12 (h(x) - y)^2`).
    """

    blocks: nn.ModuleList
    heads: nn.ModuleList
    exit_units: tuple[int, ...]
    n_classes: int | None
    family: str = "early-exit"
    """``"early-exit"`` (parts are units and heads) or ``"ordered-dropout"`` (parts are the
    leading channels of every layer)."""

    @property
    def n_exits(self) -> int:
        """Number of exits :math:`K`."""
        return len(self.exit_units)

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"``."""
        return "regression" if self.n_classes is None else "classification"

    def _check_exit(self, exit: int, field: str = "exit") -> int:
        if isinstance(exit, bool) or not isinstance(exit, int) or not 1 <= exit <= self.n_exits:
            raise CISInputError(field, exit, f"exits are numbered 1..{self.n_exits}")
        return exit

    def _head_input(self, state: Any) -> Tensor:
        return state if isinstance(state, Tensor) else state[0]

    def forward(self, x: Tensor, exit: int) -> Tensor:
        """Output of exit ``exit`` (1-based), shape ``(batch, classes)``; runs only its units."""
        k = self._check_exit(exit)
        state: Any = x
        for j in range(self.exit_units[k - 1]):
            state = self.blocks[j](state)
        out: Tensor = self.heads[k - 1](self._head_input(state))
        return out

    def forward_all(self, x: Tensor, upto: int | None = None) -> list[Tensor]:
        """Outputs of exits ``1..upto`` (default all), sharing the trunk computation."""
        last = self.n_exits if upto is None else self._check_exit(upto, "upto")
        outs: list[Tensor] = []
        state: Any = x
        done = 0
        for k in range(1, last + 1):
            while done < self.exit_units[k - 1]:
                state = self.blocks[done](state)
                done += 1
            outs.append(self.heads[k - 1](self._head_input(state)))
        return outs

    def _part_prefixes(self, k: int) -> tuple[str, ...]:
        k = self._check_exit(k, "k")
        return (*(f"blocks.{j}." for j in range(self.exit_units[k - 1])), f"heads.{k - 1}.")

    def exit_parameter_names(self, k: int) -> list[str]:
        r"""Names (as in ``named_parameters()``) of the part :math:`P_k` that exit ``k`` reads."""
        pre = self._part_prefixes(k)
        return [n for n, _ in self.named_parameters() if n.startswith(pre)]

    def exit_buffer_names(self, k: int) -> list[str]:
        """Names of the buffers (e.g. batch-norm statistics) in the units of exit ``k``."""
        pre = self._part_prefixes(k)
        return [n for n, _ in self.named_buffers() if n.startswith(pre)]

    def exit_slices(self, k: int) -> dict[str, tuple[slice, ...]]:
        r"""The part :math:`P_k` entry by entry: for each parameter it touches, the index of
        its entries in :math:`P_k`.

        The index is a tuple of slices over the leading dimensions (``()`` is the whole
        tensor, ``(slice(0, 8), slice(0, 4))`` the first 8 rows and 4 columns). An early-exit
        model's part is a set of whole tensors (the units up to exit :math:`k` and head
        :math:`k`); an ordered-dropout model's part is the leading slice of every tensor
        (:mod:`cistheory.train.ordered_dropout`). The loop, the vmapped clients, the
        many-runs engine and the aggregation read parts only through this method (or
        :meth:`exit_masks`), so both families train the same way.

        Examples
        --------
        >>> NestedLinear(4, (2, 4), n_classes=None, bias=False).exit_slices(1)
        {'blocks.0.weight': ()}
        """
        return {n: () for n in self.exit_parameter_names(k)}

    def exit_masks(self, k: int) -> dict[str, Tensor]:
        r"""The part :math:`P_k` as boolean masks over the full parameter tensors (``True`` on
        the entries of :math:`P_k`), one per parameter it touches (:meth:`exit_slices`).

        Examples
        --------
        >>> m = NestedLinear(4, (2, 4), n_classes=None, bias=False)
        >>> [(n, int(v.sum())) for n, v in m.exit_masks(2).items()]
        [('blocks.0.weight', 2), ('blocks.1.weight', 2)]
        """
        params = dict(self.named_parameters())
        out: dict[str, Tensor] = {}
        for name, index in self.exit_slices(k).items():
            mask = torch.zeros(params[name].shape, dtype=torch.bool, device=params[name].device)
            mask[index] = True
            out[name] = mask
        return out

    def loss(self, output: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
        r"""Per-sample loss of an exit's output, averaged unless ``reduction="none"``.

        Classification: softmax cross-entropy. Regression:
        :math:`\ell = \tfrac12 (h(x) - y)^2` on the single output column.
        """
        if self.n_classes is None:
            per = 0.5 * (output[..., 0] - y) ** 2
        else:
            per = F.cross_entropy(output, y, reduction="none")
        if reduction == "none":
            return per
        if reduction == "mean":
            return per.mean()
        raise CISInputError("reduction", reduction, "must be 'mean' or 'none'")

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        r"""Re-initialise every parameter from ``generator`` (torch's default scales).

        Weights and biases of linear and convolutional layers are uniform on
        :math:`[-1/\sqrt{\text{fan\_in}}, 1/\sqrt{\text{fan\_in}}]` (torch's default
        Kaiming-uniform with :math:`a = \sqrt5`); normalisation layers get weight 1, bias 0.
        """
        for mod in self.modules():
            if isinstance(mod, SlicedModule):
                mod.reset(generator)
            elif isinstance(mod, _Slice):
                bound = 1.0 / math.sqrt(mod.fan_in)
                mod.weight.uniform_(-bound, bound, generator=generator)
            elif isinstance(mod, _Bias) and mod.bias is not None:
                bound = 1.0 / math.sqrt(mod.fan_in)
                mod.bias.uniform_(-bound, bound, generator=generator)
            elif isinstance(mod, nn.Linear | nn.Conv2d):
                fan_in = mod.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                mod.weight.uniform_(-bound, bound, generator=generator)
                if mod.bias is not None:
                    mod.bias.uniform_(-bound, bound, generator=generator)
            elif isinstance(mod, nn.BatchNorm2d | nn.GroupNorm):
                if mod.weight is not None:
                    mod.weight.fill_(1.0)
                    mod.bias.fill_(0.0)
                if isinstance(mod, nn.BatchNorm2d):
                    mod.reset_running_stats()


class SlicedModule(nn.Module):
    """A layer that initialises itself (:meth:`EarlyExitModel.reset_parameters` calls
    :meth:`reset`); the base of the ordered-dropout layers."""

    def reset(self, generator: torch.Generator) -> None:
        """Re-initialise the layer's parameters from ``generator``."""
        raise NotImplementedError


def _out_width(n_classes: int | None) -> int:
    if n_classes is None:
        return 1
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise CISInputError("n_classes", n_classes, "must be an integer >= 2, or None")
    return n_classes


def _widths(values: Sequence[int], field: str) -> tuple[int, ...]:
    out = tuple(values)
    if not out:
        raise CISInputError(field, values, "need at least one exit")
    for j, v in enumerate(out):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise CISInputError(f"{field}[{j}]", v, "must be a positive integer")
    return out


def _init_generator(generator: torch.Generator | None, seed: int) -> torch.Generator:
    return generator if generator is not None else torch.Generator().manual_seed(seed)


class _Slice(nn.Module):
    """Adds ``x[:, lo:hi] @ weight.T`` to the running linear output ``acc``."""

    def __init__(self, lo: int, hi: int, out: int, fan_in: int) -> None:
        super().__init__()
        self.lo, self.hi, self.fan_in = lo, hi, fan_in
        self.weight = nn.Parameter(torch.zeros(out, hi - lo))

    def forward(self, state: tuple[Tensor, Tensor] | Tensor) -> tuple[Tensor, Tensor]:
        if isinstance(state, Tensor):
            x = state
            acc = x.new_zeros((*x.shape[:-1], self.weight.shape[0]))
        else:
            x, acc = state
        return x, acc + x[..., self.lo : self.hi] @ self.weight.T


class _Bias(nn.Module):
    """Head of a nested linear exit: the running output plus an optional bias."""

    def __init__(self, out: int, bias: bool, fan_in: int) -> None:
        super().__init__()
        self.fan_in = fan_in
        self.bias = nn.Parameter(torch.zeros(out)) if bias else None

    def forward(self, acc: Tensor) -> Tensor:
        return acc if self.bias is None else acc + self.bias


class NestedLinear(EarlyExitModel):
    r"""Nested linear model: exit :math:`k` reads the first :math:`d_k` features.

    .. math::
        h_k(x; w) = \sum_{j \le k} W_j\, x_{[d_{j-1}, d_j)} + b_k, \qquad d_0 = 0,

    with shared blocks :math:`W_j` (unit :math:`j` holds the columns of features
    :math:`d_{j-1}..d_j - 1`) and a per-exit bias :math:`b_k` as head :math:`k`. The loss is
    softmax cross-entropy (``n_classes`` classes) or, with ``n_classes=None``, least squares
    :math:`\tfrac12 (h_k(x) - y)^2`; both are convex in :math:`w`.

    Parameters
    ----------
    d_in : int
        Number of input features (at least ``dims[-1]``).
    dims : sequence of int
        Increasing feature counts :math:`d_1 < \dots < d_K`.
    n_classes : int or None
        Classes, or ``None`` for scalar regression.
    bias : bool
        Whether heads carry a bias (``False`` gives a pure nested linear map).
    generator : torch.Generator, optional
        Initialisation generator (default: seeded with 0).

    Examples
    --------
    >>> m = NestedLinear(4, (2, 4), n_classes=None, bias=False)
    >>> m.exit_parameter_names(1)
    ['blocks.0.weight']
    >>> m(torch.ones(3, 4), exit=2).shape
    torch.Size([3, 1])
    """

    def __init__(
        self,
        d_in: int,
        dims: Sequence[int],
        n_classes: int | None = None,
        *,
        bias: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        d = _widths(dims, "dims")
        if any(b <= a for a, b in itertools.pairwise(d)):
            raise CISInputError("dims", list(d), "must be strictly increasing")
        if isinstance(d_in, bool) or not isinstance(d_in, int) or d_in < d[-1]:
            raise CISInputError("d_in", d_in, f"must be an integer >= dims[-1] = {d[-1]}")
        out = _out_width(n_classes)
        self.n_classes = n_classes
        self.d_in, self.dims = d_in, d
        lows = (0, *d[:-1])
        self.blocks = nn.ModuleList(
            _Slice(lo, hi, out, d[-1]) for lo, hi in zip(lows, d, strict=True)
        )
        self.heads = nn.ModuleList(_Bias(out, bias, d[-1]) for _ in d)
        self.exit_units = tuple(range(1, len(d) + 1))
        self.reset_parameters(_init_generator(generator, 0))

    def _head_input(self, state: Any) -> Tensor:
        out: Tensor = state[1]
        return out


class EarlyExitMLP(EarlyExitModel):
    r"""Early-exit multilayer perceptron.

    Unit :math:`k` is :math:`z_k = \mathrm{ReLU}(A_k z_{k-1} + c_k)` (:math:`z_0 = x`) and
    head :math:`k` is linear, :math:`h_k = B_k z_k + e_k`.

    Parameters
    ----------
    d_in : int
    hidden : sequence of int
        Width of each unit; one exit after each.
    n_classes : int or None
    generator : torch.Generator, optional

    Examples
    --------
    >>> m = EarlyExitMLP(8, (16, 16), n_classes=3)
    >>> [o.shape[1] for o in m.forward_all(torch.zeros(2, 8))]
    [3, 3]
    """

    def __init__(
        self,
        d_in: int,
        hidden: Sequence[int] = (32, 32, 32),
        n_classes: int | None = 10,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        h = _widths(hidden, "hidden")
        if isinstance(d_in, bool) or not isinstance(d_in, int) or d_in < 1:
            raise CISInputError("d_in", d_in, "must be a positive integer")
        out = _out_width(n_classes)
        self.n_classes = n_classes
        with torch.random.fork_rng(devices=[]):
            self.blocks = nn.ModuleList(
                nn.Sequential(nn.Linear(a, b), nn.ReLU())
                for a, b in zip((d_in, *h[:-1]), h, strict=True)
            )
            self.heads = nn.ModuleList(nn.Linear(b, out) for b in h)
        self.exit_units = tuple(range(1, len(h) + 1))
        self.reset_parameters(_init_generator(generator, 0))


class EarlyExitCNN(EarlyExitModel):
    r"""Small early-exit CNN for images of any size.

    Unit :math:`k` is a 3x3 convolution (stride 1 for the first unit, 2 after) and a ReLU;
    head :math:`k` is global average pooling and a linear layer.

    Parameters
    ----------
    in_channels : int
    channels : sequence of int
        Output channels of each unit; one exit after each.
    n_classes : int or None
    generator : torch.Generator, optional

    Examples
    --------
    >>> m = EarlyExitCNN(1, (4, 8), n_classes=10)
    >>> m(torch.zeros(2, 1, 8, 8), exit=2).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: Sequence[int] = (16, 32, 64),
        n_classes: int | None = 10,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        c = _widths(channels, "channels")
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise CISInputError("in_channels", in_channels, "must be a positive integer")
        out = _out_width(n_classes)
        self.n_classes = n_classes
        with torch.random.fork_rng(devices=[]):
            self.blocks = nn.ModuleList(
                nn.Sequential(nn.Conv2d(a, b, 3, stride=1 if j == 0 else 2, padding=1), nn.ReLU())
                for j, (a, b) in enumerate(zip((in_channels, *c[:-1]), c, strict=True))
            )
            self.heads = nn.ModuleList(
                nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(b, out)) for b in c
            )
        self.exit_units = tuple(range(1, len(c) + 1))
        self.reset_parameters(_init_generator(generator, 0))


class _BatchNorm2d(nn.BatchNorm2d):
    """Batch normalisation in the dtype of its parameters.

    Under bfloat16 autocast the convolutions hand it bfloat16 activations; the statistics
    and the affine map are computed in float32 (the parameters' dtype) and the result is
    cast back. In float32 it is ``nn.BatchNorm2d`` unchanged.
    """

    def forward(self, input: Tensor) -> Tensor:
        if self.weight is None or input.dtype == self.weight.dtype:
            return super().forward(input)
        return super().forward(input.to(self.weight.dtype)).to(input.dtype)


class _GroupNorm(nn.GroupNorm):
    """Group normalisation in the dtype of its parameters (see :class:`_BatchNorm2d`)."""

    def forward(self, input: Tensor) -> Tensor:
        if self.weight is None or input.dtype == self.weight.dtype:
            return super().forward(input)
        return super().forward(input.to(self.weight.dtype)).to(input.dtype)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return _BatchNorm2d(channels)
    if kind == "group":
        return _GroupNorm(min(32, channels), channels)
    raise CISInputError("norm", kind, "must be 'batch' or 'group'")


class _Stem(nn.Module):
    def __init__(self, in_channels: int, width: int, norm: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn = _norm(norm, width)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = F.relu(self.bn(self.conv(x)))
        return out


class _HalfA(nn.Module):
    """First unit of a basic block: conv1-norm-ReLU and the (1x1) shortcut of the input."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn = _norm(norm, c_out)
        self.shortcut: nn.Module
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), _norm(norm, c_out)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return F.relu(self.bn(self.conv(x))), self.shortcut(x)


class _HalfB(nn.Module):
    """Second unit of a basic block: conv2-norm, plus the shortcut, ReLU."""

    def __init__(self, c: int, norm: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = _norm(norm, c)

    def forward(self, state: tuple[Tensor, Tensor]) -> Tensor:
        h, skip = state
        out: Tensor = F.relu(self.bn(self.conv(h)) + skip)
        return out


class EarlyExitResNet18(EarlyExitModel):
    r"""CIFAR ResNet-18 cut into 17 units with exits after chosen units.

    Unit 1 is the stem (3x3 convolution, normalisation, ReLU; no max-pool); units
    :math:`2b, 2b+1` are the two halves of basic block :math:`b = 1..8` (the first half
    carries the shortcut). Stages of two blocks have widths ``width * (1, 2, 4, 8)`` and
    strides 1, 1, 2, 2. Head :math:`k` pools globally and applies a linear layer. The
    reference exits are units (3, 9, 17) for CIFAR-10 and (9, 13, 17) for CIFAR-100
    (``docs/theory.md``, Section 7).

    Parameters
    ----------
    exits : sequence of int
        Increasing exit units in 1..17.
    n_classes : int
    in_channels, width : int
    norm : {"batch", "group"}
        Batch normalisation (as the reference) or group normalisation (no buffers).
    generator : torch.Generator, optional

    Examples
    --------
    >>> m = EarlyExitResNet18(exits=(3, 9, 17), n_classes=10, width=4)
    >>> [o.shape for o in m.forward_all(torch.zeros(2, 3, 8, 8))][-1]
    torch.Size([2, 10])
    """

    def __init__(
        self,
        exits: Sequence[int] = (3, 9, 17),
        n_classes: int = 10,
        *,
        in_channels: int = 3,
        width: int = 64,
        norm: str = "batch",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        ex = _widths(exits, "exits")
        if any(e > 17 for e in ex) or any(b <= a for a, b in itertools.pairwise(ex)):
            raise CISInputError("exits", list(ex), "must be increasing units in 1..17")
        out = _out_width(n_classes)
        self.n_classes = n_classes
        units: list[nn.Module] = []
        unit_width: list[int] = []
        with torch.random.fork_rng(devices=[]):
            units.append(_Stem(in_channels, width, norm))
            unit_width.append(width)
            c_in = width
            for s, stride in enumerate((1, 1, 2, 2)):
                c_out = width * 2**s
                for b in range(2):
                    units.append(_HalfA(c_in, c_out, stride if b == 0 else 1, norm))
                    units.append(_HalfB(c_out, norm))
                    unit_width += [c_out, c_out]
                    c_in = c_out
            self.blocks = nn.ModuleList(units)
            self.heads = nn.ModuleList(
                nn.Sequential(
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(unit_width[e - 1], out)
                )
                for e in ex
            )
        self.exit_units = ex
        self.reset_parameters(_init_generator(generator, 0))


@torch.no_grad()
def exit_flops(model: EarlyExitModel, sample: Tensor) -> list[float]:
    r"""Floating-point operations of one forward pass at each exit on ``sample``.

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode` (matrix products and
    convolutions, two operations per multiply-add), with the model in eval mode so that
    batch-norm statistics are not touched. The ratios to the last entry are the relative
    exit costs :math:`r_k` of the FLOPs-proportional rule.

    Examples
    --------
    >>> f = exit_flops(EarlyExitMLP(4, (8, 8), n_classes=2), torch.zeros(1, 4))
    >>> f == [2 * (4 * 8 + 8 * 2), 2 * (4 * 8 + 8 * 8 + 8 * 2)]
    True
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    out: list[float] = []
    try:
        for k in range(1, model.n_exits + 1):
            with FlopCounterMode(display=False) as counter:
                model(sample, exit=k)
            out.append(float(counter.get_total_flops()))
    finally:
        model.train(was_training)
    return out
