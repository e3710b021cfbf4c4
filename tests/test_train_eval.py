"""Serving evaluation of a CIS: hand-checked routing, shares against lambda, a loop reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cistheory import CIS, CISInputError, reference_cis
from cistheory.train.evaluate import assign_arrivals, evaluate_cis, normalised_entropy


def _star() -> CIS:
    # root 0 (exit 2) with leaves 1 and 2 (exit 1); each leaf receives 2 and forwards 1
    return CIS.build(
        parent=[-1, 0, 0], capacity=[2, 1, 1], arrival=[0, 2, 2], forward=[0, 1, 1]
    )


def _probs(confidence: list[float], label_of_max: list[int], n_cls: int = 2) -> np.ndarray:
    """Probabilities with the given top-class probability and argmax per request."""
    out = np.zeros((len(confidence), n_cls))
    for r, (c, y) in enumerate(zip(confidence, label_of_max, strict=True)):
        out[r] = (1 - c) / (n_cls - 1)
        out[r, y] = c
    return out


def test_hand_checked_star() -> None:
    cis = _star()
    # 8 requests: 0-3 arrive at leaf 1, 4-7 at leaf 2 (in-order assignment).
    conf1 = [0.6, 0.99, 0.7, 0.95, 0.55, 0.9, 0.97, 0.51]  # exit-1 confidence
    pred1 = [0, 1, 1, 0, 1, 1, 0, 0]  # exit-1 argmax
    pred2 = [0, 0, 0, 0, 1, 1, 1, 1]  # exit-2 argmax (confidence irrelevant)
    out = np.stack([_probs(conf1, pred1), _probs([0.8] * 8, pred2)], axis=1)
    labels = np.array([0, 1, 0, 1, 1, 1, 0, 0])
    ev = evaluate_cis(cis, out, labels, kind="probs")
    assert ev.arrival_node.tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
    # Each leaf serves half of its 4 requests: the two most confident (lowest entropy).
    # Leaf 1: requests 1 (0.99) and 3 (0.95); leaf 2: requests 6 (0.97) and 5 (0.9).
    assert ev.served_by.tolist() == [0, 1, 0, 1, 0, 2, 2, 0]
    assert ev.served_exit.tolist() == [2, 1, 2, 1, 2, 1, 1, 2]
    # correct: r0 exit2 pred0=y0 yes; r1 exit1 pred1=y1 yes; r2 exit2 pred0=y0 yes;
    # r3 exit1 pred0 vs y1 no; r4 exit2 pred1=y1 yes; r5 exit1 pred1=y1 yes;
    # r6 exit1 pred0=y0 yes; r7 exit2 pred1 vs y0 no.
    assert ev.correct.tolist() == [True, True, True, False, True, True, True, False]
    assert ev.accuracy == pytest.approx(6 / 8, rel=0, abs=0)
    assert ev.node_served.tolist() == [4, 2, 2]
    assert ev.per_node_accuracy == {0: 0.75, 1: 0.5, 2: 1.0}
    assert ev.per_exit_accuracy == {1: 0.75, 2: 0.75}
    assert ev.shares.tolist() == [0.5, 0.5] == cis.lam.tolist()
    assert ev.dropped == 0
    # stand-alone exit accuracy over all 8 requests: exit 1 wrong on r2, r3; exit 2 on
    # r1, r3, r6, r7
    assert ev.exit_accuracy.tolist() == [6 / 8, 4 / 8]


def test_logits_and_probs_agree() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 3, 4)) * 3
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    # same numbers by two formulas: agreement to float rounding (1e-12 absolute on [0, 1])
    np.testing.assert_allclose(
        normalised_entropy(logits), normalised_entropy(p, kind="probs"), rtol=0, atol=1e-12
    )
    cis = reference_cis("60-30-10")
    labels = rng.integers(0, 4, size=50)
    a = evaluate_cis(cis, logits, labels)
    b = evaluate_cis(cis, p, labels, kind="probs")
    assert np.array_equal(a.served_by, b.served_by)


def test_entropy_extremes() -> None:
    assert normalised_entropy(np.zeros((1, 5))).tolist() == pytest.approx([1.0], abs=1e-15)
    assert normalised_entropy(np.eye(3), kind="probs").tolist() == [0.0, 0.0, 0.0]


def test_reference_split_shares_are_exact() -> None:
    # 80-15-5: 4 leaves x 100 requests; leaves serve 80%, middles 75% of their 40, root 20.
    cis = reference_cis("80-15-5")
    rng = np.random.default_rng(1)
    ev = evaluate_cis(cis, rng.normal(size=(400, 3, 10)), rng.integers(0, 10, size=400))
    assert ev.exit_served.tolist() == [320, 60, 20]
    np.testing.assert_allclose(ev.shares, cis.lam, rtol=0, atol=1e-15)


def _random_tree(draw: st.DrawFn) -> CIS:
    n = draw(st.integers(2, 9))
    parent = [-1] + [draw(st.integers(0, i - 1)) for i in range(1, n)]
    depth = [0] * n
    for i in range(1, n):
        depth[i] = depth[parent[i]] + 1
    # capacity shrinks with depth so deeper nodes host shallower exits
    cap = [max(1, 3 - d) for d in depth]
    has_child = set(parent[1:])
    arrival = [0.0 if i in has_child else draw(st.floats(0.5, 3.0)) for i in range(n)]
    if sum(arrival) == 0:
        arrival[-1] = 1.0
    # forwarding as a fraction of the inflow, leaves first
    inflow = list(arrival)
    forward = [0.0] * n
    for i in sorted(range(1, n), key=lambda j: -depth[j]):
        frac = draw(st.floats(0.0, 1.0))
        forward[i] = frac * inflow[i]
        inflow[parent[i]] += forward[i]
    return CIS.build(parent=parent, capacity=cap, arrival=arrival, forward=forward, n_exits=3)


@given(data=st.data(), n_test=st.integers(50, 3000))
def test_realised_shares_match_lambda(data: st.DataObject, n_test: int) -> None:
    """Property: realised shares equal lambda up to the rounding of request counts."""
    cis = data.draw(st.composite(_random_tree)())
    rng = np.random.default_rng(n_test)
    ev = evaluate_cis(cis, rng.normal(size=(n_test, 3, 3)), rng.integers(0, 3, size=n_test))
    assert ev.exit_served.sum() + ev.dropped == n_test
    assert ev.dropped == 0
    # Rounding budget: the arrival counts are each off by < 1 request, and every node's
    # round() adds at most 1/2 to the error of what it serves and forwards; an error reaching
    # a node is passed up at most through all its ancestors. So each node contributes at
    # most 1.5 requests to the count error of at most (depth + 1) nodes' served counts.
    budget = 1.5 * cis.n_nodes * (int(cis.depth.max()) + 1)
    err = np.abs(ev.exit_served - cis.lam * n_test).sum()
    assert err <= budget


def _loop_reference(cis: CIS, ent: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Plain recursive routing (one node at a time), for comparison."""
    queue: dict[int, list[int]] = {i: [] for i in range(cis.n_nodes)}
    for r, i in enumerate(where):
        queue[int(i)].append(r)
    served_by = np.full(where.size, -1)
    frac = cis.serving.served / np.where(cis.serving.inflow > 0, cis.serving.inflow, 1.0)
    for i in sorted(range(cis.n_nodes), key=lambda j: -cis.depth[j]):
        reqs = sorted(queue[i], key=lambda r: (ent[r, cis.capacity[i] - 1], r))
        n_serve = int(np.rint(len(reqs) * frac[i]))
        for r in reqs[:n_serve]:
            served_by[r] = i
        if cis.parent[i] >= 0:
            queue[int(cis.parent[i])].extend(reqs[n_serve:])
    return served_by


@given(data=st.data())
def test_vectorised_matches_loop(data: st.DataObject) -> None:
    """Property: the level-vectorised routing equals a node-by-node loop."""
    cis = data.draw(st.composite(_random_tree)())
    n_test = data.draw(st.integers(1, 400))
    rng = np.random.default_rng(n_test)
    logits = rng.normal(size=(n_test, 3, 5))
    where = assign_arrivals(cis, n_test, rng=rng)
    ev = evaluate_cis(cis, logits, rng.integers(0, 5, size=n_test), arrival_node=where)
    ref = _loop_reference(cis, normalised_entropy(logits), where)
    assert np.array_equal(ev.served_by, ref)


def test_capacity_mode_reports_dropped_load() -> None:
    # leaves serve 1 of their 2; the root can serve 1 of the 2 forwarded: 1 dropped (rate)
    cis = CIS.build(parent=[-1, 0, 0], capacity=[2, 1, 1], arrival=[0, 2, 2], service=[1, 1, 1])
    assert cis.dropped == pytest.approx(1.0)
    rng = np.random.default_rng(2)
    ev = evaluate_cis(cis, rng.normal(size=(40, 2, 3)), rng.integers(0, 3, size=40))
    # leaves: 20 each, serve half -> 10 each; root gets 20, serves 1/2 -> 10; 10 dropped
    assert ev.node_served.tolist() == [10, 10, 10]
    assert ev.dropped == 10
    assert (ev.served_by == -1).sum() == 10
    assert not ev.correct[ev.served_by == -1].any()
    assert ev.accuracy == pytest.approx(ev.correct.sum() / 30)


def test_torch_tensors_accepted() -> None:
    torch = pytest.importorskip("torch")
    from cistheory.train.models import NestedLinear

    model = NestedLinear(6, (2, 4, 6), n_classes=3)
    x = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = torch.stack(model.forward_all(x), dim=1)  # (40, 3, 3)
    y = torch.randint(0, 3, (40,), generator=torch.Generator().manual_seed(1))
    ev = evaluate_cis(reference_cis("60-30-10"), out, y)
    ref = evaluate_cis(reference_cis("60-30-10"), out.numpy(), y.numpy())
    assert np.array_equal(ev.served_by, ref.served_by)
    assert ev.accuracy == ref.accuracy


@pytest.mark.parametrize(
    ("outputs", "labels", "field"),
    [
        (np.zeros((4, 2)), [0, 0, 0, 0], "exit_outputs"),
        (np.zeros((4, 1, 2)), [0, 0, 0, 0], "exit_outputs"),  # the CIS uses 2 exits
        (np.zeros((4, 2, 2)), [0, 0, 0], "labels"),
        (np.zeros((4, 2, 2)), [0, 0, 0, 2], "labels"),
        (np.full((4, 2, 2), np.nan), [0, 0, 0, 0], "outputs"),
    ],
)
def test_bad_inputs(outputs: np.ndarray, labels: list[int], field: str) -> None:
    with pytest.raises(CISInputError) as exc:
        evaluate_cis(_star(), outputs, np.asarray(labels))
    assert exc.value.field == field


def test_arrival_at_node_without_rate_rejected() -> None:
    with pytest.raises(CISInputError, match="positive arrival rate"):
        evaluate_cis(_star(), np.zeros((2, 2, 2)), np.array([0, 1]), arrival_node=np.array([0, 1]))


def test_probabilities_must_sum_to_one() -> None:
    with pytest.raises(CISInputError, match="sum to 1"):
        normalised_entropy(np.full((2, 3), 0.5), kind="probs")


def test_as_dict_is_json_ready() -> None:
    import json

    rng = np.random.default_rng(4)
    cis = reference_cis("60-30-10")
    ev = evaluate_cis(cis, rng.normal(size=(50, 3, 4)), rng.integers(0, 4, 50), rng=rng)
    doc = ev.as_dict()
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc  # plain types only
    assert doc["accuracy"] == ev.accuracy and doc["exit_served"] == ev.exit_served.tolist()
    assert doc["per_exit_accuracy"] == {str(k): v for k, v in ev.per_exit_accuracy.items()}


def test_max_softmax_ranks_differently_from_entropy() -> None:
    """Three classes: (0.5, 0.5, 0) has the lower entropy (ln2/ln3 = 0.63 against 0.87),
    (0.6, 0.2, 0.2) the higher top probability; a leaf answering one of the two picks
    accordingly."""
    cis = CIS.build(parent=[-1, 0], capacity=[2, 1], arrival=[0, 2], forward=[0, 1])
    exit1 = np.array([[0.5, 0.5, 0.0], [0.6, 0.2, 0.2]])
    out = np.stack([exit1, np.full((2, 3), 1 / 3)], axis=1)
    by_entropy = evaluate_cis(cis, out, [0, 0], kind="probs")
    by_max = evaluate_cis(cis, out, [0, 0], kind="probs", score="max-softmax")
    assert by_entropy.served_by.tolist() == [1, 0]
    assert by_max.served_by.tolist() == [0, 1]
    assert by_max.score == "max-softmax" and by_max.as_dict()["score"] == "max-softmax"
    with pytest.raises(CISInputError, match="score"):
        evaluate_cis(cis, out, [0, 0], kind="probs", score="margin")


def test_per_node_and_per_exit_losses_are_the_served_cross_entropies() -> None:
    rng = np.random.default_rng(4)
    cis = _star()
    logits = rng.normal(size=(8, 2, 3))
    labels = rng.integers(0, 3, size=8)
    ev = evaluate_cis(cis, logits, labels)
    by_node: dict[int, list[float]] = {}
    by_exit: dict[int, list[float]] = {}
    for r in range(8):
        node, k = int(ev.served_by[r]), int(ev.served_exit[r])
        z = logits[r, k - 1]
        loss = float(np.log(np.exp(z).sum()) - z[labels[r]])  # written out, no shared code
        by_node.setdefault(node, []).append(loss)
        by_exit.setdefault(k, []).append(loss)
    assert ev.per_node_loss.keys() == by_node.keys()
    for i, v in by_node.items():
        assert ev.per_node_loss[i] == pytest.approx(np.mean(v), rel=1e-12)
    for k, v in by_exit.items():
        assert ev.per_exit_loss[k] == pytest.approx(np.mean(v), rel=1e-12)
    # probabilities carry no finite loss where a probability is 0: none is reported
    assert evaluate_cis(cis, np.full((8, 2, 3), 1 / 3), labels, kind="probs").per_node_loss == {}
