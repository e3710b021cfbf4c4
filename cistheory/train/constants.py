r"""Estimating the constants of the bounds from a model, node data and participation.

Everything is measured at the model's current parameters :math:`w_0` (and, for the
gradient quantities, at a few random points around it), with the objectives of
``docs/theory.md`` Section 2:

.. math::
    f_{i,k}(w) = \frac{1}{m_i}\sum_{j} \ell(h_k(x_j; w), y_j)
                 + \frac{\rho}{2}\lVert w_{P_k}\rVert^2,
    \qquad F_k = \sum_{i \in E_k} \frac{m_i}{M_k} f_{i,k}, \qquad
    F_{\tilde\lambda} = \sum_k \tilde\lambda_k F_k .

- Gradient noise :math:`\sigma^2_{i,k}` (Lemma 2): the variance of a minibatch gradient of
  :math:`f_{i,k}` at batch size :math:`B` drawn with replacement (as the trainer does),

  .. math:: \sigma^2_{i,k} = \frac1B\,\frac1{m_i}\sum_{j=1}^{m_i}\lVert g_j - \bar g\rVert^2,
            \qquad g_j = \nabla \ell(h_k(x_j; w), y_j), \quad \bar g = \frac1{m_i}\sum_j g_j,

  from per-sample gradients (``torch.func.vmap`` of ``grad``; weight decay adds the same
  :math:`\rho w_{P_k}` to every :math:`g_j` and cancels). :func:`gradient_noise` gives it at
  the model's parameters; :func:`estimate_constants` takes the maximum over the points.
- Gradient bound :math:`G_{i,k} = \lVert\nabla f_{i,k}(w)\rVert`: :func:`gradient_norms` at the
  model's parameters (without weight decay); :func:`estimate_constants` the largest norm over
  the points, weight decay included.
- Smoothness :math:`L_k`: the largest Hessian eigenvalue of :math:`F_k` by power iteration
  on Hessian-vector products; :math:`L = \max_k L_k`.
- Strong convexity :math:`\mu` (of :math:`F_\lambda`), :math:`\tilde\mu` (of
  :math:`F_{\tilde\lambda}`), :math:`\mu_k` (of :math:`F_k` on :math:`P_k`): the smallest
  Hessian eigenvalue, by power iteration on :math:`cI - H` with :math:`c = 1.01\,L`
  (all eigenvalues of :math:`cI - H` are then positive). ``None`` when it is not positive
  (the objective is not strongly convex there). Hessians are taken at :math:`w_0`: exact
  for quadratic losses, local otherwise.
- Heterogeneity :math:`\Gamma = F_{\tilde\lambda}(\tilde w^*) - \sum_k \tilde\lambda_k \inf F_k`
  from short gradient-descent solves (step :math:`1/L`) of :math:`F_{\tilde\lambda}` and each
  :math:`F_k`; where the strong convexities are known the PL inequality
  :math:`\inf F \ge F(\hat w) - \lVert\nabla F(\hat w)\rVert^2/(2\mu)` turns the solves into
  certified upper bounds ``Gamma_upper`` and ``gap0_upper``.

The strong convexity estimates are Rayleigh quotients, so they can only over-estimate the
smallest eigenvalue; the power iteration runs to a relative tolerance and reports its
iteration count.

Both estimators of :math:`\sigma^2` take their per-sample gradients from one function and
differ only in how the squared deviations are summed, each as its callers have always
summed them (results are reproducible bit for bit): :func:`gradient_noise` holds a node's
per-sample gradients in memory, in the model's own dtype, and sums the centred deviations
in float64 (two passes); :func:`estimate_constants` streams the node's data in chunks, in its
``dtype``, and forms :math:`\frac1{m}\sum_j\lVert g_j\rVert^2 - \lVert\bar g\rVert^2` in one
pass (memory of one chunk, and the mean gradient it also needs for :math:`G`). They agree
to rounding (``tests/test_constants.py``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor
from torch.func import functional_call, grad, vmap

from .._arrays import BoolArray, FloatArray, as_simplex
from ..bounds.corollary import CISConstants
from ..errors import CISInputError
from ..system.participation import check_q
from .data import Dataset
from .models import EarlyExitModel

__all__ = [
    "DesignEstimate",
    "EstimatedConstants",
    "estimate_constants",
    "estimate_design_constants",
    "gradient_noise",
    "gradient_norms",
    "pair_smoothness",
    "power_iteration",
]

LossFn = Callable[[Tensor, Tensor], Tensor]

# Shift of the power iteration for the smallest eigenvalue: c = (1 + margin) L keeps every
# eigenvalue of cI - H positive even when the estimate of L is slightly low.
_SHIFT_MARGIN = 0.01


@dataclass(frozen=True)
class EstimatedConstants:
    r"""Constants estimated by :func:`estimate_constants`.

    Attributes
    ----------
    L : float
        :math:`\max_k L_k`.
    L_exit : tuple of float
        :math:`L_k`, the largest Hessian eigenvalue of :math:`F_k`.
    mu_exit : tuple of (float or None)
        Smallest Hessian eigenvalue of :math:`F_k` on :math:`P_k`.
    mu, mu_t, L_t : float or None
        Strong convexity of :math:`F_\lambda`, strong convexity and smoothness of
        :math:`F_{\tilde\lambda}` (``None`` when not given ``lam``/``lt`` or not positive).
    sigma2 : ndarray (N, K)
        Minibatch gradient-noise variances :math:`\sigma^2_{i,k}` at ``batch_size``.
    G : ndarray (N, K)
        Gradient-norm bounds :math:`G_{i,k}`.
    Gamma, gap0 : float or None
        Heterogeneity :math:`\Gamma` and :math:`F_{\tilde\lambda}(w_0) - F_{\tilde\lambda}^*`
        from the local solves (``None`` without ``lt``).
    Gamma_upper, gap0_upper : float or None
        Their PL-certified upper bounds (``None`` unless every needed :math:`\mu` exists).
    batch_size : int or None
        ``None`` = full batch (no noise).
    lam, lt : tuple of float or None
    power_iterations : int
        Largest number of power iterations used by any eigenvalue estimate.
    """

    L: float
    L_exit: tuple[float, ...]
    mu_exit: tuple[float | None, ...]
    mu: float | None
    mu_t: float | None
    L_t: float | None
    sigma2: FloatArray
    G: FloatArray
    Gamma: float | None
    Gamma_upper: float | None
    gap0: float | None
    gap0_upper: float | None
    batch_size: int | None
    lam: tuple[float, ...] | None
    lt: tuple[float, ...] | None
    power_iterations: int

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (plain floats and lists; ``None`` where not estimated).

        Examples
        --------
        >>> est = EstimatedConstants(1.0, (1.0,), (None,), None, None, None, np.zeros((1, 1)),
        ...                          np.ones((1, 1)), None, None, None, None, 8, None, None, 3)
        >>> est.as_dict()["G"], est.as_dict()["mu_exit"]
        ([[1.0]], [None])
        """
        return {
            "L": float(self.L),
            "L_exit": [float(x) for x in self.L_exit],
            "mu_exit": [_opt_float(x) for x in self.mu_exit],
            "mu": _opt_float(self.mu),
            "mu_t": _opt_float(self.mu_t),
            "L_t": _opt_float(self.L_t),
            "sigma2": np.asarray(self.sigma2, dtype=np.float64).tolist(),
            "G": np.asarray(self.G, dtype=np.float64).tolist(),
            "Gamma": _opt_float(self.Gamma),
            "Gamma_upper": _opt_float(self.Gamma_upper),
            "gap0": _opt_float(self.gap0),
            "gap0_upper": _opt_float(self.gap0_upper),
            "batch_size": self.batch_size,
            "lam": None if self.lam is None else [float(x) for x in self.lam],
            "lt": None if self.lt is None else [float(x) for x in self.lt],
            "power_iterations": int(self.power_iterations),
        }

    def to_cis_constants(
        self,
        *,
        T: int,
        eta: float | None = None,
        b: float | None = None,
        gamma: float | None = None,
        certified: bool = True,
        gap0: float | None = None,
        Gamma: float | None = None,
        B_loss: float = 1.0,
        delta: float = 0.05,
        rademacher: ArrayLike | None = None,
    ) -> CISConstants:
        r"""The :class:`cistheory.bounds.CISConstants` for :func:`cistheory.bounds.cis_bound`.

        ``sigma`` is :math:`\sqrt{\sigma^2_{i,k}}` and ``G`` the per-pair bounds, both (N, K).
        ``Gamma`` and ``gap0`` default to the certified upper bounds (``certified=True``)
        or to the point estimates; explicit values override both.

        Raises
        ------
        CISInputError
            When :math:`\mu` or :math:`\tilde\mu` is unknown (not strongly convex), or the
            requested :math:`\Gamma`/gap is not available.
        """
        if self.mu is None:
            raise CISInputError("mu", None, "F_lambda is not strongly convex (or lam not given)")
        if self.mu_t is None or self.L_t is None:
            raise CISInputError("mu_t", None, "F_lt is not strongly convex (or lt not given)")
        gam = Gamma if Gamma is not None else (self.Gamma_upper if certified else self.Gamma)
        g0 = gap0 if gap0 is not None else (self.gap0_upper if certified else self.gap0)
        if gam is None:
            raise CISInputError("Gamma", None, "no certified Gamma: give Gamma= or certified=False")
        if g0 is None:
            raise CISInputError("gap0", None, "no certified gap0: give gap0= or certified=False")
        return CISConstants(
            L=self.L,
            mu=self.mu,
            Gamma=float(gam),
            sigma=np.sqrt(self.sigma2),
            gap0=float(g0),
            T=int(T),
            mu_t=self.mu_t,
            L_t=self.L_t,
            G=self.G,
            eta=eta,
            b=b,
            gamma=gamma,
            B_loss=B_loss,
            delta=delta,
            rademacher=rademacher,
        )


def _opt_float(x: float | None) -> float | None:
    return None if x is None else float(x)


def power_iteration(
    matvec: Callable[[Tensor], Tensor],
    v0: Tensor,
    *,
    iters: int = 200,
    tol: float = 1e-8,
) -> tuple[float, int]:
    r"""Dominant eigenvalue of a symmetric operator by power iteration (Rayleigh quotient).

    .. math:: v \leftarrow Av/\lVert Av\rVert, \qquad \hat\lambda = v^\top A v,

    stopped when :math:`|\hat\lambda_{j} - \hat\lambda_{j-1}| \le` ``tol`` :math:`|\hat\lambda_j|`.

    Examples
    --------
    >>> A = torch.diag(torch.tensor([3.0, 1.0], dtype=torch.float64))
    >>> lam, _ = power_iteration(lambda v: A @ v, torch.ones(2, dtype=torch.float64))
    >>> round(lam, 6)
    3.0
    """
    v = v0 / v0.norm()
    prev = math.inf
    lam = 0.0
    for j in range(1, int(iters) + 1):
        w = matvec(v)
        lam = float(v @ w)
        nrm = float(w.norm())
        if nrm == 0.0:
            return 0.0, j
        v = w / nrm
        if abs(lam - prev) <= tol * abs(lam):
            return lam, j
        prev = lam
    return lam, int(iters)


class _Flat:
    """The model's parameters as one flat vector, and the objectives as functions of it."""

    def __init__(
        self,
        model: EarlyExitModel,
        node_data: Sequence[Dataset],
        frac: FloatArray,
        loss_fn: LossFn,
        rho: float,
        dtype: torch.dtype,
        chunk: int,
    ) -> None:
        self.model = model
        self.names = [n for n, _ in model.named_parameters()]
        params = dict(model.named_parameters())
        self.shapes = [params[n].shape for n in self.names]
        self.sizes = [params[n].numel() for n in self.names]
        self.theta0 = torch.cat([params[n].detach().reshape(-1) for n in self.names]).to(dtype)
        self.buffers = {n: b.detach() for n, b in model.named_buffers()}
        self.k = model.n_exits
        offs = np.cumsum([0, *self.sizes])
        self.masks = []
        for k in range(1, self.k + 1):
            m = torch.zeros(self.theta0.numel(), dtype=torch.bool)
            part = set(model.exit_parameter_names(k))
            for j, n in enumerate(self.names):
                if n in part:
                    m[int(offs[j]) : int(offs[j + 1])] = True
            self.masks.append(m)
        self.data = [
            (d.x.to(dtype) if d.x.is_floating_point() else d.x, _target(d.y, dtype))
            for d in node_data
        ]
        self.frac = frac
        self.loss_fn = loss_fn
        self.rho = float(rho)
        self.chunk = int(chunk)

    def unflat(self, theta: Tensor) -> dict[str, Tensor]:
        out = {}
        for n, piece, shape in zip(
            self.names, torch.split(theta, self.sizes), self.shapes, strict=True
        ):
            out[n] = piece.view(shape)
        return out

    def _out(self, theta: Tensor, x: Tensor, k: int) -> Tensor:
        res: Tensor = functional_call(
            self.model, (self.unflat(theta), self.buffers), (x,), {"exit": k}
        )
        return res

    def _chunks(self, i: int) -> list[tuple[Tensor, Tensor]]:
        x, y = self.data[i]
        n = x.shape[0]
        return [(x[s : s + self.chunk], y[s : s + self.chunk]) for s in range(0, n, self.chunk)]

    def f(self, theta: Tensor, i: int, k: int) -> Tensor:
        """:math:`f_{i,k}(\\theta)` (exit ``k`` 1-based)."""
        m = self.data[i][0].shape[0]
        tot = sum(self.loss_fn(self._out(theta, xb, k), yb).sum() for xb, yb in self._chunks(i))
        reg = 0.5 * self.rho * (theta * self.masks[k - 1]).pow(2).sum()
        return torch.as_tensor(tot) / m + reg

    def F(self, theta: Tensor, weights: FloatArray) -> Tensor:
        """:math:`\\sum_k w_k F_k(\\theta)`."""
        total = theta.new_zeros(())
        for k in range(self.k):
            if weights[k] == 0:
                continue
            for i in np.flatnonzero(self.frac[:, k] > 0):
                total = total + float(weights[k] * self.frac[i, k]) * self.f(theta, int(i), k + 1)
        return total

    def grad_F(self, theta: Tensor, weights: FloatArray) -> Tensor:
        g: Tensor = grad(lambda th: self.F(th, weights))(theta)
        return g

    def hvp_F(self, theta: Tensor, weights: FloatArray, v: Tensor) -> Tensor:
        # reverse-over-reverse: forward-mode AD would load torch's TorchScript decompositions
        out: Tensor = grad(lambda th: self.grad_F(th, weights) @ v)(theta)
        return out

    def sample_moments(self, theta: Tensor, i: int, k: int) -> tuple[Tensor, float]:
        r"""Mean per-sample loss gradient and mean squared deviation (population variance).

        One pass over the chunks:
        :math:`\frac1m\sum_j\lVert g_j\rVert^2 - \lVert\bar g\rVert^2`.
        """
        per = _per_sample_grad(
            self.model, k, self.loss_fn, lambda th: (self.unflat(th), self.buffers)
        )
        s1 = torch.zeros_like(theta)
        s2 = 0.0
        m = 0
        for xb, yb in self._chunks(i):
            g = per(theta, xb, yb)
            s1 += g.sum(0)
            s2 += float((g * g).sum())
            m += g.shape[0]
        mean = s1 / m
        var = max(s2 / m - float(mean @ mean), 0.0)  # rounding below 0 only when var ~ 0
        return mean, var


def _per_sample_grad(
    model: EarlyExitModel, k: int, loss_fn: LossFn, params_of: Callable[[Any], Any]
) -> Callable[..., Any]:
    """``(arg, x, y) -> `` per-sample gradients of exit ``k``'s loss with respect to ``arg``.

    ``params_of(arg)`` gives ``functional_call``'s parameters (and buffers) from ``arg``, the
    variable differentiated (a flat vector, or a dictionary of the part's parameters); each
    sample's loss is ``loss_fn(h_k(x_j), y_j)`` on a batch of one.
    """

    def one(arg: Any, xj: Tensor, yj: Tensor) -> Tensor:
        out = functional_call(model, params_of(arg), (xj[None],), {"exit": k})
        res: Tensor = loss_fn(out, yj[None]).sum()
        return res

    return vmap(grad(one), in_dims=(None, 0, 0))


def _with_fixed(
    fixed: dict[str, Tensor], buffers: dict[str, Tensor]
) -> Callable[[dict[str, Tensor]], tuple[dict[str, Tensor], dict[str, Tensor]]]:
    """``functional_call``'s arguments from the part's parameters, the others held fixed."""

    def params_of(part: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        return {**fixed, **part}, buffers

    return params_of


def _target(y: Tensor, dtype: torch.dtype) -> Tensor:
    return y.to(dtype) if y.is_floating_point() else y


def _default_loss(model: EarlyExitModel, loss_fn: LossFn | None) -> LossFn:
    """``loss_fn``, or the model's per-sample loss (``reduction="none"``)."""
    if loss_fn is not None:
        return loss_fn
    if not hasattr(model, "loss"):
        raise CISInputError("loss_fn", None, "the model has no .loss; pass loss_fn")

    def per_sample(out: Tensor, y: Tensor) -> Tensor:
        res: Tensor = model.loss(out, y, reduction="none")
        return res

    return per_sample


def _pairs(pairs: ArrayLike | None, n: int, k: int) -> BoolArray:
    """The (N, K) boolean table of the (node, exit) pairs to estimate (``None``: all)."""
    if pairs is None:
        return np.ones((n, k), dtype=bool)
    mask = np.asarray(pairs)
    if mask.shape != (n, k):
        raise CISInputError("pairs", mask.shape, f"expected shape ({n}, {k}) (node, exit)")
    return mask.astype(bool)


class _EvalMode:
    """Context: the model in eval mode with gradients on; its mode restored on exit."""

    def __init__(self, model: EarlyExitModel) -> None:
        self.model = model
        self.was_training = model.training
        self.grad = torch.enable_grad()

    def __enter__(self) -> EarlyExitModel:
        self.grad.__enter__()
        self.model.eval()
        return self.model

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was_training)
        self.grad.__exit__(*exc)


def gradient_noise(
    model: EarlyExitModel,
    node_data: Sequence[Dataset],
    *,
    batch_size: int,
    pairs: ArrayLike | None = None,
    loss_fn: LossFn | None = None,
) -> FloatArray:
    r"""Minibatch gradient-noise variances :math:`\sigma^2_{i,k}` at the model's parameters.

    .. math::
        \sigma^2_{i,k} = \frac1B\,\frac1{m_i}\sum_{j=1}^{m_i}\lVert g_j - \bar g\rVert^2,
        \qquad g_j = \nabla_{P_k}\,\ell(h_k(x_j; w), y_j),
        \quad \bar g = \frac1{m_i}\sum_{j} g_j,

    the variance (trace of the covariance) of the gradient of :math:`f_{i,k}` on a minibatch
    of :math:`B` samples drawn with replacement from node :math:`i`'s :math:`m_i` samples
    (Lemma 2), for the loss of exit :math:`k` with respect to the part :math:`P_k` it reads.
    Weight decay adds the same :math:`\rho w_{P_k}` to every :math:`g_j`: it does not change
    :math:`\sigma^2`. The per-sample gradients are ``torch.func.vmap`` of ``grad`` in the
    model's own dtype (convert the model, e.g. ``.double()``, for another); the deviations are
    summed in float64 after centring (two passes over the node's gradients, all in memory).

    Parameters
    ----------
    model : EarlyExitModel
        Evaluated at its current parameters, in eval mode (its mode is restored).
    node_data : sequence of Dataset
    batch_size : int
        :math:`B`.
    pairs : array of bool (N, K), optional
        The (node, exit) pairs to estimate, e.g. ``q > 0`` for the training populations
        :math:`E_k`; the others are 0. Default: every pair.
    loss_fn : callable, optional
        Per-sample loss ``(output, y) -> (batch,)``; default ``model.loss(..., "none")``.

    Returns
    -------
    ndarray (N, K)
        :math:`\sigma^2_{i,k}`; 0 where not estimated and for a node with fewer than two
        samples (all its minibatches are alike).

    Examples
    --------
    >>> from cistheory.train.models import NestedLinear
    >>> m = NestedLinear(1, (1,), None, bias=False)
    >>> _ = m.blocks[0].weight.data.fill_(0.0)
    >>> ds = Dataset(torch.ones(2, 1), torch.tensor([1.0, 3.0]))   # g_j = -y_j
    >>> gradient_noise(m, [ds], batch_size=2).tolist()
    [[0.5]]
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or (
        batch_size < 1
    ):
        raise CISInputError("batch_size", batch_size, "must be a positive integer")
    k_ex = model.n_exits
    todo = _pairs(pairs, len(node_data), k_ex)
    loss = _default_loss(model, loss_fn)
    dtype = next(model.parameters()).dtype
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    sigma2 = np.zeros((len(node_data), k_ex))
    with _EvalMode(model):
        for k in range(1, k_ex + 1):
            names = set(model.exit_parameter_names(k))
            part = {n: p.detach() for n, p in model.named_parameters() if n in names}
            rest = {n: p.detach() for n, p in model.named_parameters() if n not in names}
            per = _per_sample_grad(model, k, loss, _with_fixed(rest, buffers))
            for i in np.flatnonzero(todo[:, k - 1]):
                ds = node_data[int(i)]
                if len(ds) < 2:
                    continue
                x = ds.x.to(dtype) if ds.x.is_floating_point() else ds.x
                g = per(part, x, _target(ds.y, dtype))
                flat = torch.cat([g[n].reshape(len(ds), -1) for n in sorted(g)], dim=1).double()
                dev2 = float(((flat - flat.mean(0)) ** 2).sum(1).mean())
                sigma2[i, k - 1] = dev2 / int(batch_size)
    return sigma2


def gradient_norms(
    model: EarlyExitModel,
    node_data: Sequence[Dataset],
    *,
    pairs: ArrayLike | None = None,
    loss_fn: LossFn | None = None,
) -> FloatArray:
    r"""Full-batch gradient norms :math:`G_{i,k} = \lVert\nabla_{P_k} f_{i,k}(w)\rVert`.

    .. math:: f_{i,k}(w) = \frac1{m_i}\sum_{j=1}^{m_i} \ell(h_k(x_j; w), y_j)

    (without weight decay) at the model's current parameters: one backward pass over node
    :math:`i`'s data, in the model's dtype, the squares of each parameter's gradient summed
    in float64 in the order of ``named_parameters()``. A point estimate of the gradient bound
    of Lemma 2 (the bound proper is over the whole trajectory).

    Parameters
    ----------
    model : EarlyExitModel
        Evaluated in eval mode (its mode is restored); its ``.grad`` are not touched.
    node_data : sequence of Dataset
    pairs : array of bool (N, K), optional
        The (node, exit) pairs to compute; the others are 0. Default: every pair.
    loss_fn : callable, optional
        Per-sample loss ``(output, y) -> (batch,)``; default ``model.loss(..., "none")``.

    Examples
    --------
    >>> from cistheory.train.models import NestedLinear
    >>> m = NestedLinear(1, (1,), None, bias=False)
    >>> _ = m.blocks[0].weight.data.fill_(0.0)
    >>> ds = Dataset(torch.ones(2, 1), torch.tensor([1.0, 3.0]))   # gradient -mean(y)
    >>> gradient_norms(m, [ds]).tolist()
    [[2.0]]
    """
    k_ex = model.n_exits
    todo = _pairs(pairs, len(node_data), k_ex)
    loss = _default_loss(model, loss_fn)
    dtype = next(model.parameters()).dtype
    out = np.zeros((len(node_data), k_ex))
    with _EvalMode(model):
        for k in range(1, k_ex + 1):
            names = set(model.exit_parameter_names(k))
            params = [p for n, p in model.named_parameters() if n in names]
            for i in np.flatnonzero(todo[:, k - 1]):
                ds = node_data[int(i)]
                if len(ds) == 0:
                    continue
                x = ds.x.to(dtype) if ds.x.is_floating_point() else ds.x
                value = loss(model(x, exit=k), _target(ds.y, dtype)).mean()
                grads = torch.autograd.grad(value, params, allow_unused=True)
                sq = 0.0
                for g in grads:
                    if g is not None:
                        sq += float((g**2).sum())
                out[i, k - 1] = math.sqrt(sq)
    return out


def _weights(x: ArrayLike | None, field: str, k: int) -> FloatArray | None:
    if x is None:
        return None
    w = as_simplex(x, field)
    if w.size != k:
        raise CISInputError(field, w.tolist(), f"expected {k} weights (one per exit)")
    return w


def estimate_constants(
    model: EarlyExitModel,
    node_data: Sequence[Dataset],
    q: ArrayLike,
    *,
    lam: ArrayLike | None = None,
    lt: ArrayLike | None = None,
    batch_size: int | None = 32,
    weight_decay: float = 0.0,
    loss_fn: LossFn | None = None,
    n_points: int = 3,
    radius: float | None = None,
    power_iters: int = 300,
    power_tol: float = 1e-9,
    solve_steps: int = 200,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    chunk: int = 512,
) -> EstimatedConstants:
    r"""Estimate :math:`\sigma^2_{i,k}, G_{i,k}, L, \mu, \tilde\mu, \tilde L, \Gamma` (see module).

    Parameters
    ----------
    model : EarlyExitModel
        Read through ``forward(x, exit)``, ``exit_parameter_names`` and ``loss``; a copy in
        ``dtype`` and eval mode is used, the model itself is not changed.
    node_data : sequence of Dataset
        Node :math:`i`'s samples.
    q : array (N, K)
        Participation: defines :math:`E_k` and :math:`M_k`.
    lam, lt : array (K,), optional
        Serving shares and training weights (for :math:`\mu`, :math:`\tilde\mu`,
        :math:`\tilde L`, :math:`\Gamma`). ``lt`` defaults to ``lam``.
    batch_size : int or None
        Minibatch size of the noise (with replacement); ``None`` = full batch.
    weight_decay : float
        :math:`\rho`, applied on :math:`P_k` as in the trainer.
    loss_fn : callable, optional
        Per-sample loss ``(output, y) -> (batch,)``; default ``model.loss(..., "none")``.
    n_points : int
        Points for :math:`\sigma^2` and :math:`G`: :math:`w_0` and ``n_points - 1`` random
        points at distance ``radius`` (default :math:`\max(1, \lVert w_0\rVert)/2`).
    power_iters, power_tol : int, float
        Power-iteration budget and relative tolerance.
    solve_steps : int
        Gradient-descent steps of the local solves for :math:`\Gamma` (0 skips them).
    generator : torch.Generator, optional
        Random points and power-iteration starts (default: seeded with 0).

    Examples
    --------
    >>> from cistheory.train.models import NestedLinear
    >>> m = NestedLinear(2, (1, 2), n_classes=None, bias=False)
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]]); y = torch.zeros(2)
    >>> est = estimate_constants(m, [Dataset(x, y)], [[0.5, 0.5]], lam=[0.5, 0.5],
    ...                          batch_size=None, weight_decay=0.1)
    >>> round(est.L, 6), round(est.mu, 6)   # H_1 = diag(0.6, 0), H_2 = diag(0.6, 0.6)
    (0.6, 0.3)
    """
    frac, mk, lam_w, lt_w = _check_inputs(
        model, node_data, q, lam, lt, batch_size, weight_decay, n_points
    )
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    work = copy.deepcopy(model).to(dtype).eval()
    flat = _Flat(work, node_data, frac, _default_loss(work, loss_fn), weight_decay, dtype, chunk)
    probe = _Probe(flat, gen, power_iters, power_tol)
    points = probe.points(int(n_points), radius)
    sigma2, g_bound = _noise_and_gradients(flat, points, batch_size)
    l_exit, mu_exit = _exit_curvatures(probe, mk)
    mu = mu_t = l_t = None
    if lam_w is not None:
        _, mu = probe.extreme(lam_w, probe.support_mask(lam_w))
    if lt_w is not None:
        l_t, mu_t = probe.extreme(lt_w, probe.support_mask(lt_w))
    het = _Heterogeneity()
    if lt_w is not None and solve_steps > 0:
        assert l_t is not None
        het = _heterogeneity(probe, lt_w, l_t, mu_t, l_exit, mu_exit, int(solve_steps))
    return EstimatedConstants(
        L=max(l_exit),
        L_exit=tuple(l_exit),
        mu_exit=tuple(mu_exit),
        mu=mu,
        mu_t=mu_t,
        L_t=l_t,
        sigma2=sigma2,
        G=g_bound,
        Gamma=het.gamma,
        Gamma_upper=het.gamma_upper,
        gap0=het.gap0,
        gap0_upper=het.gap0_upper,
        batch_size=None if batch_size is None else int(batch_size),
        lam=None if lam_w is None else tuple(float(x) for x in lam_w),
        lt=None if lt_w is None else tuple(float(x) for x in lt_w),
        power_iterations=probe.iters_used,
    )


def _check_inputs(
    model: EarlyExitModel,
    node_data: Sequence[Dataset],
    q: ArrayLike,
    lam: ArrayLike | None,
    lt: ArrayLike | None,
    batch_size: int | None,
    weight_decay: float,
    n_points: int,
) -> tuple[FloatArray, FloatArray, FloatArray | None, FloatArray | None]:
    """The checked inputs of :func:`estimate_constants`: the data fractions :math:`m_i/M_k`
    (0 off :math:`E_k`), :math:`M_k`, and the weights ``lam`` and ``lt`` (``lt`` defaults to
    ``lam``), each with positive weight only on exits with a training population."""
    k_ex = model.n_exits
    qa = check_q(q, shape=(len(node_data), k_ex))
    lam_w = _weights(lam, "lam", k_ex)
    lt_w = _weights(lt, "lt", k_ex) if lt is not None else lam_w
    if batch_size is not None and (int(batch_size) < 1):
        raise CISInputError("batch_size", batch_size, "must be >= 1 or None")
    if not weight_decay >= 0:
        raise CISInputError("weight_decay", weight_decay, "must be >= 0")
    if int(n_points) < 1:
        raise CISInputError("n_points", n_points, "must be >= 1")
    m = np.array([len(d) for d in node_data], dtype=np.float64)
    if (m < 1).any():
        i = int(np.argmin(m))
        raise CISInputError(f"node_data[{i}]", 0, "every node needs at least one sample")
    pop = qa > 0
    mk = pop.T.astype(np.float64) @ m
    frac = np.where(pop, m[:, None] / np.where(mk > 0, mk, 1.0)[None, :], 0.0)
    for name, w in (("lam", lam_w), ("lt", lt_w)):
        if w is not None and ((w > 0) & (mk == 0)).any():
            k = int(np.argmax((w > 0) & (mk == 0)))
            raise CISInputError(f"{name}[{k + 1}]", float(w[k]), "exit has no training population")
    return frac, mk, lam_w, lt_w


class _Probe:
    r"""Random directions (from one generator, in a fixed order) and the extreme eigenvalues.

    Every estimate draws its random vectors from ``gen`` in the order
    :func:`estimate_constants` calls them: the points, then two starts per exit, then
    :math:`F_\lambda` and :math:`F_{\tilde\lambda}`.
    """

    def __init__(
        self, flat: _Flat, gen: torch.Generator, power_iters: int, power_tol: float
    ) -> None:
        self.flat = flat
        self.gen = gen
        self.power_iters = power_iters
        self.power_tol = power_tol
        self.p_dim = flat.theta0.numel()
        self.iters_used = 0

    def rand_dir(self, mask: Tensor | None = None) -> Tensor:
        v = torch.randn(self.p_dim, generator=self.gen, dtype=torch.float64).to(
            self.flat.theta0.dtype
        )
        if mask is not None:
            v = v * mask
        return v

    def points(self, n_points: int, radius: float | None) -> list[Tensor]:
        """:math:`w_0` and ``n_points - 1`` random points at distance ``radius`` from it."""
        theta0 = self.flat.theta0
        rad = float(radius) if radius is not None else 0.5 * max(1.0, float(theta0.norm()))
        points = [theta0]
        for _ in range(n_points - 1):
            d = self.rand_dir()
            points.append(theta0 + rad * d / d.norm())
        return points

    def extreme(self, weights: FloatArray, mask: Tensor) -> tuple[float, float | None]:
        r"""Largest and smallest (``None`` if not positive) Hessian eigenvalue at :math:`w_0`
        of :math:`\sum_k w_k F_k` on ``mask``; the smallest by the shift
        :math:`c = (1 + \text{margin}) L`."""
        flat, theta0 = self.flat, self.flat.theta0
        top, it1 = power_iteration(
            lambda v: flat.hvp_F(theta0, weights, v) * mask,
            self.rand_dir(mask),
            iters=self.power_iters,
            tol=self.power_tol,
        )
        top = abs(top)
        c = (1 + _SHIFT_MARGIN) * top
        low_shift, it2 = power_iteration(
            lambda v: c * v - flat.hvp_F(theta0, weights, v) * mask,
            self.rand_dir(mask),
            iters=self.power_iters,
            tol=self.power_tol,
        )
        self.iters_used = max(self.iters_used, it1, it2)
        low = c - low_shift
        return top, (low if low > 0 else None)

    def support_mask(self, w: FloatArray) -> Tensor:
        """Indicator of :math:`\bigcup_{k: w_k > 0} P_k`, in the working dtype."""
        mask = torch.zeros(self.p_dim, dtype=torch.bool)
        for k in np.flatnonzero(w > 0):
            mask |= self.flat.masks[int(k)]
        return mask.to(self.flat.theta0.dtype)


def _noise_and_gradients(
    flat: _Flat, points: Sequence[Tensor], batch_size: int | None
) -> tuple[FloatArray, FloatArray]:
    r""":math:`\sigma^2_{i,k}` and :math:`G_{i,k}` (weight decay included), maxima over points."""
    n, k_ex = len(flat.data), flat.k
    sigma2 = np.zeros((n, k_ex))
    g_bound = np.zeros((n, k_ex))
    for th in points:
        for i in range(n):
            for k in range(1, k_ex + 1):
                mean, var = flat.sample_moments(th, i, k)
                full = mean + flat.rho * th * flat.masks[k - 1]
                g_bound[i, k - 1] = max(g_bound[i, k - 1], float(full.norm()))
                if batch_size is not None and flat.data[i][0].shape[0] > 1:
                    sigma2[i, k - 1] = max(sigma2[i, k - 1], var / int(batch_size))
    return sigma2, g_bound


def _exit_curvatures(probe: _Probe, mk: FloatArray) -> tuple[list[float], list[float | None]]:
    r""":math:`L_k` and :math:`\mu_k` of each :math:`F_k` on :math:`P_k` (0 and ``None`` for an
    exit without training population)."""
    k_ex = probe.flat.k
    l_exit: list[float] = []
    mu_exit: list[float | None] = []
    for k in range(k_ex):
        e = np.zeros(k_ex)
        e[k] = 1.0
        if mk[k] == 0:
            l_exit.append(0.0)
            mu_exit.append(None)
            continue
        top, low = probe.extreme(e, probe.flat.masks[k])
        l_exit.append(top)
        mu_exit.append(low)
    return l_exit, mu_exit


@dataclass(frozen=True)
class _Heterogeneity:
    r""":math:`\Gamma`, the initial gap, and their PL-certified upper bounds (``None``: unknown)."""

    gamma: float | None = None
    gamma_upper: float | None = None
    gap0: float | None = None
    gap0_upper: float | None = None


def _descend(
    flat: _Flat, weights: FloatArray, step_l: float, mask: Tensor, steps: int
) -> tuple[float, float]:
    r"""``steps`` gradient steps of size :math:`1/L` on :math:`\sum_k w_k F_k` from :math:`w_0`
    (on ``mask``); the final value and gradient norm."""
    th = flat.theta0.clone()
    for _ in range(steps):
        th = th - (1.0 / step_l) * flat.grad_F(th, weights) * mask
    with torch.no_grad():
        val = float(flat.F(th, weights))
    gn = float((flat.grad_F(th, weights) * mask).norm())
    return val, gn


def _heterogeneity(
    probe: _Probe,
    lt_w: FloatArray,
    l_t: float,
    mu_t: float | None,
    l_exit: Sequence[float],
    mu_exit: Sequence[float | None],
    steps: int,
) -> _Heterogeneity:
    r""":math:`\Gamma = F_{\tilde\lambda}(\tilde w^*) - \sum_k \tilde\lambda_k \inf F_k` and
    :math:`F_{\tilde\lambda}(w_0) - F_{\tilde\lambda}^*` from local solves; the certified
    bounds use :math:`\inf F \ge F(\hat w) - \lVert\nabla F(\hat w)\rVert^2/(2\mu)`."""
    flat = probe.flat
    k_ex = flat.k
    f_t, gn_t = _descend(flat, lt_w, l_t, probe.support_mask(lt_w), steps)
    with torch.no_grad():
        f_t0 = float(flat.F(flat.theta0, lt_w))
    inf_sum = 0.0
    inf_sum_low: float | None = 0.0
    for k in (int(j) for j in np.flatnonzero(lt_w > 0)):
        e = np.zeros(k_ex)
        e[k] = 1.0
        fk, gnk = _descend(flat, e, l_exit[k], flat.masks[k].to(flat.theta0.dtype), steps)
        inf_sum += lt_w[k] * fk
        mu_k = mu_exit[k]
        if inf_sum_low is not None and mu_k is not None:
            inf_sum_low += lt_w[k] * (fk - gnk**2 / (2 * mu_k))
        else:
            inf_sum_low = None
    gamma_up = gap_up = None
    if mu_t is not None:
        f_t_low = f_t - gn_t**2 / (2 * mu_t)
        gap_up = f_t0 - f_t_low
        if inf_sum_low is not None:
            gamma_up = f_t - inf_sum_low
    return _Heterogeneity(f_t - inf_sum, gamma_up, f_t0 - f_t, gap_up)


@dataclass(frozen=True)
class DesignEstimate:
    r"""The second-generation constants of one design, estimated for a network
    (:func:`estimate_design_constants`; ``docs/theory.md`` Section 4.20).

    Attributes
    ----------
    base : EstimatedConstants
        :math:`L, \mu, \mu_t, L_t, \sigma^2, G, \Gamma` as :func:`estimate_constants` gives them.
    L_pair : ndarray (N, K)
        Largest Hessian eigenvalue of each trained :math:`f_{i,k}` at :math:`\hat w` (0 off the
        support).
    Ls, Ls_pair : float
        Lemma ES's :math:`L_s` and :math:`L_s^{\mathrm{pair}}` from ``L_pair``.
    Vs, Vn : float
        Sampling and noise parts of the variance at :math:`\hat w` (Lemma 2 without
        cancellation), the noise at the trainer's batch size.
    zeta2 : float
        :math:`\zeta^2 = \sum_k\tilde\lambda_k\|\nabla F_k(\hat w)\|^2`.
    g_lam_norm : float or None
        :math:`\|\nabla F_\lambda(\hat w)\|` (``None`` without ``lam``).
    grad_norm : float
        :math:`\|\nabla F_{\tilde\lambda}(\hat w)\|`: how far the solve is from stationary.
    opt_distance : float or None
        :math:`\delta = \|\nabla F_{\tilde\lambda}(\hat w)\|/\mu_t \ge \|\hat w - w^*\|` when
        :math:`F_{\tilde\lambda}` is :math:`\mu_t`-strongly convex (``None`` without
        :math:`\mu_t`).
    Vs_interval, zeta2_interval, g_lam_interval : (float, float) or None
        What :math:`\delta` leaves of :math:`V_s, \zeta_*^2, \|g_\lambda\|` at :math:`w^*`
        (Section 4.20): certified for convex pair losses (locally quadratic ones), local
        estimates for a network.
    """

    base: EstimatedConstants
    L_pair: FloatArray
    Ls: float
    Ls_pair: float
    Vs: float
    Vn: float
    zeta2: float
    g_lam_norm: float | None
    grad_norm: float
    opt_distance: float | None
    Vs_interval: tuple[float, float] | None
    zeta2_interval: tuple[float, float] | None
    g_lam_interval: tuple[float, float] | None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the base constants under ``"base"``)."""
        out: dict[str, Any] = {"base": self.base.as_dict(),
                               "L_pair": np.asarray(self.L_pair, dtype=np.float64).tolist()}
        for k in ("Ls", "Ls_pair", "Vs", "Vn", "zeta2", "g_lam_norm", "grad_norm",
                  "opt_distance"):
            out[k] = _opt_float(getattr(self, k))
        for k in ("Vs_interval", "zeta2_interval", "g_lam_interval"):
            v = getattr(self, k)
            out[k] = None if v is None else [float(v[0]), float(v[1])]
        return out


def _pair_smoothness(flat: _Flat, theta: Tensor, support: BoolArray, probe: _Probe
                     ) -> FloatArray:
    """Largest Hessian eigenvalue of each f_{i,k} on P_k at ``theta`` (power iteration)."""
    out = np.zeros(support.shape)
    for i, k in zip(*np.nonzero(support), strict=True):
        mask = flat.masks[int(k)].to(theta.dtype)

        def f_ik(th: Tensor, i: int = int(i), k: int = int(k)) -> Tensor:
            return flat.f(th, i, k + 1)

        def hvp(v: Tensor, f: Callable[[Tensor], Tensor] = f_ik, m: Tensor = mask) -> Tensor:
            res: Tensor = grad(lambda th: grad(f)(th) @ v)(theta)
            return res * m

        top, its = power_iteration(hvp, probe.rand_dir(mask), iters=probe.power_iters,
                                   tol=probe.power_tol)
        probe.iters_used = max(probe.iters_used, its)
        out[i, k] = max(top, 0.0)
    return out


def _interval(center: float, half: float) -> tuple[float, float]:
    return max(center - half, 0.0), center + half


# long: the estimates of Section 4.20 one after another, each a few lines
def estimate_design_constants(
    model: EarlyExitModel,
    node_data: Sequence[Dataset],
    q: ArrayLike,
    *,
    lt: ArrayLike,
    lam: ArrayLike | None = None,
    batch_size: int | None = 32,
    weight_decay: float = 0.0,
    loss_fn: LossFn | None = None,
    power_iters: int = 100,
    power_tol: float = 1e-6,
    solve_steps: int = 200,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    chunk: int = 512,
    per_round: int | None = None,
) -> DesignEstimate:
    r"""Estimate the constants of the second-generation bounds for the design ``(lt, q)``.

    :math:`\hat w` is ``solve_steps`` gradient steps of size :math:`1/L_t` on
    :math:`F_{\tilde\lambda}` from the model's parameters; at :math:`\hat w` the pair
    smoothness :math:`L_{i,k}` (power iteration on Hessian-vector products), Lemma ES's
    :math:`L_s`, the variance parts :math:`V_s, V_n`, :math:`\zeta^2` and
    :math:`\|g_\lambda\|`, with the uncertainty the solve leaves (see :class:`DesignEstimate`).
    The base constants come from :func:`estimate_constants` (same arguments). With
    ``per_round`` :math:`= n` (the trainer's ``nodes_per_round``; ``q`` the inclusion table
    of :func:`cistheory.fixed_count`), :math:`L_s`, :math:`L_s^{\mathrm{pair}}` and
    :math:`V_s` are those of that draw (Lemma ES-f, ``docs/theory.md`` Section 4.11f); the
    constants of independent picks from the same ``q`` are not valid for it.

    Examples
    --------
    >>> from cistheory.train.models import NestedLinear
    >>> m = NestedLinear(2, (1, 2), n_classes=None, bias=False)
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]]); y = torch.tensor([1.0, -1.0])
    >>> est = estimate_design_constants(m, [Dataset(x, y)], [[0.5, 0.5]], lt=[0.5, 0.5],
    ...                                 batch_size=None, weight_decay=0.1)
    >>> round(est.Ls, 6), est.Vn    # both Hessians 0.6 I; M = 0.6 I - 0.3 (1 1)(1 1)^T
    (0.6, 0.0)
    """
    base = estimate_constants(model, node_data, q, lam=lam, lt=lt, batch_size=batch_size,
                              weight_decay=weight_decay, loss_fn=loss_fn, n_points=1,
                              power_iters=power_iters, power_tol=power_tol, solve_steps=0,
                              generator=generator, dtype=dtype, chunk=chunk)
    frac, _mk, lam_w, lt_w = _check_inputs(model, node_data, q, lam, lt, batch_size,
                                           weight_decay, 1)
    assert lt_w is not None and base.L_t is not None
    from .. import bounds as bd

    qa = check_q(q)
    gen = generator if generator is not None else torch.Generator().manual_seed(1)
    work = copy.deepcopy(model).to(dtype).eval()
    flat = _Flat(work, node_data, frac, _default_loss(work, loss_fn), weight_decay, dtype, chunk)
    probe = _Probe(flat, gen, power_iters, power_tol)
    theta = flat.theta0.clone()
    supp = probe.support_mask(lt_w)
    for _ in range(int(solve_steps)):
        theta = theta - (1.0 / base.L_t) * flat.grad_F(theta, lt_w) * supp
    support = np.asarray(qa > 0)
    L_pair = _pair_smoothness(flat, theta, support, probe)
    bet = frac * lt_w[None, :]
    n, k_ex = qa.shape
    grads = np.zeros((n, k_ex, theta.numel()))
    s2 = np.zeros((n, k_ex))
    for i, k in zip(*np.nonzero(support), strict=True):
        mean, var = flat.sample_moments(theta, int(i), int(k) + 1)
        full = mean + flat.rho * theta * flat.masks[int(k)]
        grads[i, k] = full.detach().double().numpy()
        if batch_size is not None and flat.data[int(i)][0].shape[0] > 1:
            s2[i, k] = var / int(batch_size)
    vs, vn = bd.variance_parts(qa, bet, grads, s2, per_round=per_round)
    Ls = bd.expected_smoothness(qa, bet, L_pair, per_round=per_round)
    grad_exit = np.einsum("ik,ikd->kd", frac, grads)
    zeta2 = bd.heterogeneity_at_optimum(lt_w, grad_exit)
    grad_norm = float(np.linalg.norm(np.einsum("ik,ikd->d", bet, grads)))
    delta = None if base.mu_t is None else grad_norm / base.mu_t
    g_lam = None if lam_w is None else float(np.linalg.norm(lam_w @ grad_exit))
    vs_int = z_int = g_int = None
    if delta is not None:
        half = np.sqrt(Ls * grad_norm * delta)
        vs_int = (max(np.sqrt(vs) - half, 0.0) ** 2, (np.sqrt(vs) + half) ** 2)
        norms = np.linalg.norm(grad_exit, axis=1)
        lk = np.asarray(base.L_exit)
        z_int = (float(lt_w @ np.maximum(norms - lk * delta, 0.0) ** 2),
                 float(lt_w @ (norms + lk * delta) ** 2))
        if g_lam is not None:
            g_int = _interval(g_lam, base.L * delta)
    ls_pair = bd.expected_smoothness_pairwise(qa, bet, L_pair, per_round=per_round)
    return DesignEstimate(
        base=base, L_pair=L_pair, Ls=Ls, Ls_pair=ls_pair,
        Vs=vs, Vn=vn, zeta2=zeta2, g_lam_norm=g_lam, grad_norm=grad_norm, opt_distance=delta,
        Vs_interval=None if vs_int is None else (float(vs_int[0]), float(vs_int[1])),
        zeta2_interval=z_int, g_lam_interval=g_int,
    )


def pair_smoothness(
    model: EarlyExitModel,
    node_data: Sequence[Dataset],
    pairs: ArrayLike,
    *,
    weight_decay: float = 0.0,
    loss_fn: LossFn | None = None,
    power_iters: int = 100,
    power_tol: float = 1e-6,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    chunk: int = 512,
) -> FloatArray:
    r"""Largest Hessian eigenvalue :math:`L_{i,k}` of each pair loss :math:`f_{i,k}` (on
    :math:`P_k`) at the model's parameters, by power iteration on Hessian-vector products;
    0 off ``pairs`` (an (N, K) boolean table). The part of :func:`estimate_design_constants`
    that Lemma ES needs, for when nothing else is wanted.

    Examples
    --------
    >>> from cistheory.train.models import NestedLinear
    >>> m = NestedLinear(2, (1, 2), n_classes=None, bias=False)
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]]); y = torch.tensor([1.0, -1.0])
    >>> pair_smoothness(m, [Dataset(x, y)], [[True, True]], weight_decay=0.1).round(6).tolist()
    [[0.6, 0.6]]
    """
    support = _pairs(pairs, len(node_data), model.n_exits)
    q = np.where(support, 1.0 / np.maximum(support.sum(axis=1, keepdims=True), 1), 0.0)
    frac, _mk, _lam, _lt = _check_inputs(model, node_data, q, None, None, None, weight_decay, 1)
    gen = generator if generator is not None else torch.Generator().manual_seed(1)
    work = copy.deepcopy(model).to(dtype).eval()
    flat = _Flat(work, node_data, frac, _default_loss(work, loss_fn), weight_decay, dtype, chunk)
    probe = _Probe(flat, gen, power_iters, power_tol)
    return _pair_smoothness(flat, flat.theta0, support, probe)
