"""The paper's figure grid on CIFAR: ``python -m figures --paper --data-dir DIR``.

The shipped reference configurations (``cistheory/data/configs/``, ``paper:NAME`` for
``cistheory train``) are trained for every rule of the reference release (Serving Rate,
Equal, FLOPs, Opt-err, Balanced Adj), every reference rate split and each seed, on the
7-node tree with the equal, 2x and tiny data splits, the tiny split with p40
participation, and the 100-node tree with the Dirichlet split; the test set is then served
through the CIS of every rate split and the system accuracy is plotted against the share
served at the end devices (one panel per data configuration), as in the accuracy figure.

Each distinct training (keyed by its configuration with the rate split left out and the
rule replaced by the weights it gives: a rule whose weights do not depend on the serving
shares trains once for every split) runs as ``cistheory train`` does
(:func:`cistheory.train.run.run_training`) in its own folder under ``OUT/cache/paper/``,
with atomic checkpoints: an interrupted grid resumes run by run, each run from its last
checkpoint. Its test logits are kept beside it (``test_outputs.npz``, float32) and every rate
split is evaluated from them.

``--tiny`` runs a small version of the same path end to end for the tests (two data
configurations, two rate splits, two rules; a ResNet-18 of width 2 on 240 images, two rounds of
two local steps); ``--family ordered-dropout`` trains the width-nested
ResNet-18 (widths 0.25, 0.5, 1.0) instead of the early exits, with the FLOPs rule's exit
costs counted on that model.
"""

from __future__ import annotations

import hashlib
import io
import json
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import cistheory as ct
from cistheory.rules import get_rule, rule_inputs

from ._common import FigureSpec, atomic_write_bytes, load_json, write_csv, write_json

__all__ = ["SPEC", "PaperOptions", "cell_config", "compute", "plot", "run"]

SPEC = FigureSpec(
    name="paper",
    title="The paper's grid on CIFAR: system accuracy vs share served at the end devices",
    outputs=("paper.csv", "paper.json", "paper.png", "paper.pdf"),
)

RULES = ("serving-rate", "equal", "flops", "opt-err", "balanced-adj")
VARIANTS = ("7node-equal", "7node-2x", "7node-tiny", "7node-tiny-p40", "100node-dirichlet")
TINY_VARIANTS = ("7node-equal", "7node-tiny-p40")
TINY_SPLITS = ("80-15-5", "5-15-80")
TINY_RULES = ("serving-rate", "equal")
TINY: dict[str, Any] = {
    "train": {"rounds": 2, "batch_size": 16, "tau": 2, "checkpoint_every": 1},
    "model": {"width": 2},
    "samples": 240,
}
_FILES = {
    "cifar10": ("data_batch_1", "cifar-10-batches-py"),
    "cifar100": ("train", "cifar-100-python"),
}


@dataclass(frozen=True)
class PaperOptions:
    """What ``python -m figures --paper`` was asked for."""

    data_dir: Path
    dataset: str = "cifar10"
    family: str = "early-exit"
    device: str = "auto"
    precision: str = "fp32"
    size: str = "full"
    seeds: int = 1

    def files(self) -> Path:
        """The directory holding the dataset's pickle files (``DIR`` or its usual subfolder)."""
        first, sub = _FILES[self.dataset]
        for cand in (self.data_dir, self.data_dir / sub):
            if (cand / first).is_file():
                return cand
        raise ct.CISInputError(
            "--data-dir",
            str(self.data_dir),
            f"no {self.dataset} files ({first}) there or in {sub}/",
        )


def _with_split(spec: str, split: str) -> str:
    parts = spec.split(":")
    parts[1] = split
    return ":".join(parts)


# long: one shipped configuration turned into one cell's (split, rule, seed, family, size)
def cell_config(
    opts: PaperOptions, variant: str, split: str, rule: str, seed: int
) -> dict[str, Any]:
    """The validated ``cistheory train`` configuration of one cell of the grid."""
    from cistheory.train.config import parse_config, shipped_config_text

    doc = tomllib.loads(shipped_config_text(f"{opts.dataset}-{variant}"))
    doc["spec"] = _with_split(doc["spec"], split)
    doc["rule"]["name"] = rule
    base = 5 * seed
    doc["seeds"] = {
        k: base + j for j, k in enumerate(("selection", "batch", "init", "data", "augment"))
    }
    doc["data"]["path"] = str(opts.files())
    doc["train"]["device"] = opts.device
    doc["train"]["precision"] = opts.precision
    if opts.size == "tiny":
        doc["train"].update({k: v for k, v in TINY["train"].items() if k != "checkpoint_every"})
        doc["checkpoint_every"] = TINY["train"]["checkpoint_every"]
        doc["model"].update(TINY["model"])
        doc["data"]["samples"] = TINY["samples"]
    if opts.family == "ordered-dropout":
        doc["model"] = {
            "name": "resnet18",
            "family": "ordered-dropout",
            "widths": [0.25, 0.5, 1.0],
            "width": doc["model"]["width"],
        }
        doc["rule"]["exit_flops"] = _od_flops(doc["model"]["width"], opts.dataset)
    return parse_config(doc)


def _od_flops(width: int, dataset: str) -> list[float]:
    """Relative FLOPs of the width-nested ResNet-18's sub-models on one CIFAR image."""
    import torch

    from cistheory.train.models import exit_flops
    from cistheory.train.ordered_dropout import OrderedDropoutResNet18

    model = OrderedDropoutResNet18(
        (0.25, 0.5, 1.0), 10 if dataset == "cifar10" else 100, width=width
    )
    f = exit_flops(model, torch.zeros(1, 3, 32, 32))
    return [v / f[-1] for v in f]


def _lt_schedule(cfg: dict[str, Any]) -> list[list[float]]:
    """The weights of every round, from the registry (for the training key only)."""
    cis = ct.load_spec(cfg["spec"])
    part = ct.named_policy(cis, cfg["participation"]["policy"])
    rule = get_rule(cfg["rule"]["name"])
    horizon = int(cfg["rule"].get("horizon", cfg["train"].get("rounds", 10)))
    inputs = rule_inputs(
        cis,
        part,
        sigma=cfg["rule"].get("sigma"),
        exit_flops=cfg["rule"].get("exit_flops"),
        horizon=horizon,
    )
    if rule.per_round:
        from dataclasses import replace

        return [
            rule.weights(replace(inputs, round_t=t)).tolist()
            for t in range(int(cfg["train"]["rounds"]))
        ]
    return [rule.weights(inputs).tolist()]


def training_key(cfg: dict[str, Any]) -> str:
    """The configuration with the rate split left out and the rule replaced by its weights."""
    body = {k: v for k, v in cfg.items() if k not in {"output", "spec", "rule"}}
    body["spec"] = _with_split(cfg["spec"], "*")
    body["rule"] = {"lt": [[round(x, 12) for x in w] for w in _lt_schedule(cfg)]}
    body["data"] = {k: v for k, v in cfg["data"].items() if k != "path"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:20]


def _train(cfg: dict[str, Any], folder: Path) -> dict[str, np.ndarray]:
    """Train (or resume, or reuse) one run; its test logits and labels."""
    import torch

    from cistheory.train.config import build_experiment
    from cistheory.train.device import resolve_device
    from cistheory.train.run import exit_outputs, run_training

    outputs = folder / "test_outputs.npz"
    if outputs.is_file():
        with np.load(outputs) as f:
            return {"logits": f["logits"], "labels": f["labels"]}
    done = folder / "results.json"
    if not (done.is_file() and load_json(done).get("complete")):
        # a checkpoint: continue it; none: start afresh over whatever a crash left behind
        resume = (folder / "checkpoint.pt").is_file()
        run_training(cfg, folder, resume=resume, force=not resume)
    exp = build_experiment(cfg)
    exp.model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
    assert exp.test is not None
    logits = exit_outputs(exp.model, exp.test, resolve_device(exp.fed.device)).astype(np.float32)
    labels = exp.test.y.numpy()
    buf = io.BytesIO()
    np.savez(buf, logits=logits, labels=labels)
    atomic_write_bytes(outputs, buf.getvalue())
    return {"logits": logits, "labels": labels}


def _evaluate(cfg: dict[str, Any], out: dict[str, np.ndarray]) -> dict[str, Any]:
    from cistheory.train.evaluate import evaluate_cis

    cis = ct.load_spec(cfg["spec"])
    seed = int(cfg["seeds"]["data"])
    ev = evaluate_cis(
        cis, out["logits"].astype(np.float64), out["labels"], rng=np.random.default_rng(seed)
    )
    lt = np.asarray(_lt_schedule(cfg)[-1])
    return {
        "accuracy": float(ev.accuracy),
        "exit_accuracy": [float(a) for a in ev.exit_accuracy],
        "shares": [float(x) for x in ev.shares],
        "lt": lt.tolist(),
        "chi2": float(np.sum((cis.lam - lt) ** 2 / lt)),
        "leaf_share": float(cis.lam[0]),
    }


# long: the grid's cells, their distinct trainings, evaluation, the data files
def compute(opts: PaperOptions, out: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Train (or resume) every distinct training of the grid, evaluate every cell, write
    ``paper.csv`` and ``paper.json``; return the JSON's path."""
    from .accuracy import summarise

    tiny = opts.size == "tiny"
    variants: tuple[str, ...] = TINY_VARIANTS if tiny else VARIANTS
    splits: tuple[str, ...] = TINY_SPLITS if tiny else ct.RATE_SPLITS
    rules: tuple[str, ...] = TINY_RULES if tiny else RULES
    cells = [
        (variant, split, rule, seed)
        for variant in variants
        for seed in range(opts.seeds)
        for split in splits
        for rule in rules
    ]
    cache = out / "cache" / "paper"
    configs = {cell: cell_config(opts, *cell) for cell in cells}
    keys = {cell: training_key(cfg) for cell, cfg in configs.items()}
    distinct = list(dict.fromkeys(keys.values()))
    trained: dict[str, dict[str, np.ndarray]] = {}
    for j, key in enumerate(distinct):
        cell = next(c for c in cells if keys[c] == key)
        if progress is not None:
            progress(
                f"training {j + 1}/{len(distinct)}: {cell[0]} split={cell[1]} "
                f"rule={cell[2]} seed={cell[3]}"
            )
        trained[key] = _train(configs[cell], cache / f"train-{key}")
    runs = []
    for cell in cells:
        variant, split, rule, seed = cell
        rec = {
            "data": variant,
            "split": split,
            "rule": rule,
            "seed": seed,
            "participation": configs[cell]["participation"]["policy"],
            "family": opts.family,
            "dataset": opts.dataset,
            "training": keys[cell],
            **_evaluate(configs[cell], trained[keys[cell]]),
        }
        runs.append(rec)
    write_csv(
        out / "paper.csv",
        runs,
        [
            "data",
            "split",
            "leaf_share",
            "rule",
            "seed",
            "participation",
            "family",
            "accuracy",
            "chi2",
        ],
    )
    path = out / "paper.json"
    write_json(
        path,
        {
            "config": {
                "what": f"{opts.dataset}, {opts.family} ResNet-18",
                "setting": {"rounds": int(next(iter(configs.values()))["train"]["rounds"])},
                "options": {k: str(v) for k, v in asdict(opts).items()},
                "data": list(variants),
                "splits": list(splits),
                "rules": list(rules),
                "seeds": list(range(opts.seeds)),
                "trainings": len(distinct),
            },
            "runs": runs,
            "summary": summarise(runs),
        },
    )
    return path


def plot(data_path: Path, out: Path) -> list[Path]:
    """One panel per data configuration, as the accuracy figure (``paper.png``, ``.pdf``)."""
    from .accuracy import plot as accuracy_plot

    return accuracy_plot(data_path, out, stem="paper")


def run(opts: PaperOptions, out: Path, plot_only: bool = False) -> list[Path]:
    """Compute (unless ``plot_only``) and plot; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / "paper.json"
    if not plot_only:
        from cistheory.cli._output import progress

        data = compute(opts, out, progress=lambda line: progress(f"      paper: {line}"))
        return [out / "paper.csv", data, *plot(data, out)]
    return [data, *plot(data, out)]
