r"""Predicted against exact over a grid of designs: ``cistheory validate-rates --grid``.

For every configuration (data split x rate split x participation policy x rule x step x
horizon) on the nested least-squares problem of ``validate-rates``, the exact
:math:`\mathbb EF_\lambda(w_T) - F_\lambda^*` (:mod:`~cistheory.experiments.second_moments`,
which shares no code with the bounds) is compared with

* ``bound``: the best second-generation bound, the smaller of ``bound_modal`` and
  ``bound_scalar``, each ``inf`` unless its stability certificate holds;
* ``bound_modal``: Theorem M (mode-resolved second moments, quadratic pair losses) with
  Theorem D's identity: :math:`F_\lambda(w^*) - F_\lambda^* + \langle g_\lambda,
  \mathbb E[w_T] - w^*\rangle + \frac12\mathrm{tr}(H_\lambda S_T)`, the last term bounded by
  :func:`cistheory.bounds.trace_bound`;
* ``bound_scalar``: Theorems A, C', Q combined (:func:`cistheory.bounds.combined_sequences`,
  scalar constants :math:`\mu_t, L_t, L_s, V_s, V_n`) with Theorem D and Theorem E's PL bias;
* ``bound_old``: the first generation (Theorem 1(b) with Theorem 2; :math:`V` with the
  gradient bound over the ball of radius :math:`2\|w_0 - w^*\|`, as ``validate-rates``), ``inf``
  where it refuses the step.

**Ranking agreement** (:func:`ranking_agreement`): within each group of configurations with
the same data split, rate split, step label and horizon, every pair of designs (rule x
participation) whose exact errors differ (ratio above :math:`1 + 10^{-9}`) counts once; it
scores 1 if the bound orders the pair as the exact errors do, 1/2 if the bound ties them (two
refused designs, ``inf`` = ``inf``), 0 otherwise. Exact errors are the finite-horizon values
(an overflow counts as ``inf``; a pair of two ``inf`` exact errors is a tie and does not
count). Unstable configurations are included: a refused bound ranks its design last.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .. import bounds as bd
from ..errors import CISInputError
from ..rules.registry import rule_inputs, rule_weights
from ..system.participation import named_policy
from .design_constants import DesignConstants, exact_constants
from .quadratic import QuadraticProblem
from .second_moments import exact_errors
from .validate_rates import ValidationConfig, build_problem

__all__ = ["BOUND_KEYS", "GridConfig", "grid_summary", "jsonable", "ranking_agreement", "run_grid"]

BOUND_KEYS: tuple[str, ...] = ("bound", "bound_modal", "bound_scalar", "bound_old")
"""The bounds every configuration reports."""

INF = math.inf


@dataclass(frozen=True)
class GridConfig:
    """The grid of :func:`run_grid`.

    Attributes
    ----------
    data_splits : mapping name -> (root, middle, leaf) samples
    rate_splits : tuple of str
    policies : tuple of str
        Participation policies by name (:data:`cistheory.POLICIES`).
    rules : tuple of str
        Weight rules by name (:data:`cistheory.RULES`).
    steps : tuple of float or "rel"
        Fixed steps; ``"rel"`` is ``rel_step / L_t`` (``validate-rates``' fixed step).
    rel_step : float
    horizons : tuple of int
    """

    data_splits: dict[str, tuple[int, int, int]] = field(
        default_factory=lambda: {"equal": (60, 30, 15), "tiny": (138, 18, 2)}
    )
    rate_splits: tuple[str, ...] = ("80-15-5", "33-33-33", "5-15-80")
    policies: tuple[str, ...] = ("deepest", "p40")
    rules: tuple[str, ...] = ("serving-rate", "equal", "opt-err", "balanced-adj")
    steps: tuple[float | str, ...] = (0.0125, 0.025, 0.05, 0.1, 0.2, 0.4, "rel")
    rel_step: float = 0.5
    horizons: tuple[int, ...] = (100, 1000)

    @classmethod
    def quick(cls) -> GridConfig:
        """The ``--quick`` grid: equal data, steps 0.05, 0.2 and 0.5/L_t, T = 1000 (72 rows)."""
        return cls(data_splits={"equal": (60, 30, 15)}, steps=(0.05, 0.2, "rel"),
                   horizons=(1000,))

    def validated(self) -> GridConfig:
        """``self`` after checking the fields (raises :class:`CISInputError`)."""
        if not self.horizons or min(self.horizons) < 1:
            raise CISInputError("horizons", self.horizons, "need horizons >= 1")
        for s in self.steps:
            if s != "rel" and not (isinstance(s, int | float) and s > 0):
                raise CISInputError("steps", s, "a step is a positive number or 'rel'")
        if not self.rel_step > 0:
            raise CISInputError("rel_step", self.rel_step, "must be > 0")
        if len(self.rules) * len(self.policies) < 2:
            raise CISInputError("rules", self.rules, "ranking needs >= 2 designs a group")
        return self


def _old_bound(c: DesignConstants, prob: QuadraticProblem, eta: float, T: int,
               r0: float, e0: float) -> float:
    """First generation: Theorem 1(b) (tight form) with Theorem 2's fixed step."""
    radius = 2.0 * math.sqrt(r0)
    hnorm = np.linalg.norm(prob.H, ord=2, axis=(2, 3))
    G = np.linalg.norm(c.grad_pair, axis=2) + hnorm * radius
    V = bd.variance_bound(c.q, c.beta, prob.noise**2, G**2)
    try:
        e = bd.sgd_fixed_step_bound(T, eta, c.L_t, c.mu_t, V, e0)
    except CISInputError:  # the step is above 1/L_t: the first generation refuses
        return INF
    return float(bd.training_error_bound(c.lam, c.lt, c.L, c.mu, c.mu_t, c.Gamma, float(e)))


def _new_bounds(c: DesignConstants, prob: QuadraticProblem, eta: float,
                horizons: Sequence[int], w0: np.ndarray) -> list[dict[str, Any]]:
    """Theorem M and the scalar combination (Theorems A, C', Q), each with Theorem D."""
    T = int(max(horizons))
    u0 = np.asarray(w0, dtype=np.float64) - c.w_star
    r0, e0 = c.distances(w0)
    modal = bd.modal_bound(T, eta=eta, q=c.q, beta=c.beta, H_pair=prob.H,
                           grad_opt=c.grad_pair, noise_cov=prob.noise_cov(), u0=u0,
                           per_round=prob.part.per_round)
    seq = bd.combined_sequences(T, eta=eta, mu_t=c.mu_t, L_t=c.L_t, Ls=c.Ls, Vs=c.Vs,
                                Vn=c.Vn, r0=r0, e0=e0, quadratic=True)
    pl_bias = bd.bias_bound_gradient(c.g_lam_norm**2, c.mu)
    out = []
    for t in horizons:
        mean_u = bd.theorem_m.mean_deviation(c.H_lt, u0, eta, int(t)) if eta * c.L_t < 2 else None
        cross = float(c.g_lam @ mean_u) if mean_u is not None else INF
        if modal.certified and math.isfinite(cross):
            b_modal = c.bias + cross + 0.5 * modal.trace(c.H_lam, int(t))
        else:
            b_modal = INF
        r_t, e_t = float(seq.r[int(t)]), float(seq.e[int(t)])
        if seq.certified and math.isfinite(r_t):
            cross_s = min(cross, c.g_lam_norm * math.sqrt(r_t))
            b_scalar = pl_bias + cross_s + min(c.rho_lam * e_t, 0.5 * c.L_lam * r_t)
        else:
            b_scalar = INF
        out.append({
            "bound": min(b_modal, b_scalar), "bound_modal": b_modal, "bound_scalar": b_scalar,
            "bound_old": _old_bound(c, prob, eta, int(t), r0, e0),
            "certified_modal": modal.certified, "certified_scalar": seq.certified,
            "modal_radius": modal.radius,
        })
    return out


def _designs(prob: QuadraticProblem, cfg: GridConfig) -> list[tuple[str, str, QuadraticProblem,
                                                                     np.ndarray]]:
    out = []
    for pol in cfg.policies:
        part = named_policy(prob.cis, pol)
        pp = prob.with_participation(part)
        inputs = rule_inputs(pp.cis, part, sigma=pp.noise)
        for rule in cfg.rules:
            out.append((pol, rule, pp, rule_weights(rule, inputs)))
    return out


def run_grid(
    config: GridConfig | None = None, *, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run the grid; returns ``{"configurations": [...], "summary": {...}}`` (module docstring).

    Non-finite numbers are left as ``inf`` floats; :func:`jsonable` turns them into strings.

    Examples
    --------
    >>> cfg = GridConfig(data_splits={"equal": (60, 30, 15)}, rate_splits=("80-15-5",),
    ...                  rules=("serving-rate", "equal"), steps=(0.05,), horizons=(20,))
    >>> res = run_grid(cfg)
    >>> len(res["configurations"]), res["summary"]["violations"]
    (4, 0)
    """
    cfg = (config or GridConfig()).validated()
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for ds, sizes in cfg.data_splits.items():
        for rs in cfg.rate_splits:
            prob = build_problem(ValidationConfig(tree=(2, 2, rs), data=sizes, n_seeds=2))
            w0 = np.zeros(prob.mask.shape[1])
            for pol, rule, pp, lt in _designs(prob, cfg):
                c = exact_constants(pp, lt)
                for st in cfg.steps:
                    eta = cfg.rel_step / c.L_t if st == "rel" else float(st)
                    ex = exact_errors(pp, lt, eta, list(cfg.horizons), w0,
                                      per_round=pp.part.per_round)
                    for j, nb in enumerate(_new_bounds(c, pp, eta, cfg.horizons, w0)):
                        rows.append({
                            "data": ds, "rate": rs, "participation": pol, "rule": rule,
                            "step": st, "eta": eta, "T": int(cfg.horizons[j]),
                            "lt": [float(x) for x in lt], "exact": float(ex.gap_lam[j]),
                            "exact_dist": float(ex.dist2[j]), "exact_gap_lt": float(ex.gap_lt[j]),
                            "radius": ex.radius, "stable": bool(ex.radius < 1.0), **nb,
                            "constants": c.scalars(),
                        })
            if progress is not None:
                progress(f"grid: data {ds}, rates {rs} done ({len(rows)} rows)")
    summary = grid_summary(rows)
    summary["runtime_s"] = time.perf_counter() - start
    summary["config"] = {k: (v if k != "steps" else list(v)) for k, v in asdict(cfg).items()}
    return {"configurations": rows, "summary": summary}


def ranking_agreement(rows: Sequence[dict[str, Any]], key: str, *, min_ratio: float = 1.0 + 1e-9,
                      pair_filter: Callable[[dict[str, Any], dict[str, Any]], bool] | None = None
                      ) -> dict[str, Any]:
    """Pairwise ranking agreement of the bound ``key`` with the exact error (module docstring).

    Returns ``{"pairs", "agreement", "strict_agreement"}`` (``agreement`` counts a tie of the
    bound as 1/2; ``strict_agreement`` as 0); ``None`` agreements when no pair counts.

    Examples
    --------
    >>> rows = [dict(data="a", rate="r", step=1, T=1, exact=e, b=b)
    ...         for e, b in [(1.0, 2.0), (2.0, 3.0), (3.0, float("inf"))]]
    >>> ranking_agreement(rows, "b")["agreement"]
    1.0
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["data"], r["rate"], r["step"], r["T"]), []).append(r)
    score = strict = npairs = 0.0
    for g in groups.values():
        for a, b in itertools.combinations(g, 2):
            if pair_filter is not None and not pair_filter(a, b):
                continue
            ea, eb = a["exact"], b["exact"]
            if math.isinf(ea) and math.isinf(eb):
                continue
            if not max(ea, eb) > min_ratio * min(ea, eb):
                continue
            npairs += 1
            ba, bb = a[key], b[key]
            if ba == bb:
                score += 0.5
            elif (ba < bb) == (ea < eb):
                score += 1.0
                strict += 1.0
    return {"pairs": int(npairs), "agreement": score / npairs if npairs else None,
            "strict_agreement": strict / npairs if npairs else None}


def _bound_stats(rows: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    viol = [r for r in rows if r["exact"] > r[key] * (1.0 + 1e-9)]
    fin = [r[key] / r["exact"] for r in rows
           if math.isfinite(r[key]) and math.isfinite(r["exact"]) and r["exact"] > 0]
    ratios = np.asarray(fin, dtype=np.float64)
    same = {"same_policy_deepest": lambda a, b: a["participation"] == b["participation"] ==
            "deepest",
            "same_policy_p40": lambda a, b: a["participation"] == b["participation"] == "p40",
            "across_policies": lambda a, b: a["participation"] != b["participation"]}
    return {
        "violations": len(viol),
        "median_ratio": float(np.median(ratios)) if ratios.size else None,
        "worst_ratio": float(np.max(ratios)) if ratios.size else None,
        "p90_ratio": float(np.percentile(ratios, 90)) if ratios.size else None,
        "finite_rows": int(ratios.size),
        "refused_stable": sum(1 for r in rows if r["stable"] and not math.isfinite(r[key])),
        "finite_on_unstable": sum(1 for r in rows if not r["stable"] and math.isfinite(r[key])),
        "ranking": ranking_agreement(rows, key),
        "ranking_10pct": ranking_agreement(rows, key, min_ratio=1.1),
        "ranking_2x": ranking_agreement(rows, key, min_ratio=2.0),
        "ranking_by_pair": {k: ranking_agreement(rows, key, pair_filter=f)["agreement"]
                            for k, f in same.items()},
    }


def grid_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per bound: violations, median/worst/p90 bound/exact, refusals, ranking agreement; the
    p40 collapse at 5-15-80; and the keys ``violations``, ``median_ratio``, ``worst_ratio``,
    ``ranking_agreement``, ``ranking_agreement_old`` (of ``bound`` and ``bound_old``)."""
    per = {k: _bound_stats(rows, k) for k in BOUND_KEYS}
    collapse = [r for r in rows if r["rate"] == "5-15-80" and r["participation"] == "p40"
                and not r["stable"]]
    return {
        "violations": per["bound"]["violations"],
        "median_ratio": per["bound"]["median_ratio"],
        "worst_ratio": per["bound"]["worst_ratio"],
        "ranking_agreement": per["bound"]["ranking"]["agreement"],
        "ranking_agreement_old": per["bound_old"]["ranking"]["agreement"],
        "n_configurations": len(rows),
        "n_unstable": sum(1 for r in rows if not r["stable"]),
        "p40_collapse": {
            "unstable_rows": len(collapse),
            "flagged_new": sum(1 for r in collapse if not math.isfinite(r["bound"])),
            "flagged_old": sum(1 for r in collapse if not math.isfinite(r["bound_old"])),
        },
        "bounds": per,
    }


def jsonable(x: Any) -> Any:
    """``x`` with non-finite floats as the strings ``"inf"``, ``"-inf"``, ``"nan"``."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    return x
