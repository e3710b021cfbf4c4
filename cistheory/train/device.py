"""Where the trainer computes and in which precision: the one home of device choices.

- ``device``: ``"auto"`` (a CUDA GPU when torch sees one, else the CPU), ``"cpu"`` or
  ``"cuda"`` (refused with one clear line when no GPU is available).
- ``precision``: ``"fp32"`` (everything in float32; on the CPU bitwise the results the
  trainer has always given) or ``"bf16"`` (mixed precision: parameters, optimiser state,
  updates and the server's aggregation stay float32; the forward and backward passes run
  under ``torch.autocast`` in bfloat16, normalisation layers in float32). bf16 works on the
  CPU too (slowly); it is meant for GPUs.

Randomness never depends on the device: every draw (exit picks, minibatch indices, data
augmentation) comes from the run's own seeded CPU generator and is moved to the device
afterwards, so a run draws the same picks and minibatches on every device and its
checkpoint holds CPU generator states only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from ..errors import CISInputError

__all__ = ["DEVICES", "PRECISIONS", "autocast", "check_precision", "resolve_device"]

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
"""Accepted device names."""

PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
"""Accepted precisions."""


def resolve_device(name: str, field: str = "device") -> torch.device:
    """The device a name stands for; ``"cuda"`` without a GPU is refused.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if name not in DEVICES:
        raise CISInputError(field, name, f"use one of {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CISInputError(
            field, name, "no CUDA GPU is available here (torch.cuda.is_available() is False)"
        )
    return torch.device(name)


def check_precision(name: str, field: str = "precision") -> str:
    """``name`` if it is a known precision.

    Examples
    --------
    >>> check_precision("bf16")
    'bf16'
    """
    if name not in PRECISIONS:
        raise CISInputError(field, name, f"use one of {', '.join(PRECISIONS)}")
    return name


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """Mixed precision for ``"bf16"`` on ``device``; nothing at all for ``"fp32"``.

    Examples
    --------
    >>> with autocast("bf16", torch.device("cpu")):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.bfloat16
    """
    if check_precision(precision) == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        yield
