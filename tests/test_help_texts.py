"""Every option of every command says what it does, in plain text."""

from __future__ import annotations

import argparse
import io
from contextlib import redirect_stdout

import pytest

from cistheory.cli import build_parser
from figures.__main__ import _parser as figures_parser
from proofs_check.__main__ import main as proofs_main


def _parsers() -> dict[str, argparse.ArgumentParser]:
    top = build_parser()
    out = {"cistheory": top}
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            out.update({f"cistheory {k}": v for k, v in action.choices.items()})
    out["python -m figures"] = figures_parser()
    return out


PARSERS = _parsers()


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_option_has_a_help_text(name: str) -> None:
    parser = PARSERS[name]
    bare = [
        "/".join(a.option_strings) or a.dest
        for a in parser._actions
        if not isinstance(a, argparse._SubParsersAction) and not (a.help or "").strip()
    ]
    assert bare == []


def _rendered(name: str) -> str:
    return PARSERS[name].format_help()


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_help_is_plain_text(name: str) -> None:
    text = _rendered(name)
    assert "%%" not in text and "``" not in text and ":math:" not in text


def test_proofs_check_help_is_plain_text() -> None:
    buf = io.StringIO()
    with redirect_stdout(buf), pytest.raises(SystemExit):
        proofs_main(["--help"])
    text = buf.getvalue()
    assert "``" not in text and "%%" not in text
    assert "--instances" in text and "random instances per numeric inequality" in text


def test_every_subcommand_is_described() -> None:
    assert {"cistheory report", "cistheory rates", "cistheory weights", "cistheory design",
            "cistheory validate-rates", "cistheory train"} <= set(PARSERS)
    for name, parser in PARSERS.items():
        if name.startswith("cistheory "):
            assert parser.description, name
