"""Figure: system accuracy against the share served at the end devices, for every rule.

For each data split (equal, 2x, tiny) and each of the 7 reference rate splits, an early-exit
MLP is trained on the shipped handwritten digits in the 7-node CIS with each rule's
``lt`` (every node trains its deepest exit), and the test set is served through the CIS.
Data: ``accuracy.csv`` (one row per run) and ``accuracy.json`` (runs and per-cell mean and
95% confidence half-width over seeds). Plot: one column per data split; the mean accuracy
per rule above, each rule's paired difference to Serving Rate below, with 95% error bars
(filled markers where the interval excludes zero).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import cistheory as ct
from cistheory.rules import RULE_NAMES

from ._common import (
    FigureSpec,
    load_json,
    pyplot,
    rule_style,
    savefig,
    training_progress,
    write_csv,
    write_json,
)
from ._experiment import RunSpec, Setting, mean_ci, run_grid
from ._experiment import workers_for as _workers

SPEC = FigureSpec(
    name="accuracy",
    title="System accuracy vs share served at the end devices, per rule and data split",
    outputs=("accuracy.csv", "accuracy.json", "accuracy.png", "accuracy.pdf"),
    cost=1350,
)

RULES = RULE_NAMES
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
    """Per (data, split, rule): mean accuracy and 95% half-width over seeds, and the paired
    difference to Serving Rate (same seed: same data split, initialisation and draws)."""
    cells: dict[tuple[str, str, str, str], dict[int, dict[str, Any]]] = {}
    for r in runs:
        key = (r["data"], r["split"], r["rule"], r["participation"])
        cells.setdefault(key, {})[r["seed"]] = r
    out = []
    for (data, split, rule, part), by_seed in sorted(cells.items()):
        rs = [by_seed[k] for k in sorted(by_seed)]
        mean, half = mean_ci([r["accuracy"] for r in rs])
        entry: dict[str, Any] = {
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
        ref = cells.get((data, split, "serving-rate", part))
        if ref is not None:
            common = sorted(set(ref) & set(by_seed))
            d_mean, d_half = mean_ci([by_seed[k]["accuracy"] - ref[k]["accuracy"] for k in common])
            entry["diff_vs_serving_rate"] = d_mean
            entry["diff_ci"] = d_half
        out.append(entry)
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

    tick = training_progress("accuracy", progress)
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


def _cells(summ: list[dict[str, Any]], data: str, rule: str) -> list[dict[str, Any]]:
    return sorted(
        (c for c in summ if c["data"] == data and c["rule"] == rule), key=lambda c: c["leaf_share"]
    )


def _series(ax: Any, x: list[float], y: list[float], h: list[float] | None, rule: str,
            real: list[bool] | None = None) -> None:
    """Means joined by a line; with ``h``, a 95% error bar at each split; with ``real``, a
    marker filled where the interval excludes zero and hollow where it includes it."""
    color, marker = rule_style(rule)
    ax.plot(x, y, "-", color=color, lw=0.9, alpha=0.7, zorder=2)
    if h is not None:
        ax.errorbar(x, y, yerr=h, fmt="none", ecolor=color, elinewidth=0.9, capsize=1.5,
                    zorder=3)
    filled = real if real is not None else [True] * len(x)
    for xi, yi, f in zip(x, y, filled, strict=True):
        ax.plot([xi], [yi], marker=marker, ms=4.0, color=color, mec=color,
                mfc=color if f else "white", mew=1.0, zorder=4, ls="none")


def plot(data_path: Path, out: Path, stem: str = "accuracy") -> list[Path]:
    """Plot from the JSON written by :func:`compute` (files ``stem.png`` and ``stem.pdf``).

    The rate splits are evenly spaced along x (labelled by the share served at the end
    devices). Top row: mean system accuracy per rule over seeds. Bottom row: each rule's
    paired difference to Serving Rate (same seeds) with its 95% error bar; a filled marker
    where the interval excludes zero (a real difference), hollow where it includes it. The
    rules' markers are offset sideways so that none hides another.
    """
    plt = pyplot()
    doc = load_json(data_path)
    summ = doc["summary"]
    rules = list(doc["config"]["rules"])
    datas = doc["config"]["data"]
    shares = sorted({c["leaf_share"] for c in summ})
    pos = {v: i for i, v in enumerate(shares)}
    width = 0.8 / max(len(rules), 1)  # the rules of one split share 80% of a slot
    fig, axes = plt.subplots(
        2, len(datas), figsize=(2.45 * len(datas) + 0.3, 4.8), squeeze=False, sharex=True,
        sharey="row", layout="constrained",
    )
    for col, data in enumerate(datas):
        for j, rule in enumerate(rules):
            cells = _cells(summ, data, rule)
            if not cells:
                continue
            x = [pos[c["leaf_share"]] + (j - (len(rules) - 1) / 2) * width for c in cells]
            _series(axes[0][col], x, [c["accuracy"] for c in cells], None, rule)
            if rule != "serving-rate" and "diff_vs_serving_rate" in cells[0]:
                d = [c["diff_vs_serving_rate"] for c in cells]
                h = [c["diff_ci"] for c in cells]
                # one seed gives no interval: nothing is shown as a real difference then
                real = [
                    c["seeds"] >= 2 and abs(m) > e for c, m, e in zip(cells, d, h, strict=True)
                ]
                _series(axes[1][col], x, d, h, rule, real)
        axes[0][col].set_title(f"data split {data}")
        axes[1][col].axhline(0.0, color="k", lw=0.6, zorder=1)
        for ax in axes[:, col]:
            ax.grid(True, axis="y", lw=0.3, alpha=0.5)
            for edge in range(len(shares) - 1):
                ax.axvline(edge + 0.5, color="0.85", lw=0.5, zorder=0)
    axes[1][0].set_xticks(range(len(shares)), [f"{100 * v:.0f}" for v in shares])
    axes[1][len(datas) // 2].set_xlabel("% of requests served at the end devices (rate split)")
    axes[0][0].set_ylabel("system accuracy\n(mean over seeds)")
    axes[1][0].set_ylabel("minus Serving Rate\n(paired by seed, 95% CI)")
    handles = [
        plt.Line2D([], [], color=rule_style(r)[0], marker=rule_style(r)[1], ms=4.0, lw=0.9,
                   label=r)
        for r in rules
    ]
    handles.append(plt.Line2D([], [], color="k", marker="o", mfc="white", ls="none", ms=4.0,
                              label="hollow: interval includes 0"))
    fig.legend(handles=handles, loc="outside lower center", ncols=4, frameon=False)
    seeds = len(doc["config"]["seeds"])
    rounds = doc["config"]["setting"]["rounds"]
    what = doc["config"].get("what", "7-node CIS, digits MLP")
    fig.suptitle(
        f"System accuracy against the share served at the end devices, per rule "
        f"({seeds} seeds, {rounds} rounds; {what})"
    )
    paths = savefig(fig, out, stem)
    plt.close(fig)
    return paths
