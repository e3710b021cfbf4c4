r"""The bound-optimal design of Section 5.2 on ``validate-rates``' quadratic problem, checked
by the exact error (``cistheory design``).

For a rate split and data split, the design constants of :class:`convex.StableConstants` are
computed exactly on the nested least-squares problem (:func:`stable_constants`: pair
smoothness, noise, and the caps :math:`\bar Z^2, \bar\zeta^2, \underline\mu_t, \bar L, \bar r_0` as
extremes over the candidate designs, which are the rules' designs under each policy and a
sample of weights), the design problem is solved over the policies ``deepest`` (fixed) and
``shallower`` (participation designed), and every design (the rules' and the bound-optimal one)
is scored by its bound :math:`J` and by its exact :math:`\mathbb EF_\lambda(w_T) -
F_\lambda^*` (:mod:`cistheory.experiments.second_moments`, which shares no code with the
bounds), at the step :math:`\eta` the design chose.

The caps are extremes over a finite candidate set: for the theorem they must hold over every
design the solver may return, so on designs far from the candidates they are estimates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import CISInputError
from ..experiments.design_constants import exact_constants
from ..experiments.quadratic import QuadraticProblem
from ..experiments.second_moments import exact_errors
from ..experiments.validate_rates import ValidationConfig, build_problem
from ..rules.registry import rule_inputs, rule_weights
from ..system.participation import Participation, deepest_exit, explicit

__all__ = ["DATA", "design_rows", "stable_constants"]

DATA: dict[str, tuple[int, int, int]] = {"equal": (60, 30, 15), "tiny": (138, 18, 2)}
"""Samples (root, middle, leaf) of the quadratic problem for each data split."""


def _all_pair_grads(prob: QuadraticProblem, w: np.ndarray) -> np.ndarray:
    return np.asarray(np.einsum("ikde,e->ikd", prob.H, w) - prob.b, dtype=np.float64)


def stable_constants(prob: QuadraticProblem, candidates: Sequence[tuple[Participation,
                                                                          np.ndarray]],
                     w0: np.ndarray, T: int) -> Any:
    r""":class:`convex.StableConstants` of ``prob``: exact pair constants, and caps as extremes
    over the ``candidates`` ``(participation, lt)``."""
    import convex

    el = np.asarray(prob.cis.eligible)
    L_pair = np.zeros(el.shape)
    for i, k in zip(*np.nonzero(el), strict=True):
        L_pair[i, k] = float(np.linalg.eigvalsh(prob.H[i, k])[-1])
    Z2 = np.zeros(el.shape)
    zeta2, mu_t, mu, L_bar, r0 = 0.0, np.inf, np.inf, 0.0, 0.0
    for part, lt in candidates:
        c = exact_constants(prob.with_participation(part), lt)
        g = _all_pair_grads(prob, c.w_star)
        Z2 = np.maximum(Z2, np.where(el, (g**2).sum(axis=2), 0.0))
        zeta2, mu_t, mu = max(zeta2, c.zeta2), min(mu_t, c.mu_t), min(mu, c.mu)
        L_bar = max(L_bar, c.L)
        r0 = max(r0, c.distances(w0)[0])
    return convex.StableConstants(L_pair=L_pair, s2=np.where(el, prob.noise**2, 0.0), Z2=Z2,
                                  zeta2=zeta2, mu=mu, mu_t=mu_t, L_bar=L_bar, r0=r0, T=int(T),
                                  m=np.asarray(prob.cis.data, dtype=np.float64)).validated()


# long: builds the candidates, solves, then scores every design the same way
def design_rows(split: str, data: str = "equal", *, T: int = 1000,
                rules: Sequence[str] = ("serving-rate", "balanced-adj", "equal"),
                etas: Sequence[float] = (0.0125, 0.025, 0.05, 0.1, 0.2, 0.4),
                seed: int = 0) -> list[dict[str, Any]]:
    """One row per design: each rule under ``deepest`` participation at its best step by
    the bound, the best design of the policy the outer loop did not choose (``bound-optimal
    (POLICY)``), and the bound-optimal design (policy, weights, participation, step); each with
    its bound ``J`` and its exact error at ``T``.

    Examples
    --------
    >>> rows = design_rows("80-15-5", T=200, etas=(0.05, 0.2))
    >>> [r["rule"] for r in rows][-1], all(r["exact"] <= r["J"] for r in rows)
    ('bound-optimal', True)
    """
    import convex

    if data not in DATA:
        raise CISInputError("data", data, f"choose from {sorted(DATA)}")
    prob = build_problem(ValidationConfig(tree=(2, 2, split), data=DATA[data], n_seeds=2))
    cis = prob.cis
    w0 = np.zeros(prob.mask.shape[1])
    deep = deepest_exit(cis)
    shallow_q = np.asarray(cis.eligible, dtype=np.float64)
    shallow_q = shallow_q / shallow_q.sum(axis=1, keepdims=True)
    shallow = explicit(cis, shallow_q, name="shallower")
    rng = np.random.default_rng(seed)
    cands: list[tuple[Participation, np.ndarray]] = []
    for part in (deep, shallow):
        inputs = rule_inputs(cis, part, sigma=prob.noise)
        cands += [(part, rule_weights(r, inputs)) for r in (*rules, "opt-err")]
        cands += [(part, 0.05 + 0.85 * rng.dirichlet(np.ones(cis.n_exits))) for _ in range(12)]
    const = stable_constants(prob, cands, w0, T)
    q_deep = np.asarray(deep.q)
    best, solved = convex.stable_design(cis.lam, const, {
        "deepest": (q_deep > 0, q_deep), "shallower": (np.asarray(cis.eligible), None)},
        etas=etas)
    rows = []
    inputs = rule_inputs(cis, deep, sigma=prob.noise)
    for rule in rules:
        lt = rule_weights(rule, inputs)
        J, eta = min((convex.stable_objective(cis.lam, const, lt, q_deep, eta=e, c=c), e)
                     for e in etas for c in (0.25, 1.0, 4.0))
        rows.append(_row(prob, rule, "deepest", lt, q_deep, eta, J, T, w0))
    for policy in ("deepest", "shallower"):  # the outer loop's best under each policy
        sub = [r for r in solved if r.policy == policy]
        if sub and policy != best.policy:
            b = min(sub, key=lambda r: r.fun)
            rows.append(_row(prob, f"bound-optimal ({policy})", policy, b.lt, b.q, b.eta, b.fun,
                             T, w0))
    rows.append(_row(prob, "bound-optimal", best.policy, best.lt, best.q, best.eta, best.fun,
                     T, w0))
    return rows


def _row(prob: QuadraticProblem, rule: str, policy: str, lt: np.ndarray, q: np.ndarray,
         eta: float, J: float, T: int, w0: np.ndarray) -> dict[str, Any]:
    part = explicit(prob.cis, np.asarray(q), name=policy)
    lt = np.asarray(lt, dtype=np.float64) / float(np.sum(lt))
    ex = exact_errors(prob.with_participation(part), lt, eta, [T], w0)
    return {"split": prob.cis.name, "rule": rule, "policy": policy, "lt": lt.tolist(),
            "q": np.asarray(q).tolist(), "eta": float(eta), "J": float(J),
            "exact": float(ex.gap_lam[0]), "stable": bool(ex.radius < 1.0)}
