r"""The one registry of training-weight rules: name -> formula and what it needs.

Every caller (the command line, the trainer's configuration, the experiments, the figures)
turns a rule's name into weights through :func:`rule_weights`; this is the only mapping
from names to formulas in the package. Each :class:`Rule` names the inputs it reads
(``needs``), and its formula is the docstring of the function it wraps
(:mod:`cistheory.rules.formulas`, or :func:`convex.stable_lt` for ``bound-optimal`` and
:func:`convex.bound_optimal_lt` for ``bound-optimal-first``).

======================  ==========================================  =======================
name                    weights                                     needs
======================  ==========================================  =======================
``serving-rate``        :math:`\tilde\lambda = \lambda`             --
``equal``               :math:`1/K`                                 --
``flops``               :math:`\propto \min((t+1)/H, r_k)`          ``exit_flops``
``opt-err``             :math:`\propto 1/v_k`                       ``v``
``balanced-adj``        mean of the two above, normalised           ``v``
``bound-optimal``       minimiser of the second-generation design   ``cis``, ``part``,
                        objective (Section 5.2)                     ``sigma``
``bound-optimal-first`` minimiser of the first generation's (§5)    ``cis``, ``part``,
                                                                    ``sigma``
``mix:A``               :math:`(1-A)\lambda + A/K`                  --
======================  ==========================================  =======================

Only this module (and the command line) imports :mod:`convex`, inside the rules that need
it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import FloatArray, as_float_array, as_simplex
from ..bounds.corollary import CISConstants
from ..errors import CISInputError
from ..system.participation import Participation
from ..system.tree import CIS
from .formulas import (
    REFERENCE_HORIZON,
    balanced_adj,
    equal,
    flops_proportional,
    inverse_variance,
    serving_rate,
    variance_coefficients,
)

__all__ = ["RULES", "RULE_NAMES", "Rule", "RuleInputs", "get_rule", "rule_inputs", "rule_weights"]


@dataclass(frozen=True)
class RuleInputs:
    r"""What a rule may read.

    Attributes
    ----------
    lam : ndarray, shape (K,)
        Serving shares :math:`\lambda` (on the simplex).
    v : ndarray, shape (K,), optional
        Coefficients of :math:`V(\tilde\lambda, q) = \sum_k v_k\tilde\lambda_k^2` (Lemma 2),
        e.g. from :func:`~cistheory.rules.formulas.variance_coefficients`.
    exit_flops : ndarray, shape (K,), optional
        Relative FLOPs :math:`r_k` of each exit.
    round_t : int, optional
        Round :math:`t` of the FLOPs schedule, in ``0..horizon-1``; ``None`` means the last,
        ``horizon - 1`` (the schedule's final weights).
    horizon : int
        Rounds :math:`H` of the FLOPs schedule (``tau_t = (t + 1) / H``); 100, the
        reference's, unless given.
    cis, part : CIS, Participation, optional
        The system and its participation (``bound-optimal``).
    sigma : array_like, optional
        Gradient-noise constants (``bound-optimal``).
    constants : CISConstants, optional
        The bound's constants (``bound-optimal``); ``None`` means
        :func:`convex.reference_constants`.
    stable : convex.StableConstants, optional
        The second-generation design constants (``bound-optimal``); ``None`` maps
        ``constants`` (:func:`convex.constants_from`).
    """

    lam: FloatArray
    v: FloatArray | None = None
    exit_flops: FloatArray | None = None
    round_t: int | None = None
    horizon: int = REFERENCE_HORIZON
    cis: CIS | None = None
    part: Participation | None = None
    sigma: ArrayLike | None = None
    constants: CISConstants | None = None
    stable: Any = None


@dataclass(frozen=True)
class Rule:
    """A named training-weight rule.

    Attributes
    ----------
    name : str
    formula : callable
        Function of :class:`RuleInputs` returning the weights; its docstring states the
        formula.
    needs : tuple of str
        The fields of :class:`RuleInputs` it reads besides ``lam``.
    per_round : bool
        Whether the weights change with the round (the FLOPs schedule).
    """

    name: str
    formula: Callable[[RuleInputs], FloatArray]
    needs: tuple[str, ...] = ()
    per_round: bool = False

    @property
    def doc(self) -> str:
        """The formula's docstring."""
        return self.formula.__doc__ or ""

    def weights(self, inputs: RuleInputs) -> FloatArray:
        """The rule's weights, after checking that every input it needs is given."""
        for need in self.needs:
            if getattr(inputs, need) is None:
                raise CISInputError(need, None, f"rule '{self.name}' needs {need}")
        return self.formula(inputs)

    def __call__(self, lam: ArrayLike, **inputs: Any) -> FloatArray:
        """``rule(lam, v=..., exit_flops=..., round_t=...)``: the weights for these inputs."""
        known = {f.name for f in fields(RuleInputs)} - {"lam"}
        unknown = sorted(set(inputs) - known)
        if unknown:
            raise CISInputError(unknown[0], inputs[unknown[0]], f"not an input of rules: {known}")
        lam_a = as_float_array(lam, "lambda", ndim=1, axes=("exit",))
        return self.weights(RuleInputs(lam=lam_a, **inputs))


def _serving_rate(x: RuleInputs) -> FloatArray:
    return serving_rate(as_simplex(x.lam, "lambda"))


def _equal(x: RuleInputs) -> FloatArray:
    return equal(x.lam.size)


def _flops(x: RuleInputs) -> FloatArray:
    return flops_proportional(np.asarray(x.exit_flops), x.round_t, x.horizon)


def _opt_err(x: RuleInputs) -> FloatArray:
    return inverse_variance(np.asarray(x.v))


def _balanced_adj(x: RuleInputs) -> FloatArray:
    return balanced_adj(x.lam, np.asarray(x.v))


def _bound_optimal(x: RuleInputs) -> FloatArray:
    import convex

    assert x.cis is not None and x.part is not None and x.sigma is not None
    stable = x.stable
    if stable is None:
        const = x.constants if x.constants is not None else convex.reference_constants(x.sigma)
        stable = convex.constants_from(x.part, const)
    return np.asarray(convex.stable_lt(x.cis, x.part, stable).lt, dtype=np.float64)


def _bound_optimal_first(x: RuleInputs) -> FloatArray:
    import convex

    assert x.cis is not None and x.part is not None and x.sigma is not None
    return np.asarray(
        convex.bound_optimal_lt(x.cis, x.part, x.sigma, constants=x.constants),
        dtype=np.float64,
    )


for _f, _src in (
    (_serving_rate, serving_rate),
    (_equal, equal),
    (_flops, flops_proportional),
    (_opt_err, inverse_variance),
    (_balanced_adj, balanced_adj),
):
    _f.__doc__ = _src.__doc__
_bound_optimal.__doc__ = r"""Bound-optimal rule: the minimiser of the second-generation design
objective of ``docs/theory.md``, Section 5.2 (with the step-stability constraint), for the given
participation (:func:`convex.stable_lt`); constants from ``stable``, else mapped from
``constants`` (or the illustrative :func:`convex.reference_constants`) by
:func:`convex.constants_from`."""
_bound_optimal_first.__doc__ = r"""The first generation's bound-optimal rule (kept for
comparison): the minimiser over the simplex of the design objective of ``docs/theory.md``,
Section 5, for the given participation (:func:`convex.bound_optimal_lt`)."""

RULES: Mapping[str, Rule] = {
    r.name: r
    for r in (
        Rule("serving-rate", _serving_rate),
        Rule("equal", _equal),
        Rule("flops", _flops, ("exit_flops",), per_round=True),
        Rule("opt-err", _opt_err, ("v",)),
        Rule("balanced-adj", _balanced_adj, ("v",)),
        Rule("bound-optimal", _bound_optimal, ("cis", "part", "sigma")),
        Rule("bound-optimal-first", _bound_optimal_first, ("cis", "part", "sigma")),
    )
}
"""Rule name -> :class:`Rule`, in the order reports list them."""

RULE_NAMES: tuple[str, ...] = tuple(RULES)
"""The names of the registered rules."""


def _mix(a: float) -> Rule:
    def formula(x: RuleInputs) -> FloatArray:
        lam = as_simplex(x.lam, "lambda")
        return np.asarray((1 - a) * lam + a * equal(lam.size), dtype=np.float64)

    formula.__doc__ = r"""Mixture of Serving Rate and Equal:
    :math:`\tilde\lambda = (1 - A)\lambda + A/K`, :math:`0 \le A \le 1`."""
    return Rule(f"mix:{a:g}", formula)


def get_rule(name: str) -> Rule:
    """The rule called ``name``: one of :data:`RULE_NAMES`, or ``mix:A`` with ``0 <= A <= 1``.

    Examples
    --------
    >>> get_rule("equal")([0.8, 0.15, 0.05]).tolist()
    [0.3333333333333333, 0.3333333333333333, 0.3333333333333333]
    >>> get_rule("mix:0.5")([0.5, 0.5]).tolist()
    [0.5, 0.5]
    """
    if name in RULES:
        return RULES[name]
    if isinstance(name, str) and name.startswith("mix:"):
        try:
            a = float(name[4:])
        except ValueError:
            a = float("nan")
        if not 0.0 <= a <= 1.0:
            raise CISInputError("rule", name, "mix:A needs a number 0 <= A <= 1")
        return _mix(a)
    raise CISInputError("rule", name, f"unknown rule; use one of {', '.join(RULE_NAMES)}, mix:A")


def rule_inputs(
    cis: CIS,
    part: Participation,
    *,
    sigma: ArrayLike | None = None,
    G: ArrayLike | None = None,
    round_t: int | None = None,
    horizon: int = REFERENCE_HORIZON,
    exit_flops: ArrayLike | None = None,
    constants: CISConstants | None = None,
    stable: Any = None,
) -> RuleInputs:
    """The inputs of every rule for a CIS and its participation.

    ``v`` is computed from ``sigma`` (and ``G``) when ``sigma`` is given; ``exit_flops``
    defaults to the CIS's; the FLOPs schedule is at round ``round_t`` of ``horizon`` (default
    the last round of 100, the reference's); ``stable`` (a :class:`convex.StableConstants`)
    feeds ``bound-optimal``.
    """
    part.check_trainable(cis.lam)
    v = None if sigma is None else variance_coefficients(part, sigma, G)
    flops = (
        cis.exit_flops
        if exit_flops is None
        else as_float_array(exit_flops, "exit_flops", shape=(cis.n_exits,), axes=("exit",))
    )
    return RuleInputs(
        lam=cis.lam,
        v=v,
        exit_flops=flops,
        round_t=round_t,
        horizon=horizon,
        cis=cis,
        part=part,
        sigma=sigma,
        constants=constants,
        stable=stable,
    )


def rule_weights(name: str, inputs: RuleInputs) -> FloatArray:
    """The weights of the rule ``name`` (see :func:`get_rule`) for ``inputs``.

    Examples
    --------
    >>> from cistheory import deepest_exit, reference_cis
    >>> cis = reference_cis("80-15-5")
    >>> x = rule_inputs(cis, deepest_exit(cis), sigma=[1.0, 1.0, 1.0])
    >>> rule_weights("opt-err", x).round(4).tolist()
    [0.5714, 0.2857, 0.1429]
    """
    return get_rule(name).weights(inputs)
