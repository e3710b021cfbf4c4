"""Typed access to the records of a Flower message (a malformed message is a clear error)."""

from __future__ import annotations

from typing import TypeVar

import torch
from flwr.app import ArrayRecord, ConfigRecord, RecordDict

from ..errors import CISInputError

__all__ = ["array_record", "config_record", "config_value", "tensors"]

T = TypeVar("T", int, float, str)


def array_record(content: RecordDict, key: str) -> ArrayRecord:
    """The :class:`ArrayRecord` ``key`` of a message's content."""
    rec = content.get(key)
    if not isinstance(rec, ArrayRecord):
        raise CISInputError(f"message.{key}", type(rec).__name__, "expected an ArrayRecord")
    return rec


def tensors(content: RecordDict, key: str) -> dict[str, torch.Tensor]:
    """The tensors of the :class:`ArrayRecord` ``key`` (empty when the content has none)."""
    if key not in content:
        return {}
    return dict(array_record(content, key).to_torch_state_dict())


def config_record(content: RecordDict, key: str) -> ConfigRecord:
    """The :class:`ConfigRecord` ``key`` of a message's content."""
    rec = content.get(key)
    if not isinstance(rec, ConfigRecord):
        raise CISInputError(f"message.{key}", type(rec).__name__, "expected a ConfigRecord")
    return rec


def config_value(rec: ConfigRecord, key: str, kind: type[T]) -> T:
    """The value ``key`` of a config record, of type ``kind`` (an int is a float too)."""
    value = rec.get(key)
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return kind(value)
    if not ok:
        raise CISInputError(f"config.{key}", value, f"expected {kind.__name__}")
    return value  # type: ignore[return-value]
