"""The Flower strategy and client app in one process (no Flower processes): the same result
as the in-process trainer bit for bit, faults left out with the stated weights, resume in
either direction, node identity, and the part sum against a numpy reference.

The grid here calls the ClientApp directly (``tests/flower_support.py``); the runs on
Flower's own simulation and deployment are in ``tests/test_flower_runs.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr")

import torch

from cistheory.errors import CISInputError
from cistheory.flower.apps import RUN_CONFIG, ServerOptions, node_index
from cistheory.flower.faults import failure_rates, fault_bias
from cistheory.flower.parts import PartSum, load_part, part_state
from cistheory.flower.problem import load_problem
from cistheory.flower.strategy import CISStrategy
from cistheory.system.aggregation import aggregation_weights
from cistheory.train.config import load_config
from cistheory.train.run import run_training
from tests.flower_support import (
    CASES,
    RESNET_BN,
    InProcessGrid,
    max_diff,
    model_pt,
    plain_loop,
    task_identity,
    write_config,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _identity() -> Iterator[None]:
    with task_identity():
        yield


def flower_run(config: Path, out: Path, grid: InProcessGrid | None = None, **kw: object) -> dict:
    problem = load_problem(config)
    grid = grid or InProcessGrid({"config": str(config)}, problem.n_nodes)
    strategy = CISStrategy(problem, round_timeout=float(kw.pop("round_timeout", 60.0)), poll=0.01)
    return strategy.run(grid, out, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("policy", "rule"), CASES)
def test_same_result_as_the_in_process_trainer(tmp_path: Path, policy: str, rule: str) -> None:
    """Same picks, uniforms, local update and sum in the same order: bitwise equal
    parameters, histories and objectives; and the parameters did move."""
    config = write_config(tmp_path / "run.toml", policy, rule)
    got = flower_run(config, tmp_path / "flower")
    ref = run_training(load_config(config), tmp_path / "ref")
    a, b = model_pt(tmp_path / "flower"), model_pt(tmp_path / "ref")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert got["history"] == ref["history"]
    assert got["final_objectives"] == ref["final_objectives"]
    assert got["system_accuracy"] == ref["system_accuracy"]
    init = load_problem(config).experiment.model.state_dict()
    assert max_diff(a, init) > 0.01  # 3 rounds moved the model (0.04 to 0.2 here)
    assert got["flower"]["faults"] == []
    assert got["flower"]["bias_observed"] == got["flower"]["bias_without_faults"]


def test_batch_norm_statistics_as_the_trainer(tmp_path: Path) -> None:
    """A model with batch norm (a narrow ResNet-18 on the digit images): buffers travel with
    the part and become the data-weighted mean, as in the trainer."""
    config = write_config(tmp_path / "run.toml", "p40", "unbiased", rounds=1, model=RESNET_BN)
    flower_run(config, tmp_path / "flower")
    run_training(load_config(config), tmp_path / "ref")
    a, b = model_pt(tmp_path / "flower"), model_pt(tmp_path / "ref")
    assert any("running_mean" in k for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_independent_plain_loop_agrees(tmp_path: Path) -> None:
    """The trainer (and so the Flower run) against the algorithm written from its statement:
    equal up to float32 rounding (different operation order; 1e-6 is ~100 ulps of the
    parameters' size)."""
    config = write_config(tmp_path / "run.toml", "p40", "multiplicative")
    run_training(load_config(config), tmp_path / "ref")
    assert max_diff(plain_loop(config), model_pt(tmp_path / "ref")) < 1e-6


def test_lost_updates_are_reported_and_left_out(tmp_path: Path) -> None:
    """Node 3 dies after round 1 (error replies), node 5 misses round 2 (timeout): both
    recorded; the result is the plain loop without those updates and no reweighting."""
    config = write_config(tmp_path / "run.toml", "deepest", "unbiased")
    lost = {(2, 3): "error", (3, 3): "error", (2, 5): "silent"}
    grid = InProcessGrid({"config": str(config)}, 7, lost=lost)
    got = flower_run(config, tmp_path / "flower", grid, round_timeout=0.5)
    faults = {
        (f["round"], f["cis-node"], f["kind"], f.get("code")) for f in got["flower"]["faults"]
    }
    assert faults == {(2, "3", "error", 5), (3, "3", "error", 5), (2, "5", "timeout", None)}
    assert got["rounds_done"] == 3 and got["complete"]
    ours = model_pt(tmp_path / "flower")
    assert max_diff(ours, plain_loop(config, {2: {3, 5}, 3: {3}})) < 1e-6
    assert max_diff(ours, plain_loop(config)) > 1e-3  # the faults did change the result
    # the bias the observed rates imply: f_3 = 2/3, f_5 = 1/3 (deepest: every node picked)
    rates = got["flower"]["failure_rates"]
    assert rates["3"] == pytest.approx(2 / 3) and rates["5"] == pytest.approx(1 / 3)
    assert got["flower"]["bias_observed"]["scale"] < 1.0


def test_a_node_that_comes_back_under_a_new_id_is_mapped_again(tmp_path: Path) -> None:
    """Node 3 is lost in round 2 and reconnects with a new Flower id: round 3 uses it."""
    config = write_config(tmp_path / "run.toml", "deepest", "unbiased")
    grid = InProcessGrid({"config": str(config)}, 7, lost={(2, 3): "error"}, rejoin={2: 3})
    got = flower_run(config, tmp_path / "flower", grid)
    assert [(f["round"], f["cis-node"]) for f in got["flower"]["faults"]] == [(2, "3")]
    assert got["flower"]["node_map"]["3"] == 5003
    assert max_diff(model_pt(tmp_path / "flower"), plain_loop(config, {2: {3}})) < 1e-6


def test_unconnected_node_is_a_fault_and_training_goes_on(tmp_path: Path) -> None:
    config = write_config(tmp_path / "run.toml", "deepest", "unbiased", rounds=2)
    grid = InProcessGrid({"config": str(config)}, 7, absent=[6])
    problem = load_problem(config)
    strategy = CISStrategy(problem, poll=0.01)
    got = strategy.run(grid, tmp_path / "flower", connect_timeout=0.5)
    assert [(f["round"], f["cis-node"], f["kind"]) for f in got["flower"]["faults"]] == [
        (1, "6", "unmapped"),
        (2, "6", "unmapped"),
    ]
    assert max_diff(model_pt(tmp_path / "flower"), plain_loop(config, {1: {6}, 2: {6}})) < 1e-6


@pytest.mark.parametrize("first", ["flower", "in-process"])
def test_resume_from_either_side(tmp_path: Path, first: str) -> None:
    """Two rounds on one side, the checkpoint, the last round on the other: bitwise the
    uninterrupted run (the checkpoint format and the config digest are the trainer's)."""
    config = write_config(tmp_path / "run.toml", "p40", "unbiased")
    run_training(load_config(config), tmp_path / "ref")
    out = tmp_path / "split"
    if first == "flower":
        flower_run(config, out, stop_after=2)
        res = run_training(load_config(config), out, resume=True)
    else:
        run_training(load_config(config), out, stop_after=2)
        res = flower_run(config, out, resume=True)
    assert res["rounds_done"] == 3
    a, b = model_pt(out), model_pt(tmp_path / "ref")
    assert all(torch.equal(a[k], b[k]) for k in a)


OD_CNN = 'name = "cnn"\nfamily = "ordered-dropout"\nchannels = [4, 8]'


def od_config(path: Path, rounds: int = 2) -> Path:
    """An ordered-dropout CNN on the digit images, crop-and-flip augmentation, p40 with 4 of
    the 7 nodes drawn per round: the trainer's options the round draws depend on."""
    config = write_config(path, "p40", "unbiased", rounds=rounds, model=OD_CNN)
    text = config.read_text(encoding="utf-8")
    text = text.replace("samples = 1437", 'samples = 1437\naugment = "crop-flip"')
    text = text.replace('policy = "p40"', 'policy = "p40"\nnodes_per_round = 4')
    config.write_text(text, encoding="utf-8")
    return config


def test_ordered_dropout_augmentation_and_fixed_count_as_the_trainer(tmp_path: Path) -> None:
    """Parts as channel slices (only the part's entries travel), the augmentation uniforms and
    the fixed-count draw: bitwise the trainer, also when the trainer resumes a Flower
    checkpoint (the augmentation generator travels in it)."""
    config = od_config(tmp_path / "run.toml")
    got = flower_run(config, tmp_path / "flower")
    ref = run_training(load_config(config), tmp_path / "ref")
    a, b = model_pt(tmp_path / "flower"), model_pt(tmp_path / "ref")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert got["history"] == ref["history"]
    assert all(0 < sum(p > 0 for p in r["picks"]) <= 4 for r in got["history"])
    assert max_diff(a, load_problem(config).experiment.model.state_dict()) > 0.01
    flower_run(config, tmp_path / "split", stop_after=1)
    run_training(load_config(config), tmp_path / "split", resume=True)
    c = model_pt(tmp_path / "split")
    assert all(torch.equal(c[k], b[k]) for k in c)


def test_ordered_dropout_parts_travel_as_slices() -> None:
    """Part P_1 of a width-nested model: only its leading channels travel; writing it changes
    only them; a delta of the wrong shape is refused."""
    from cistheory.flower.parts import delta_problem, part_delta
    from cistheory.train.ordered_dropout import OrderedDropoutCNN

    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    a, b = (OrderedDropoutCNN(1, (4, 8), 3, widths=(0.5, 1.0), generator=g) for g in gens)
    sent = part_state(a, 1)
    assert sent["blocks.1.conv.weight"].shape == (4, 2, 3, 3)  # of (8, 4, 3, 3)
    before = {n: p.detach().clone() for n, p in b.named_parameters()}
    load_part(b, 1, sent)
    masks = a.exit_masks(1)
    for n, p in b.named_parameters():
        src = dict(a.named_parameters())[n]
        assert torch.equal(p[masks[n]], src[masks[n]])
        assert torch.equal(p[~masks[n]], before[n][~masks[n]])
    full = {n: torch.ones_like(p) for n, p in a.named_parameters()}
    back = part_delta(a, 1, full)
    assert delta_problem(a, 1, back) is None
    assert "shape" in str(delta_problem(a, 1, {**back, "heads.0.bias": torch.ones(5)}))
    with pytest.raises(CISInputError, match="P_1 holds"):
        load_part(b, 1, {**sent, "blocks.1.conv.weight": torch.zeros(8, 4, 3, 3)})


def test_resume_restores_the_fault_log_and_refuses_another_config(tmp_path: Path) -> None:
    config = write_config(tmp_path / "run.toml", "deepest", "unbiased")
    out = tmp_path / "flower"
    grid = InProcessGrid({"config": str(config)}, 7, lost={(1, 2): "error"})
    flower_run(config, out, grid, stop_after=1)
    with pytest.raises(CISInputError, match="out-dir"):
        flower_run(config, out)  # never overwrites a run
    got = flower_run(config, out, resume=True)
    assert [(f["round"], f["cis-node"]) for f in got["flower"]["faults"]] == [(1, "2")]
    other = write_config(tmp_path / "other.toml", "p40", "unbiased")
    with pytest.raises(CISInputError, match="another configuration"):
        flower_run(other, out, resume=True)


def test_client_refuses_another_config(tmp_path: Path) -> None:
    """Every node must read the server's config: a different file is an error reply."""
    config = write_config(tmp_path / "run.toml", "deepest", "unbiased")
    other = write_config(tmp_path / "other.toml", "deepest", "multiplicative")
    grid = InProcessGrid({"config": str(other)}, 7)
    with pytest.raises(CISInputError, match="no Flower node"):
        flower_run(config, tmp_path / "flower", grid, connect_timeout=0.5)


def test_node_identity(tmp_path: Path) -> None:
    problem = load_problem(write_config(tmp_path / "run.toml"))
    assert node_index(problem, {"cis-node": "3"}) == 3
    assert node_index(problem, {"cis-node": 3}) == 3
    assert node_index(problem, {"partition-id": 2, "num-partitions": 7}) == 2
    with pytest.raises(CISInputError, match="cis-node = '9'"):
        node_index(problem, {"cis-node": "9"})
    with pytest.raises(CISInputError, match="num-supernodes = 5"):
        node_index(problem, {"partition-id": 2, "num-partitions": 5})
    with pytest.raises(CISInputError, match="node-config"):
        node_index(problem, {})


def test_bad_run_config_and_train_config(tmp_path: Path) -> None:
    config = write_config(tmp_path / "run.toml")
    with pytest.raises(CISInputError, match="round-timeout = 0"):
        ServerOptions.from_run_config(
            {**RUN_CONFIG, "config": str(config), "out-dir": "/x", "round-timeout": 0}
        )
    with pytest.raises(CISInputError, match="unknown key"):
        ServerOptions.from_run_config({"rounds": 3})
    with pytest.raises(CISInputError, match="absolute path"):
        load_problem("run.toml")
    vec = tmp_path / "vec.toml"
    vec.write_text(config.read_text().replace("eval_every = 1", "vectorised = true"))
    with pytest.raises(CISInputError, match=r"train\.vectorised"):
        load_problem(vec.resolve())


def test_part_sum_against_numpy() -> None:
    """Nested parts (exit 1's keys are a subset of exit 3's), no renormalisation: each key
    gets the sum of w * delta over the updates that hold it; buffers the m-weighted mean."""
    from cistheory.train.models import EarlyExitResNet18

    model = EarlyExitResNet18((1, 2, 3), 3, in_channels=1, width=2, norm="batch")
    rng = np.random.default_rng(0)
    before = {k: v.detach().double().numpy().copy() for k, v in model.state_dict().items()}
    updates = []
    for k, w, mass in ((1, 0.7, 3.0), (3, 2.5, 1.0), (1, 0.1, 2.0)):
        delta = {n: rng.normal(size=before[n].shape) for n in model.exit_parameter_names(k)}
        bufs = {n: rng.normal(size=before[n].shape) for n in model.exit_buffer_names(k)}
        bufs = {n: (np.abs(v).round() if "num_batches" in n else v) for n, v in bufs.items()}
        updates.append((delta, w, bufs, mass))
    total = PartSum.zeros(model)
    for delta, w, bufs, mass in updates:
        as_t = {n: torch.tensor(v, dtype=torch.float32) for n, v in delta.items()}
        buf_t = {n: torch.tensor(v).to(before_dtype(model, n)) for n, v in bufs.items()}
        total.add(as_t, w, buf_t, mass)
    total.apply(model, server_lr=0.5)
    after = model.state_dict()
    for name, p in model.named_parameters():
        want = before[name] + 0.5 * sum(w * d[name] for d, w, _, _ in updates if name in d)
        assert np.allclose(p.detach().double().numpy(), want, rtol=0, atol=1e-5)  # float32
    for name, b in model.named_buffers():
        holders = [(bf[name], mass) for _, _, bf, mass in updates if name in bf]
        if not holders:
            assert np.array_equal(b.double().numpy(), before[name])
        elif "num_batches" in name:
            assert b.item() == max(v.item() for v, _ in holders)
        else:
            want = sum(m * v for v, m in holders) / sum(m for _, m in holders)
            assert np.allclose(after[name].double().numpy(), want, rtol=0, atol=1e-5)


def before_dtype(model: torch.nn.Module, name: str) -> torch.dtype:
    return dict(model.named_buffers())[name].dtype


def test_parts_travel_whole() -> None:
    from cistheory.train.models import EarlyExitMLP

    a = EarlyExitMLP(4, (3, 3), 2, generator=torch.Generator().manual_seed(0))
    b = EarlyExitMLP(4, (3, 3), 2, generator=torch.Generator().manual_seed(1))
    load_part(b, 1, part_state(a, 1))
    names = set(a.exit_parameter_names(1))
    for n, p in b.named_parameters():
        assert torch.equal(p, dict(a.named_parameters())[n]) == (n in names)
    with pytest.raises(CISInputError, match="not the tensors of part P_2"):
        load_part(b, 2, part_state(a, 1))


def test_fault_bias_against_the_closed_form(tmp_path: Path) -> None:
    """Unbiased rule, deepest exits, node i always lost: the step shrinks by
    1 - lt_k m_i / M_k (its exit k), exit k's weight becomes (lt_k - lt_k m_i/M_k) / scale."""
    problem = load_problem(write_config(tmp_path / "run.toml"))
    part = problem.experiment.participation
    lt = np.asarray(problem.experiment.lt)
    w = aggregation_weights(part, lt, "unbiased")
    m, q = part.data, part.q
    for i in range(7):
        k = int(np.flatnonzero(q[i])[0])
        share = m[i] / m[q[:, k] > 0].sum()
        f = np.zeros(7)
        f[i] = 1.0
        b = fault_bias(part, w, lt, f)
        scale = 1 - lt[k] * share
        assert b.scale == pytest.approx(scale, rel=1e-12)
        want = lt / scale
        want[k] = lt[k] * (1 - share) / scale
        assert np.allclose(b.lt, want, rtol=1e-12)
        assert b.within_tv[k] == pytest.approx(share, rel=1e-12)
    assert failure_rates([[1, 1], [1, 0], [0, 1]], [{"round": 1, "node": 1}], 2).tolist() == [
        0.0,
        0.5,
    ]


def test_importing_the_package_loads_neither_flower_nor_torch() -> None:
    code = (
        "import sys, cistheory, cistheory.flower; "
        "print([m for m in ('flwr', 'torch') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


def test_results_json_names_the_faults(tmp_path: Path) -> None:
    config = write_config(tmp_path / "run.toml", "deepest", "unbiased", rounds=1)
    grid = InProcessGrid({"config": str(config)}, 7, lost={(1, 4): "error"})
    flower_run(config, tmp_path / "flower", grid)
    doc = json.loads((tmp_path / "flower" / "results.json").read_text())
    (fault,) = doc["flower"]["faults"]
    assert fault["cis-node"] == "4" and fault["kind"] == "error" and fault["exit"] == 1
    assert doc["flower"]["node_map"]["4"] == 9000 + 17 * 4


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["sim", "{config}", "--kill", "3@1"], "--kill"),
        (["deploy", "{config}", "--kill", "3"], "--kill"),
        (["deploy", "{config}", "--kill", "9@1"], "--kill"),
        (["deploy", "{config}", "--client-cpus", "2"], "--client-cpus"),
        (["sim", "{config}", "--stop-after", "0"], "--stop-after"),
        (["sim", "{config}", "--resume"], "out"),
        (["sim", "{config}", "--resume", "--force"], "out"),
        (["sim", "{config}", "--out", "{ran}"], "out"),
        (["sim", "{missing}"], "config"),
    ],
)
def test_cli_bad_input_starts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], field: str
) -> None:
    """One line naming the field, exit status 2, no Flower process, nothing written."""
    from cistheory.cli import main

    config = write_config(tmp_path / "run.toml")
    ran = tmp_path / "ran"
    ran.mkdir()
    (ran / "results.json").write_text("{}")
    subs = {"config": str(config), "ran": str(ran), "missing": str(tmp_path / "no.toml")}
    out = tmp_path / "out"
    args = [a.format(**subs) for a in argv]
    if "--out" not in args:
        args += ["--out", str(out)]
    assert main(["flower", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {field} = "), err
    assert not out.exists() and sorted(p.name for p in ran.iterdir()) == ["results.json"]


def test_app_project_matches_the_run_config() -> None:
    """The app project's run config is RUN_CONFIG, and it has no federations section
    (``flwr run`` would move one into FLWR_HOME and rewrite the file)."""
    import tomllib

    from cistheory.flower.stack import APP_DIR

    doc = tomllib.loads((APP_DIR / "pyproject.toml").read_text(encoding="utf-8"))
    flwr = doc["tool"]["flwr"]
    assert flwr["app"]["config"] == RUN_CONFIG
    assert "federations" not in flwr
    assert flwr["app"]["components"] == {
        "serverapp": "cistheory.flower.apps:server_app",
        "clientapp": "cistheory.flower.apps:client_app",
    }
    assert doc["project"]["dependencies"] == []
