"""Figure: the bound-optimal participation probabilities over the 100-node tree (heat map).

On the 100-node three-tier reference tree (1 root, 9 middles, 90 leaves; 80-15-5, tiny
data) every node may train any exit it hosts (the "shallower" eligibility), and
:func:`convex.design` chooses ``lt`` and ``q`` minimising the full bound, with a floor
``q_min`` on every eligible pair and gradient-norm bounds that make sampling cost variance.
Data: ``q_heatmap.json`` (the design, its certificate and bound) and ``q_heatmap.csv``
(one row per node and exit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import cistheory as ct

from ._common import FigureSpec, load_json, pyplot, savefig, write_csv, write_json

SPEC = FigureSpec(
    name="q_heatmap",
    title="Bound-optimal participation q over the 100-node tree",
    outputs=("q_heatmap.csv", "q_heatmap.json", "q_heatmap.png", "q_heatmap.pdf"),
    cost=1,
)

CONFIG: dict[str, dict[str, Any]] = {
    size: {
        "split": "80-15-5",
        "data": "tiny",
        "nodes": 100,
        "q_min": 0.02,
        "sigma": (0.36, 0.25, 0.20),
        "G": (1.0, 1.0, 1.0),
    }
    for size in ("tiny", "quick", "full")
}


def compute(size: str, out: Path, seed: int = 0) -> Path:
    """Solve the design on the 100-node tree; write the data."""
    import convex

    cfg = CONFIG[size]
    cis = ct.reference_cis(cfg["split"], cfg["data"], n_nodes=cfg["nodes"])
    const = convex.reference_constants(cfg["sigma"])
    const = ct.CISConstants(**{**const.__dict__, "G": np.asarray(cfg["G"])})
    res = convex.design(cis, "shallower", const, q_min=cfg["q_min"])
    rows = [
        {
            "node": cis.node_ids[i],
            "tier": int(cis.capacity[i]),
            "exit": k + 1,
            "q": float(res.q[i, k]),
        }
        for i in range(cis.n_nodes)
        for k in range(cis.n_exits)
    ]
    write_csv(out / "q_heatmap.csv", rows, ["node", "tier", "exit", "q"])
    path = out / "q_heatmap.json"
    doc = res.as_dict()
    doc["gap"] = None if not np.isfinite(res.gap) else float(res.gap)
    write_json(
        path,
        {
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
            "lambda": cis.lam.tolist(),
            "capacity": cis.capacity.tolist(),
            "design": doc,
        },
    )
    return path


def plot(data_path: Path, out: Path) -> list[Path]:
    """Plot from the JSON written by :func:`compute`."""
    plt = pyplot()
    doc = load_json(data_path)
    q = np.asarray(doc["design"]["q"])
    cap = np.asarray(doc["capacity"])
    order = np.argsort(-cap, kind="stable")
    cfg = doc["config"]
    fig, ax = plt.subplots(figsize=(7.0, 2.4), layout="constrained")
    hosts = np.arange(1, q.shape[1] + 1)[None, :] <= cap[:, None]  # exits a node can train
    shown = np.ma.masked_where(~hosts[order].T, q[order].T)
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    im = ax.imshow(shown, aspect="auto", cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(q.shape[1]), [f"exit {k + 1}" for k in range(q.shape[1])])
    tiers = np.bincount(cap, minlength=4)[1:][::-1]  # root, middles, leaves
    edges = np.cumsum(tiers)[:-1] - 0.5
    for x in edges:
        ax.axvline(x, color="white", lw=0.8)
    ax.set_xlabel(
        f"node: root | {tiers[1]} middles | {tiers[2]} leaves (white lines part the tiers; "
        "grey: an exit the node does not host)"
    )
    lt = ", ".join(f"{x:.3f}" for x in doc["design"]["lt"])
    lam = ", ".join(f"{x:.2f}" for x in doc["lambda"])
    ax.set_title(
        f"Bound-optimal participation q over the {cfg['nodes']}-node reference tree: rate split "
        f"{cfg['split']} (lambda = {lam}), data split {cfg['data']}\n"
        f"nodes may train shallower exits, q >= {cfg['q_min']} where eligible; "
        f"bound-optimal lt = ({lt})"
    )
    fig.colorbar(im, ax=ax, label="q: probability that\nnode i trains exit k", pad=0.01)
    paths = savefig(fig, out, "q_heatmap")
    plt.close(fig)
    return paths
