"""The federated loop: golden cases checkable by hand, a numpy reference, loop vs vmap.

Golden cases (two nodes, scalar parameters, lr 1.0) use the nested linear model without
biases: exit 1 predicts ``a x_1``, exit 2 predicts ``a x_1 + b x_2`` (``a`` is unit 1,
``b`` unit 2), with loss ``(pred - y)^2 / 2`` and full-batch gradients, so every number
below follows from a few lines of arithmetic written next to it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cistheory.errors import CISInputError
from cistheory.train.data import Dataset, synthetic_classification, synthetic_regression
from cistheory.train.fedloop import (
    FedConfig,
    RoundRecord,
    StepSchedule,
    exit_objectives,
    run_federated,
    select_exits,
)
from cistheory.train.models import EarlyExitCNN, EarlyExitMLP, EarlyExitResNet18, NestedLinear

# float32 parameters; updates of order one: exact binary fractions in the golden cases
# give exact results, so they are compared with equality where possible and with this
# bound (a few float32 ulps) otherwise.
F32 = 1e-6


def scalar_model(a: float = 1.0, b: float = 1.0) -> NestedLinear:
    m = NestedLinear(2, (1, 2), n_classes=None, bias=False)
    with torch.no_grad():
        m.blocks[0].weight.fill_(a)
        m.blocks[1].weight.fill_(b)
    return m


def two_nodes() -> list[Dataset]:
    # node 0: x = (1, 2), y = 5; node 1: x = (1, 0), y = 3
    return [
        Dataset(torch.tensor([[1.0, 2.0]]), torch.tensor([5.0])),
        Dataset(torch.tensor([[1.0, 0.0]]), torch.tensor([3.0])),
    ]


def ab(result_state: dict[str, torch.Tensor]) -> tuple[float, float]:
    return float(result_state["blocks.0.weight"]), float(result_state["blocks.1.weight"])


GOLDEN_Q = np.array([[0.0, 1.0], [1.0, 0.0]])  # node 0 trains exit 2, node 1 exit 1


def golden_cfg(**kw: object) -> FedConfig:
    base: dict[str, object] = {
        "rounds": 1,
        "tau": 1,
        "lr": 1.0,
        "batch_size": None,
        "init_seed": None,
    }
    base.update(kw)
    return FedConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("vectorised", [False, True])
def test_golden_two_rounds(vectorised: bool) -> None:
    # lt = (1/2, 1/2), m = (1, 1): beta = 1/2 for both picked pairs, q = 1 -> weight 1/2.
    # Round 0 from (a, b) = (1, 1):
    #   node 0, exit 2: pred 1 + 2 = 3, r = -2, grad (a, b) = (-2, -4) -> Delta (2, 4)
    #   node 1, exit 1: pred 1, r = -2, grad a = -2 -> Delta (2, 0)
    #   server: a = 1 + (2 + 2)/2 = 3, b = 1 + 4/2 = 3
    #   (node 1 starts from the broadcast a = 1, not from node 0's result: the reference
    #   release's aliasing of the global model to a node's model would give a different a)
    # Round 1 from (3, 3):
    #   node 0: pred 9, r = 4, Delta (-4, -8); node 1: pred 3, r = 0, Delta 0
    #   server: a = 3 - 4/2 = 1, b = 3 - 8/2 = -1
    m = scalar_model()
    res = run_federated(
        m, two_nodes(), GOLDEN_Q, [0.5, 0.5], golden_cfg(rounds=1, vectorised=vectorised)
    )
    assert ab(res.state_dict) == (3.0, 3.0)
    m = scalar_model()
    res = run_federated(
        m, two_nodes(), GOLDEN_Q, [0.5, 0.5], golden_cfg(rounds=2, vectorised=vectorised)
    )
    assert ab(res.state_dict) == (1.0, -1.0)
    assert [r.picks for r in res.history] == [[2, 1], [2, 1]]


@pytest.mark.parametrize("vectorised", [False, True])
def test_golden_local_steps(vectorised: bool) -> None:
    # tau = 2 from (1, 1):
    #   node 0: step 1 -> (3, 5); step 2: pred 3 + 10 = 13, r = 8, grad (8, 16) -> (-5, -11);
    #           Delta (-6, -12)
    #   node 1: step 1 -> a = 3; step 2: pred 3, r = 0 -> a = 3; Delta 2
    #   server: a = 1 + (-6 + 2)/2 = -1, b = 1 - 12/2 = -5
    res = run_federated(
        scalar_model(), two_nodes(), GOLDEN_Q, [0.5, 0.5], golden_cfg(tau=2, vectorised=vectorised)
    )
    assert ab(res.state_dict) == (-1.0, -5.0)
    # per-node steps (2, 1): node 1 stops after one step, its Delta stays 2 -> the same a, b
    res = run_federated(
        scalar_model(),
        two_nodes(),
        GOLDEN_Q,
        [0.5, 0.5],
        golden_cfg(tau=(2, 1), vectorised=vectorised),
    )
    assert ab(res.state_dict) == (-1.0, -5.0)


@pytest.mark.parametrize("vectorised", [False, True])
def test_golden_momentum_and_weight_decay(vectorised: bool) -> None:
    # node 1 alone (q row of node 0 is zero), rho = 0.5, momentum 0.5, tau = 2, lr = 1:
    #   step 1 at a = 1: g = (1 - 3) * 1 + 0.5 * 1 = -1.5; buf = -1.5; a = 2.5
    #   step 2 at a = 2.5: g = (2.5 - 3) + 0.5 * 2.5 = 0.75; buf = 0.5 * -1.5 + 0.75 = 0;
    #          a = 2.5
    #   Delta = 1.5; beta = lt_1 m_1 / M_1 = 1 (lt = (1, 0)); a = 1 + 1.5 = 2.5; b unchanged
    q = np.array([[0.0, 0.0], [1.0, 0.0]])
    cfg = golden_cfg(tau=2, weight_decay=0.5, momentum=0.5, vectorised=vectorised)
    res = run_federated(scalar_model(), two_nodes(), q, [1.0, 0.0], cfg)
    assert ab(res.state_dict) == (2.5, 1.0)


@pytest.mark.parametrize("vectorised", [False, True])
def test_golden_sampled_node_weight(vectorised: bool) -> None:
    # node 1 trains exit 1 with probability 1/2; picked, its Delta (2, 0) gets weight
    # beta / q = (1/2) / (1/2) = 1 (unbiased) or beta * q = 1/4 (multiplicative).
    q = np.array([[0.0, 1.0], [0.5, 0.0]])
    seen = set()
    for seed in range(6):
        for agg, w in (("unbiased", 1.0), ("multiplicative", 0.25)):
            res = run_federated(
                scalar_model(),
                two_nodes(),
                q,
                [0.5, 0.5],
                golden_cfg(aggregation=agg, selection_seed=seed, vectorised=vectorised),
            )
            picked = res.history[0].picks[1] == 1
            seen.add(picked)
            a, b = ab(res.state_dict)
            assert b == 3.0  # node 0 always trains exit 2: b = 1 + 4/2
            assert a == 1.0 + 2 * 0.5 + (2.0 * w if picked else 0.0)
    assert seen == {True, False}  # both outcomes exercised


def test_golden_server_step_and_schedule() -> None:
    # eta_s = 1/2 halves the aggregate of round 0: a = 1 + 2/2 = 2, b = 1 + 2/2 = 2.
    res = run_federated(
        scalar_model(), two_nodes(), GOLDEN_Q, [0.5, 0.5], golden_cfg(server_lr=0.5)
    )
    assert ab(res.state_dict) == (2.0, 2.0)
    # inverse schedule b/(gamma + t) = 2/(2 + t): lr 1 in round 0, 2/3 in round 1
    cfg = golden_cfg(rounds=2, lr=StepSchedule("inverse", 2.0, gamma=2.0))
    res = run_federated(scalar_model(), two_nodes(), GOLDEN_Q, [0.5, 0.5], cfg)
    assert [r.lr for r in res.history] == [1.0, 2.0 / 3.0]
    # round 1 from (3, 3) with lr 2/3: Delta_0 = (-8/3, -16/3) -> a = 3 - 4/3, b = 3 - 8/3
    a, b = ab(res.state_dict)
    assert a == pytest.approx(5.0 / 3.0, abs=F32) and b == pytest.approx(1.0 / 3.0, abs=F32)


def test_schedules() -> None:
    s = StepSchedule("cosine", lr=0.1, final=0.01)
    assert s(0, 10) == pytest.approx(0.1, rel=1e-15)  # closed form, rounding only
    assert s(5, 10) == pytest.approx(0.055, rel=1e-15)
    assert s(10, 10) == pytest.approx(0.01, rel=1e-15)
    with pytest.raises(CISInputError, match="gamma"):
        StepSchedule("inverse", 1.0, gamma=0.0)
    with pytest.raises(CISInputError, match="schedule"):
        StepSchedule("linear", 1.0)


def numpy_round(
    w: np.ndarray,
    bias: np.ndarray,
    dims: tuple[int, ...],
    nodes: list[tuple[np.ndarray, np.ndarray]],
    picks: np.ndarray,
    q: np.ndarray,
    lt: np.ndarray,
    lr: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One round of the algorithm for nested least squares, tau = 1, full batch, eta_s = 1."""
    m = np.array([len(y) for _, y in nodes], dtype=float)
    big_m = (q > 0).T.astype(float) @ m  # M_k
    new_w, new_b = w.copy(), bias.copy()
    for i, k in enumerate(picks):
        if k == 0:
            continue
        x, y = nodes[i]
        d = dims[k - 1]
        r = x[:, :d] @ w[:d] + bias[k - 1] - y
        weight = lt[k - 1] * m[i] / big_m[k - 1] / q[i, k - 1]
        new_w[:d] -= weight * lr * (x[:, :d].T @ r) / len(y)
        new_b[k - 1] -= weight * lr * r.mean()
    return new_w, new_b


@given(
    seed=st.integers(0, 2**32 - 1),
    n_nodes=st.integers(1, 6),
    probs=st.lists(st.floats(0.05, 1.0), min_size=6, max_size=6),
)
def test_aggregation_matches_numpy_reference(seed: int, n_nodes: int, probs: list[float]) -> None:
    """Property: one round (tau = 1, full batch) equals the ten-line numpy reference."""
    rng = np.random.default_rng(seed)
    dims = (2, 3, 5)
    sizes = rng.integers(1, 8, size=n_nodes).tolist()
    nodes, _, _ = synthetic_regression(n_nodes, sizes, dims=dims, test_samples=0, rng=rng)
    # each node: one exit with probability p (exit drawn at random) or idles
    q = np.zeros((n_nodes, 3))
    q[np.arange(n_nodes), rng.integers(0, 3, size=n_nodes)] = probs[:n_nodes]
    # weights on the exits some node trains (beta refuses weight on an untrained exit)
    trained = (q > 0).any(axis=0)
    lt = np.zeros(3)
    lt[trained] = rng.dirichlet(np.ones(int(trained.sum())))
    model = NestedLinear(
        5, dims, n_classes=None, generator=torch.Generator().manual_seed(seed % 1000)
    )
    w0 = torch.cat([b.weight.detach()[0] for b in model.blocks]).double().numpy()
    b0 = torch.cat([h.bias.detach() for h in model.heads]).double().numpy()
    cfg = FedConfig(rounds=1, lr=0.3, batch_size=None, init_seed=None, selection_seed=seed)
    res = run_federated(model, nodes, q, lt, cfg)
    picks = np.asarray(res.history[0].picks)
    np_nodes = [(d.x.double().numpy(), d.y.double().numpy()) for d in nodes]
    w1, b1 = numpy_round(w0, b0, dims, np_nodes, picks, q, lt, 0.3)
    got_w = torch.cat([res.state_dict[f"blocks.{j}.weight"][0] for j in range(3)]).double().numpy()
    got_b = torch.cat([res.state_dict[f"heads.{j}.bias"] for j in range(3)]).double().numpy()
    # float32 training vs float64 reference: relative error of order 1e-7 per operation,
    # amplified by at most the 1/q <= 20 weights and a handful of sums.
    np.testing.assert_allclose(got_w, w1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_b, b1, rtol=1e-5, atol=1e-5)


def test_every_head_receives_its_aggregate() -> None:
    """The reference release's off-by-one left heads 1 and 2 unchanged; here each head moves."""
    rng = np.random.default_rng(4)
    nodes, _, _ = synthetic_classification(3, 10, rng=rng)
    q = np.eye(3)  # node i trains exit i + 1
    model = NestedLinear(8, (2, 4, 8), n_classes=4)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    res = run_federated(model, nodes, q, [0.3, 0.3, 0.4], FedConfig(rounds=1, init_seed=None))
    for n, p in before.items():
        assert not torch.equal(res.state_dict[n], p), n


def test_untouched_parts_stay_bitwise() -> None:
    """Nodes that all train exit 1 (with weight decay and momentum) leave P_2 \\ P_1 alone."""
    rng = np.random.default_rng(5)
    nodes, _, _ = synthetic_classification(4, 12, rng=rng)
    q = np.zeros((4, 3))
    q[:, 0] = 1.0
    for vec in (False, True):
        model = EarlyExitMLP(8, (6, 6, 6), n_classes=4)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        cfg = FedConfig(
            rounds=2, tau=3, weight_decay=0.1, momentum=0.9, init_seed=None, vectorised=vec
        )
        res = run_federated(model, nodes, q, [1.0, 0.0, 0.0], cfg)
        part1 = set(model.exit_parameter_names(1))
        for n, p in before.items():
            assert torch.equal(res.state_dict[n], p) == (n not in part1), n


@pytest.mark.parametrize("batch_size", [5, None])
@pytest.mark.parametrize("make", ["linear", "mlp"])
def test_vectorised_equals_loop(batch_size: int | None, make: str) -> None:
    """vmap clients and the torch.optim loop give the same parameters and picks."""
    rng = np.random.default_rng(6)
    nodes, _, _ = synthetic_classification(9, [4 + 3 * i for i in range(9)], rng=rng)
    q = np.tile([0.3, 0.3, 0.3], (9, 1))
    q[0] = [0.0, 0.0, 1.0]
    outs = []
    for vec in (False, True):
        model = NestedLinear(8, (2, 4, 8), 4) if make == "linear" else EarlyExitMLP(8, (8, 8, 8), 4)
        cfg = FedConfig(
            rounds=3,
            tau=(1, 2, 3, 1, 2, 3, 1, 2, 3),
            lr=0.2,
            batch_size=batch_size,
            momentum=0.9,
            weight_decay=1e-2,
            vectorised=vec,
        )
        outs.append(run_federated(model, nodes, q, [0.2, 0.3, 0.5], cfg))
    a, b = outs
    assert [r.picks for r in a.history] == [r.picks for r in b.history]
    for n in a.state_dict:
        # float32, different summation order (vmap reductions, tensordot aggregation):
        # differences of a few ulps of O(1) values accumulate over 3 rounds x 3 steps.
        torch.testing.assert_close(a.state_dict[n], b.state_dict[n], rtol=1e-5, atol=1e-6)


def test_lemma1_unbiased_in_expectation() -> None:
    """Lemma 1: with tau = 1 the mean one-round update over selections is -eta grad F_lt."""
    rng = np.random.default_rng(7)
    nodes, _, _ = synthetic_regression(5, [3, 5, 7, 4, 6], dims=(1, 2), test_samples=0, rng=rng)
    q = np.array([[0.5, 0.5], [0.2, 0.6], [0.7, 0.0], [0.0, 0.9], [0.4, 0.4]])
    lt = np.array([0.6, 0.4])
    lr = 0.1
    start = NestedLinear(2, (1, 2), None)
    w0 = torch.nn.utils.parameters_to_vector(start.parameters()).detach().double()
    # full-participation update: -lr sum_k lt_k sum_{i in E_k} (m_i/M_k) grad f_{i,k}
    m = np.array([len(d) for d in nodes], dtype=float)
    big_m = (q > 0).T.astype(float) @ m
    target = torch.zeros_like(w0)
    target_mult = torch.zeros_like(w0)  # the multiplicative rule: E = sum q * (beta q) Delta
    for i, d in enumerate(nodes):
        for k in (1, 2):
            if q[i, k - 1] == 0:
                continue
            start.zero_grad()
            start.loss(start(d.x, exit=k), d.y).backward()
            g = torch.cat(
                [
                    (p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                    for p in start.parameters()
                ]
            ).double()
            target -= lr * lt[k - 1] * m[i] / big_m[k - 1] * g
            target_mult -= lr * lt[k - 1] * m[i] / big_m[k - 1] * q[i, k - 1] ** 2 * g
    reps = 300
    ups = []
    for s in range(reps):
        model = NestedLinear(2, (1, 2), None)
        model.load_state_dict(start.state_dict())
        cfg = FedConfig(rounds=1, lr=lr, batch_size=None, init_seed=None, selection_seed=s)
        run_federated(model, nodes, q, lt, cfg)
        ups.append(torch.nn.utils.parameters_to_vector(model.parameters()).detach().double() - w0)
    u = torch.stack(ups)
    se = u.std(dim=0) / reps**0.5
    # Monte-Carlo check: each coordinate's mean lies within 4.5 standard errors of the target
    # (two-sided normal tail 7e-6 per coordinate; 5 coordinates).
    assert torch.all((u.mean(dim=0) - target).abs() <= 4.5 * se + 1e-7)
    # The check has power: the multiplicative rule's expectation lies outside that band.
    assert torch.any((target_mult - target).abs() > 4.5 * se + 1e-7)


def test_batchnorm_buffers_are_data_weighted_means() -> None:
    gen = torch.Generator().manual_seed(0)
    nodes = [
        Dataset(torch.randn(3, 3, 8, 8, generator=gen), torch.tensor([0, 1, 2])),
        Dataset(torch.randn(5, 3, 8, 8, generator=gen), torch.tensor([0, 1, 2, 3, 4])),
    ]
    model = EarlyExitResNet18(exits=(3, 9, 17), n_classes=5, width=4)
    q = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    expected = {}
    for d in nodes:
        local = EarlyExitResNet18(exits=(3, 9, 17), n_classes=5, width=4)
        local.load_state_dict(model.state_dict())
        local.train()
        local(d.x, exit=1)  # one full-batch forward updates the running statistics
        for n, b in local.named_buffers():
            if n in model.exit_buffer_names(1) and b.is_floating_point():
                expected[n] = expected.get(n, 0) + len(d) / 8 * b.detach()
    model.eval()  # clients train in training mode whatever mode the global model is in
    res = run_federated(
        model, nodes, q, [1.0, 0.0, 0.0], FedConfig(rounds=1, batch_size=None, init_seed=None)
    )
    assert expected
    for n, v in expected.items():
        # float32 weighted mean of two values vs the same in another order: a few ulps
        torch.testing.assert_close(res.state_dict[n], v, rtol=1e-6, atol=1e-7)
    # the vectorised clients keep per-node statistics (batched buffers) and average them alike
    again = EarlyExitResNet18(exits=(3, 9, 17), n_classes=5, width=4)
    vec = run_federated(
        again,
        nodes,
        q,
        [1.0, 0.0, 0.0],
        FedConfig(rounds=1, batch_size=None, init_seed=None, vectorised=True),
    )
    for n, v in expected.items():
        torch.testing.assert_close(vec.state_dict[n], v, rtol=1e-6, atol=1e-7)


def test_select_exits_frequencies() -> None:
    q = np.tile([0.2, 0.5, 0.1], (20000, 1))
    picks = select_exits(q, np.random.default_rng(0))
    freq = np.bincount(picks, minlength=4) / picks.size
    # binomial standard error <= sqrt(0.25 / 20000) = 0.0035; 5 standard errors
    np.testing.assert_allclose(freq, [0.2, 0.2, 0.5, 0.1], atol=0.018)


def test_exit_objectives_and_history() -> None:
    nodes = two_nodes()
    # at (a, b) = (1, 1): f_{0,2} = (3 - 5)^2 / 2 = 2, f_{1,1} = (1 - 3)^2 / 2 = 2
    assert exit_objectives(scalar_model(), nodes, GOLDEN_Q) == [2.0, 2.0]
    res = run_federated(scalar_model(), nodes, GOLDEN_Q, [0.5, 0.5], golden_cfg(eval_every=1))
    # at (3, 3): f_{1,1} = 0, f_{0,2} = (9 - 5)^2 / 2 = 8
    assert res.history[0].objectives == [0.0, 8.0]
    assert res.history[0].objective_lt == 4.0


def test_input_errors() -> None:
    nodes = two_nodes()
    with pytest.raises(CISInputError, match=r"q\[0\]"):
        run_federated(scalar_model(), nodes, [[0.6, 0.6], [1.0, 0.0]], [0.5, 0.5], golden_cfg())
    with pytest.raises(CISInputError, match="lt"):
        run_federated(scalar_model(), nodes, GOLDEN_Q, [0.5, 0.6], golden_cfg())
    with pytest.raises(CISInputError, match="q"):
        run_federated(scalar_model(), nodes, np.ones((3, 2)) / 2, [0.5, 0.5], golden_cfg())
    with pytest.raises(CISInputError, match="rounds"):
        FedConfig(rounds=0)
    with pytest.raises(CISInputError, match="momentum"):
        FedConfig(momentum=1.0)
    with pytest.raises(CISInputError, match="aggregation"):
        FedConfig(aggregation="mean")
    with pytest.raises(CISInputError, match="tau"):
        run_federated(scalar_model(), nodes, GOLDEN_Q, [0.5, 0.5], golden_cfg(tau=(1, 1, 1)))


def test_vectorised_equals_loop_for_convolutions() -> None:
    """vmap also covers buffer-free conv models (CNN, group-norm ResNet)."""
    gen = torch.Generator().manual_seed(0)
    nodes = [Dataset(torch.randn(6, 1, 8, 8, generator=gen), torch.arange(6) % 3) for _ in range(4)]
    q = np.full((4, 2), 0.5)
    makers = (
        lambda: EarlyExitCNN(1, (3, 4), 3),
        lambda: EarlyExitResNet18((3, 9), 3, in_channels=1, width=4, norm="group"),
    )
    for make in makers:
        a, b = (
            run_federated(
                make(),
                nodes,
                q,
                [0.5, 0.5],
                FedConfig(rounds=2, tau=2, batch_size=3, momentum=0.5, vectorised=v),
            )
            for v in (False, True)
        )
        for n in a.state_dict:
            # float32 convolutions batched differently: a few ulps over 2 rounds x 2 steps
            torch.testing.assert_close(a.state_dict[n], b.state_dict[n], rtol=1e-5, atol=1e-6)


def _flat_grad(model: NestedLinear, x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    model.loss(model(x, exit=k), y).backward()
    return torch.cat(
        [
            (p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
            for p in model.parameters()
        ]
    ).double()


def test_lemma2_exact_variance_of_the_aggregate() -> None:
    """Lemma 2 (tau = 1): E||g - grad F_lt||^2 of the loop's aggregate, by Monte Carlo.

    g = -(w_1 - w_0) / eta. Minibatches of B samples with replacement have variance
    s^2 = (mean per-sample squared deviation) / B.
    """
    rng = np.random.default_rng(8)
    nodes, _, _ = synthetic_regression(4, [3, 6, 5, 4], dims=(1, 2), test_samples=0, rng=rng)
    q = np.array([[0.5, 0.5], [0.3, 0.6], [0.8, 0.0], [0.0, 1.0]])
    lt = np.array([0.3, 0.7])
    lr, bsz = 0.05, 2
    start = NestedLinear(2, (1, 2), None)
    w0 = torch.nn.utils.parameters_to_vector(start.parameters()).detach().double()
    m = np.array([len(d) for d in nodes], dtype=float)
    big_m = (q > 0).T.astype(float) @ m
    grad_f = torch.zeros_like(w0)
    predicted = 0.0
    for i, d in enumerate(nodes):
        node_mean = torch.zeros_like(w0)
        for k in (1, 2):
            if q[i, k - 1] == 0:
                continue
            beta = lt[k - 1] * m[i] / big_m[k - 1]
            per = torch.stack(
                [_flat_grad(start, d.x[j : j + 1], d.y[j : j + 1], k) for j in range(len(d))]
            )
            mean = per.mean(dim=0)
            s2 = float(((per - mean) ** 2).sum(dim=1).mean()) / bsz
            predicted += beta**2 / q[i, k - 1] * (float(mean @ mean) + s2)
            node_mean += beta * mean
        predicted -= float(node_mean @ node_mean)
        grad_f += node_mean
    reps = 600
    sq = []
    for s in range(reps):
        model = NestedLinear(2, (1, 2), None)
        model.load_state_dict(start.state_dict())
        cfg = FedConfig(rounds=1, lr=lr, batch_size=bsz, selection_seed=s, batch_seed=10_000 + s)
        run_federated(model, nodes, q, lt, cfg)
        g = -(torch.nn.utils.parameters_to_vector(model.parameters()).detach().double() - w0) / lr
        sq.append(float(((g - grad_f) ** 2).sum()))
    sq_a = np.asarray(sq)
    se = sq_a.std(ddof=1) / np.sqrt(reps)
    # Monte-Carlo check of an exact identity: within 4.5 standard errors (float32 updates
    # divided by eta = 0.05 add relative errors ~1e-6, far below the standard error)
    assert abs(sq_a.mean() - predicted) <= 4.5 * se
    assert se < 0.1 * predicted  # the check has power: a 45% error would be caught


def _plain_json(x: object) -> bool:
    """Only dicts with string keys, lists, str, int, float, bool and None (no numpy/torch)."""
    if isinstance(x, dict):
        return all(isinstance(k, str) and _plain_json(v) for k, v in x.items())
    if isinstance(x, list):
        return all(_plain_json(v) for v in x)
    return x is None or type(x) in (str, int, float, bool)


def test_results_serialise_with_as_dict() -> None:
    import json

    rng = np.random.default_rng(3)
    nodes, _, _ = synthetic_classification(3, 8, dims=(2, 4), n_classes=3, test_samples=0, rng=rng)
    q = np.array([[0.5, 0.5], [1.0, 0.0], [0.0, 0.7]])
    cfg = FedConfig(rounds=2, tau=(1, 2, 1), lr=StepSchedule("cosine", lr=0.1, final=0.01),
                    batch_size=4, eval_every=1)
    states = []
    res = run_federated(NestedLinear(4, (2, 4), 3), nodes, q, [0.5, 0.5], cfg,
                        callback=lambda s: states.append(s.as_dict()) and None)
    doc = res.as_dict()
    for d in (doc, *states, cfg.as_dict(), *(r.as_dict() for r in res.history)):
        assert _plain_json(d)
        json.dumps(d, allow_nan=False)
    assert doc["rounds_done"] == 2 and doc["config"]["tau"] == [1, 2, 1]
    assert doc["config"]["lr"] == {"kind": "cosine", "lr": 0.1, "gamma": 1.0, "final": 0.01}
    assert doc["q"] == q.tolist()
    for name, t in res.state_dict.items():
        assert doc["state_dict"][name] == t.tolist()
    # a record is read back from its dictionary (as a checkpoint does)
    for r in res.history:
        assert RoundRecord(**r.as_dict()) == r
    assert states[-1]["rounds_done"] == 2 and states[-1]["history"] == doc["history"]
    assert FedConfig(tau=np.int64(3), rounds=np.int64(2)).as_dict()["tau"] == 3
