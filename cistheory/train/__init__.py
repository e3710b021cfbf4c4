r"""The federated trainer of early-exit models in a CIS (needs torch).

``import cistheory`` never imports this package. Names load lazily: importing
``cistheory.train`` (or ``cistheory.train.cli``, to register the ``train`` subcommand) does
not import torch until a model, dataset or the loop is used. The algorithm is that of
``docs/theory.md``, Section 3; see ``docs/trainer.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .data import (
        Dataset,
        NodeData,
        SyntheticTask,
        digits,
        dirichlet_split,
        load_cifar,
        split_by_sizes,
        split_for_cis,
        synthetic_classification,
        synthetic_regression,
        synthetic_task,
    )
    from .fedloop import (
        FedConfig,
        LoopState,
        RoundRecord,
        StepSchedule,
        TrainResult,
        exit_objectives,
        run_federated,
        select_exits,
    )
    from .models import (
        EarlyExitCNN,
        EarlyExitMLP,
        EarlyExitModel,
        EarlyExitResNet18,
        NestedLinear,
    )

_LAZY = {
    "Dataset": "data",
    "EarlyExitCNN": "models",
    "EarlyExitMLP": "models",
    "EarlyExitModel": "models",
    "EarlyExitResNet18": "models",
    "FedConfig": "fedloop",
    "LoopState": "fedloop",
    "NestedLinear": "models",
    "NodeData": "data",
    "RoundRecord": "fedloop",
    "StepSchedule": "fedloop",
    "SyntheticTask": "data",
    "TrainResult": "fedloop",
    "digits": "data",
    "dirichlet_split": "data",
    "exit_objectives": "fedloop",
    "load_cifar": "data",
    "run_federated": "fedloop",
    "select_exits": "fedloop",
    "split_by_sizes": "data",
    "split_for_cis": "data",
    "synthetic_classification": "data",
    "synthetic_regression": "data",
    "synthetic_task": "data",
}

__all__ = [
    "Dataset",
    "EarlyExitCNN",
    "EarlyExitMLP",
    "EarlyExitModel",
    "EarlyExitResNet18",
    "FedConfig",
    "LoopState",
    "NestedLinear",
    "NodeData",
    "RoundRecord",
    "StepSchedule",
    "SyntheticTask",
    "TrainResult",
    "digits",
    "dirichlet_split",
    "exit_objectives",
    "load_cifar",
    "run_federated",
    "select_exits",
    "split_by_sizes",
    "split_for_cis",
    "synthetic_classification",
    "synthetic_regression",
    "synthetic_task",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
