"""The solvers' results share one vocabulary and one serialisation; convex's imports are
acyclic and use only public names across its modules (``convex.results``)."""

from __future__ import annotations

import ast
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cistheory
import convex
from cistheory.bounds import CISConstants
from convex import optimal_lt, optimal_q, solve_joint
from convex.cvx import JointProgram, QProgram

ROOT = Path(__file__).resolve().parent.parent
CONVEX = ROOT / "convex"

# the scipy.optimize.OptimizeResult names every result has
COMMON = ("x", "fun", "success", "status", "message", "nit", "method")

_EL = np.array([[True, True, True], [True, True, False], [False, True, True]])
_FIXED = np.array([-1, -1, 2])
_W = np.where(_EL & (_FIXED < 0)[:, None], [[0.3, 1.0, 2.0]], 0.0)
_JOINT = ([0.2, 0.2, 0.6], [0.0, 0.0, 0.5], _W, _EL, 2.0, 0.5)
_CONST = CISConstants(L=1.0, mu=0.2, Gamma=0.05, sigma=[0.3, 0.2, 0.1], G=[0.2, 0.2, 0.2],
                      gap0=1.0, T=50, eta=0.5)

# name -> (solver call, the named field that ``x`` is)
CASES: dict[str, tuple[Callable[[], Any], str]] = {
    "lt fast": (lambda: optimal_lt([0.6, 0.3, 0.1], [2.0, 1.0, 0.5], 1.0, 1.0), "lt"),
    "lt general": (lambda: optimal_lt([0.8, 0.2, 0.0], [1.0, 1.0, 5.0], 1e-3, 1.0), "lt"),
    "lt cvxpy": (lambda: optimal_lt([0.6, 0.3, 0.1], [2.0, 1.0, 0.5], 1.0, 1.0,
                                    method="cvxpy"), "lt"),
    "q": (lambda: optimal_q([[1.0, 4.0], [2.0, 0.0]], [[True, True], [True, False]],
                            cost=[1.0, 2.0], budget=2.0), "q"),
    "q cvxpy": (lambda: QProgram(_EL, with_budget=True).solve(
        np.where(_EL, 1.0, 0.0), cost=[1.0, 2.0, 3.0], budget=3.0), "q"),
    "joint fast": (lambda: solve_joint(*_JOINT, fixed=_FIXED, q_min=0.05), "lt"),
    "joint b = 0": (lambda: solve_joint(*_JOINT[:5], 0.0, fixed=_FIXED), "lt"),
    "joint cvxpy": (lambda: solve_joint(*_JOINT, fixed=_FIXED, method="cvxpy"), "lt"),
    "joint program": (lambda: JointProgram(_EL, _FIXED).solve(*_JOINT[:3], 2.0, 0.5), "lt"),
    "design": (lambda: convex.design(cistheory.reference_cis("80-15-5", "tiny"), "shallower",
                                     _CONST), "lt"),
}


def _plain(value: Any) -> bool:
    """Only JSON types (dict with str keys, list, str, int, float, bool, None) inside."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or type(value) in {str, int, float, bool}


@pytest.mark.parametrize("case", sorted(CASES))
def test_vocabulary_and_as_dict(case: str) -> None:
    """Every result: the OptimizeResult names, ``x`` the same object as its named field, and
    ``as_dict()`` with every field, JSON-ready (plain types, strict JSON) and equal in value."""
    call, named = CASES[case]
    r = call()
    for name in COMMON:
        assert hasattr(r, name), name
    assert r.x is getattr(r, named)
    assert r.success is True and r.status == "optimal" and isinstance(r.message, str)
    assert isinstance(r.nit, int) and isinstance(r.fun, float)
    d = r.as_dict()
    assert list(d) == [f.name for f in dataclasses.fields(r)]
    assert "x" not in d  # listed under its named field
    assert _plain(d)
    json.dumps(d, allow_nan=False)
    assert np.array_equal(np.asarray(d[named]), getattr(r, named))
    assert d["fun"] == r.fun and d["status"] == r.status and d["nit"] == r.nit


@pytest.mark.parametrize("case", ["lt fast", "lt general", "lt cvxpy", "q", "joint fast",
                                  "joint b = 0", "joint cvxpy", "design"])
def test_certificates_have_one_name(case: str) -> None:
    """``lower_bound`` and ``gap = fun - lower_bound`` wherever a certificate is computed
    (the lower bound is below ``fun`` up to rounding: 1e-12 absolute where ``fun`` is 0)."""
    r = CASES[case][0]()
    assert r.lower_bound <= r.fun + 1e-9 * abs(r.fun) + 1e-12
    assert r.gap == pytest.approx(r.fun - r.lower_bound, rel=1e-12, abs=1e-15)


def test_non_finite_numbers_serialise_as_none() -> None:
    """A budget equal to the minimum spend has an infinite multiplier: ``None`` in JSON."""
    r = optimal_q([[1.0, 2.0]], np.ones((1, 2), dtype=bool), cost=[1.0, 1.0], budget=0.2,
                  q_min=0.1)
    assert r.rho == np.inf
    d = r.as_dict()
    assert d["rho"] is None
    json.dumps(d, allow_nan=False)


def test_design_as_dict_nests_the_bound() -> None:
    r = CASES["design"][0]()
    d = r.as_dict()
    assert d["bound"] == r.bound.as_dict() and d["policy"] == "shallower"
    assert d["terms"] == r.terms


def test_one_spelling_of_serialisation() -> None:
    """No ``to_dict`` / ``to_json`` in convex: ``as_dict`` is the one spelling."""
    for path in sorted(CONVEX.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "def to_dict" not in text and "def to_json" not in text, path.name


def _convex_imports() -> dict[str, list[tuple[str, list[str]]]]:
    """module -> [(imported module, imported names)] for every import statement of convex,
    at any level (a function-level import counts)."""
    out: dict[str, list[tuple[str, list[str]]]] = {}
    for path in sorted(CONVEX.glob("*.py")):
        mod = "convex" if path.stem == "__init__" else f"convex.{path.stem}"
        edges: list[tuple[str, list[str]]] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges += [(alias.name, []) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = "convex" + (f".{base}" if base else "")
                names = [alias.name for alias in node.names]
                if base == "convex" and node.level:  # from . import x
                    edges += [(f"convex.{n}", []) for n in names]
                else:
                    edges.append((base, names))
        out[mod] = edges
    return out


def test_convex_imports_are_acyclic_and_public() -> None:
    """The import graph of convex (function-level imports included) has no cycle; across
    modules only public names are imported; no ``cistheory`` namespace, CLI, registry,
    trainer, symbolic layer, figures or proofs."""
    imports = _convex_imports()
    graph = {m: {t for t, _ in edges if t in imports and t != "convex"}
             for m, edges in imports.items()}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            assert state.get(t) != 1, f"import cycle: {' -> '.join([*path, m, t])}"
            if t not in state:
                visit(t, [*path, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    forbidden = ("cistheory.cli", "cistheory.rules.registry", "cistheory.train",
                 "cistheory.symbolic", "figures", "proofs_check")
    for mod, edges in imports.items():
        for target, names in edges:
            assert target != "cistheory", f"{mod} imports the cistheory namespace"
            assert not any(target == f or target.startswith(f + ".") for f in forbidden), (
                mod, target)
            if target.startswith("convex") and target != mod:
                private = [n for n in names if n.startswith("_")]
                assert private == [], f"{mod} imports private names {private} of {target}"


def test_every_module_has_a_sorted_public_all() -> None:
    """Each convex module lists its public names in a sorted ``__all__`` (isort style, as
    ruff's RUF022: constants, then classes, then functions), all importable;
    ``convex.__all__`` stays importable from the package."""
    import importlib

    def key(n: str) -> tuple[int, str]:
        return (0 if n.isupper() else 1 if n[0].isupper() else 2, n)

    for path in sorted(CONVEX.glob("*.py")):
        name = "convex" if path.stem == "__init__" else f"convex.{path.stem}"
        mod = importlib.import_module(name)
        names = list(mod.__all__)
        assert names == sorted(names, key=key), name
        assert all(hasattr(mod, n) for n in names), name
    for n in convex.__all__:
        assert getattr(convex, n) is not None
