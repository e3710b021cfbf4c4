r"""Bound-optimal design of a CIS: weights, participation and eligibility (Section 5).

The full bound of the Corollary in ``docs/theory.md`` (generalisation + Theorem 1(b) in its
split form with :math:`\mathbb E[e_T]` from Theorem 2) is, for a fixed eligibility policy,

.. math::
    J(\tilde\lambda, q) = 2\sum_k \lambda_k \varepsilon_k(M_k)
    + A\,\chi^2(\lambda\|\tilde\lambda) + B\,V(\tilde\lambda, q) + C_0,

with :math:`A = (2L/\mu)\bar\Gamma`, :math:`B = \frac{2L^2}{\mu\mu_t} c_V` and
:math:`C_0 = \frac{2L^2}{\mu\mu_t} c_0`, where Theorem 2 at horizon :math:`T` reads
:math:`\mathbb E[e_T] \le c_V V + c_0`:

* fixed step :math:`\eta`: :math:`c_V = \eta L_t (1 - (1-\eta\mu_t)^T)/(2\mu_t)`,
  :math:`c_0 = (1-\eta\mu_t)^T \mathrm{gap}_0` (an equality with the theorem);
* steps :math:`b/(\gamma + t)`: :math:`c_V = b^2 L_t / (2(b\mu_t - 1)(\gamma + T))`,
  :math:`c_0 = \gamma\,\mathrm{gap}_0/(\gamma + T)` (the theorem's max of the two replaced by
  their sum, an upper bound that keeps :math:`J` convex and smooth).

The generalisation term and :math:`C_0` are constants for a policy; :math:`V` is Lemma 2's
convex bound with :math:`M_k` the data of the nodes eligible for exit :math:`k`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cistheory._arrays import FloatArray, as_float_array
from cistheory.bounds.corollary import CISConstants, cis_bound
from cistheory.bounds.theorem2 import sgd_diminishing_bound, sgd_fixed_step_bound
from cistheory.bounds.theorem3 import generalization_bound
from cistheory.errors import CISInputError
from cistheory.rules.formulas import variance_coefficients
from cistheory.system.participation import Participation, explicit
from cistheory.system.reference import REFERENCE_SIGMA
from cistheory.system.tree import CIS

from ._common import check_max_iter
from .joint import joint_objective, solve_joint
from .lt import optimal_lt
from .results import DesignResult, JointResult, LtResult

__all__ = [
    "Eligibility",
    "bound_optimal_lt",
    "compare_eligibility",
    "design",
    "design_coefficients",
    "design_terms",
    "eligibility",
    "reference_constants",
]


@dataclass(frozen=True)
class Eligibility:
    """Which node-exit pairs may train, and which nodes train one exit with probability 1.

    Attributes
    ----------
    name : str
    eligible : bool ndarray (N, K)
    fixed : int ndarray (N,)
        Exit index (0-based) of a fixed node, -1 for a node whose ``q`` row is designed.
    """

    name: str
    eligible: NDArray[np.bool_]
    fixed: NDArray[np.int64]


def eligibility(cis: CIS, policy: str | Participation | Eligibility) -> Eligibility:
    r"""The eligibility policy of a CIS.

    ``"deepest"``: node :math:`i` trains only its deepest exit :math:`\kappa_i`, always (the
    reference configuration). ``"shallower"``: node :math:`i` may train any exit
    :math:`k \le \kappa_i` and its row of :math:`q` is designed; a node with one exit is fixed
    there. A :class:`cistheory.Participation`: its support, with rows containing a 1 fixed.

    Examples
    --------
    >>> import cistheory
    >>> el = eligibility(cistheory.reference_cis("80-15-5"), "shallower")
    >>> el.eligible.sum(axis=1).tolist(), el.fixed.tolist()
    ([3, 2, 2, 1, 1, 1, 1], [-1, -1, -1, 0, 0, 0, 0])
    """
    if isinstance(policy, Eligibility):
        if policy.eligible.shape != (cis.n_nodes, cis.n_exits):
            raise CISInputError("policy", policy.eligible.shape, "shape does not match the CIS")
        return policy
    n = cis.n_nodes
    deep = cis.capacity - 1
    if isinstance(policy, Participation):
        q = policy.q
        el = np.asarray(q > 0)
        one = np.isclose(q, 1.0, rtol=0, atol=1e-15)
        fixed = np.where(one.any(axis=1), np.argmax(one, axis=1), -1).astype(np.int64)
        return Eligibility(policy.name, el, fixed)
    if policy == "deepest":
        el = np.zeros((n, cis.n_exits), dtype=bool)
        el[np.arange(n), deep] = True
        return Eligibility("deepest", el, deep.astype(np.int64))
    if policy == "shallower":
        el = np.asarray(cis.eligible)
        fixed = np.where(cis.capacity == 1, 0, -1).astype(np.int64)
        return Eligibility("shallower", el, fixed)
    raise CISInputError("policy", policy, "use 'deepest', 'shallower' or a Participation")


def design_coefficients(const: CISConstants) -> tuple[float, float, float]:
    r"""Map the constants of a CIS to :math:`(A, B, C_0)` of the design objective.

    .. math::
        A = \frac{2L}{\mu}\bar\Gamma,\quad B = \frac{2L^2}{\mu\mu_t} c_V,\quad
        C_0 = \frac{2L^2}{\mu\mu_t} c_0,

    with :math:`c_V, c_0` read off Theorem 2 at :math:`t = T` (module docstring), computed
    with :func:`cistheory.bounds.sgd_fixed_step_bound` / ``sgd_diminishing_bound`` (which
    also validate the step conditions): :math:`c_0` is the bound at :math:`V = 0` and
    :math:`c_V` the bound at :math:`V = 1, \mathrm{gap}_0 = 0`.

    Examples
    --------
    >>> c = CISConstants(L=1.0, mu=0.5, Gamma=1.0, sigma=[1.0], gap0=1.0, T=1, eta=1.0)
    >>> design_coefficients(c)
    (4.0, 4.0, 4.0)
    """
    L, mu = float(const.L), float(const.mu)
    mu_t = mu if const.mu_t is None else float(const.mu_t)
    L_t = L if const.L_t is None else float(const.L_t)
    if not (mu > 0 and mu <= L and mu_t > 0 and np.isfinite(const.Gamma) and const.Gamma >= 0):
        raise CISInputError("const", (L, mu, mu_t, const.Gamma), "need 0 < mu <= L, mu_t > 0, "
                            "Gamma >= 0")
    factor = 2 * L**2 / (mu * mu_t)
    if const.eta is not None:
        c0 = float(sgd_fixed_step_bound(const.T, const.eta, L_t, mu_t, 0.0, const.gap0))
        c_v = float(sgd_fixed_step_bound(const.T, const.eta, L_t, mu_t, 1.0, 0.0))
    elif const.b is not None and const.gamma is not None:
        c0 = float(sgd_diminishing_bound(const.T, const.b, const.gamma, L_t, mu_t, 0.0,
                                         const.gap0))
        c_v = float(sgd_diminishing_bound(const.T, const.b, const.gamma, L_t, mu_t, 1.0, 0.0))
    else:
        raise CISInputError("const", (const.eta, const.b, const.gamma),
                            "give a fixed step eta, or b and gamma")
    return 2 * L * float(const.Gamma) / mu, factor * c_v, factor * c0


def reference_constants(
    sigma: ArrayLike | None = None, *, Gamma: float = 0.1, eta: float = 0.1, T: int = 100,
    L: float = 1.0, mu: float = 0.1, gap0: float = 1.0,
) -> CISConstants:
    r"""Illustrative constants for the reference 7-node CIS.

    The noise constants are the reference release's (:data:`cistheory.REFERENCE_SIGMA`
    ``["3-9-17"]`` by default); the step is its learning rate 0.1 and :math:`T` its 100
    rounds (one update per round, :math:`\tau = 1`). The curvature constants (:math:`L = 1`,
    :math:`\mu = \mu_t = 0.1`), :math:`\bar\Gamma = 0.1` and :math:`\mathrm{gap}_0 = 1` are
    not measured: they are round numbers to be replaced by estimates for a real model.

    Examples
    --------
    >>> reference_constants().T
    100
    """
    sig = REFERENCE_SIGMA["3-9-17"] if sigma is None else sigma
    return CISConstants(L=L, mu=mu, Gamma=Gamma, sigma=np.asarray(sig, dtype=np.float64),
                        gap0=gap0, T=T, eta=eta)


@dataclass(frozen=True)
class _Data:
    lam: FloatArray
    v_fixed: FloatArray
    w: FloatArray
    el: Eligibility
    generalisation: float
    exit_data: FloatArray


def _per_pair(x: ArrayLike | None, name: str, shape: tuple[int, int]) -> FloatArray:
    if x is None:
        return np.zeros(shape)
    a = np.asarray(x, dtype=np.float64)
    if a.shape not in {(shape[1],), shape} or not np.all(np.isfinite(a)) or (a < 0).any():
        raise CISInputError(name, a.tolist(), f"expected finite values >= 0 of shape "
                                              f"({shape[1]},) or {shape}")
    return np.broadcast_to(a, shape).astype(np.float64)


def _problem_data(cis: CIS, el: Eligibility, const: CISConstants) -> _Data:
    n, k = cis.n_nodes, cis.n_exits
    sig2 = _per_pair(const.sigma, "sigma", (n, k)) ** 2
    g2 = _per_pair(const.G, "G", (n, k)) ** 2
    m = cis.data
    mk = el.eligible.T.astype(np.float64) @ m
    lam = cis.lam
    bad = (lam > 0) & ~(mk > 0)
    if bad.any():
        j = int(np.argmax(bad))
        raise CISInputError(f"lambda[{j + 1}]", float(lam[j]),
                            f"exit {j + 1} serves requests but policy {el.name!r} lets no node "
                            "with data train it")
    frac2 = np.where(el.eligible, (m[:, None] / np.where(mk > 0, mk, 1.0)[None, :]) ** 2, 0.0)
    is_fixed = el.fixed >= 0
    rows = np.flatnonzero(is_fixed)
    v_fixed = np.zeros(k)
    np.add.at(v_fixed, el.fixed[rows], frac2[rows, el.fixed[rows]] * sig2[rows, el.fixed[rows]])
    free = el.eligible & ~is_fixed[:, None]
    w = np.where(free, frac2 * (sig2 + g2), 0.0)
    trained = mk > 0
    rad = np.zeros(k)
    if const.rademacher is not None:
        r_in = as_float_array(const.rademacher, "rademacher", nonneg=True, axes=("exit",))
        if r_in.shape not in {(), (k,)}:
            raise CISInputError("rademacher", r_in.tolist(), f"expected a scalar or {k} values")
        rad = np.broadcast_to(r_in, (k,))
    eps = np.zeros(k)
    eps[trained] = generalization_bound(mk[trained], const.delta, const.B_loss, rad[trained])
    return _Data(lam, v_fixed, w, el, float(2 * np.sum(lam * eps)), mk)


def design(
    cis: CIS,
    part_policy: str | Participation | Eligibility,
    const: CISConstants,
    *,
    q_min: float = 0.0,
    lt_min: float = 0.0,
    budget: float | None = None,
    cost: ArrayLike | None = None,
    method: str = "fast",
    max_iter: int | None = None,
) -> DesignResult:
    r"""Bound-optimal weights and participation of a CIS under an eligibility policy.

    Minimises the full bound (``docs/theory.md``, Corollary, Section 5):

    .. math::
        \min_{\tilde\lambda, q}\ 2\sum_k\lambda_k\varepsilon_k(M_k)
        + \frac{2L}{\mu}\bar\Gamma\,\chi^2(\lambda\|\tilde\lambda)
        + \frac{2L^2}{\mu\mu_t}\bigl(c_V\,V(\tilde\lambda, q) + c_0\bigr)

    (see :func:`design_coefficients` for :math:`c_V, c_0`). ``const.Gamma`` plays
    :math:`\bar\Gamma`, an upper bound on :math:`\Gamma` for every :math:`\tilde\lambda`.

    Parameters
    ----------
    cis : cistheory.CIS
    part_policy : "deepest", "shallower", Participation or Eligibility
    const : cistheory.bounds.CISConstants
    q_min, lt_min : float
        Floors on free participation probabilities and on the weights.
    budget : float, optional
        Bound on the expected compute :math:`\sum_{i,k}\mathrm{cost}_k q_{i,k}`.
    cost : array (K,), optional
        Per-exit compute; defaults to ``cis.exit_flops`` (or 1 per exit).
    method : {"fast", "cvxpy"}
    max_iter : int, optional
        Iteration limit of the solver used (:func:`convex.solve_joint`, or
        :func:`convex.optimal_lt` when the policy fixes every node); ``None``: its default.

    Returns
    -------
    DesignResult
        ``lt`` (also ``x``) and ``q``, the full bound ``fun`` term by term, the solver's
        ``success``, ``status``, ``message`` and ``nit``, a certified ``lower_bound`` and
        ``gap`` (:mod:`convex.results`) and :func:`cistheory.bounds.cis_bound` at the
        design.

    Examples
    --------
    >>> import cistheory
    >>> cis = cistheory.reference_cis("80-15-5")
    >>> r = design(cis, "deepest", reference_constants())
    >>> bool(abs(r.lt.sum() - 1) < 1e-12), r.success, r.status
    (True, True, 'optimal')
    """
    el = eligibility(cis, part_policy)
    d = _problem_data(cis, el, const)
    a, b, c0 = design_coefficients(const)
    cost_a = None
    if budget is not None:
        cost_a = (np.ones(cis.n_exits) if cis.exit_flops is None else cis.exit_flops) \
            if cost is None else np.asarray(cost, dtype=np.float64)
    res = _solve_design(d, a, b, q_min=q_min, lt_min=lt_min, budget=budget, cost=cost_a,
                        method=method, max_iter=max_iter)
    q = res.q if isinstance(res, JointResult) else _fixed_q(el, cis.n_nodes, cis.n_exits)
    _, t_chi, t_var = joint_objective(d.lam, d.v_fixed, d.w, a, b, res.lt, q)
    terms = {"generalisation": d.generalisation, "bias": t_chi, "variance": t_var,
             "optimisation_constant": c0}
    part = explicit(cis, np.minimum(q, 1.0), name=el.name)
    fun = float(sum(terms.values()))
    gap = float(res.gap)
    return DesignResult(
        lt=res.lt, q=q, fun=fun, terms=terms, lower_bound=fun - gap, gap=gap,
        success=res.success, status=res.status, message=res.message, nit=int(res.nit),
        method=method, A=a, B=b, policy=el.name, bound=cis_bound(cis, part, res.lt, const),
    )


def _fixed_q(el: Eligibility, n: int, k: int) -> FloatArray:
    """The participation of a policy that fixes every node: one-hot rows."""
    q = np.zeros((n, k))
    rows = np.flatnonzero(el.fixed >= 0)
    q[rows, el.fixed[rows]] = 1.0
    return q


def _solve_design(
    d: _Data, a: float, b: float, *, q_min: float, lt_min: float, budget: float | None,
    cost: FloatArray | None, method: str, max_iter: int | None,
) -> LtResult | JointResult:
    """The weights problem when every node is fixed, else the joint problem."""
    el = d.el
    limit = {} if max_iter is None else {"max_iter": check_max_iter(max_iter)}
    if (el.eligible & (el.fixed < 0)[:, None]).any():
        return solve_joint(d.lam, d.v_fixed, d.w, el.eligible, a, b, fixed=el.fixed,
                           lt_min=lt_min, q_min=q_min, cost=cost, budget=budget,
                           method=method, **limit)
    if budget is not None and cost is not None and cost[el.fixed].sum() > budget:
        raise CISInputError("budget", budget, "infeasible: the fixed rows already cost "
                            f"{float(cost[el.fixed].sum())!r}")
    return optimal_lt(d.lam, d.v_fixed, a, b, method=method, lt_min=lt_min, **limit)


def bound_optimal_lt(
    cis: CIS, part: Participation, sigma: ArrayLike, *, a: float | None = None,
    b: float | None = None, constants: CISConstants | None = None,
) -> FloatArray:
    r"""Bound-optimal weights for a fixed participation (the ``bound-optimal`` rule).

    .. math::
        \tilde\lambda = \arg\min_{\Delta_K} a\,\chi^2(\lambda\|\tilde\lambda)
        + b\sum_k v_k\tilde\lambda_k^2,

    :math:`v` from :func:`cistheory.variance_coefficients` ``(part, sigma)``. Defaults:
    ``a`` and ``b`` are :math:`A` and :math:`B` of :func:`design_coefficients` applied to
    ``constants``, or to :func:`reference_constants` ``(sigma)`` when none are given
    (:math:`\bar\Gamma = 0.1`, :math:`L = 1`, :math:`\mu = \mu_t = 0.1`, :math:`\eta = 0.1`,
    :math:`T = 100`).

    Examples
    --------
    >>> import cistheory
    >>> cis = cistheory.reference_cis("80-15-5")
    >>> lt = bound_optimal_lt(cis, cistheory.deepest_exit(cis), [1.0, 1.0, 1.0], a=1.0, b=0.0)
    >>> lt.round(6).tolist()
    [0.8, 0.15, 0.05]
    """
    v = variance_coefficients(part, sigma)
    if a is None or b is None:
        const = reference_constants(sigma) if constants is None else constants
        a_ref, b_ref, _ = design_coefficients(const)
        a = a_ref if a is None else a
        b = b_ref if b is None else b
    return optimal_lt(cis.lam, v, float(a), float(b)).lt


def compare_eligibility(
    cis: CIS,
    const: CISConstants,
    policies: Sequence[str | Participation | Eligibility] = ("deepest", "shallower"),
    *,
    q_min: float = 0.0,
    budget: float | None = None,
    method: str = "fast",
) -> dict[str, DesignResult]:
    r"""Full bound of each eligibility policy at its own optimal design.

    Allowing shallower exits raises :math:`M_k` of shallow exits (less generalisation error
    where end devices hold little data) and adds sampling variance (:math:`G^2` terms, and
    :math:`1/q` factors): this weighs the two with the same bound.

    Examples
    --------
    >>> import cistheory
    >>> cis = cistheory.reference_cis("80-15-5", "tiny")
    >>> res = compare_eligibility(cis, reference_constants())
    >>> sorted(res)
    ['deepest', 'shallower']
    """
    out: dict[str, DesignResult] = {}
    for pol in policies:
        r = design(cis, pol, const, q_min=q_min, budget=budget, method=method)
        out[r.policy] = r
    return out


def design_terms(
    cis: CIS,
    part: Participation,
    lt: ArrayLike,
    const: CISConstants,
) -> dict[str, Any]:
    r"""The design objective :math:`J` of given weights and participation, term by term.

    With the eligibility of ``part`` (its support, rows containing a 1 fixed),

    .. math:: J = 2\sum_k \lambda_k\varepsilon_k + A\,\chi^2(\lambda\|\tilde\lambda)
        + B\,V(\tilde\lambda, q) + C_0,

    returned as ``{"J", "terms", "bound_tight"}``: ``terms`` has ``generalisation``,
    ``bias`` (:math:`A\chi^2`), ``variance`` (:math:`BV`) and ``optimisation_constant``
    (:math:`C_0`), and ``bound_tight`` is the tight-form total of
    :func:`cistheory.bounds.cis_bound`.

    Examples
    --------
    >>> import cistheory
    >>> cis = cistheory.reference_cis("80-15-5")
    >>> part = cistheory.deepest_exit(cis)
    >>> r = design_terms(cis, part, cis.lam, reference_constants())
    >>> abs(r["terms"]["bias"]) < 1e-12   # Serving Rate: chi2 = 0 up to rounding
    True
    """
    a, b, c0 = design_coefficients(const)
    el = eligibility(cis, part)
    d = _problem_data(cis, el, const)
    lt_a = np.asarray(lt, dtype=np.float64)
    _, t_chi, t_var = joint_objective(d.lam, d.v_fixed, d.w, a, b, lt_a, part.q)
    terms = {
        "generalisation": d.generalisation,
        "bias": t_chi,
        "variance": t_var,
        "optimisation_constant": c0,
    }
    return {
        "J": float(sum(terms.values())),
        "terms": terms,
        "bound_tight": cis_bound(cis, part, lt_a, const).total,
    }
