"""Property tests of the CIS model (hypothesis, deterministic profile by default)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import cistheory as ct

# Sums of at most a few dozen non-negative terms: relative rounding of order 1e-15.
RTOL = 1e-11


@st.composite
def trees(draw: st.DrawFn, max_nodes: int = 9, mode: str | None = None) -> dict:
    """A random rooted tree (parent[i] < i), capacities, arrivals, and valid rates."""
    n = draw(st.integers(1, max_nodes))
    k = draw(st.integers(1, 4))
    parent = [-1] + [draw(st.integers(0, i - 1)) for i in range(1, n)]
    cap = [draw(st.integers(1, k)) for _ in range(n)]
    cap[0] = k
    arrival = [draw(st.floats(0, 10, allow_nan=False)) for _ in range(n)]
    arrival[-1] += 1.0  # something is served
    data = [draw(st.floats(1, 1000, allow_nan=False)) for _ in range(n)]
    use = mode or draw(st.sampled_from(["forward", "service"]))
    if use == "forward":
        frac = [draw(st.floats(0, 1)) for _ in range(n)]
        inflow = list(arrival)
        fwd = [0.0] * n
        for i in range(n - 1, 0, -1):  # children have larger indices: leaves first
            fwd[i] = frac[i] * inflow[i]
            inflow[parent[i]] += fwd[i]
        rates = {"forward": fwd}
    else:
        svc = [draw(st.one_of(st.just(np.inf), st.floats(0, 10))) for _ in range(n)]
        svc[0] = draw(st.one_of(st.just(np.inf), st.floats(0.5, 10)))  # something is served
        rates = {"service": svc}
    return dict(parent=parent, capacity=cap, arrival=arrival, data=data, n_exits=k, **rates)


@given(trees())
def test_lambda_on_simplex(spec: dict) -> None:
    """lambda is non-negative and sums to one."""
    cis = ct.CIS.build(**spec)
    assert np.all(cis.lam >= 0)
    assert abs(cis.lam.sum() - 1) < 1e-12


@given(trees())
def test_mass_conservation(spec: dict) -> None:
    """Total served plus dropped load equals total arrivals; nobody serves more than arrives."""
    cis = ct.CIS.build(**spec)
    total = cis.arrival.sum()
    np.testing.assert_allclose(cis.served.sum() + cis.dropped, total, rtol=RTOL)
    assert np.all(cis.served >= 0) and np.all(cis.serving.forwarded >= 0)


@given(trees(), st.randoms(use_true_random=False))
def test_relabelling_changes_nothing(spec: dict, rnd) -> None:  # type: ignore[no-untyped-def]
    """Permuting node indices (and relabelling parents) leaves lambda and the load unchanged."""
    cis = ct.CIS.build(**spec)
    n = cis.n_nodes
    perm = list(range(n))
    rnd.shuffle(perm)
    perm_a = np.array(perm)  # new position j holds old node perm[j]
    inv = np.argsort(perm_a)
    new_parent = np.where(cis.parent[perm_a] >= 0, inv[np.maximum(cis.parent[perm_a], 0)], -1)
    kw = {
        k: np.asarray(v)[perm_a]
        for k, v in spec.items()
        if k in {"capacity", "arrival", "data", "forward", "service"}
    }
    other = ct.CIS.build(parent=new_parent, n_exits=spec["n_exits"], **kw)
    np.testing.assert_allclose(other.lam, cis.lam, rtol=RTOL, atol=1e-15)
    np.testing.assert_allclose(other.served, cis.served[perm_a], rtol=RTOL, atol=1e-12)
    assert abs(other.dropped - cis.dropped) <= 1e-9 * max(1.0, cis.arrival.sum())


@given(trees(), st.data())
def test_idle_node_changes_nothing(spec: dict, data: st.DataObject) -> None:
    """A new node with no arrivals and no data, forwarding nothing, changes lambda and beta."""
    cis = ct.CIS.build(**spec)
    n = cis.n_nodes
    at = data.draw(st.integers(0, n - 1))
    cap = data.draw(st.integers(1, spec["n_exits"]))
    grown = dict(spec)
    grown["parent"] = [*spec["parent"], at]
    grown["capacity"] = [*spec["capacity"], cap]
    grown["arrival"] = [*spec["arrival"], 0.0]
    grown["data"] = [*spec["data"], 0.0]
    if "forward" in spec:
        grown["forward"] = [*spec["forward"], 0.0]
    else:
        grown["service"] = [*spec["service"], data.draw(st.floats(0, 5))]
    big = ct.CIS.build(**grown)
    np.testing.assert_allclose(big.lam, cis.lam, rtol=RTOL, atol=1e-15)
    # uniform weights on the exits some node with data trains (beta refuses weight elsewhere)
    trained = ct.deepest_exit(cis).exit_data > 0
    lt = trained / trained.sum()
    b_small = ct.beta(ct.deepest_exit(cis), lt)
    b_big = ct.beta(ct.deepest_exit(big), lt)
    np.testing.assert_allclose(b_big[:n], b_small, rtol=RTOL, atol=1e-15)
    assert np.all(b_big[n] == 0)


@st.composite
def participations(draw: st.DrawFn) -> tuple[ct.CIS, np.ndarray]:
    spec = draw(trees(max_nodes=4, mode="forward"))
    cis = ct.CIS.build(**spec)
    q = np.zeros((cis.n_nodes, cis.n_exits))
    for i in range(cis.n_nodes):
        kappa = int(cis.capacity[i])
        w = np.array([draw(st.floats(0.05, 1)) for _ in range(kappa + 1)])  # last: idle
        q[i, :kappa] = w[:kappa] / w.sum()
    return cis, q


@given(participations(), st.integers(0, 2**32 - 1))
def test_unbiased_weights_are_unbiased(pq: tuple[ct.CIS, np.ndarray], seed: int) -> None:
    """E[sum_picked (beta/q) Delta] = sum beta Delta, by exact enumeration of selections."""
    cis, q = pq
    part = ct.explicit(cis, q)
    k = cis.n_exits
    lt = np.random.default_rng(seed).dirichlet(np.ones(k))
    w = ct.aggregation_weights(part, lt, "unbiased")
    delta = np.random.default_rng(seed + 1).normal(size=(cis.n_nodes, k))
    expect = 0.0
    for choice in itertools.product(range(k + 1), repeat=cis.n_nodes):
        prob, agg = 1.0, 0.0
        for i, c in enumerate(choice):
            if c == k:
                prob *= 1 - q[i].sum()
            else:
                prob *= q[i, c]
                agg += w[i, c] * delta[i, c]
        expect += prob * agg
    target = float(np.sum(ct.beta(part, lt) * delta))
    assert abs(expect - target) <= 1e-10 * (1 + np.abs(ct.beta(part, lt) * delta).sum())
