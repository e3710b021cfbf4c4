"""The FLOPs schedule's horizon, and the bound's constants at the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cistheory as ct
from cistheory.cli import main
from figures._experiment import mlp_exit_flops

Capsys = pytest.CaptureFixture[str]
SIGMA = "0.00374,0.00224,0.00101"


def _json(capsys: Capsys, argv: list[str]) -> Any:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_horizon_100_is_the_reference_schedule() -> None:
    """With H = 100, tau_t = (t + 1) / 100 is the reference's 0.01 (t + 1) at every round."""
    r = [0.25, 0.5, 1.0]
    for t in range(100):
        ref = [min(0.01 * (t + 1), x) for x in r]
        want = [x / sum(ref) for x in ref]
        np.testing.assert_allclose(ct.flops_proportional(r, t), want, rtol=1e-15)


def test_flops_differs_from_equal_within_a_20_round_run() -> None:
    """The digits MLP's relative FLOPs are about (0.54, 0.77, 1): the reference's 0.01 (t + 1)
    stays below 0.54 for all 20 rounds of the quick figure (the rule is Equal there), while
    the schedule over the run's own 20 rounds reaches each exit's FLOPs by its last round."""
    r = mlp_exit_flops(64, (32, 32, 32), 10)
    np.testing.assert_allclose(r, [0.54, 0.77, 1.0], atol=0.01)
    equal = np.full(3, 1 / 3)
    old = [np.minimum(0.01 * (t + 1), r) / np.minimum(0.01 * (t + 1), r).sum()
           for t in range(20)]
    assert all(np.allclose(w, equal) for w in old)
    new = [ct.flops_proportional(r, t, horizon=20) for t in range(20)]
    differs = [t for t, w in enumerate(new) if not np.allclose(w, equal)]
    assert differs == list(range(10, 20))  # from round ceil(20 * 0.54) - 1 = 10 on
    np.testing.assert_allclose(new[-1], r / r.sum(), rtol=1e-15)


def test_round_outside_the_horizon_is_refused() -> None:
    with pytest.raises(ct.CISInputError, match=r"round = 20: must be an integer in 0\.\.19"):
        ct.flops_proportional([0.5, 1.0], 20, horizon=20)


def test_weights_and_report_show_the_same_round(capsys: Capsys) -> None:
    w = _json(capsys, ["weights", "reference:60-30-10", "--rule", "flops", "--json"])
    rep = _json(capsys, ["--json", "--split", "60-30-10"])
    assert w["round"] == rep["flops"]["round"] == 99 and w["horizon"] == 100
    assert w["lt"] == rep["splits"][0]["rules"]["flops"]["lt"]


def test_weights_takes_the_round_and_the_flops(capsys: Capsys) -> None:
    out = _json(capsys, ["weights", "reference:60-30-10", "--rule", "flops", "--flops",
                         "0.54,0.77,1", "--round", "4", "--horizon", "20", "--json"])
    assert out["exit_flops"] == [0.54, 0.77, 1.0] and out["round"] == 4
    assert out["lt"] == [1 / 3, 1 / 3, 1 / 3]  # tau = 0.25 is below every exit's FLOPs


def test_bound_optimal_says_which_constants_are_defaults(capsys: Capsys) -> None:
    assert main(["weights", "reference:80-15-5", "--rule", "bound-optimal", "--sigma", SIGMA,
                 "--L", "2", "--json"]) == 0
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert doc["constants"]["given"] == ["L"] and doc["constants"]["L"] == 2.0
    assert doc["constants"]["defaults"] == ["mu", "Gamma", "gap0", "T", "eta"]
    assert out.err.startswith("note: default constants mu=0.1, Gamma=0.1, gap0=1.0, T=100, "
                              "eta=0.1 (convex.reference_constants")


def test_constants_file(tmp_path: Path, capsys: Capsys) -> None:
    path = tmp_path / "constants.toml"
    path.write_text("L = 2.0\nmu = 0.2\nGamma = 0.5\ngap0 = 2.0\nT = 400\neta = 0.05\n")
    base = ["weights", "reference:80-15-5", "--rule", "bound-optimal", "--sigma", SIGMA]
    doc = _json(capsys, [*base, "--constants", str(path), "--json"])
    assert doc["constants"]["defaults"] == []
    assert doc["constants"]["given"] == ["L", "mu", "Gamma", "gap0", "T", "eta"]
    import convex

    const = ct.CISConstants(L=2.0, mu=0.2, Gamma=0.5, gap0=2.0, T=400, eta=0.05,
                            sigma=np.array([0.00374, 0.00224, 0.00101]))
    cis = ct.reference_cis("80-15-5")
    part = ct.deepest_exit(cis)
    want = convex.stable_lt(cis, part, convex.constants_from(part, const)).lt
    np.testing.assert_allclose(doc["lt"], want, rtol=1e-12)
    first = _json(capsys, ["weights", "reference:80-15-5", "--rule", "bound-optimal-first",
                           "--sigma", SIGMA, "--constants", str(path), "--json"])
    want_first = convex.bound_optimal_lt(cis, part, const.sigma, constants=const)
    np.testing.assert_allclose(first["lt"], want_first, rtol=1e-12)
    flagged = _json(capsys, [*base, "--constants", str(path), "--T", "100", "--json"])
    assert flagged["constants"]["T"] == 100  # a flag overrides the file


def test_constants_file_field_checked(tmp_path: Path, capsys: Capsys) -> None:
    path = tmp_path / "constants.json"
    path.write_text(json.dumps({"L": 1.0, "Gama": 0.1}))
    assert main(["weights", "reference:80-15-5", "--rule", "bound-optimal", "--sigma", SIGMA,
                 "--constants", str(path)]) == 2
    assert capsys.readouterr().err == (
        "error: constants.Gama = 0.1: unknown field; did you mean 'Gamma'?\n"
    )


def test_design_takes_a_spec_file(tmp_path: Path, capsys: Capsys) -> None:
    spec = tmp_path / "tree.json"
    spec.write_text(ct.system.reference.shipped_reference_file("60-30-10"))
    first = ["design", "--bound", "first", "--json"]
    ref = _json(capsys, [*first, "--data", "equal"])
    given = _json(capsys, [*first, "--spec", "reference:60-30-10"])
    rows = [r for r in ref["rows"] if r["split"] == "60-30-10"]
    assert [r["lt"] for r in given["rows"]] == [r["lt"] for r in rows]
    from_file = _json(capsys, [*first, "--spec", str(spec)])
    assert [r["rule"] for r in from_file["rows"]] == ["serving-rate", "balanced-adj",
                                                      "bound-optimal-first"]
    assert from_file["rows"][0]["lambda"] == [0.6, 0.3, 0.1]
