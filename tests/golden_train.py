"""Reference outputs of the trainer on CPU in float32, recorded once and compared bitwise.

:func:`outputs` trains a few small cases (the plain loop and the vmapped clients, a batch-norm
ResNet, a configuration file end to end) and returns, for every tensor, the SHA-256 of its
bytes and its float64 sum, and every recorded objective. ``tests/data/train_golden.json``
holds these values as the trainer computed them before devices, precisions and the many-runs
engine were added; ``tests/test_train_golden.py`` checks that CPU float32 results have not
moved by a single bit. Regenerate (only for a deliberate change of the numbers) with::

    python -m tests.golden_train --write
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

GOLDEN = Path(__file__).with_name("data") / "train_golden.json"


def tensor_digest(t: torch.Tensor) -> dict[str, Any]:
    """SHA-256 of a tensor's bytes (CPU, contiguous), its dtype, shape and float64 sum."""
    a = t.detach().cpu().contiguous()
    raw = a.numpy().tobytes()
    return {
        "sha256": hashlib.sha256(raw).hexdigest(),
        "dtype": str(a.dtype),
        "shape": list(a.shape),
        "sum": float(a.double().sum()) if a.is_floating_point() else int(a.sum()),
    }


def _state_digest(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    return {name: tensor_digest(t) for name, t in sorted(state.items())}


def _federated(make: str, vectorised: bool) -> dict[str, Any]:
    from cistheory.train.data import Dataset, synthetic_classification
    from cistheory.train.fedloop import FedConfig, StepSchedule, run_federated
    from cistheory.train.models import (
        EarlyExitCNN,
        EarlyExitMLP,
        EarlyExitResNet18,
        NestedLinear,
    )

    rng = np.random.default_rng(6)
    n = 9 if make in {"linear", "mlp"} else 4
    nodes, _, _ = synthetic_classification(n, [4 + 3 * i for i in range(n)], rng=rng)
    q = np.tile([0.3, 0.3, 0.3], (n, 1))
    q[0] = [0.0, 0.0, 1.0]
    models: dict[str, Callable[[], Any]] = {
        "linear": lambda: NestedLinear(8, (2, 4, 8), 4),
        "mlp": lambda: EarlyExitMLP(8, (8, 8, 8), 4),
        "cnn": lambda: EarlyExitCNN(1, (3, 4, 5), 4),
        "resnet-batch": lambda: EarlyExitResNet18((3, 9, 17), 4, in_channels=1, width=2),
        "resnet-group": lambda: EarlyExitResNet18(
            (3, 9, 17), 4, in_channels=1, width=2, norm="group"
        ),
    }
    if make not in {"linear", "mlp"}:
        nodes = [Dataset(d.x.reshape(-1, 1, 2, 4).repeat(1, 1, 2, 1), d.y) for d in nodes]
    cfg = FedConfig(
        rounds=3 if make in {"linear", "mlp"} else 2,
        tau=tuple(1 + i % 3 for i in range(n)),
        lr=StepSchedule("cosine", lr=0.2, final=0.02),
        batch_size=5,
        momentum=0.9,
        weight_decay=1e-2,
        vectorised=vectorised,
        selection_seed=3,
        batch_seed=4,
        init_seed=5,
        eval_every=1,
        device="cpu",  # the reference is of CPU results (recorded before devices existed)
    )
    model = models[make]()
    res = run_federated(model, nodes, q, [0.2, 0.3, 0.5], cfg)
    return {
        "state": _state_digest(res.state_dict),
        "picks": [r.picks for r in res.history],
        "objectives": [r.objectives for r in res.history],
        "objective_lt": [r.objective_lt for r in res.history],
    }


_CONFIG = """
spec = "reference:80-15-5"
checkpoint_every = 2
[model]
name = "mlp"
hidden = [8, 8, 8]
[data]
name = "synthetic"
samples = 350
test_samples = 200
[participation]
policy = "p40"
[rule]
name = "balanced-adj"
sigma = [0.00374, 0.00224, 0.00101]
[train]
rounds = 3
tau = 2
lr = 0.3
schedule = "cosine"
final_lr = 0.03
batch_size = 8
momentum = 0.9
weight_decay = 0.0005
vectorised = {vectorised}
device = "cpu"
"""


def _config_run(vectorised: bool) -> dict[str, Any]:
    from cistheory.train.config import load_config
    from cistheory.train.run import run_training

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "run.toml"
        path.write_text(_CONFIG.format(vectorised=str(vectorised).lower()), "utf-8")
        res = run_training(load_config(path), Path(d) / "out")
        state = torch.load(Path(d) / "out" / "model.pt", weights_only=True)
    keys = (
        "final_objectives",
        "test_accuracy",
        "system_accuracy",
        "served_accuracy_per_exit",
        "served_shares",
        "dropped_requests",
    )
    return {"state": _state_digest(state), **{k: res[k] for k in keys}}


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    **{
        f"federated/{make}/{'vmap' if vec else 'loop'}": (
            lambda make=make, vec=vec: _federated(make, vec)
        )
        for make in ("linear", "mlp", "cnn", "resnet-group")
        for vec in (False, True)
    },
    "federated/resnet-batch/loop": lambda: _federated("resnet-batch", False),
    "config/mlp/loop": lambda: _config_run(False),
    "config/mlp/vmap": lambda: _config_run(True),
}
"""Every recorded case by name."""


def outputs() -> dict[str, Any]:
    """Train every case with one torch thread; the digests by case name."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {name: case() for name, case in CASES.items()}
    finally:
        torch.set_num_threads(threads)


def figure_runs() -> dict[str, Any]:
    """The run records of the tiny accuracy and p40 figures (seed 0)."""
    from figures import accuracy, p40

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d:
        for mod in (accuracy, p40):
            path = mod.compute("tiny", Path(d), seed=0, progress=False)
            out[mod.SPEC.name] = json.loads(path.read_text(encoding="utf-8"))["runs"]
    return out


def cpu_capability() -> str:
    """torch's CPU kernel capability (``AVX2``, ``AVX512``, ...): the kernels that ran."""
    return str(torch.backends.cpu.get_cpu_capability())


if __name__ == "__main__":  # pragma: no cover - regeneration helper
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.golden_train --write")
    GOLDEN.parent.mkdir(exist_ok=True)
    doc = {
        "torch": torch.__version__,
        "cpu_capability": cpu_capability(),
        "cases": outputs(),
        "figures": figure_runs(),
    }
    GOLDEN.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
