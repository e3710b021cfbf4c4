"""CIS training on Flower (extra ``cistheory[flower]``; ``docs/flower.md``).

The same algorithm as the in-process trainer, on Flower's Message API, in a simulation
(``flwr run`` on the local simulation federation) or a deployment (a SuperLink and one
SuperNode per CIS node):

- ``strategy``: :class:`CISStrategy`, the round (per-node exits and weights, the unbiased or
  multiplicative sum of the partial updates, faults, checkpoints);
- ``apps``: the ServerApp and the ClientApp (``cistheory/flower/app/pyproject.toml`` names
  them); the client runs :func:`cistheory.train.local.local_update`;
- ``parts``: how an exit's part travels and is summed (the one place that knows);
- ``faults``: the bias that lost updates imply; ``problem``: the run's train config;
- ``stack``: :class:`FlowerStack`, Flower's processes on this machine.

``import cistheory`` never imports this package, and importing it loads neither Flower nor
torch: the names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from .apps import RUN_CONFIG, ServerOptions, client_app, node_index, server_app, train_part
    from .faults import FaultBias, failure_rates, fault_bias
    from .parts import PartSum, load_part, part_state
    from .problem import FlowerProblem, load_problem
    from .stack import APP_DIR, FlowerStack, RunOutcome, flower_env
    from .strategy import CISStrategy, exchange

_LAZY = {
    "APP_DIR": "stack",
    "CISStrategy": "strategy",
    "FaultBias": "faults",
    "FlowerProblem": "problem",
    "FlowerStack": "stack",
    "PartSum": "parts",
    "RUN_CONFIG": "apps",
    "RunOutcome": "stack",
    "ServerOptions": "apps",
    "client_app": "apps",
    "exchange": "strategy",
    "failure_rates": "faults",
    "fault_bias": "faults",
    "flower_env": "stack",
    "load_part": "parts",
    "load_problem": "problem",
    "node_index": "apps",
    "part_state": "parts",
    "server_app": "apps",
    "train_part": "apps",
}

__all__ = [
    "APP_DIR",
    "RUN_CONFIG",
    "CISStrategy",
    "FaultBias",
    "FlowerProblem",
    "FlowerStack",
    "PartSum",
    "RunOutcome",
    "ServerOptions",
    "client_app",
    "exchange",
    "failure_rates",
    "fault_bias",
    "flower_env",
    "load_part",
    "load_problem",
    "node_index",
    "part_state",
    "server_app",
    "train_part",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
