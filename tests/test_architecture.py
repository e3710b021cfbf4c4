"""The layout holds: no import cycles, no forbidden upward imports, short functions, and one
home for the rule registry (``docs/architecture.md``).

The import graph is read from the source (every ``import`` statement, module-level and inside
functions, except those under ``if TYPE_CHECKING:``), so a lazy import counts as an edge.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cistheory", "convex", "proofs_check", "figures")
MAX_LINES = 80  # code lines of a function (docstring, comments and blank lines aside)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            out[_module_name(path)] = path
    return out


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _imports(module: str, path: Path) -> set[str]:
    """Everything ``module`` imports: project modules (resolved) and third-party top names."""
    is_pkg = path.name == "__init__.py"
    here = module.split(".") if is_pkg else module.split(".")[:-1]
    out: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
            continue
        base_parts = here[: len(here) - node.level + 1] if node.level else []
        base = ".".join([*base_parts, *([node.module] if node.module else [])])
        for alias in node.names:
            full = f"{base}.{alias.name}" if base else alias.name
            out.add(full if full in MODULES else base)
    return out


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _project_edges(module: str) -> set[str]:
    return {t for t in GRAPH[module] if t in MODULES}


def _imports_any(module: str, prefixes: tuple[str, ...]) -> list[str]:
    return sorted(
        t for t in GRAPH[module] if any(t == p or t.startswith(p + ".") for p in prefixes)
    )


def _in(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components of the project's import graph are singletons."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(_project_edges(v)):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in _project_edges(v):
                cycles.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(MODULES):
        if v not in index:
            visit(v)
    assert cycles == []


# (importer prefix, allowed exceptions, forbidden targets, why)
RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...], str], ...] = (
    (
        "cistheory",
        ("cistheory.rules.registry", "cistheory.cli"),
        ("convex",),
        "only the rule registry and the command line reach up to convex",
    ),
    (
        "cistheory",
        ("cistheory.train", "cistheory.flower"),
        ("torch",),
        "torch loads in the trainer only",
    ),
    ("cistheory", ("cistheory.symbolic",), ("sympy",), "sympy loads in the symbolic layer only"),
    ("cistheory", ("cistheory.flower",), ("flwr",), "Flower loads in cistheory.flower only"),
    ("cistheory", (), ("cvxpy", "matplotlib"), "cvxpy and matplotlib stay out of cistheory"),
    ("cistheory", (), ("figures", "proofs_check"), "the package does not import its users"),
    (
        "cistheory",
        ("cistheory.cli", "cistheory.__main__"),
        ("cistheory.cli",),
        "nothing but the command line (and python -m cistheory) imports the command line",
    ),
    (
        "convex",
        (),
        (
            "cistheory.cli",
            "cistheory.train",
            "cistheory.symbolic",
            "cistheory.rules.registry",
            "cistheory.experiments",
            "figures",
            "proofs_check",
            "torch",
            "sympy",
        ),
        "convex (Section 5) sits below the registry, the trainer and the command line",
    ),
    (
        "cistheory.system",
        (),
        (
            "cistheory.bounds",
            "cistheory.rules",
            "cistheory.experiments",
            "cistheory.train",
            "cistheory.cli",
        ),
        "the system (Sections 1-3) is the bottom layer",
    ),
    (
        "cistheory.bounds",
        (),
        ("cistheory.rules", "cistheory.experiments", "cistheory.train", "cistheory.cli"),
        "the bounds (Section 4) use only the system",
    ),
)


def test_no_forbidden_imports() -> None:
    bad = []
    for module in MODULES:
        for importer, allowed, targets, why in RULES:
            if not _in(module, importer) or _in(module, *allowed):
                continue
            hits = _imports_any(module, targets)
            if hits:
                bad.append(f"{module} imports {hits}: {why}")
    assert bad == []


def test_convex_never_imports_the_facade() -> None:
    """convex imports the submodules it needs, not the ``cistheory`` namespace (whose
    re-exports include the rule registry, which reaches up to convex)."""
    offenders = [m for m in MODULES if _in(m, "convex") and "cistheory" in GRAPH[m]]
    assert offenders == []


def test_the_checks_can_fail() -> None:
    """The graph reader sees a lazy upward import and a cycle when there is one."""
    fake = ast.parse("def f():\n    import convex\n")
    assert [n.names[0].name for n in _import_nodes(fake)] == ["convex"]
    guarded = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n")
    assert [getattr(n, "module", None) for n in _import_nodes(guarded)] == ["typing"]
    assert "cistheory.rules.registry" in GRAPH and "convex" in GRAPH["cistheory.rules.registry"]


def test_import_cistheory_is_light() -> None:
    """``import cistheory`` loads numpy (and scipy) but none of the heavy libraries."""
    heavy = ("torch", "sympy", "cvxpy", "convex", "matplotlib", "flwr")
    code = f"import sys, cistheory; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


def _code_lines(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    doc: set[int] = set()
    first = node.body[0] if node.body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        doc = set(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    count = 0
    for ln in range(node.lineno, (node.end_lineno or node.lineno) + 1):
        text = lines[ln - 1].strip()
        if ln not in doc and text and not text.startswith("#"):
            count += 1
    return count


def _reason_given(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    above = lines[start - 2].strip() if start >= 2 else ""
    return above.startswith("# long:")


def test_functions_are_short() -> None:
    """No function above MAX_LINES code lines unless ``# long: <reason>`` stands above it."""
    long = []
    for module, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = _code_lines(lines, node)
                if n > MAX_LINES and not _reason_given(lines, node):
                    long.append(f"{module}.{node.name}: {n} lines")
    assert long == []


RULE_NAMES = ("serving-rate", "equal", "flops", "opt-err", "balanced-adj", "bound-optimal")


def _rule_mappings(tree: ast.AST) -> list[str]:
    """Places that map a rule name to weights: a dict from rule names to functions or calls,
    an ``if``/``elif`` that tests a value against a rule name (a dispatch), or a
    ``Rule(...)`` definition. (A rule name used for a plot style or as another table's key,
    e.g. the data split ``equal``, is not a mapping to weights.)"""
    found = []
    func_like = (ast.Lambda, ast.Name, ast.Attribute, ast.Call)
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            pairs = zip(node.keys, node.values, strict=True)
            if any(
                isinstance(k, ast.Constant) and k.value in RULE_NAMES and isinstance(v, func_like)
                for k, v in pairs
            ):
                found.append(f"dict at line {node.lineno}")
        elif isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            test = node.test
            consts = [
                c.value for c in [test.left, *test.comparators] if isinstance(c, ast.Constant)
            ]
            if any(c in RULE_NAMES for c in consts):
                found.append(f"comparison at line {node.lineno}")
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            args = [a.value for a in node.args if isinstance(a, ast.Constant)]
            if name == "Rule" and any(a in RULE_NAMES for a in args):
                found.append(f"Rule() at line {node.lineno}")
    return found


@pytest.mark.parametrize("package", ["cistheory", "convex", "figures"])
def test_rule_names_map_to_weights_in_one_place(package: str) -> None:
    """The registry is the only place where a rule's name is turned into weights."""
    places = {}
    for module, path in MODULES.items():
        if not _in(module, package):
            continue
        hits = _rule_mappings(ast.parse(path.read_text(encoding="utf-8")))
        if hits:
            places[module] = hits
    expected = {"cistheory.rules.registry"} if package == "cistheory" else set()
    assert set(places) == expected, places
    if package == "cistheory":
        assert len(places["cistheory.rules.registry"]) == len(RULE_NAMES)


def test_rule_mapping_detector_can_fail() -> None:
    src = 'def f(rule):\n    if rule == "equal":\n        return 1\n'
    assert _rule_mappings(ast.parse(src)) == ["comparison at line 2"]
