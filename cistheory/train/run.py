"""A training run from a configuration, with its outputs (``cistheory train``).

:func:`run_training` trains as the configuration says (``docs/trainer.md``), writes
``results.json``, ``history.csv`` and ``model.pt`` to the output directory and an atomic
``checkpoint.pt`` every ``checkpoint_every`` rounds; with ``resume`` it continues from the
checkpoint, and the final result is bitwise that of an uninterrupted run.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write_bytes, check_folder
from ..errors import CISInputError
from .checkpoint import load_checkpoint, save_checkpoint
from .config import Experiment, build_experiment, config_digest
from .data import Dataset
from .device import resolve_device
from .evaluate import evaluate_cis
from .fedloop import LoopState, RoundRecord, TrainResult, exit_objectives, run_federated
from .models import EarlyExitModel

__all__ = [
    "OUTPUTS",
    "check_output_folder",
    "checkpoint_to_resume",
    "exit_outputs",
    "results_document",
    "run_training",
    "write_outputs",
]

_CHECKPOINT = "checkpoint.pt"


@torch.no_grad()
def _test_metrics(model: EarlyExitModel, test: Dataset, chunk: int = 512) -> dict[str, Any]:
    """Per-exit test accuracy (classification) or mean squared error (regression)."""
    model.eval()
    k = model.n_exits
    correct = np.zeros(k)
    sq = np.zeros(k)
    for s in range(0, len(test), chunk):
        x, y = test.x[s : s + chunk], test.y[s : s + chunk]
        for j, out in enumerate(model.forward_all(x)):
            if model.task == "classification":
                correct[j] += float((out.argmax(dim=1) == y).sum())
            else:
                sq[j] += float(((out[:, 0] - y) ** 2).sum())
    model.train()
    n = max(len(test), 1)
    if model.task == "classification":
        return {"test_accuracy": (correct / n).tolist()}
    return {"test_mse": (sq / n).tolist()}


@torch.no_grad()
def exit_outputs(
    model: EarlyExitModel, test: Dataset, device: torch.device, chunk: int = 1024
) -> np.ndarray:
    """Logits of every exit for every test sample, (N_test, K, C), float64 on the CPU.

    On the CPU a test set of up to ``8 * chunk`` samples goes through at once (as it always
    has: the same numbers), a larger one (CIFAR's 10,000 images) chunk by chunk to bound the
    memory; on a GPU, chunk by chunk on the device."""
    model.eval()
    try:
        if device.type == "cpu" and len(test) <= 8 * chunk:
            return torch.stack(model.forward_all(test.x), dim=1).double().numpy()
        model.to(device)
        parts = [
            torch.stack(model.forward_all(test.x[s : s + chunk].to(device)), dim=1).double().cpu()
            for s in range(0, len(test), chunk)
        ]
        return torch.cat(parts).numpy()
    finally:
        model.cpu()
        model.train()


def _cis_metrics(
    outs: np.ndarray, test: Dataset, cis: Any, seed: int, score: str
) -> dict[str, Any]:
    """Serve the test set through the CIS (easiest requests first): system accuracy, and the
    loss, top-1 accuracy and count of the requests each node and each exit answered."""
    ev = evaluate_cis(cis, outs, test.y.numpy(), rng=np.random.default_rng(seed), score=score)
    served = ev.exit_served
    node_loss, exit_loss = ev.per_node_loss, ev.per_exit_loss
    return {
        "system_accuracy": float(ev.accuracy),
        "served_accuracy_per_exit": [
            float(c / n) if n else None for c, n in zip(ev.exit_correct, served, strict=True)
        ],
        "served_shares": [float(x) for x in ev.shares],
        "dropped_requests": int(ev.dropped),
        "serving_score": score,
        "per_node": [
            {
                "node": str(cis.node_ids[i]),
                "exit": int(cis.capacity[i]),
                "served": int(ev.node_served[i]),
                "accuracy": float(ev.node_correct[i] / ev.node_served[i])
                if ev.node_served[i]
                else None,
                "loss": node_loss.get(i),
            }
            for i in range(cis.n_nodes)
        ],
        "per_exit": [
            {
                "exit": k + 1,
                "served": int(served[k]),
                "accuracy": float(ev.exit_correct[k] / served[k]) if served[k] else None,
                "loss": exit_loss.get(k + 1),
            }
            for k in range(cis.n_exits)
        ],
    }


def _history_csv(history: list[RoundRecord], k: int) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "round",
            "lr",
            "idle",
            *(f"picked_exit_{j}" for j in range(1, k + 1)),
            *(f"F_{j}" for j in range(1, k + 1)),
            "F_lt",
        ]
    )
    for r in history:
        picks = np.asarray(r.picks)
        counts = [int((picks == j).sum()) for j in range(k + 1)]
        objs = r.objectives if r.objectives is not None else [None] * k
        w.writerow(
            [
                r.round,
                repr(r.lr),
                *counts,
                *("" if v is None else repr(v) for v in objs),
                "" if r.objective_lt is None else repr(r.objective_lt),
            ]
        )
    return buf.getvalue()


OUTPUTS = (_CHECKPOINT, "results.json", "history.csv", "model.pt")
"""The files a run writes into its output folder."""


def check_output_folder(
    out_dir: str | Path, *, resume: bool = False, force: bool = False, field: str = "out"
) -> Path:
    """Refuse an output folder before any work: a file, a path under a file, a folder that
    cannot be written, or (unless ``resume`` or ``force``) one that holds an earlier run.

    Raises
    ------
    CISInputError
        Naming ``field`` and the path.
    """
    out = check_folder(out_dir, field)
    if resume and force:
        raise CISInputError(field, str(out_dir), "give --resume or --force, not both")
    earlier = [name for name in OUTPUTS if (out / name).exists()]
    if earlier and not (resume or force):
        raise CISInputError(
            field,
            str(out_dir),
            f"holds an earlier run ({', '.join(earlier)}); resume it with --resume, "
            "overwrite it with --force, or choose another folder",
        )
    if resume and not (out / _CHECKPOINT).is_file():
        raise CISInputError(field, str(out_dir), f"has no {_CHECKPOINT} to resume from")
    return out


def run_training(
    cfg: Mapping[str, Any],
    out_dir: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    stop_after: int | None = None,
    on_round: Callable[[LoopState, int], None] | None = None,
) -> dict[str, Any]:
    """Run a validated configuration; write outputs to ``out_dir``; return the results dict.

    ``on_round(state, rounds)`` is called after every round with the loop's state and the
    number of rounds of the run (for progress). A folder holding an earlier run is refused
    unless ``resume`` (continue it from its checkpoint) or ``force`` (overwrite it).

    Raises
    ------
    CISInputError
        An output folder that cannot be used (:func:`check_output_folder`), ``resume``
        without a checkpoint, a corrupt checkpoint, or one of another configuration or model.
    """
    resolve_device(cfg["train"].get("device", "auto"), "train.device")  # before any write
    out = check_output_folder(out_dir, resume=resume, force=force)
    digest = config_digest(cfg)
    exp = build_experiment(cfg)
    ck = checkpoint_to_resume(out, digest, exp) if resume else None
    out.mkdir(parents=True, exist_ok=True)
    total = exp.fed.rounds
    start = int(ck["rounds_done"]) if ck else 0
    target = total if stop_after is None else min(total, start + stop_after)
    callback = _checkpointing(
        out, digest, int(cfg["checkpoint_every"]), {total, target}, total, on_round
    )
    res = run_federated(
        exp.model,
        exp.node_data,
        exp.participation.q,
        exp.lt,
        exp.fed,
        callback=callback,
        resume=ck,
        stop_after=stop_after,
    )
    results = results_document(cfg, digest, exp, res)
    write_outputs(out, results, res, exp.model.n_exits)
    return results


def checkpoint_to_resume(out: Path, digest: str, exp: Experiment) -> dict[str, Any]:
    """The checkpoint in ``out``, refused unless it is intact, of the configuration
    ``digest``, and holds the experiment's model (same tensors, same shapes) and at most its
    rounds."""
    path = out / _CHECKPOINT
    ck = load_checkpoint(path, config_digest=digest)
    want = {k: tuple(v.shape) for k, v in exp.model.state_dict().items()}
    model = ck["model"]
    have = {k: tuple(v.shape) for k, v in model.items()} if isinstance(model, dict) else {}
    if have != want:
        raise CISInputError("checkpoint", str(path), "its model does not match the configuration's")
    done = ck["rounds_done"]
    if isinstance(done, bool) or not isinstance(done, int) or not 0 <= done <= exp.fed.rounds:
        raise CISInputError("checkpoint", str(path), f"rounds_done = {done!r} is not in "
                            f"0..{exp.fed.rounds}")
    return ck


def _checkpointing(
    out: Path,
    digest: str,
    every: int,
    always: set[int],
    total: int,
    on_round: Callable[[LoopState, int], None] | None,
) -> Callable[[LoopState], None]:
    """The loop's callback: a checkpoint every ``every`` rounds and after the rounds in
    ``always``, then ``on_round``."""

    def callback(state: LoopState) -> None:
        done = state.rounds_done
        if done % every == 0 or done in always:
            save_checkpoint(out / _CHECKPOINT, state, meta={"config_digest": digest})
        if on_round is not None:
            on_round(state, total)

    return callback


def results_document(
    cfg: Mapping[str, Any], digest: str, exp: Experiment, res: TrainResult
) -> dict[str, Any]:
    """The ``results.json`` document of a run."""
    fk = exit_objectives(exp.model, exp.node_data, exp.participation.q)
    results: dict[str, Any] = {
        "config": dict(cfg),
        "config_digest": digest,
        "spec": exp.cis.name,
        "lambda": exp.cis.lam.tolist(),
        "weights": exp.lt_info,
        "q": exp.participation.q.tolist(),
        "node_samples": [len(d) for d in exp.node_data],
        "rounds_done": res.rounds_done,
        "complete": res.rounds_done == exp.fed.rounds,
        "final_objectives": fk,
        "history": [r.as_dict() for r in res.history],
    }
    results["device"] = str(resolve_device(exp.fed.device))
    results["precision"] = exp.fed.precision
    if exp.test is not None and len(exp.test):
        results.update(_test_metrics(exp.model, exp.test))
        if exp.model.task == "classification":
            seed = int(cfg.get("seeds", {}).get("data", 0))
            outs = exit_outputs(exp.model, exp.test, resolve_device(exp.fed.device))
            score = str(cfg.get("serving", {}).get("score", "entropy"))
            results.update(_cis_metrics(outs, exp.test, exp.cis, seed, score))
    return results


def write_outputs(out: Path, results: dict[str, Any], res: TrainResult, k: int) -> None:
    """``results.json``, ``history.csv`` and ``model.pt``, each written atomically."""
    atomic_write_bytes(out / "results.json", (json.dumps(results, indent=1) + "\n").encode())
    atomic_write_bytes(out / "history.csv", _history_csv(res.history, k).encode())
    buf = io.BytesIO()
    torch.save(res.state_dict, buf)
    atomic_write_bytes(out / "model.pt", buf.getvalue())
