"""Estimated constants against closed forms on nested least squares (NestedLinear regression)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cistheory import CISInputError  # noqa: E402
from cistheory.bounds import CISConstants  # noqa: E402
from cistheory.train.constants import (  # noqa: E402
    EstimatedConstants,
    estimate_constants,
    gradient_noise,
    gradient_norms,
    power_iteration,
)
from cistheory.train.data import Dataset  # noqa: E402
from cistheory.train.models import NestedLinear  # noqa: E402

DIMS = (2, 3, 4)
RHO = 0.1
BATCH = 4
Q = np.array([[0.2, 0.3, 0.5], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
LAM = np.array([0.6, 0.3, 0.1])
LT = np.array([0.4, 0.35, 0.25])


def _setup() -> tuple[NestedLinear, list[Dataset]]:
    g = torch.Generator().manual_seed(3)
    model = NestedLinear(4, DIMS, n_classes=None, bias=True, generator=g)
    data = []
    for i, m in enumerate((30, 20, 12)):
        x = torch.randn(m, 4, generator=g, dtype=torch.float64) + 0.5 * i
        y = x @ torch.tensor([1.0, -1.0, 0.5, 2.0], dtype=torch.float64) + 0.3 * torch.randn(
            m, generator=g, dtype=torch.float64
        )
        data.append(Dataset(x.float(), y.float()))
    return model, data


class _Closed:
    """Closed forms in the coordinates (w_1..w_4, b_1, b_2, b_3)."""

    def __init__(self, model: NestedLinear, data: list[Dataset]) -> None:
        self.w = np.concatenate([b.weight.detach().double().numpy().ravel() for b in model.blocks])
        self.bias = np.array([float(h.bias.detach()) for h in model.heads])
        self.theta = np.concatenate([self.w, self.bias])
        self.n, self.k, self.p = len(data), len(DIMS), 4 + len(DIMS)
        self.x = [d.x.double().numpy() for d in data]
        self.y = [d.y.double().numpy() for d in data]
        m = np.array([len(d) for d in data], dtype=float)
        pop = Q > 0
        mk = pop.T @ m
        self.frac = np.where(pop, m[:, None] / mk[None, :], 0.0)

    def coords(self, k: int) -> np.ndarray:
        return np.concatenate([np.arange(DIMS[k - 1]), [4 + k - 1]])

    def z(self, i: int, k: int) -> np.ndarray:
        x = self.x[i][:, : DIMS[k - 1]]
        return np.hstack([x, np.ones((x.shape[0], 1))])

    def hess(self, i: int, k: int) -> np.ndarray:
        h = np.zeros((self.p, self.p))
        c = self.coords(k)
        z = self.z(i, k)
        h[np.ix_(c, c)] = z.T @ z / z.shape[0] + RHO * np.eye(c.size)
        return h

    def lin(self, i: int, k: int) -> np.ndarray:
        b = np.zeros(self.p)
        z = self.z(i, k)
        b[self.coords(k)] = z.T @ self.y[i] / z.shape[0]
        return b

    def const(self, i: int) -> float:
        return float(self.y[i] @ self.y[i] / (2 * self.y[i].size))

    def quad(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        h = sum(weights[k] * self.frac[i, k] * self.hess(i, k + 1)
                for i in range(self.n) for k in range(self.k))
        b = sum(weights[k] * self.frac[i, k] * self.lin(i, k + 1)
                for i in range(self.n) for k in range(self.k))
        c = sum(weights[k] * self.frac[i, k] * self.const(i)
                for i in range(self.n) for k in range(self.k))
        return np.asarray(h), np.asarray(b), float(c)

    def minimum(self, weights: np.ndarray, support: np.ndarray) -> float:
        h, b, c = self.quad(weights)
        s = np.ix_(support, support)
        sol = np.linalg.solve(h[s], b[support])
        return c - 0.5 * float(b[support] @ sol)

    def support(self, weights: np.ndarray) -> np.ndarray:
        return np.unique(np.concatenate(
            [self.coords(k + 1) for k in range(self.k) if weights[k] > 0]
        ))

    def sample_stats(self, i: int, k: int) -> tuple[float, float]:
        """(population variance of per-sample gradients, full gradient norm incl. ridge)."""
        z = self.z(i, k)
        wk = np.concatenate([self.w[: DIMS[k - 1]], [self.bias[k - 1]]])
        r = z @ wk - self.y[i]
        g = r[:, None] * z
        mean = g.mean(0)
        var = float(((g - mean) ** 2).sum(1).mean())
        return var, float(np.linalg.norm(mean + RHO * wk))

    def grad_norm(self, i: int, k: int) -> float:
        """Full gradient norm of the loss alone (no ridge) on P_k."""
        z = self.z(i, k)
        wk = np.concatenate([self.w[: DIMS[k - 1]], [self.bias[k - 1]]])
        return float(np.linalg.norm(((z @ wk - self.y[i])[:, None] * z).mean(0)))


@pytest.fixture(scope="module")
def case() -> tuple[EstimatedConstants, _Closed]:
    model, data = _setup()
    est = estimate_constants(
        model, data, Q, lam=LAM, lt=LT, batch_size=BATCH, weight_decay=RHO, n_points=1,
        power_iters=3000, power_tol=1e-13, solve_steps=300,
    )
    return est, _Closed(model, data)


# Power iteration stops at a relative change of 1e-13 per step; with the eigen-gaps of this
# problem the Rayleigh quotients are then within ~1e-8 of the eigenvalues (float64 HVPs).
EIG_RTOL = 1e-6


def test_smoothness_and_strong_convexity(case: tuple[EstimatedConstants, _Closed]) -> None:
    est, cf = case
    for k in range(3):
        e = np.eye(3)[k]
        h, _, _ = cf.quad(e)
        c = cf.coords(k + 1)
        eig = np.linalg.eigvalsh(h[np.ix_(c, c)])
        assert est.L_exit[k] == pytest.approx(eig.max(), rel=EIG_RTOL)
        assert est.mu_exit[k] == pytest.approx(eig.min(), rel=EIG_RTOL)
    assert max(est.L_exit) == est.L
    for w, mu_est in ((LAM, est.mu), (LT, est.mu_t)):
        h, _, _ = cf.quad(w)
        s = cf.support(w)
        eig = np.linalg.eigvalsh(h[np.ix_(s, s)])
        assert mu_est == pytest.approx(eig.min(), rel=EIG_RTOL)
    h, _, _ = cf.quad(LT)
    assert est.L_t == pytest.approx(np.linalg.eigvalsh(h).max(), rel=EIG_RTOL)


def test_noise_and_gradient_bound(case: tuple[EstimatedConstants, _Closed]) -> None:
    est, cf = case
    for i in range(3):
        for k in range(1, 4):
            var, gnorm = cf.sample_stats(i, k)
            # per-sample gradients in float64 from the float32 model values: agreement to
            # float64 rounding of sums of ~30 terms
            assert est.sigma2[i, k - 1] == pytest.approx(var / BATCH, rel=1e-9)
            assert est.G[i, k - 1] == pytest.approx(gnorm, rel=1e-9)


def test_gamma_and_gap(case: tuple[EstimatedConstants, _Closed]) -> None:
    est, cf = case
    s_t = cf.support(LT)
    f_t_star = cf.minimum(LT, s_t)
    inf_k = [cf.minimum(np.eye(3)[k], cf.coords(k + 1)) for k in range(3)]
    gamma = f_t_star - float(LT @ np.array(inf_k))
    h, b, c = cf.quad(LT)
    f0 = 0.5 * cf.theta @ h @ cf.theta - b @ cf.theta + c
    gap0 = f0 - f_t_star
    assert est.Gamma is not None and est.gap0 is not None
    assert est.Gamma_upper is not None and est.gap0_upper is not None
    # certified bounds are above the exact values (up to float64 rounding of the objective)
    assert est.Gamma_upper >= gamma - 1e-10
    assert est.gap0_upper >= gap0 - 1e-10
    # 300 steps of gradient descent with step 1/L on F_lt (L_t/mu_t < 17) and on each F_k
    # (L_k/mu_k < 4) shrink the initial gap by (1 - 1/17)^300 < 1e-7: the point estimates
    # and the certificates are then within 1e-6 relative
    assert est.Gamma == pytest.approx(gamma, rel=1e-6)
    assert est.gap0 == pytest.approx(gap0, rel=1e-6)
    assert est.Gamma_upper == pytest.approx(gamma, rel=1e-6)


def test_to_cis_constants(case: tuple[EstimatedConstants, _Closed]) -> None:
    est, _ = case
    cc = est.to_cis_constants(T=100, eta=0.5 / est.L_t)  # type: ignore[operator]
    assert isinstance(cc, CISConstants)
    np.testing.assert_allclose(np.asarray(cc.sigma) ** 2, est.sigma2, rtol=1e-12)
    assert cc.Gamma == est.Gamma_upper and cc.gap0 == est.gap0_upper
    assert cc.mu == est.mu and cc.mu_t == est.mu_t and cc.L_t == est.L_t


def test_constants_feed_the_full_bound(case: tuple[EstimatedConstants, _Closed]) -> None:
    from cistheory import CIS, explicit
    from cistheory.bounds import cis_bound

    est, _ = case
    # a chain leaf -> middle -> root serving (0.6, 0.3, 0.1) = LAM, with the test's data sizes
    cis = CIS.build(parent=[-1, 0, 1], capacity=[3, 2, 1], arrival=[0, 0, 1],
                    forward=[0, 0.1, 0.4], data=[30, 20, 12])
    np.testing.assert_allclose(cis.lam, LAM, rtol=0, atol=1e-15)
    part = explicit(cis, Q)
    assert est.L_t is not None and est.mu_t is not None
    terms = cis_bound(cis, part, LT, est.to_cis_constants(T=50, eta=0.5 / est.L_t))
    assert terms.bias > 0 and terms.optimisation > 0
    assert terms.total <= terms.total_split


def test_more_points_only_raise_bounds() -> None:
    model, data = _setup()
    one = estimate_constants(model, data, Q, batch_size=BATCH, weight_decay=RHO, n_points=1,
                             solve_steps=0, power_iters=50)
    three = estimate_constants(model, data, Q, batch_size=BATCH, weight_decay=RHO, n_points=3,
                               solve_steps=0, power_iters=50)
    assert (three.G >= one.G).all() and (three.sigma2 >= one.sigma2).all()
    assert one.mu is None and one.Gamma is None  # no lam/lt given
    with pytest.raises(CISInputError, match="mu"):
        one.to_cis_constants(T=10, eta=0.1)


def test_model_unchanged_and_full_batch_has_no_noise() -> None:
    model, data = _setup()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    est = estimate_constants(model, data, Q, batch_size=None, n_points=2, solve_steps=0,
                             power_iters=20)
    assert (est.sigma2 == 0).all()
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]) and p.dtype == torch.float32


def test_power_iteration_on_known_matrix() -> None:
    a = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    lam, _ = power_iteration(lambda v: a @ v, torch.tensor([1.0, 0.0], dtype=torch.float64),
                             iters=500, tol=1e-15)
    assert lam == pytest.approx(3.0, rel=1e-12)  # eigenvalues 3 and 1


def test_bad_inputs() -> None:
    model, data = _setup()
    with pytest.raises(CISInputError):
        estimate_constants(model, data, Q[:2])
    with pytest.raises(CISInputError):
        estimate_constants(model, data, Q, lam=[0.5, 0.5])
    bad_q = Q.copy()
    bad_q[:, 2] = 0
    with pytest.raises(CISInputError, match="population"):
        estimate_constants(model, data, bad_q, lam=LAM)


def test_gradient_noise_and_norms_at_the_parameters() -> None:
    """The public estimators at w_0: closed forms in float64; the float32 model agrees."""
    import copy
    import json

    model, data = _setup()
    cf = _Closed(model, data)
    m64 = copy.deepcopy(model).double()
    d64 = [Dataset(d.x.double(), d.y.double()) for d in data]
    s2 = gradient_noise(m64, d64, batch_size=BATCH)
    g = gradient_norms(m64, d64)
    for i in range(3):
        for k in range(1, 4):
            var, _ = cf.sample_stats(i, k)
            assert s2[i, k - 1] == pytest.approx(var / BATCH, rel=1e-9)
            assert g[i, k - 1] == pytest.approx(cf.grad_norm(i, k), rel=1e-9)
    # estimate_constants takes the same sigma^2 at w_0 (one point), summed in one pass
    est = estimate_constants(model, data, Q, batch_size=BATCH, n_points=1, solve_steps=0,
                             power_iters=5)
    np.testing.assert_allclose(est.sigma2, s2, rtol=1e-9)
    # in the model's own float32: per-sample gradients to float32 rounding
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    np.testing.assert_allclose(gradient_noise(model, data, batch_size=BATCH), s2, rtol=1e-4)
    np.testing.assert_allclose(gradient_norms(model, data), g, rtol=1e-4)
    assert model.training and all(p.grad is None for p in model.parameters())
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n])
    # only the pairs asked for
    pairs = Q > 0
    np.testing.assert_array_equal(gradient_noise(m64, d64, batch_size=BATCH, pairs=pairs),
                                  np.where(pairs, s2, 0.0))
    np.testing.assert_array_equal(gradient_norms(m64, d64, pairs=pairs), np.where(pairs, g, 0.0))
    with pytest.raises(CISInputError, match="pairs"):
        gradient_noise(m64, d64, batch_size=BATCH, pairs=pairs[:2])
    with pytest.raises(CISInputError, match="batch_size"):
        gradient_noise(m64, d64, batch_size=0)
    json.dumps(est.as_dict())


def test_as_dict_is_json_ready(case: tuple[EstimatedConstants, _Closed]) -> None:
    import json

    est, _ = case
    doc = est.as_dict()
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc  # plain types only
    assert doc["sigma2"] == est.sigma2.tolist() and doc["G"] == est.G.tolist()
    assert doc["Gamma_upper"] == est.Gamma_upper and doc["mu_exit"] == list(est.mu_exit)
    assert doc["lt"] == list(LT) and doc["batch_size"] == BATCH


def test_design_constants_of_nested_least_squares_are_exact() -> None:
    """On a quadratic (NestedLinear regression) the estimates at the solve's end point equal
    the exact constants: pair Hessians in closed form, V_s, V_n, zeta^2 at the exact w*; the
    intervals contain them."""
    from cistheory import bounds as bd
    from cistheory.train.constants import estimate_design_constants

    model, data = _setup()
    cl = _Closed(model, data)
    est = estimate_design_constants(model, data, Q, lt=LT, lam=LAM, batch_size=BATCH,
                                    weight_decay=RHO, solve_steps=400, power_iters=200,
                                    power_tol=1e-10)
    L_exact = np.array([[np.linalg.eigvalsh(cl.hess(i, k))[-1] if Q[i, k - 1] > 0 else 0.0
                         for k in range(1, cl.k + 1)] for i in range(cl.n)])
    assert est.L_pair == pytest.approx(L_exact, rel=1e-6)
    beta = cl.frac * LT[None, :]
    assert est.Ls == pytest.approx(bd.expected_smoothness(Q, beta, L_exact), rel=1e-6)
    assert est.opt_distance is not None and est.opt_distance < 1e-3
    # exact w* of F_lt and the pair gradients there (minibatch noise: the population
    # variance of the per-sample gradients over the batch; noise is checked elsewhere)
    h, b, _ = cl.quad(LT)
    sup = cl.support(LT)
    w_star = np.zeros(cl.p)
    w_star[sup] = np.linalg.solve(h[np.ix_(sup, sup)], b[sup])
    grads = np.zeros((cl.n, cl.k, cl.p))
    for i, k in zip(*np.nonzero(Q > 0), strict=True):
        grads[i, k] = cl.hess(i, k + 1) @ w_star - cl.lin(i, k + 1)
    vs_exact, _ = bd.variance_parts(Q, beta, grads, np.zeros(Q.shape))
    lo, hi = est.Vs_interval  # type: ignore[misc]
    assert lo <= vs_exact <= hi and est.Vs == pytest.approx(vs_exact, rel=1e-3)
    grad_exit = np.einsum("ik,ikd->kd", cl.frac, grads)
    z_exact = float(LT @ (grad_exit**2).sum(axis=1))
    lo, hi = est.zeta2_interval  # type: ignore[misc]
    assert lo <= z_exact <= hi
    assert set(est.as_dict()) >= {"L_pair", "Ls", "Vs", "Vn", "zeta2", "Vs_interval", "base"}
