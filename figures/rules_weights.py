"""Figure: serving shares and every rule's weights across the 7 reference rate splits.

Data: ``rules_weights.csv`` (one row per split, rule and exit). Plot: one panel per exit,
the weight of each rule against the share of requests served at the end devices.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cistheory as ct
from cistheory.rules import RULE_NAMES, rule_inputs, rule_weights

from ._common import (
    DODGE,
    FigureSpec,
    load_json,
    pyplot,
    rule_style,
    savefig,
    write_csv,
    write_json,
)

SPEC = FigureSpec(
    name="rules_weights",
    title="Serving shares and training weights of every rule across the rate splits",
    outputs=("rules_weights.csv", "rules_weights.json", "rules_weights.png", "rules_weights.pdf"),
    cost=2,
)

RULES = RULE_NAMES
CONFIG: dict[str, dict[str, Any]] = {
    "tiny": {"splits": ("80-15-5", "5-15-80"), "data": "equal"},
    "quick": {"splits": ct.RATE_SPLITS, "data": "equal"},
    "full": {"splits": ct.RATE_SPLITS, "data": "equal"},
}


def compute(size: str, out: Path, seed: int = 0) -> Path:
    """Compute the weights of every rule for each split; write CSV and JSON; return the JSON."""
    cfg = CONFIG[size]
    sigma = ct.REFERENCE_SIGMA["3-9-17"]
    rows = []
    for split in cfg["splits"]:
        cis = ct.reference_cis(split, cfg["data"])
        inputs = rule_inputs(cis, ct.deepest_exit(cis), sigma=sigma)  # flops: final weights
        for rule in RULES:
            lt = rule_weights(rule, inputs).tolist()
            for k, (lam_k, lt_k) in enumerate(zip(cis.lam, lt, strict=True)):
                rows.append(
                    {
                        "split": split,
                        "leaf_share": float(cis.lam[0]),
                        "rule": rule,
                        "exit": k + 1,
                        "lambda": float(lam_k),
                        "lt": float(lt_k),
                    }
                )
    write_csv(
        out / "rules_weights.csv", rows, ["split", "leaf_share", "rule", "exit", "lambda", "lt"]
    )
    path = out / "rules_weights.json"
    write_json(
        path, {"config": {**cfg, "splits": list(cfg["splits"]), "sigma": list(sigma)}, "rows": rows}
    )
    return path


def plot(data_path: Path, out: Path) -> list[Path]:
    """Plot from the JSON written by :func:`compute`: one panel per exit, every rule's weight
    against the share served at the end devices (markers offset sideways so that rules with
    equal weights, e.g. bound-optimal and Serving Rate, all stay visible)."""
    plt = pyplot()
    rows = load_json(data_path)["rows"]
    n_exits = max(r["exit"] for r in rows)
    fig, axes = plt.subplots(
        1, n_exits, figsize=(2.3 * n_exits + 0.3, 2.7), sharey=True, squeeze=False,
        layout="constrained",
    )
    rules = [r for r in RULES if any(row["rule"] == r for row in rows)]
    for k, ax in enumerate(axes[0], start=1):
        for j, rule in enumerate(rules):
            pts = sorted(
                (r["leaf_share"], r["lt"]) for r in rows if r["rule"] == rule and r["exit"] == k
            )
            if not pts:
                continue
            x, y = zip(*pts, strict=True)
            x = tuple(v + (j - (len(rules) - 1) / 2) * DODGE for v in x)
            color, marker = rule_style(rule)
            ax.plot(x, y, marker=marker, color=color, ms=3.5, lw=0.9, mfc="white"
                    if rule == "bound-optimal" else color, label=rule,
                    zorder=3 if rule == "bound-optimal" else 2)
        ax.set_title(f"exit {k}")
        ax.set_xlabel("share served at the end devices")
        ax.grid(True, lw=0.3, alpha=0.5)
    axes[0][0].set_ylabel("training weight lt_k")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=6, frameon=False)
    fig.suptitle(f"{SPEC.title} (7-node reference CIS; the flops rule at its final round)")
    paths = savefig(fig, out, "rules_weights")
    plt.close(fig)
    return paths
