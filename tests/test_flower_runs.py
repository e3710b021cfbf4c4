"""CIS training on Flower's own engine, in separate processes.

- Simulation: ``cistheory flower sim`` (``flwr run`` on the local simulation federation) for
  the reference 7-node tree, the digits MLP, 3 rounds, fixed seeds: the final parameters equal
  the in-process trainer's (tolerance 1e-6; they come out bitwise equal) for the
  unbiased and multiplicative rules under deepest and p40 participation.
- Deployment: a SuperLink and 7 SuperNodes as separate processes on localhost, one run of the
  same config for 5 rounds. Two facts come from it: the server's state after 3 rounds (its
  checkpoint) equals the in-process trainer's 3-round result, and once the SuperNode of CIS
  node 3 is SIGKILLed (after round 3) rounds 4 and 5 report the lost update, aggregate what
  arrived with unchanged weights (the independent loop without node 3's updates in rounds 4
  and 5) and the run completes.

Every test checks that no process of its Flower stack is left.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flwr")

import torch

from cistheory.cli import main
from cistheory.flower.runs import FlowerRunSpec, deploy
from cistheory.flower.stack import APP_DIR, RunOutcome, processes_of
from cistheory.train.checkpoint import load_checkpoint
from cistheory.train.config import load_config
from cistheory.train.run import run_training
from tests.flower_support import CASES, max_diff, model_pt, plain_loop, write_config
from tests.test_json_schema import _check


def leftover(out: Path) -> list[int]:
    """Processes of the Flower stack under ``out`` still alive."""
    return processes_of(out / "flower" / "flwr-home")


@pytest.mark.parametrize(("policy", "rule"), CASES)
def test_simulation_matches_the_in_process_trainer(
    tmp_path: Path, policy: str, rule: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "run.toml", policy, rule)
    out = tmp_path / "sim"
    app = (APP_DIR / "pyproject.toml").read_bytes()
    status = main(["flower", "sim", str(config), "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err[-4000:]
    summary = json.loads(captured.out)
    assert summary["ok"] and summary["rounds_done"] == 3 and summary["faults"] == 0
    _check("cistheory flower", [summary])  # the keys docs/json-output.md lists
    assert "Starting Flower Simulation" in captured.err  # it ran on Flower's engine
    ref = tmp_path / "ref"
    run_training(load_config(config), ref)
    assert max_diff(model_pt(out), model_pt(ref)) <= 1e-6
    assert leftover(out) == []
    assert (APP_DIR / "pyproject.toml").read_bytes() == app  # flwr run left the app alone


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One deployment run of 5 rounds; node 3's SuperNode is SIGKILLed after round 3."""
    tmp = tmp_path_factory.mktemp("deploy")
    config = write_config(tmp / "run.toml", "p40", "unbiased", rounds=5)
    out = tmp / "out"
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        if "[cistheory] round 3:" in line:  # the server's state after round 3 (written first)
            shutil.copy(out / "checkpoint.pt", tmp / "after-round-3.pt")

    outcome: RunOutcome = deploy(
        FlowerRunSpec(config, out), kill=("3", 3), on_line=on_line, timeout=1200
    )
    return {"tmp": tmp, "config": config, "out": out, "lines": lines, "outcome": outcome}


def test_deployment_matches_the_in_process_trainer(deployment: dict[str, Any]) -> None:
    """7 SuperNodes, 3 rounds: the same numbers as the in-process trainer (and as the
    simulation) for the same config."""
    tmp = deployment["tmp"]
    assert deployment["outcome"].ok, deployment["outcome"].output[-4000:]
    ck = load_checkpoint(tmp / "after-round-3.pt")
    assert ck["rounds_done"] == 3
    ref = tmp / "ref"
    run_training(load_config(write_config(tmp / "three.toml", "p40", "unbiased", 3)), ref)
    assert max_diff(ck["model"], model_pt(ref)) <= 1e-6
    doc = json.loads((deployment["out"] / "results.json").read_text())
    assert len(set(doc["flower"]["node_map"].values())) == 7  # 7 SuperNodes, 7 Flower ids
    assert "deploy" in deployment["outcome"].output  # the run went to the local SuperLink


def test_killed_supernode_is_reported_and_training_goes_on(deployment: dict[str, Any]) -> None:
    outcome = deployment["outcome"]
    assert outcome.ok, outcome.output[-4000:]
    doc = json.loads((deployment["out"] / "results.json").read_text())
    assert doc["rounds_done"] == 5 and doc["complete"]
    lost = {(f["round"], f["cis-node"], f["kind"], f.get("code")) for f in doc["flower"]["faults"]}
    assert lost == {(4, "3", "error", 5), (5, "3", "error", 5)}  # 5: Flower's NODE_UNAVAILABLE
    console = "\n".join(deployment["lines"])
    for rnd in (4, 5):
        assert f"round {rnd}: FAULT: CIS node 3 (exit 1" in console
    # what arrived, with the weights unchanged: the loop without node 3 in rounds 4 and 5
    ours = model_pt(deployment["out"])
    assert max_diff(ours, plain_loop(deployment["config"], {4: {3}, 5: {3}})) < 1e-6
    assert max_diff(ours, plain_loop(deployment["config"])) > 1e-3  # the fault mattered
    bias = doc["flower"]["bias_observed"]
    assert bias["failure"][3] == pytest.approx(2 / 5) and bias["scale"] < 1


def test_deployment_left_no_process(deployment: dict[str, Any]) -> None:
    assert leftover(deployment["out"]) == []
    assert torch.load(deployment["out"] / "model.pt", weights_only=True)  # outputs written


def test_sigterm_stops_every_process(tmp_path: Path) -> None:
    """``cistheory flower deploy`` stopped by SIGTERM mid-run leaves no Flower process."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    config = write_config(tmp_path / "run.toml", "deepest", "unbiased", rounds=50)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "cistheory", "flower", "deploy", str(config), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "Successfully started run" in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(timeout=300), "the run did not start"
        time.sleep(2)
        assert len(leftover(out)) >= 15  # SuperLink, 7 SuperNodes, their SuperExecs, flwr run
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert leftover(out) == []
    assert not (out / "results.json").exists()
