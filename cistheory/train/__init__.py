r"""The federated trainer of early-exit models in a CIS (needs torch).

``import cistheory`` never imports this package; ``import cistheory.train`` loads torch.
The algorithm is that of ``docs/theory.md``, Section 3; see ``docs/trainer.md``.
"""

from __future__ import annotations

from .data import (
    Dataset,
    NodeData,
    digits,
    dirichlet_split,
    load_cifar,
    split_by_sizes,
    split_for_cis,
    synthetic_classification,
    synthetic_regression,
)
from .fedloop import (
    FedConfig,
    LoopState,
    RoundRecord,
    StepSchedule,
    TrainResult,
    exit_objectives,
    run_federated,
)
from .models import (
    EarlyExitCNN,
    EarlyExitMLP,
    EarlyExitModel,
    EarlyExitResNet18,
    NestedLinear,
)

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
    "TrainResult",
    "digits",
    "dirichlet_split",
    "exit_objectives",
    "load_cifar",
    "run_federated",
    "split_by_sizes",
    "split_for_cis",
    "synthetic_classification",
    "synthetic_regression",
]
