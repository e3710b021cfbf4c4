r"""Figure: the "p40" variant, letting deeper nodes also train shallow exits (tiny data).

With the "tiny" data split the end devices hold little data (384 of 45,000 samples each in
the reference), so exit 1 is trained on little data when every node trains its deepest exit.
In the "p40" variant middles train a shallower exit with probability 0.4 and the root with
0.8. Left: measured system accuracy of the early-exit MLP (digits) for both policies across
the rate splits (mean and 95% band over seeds). Right: the bound (Corollary of
``docs/theory.md``, split form: generalisation + bias + optimisation, the objective the
design minimises) of each policy at the weights it trains with, and the bound-optimal
design of each eligibility (:func:`convex.compare_eligibility`: deepest exit only, or any
hosted exit with optimised ``q``), with the noise constants and gradient bounds measured on
the same model at initialisation and the illustrative curvature constants of
:func:`convex.reference_constants`. Third panel: the second generation's verdict, Theorem A's
step condition :math:`\eta_{\mathrm{eff}}(\bar L + L_s(\tilde\lambda, q)) < 2` with the pair
smoothness measured on the model at initialisation (Lemma ES, :math:`\bar L = \max L_{i,k}`)
and the trainer's long-run heavy-ball step :math:`\eta_{\mathrm{eff}} = \mathrm{lr}/(1 -
\mathrm{momentum})`; plotted is the margin :math:`\eta_{\mathrm{eff}}(\bar L + L_s)/2`
(above 1: refused). The theorem is for one plain SGD step a round, so this is the verdict's
quantity under that mapping, not a certificate for the trainer.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

import cistheory as ct
from cistheory.rules import rule_inputs, rule_weights

from ._common import (
    DODGE,
    FigureSpec,
    load_json,
    pyplot,
    rule_style,
    savefig,
    training_progress,
    write_csv,
    write_json,
)
from ._experiment import (
    RunSpec,
    Setting,
    estimate_grad_bound,
    estimate_sigma,
    mean_ci,
    pair_smoothness_at_init,
    run_grid,
)
from ._experiment import workers_for as _workers

SPEC = FigureSpec(
    name="p40",
    title="Deeper nodes also training shallow exits (p40) with tiny end-device data",
    outputs=("p40.csv", "p40.json", "p40.png", "p40.pdf"),
    cost=75,
)

QUICK_SETTING = Setting(rounds=20, max_tau=20, batch_size=32, momentum=0.9, lr=0.05, lr_final=0.005)
CONFIG: dict[str, dict[str, Any]] = {
    "tiny": {
        "splits": ("80-15-5",),
        "rules": ("serving-rate",),
        "seeds": (0,),
        "setting": Setting(rounds=2, max_tau=3, batch_size=32, hidden=(16, 16, 16)),
    },
    "quick": {
        "splits": ct.RATE_SPLITS,
        "rules": ("serving-rate",),
        "seeds": (0, 1, 2),
        "setting": QUICK_SETTING,
    },
    "full": {
        "splits": ct.RATE_SPLITS,
        "rules": ("serving-rate", "balanced-adj", "bound-optimal"),
        "seeds": (0, 1, 2, 3, 4),
        "setting": Setting(rounds=40, batch_size=32, momentum=0.9, lr=0.05, lr_final=0.005),
    },
}
POLICIES = ("deepest", "p40")


def _bounds(cfg: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    import convex

    s = cfg["setting"]
    sigma = estimate_sigma(s, "tiny", seed, "p40")
    grad = estimate_grad_bound(s, "tiny", seed)
    out = []
    for split in cfg["splits"]:
        cis = ct.reference_cis(split, "tiny")
        const = ct.CISConstants(
            **{**convex.reference_constants(sigma).__dict__, "G": np.asarray(grad)}
        )
        for policy in POLICIES:
            part = ct.named_policy(cis, policy)
            inputs = rule_inputs(cis, part, sigma=sigma)
            for rule in cfg["rules"]:
                lt = rule_weights(rule, inputs).tolist()
                t = ct.cis_bound(cis, part, lt, const)
                out.append(
                    {
                        "split": split,
                        "leaf_share": float(cis.lam[0]),
                        "kind": "at rule",
                        "policy": policy,
                        "rule": rule,
                        **t.as_dict(),
                    }
                )
        for name, res in convex.compare_eligibility(cis, const).items():
            out.append(
                {
                    "split": split,
                    "leaf_share": float(cis.lam[0]),
                    "kind": "optimal",
                    "policy": name,
                    "rule": "bound-optimal",
                    **res.bound.as_dict(),
                    "lt": res.lt.tolist(),
                }
            )
    return out


def _verdicts(cfg: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """Theorem A's step condition for each policy, split and rule (module docstring)."""
    s = cfg["setting"]
    eta_eff = s.lr / (1.0 - s.momentum)
    sigma = estimate_sigma(s, "tiny", seed, "p40")
    out = []
    for policy in POLICIES:
        L_pair = pair_smoothness_at_init(s, "tiny", seed, policy)
        for split in cfg["splits"]:
            cis = ct.reference_cis(split, "tiny")
            part = ct.named_policy(cis, policy)
            inputs = rule_inputs(cis, part, sigma=sigma)
            for rule in cfg["rules"]:
                lt = rule_weights(rule, inputs)
                Ls = ct.bounds.expected_smoothness(part.q, ct.beta(part, lt), L_pair)
                margin = eta_eff * (float(L_pair.max()) + Ls) / 2.0
                out.append({"split": split, "leaf_share": float(cis.lam[0]), "policy": policy,
                            "rule": rule, "Ls": Ls, "L_bar": float(L_pair.max()),
                            "eta_eff": eta_eff, "margin": margin,
                            "verdict": "certified" if margin < 1 else "refused"})
    return out


def compute(size: str, out: Path, seed: int = 0, progress: bool = True) -> Path:
    """Train both policies across the splits, evaluate the bounds; write the data."""
    cfg = CONFIG[size]
    specs = [
        RunSpec(split, "tiny", rule, seed + s, participation=policy, setting=cfg["setting"])
        for s in cfg["seeds"]
        for split in cfg["splits"]
        for rule in cfg["rules"]
        for policy in POLICIES
    ]

    tick = training_progress("p40", progress)
    runs = run_grid(specs, out / "cache" / "p40", tick, workers=_workers(size))
    cells: dict[tuple[str, str, str], list[float]] = {}
    for r in runs:
        cells.setdefault((r["split"], r["participation"], r["rule"]), []).append(r["accuracy"])
    summary = []
    for (split, policy, rule), accs in sorted(cells.items()):
        mean, half = mean_ci(accs)
        summary.append(
            {
                "split": split,
                "leaf_share": ct.reference_cis(split).lam[0].item(),
                "policy": policy,
                "rule": rule,
                "accuracy": mean,
                "ci": half,
                "seeds": len(accs),
            }
        )
    bounds = _bounds(cfg, seed)
    verdicts = _verdicts(cfg, seed)
    write_csv(
        out / "p40.csv", runs, ["split", "leaf_share", "participation", "rule", "seed", "accuracy"]
    )
    path = out / "p40.json"
    write_json(
        path,
        {
            "config": {
                "size": size,
                "splits": list(cfg["splits"]),
                "rules": list(cfg["rules"]),
                "seeds": [seed + s for s in cfg["seeds"]],
                "setting": asdict(cfg["setting"]),
            },
            "runs": runs,
            "summary": summary,
            "bounds": bounds,
            "verdicts": verdicts,
        },
    )
    return path


POLICY_COLOURS = {"deepest": "tab:blue", "p40": "tab:orange", "shallower": "tab:green"}
RULE_LINES = ("-", ":", "-.", "--")


def _measured(ax: Any, doc: dict[str, Any]) -> None:
    rules = list(doc["config"]["rules"])
    pairs = [(p, r) for r in rules for p in POLICIES]
    for j, (policy, rule) in enumerate(pairs):
        pts = sorted(
            (c["leaf_share"], c["accuracy"], c["ci"])
            for c in doc["summary"]
            if c["policy"] == policy and c["rule"] == rule
        )
        if not pts:
            continue
        x, y, h = (np.asarray(v) for v in zip(*pts, strict=True))
        x = x + (j - (len(pairs) - 1) / 2) * DODGE
        color = POLICY_COLOURS.get(policy, "0.5")
        ls = RULE_LINES[rules.index(rule) % len(RULE_LINES)]
        ax.errorbar(x, y, yerr=h, color=color, ls=ls, marker=rule_style(rule)[1], ms=3.5,
                    lw=1.0, elinewidth=0.8, capsize=1.5, label=f"{policy}, {rule}")
    _finish_panel(ax, "system accuracy (mean, 95% CI)", "measured (digits MLP)")


def _finish_panel(ax: Any, ylabel: str, title: str) -> None:
    """The panels' shared x axis (the end devices' share), grid and legend below the axes."""
    ax.set_xlabel("share served at the end devices")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=2,
              frameon=False)


def _verdict_panel(ax: Any, doc: dict[str, Any]) -> None:
    """The second generation's verdict: Theorem A's step-condition margin (> 1: refused)."""
    rules = list(doc["config"]["rules"])
    for policy in POLICIES:
        for rule in rules:
            pts = sorted((v["leaf_share"], v["margin"]) for v in doc.get("verdicts", [])
                         if v["policy"] == policy and v["rule"] == rule)
            if pts:
                ax.plot(*zip(*pts, strict=True), marker=rule_style(rule)[1], ms=3.5, lw=1.0,
                        color=POLICY_COLOURS.get(policy, "0.5"),
                        ls=RULE_LINES[rules.index(rule) % len(RULE_LINES)],
                        label=f"{policy}, {rule}")
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    _finish_panel(ax, "eta_eff (L_bar + L_s) / 2  (> 1: refused)",
                  "second generation: step condition")


def _bound_panel(ax: Any, doc: dict[str, Any]) -> None:
    for kind in ("at rule", "optimal"):
        for policy in sorted({b["policy"] for b in doc["bounds"] if b["kind"] == kind}):
            for rule in sorted({b["rule"] for b in doc["bounds"] if b["kind"] == kind}):
                pts = sorted(
                    (b["leaf_share"], b["total_split"])
                    for b in doc["bounds"]
                    if b["kind"] == kind and b["policy"] == policy and b["rule"] == rule
                )
                if not pts:
                    continue
                ax.plot(
                    *zip(*pts, strict=True),
                    marker="s" if kind == "optimal" else "o",
                    ms=3.5,
                    lw=1.0,
                    ls="--" if kind == "optimal" else "-",
                    color=POLICY_COLOURS.get(policy, "0.5"),
                    mfc="white" if kind == "optimal" else None,
                    label=f"{policy}, {'optimal design' if kind == 'optimal' else rule}",
                )
    _finish_panel(ax, "bound (Corollary, sum of terms)", "bound (illustrative constants)")


def plot(data_path: Path, out: Path) -> list[Path]:
    """Plot from the JSON written by :func:`compute`: measured accuracy with 95% error bars
    (left) beside the bound's comparison (right), both policies in the same colours."""
    plt = pyplot()
    doc = load_json(data_path)
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(10.5, 3.4), layout="constrained")
    _measured(ax1, doc)
    _bound_panel(ax2, doc)
    _verdict_panel(ax3, doc)
    seeds = len(doc["config"]["seeds"])
    rounds = doc["config"]["setting"]["rounds"]
    fig.suptitle(
        f"{SPEC.title}\n7-node reference CIS, data split tiny, {seeds} seed(s), {rounds} rounds"
    )
    paths = savefig(fig, out, "p40")
    plt.close(fig)
    return paths
