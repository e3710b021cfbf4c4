"""Figure: predicted against exact ranking of designs over the grid of ``validate-rates --grid``.

For every configuration (data split x rate split x participation x rule x step x horizon) of
the nested least-squares problem, the exact ``E F_lambda(w_T) - F_lambda*`` (exact second
moments) against the second-generation bound and the first (left, log-log; a refused bound,
``inf``, is drawn on the top edge), and the pairwise ranking agreement of each bound with the
exact error, overall and by pair type (right; ``docs/theory.md`` Section 4.21 defines it).
Data: ``ranking.csv`` (one row per configuration) and ``ranking.json`` (rows and summary).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from cistheory.experiments.grid import GridConfig, jsonable, run_grid

from ._common import FigureSpec, load_json, pyplot, savefig, write_csv, write_json

SPEC = FigureSpec(
    name="ranking",
    title="Bound against exact error, and the ranking of designs (validate-rates --grid)",
    outputs=("ranking.csv", "ranking.json", "ranking.png", "ranking.pdf"),
    cost=12.0,
)

COLUMNS = ("data", "rate", "participation", "rule", "step", "eta", "T", "exact", "bound",
           "bound_old", "stable")


def _config(size: str) -> GridConfig:
    if size == "tiny":
        return GridConfig(data_splits={"equal": (60, 30, 15)}, rate_splits=("80-15-5", "5-15-80"),
                          rules=("serving-rate", "equal"), steps=(0.05, 0.4), horizons=(30,))
    return GridConfig.quick() if size == "quick" else GridConfig()


def compute(size: str, out: Path, seed: int = 0) -> Path:
    """Run the grid (exact, no randomness: ``seed`` is unused); write its rows and summary."""
    res = run_grid(_config(size))
    rows = [{k: r[k] for k in COLUMNS} for r in res["configurations"]]
    write_csv(out / "ranking.csv", jsonable(rows), COLUMNS)
    path = out / "ranking.json"
    write_json(path, jsonable({"rows": rows, "summary": res["summary"]}))
    return path


def _num(x: Any) -> float:
    return math.inf if x == "inf" else float(x)


def plot(data_path: Path, out: Path) -> list[Path]:
    """Scatter of bound against exact (both generations) and the ranking agreement bars."""
    plt = pyplot()
    doc = load_json(data_path)
    rows = doc["rows"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    exact = np.array([_num(r["exact"]) for r in rows])
    finite = np.isfinite(exact)
    top = max(np.nanmax([_num(r["bound_old"]) for r in rows if math.isfinite(_num(r["bound_old"]))]
                        or [1.0]), 10.0) * 3
    for key, mark, label in (("bound", "o", "second generation"), ("bound_old", "x", "first")):
        b = np.array([_num(r[key]) for r in rows])
        ax1.scatter(exact[finite], np.where(np.isfinite(b), b, top)[finite], marker=mark, s=10,
                    alpha=0.6, label=f"{label} (inf on the top edge)")
    lo = float(np.nanmin(exact[finite & (exact > 0)]))
    ax1.plot([lo, top], [lo, top], color="k", lw=0.8, label="bound = exact")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("exact E F_lambda(w_T) - F_lambda*")
    ax1.set_ylabel("bound")
    ax1.legend(fontsize=7)
    s = doc["summary"]["bounds"]
    kinds = ("overall", "same_policy_deepest", "same_policy_p40", "across_policies")
    x = np.arange(len(kinds))
    for j, (key, label) in enumerate((("bound", "second generation"), ("bound_old", "first"))):
        vals = [s[key]["ranking"]["agreement"]] + [s[key]["ranking_by_pair"][k]
                                                  for k in kinds[1:]]
        ax2.bar(x + 0.38 * j, [np.nan if v is None else v for v in vals], width=0.36,
                label=label)
    ax2.axhline(0.9, color="k", lw=0.8, ls="--")
    ax2.set_xticks(x + 0.19, ["all pairs", "deepest vs deepest", "p40 vs p40", "deepest vs p40"],
                   fontsize=8)
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("pairwise ranking agreement")
    ax2.legend(fontsize=7)
    summ = doc["summary"]
    fig.suptitle(f"{SPEC.title}\nviolations {summ['violations']}, median bound/exact "
                 f"{summ['median_ratio']:.3g}, ranking {summ['ranking_agreement']:.3f} "
                 f"(first generation {summ['ranking_agreement_old']:.3f})", fontsize=9)
    paths = savefig(fig, out, "ranking")
    plt.close(fig)
    return paths
