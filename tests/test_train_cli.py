"""``cistheory train CONFIG``: outputs, atomic checkpoints, bitwise resume, config errors."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cistheory.cli.train import register
from cistheory.errors import CISInputError
from cistheory.train.checkpoint import load_checkpoint
from cistheory.train.config import build_experiment, load_config, parse_config
from cistheory.train.run import run_training

TOML = """
spec = "reference:80-15-5"
checkpoint_every = 2
[model]
name = "{model}"
[data]
name = "synthetic"
samples = 350
test_samples = 200
[participation]
policy = "p40"
[rule]
name = "balanced-adj"
sigma = [0.00374, 0.00224, 0.00101]
[train]
rounds = 6
tau = 2
lr = 0.3
schedule = "cosine"
final_lr = 0.03
batch_size = 8
momentum = 0.9
weight_decay = 0.0005
vectorised = {vectorised}
"""


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.func(args))


def write_config(tmp_path: Path, model: str = "mlp", vectorised: bool = False) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(TOML.format(model=model, vectorised=str(vectorised).lower()), "utf-8")
    return path


@pytest.mark.parametrize("vectorised", [False, True])
def test_interrupted_then_resumed_equals_uninterrupted(
    tmp_path: Path, vectorised: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, vectorised=vectorised)
    assert cli(["train", str(cfg), "--out", str(tmp_path / "full"), "--quiet"]) == 0
    assert cli(["train", str(cfg), "--out", str(tmp_path / "part"), "--stop-after", "3"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["rounds_done"] == 3 and not first["complete"]
    assert load_checkpoint(tmp_path / "part" / "checkpoint.pt")["rounds_done"] == 3
    assert cli(["train", str(cfg), "--out", str(tmp_path / "part"), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "6/6 rounds" in err  # the progress bar
    full = torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    part = torch.load(tmp_path / "part" / "model.pt", weights_only=True)
    assert full.keys() == part.keys()
    for name in full:
        assert torch.equal(full[name], part[name]), name  # bitwise
    a = json.loads((tmp_path / "full" / "results.json").read_text())
    b = json.loads((tmp_path / "part" / "results.json").read_text())
    assert a["history"] == b["history"] and a["complete"] and b["complete"]
    assert a["test_accuracy"] == b["test_accuracy"]
    # no temporary files left behind by the atomic writes
    assert sorted(p.name for p in (tmp_path / "part").iterdir()) == [
        "checkpoint.pt",
        "history.csv",
        "model.pt",
        "results.json",
    ]


def test_outputs(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, model="nested-linear"))
    seen: list[int] = []
    res = run_training(cfg, tmp_path / "out", on_round=lambda s, n: seen.append(s.rounds_done))
    assert seen == list(range(1, 7))
    assert res["complete"] and res["rounds_done"] == 6
    assert len(res["history"]) == 6 and len(res["final_objectives"]) == 3
    # the test set served through the CIS: shares follow lambda up to request rounding
    assert 0.0 <= res["system_accuracy"] <= 1.0 and res["dropped_requests"] == 0
    # (each of the 7 nodes rounds its served count of the 200 requests to a whole request)
    assert res["served_shares"] == pytest.approx(res["lambda"], abs=7 / 200)
    # the balanced-adj weights: mean of lambda and the normalised 1/v
    lam = res["lambda"]
    v = res["weights"]["v"]
    inv = [1 / x / sum(1 / y for y in v) for x in v]
    # closed form in float64: rounding only
    assert res["weights"]["lt"] == pytest.approx(
        [(a + b) / 2 for a, b in zip(lam, inv, strict=True)], rel=1e-12
    )
    text = (tmp_path / "out" / "history.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 6 and [int(r["round"]) for r in rows] == list(range(6))
    for r in rows:  # 7 nodes: idle + picks per exit add up
        assert (
            sum(int(r[k]) for k in ("idle", "picked_exit_1", "picked_exit_2", "picked_exit_3")) == 7
        )
        assert float(r["F_lt"]) > 0
    # the last row's F_k are the final objectives
    assert [float(rows[-1][f"F_{k}"]) for k in (1, 2, 3)] == pytest.approx(
        res["final_objectives"], rel=1e-12
    )
    ck = load_checkpoint(tmp_path / "out" / "checkpoint.pt")
    assert ck["rounds_done"] == 6 and len(ck["history"]) == 6


def test_resume_refuses_another_config(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    cli(["train", str(cfg), "--out", str(tmp_path / "o"), "--stop-after", "2", "--quiet"])
    other = tmp_path / "other.toml"
    other.write_text(cfg.read_text().replace("lr = 0.3", "lr = 0.2"), "utf-8")
    with pytest.raises(CISInputError, match="another configuration"):
        cli(["train", str(other), "--out", str(tmp_path / "o"), "--resume", "--quiet"])
    with pytest.raises(CISInputError, match="checkpoint"):
        cli(["train", str(cfg), "--out", str(tmp_path / "empty"), "--resume", "--quiet"])


def test_json_config_and_rules(tmp_path: Path) -> None:
    doc = {
        "spec": "reference:45-35-20:tiny",
        "model": {"name": "nested-linear", "dims": [2, 4, 8]},
        "data": {"name": "synthetic-regression", "samples": 2000, "test_samples": 50},
        "participation": {"policy": "shallower", "prob": {"2": 0.5, "3": 0.5}},
        "rule": {"name": "flops"},
        "train": {"rounds": 6, "lr": 0.05, "batch_size": 4, "vectorised": True},
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc), "utf-8")
    exp = build_experiment(load_config(path))
    assert exp.model.task == "regression"
    assert [len(d) for d in exp.node_data] == [1533, 199, 199, 17, 17, 17, 17]
    assert callable(exp.lt)  # the flops rule changes with the round
    res = run_training(load_config(path), tmp_path / "o")
    # the schedule spans the run's 6 rounds: tau_t = (t + 1) / 6, ending at the FLOPs
    r = exp.lt_info["exit_flops"]
    assert exp.lt_info["horizon"] == 6
    for t in (0, 5):
        want = [min((t + 1) / 6, x) for x in r]
        assert res["history"][t]["lt"] == pytest.approx([w / sum(want) for w in want],
                                                        rel=1e-12)
    assert res["history"][5]["lt"] != res["history"][0]["lt"]
    assert "test_mse" in res


def test_bound_optimal_rule_from_convex() -> None:
    pytest.importorskip("convex")
    doc = {
        "spec": "reference:80-15-5",
        "data": {"samples": 700, "test_samples": 10},
        "rule": {"name": "bound-optimal", "sigma": [0.00374, 0.00224, 0.00101]},
    }
    exp = build_experiment(parse_config(doc))
    assert isinstance(exp.lt, np.ndarray) and exp.lt.shape == (3,)
    # on the simplex, to float64 rounding of the solver's normalisation
    assert abs(float(exp.lt.sum()) - 1.0) < 1e-9 and (exp.lt > 0).all()


def test_root_epoch_steps() -> None:
    """Reference schedule: round(m_root / m_i) epochs of ceil(m_i / B) steps each."""
    doc = {
        "spec": "reference:80-15-5:tiny",
        "data": {"samples": 4500, "test_samples": 10},
        "train": {"tau": "root-epoch", "batch_size": 16, "rounds": 1},
    }
    exp = build_experiment(parse_config(doc))
    # tiny: 3450 / 448 / 38 samples; epochs 1, round(7.70) = 8, round(90.8) = 91
    assert [len(d) for d in exp.node_data] == [3450, 448, 448, 38, 38, 38, 38]
    assert exp.fed.tau == (216, 8 * 28, 8 * 28, 91 * 3, 91 * 3, 91 * 3, 91 * 3)
    with pytest.raises(CISInputError, match="root-epoch"):
        parse_config(
            {"spec": "reference:80-15-5", "train": {"tau": "root-epoch", "batch_size": None}}
        )


def test_config_errors(tmp_path: Path) -> None:
    base = {"spec": "reference:80-15-5"}
    with pytest.raises(CISInputError, match="spec"):
        parse_config({})
    with pytest.raises(CISInputError, match=r"model\.name"):
        parse_config({**base, "model": {"name": "vit"}})
    with pytest.raises(CISInputError, match=r"train\.epochs"):
        parse_config({**base, "train": {"epochs": 3}})
    with pytest.raises(CISInputError, match="lr"):
        parse_config({**base, "train": {"lr": -1.0}})
    with pytest.raises(CISInputError, match=r"rule\.sigma"):
        build_experiment(
            parse_config({**base, "rule": {"name": "opt-err"}, "data": {"samples": 100}})
        )
    with pytest.raises(CISInputError, match="config"):
        load_config(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("spec = ", "utf-8")
    with pytest.raises(CISInputError, match="cannot parse"):
        load_config(bad)
