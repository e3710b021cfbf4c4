"""Bad input: a clear error naming the field and the value, never a traceback at the CLI."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cistheory as ct
from cistheory.cli import main
from cistheory.system.reference import reference_spec_dict


def _ref() -> dict[str, Any]:
    return copy.deepcopy(reference_spec_dict("80-15-5"))


def _project() -> dict[str, Any]:
    return ct.cis_to_spec(ct.reference_cis("80-15-5", "equal"))


def _spec_with(doc: dict[str, Any], tmp_path: Path) -> str:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(doc, allow_nan=True))
    return str(path)


def _mutate(kind: str) -> dict[str, Any]:
    if kind == "negative-rate":
        d = _ref()
        d["rates"]["arrival"]["3"] = -1.0
    elif kind == "nan-rate":
        d = _ref()
        d["rates"]["departure"]["4"] = math.nan
    elif kind == "forwards-too-much":
        d = _ref()
        d["rates"]["departure"]["1"] = 5.0
    elif kind == "cycle":
        d = _project()
        d["nodes"][0]["parent"] = "6"  # root's parent becomes a leaf; no root left
        d["nodes"][1]["parent"] = None  # a new root, and 0 -> 6 -> 2 -> 0 is a cycle
    elif kind == "two-roots":
        d = _project()
        d["nodes"][2]["parent"] = None
    elif kind == "unknown-node":
        d = _ref()
        d["toplogy_as_edges"].append([2, 99])
    elif kind == "exit-beyond-capacity":
        d = _project()
        d["exits"] = 2  # the root claims 3 exits but the model has 2
    elif kind == "missing-field":
        d = _ref()
        del d["rates"]["departure"]
    elif kind == "missing-node-rate":
        d = _project()
        del d["nodes"][3]["arrival"]
    elif kind == "root-forwards":
        d = _ref()
        d["rates"]["departure"]["0"] = 0.1
    else:  # pragma: no cover
        raise AssertionError(kind)
    return d


CASES = {
    "negative-rate": ("rates.arrival.3", "-1.0"),
    "nan-rate": ("rates.departure.4", "nan"),
    "forwards-too-much": ("forward[1]", "5.0"),
    "cycle": ("parent", "cycle"),
    "two-roots": ("parent", "2 roots"),
    "unknown-node": ("toplogy_as_edges[entry 7]", "99"),
    "exit-beyond-capacity": ("capacity[0]", "3"),
    "missing-field": ("rates.departure", "missing"),
    "missing-node-rate": ("nodes[3].arrival", "missing"),
    "root-forwards": ("forward[0]", "0.1"),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_spec_errors_name_field_and_value(kind: str, tmp_path: Path) -> None:
    field, value = CASES[kind]
    path = _spec_with(_mutate(kind), tmp_path)
    with pytest.raises(ct.CISInputError) as err:
        ct.load_spec(path)
    msg = str(err.value)
    assert field in msg and value in msg.lower(), msg


@pytest.mark.parametrize("kind", sorted(CASES))
def test_cli_reports_error_without_traceback(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _spec_with(_mutate(kind), tmp_path)
    assert main(["rates", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert CASES[kind][0] in err


def _cis() -> ct.CIS:
    return ct.reference_cis("80-15-5")


def test_probability_above_one() -> None:
    q = ct.deepest_exit(_cis()).q.copy()
    q[3, 0] = 1.5
    with pytest.raises(ct.CISInputError, match=r"q\[3, 1\] = 1\.5"):
        ct.explicit(_cis(), q)


def test_negative_probability() -> None:
    q = ct.deepest_exit(_cis()).q.copy()
    q[3, 0] = -0.1
    with pytest.raises(ct.CISInputError, match=r"q\[3, 1\] = -0\.1"):
        ct.explicit(_cis(), q)


def test_row_sum_above_one() -> None:
    q = ct.deepest_exit(_cis()).q.copy()
    q[0] = [0.5, 0.5, 0.5]
    with pytest.raises(ct.CISInputError, match=r"q\[0\].*row sums to 1\.5"):
        ct.explicit(_cis(), q)


def test_exit_a_node_cannot_host() -> None:
    q = ct.deepest_exit(_cis()).q.copy()
    q[3] = [0.5, 0.5, 0.0]
    with pytest.raises(ct.CISInputError, match=r"q\[3, 2\] = 0\.5: node 3 hosts exits up to 1"):
        ct.explicit(_cis(), q)


def test_exit_with_share_but_no_trainer() -> None:
    cis = _cis()
    q = ct.deepest_exit(cis).q.copy()
    q[0] = [0.0, 1.0, 0.0]  # the root trains exit 2, nobody trains exit 3
    part = ct.explicit(cis, q)
    with pytest.raises(ct.CISInputError, match=r"lambda\[3\] = 0\.05.*no node"):
        part.check_trainable(cis.lam)


@pytest.mark.parametrize("bad", [0.0, -0.1, math.nan])
def test_non_positive_noise_constants(bad: float) -> None:
    part = ct.deepest_exit(_cis())
    with pytest.raises(ct.CISInputError, match=r"sigma\[2\]"):
        ct.variance_coefficients(part, [0.1, bad, 0.2])


def test_cli_bad_sigma(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["weights", "reference:80-15-5", "--rule", "opt-err", "--sigma", "0.1,0,0.2"])
    assert code == 2
    assert "sigma[2] = 0.0" in capsys.readouterr().err


def test_cli_rule_needs_sigma(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "reference:80-15-5", "--rule", "balanced-adj"]) == 2
    assert "--sigma" in capsys.readouterr().err


def test_lt_outside_simplex() -> None:
    part = ct.deepest_exit(_cis())
    with pytest.raises(ct.CISInputError, match="lt"):
        ct.beta(part, [0.5, 0.6, 0.1])


def test_nan_in_array_api() -> None:
    with pytest.raises(ct.CISInputError, match=r"arrival\[1\] = nan"):
        ct.CIS.build(parent=[-1, 0], capacity=[2, 1], arrival=[0, np.nan], forward=[0, 0])


def test_self_parent() -> None:
    with pytest.raises(ct.CISInputError, match="own parent"):
        ct.CIS.build(parent=[-1, 1], capacity=[2, 1], arrival=[0, 1], forward=[0, 0])


def test_no_served_request() -> None:
    with pytest.raises(ct.CISInputError, match="no request is served"):
        ct.CIS.build(parent=[-1, 0], capacity=[2, 1], arrival=[0, 0], forward=[0, 0])


def test_unknown_split_and_data() -> None:
    with pytest.raises(ct.CISInputError, match="split"):
        ct.reference_cis("80-15")
    with pytest.raises(ct.CISInputError, match="data"):
        ct.reference_cis("80-15-5", "huge")
