"""Figure: the bound's three terms along the path from Serving Rate to inverse variance.

On the 7-node reference CIS (80-15-5, tiny data, every node training its deepest exit) the
weights ``lt(s) = (1 - s) lambda + s lt_iv`` run from Serving Rate (``s = 0``, no bias) to
the inverse-variance rule (``s = 1``, least variance); Balanced Adj is ``s = 1/2``. For each
``s`` the generalisation, bias and optimisation terms of the full bound (Corollary of
``docs/theory.md``) are computed with :func:`cistheory.cis_bound`, under the illustrative
constants :func:`convex.reference_constants` and two sets of noise constants: the reference
release's (ResNet-18, exits 3-9-17) and those measured on the digits MLP of the accuracy
figure. The bound-optimal ``lt`` (:func:`convex.design`) is marked with its total.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import cistheory as ct

from ._common import FigureSpec, load_json, pyplot, savefig, write_csv, write_json

SPEC = FigureSpec(
    name="bound_path",
    title="Bound terms from Serving Rate (s=0) to inverse variance (s=1)",
    outputs=("bound_path.csv", "bound_path.json", "bound_path.png", "bound_path.pdf"),
    cost=7,
)

CONFIG: dict[str, dict[str, Any]] = {
    "tiny": {"points": 11, "split": "80-15-5", "data": "tiny", "measured": False},
    "quick": {"points": 101, "split": "80-15-5", "data": "tiny", "measured": True},
    "full": {"points": 401, "split": "80-15-5", "data": "tiny", "measured": True},
}


def _panel(name: str, sigma: list[float], cfg: dict[str, Any]) -> dict[str, Any]:
    import convex

    cis = ct.reference_cis(cfg["split"], cfg["data"])
    part = ct.deepest_exit(cis)
    const = convex.reference_constants(sigma)
    v = ct.variance_coefficients(part, sigma)
    lt_iv = ct.inverse_variance(v)
    _, _, c0 = convex.design_coefficients(const)  # optimisation term at V = 0
    rows = []
    for s in np.linspace(0.0, 1.0, cfg["points"]):
        lt = (1 - s) * cis.lam + s * lt_iv
        lt = lt / lt.sum()
        t = ct.cis_bound(cis, part, lt, const)
        rows.append(
            {
                "panel": name,
                "s": float(s),
                "chi2": ct.chi2(cis.lam, lt),
                "lt": lt.tolist(),
                **t.as_dict(),
                "variance_part": t.optimisation - c0,
                "tradeoff": t.bias + t.optimisation - c0,
            }
        )
    opt = convex.design(cis, part, const)
    return {
        "name": name,
        "sigma": list(sigma),
        "lambda": cis.lam.tolist(),
        "lt_inverse_variance": lt_iv.tolist(),
        "balanced_adj": ct.balanced_adj(cis.lam, v).tolist(),
        "bound_optimal": {
            "lt": opt.lt.tolist(),
            **opt.bound.as_dict(),
            "tradeoff": opt.bound.bias + opt.bound.optimisation - c0,
        },
        "optimisation_constant": c0,
        "constants": {k: getattr(const, k) for k in ("L", "mu", "Gamma", "gap0", "T", "eta")},
        "rows": rows,
    }


def compute(size: str, out: Path, seed: int = 0) -> Path:
    """Evaluate the bound along the path for each set of noise constants; write the data."""
    cfg = CONFIG[size]
    panels = [
        _panel("reference sigma (ResNet-18, 3-9-17)", list(ct.REFERENCE_SIGMA["3-9-17"]), cfg)
    ]
    if cfg["measured"]:
        from ._experiment import Setting, estimate_sigma

        sig = estimate_sigma(Setting(), cfg["data"], seed, "deepest")
        panels.append(_panel("measured sigma (digits MLP)", sig, cfg))
    rows = [r for p in panels for r in p["rows"]]
    write_csv(
        out / "bound_path.csv",
        rows,
        [
            "panel",
            "s",
            "chi2",
            "generalisation",
            "bias",
            "optimisation",
            "variance_part",
            "tradeoff",
            "total",
            "total_split",
        ],
    )
    path = out / "bound_path.json"
    write_json(path, {"config": cfg, "panels": panels})
    return path


def nearest_on_path(panel: dict[str, Any]) -> tuple[float, float]:
    """The point of the path nearest to the bound-optimal ``lt`` (Euclidean): its ``s`` in
    [0, 1] and its distance to ``lt``."""
    lam = np.asarray(panel["lambda"])
    direction = np.asarray(panel["lt_inverse_variance"]) - lam
    lt = np.asarray(panel["bound_optimal"]["lt"])
    s = float(np.clip((lt - lam) @ direction / (direction @ direction), 0.0, 1.0))
    return s, float(np.linalg.norm(lam + s * direction - lt))


def _positive(values: list[float]) -> list[float]:
    """Zeros (the bias at s = 0) left out of a log axis instead of drawn as a cliff."""
    return [v if v > 0 else float("nan") for v in values]


def _panel_plot(ax: Any, p: dict[str, Any]) -> None:
    s = [r["s"] for r in p["rows"]]
    for key, style, width, label in (
        ("tradeoff", "-", 2.4, "sum of the two"),
        ("bias", "--", 1.1, "bias, (2L/mu) chi2 Gamma"),
        ("variance_part", "-.", 1.1, "optimisation, variance part"),
    ):
        ax.plot(s, _positive([r[key] for r in p["rows"]]), style, lw=width, label=label,
                alpha=0.55 if key == "tradeoff" else 1.0)
    mid = min(p["rows"], key=lambda r: abs(r["s"] - 0.5))
    ax.plot([mid["s"]], [mid["tradeoff"]], "ko", ms=4, label="Balanced Adj (s = 0.5)")
    best = min(p["rows"], key=lambda r: r["tradeoff"])
    ax.plot([best["s"]], [best["tradeoff"]], "o", mfc="none", mec="tab:red", ms=7, mew=1.2,
            label=f"least sum on the path, s = {best['s']:.2f}")
    s_opt, dist = nearest_on_path(p)
    ax.plot([s_opt], [p["bound_optimal"]["tradeoff"]], "*", color="tab:red", ms=9,
            label=f"bound-optimal lt, s = {s_opt:.2f} ({dist:.0e} off)")
    ax.set_yscale("log")
    ax.set_xlabel("s, where lt = (1 - s) lambda + s lt_iv")
    gen = p["rows"][0]["generalisation"]
    ax.set_title(
        f"{p['name']}\nplus constants: generalisation {gen:.3g},\n"
        f"optimisation at V = 0 {p['optimisation_constant']:.3g}"
    )
    ax.grid(True, which="major", lw=0.3, alpha=0.5)


def plot(data_path: Path, out: Path) -> list[Path]:
    """Plot from the JSON written by :func:`compute`: one panel per set of noise constants,
    the rate and data split in the title, the bound-optimal point marked on the path."""
    plt = pyplot()
    doc = load_json(data_path)
    panels = doc["panels"]
    cfg = doc["config"]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.5 * len(panels), 3.6), squeeze=False, layout="constrained"
    )
    for ax, p in zip(axes[0], panels, strict=True):
        _panel_plot(ax, p)
    axes[0][0].set_ylabel("lt-dependent part of the bound")
    for ax in axes[0]:  # each panel its own key: the marked points' labels differ
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2,
                  frameon=False)
    fig.suptitle(
        "Bound terms from Serving Rate (s = 0) to inverse variance (s = 1)\n"
        f"7-node reference CIS, rate split {cfg['split']}, data split {cfg['data']}, "
        "every node at its deepest exit"
    )
    paths = savefig(fig, out, "bound_path")
    plt.close(fig)
    return paths
