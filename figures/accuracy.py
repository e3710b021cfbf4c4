"""Figure: system accuracy against the share served at the end devices, for every rule.

For each data split (equal, 2x, tiny) and each of the 7 reference rate splits, an early-exit
MLP is trained on the shipped handwritten digits in the 7-node CIS with each rule's
``lt`` (every node trains its deepest exit), and the test set is served through the CIS.
Data: ``accuracy.csv`` (one row per run) and ``accuracy.json`` (runs and per-cell mean and
95% confidence half-width over seeds). Plot: one panel per data split, mean with bands.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import cistheory as ct

from ._common import FigureSpec, load_json, pyplot, savefig, write_csv, write_json
from ._experiment import RunSpec, Setting, mean_ci, run_grid
from ._experiment import workers_for as _workers

SPEC = FigureSpec(
    name="accuracy",
    title="System accuracy vs share served at the end devices, per rule and data split",
    outputs=("accuracy.csv", "accuracy.json", "accuracy.png", "accuracy.pdf"),
)

RULES = ("serving-rate", "equal", "flops", "opt-err", "balanced-adj", "bound-optimal")
DATA = ("equal", "2x", "tiny")

CONFIG: dict[str, dict[str, Any]] = {
    "tiny": {
        "splits": ("80-15-5", "5-15-80"),
        "data": ("tiny",),
        "rules": ("serving-rate", "balanced-adj"),
        "seeds": (0,),
        "setting": Setting(rounds=2, max_tau=3, batch_size=32, hidden=(16, 16, 16)),
    },
    "quick": {
        "splits": ct.RATE_SPLITS,
        "data": DATA,
        "rules": RULES,
        "seeds": (0, 1, 2),
        "setting": Setting(
            rounds=20, max_tau=20, batch_size=32, momentum=0.9, lr=0.05, lr_final=0.005
        ),
    },
    "full": {
        "splits": ct.RATE_SPLITS,
        "data": DATA,
        "rules": RULES,
        "seeds": (0, 1, 2, 3, 4),
        "setting": Setting(rounds=40, batch_size=32, momentum=0.9, lr=0.05, lr_final=0.005),
    },
}


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean accuracy and 95% half-width over seeds for each (data, split, rule)."""
    cells: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for r in runs:
        cells.setdefault((r["data"], r["split"], r["rule"], r["participation"]), []).append(r)
    out = []
    for (data, split, rule, part), rs in sorted(cells.items()):
        mean, half = mean_ci([r["accuracy"] for r in rs])
        out.append(
            {
                "data": data,
                "split": split,
                "leaf_share": rs[0]["leaf_share"],
                "rule": rule,
                "participation": part,
                "seeds": len(rs),
                "accuracy": mean,
                "ci": half,
                "chi2": rs[0]["chi2"],
            }
        )
    return out


def compute(size: str, out: Path, seed: int = 0, progress: bool = True) -> Path:
    """Run (or resume) the grid; write per-run CSV and the summary JSON; return the JSON."""
    cfg = CONFIG[size]
    specs = [
        RunSpec(split, data, rule, seed + s, setting=cfg["setting"])
        for data in cfg["data"]
        for s in cfg["seeds"]
        for split in cfg["splits"]
        for rule in cfg["rules"]
    ]

    def tick(j: int, n: int, spec: RunSpec) -> None:
        if progress and (j % 10 == 0):
            print(
                f"      training {j + 1}/{n}: data={spec.data} split={spec.split} "
                f"rule={spec.rule} seed={spec.seed}",
                flush=True,
            )

    runs = run_grid(specs, out / "cache" / "accuracy", tick, workers=_workers(size))
    write_csv(
        out / "accuracy.csv",
        runs,
        ["data", "split", "leaf_share", "rule", "seed", "participation", "accuracy", "chi2"],
    )
    path = out / "accuracy.json"
    write_json(
        path,
        {
            "config": {
                "size": size,
                "splits": list(cfg["splits"]),
                "data": list(cfg["data"]),
                "rules": list(cfg["rules"]),
                "seeds": [seed + s for s in cfg["seeds"]],
                "setting": asdict(cfg["setting"]),
            },
            "runs": runs,
            "summary": summarise(runs),
        },
    )
    return path


def plot(data_path: Path, out: Path) -> list[Path]:
    """Plot from the JSON written by :func:`compute`."""
    plt = pyplot()
    doc = load_json(data_path)
    summ = doc["summary"]
    datas = doc["config"]["data"]
    fig, axes = plt.subplots(1, len(datas), figsize=(4.6 * len(datas), 3.6), squeeze=False)
    for ax, data in zip(axes[0], datas, strict=True):
        for rule in doc["config"]["rules"]:
            pts = sorted(
                (c["leaf_share"], c["accuracy"], c["ci"])
                for c in summ
                if c["data"] == data and c["rule"] == rule
            )
            if not pts:
                continue
            x, y, h = (list(v) for v in zip(*pts, strict=True))
            ax.plot(x, y, marker="o", ms=3, label=rule)
            ax.fill_between(
                x,
                [a - b for a, b in zip(y, h, strict=True)],
                [a + b for a, b in zip(y, h, strict=True)],
                alpha=0.15,
            )
        ax.set_title(f"data split: {data}")
        ax.set_xlabel("share of requests served at end devices")
    axes[0][0].set_ylabel("system accuracy (mean, 95% CI)")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(f"{SPEC.title} ({len(doc['config']['seeds'])} seeds)", fontsize=10)
    paths = savefig(fig, out, "accuracy")
    plt.close(fig)
    return paths
