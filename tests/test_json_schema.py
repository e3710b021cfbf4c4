"""Each command's JSON has exactly the keys docs/json-output.md lists, no more, no fewer."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cistheory.cli import main
from cistheory.experiments.validate_rates import ValidationConfig, validate_rates
from proofs_check.__main__ import main as proofs_main

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "json-output.md").read_text(encoding="utf-8")


def _documented() -> dict[str, list[str]]:
    """Section title -> the key paths of its table."""
    out: dict[str, list[str]] = {}
    for block in re.split(r"^## ", DOC, flags=re.M)[1:]:
        title = block.splitlines()[0]
        out[title] = re.findall(r"^\| `([^`]+)` \|", block, flags=re.M)
    return out


DOCUMENTED = _documented()


def _section(prefix: str) -> list[str]:
    (title,) = [t for t in DOCUMENTED if t.startswith(f"`{prefix}")]
    return DOCUMENTED[title]


def _paths(obj: Any, here: str = "") -> Iterator[str]:
    """Key paths of a JSON value: a list of objects is ``key[]``; other values are leaves."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _paths(value, f"{here}.{key}" if here else key)
    elif isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
        for item in obj:
            yield from _paths(item, f"{here}[]")
    else:
        yield here


def _pattern(path: str) -> re.Pattern[str]:
    parts = re.split(r"(<[^>]+>)", path)
    body = "".join(r"[^.\[\]]+" if p.startswith("<") else re.escape(p) for p in parts)
    return re.compile(f"{body}$")


def _check(prefix: str, outputs: list[Any]) -> None:
    documented = _section(prefix)
    patterns = {p: _pattern(p) for p in documented}
    seen = {path for out in outputs for path in _paths(out)}
    undocumented = sorted(s for s in seen if not any(p.match(s) for p in patterns.values()))
    assert undocumented == [], f"{prefix}: keys missing from docs/json-output.md"
    unused = sorted(p for p, rx in patterns.items() if not any(rx.match(s) for s in seen))
    assert unused == [], f"{prefix}: documented keys no output has"


def _cli_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Any:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_patterns_can_fail() -> None:
    """The matcher tells a documented key from an undocumented one."""
    rx = _pattern("rules.<rule>.lt")
    assert rx.match("rules.equal.lt") and not rx.match("rules.equal.lam")
    assert list(_paths({"a": [{"b": 1}], "c": {"d": [1, 2]}})) == ["a[].b", "c.d"]


def test_rates(capsys: pytest.CaptureFixture[str]) -> None:
    _check("cistheory rates", [_cli_json(capsys, ["rates", "reference:80-15-5", "--json"])])


def test_weights(capsys: pytest.CaptureFixture[str]) -> None:
    runs = [
        ["--rule", "equal"],
        ["--rule", "opt-err", "--sigma", "1,2,3"],
        ["--rule", "flops", "--round", "3", "--horizon", "20"],
        ["--rule", "bound-optimal", "--sigma", "1,2,3", "--L", "2"],
    ]
    outs = [_cli_json(capsys, ["weights", "reference:80-15-5", *r, "--json"]) for r in runs]
    _check("cistheory weights", outs)


def test_report(capsys: pytest.CaptureFixture[str]) -> None:
    _check("cistheory report", [_cli_json(capsys, ["--json", "--split", "80-15-5"])])


def test_design(capsys: pytest.CaptureFixture[str]) -> None:
    out = _cli_json(capsys, ["design", "--bound", "first", "--json", "--spec",
                             "reference:60-30-10"])
    _check("cistheory design --bound first", [out])


def test_design_second_generation(capsys: pytest.CaptureFixture[str]) -> None:
    out = _cli_json(capsys, ["design", "--json", "--split", "80-15-5", "--T", "200"])
    _check("cistheory design --json", [out])


def test_validate_rates_grid(monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """A tiny grid with an unstable row (inf exact and bound as strings)."""
    from cistheory.experiments import grid

    tiny = grid.GridConfig(data_splits={"equal": (60, 30, 15)}, rate_splits=("5-15-80",),
                           rules=("serving-rate", "equal"), steps=(0.05, 0.4), horizons=(30,))
    monkeypatch.setattr(grid.GridConfig, "quick", classmethod(lambda cls: tiny))
    out = _cli_json(capsys, ["validate-rates", "--grid", "--quick", "--json", "--quiet"])
    _check("cistheory validate-rates --grid", [out])


def test_validate_rates() -> None:
    """The command prints ``validate_rates(config).as_dict()``; a small configuration."""
    res = validate_rates(ValidationConfig(n_seeds=3, rounds=40, n_records=6)).as_dict()
    _check("cistheory validate-rates --json", [json.loads(json.dumps(res))])


def _train(tmp_path: Path, name: str, data: str, capsys: pytest.CaptureFixture[str]) -> Any:
    cfg = tmp_path / f"{name}.json"
    cfg.write_text(json.dumps({
        "spec": "reference:80-15-5",
        "data": {"name": data, "samples": 140, "test_samples": 40},
        "train": {"rounds": 2, "batch_size": 8},
    }))
    return _cli_json(capsys, ["train", str(cfg), "--out", str(tmp_path / name), "--quiet"])


def test_train_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outs = [
        _train(tmp_path, "cls", "synthetic", capsys),
        _train(tmp_path, "reg", "synthetic-regression", capsys),
    ]
    _check("cistheory train", outs)


def test_proofs_check(capsys: pytest.CaptureFixture[str]) -> None:
    run: Callable[[list[str]], int] = proofs_main
    assert run(["--json", "--instances", "5", "--only", "corollary", "--quiet"]) == 0
    _check("python -m proofs_check", [json.loads(capsys.readouterr().out)])
