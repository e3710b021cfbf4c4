r"""The federated trainer of early-exit models in a CIS (needs torch).

``import cistheory`` never imports this package. Names load lazily: importing
``cistheory.train`` (or ``cistheory.cli.train``, which registers the ``train`` subcommand) does
not import torch until a model, dataset or the loop is used. The algorithm is that of
``docs/theory.md``, Section 3; see ``docs/trainer.md``.

Modules: ``models`` (early-exit models), ``ordered_dropout`` (width-nested models), ``data``
(datasets and node splits), ``fedloop`` (the loop), ``local`` (one node's update),
``vectorised`` (many clients at once), ``manyruns`` (many runs at once), ``device`` (devices
and precisions), ``checkpoint``, ``constants`` (the bounds' constants measured on a model: noise,
gradient norms, curvature, heterogeneity), ``evaluate`` (serving a test set through a CIS),
``config`` and ``run`` (a run from a configuration file: ``run.run_training``). Every result
type serialises with ``as_dict()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from .constants import (
        EstimatedConstants,
        estimate_constants,
        gradient_noise,
        gradient_norms,
        power_iteration,
    )
    from .data import (
        Dataset,
        NodeData,
        SyntheticTask,
        crop_flip,
        digits,
        dirichlet_split,
        load_cifar,
        load_idx,
        split_by_sizes,
        split_for_cis,
        split_tiers_dirichlet,
        synthetic_classification,
        synthetic_regression,
        synthetic_task,
    )
    from .device import resolve_device
    from .evaluate import CISEvaluation, assign_arrivals, evaluate_cis, normalised_entropy
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
    from .local import batch_index, local_update, mask_to_part
    from .manyruns import Run, run_many
    from .models import (
        EarlyExitCNN,
        EarlyExitMLP,
        EarlyExitModel,
        EarlyExitResNet18,
        NestedLinear,
        exit_flops,
    )
    from .ordered_dropout import OrderedDropoutCNN, OrderedDropoutResNet18

_LAZY = {
    "CISEvaluation": "evaluate",
    "Dataset": "data",
    "EarlyExitCNN": "models",
    "EarlyExitMLP": "models",
    "EarlyExitModel": "models",
    "EarlyExitResNet18": "models",
    "EstimatedConstants": "constants",
    "FedConfig": "fedloop",
    "LoopState": "fedloop",
    "NestedLinear": "models",
    "NodeData": "data",
    "OrderedDropoutCNN": "ordered_dropout",
    "OrderedDropoutResNet18": "ordered_dropout",
    "RoundRecord": "fedloop",
    "Run": "manyruns",
    "StepSchedule": "fedloop",
    "SyntheticTask": "data",
    "TrainResult": "fedloop",
    "assign_arrivals": "evaluate",
    "batch_index": "local",
    "crop_flip": "data",
    "digits": "data",
    "dirichlet_split": "data",
    "estimate_constants": "constants",
    "evaluate_cis": "evaluate",
    "exit_flops": "models",
    "exit_objectives": "fedloop",
    "gradient_noise": "constants",
    "gradient_norms": "constants",
    "load_cifar": "data",
    "load_idx": "data",
    "local_update": "local",
    "mask_to_part": "local",
    "normalised_entropy": "evaluate",
    "power_iteration": "constants",
    "resolve_device": "device",
    "run_federated": "fedloop",
    "run_many": "manyruns",
    "select_exits": "fedloop",
    "split_by_sizes": "data",
    "split_for_cis": "data",
    "split_tiers_dirichlet": "data",
    "synthetic_classification": "data",
    "synthetic_regression": "data",
    "synthetic_task": "data",
}

__all__ = [
    "CISEvaluation",
    "Dataset",
    "EarlyExitCNN",
    "EarlyExitMLP",
    "EarlyExitModel",
    "EarlyExitResNet18",
    "EstimatedConstants",
    "FedConfig",
    "LoopState",
    "NestedLinear",
    "NodeData",
    "OrderedDropoutCNN",
    "OrderedDropoutResNet18",
    "RoundRecord",
    "Run",
    "StepSchedule",
    "SyntheticTask",
    "TrainResult",
    "assign_arrivals",
    "batch_index",
    "crop_flip",
    "digits",
    "dirichlet_split",
    "estimate_constants",
    "evaluate_cis",
    "exit_flops",
    "exit_objectives",
    "gradient_noise",
    "gradient_norms",
    "load_cifar",
    "load_idx",
    "local_update",
    "mask_to_part",
    "normalised_entropy",
    "power_iteration",
    "resolve_device",
    "run_federated",
    "run_many",
    "select_exits",
    "split_by_sizes",
    "split_for_cis",
    "split_tiers_dirichlet",
    "synthetic_classification",
    "synthetic_regression",
    "synthetic_task",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
