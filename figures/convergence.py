r"""Figure: predicted against measured convergence (from ``cistheory validate-rates``).

On a convex problem with known constants (nested least squares on the 7-node CIS, exit
selection with ``q``, gradient noise of known variance), the algorithm runs over many seeds;
the mean of ``F_lambda(w_t) - F_lambda*`` with its 95% band is plotted against the bound of
Theorems 1-2 (log-log), for the fixed and the diminishing step and for several ``lt``. The
fixed step shows each ``lt``'s bias floor (ordered as chi2); the diminishing step with
``lt = lambda`` decays as ``1/t``.

Beside that first-generation bound the dotted line is the second generation's
(``docs/theory.md`` Sections 4.12-4.18, the constants of each design computed exactly): for the
fixed step Theorem M with Theorem D's quadratic identity (``inf`` unless certified), for the
diminishing step Theorem A(b) with Theorem D's distance form.

The first-generation bound multiplies Theorem 2's by :math:`2L^2/(\mu\tilde\mu)` (thousands
here), so the second row shows the rate itself: the optimisation error of the training objective,
``e_t = F_lt(w_t) - F_lt*`` (mean, 95% band), against Theorem 2's bound, with the median
ratio bound/measured over the recorded rounds ``t >= 1`` of each ``lt`` in the title.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from cistheory import bounds as bd
from cistheory.experiments.design_constants import exact_constants
from cistheory.experiments.validate_rates import ValidationConfig, build_problem, validate_rates

from ._common import FigureSpec, load_json, pyplot, savefig, write_csv, write_json

SPEC = FigureSpec(
    name="convergence",
    title="Measured F_lambda(w_t) - F_lambda* (mean, 95% band) against the bound",
    outputs=("convergence.csv", "convergence.json", "convergence.png", "convergence.pdf"),
    cost=27,
)


def _config(size: str, seed: int) -> ValidationConfig:
    if size == "tiny":
        base = replace(ValidationConfig.quick(), n_seeds=20, rounds=300, n_records=12)
    elif size == "quick":
        base = ValidationConfig.quick()
    else:
        base = ValidationConfig()
    return replace(base, seed=base.seed + seed)


def new_bound(run: dict[str, Any], cfg: ValidationConfig) -> list[float]:
    """The second-generation bound on E F_lam(w_t) - F_lam* at the run's recorded rounds."""
    prob = build_problem(cfg)
    c = exact_constants(prob, run["lt"])
    w0 = np.zeros(prob.mask.shape[1])
    u0 = w0 - c.w_star
    ts = [int(t) for t in run["t"]]
    const = run["constants"]
    if run["schedule"] == "fixed":
        eta = float(const["eta"])
        mb = bd.modal_bound(max(ts), eta=eta, q=c.q, beta=c.beta, H_pair=prob.H,
                            grad_opt=c.grad_pair, noise_cov=prob.noise_cov(), u0=u0,
                            per_round=prob.part.per_round)
        if not mb.certified:
            return [math.inf] * len(ts)
        return [c.bias + float(c.g_lam @ bd.theorem_m.mean_deviation(c.H_lt, u0, eta, t))
                + 0.5 * mb.trace(c.H_lam, t) for t in ts]
    youngs = [math.inf] if c.Ls == 0 else ([0.0] if c.Vs == 0 else np.geomspace(1e-3, 1e3, 25))
    r = np.full(len(ts), math.inf)
    for young in youngs:  # every c gives a valid bound: keep the smallest
        r = np.minimum(r, np.atleast_1d(bd.distance_bound_diminishing(
            ts, b=const["b"], gamma=const["gamma"], mu_t=c.mu_t, L_t=c.L_t, Ls=c.Ls, Vs=c.Vs,
            Vn=c.Vn, r0=float(u0 @ u0), c=float(young))))
    return [bd.target_error_bound(bias=c.bias, g_lam_norm=c.g_lam_norm, r=float(x), e=math.inf,
                                  rho_lam=c.rho_lam, L_lam=c.L_lam) for x in r]


def compute(size: str, out: Path, seed: int = 0) -> Path:
    """Run the validation; write per-round CSV and the full JSON."""
    cfg = _config(size, seed)
    res = validate_rates(cfg)
    doc: dict[str, Any] = res.as_dict()
    for run in doc["runs"]:  # None where the second generation refuses (JSON has no inf)
        run["bound_new"] = [b if math.isfinite(b) else None for b in new_bound(run, cfg)]
    rows = [
        {
            "lt_rule": r["lt_rule"],
            "schedule": r["schedule"],
            "chi2": r["chi2"],
            "t": t,
            "measured": m,
            "ci": c,
            "bound": b,
            "measured_lt": m_lt,
            "ci_lt": c_lt,
            "bound_lt": b_lt,
            "bound_new": b_new,
        }
        for r in doc["runs"]
        for t, m, c, b, m_lt, c_lt, b_lt, b_new in zip(
            r["t"],
            r["measured"],
            r["ci"],
            r["bound"],
            r["measured_lt"],
            r["ci_lt"],
            r["bound_lt"],
            r["bound_new"],
            strict=True,
        )
    ]
    write_csv(
        out / "convergence.csv",
        rows,
        [
            "lt_rule",
            "schedule",
            "chi2",
            "t",
            "measured",
            "ci",
            "bound",
            "measured_lt",
            "ci_lt",
            "bound_lt",
            "bound_new",
        ],
    )
    path = out / "convergence.json"
    write_json(path, doc)
    return path


def median_ratio(run: dict[str, Any]) -> float:
    """Median over the recorded rounds ``t >= 1`` of ``bound_lt / measured_lt`` (Theorem 2)."""
    return median(
        b / m
        for t, m, b in zip(run["t"], run["measured_lt"], run["bound_lt"], strict=True)
        if t >= 1
    )


def _fmt(x: float) -> str:
    return f"{x:.0f}" if x >= 10 else f"{x:.2g}"


def _panel(ax: Any, runs: list[dict[str, Any]], key: str, ci: str, bound: str,
           new: str | None = None) -> None:
    for j, r in enumerate(runs):
        color = f"C{j}"
        t = [max(v, 1) for v in r["t"]]  # t = 0 drawn at 1 on the log axis
        lo = [max(m - c, 1e-12) for m, c in zip(r[key], r[ci], strict=True)]
        hi = [m + c for m, c in zip(r[key], r[ci], strict=True)]
        label = f"{r['lt_rule']} (chi2={r['chi2']:.3f})"
        ax.plot(t, r[key], color=color, label=f"measured, {label}")
        ax.fill_between(t, lo, hi, color=color, alpha=0.2)
        ax.plot(t, r[bound], color=color, ls="--", lw=0.9)
        if new is not None:
            ax.plot(t, [np.nan if y is None else y for y in r[new]], color=color,
                    ls=":", lw=1.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("round t (t = 0 drawn at 1)")


def plot(data_path: Path, out: Path) -> list[Path]:
    """Plot from the JSON written by :func:`compute`.

    Top row: ``F_lambda(w_t) - F_lambda*`` against Theorems 1(c) + 2; bottom row:
    ``e_t = F_lt(w_t) - F_lt*`` against Theorem 2, one column per step schedule.
    """
    plt = pyplot()
    doc = load_json(data_path)
    schedules = sorted({r["schedule"] for r in doc["runs"]})
    fig, axes = plt.subplots(
        2, len(schedules), figsize=(3.5 * len(schedules), 6.2), squeeze=False,
        layout="constrained",
    )
    for col, sched in enumerate(schedules):
        runs = [x for x in doc["runs"] if x["schedule"] == sched]
        _panel(axes[0][col], runs, "measured", "ci", "bound", "bound_new")
        axes[0][col].set_title(f"{sched} step (dashed: Theorems 1(c) + 2;\n"
                               "dotted: second generation)")
        _panel(axes[1][col], runs, "measured_lt", "ci_lt", "bound_lt")
        ratios = ", ".join(f"{r['lt_rule']} {_fmt(median_ratio(r))}" for r in runs)
        axes[1][col].set_title(
            f"{sched} step: e_t against Theorem 2 (dashed)\n"
            f"median bound/measured over t >= 1:\n{ratios}",
        )
    axes[0][0].set_ylabel("F_lambda(w_t) - F_lambda*")
    axes[1][0].set_ylabel("e_t = F_lt(w_t) - F_lt*")
    axes[0][0].legend(fontsize=6)
    checks = ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in doc["checks"].items())
    fig.suptitle(f"{SPEC.title}\nchecks: {checks}")
    paths = savefig(fig, out, "convergence")
    plt.close(fig)
    return paths
