r"""Width-nested models: ordered dropout (FjORD; Horvath et al., NeurIPS 2021).

The exits of a CIS can be nested *widths* instead of nested depths: sub-model :math:`k`
keeps the first :math:`c_k(C) = \lceil p_k C \rceil` channels of every layer of :math:`C`
channels, for widths :math:`0 < p_1 < \dots < p_K \le 1`, and runs every layer. Its part
:math:`P_k` (``docs/theory.md``, Section 1) is the leading block of every tensor: the first
:math:`c_k` output channels and the first :math:`c_k` input channels of every convolution
(the image channels stay whole), the first :math:`c_k` entries of every normalisation
weight and bias, and the first :math:`c_k` input columns of the one shared classifier (its
bias is in every part). Parts are nested, :math:`P_1 \subset \dots \subset P_K`, and exit
:math:`k`'s output reads exactly :math:`P_k`, so the algorithm, the aggregation, the
serving and the bounds apply unchanged; the loop, the vmapped clients and the many-runs
engine read the parts from :meth:`EarlyExitModel.exit_slices`.

Batch normalisation keeps its affine parameters nested like every other layer but its
running statistics per width (buffers ``running_mean_exit{k}``, ``running_var_exit{k}``),
as slimmable networks do: a channel's statistics depend on how many input channels feed
it, so one set of statistics cannot serve every width. They are exit :math:`k`'s buffers
(:meth:`exit_buffer_names`), averaged over the nodes that trained width :math:`k`.

:math:`\lceil p C \rceil` is computed as ``ceil(round(p * C, 9))`` so that a width such as
0.3 of 10 channels gives 3 channels, not 4 from the float rounding of 0.3 * 10.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CISInputError
from .models import EarlyExitModel, SlicedModule, _init_generator, _out_width, _widths

__all__ = ["OrderedDropoutCNN", "OrderedDropoutResNet18", "check_widths", "width_channels"]


def width_channels(p: float, channels: int) -> int:
    r""":math:`\lceil p C \rceil` channels of a layer of ``channels`` at width ``p``.

    Examples
    --------
    >>> [width_channels(p, 64) for p in (0.25, 0.5, 1.0)], width_channels(0.3, 10)
    ([16, 32, 64], 3)
    """
    return max(1, math.ceil(round(p * channels, 9)))


def check_widths(widths: Sequence[float]) -> tuple[float, ...]:
    """Strictly increasing widths in (0, 1], one per exit.

    Examples
    --------
    >>> check_widths([0.25, 0.5, 1.0])
    (0.25, 0.5, 1.0)
    """
    out = tuple(widths)
    if not out:
        raise CISInputError("widths", list(widths), "need at least one width")
    for j, p in enumerate(out):
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 < p <= 1:
            raise CISInputError(f"widths[{j}]", p, "must lie in (0, 1]")
    if any(b <= a for a, b in itertools.pairwise(out)):
        raise CISInputError("widths", list(out), "must be strictly increasing")
    return tuple(float(p) for p in out)


def _uniform(t: Tensor, fan_in: int, generator: torch.Generator) -> None:
    bound = 1.0 / math.sqrt(fan_in)
    t.uniform_(-bound, bound, generator=generator)


class _Conv(SlicedModule):
    """A convolution of which width ``k`` uses the leading ``c_out[k]`` filters over the
    leading input channels it is given."""

    def __init__(
        self,
        c_in: Sequence[int],
        c_out: Sequence[int],
        kernel: int,
        stride: int,
        *,
        bias: bool,
        slice_input: bool = True,
    ) -> None:
        super().__init__()
        self.c_in, self.c_out = tuple(c_in), tuple(c_out)
        self.stride, self.padding = stride, kernel // 2
        self.slice_input = slice_input
        self.fan_in = self.c_in[-1] * kernel * kernel
        self.weight = nn.Parameter(torch.zeros(self.c_out[-1], self.c_in[-1], kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(self.c_out[-1])) if bias else None

    def reset(self, generator: torch.Generator) -> None:
        _uniform(self.weight, self.fan_in, generator)
        if self.bias is not None:
            _uniform(self.bias, self.fan_in, generator)

    def slices(self, k: int) -> dict[str, tuple[slice, ...]]:
        rows = slice(0, self.c_out[k - 1])
        cols = slice(0, self.c_in[k - 1]) if self.slice_input else slice(None)
        out: dict[str, tuple[slice, ...]] = {"weight": (rows, cols)}
        if self.bias is not None:
            out["bias"] = (rows,)
        return out

    def forward(self, x: Tensor, k: int) -> Tensor:
        c = self.c_out[k - 1]
        b = None if self.bias is None else self.bias[:c]
        return F.conv2d(x, self.weight[:c, : x.shape[-3]], b, self.stride, self.padding)


class _WidthBatchNorm(SlicedModule):
    """Batch normalisation with nested affine parameters and running statistics per width."""

    def __init__(self, channels: Sequence[int], momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = tuple(channels)
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(self.channels[-1]))
        self.bias = nn.Parameter(torch.zeros(self.channels[-1]))
        for k, c in enumerate(self.channels, start=1):
            self.register_buffer(f"running_mean_exit{k}", torch.zeros(c))
            self.register_buffer(f"running_var_exit{k}", torch.ones(c))

    def reset(self, generator: torch.Generator) -> None:
        self.weight.fill_(1.0)
        self.bias.fill_(0.0)
        for k in range(1, len(self.channels) + 1):
            getattr(self, f"running_mean_exit{k}").fill_(0.0)
            getattr(self, f"running_var_exit{k}").fill_(1.0)

    def slices(self, k: int) -> dict[str, tuple[slice, ...]]:
        rows = (slice(0, self.channels[k - 1]),)
        return {"weight": rows, "bias": rows}

    def forward(self, x: Tensor, k: int) -> Tensor:
        c = self.channels[k - 1]
        w, b = self.weight[:c], self.bias[:c]
        xin = x if x.dtype == w.dtype else x.to(w.dtype)
        out = F.batch_norm(
            xin,
            getattr(self, f"running_mean_exit{k}"),
            getattr(self, f"running_var_exit{k}"),
            w,
            b,
            self.training,
            self.momentum,
            self.eps,
        )
        return out.to(x.dtype)


class _Head(SlicedModule):
    """Global average pooling and one linear classifier over the leading features."""

    def __init__(self, features: Sequence[int], out: int) -> None:
        super().__init__()
        self.features = tuple(features)
        self.weight = nn.Parameter(torch.zeros(out, self.features[-1]))
        self.bias = nn.Parameter(torch.zeros(out))

    def reset(self, generator: torch.Generator) -> None:
        _uniform(self.weight, self.features[-1], generator)
        _uniform(self.bias, self.features[-1], generator)

    def slices(self, k: int) -> dict[str, tuple[slice, ...]]:
        return {"weight": (slice(None), slice(0, self.features[k - 1])), "bias": ()}

    def forward(self, x: Tensor, k: int) -> Tensor:
        pooled = x.mean(dim=(-2, -1))
        return F.linear(pooled, self.weight[:, : pooled.shape[-1]], self.bias)


class _BasicBlock(nn.Module):
    """A ResNet basic block at width ``k``: conv-BN-ReLU-conv-BN, plus the shortcut, ReLU."""

    def __init__(self, c_in: Sequence[int], c_out: Sequence[int], stride: int) -> None:
        super().__init__()
        self.conv1 = _Conv(c_in, c_out, 3, stride, bias=False)
        self.bn1 = _WidthBatchNorm(c_out)
        self.conv2 = _Conv(c_out, c_out, 3, 1, bias=False)
        self.bn2 = _WidthBatchNorm(c_out)
        self.short_conv: _Conv | None = None
        self.short_bn: _WidthBatchNorm | None = None
        if stride != 1 or tuple(c_in) != tuple(c_out):
            self.short_conv = _Conv(c_in, c_out, 1, stride, bias=False)
            self.short_bn = _WidthBatchNorm(c_out)

    def forward(self, x: Tensor, k: int) -> Tensor:
        h = F.relu(self.bn1(self.conv1(x, k), k))
        h = self.bn2(self.conv2(h, k), k)
        skip = x
        if self.short_conv is not None and self.short_bn is not None:
            skip = self.short_bn(self.short_conv(x, k), k)
        return F.relu(h + skip)


class _Stem(nn.Module):
    def __init__(self, in_channels: int, c_out: Sequence[int], k_count: int) -> None:
        super().__init__()
        self.conv = _Conv((in_channels,) * k_count, c_out, 3, 1, bias=False, slice_input=False)
        self.bn = _WidthBatchNorm(c_out)

    def forward(self, x: Tensor, k: int) -> Tensor:
        return F.relu(self.bn(self.conv(x, k), k))


class _OrderedDropoutModel(EarlyExitModel):
    """Shared machinery: every exit runs every unit at its width; parts are slices."""

    family = "ordered-dropout"
    widths: tuple[float, ...]

    def forward(self, x: Tensor, exit: int) -> Tensor:
        """Output of sub-model ``exit`` (width :math:`p_k`), shape ``(batch, classes)``."""
        k = self._check_exit(exit)
        state = x
        for unit in self.blocks:
            state = unit(state, k)
        out: Tensor = self.heads[0](state, k)
        return out

    def forward_all(self, x: Tensor, upto: int | None = None) -> list[Tensor]:
        """Outputs of sub-models ``1..upto`` (each a full pass at its width)."""
        last = self.n_exits if upto is None else self._check_exit(upto, "upto")
        return [self.forward(x, k) for k in range(1, last + 1)]

    def exit_parameter_names(self, k: int) -> list[str]:
        r"""Every parameter: each tensor has entries in :math:`P_k` (see :meth:`exit_slices`)."""
        self._check_exit(k, "k")
        return [n for n, _ in self.named_parameters()]

    def exit_buffer_names(self, k: int) -> list[str]:
        """The running statistics of width ``k``."""
        self._check_exit(k, "k")
        return [n for n, _ in self.named_buffers() if n.endswith(f"_exit{k}")]

    def exit_slices(self, k: int) -> dict[str, tuple[slice, ...]]:
        r"""The leading block of every tensor that width :math:`p_k` reads."""
        self._check_exit(k, "k")
        out: dict[str, tuple[slice, ...]] = {}
        for prefix, mod in self.named_modules():
            if isinstance(mod, _Conv | _WidthBatchNorm | _Head):
                for pname, index in mod.slices(k).items():
                    out[f"{prefix}.{pname}"] = index
        order = [n for n, _ in self.named_parameters()]
        return {n: out[n] for n in order}


class OrderedDropoutCNN(_OrderedDropoutModel):
    r"""A width-nested CNN: 3x3 convolutions (stride 1, then 2) with ReLU, global average
    pooling and one linear classifier; sub-model :math:`k` keeps :math:`\lceil p_k C_l\rceil`
    channels of layer :math:`l`.

    Parameters
    ----------
    in_channels : int
    channels : sequence of int
        Full channels :math:`C_l` of each layer.
    n_classes : int or None
    widths : sequence of float
        :math:`p_1 < \dots < p_K` in (0, 1], one per exit.
    generator : torch.Generator, optional

    Examples
    --------
    >>> m = OrderedDropoutCNN(1, (4, 8), n_classes=3, widths=(0.5, 1.0))
    >>> m(torch.zeros(2, 1, 8, 8), exit=1).shape, m.exit_slices(1)["blocks.1.conv.weight"]
    (torch.Size([2, 3]), (slice(0, 4, None), slice(0, 2, None)))
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: Sequence[int] = (16, 32, 64),
        n_classes: int | None = 10,
        *,
        widths: Sequence[float] = (0.25, 0.5, 1.0),
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        c = _widths(channels, "channels")
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise CISInputError("in_channels", in_channels, "must be a positive integer")
        self.widths = check_widths(widths)
        out = _out_width(n_classes)
        self.n_classes = n_classes
        per = [tuple(width_channels(p, cl) for p in self.widths) for cl in c]
        units: list[nn.Module] = []
        prev: tuple[int, ...] = (in_channels,) * len(self.widths)
        for j, cur in enumerate(per):
            units.append(_ReluConv(prev, cur, stride=1 if j == 0 else 2, slice_input=j > 0))
            prev = cur
        self.blocks = nn.ModuleList(units)
        self.heads = nn.ModuleList([_Head(per[-1], out)])
        self.exit_units = (len(c),) * len(self.widths)
        self.reset_parameters(_init_generator(generator, 0))


class _ReluConv(nn.Module):
    def __init__(
        self, c_in: Sequence[int], c_out: Sequence[int], stride: int, slice_input: bool
    ) -> None:
        super().__init__()
        self.conv = _Conv(c_in, c_out, 3, stride, bias=True, slice_input=slice_input)

    def forward(self, x: Tensor, k: int) -> Tensor:
        return F.relu(self.conv(x, k))


class OrderedDropoutResNet18(_OrderedDropoutModel):
    r"""The CIFAR ResNet-18 with nested widths (ordered dropout).

    The layout of :class:`cistheory.train.models.EarlyExitResNet18` (stem, eight basic
    blocks in stages of widths ``width * (1, 2, 4, 8)`` and strides 1, 1, 2, 2, no max-pool)
    with one classifier after global pooling; sub-model :math:`k` keeps
    :math:`\lceil p_k C \rceil` channels of every layer and batch-norm statistics of its own.

    Parameters
    ----------
    widths : sequence of float
        :math:`p_1 < \dots < p_K` in (0, 1] (e.g. 0.25, 0.5, 1.0).
    n_classes : int
    in_channels, width : int
    generator : torch.Generator, optional

    Examples
    --------
    >>> m = OrderedDropoutResNet18((0.5, 1.0), n_classes=10, width=4)
    >>> [o.shape[1] for o in m.forward_all(torch.zeros(2, 3, 8, 8))]
    [10, 10]
    >>> m.exit_slices(1)["blocks.1.conv1.weight"]
    (slice(0, 2, None), slice(0, 2, None))
    """

    def __init__(
        self,
        widths: Sequence[float] = (0.25, 0.5, 1.0),
        n_classes: int = 10,
        *,
        in_channels: int = 3,
        width: int = 64,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.widths = check_widths(widths)
        out = _out_width(n_classes)
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise CISInputError("width", width, "must be a positive integer")
        self.n_classes = n_classes

        def per(c: int) -> tuple[int, ...]:
            return tuple(width_channels(p, c) for p in self.widths)

        units: list[nn.Module] = [_Stem(in_channels, per(width), len(self.widths))]
        c_in = width
        for s, stride in enumerate((1, 1, 2, 2)):
            c_out = width * 2**s
            for b in range(2):
                units.append(_BasicBlock(per(c_in), per(c_out), stride if b == 0 else 1))
                c_in = c_out
        self.blocks = nn.ModuleList(units)
        self.heads = nn.ModuleList([_Head(per(c_in), out)])
        self.exit_units = (len(units),) * len(self.widths)
        self.reset_parameters(_init_generator(generator, 0))
