"""The command line: JSON forms, human tables, the default report."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

from cistheory.cli import main
from tests.reference_values import BALANCED_ADJ_80_15_5

REF_80 = str(resources.files("cistheory") / "data" / "reference" / "3-layer-tree-80-15-5.json")


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_rates_json_reference_file(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, ["rates", REF_80, "--json"])
    np.testing.assert_allclose(out["lambda"], [0.8, 0.15, 0.05], rtol=1e-12)
    assert out["dropped"] == 0.0
    assert out["served"]["3"] == pytest.approx(2.0)
    assert out["data_given"] is False


def test_weights_balanced_adj_reference(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(
        capsys,
        [
            "weights",
            REF_80,
            "--rule",
            "balanced-adj",
            "--sigma",
            "0.00374,0.00224,0.00101",
            "--json",
        ],
    )
    np.testing.assert_allclose(out["lt"], BALANCED_ADJ_80_15_5, rtol=1e-12)
    np.testing.assert_allclose(out["lambda"], [0.8, 0.15, 0.05], rtol=1e-12)


@pytest.mark.parametrize("rule", ["serving-rate", "equal", "flops", "opt-err", "balanced-adj"])
def test_every_rule_on_simplex(rule: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(
        capsys,
        [
            "weights",
            "reference:45-35-20:tiny",
            "--rule",
            rule,
            "--sigma",
            "0.3,0.2,0.1",
            "--round",
            "50",
            "--json",
        ],
    )
    lt = np.array(out["lt"])
    assert lt.shape == (3,) and np.all(lt >= 0) and abs(lt.sum() - 1) < 1e-12


def test_human_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rates", REF_80]) == 0
    text = capsys.readouterr().out
    assert "lambda" in text and "0.8000" in text and "equal data" in text
    assert main(["weights", "reference:80-15-5", "--rule", "equal"]) == 0
    assert "0.3333" in capsys.readouterr().out


def test_default_report(capsys: pytest.CaptureFixture[str]) -> None:
    rep = _json(capsys, ["--json"])
    assert [e["split"] for e in rep["splits"]][-1] == "80-15-5"
    last = rep["splits"][-1]
    np.testing.assert_allclose(last["rules"]["balanced-adj"]["lt"], BALANCED_ADJ_80_15_5,
                               rtol=1e-12)
    assert len(rep["splits"]) == 7
    for entry in rep["splits"]:
        sr = entry["rules"]["serving-rate"]
        assert sr["bias"] < 1e-20 and sr["chi2"] < 1e-20  # lt = lambda up to rounding
        for r in entry["rules"].values():
            # the tight form of Theorem 1(b) never exceeds the split form
            assert r["total"] <= r["total_split"] * (1 + 1e-12)
            parts = r["generalisation"] + r["bias"] + r["optimisation"]
            assert abs(r["total_split"] - parts) <= 1e-12 * parts
        # the first generation's bound-optimal rule minimises the first generation's bound
        best = entry["rules"]["bound-optimal-first"]["total_split"]
        assert all(best <= r["total_split"] * (1 + 1e-9) for r in entry["rules"].values())


def test_default_report_names_the_bound_generation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--split", "80-15-5"]) == 0
    header = capsys.readouterr().out.split("\n\n")[0]
    assert "Bound terms of the first generation (Corollary" in header
    assert "cistheory design" in header


def test_console_script_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cistheory", "rates", "reference:80-15-5", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout)["lambda"][0] == pytest.approx(0.8)


def test_import_is_light() -> None:
    code = (
        "import sys, cistheory; heavy = [m for m in ('torch', 'cvxpy', 'sympy', "
        "'matplotlib', 'scipy') if m in sys.modules]; print(','.join(heavy))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""


def test_weights_with_explicit_q_table(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    q = {"0": [0.4, 0.4, 0.2], "1": [0.4, 0.6, 0], "2": [0.4, 0.6, 0], "3": [1, 0, 0],
         "4": [1, 0, 0], "5": [1, 0, 0], "6": [1, 0, 0]}
    path = tmp_path / "q.json"
    path.write_text(json.dumps(q))
    out = _json(capsys, ["weights", "reference:80-15-5", "--rule", "opt-err", "--sigma",
                         "1,1,1", "--participation", str(path), "--json"])
    p40 = _json(capsys, ["weights", "reference:80-15-5", "--rule", "opt-err", "--sigma",
                         "1,1,1", "--participation", "p40", "--json"])
    np.testing.assert_allclose(out["v"], p40["v"], rtol=1e-12)  # the same table as p40
    q["3"] = [0.5, 0.5, 0]  # a leaf cannot host exit 2
    path.write_text(json.dumps(q))
    assert main(["weights", "reference:80-15-5", "--rule", "equal", "--participation",
                 str(path)]) == 2
    assert "q[3, 2] = 0.5" in capsys.readouterr().err
