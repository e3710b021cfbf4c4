"""The paper's path end to end on generated CIFAR-format files (python -m figures --paper --tiny),
and the shipped reference configurations."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

import cistheory as ct
from cistheory.train.config import SHIPPED_CONFIGS, load_config, root_epoch_steps
from figures.__main__ import main as figures_main
from figures.synthetic_cifar import main as synthetic_main
from figures.synthetic_cifar import write_cifar


def test_shipped_configurations_are_the_reference_hyper_parameters() -> None:
    assert len(SHIPPED_CONFIGS) == 10
    for name in SHIPPED_CONFIGS:
        cfg = load_config(f"paper:{name}")
        tr = cfg["train"]
        assert (tr["rounds"], tr["lr"], tr["momentum"], tr["weight_decay"]) == (100, 0.1, 0.9,
                                                                                 0.0005)
        assert (tr["batch_size"], tr["schedule"], tr["final_lr"]) == (128, "cosine", 0.01)
        assert tr["tau"] == "root-epoch" and cfg["data"]["augment"] == "crop-flip"
        assert cfg["data"]["samples"] == 45000
        ds, variant = name.split("-", 1)
        exits = [3, 9, 17] if ds == "cifar10" else [9, 13, 17]
        assert cfg["model"]["exits"] == exits
        key = "-".join(map(str, exits))
        assert cfg["rule"]["sigma"] == list(ct.REFERENCE_SIGMA[key])
        np.testing.assert_allclose(cfg["rule"]["exit_flops"], ct.resnet18_exit_flops(tuple(exits)))
        assert cfg["participation"]["policy"] == ("p40" if variant.endswith("p40") else "deepest")
        cis = ct.load_spec(cfg["spec"])
        assert cis.n_nodes == (100 if variant.startswith("100") else 7)
    # local epochs: every node takes about one root epoch of steps (the equal split)
    cis = ct.load_spec(load_config("paper:cifar10-7node-equal")["spec"])
    steps = root_epoch_steps(cis.data, 0, 128)
    assert steps == (118, 118, 118, 120, 120, 120, 120)
    text = (Path(ct.__file__).parent / "data" / "configs" / "cifar10-7node-tiny.toml").read_text()
    assert tomllib.loads(text)["spec"] == "reference:80-15-5:tiny"


@pytest.mark.parametrize("family", ["early-exit", "ordered-dropout"])
def test_paper_grid_tiny_end_to_end_and_resumes(
    tmp_path: Path, family: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_cifar(tmp_path / "cifar")
    out = tmp_path / "out"
    argv = ["--paper", "--tiny", "--data-dir", str(tmp_path / "cifar"), "--out", str(out),
            "--family", family]
    assert figures_main(argv) == 0
    doc = json.loads((out / "paper.json").read_text())
    for name in ("paper.json", "paper.csv", "paper.png", "paper.pdf"):
        assert (out / name).is_file()
    runs = doc["runs"]
    assert len(runs) == 2 * 2 * 2  # data configurations x splits x rules
    assert {r["participation"] for r in runs} == {"deepest", "p40"}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in runs)
    # Equal weights do not depend on the rate split: one training serves both splits
    for variant in ("7node-equal", "7node-tiny-p40"):
        eq = {r["training"] for r in runs if r["data"] == variant and r["rule"] == "equal"}
        sr = {r["training"] for r in runs if r["data"] == variant and r["rule"] == "serving-rate"}
        assert len(eq) == 1 and len(sr) == 2
    assert doc["config"]["trainings"] == 6
    folders = sorted((out / "cache" / "paper").iterdir())
    assert len(folders) == 6
    for f in folders:
        res = json.loads((f / "results.json").read_text())
        assert res["complete"] and res["rounds_done"] == 2
        assert res["config"]["model"].get("family", "early-exit") == family
        assert len(res["per_node"]) == 7 and len(res["per_exit"]) == 3
    stamps = {p: p.stat().st_mtime_ns for f in folders for p in f.iterdir()}
    capsys.readouterr()
    assert figures_main(argv) == 0  # resumes: every training is reused
    assert {p: p.stat().st_mtime_ns for f in folders for p in f.iterdir()} == stamps
    assert json.loads((out / "paper.json").read_text())["runs"] == runs


def test_paper_resumes_an_interrupted_training(tmp_path: Path) -> None:
    """A training interrupted after its first round continues from its checkpoint."""
    from figures.paper import PaperOptions, _train, cell_config, training_key

    folder = write_cifar(tmp_path / "cifar")
    opts = PaperOptions(data_dir=folder, size="tiny", device="cpu")
    cfg = cell_config(opts, "7node-equal", "80-15-5", "serving-rate", 0)
    folder = tmp_path / f"train-{training_key(cfg)}"
    from cistheory.train.run import run_training

    run_training(cfg, folder, stop_after=1)
    assert not json.loads((folder / "results.json").read_text())["complete"]
    out = _train(cfg, folder)
    res = json.loads((folder / "results.json").read_text())
    assert res["complete"] and res["rounds_done"] == 2
    whole = tmp_path / "whole"
    run_training(cfg, whole)
    assert json.loads((whole / "results.json").read_text())["final_objectives"] == \
        res["final_objectives"]
    assert out["logits"].shape == (40, 3, 10)


def test_paper_refuses_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert figures_main(["--paper", "--tiny", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --data-dir = ")
    assert figures_main(["--paper", "--tiny"]) == 2


def test_generated_files_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cistheory.train.data import load_cifar

    assert synthetic_main([str(tmp_path / "d"), "--dataset", "cifar100", "--per-file", "7"]) == 0
    assert "cifar-100-python" in capsys.readouterr().out
    train = load_cifar(tmp_path / "d" / "cifar-100-python", variant="cifar100")
    assert train.x.shape == (7, 3, 32, 32) and int(train.y.max()) < 100
    before = {p: p.read_bytes() for p in (tmp_path / "d").rglob("*") if p.is_file()}
    # an existing, non-empty folder is refused, nothing written
    assert synthetic_main([str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: directory = {str(tmp_path / 'd')!r}: exists and is not an empty folder\n"
    assert {p: p.read_bytes() for p in (tmp_path / "d").rglob("*") if p.is_file()} == before
    assert synthetic_main([str(tmp_path / "e"), "--per-file", "0"]) == 2
    assert capsys.readouterr().err == "error: per_file = 0: must be a positive integer\n"
    assert not (tmp_path / "e").exists()
