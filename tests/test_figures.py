"""Every figure script on its tiny configuration: the data it writes, not the pixels."""

from __future__ import annotations

import importlib
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

import figures
from figures.__main__ import main as figures_main


def _run(name: str, out: Path) -> tuple[dict, list[Path]]:
    mod = importlib.import_module(f"figures.{name}")
    data = mod.compute("tiny", out, seed=0)
    paths = mod.plot(data, out)
    for p in [data, *paths]:
        assert p.is_file() and p.stat().st_size > 0
    assert {p.name for p in [data, *paths]} <= set(mod.SPEC.outputs)
    for fname in mod.SPEC.outputs:
        assert (out / fname).is_file(), fname
    return json.loads(data.read_text()), paths


def test_rules_weights(tmp_path: Path) -> None:
    doc, _ = _run("rules_weights", tmp_path)
    rows = doc["rows"]
    for split in {r["split"] for r in rows}:
        for rule in {r["rule"] for r in rows}:
            lt = [r["lt"] for r in rows if r["split"] == split and r["rule"] == rule]
            assert abs(sum(lt) - 1) < 1e-12
    sr = [r for r in rows if r["rule"] == "serving-rate"]
    assert all(abs(r["lt"] - r["lambda"]) < 1e-12 for r in sr)


def test_bound_path(tmp_path: Path) -> None:
    doc, _ = _run("bound_path", tmp_path)
    for panel in doc["panels"]:
        rows = panel["rows"]
        assert rows[0]["s"] == 0.0 and rows[0]["bias"] < 1e-20  # Serving Rate: no bias
        chi = [r["chi2"] for r in rows]
        assert all(b >= a - 1e-15 for a, b in itertools.pairwise(chi))
        # the bound-optimal design is at least as good as every point of the path
        best = panel["bound_optimal"]["total_split"]
        assert all(best <= r["total_split"] * (1 + 1e-9) for r in rows)


def test_convergence(tmp_path: Path) -> None:
    doc, _ = _run("convergence", tmp_path)
    assert {"under_bound", "slope_ok", "floor_order_matches_chi2"} <= set(doc["checks"])
    for run in doc["runs"]:
        m, c, b = (np.asarray(run[k]) for k in ("measured", "ci", "bound"))
        assert np.all(m + c <= b)
        # the second-generation bound: above the measured mean where it is finite (None:
        # refused), certified for the fixed step, and at t = 0 with lt = lambda the exact
        # initial error (Theorem D's identity is an equality there)
        new = np.asarray([np.inf if x is None else x for x in run["bound_new"]], dtype=float)
        assert np.all(m <= new * (1 + 1e-9))
        if run["schedule"] == "fixed":
            assert np.isfinite(new).all()
            if run["lt_rule"] == "serving-rate":
                assert new[0] == pytest.approx(m[0], rel=1e-9)


def test_ranking(tmp_path: Path) -> None:
    doc, _ = _run("ranking", tmp_path)
    rows = doc["rows"]
    assert len(rows) == 2 * 2 * 2 * 2 and doc["summary"]["violations"] == 0
    for r in rows:
        if not r["stable"]:
            assert r["bound"] == "inf"


def test_accuracy_and_resume(tmp_path: Path) -> None:
    doc, _ = _run("accuracy", tmp_path)
    assert len(doc["runs"]) == 4
    for r in doc["runs"]:
        assert 0.0 <= r["accuracy"] <= 1.0
        np.testing.assert_allclose(sum(r["shares"]), 1.0)
    for c in doc["summary"]:
        if c["rule"] == "serving-rate":
            assert c["diff_vs_serving_rate"] == 0.0 and c["diff_ci"] == 0.0
        assert "diff_vs_serving_rate" in c
    cache = sorted((tmp_path / "cache" / "accuracy").glob("*"))
    assert cache
    mtimes = {p: p.stat().st_mtime_ns for p in cache}
    again, _ = _run("accuracy", tmp_path)  # resumes from the cache: nothing is retrained
    assert again["runs"] == doc["runs"]
    assert {p: p.stat().st_mtime_ns for p in cache} == mtimes


def test_accuracy_reproducible(tmp_path: Path) -> None:
    from figures import accuracy

    a = json.loads(accuracy.compute("tiny", tmp_path / "a", seed=3, progress=False).read_text())
    b = json.loads(accuracy.compute("tiny", tmp_path / "b", seed=3, progress=False).read_text())
    assert a["runs"] == b["runs"]


def test_p40(tmp_path: Path) -> None:
    doc, _ = _run("p40", tmp_path)
    assert {r["participation"] for r in doc["runs"]} == {"deepest", "p40"}
    kinds = {(b["kind"], b["policy"]) for b in doc["bounds"]}
    assert ("optimal", "deepest") in kinds and ("optimal", "shallower") in kinds
    assert all(b["total"] > 0 for b in doc["bounds"])
    # the optimal deepest-exit design is no worse, in the form it minimises, than a rule's lt
    for split in {b["split"] for b in doc["bounds"]}:
        best = next(b["total_split"] for b in doc["bounds"]
                    if b["split"] == split and b["kind"] == "optimal" and b["policy"] == "deepest")
        at_rule = [b["total_split"] for b in doc["bounds"]
                   if b["split"] == split and b["kind"] == "at rule" and b["policy"] == "deepest"]
        assert all(best <= v * (1 + 1e-9) for v in at_rule)
    # the second generation's verdict: deepest-exit training has L_s = 0 (fixed nodes)
    for v in doc["verdicts"]:
        assert v["verdict"] == ("certified" if v["margin"] < 1 else "refused")
        if v["policy"] == "deepest":
            assert v["Ls"] == 0.0
        else:
            assert v["Ls"] > 0.0


def test_q_heatmap(tmp_path: Path) -> None:
    doc, _ = _run("q_heatmap", tmp_path)
    q = np.asarray(doc["design"]["q"])
    cap = np.asarray(doc["capacity"])
    assert q.shape == (100, 3)
    assert np.all(q.sum(axis=1) <= 1 + 1e-9)
    assert np.all(q[np.arange(3)[None, :] >= cap[:, None]] == 0)  # no exit a node lacks
    assert doc["design"]["status"] == "optimal"


def test_runner_only_and_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert set(figures.FIGURES) == {"rules_weights", "bound_path", "convergence", "ranking",
                                    "accuracy", "p40", "q_heatmap"}
    assert figures_main(["--tiny", "--only", "rules_weights", "--out", str(tmp_path)]) == 0
    assert "rules_weights" in capsys.readouterr().out
    assert figures_main(["--plot-only", "--only", "rules_weights", "--out", str(tmp_path)]) == 0


def test_parallel_trainings_equal_serial(tmp_path: Path) -> None:
    """Each training is seeded on its own: two worker processes give the serial records."""
    from figures import accuracy
    from figures._experiment import RunSpec, run_grid

    cfg = accuracy.CONFIG["tiny"]
    specs = [RunSpec(split, "tiny", rule, 5, setting=cfg["setting"])
             for split in cfg["splits"] for rule in cfg["rules"]]
    serial = run_grid(specs, tmp_path / "serial", workers=1)
    parallel = run_grid(specs, tmp_path / "parallel", workers=2)
    assert serial == parallel
