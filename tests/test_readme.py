"""The README stays true: its opening commands are CI's, and its library example runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_opening_commands_are_what_ci_runs() -> None:
    setup, tests = (b.strip() for b in _blocks("bash")[:2])
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert setup in ci and tests in ci
    assert "torch==2.13.0" in setup  # the CPU build on this kind of machine


def test_library_example_runs() -> None:
    (code,) = _blocks("python")
    exec(compile(code, "README.md", "exec"), {})
