"""Lazy package attributes: a name is imported from its submodule on first use (PEP 562).

Keeps ``import cistheory.train`` and ``import cistheory.flower`` from loading torch or Flower
until a name that needs them is read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str, names: Mapping[str, str], public: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``.

    ``names`` maps an attribute to the submodule (relative to ``package``) that defines it;
    the value is cached in the package's namespace after the first read.

    Examples
    --------
    >>> get, _ = lazy_attributes("json", {"JSONDecoder": "decoder"}, ["JSONDecoder"])
    >>> get("JSONDecoder").__name__
    'JSONDecoder'
    """
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        if name in names:
            value = getattr(importlib.import_module(f".{names[name]}", package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
