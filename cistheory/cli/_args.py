"""Argument helpers shared by the subcommands (internal)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import CISInputError
from ..system.participation import POLICIES, Participation, explicit, named_policy, q_table
from ..system.tree import CIS

__all__ = ["floats", "participation"]


def floats(text: str, field: str) -> list[float]:
    """Comma-separated numbers, e.g. ``0.1,0.2,-0.3``."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CISInputError(field, text, "expected comma-separated numbers") from None


def participation(cis: CIS, policy: str, field: str = "--participation") -> Participation:
    """A policy name of :data:`~cistheory.system.participation.POLICIES`, or a JSON file with
    the table ``q`` (a list of rows in node order, or an object node id -> row)."""
    if policy in POLICIES:
        return named_policy(cis, policy)
    if policy.endswith(".json"):
        path = Path(policy)
        if not path.is_file():
            raise CISInputError(field, policy, "no such file")
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CISInputError(field, policy, f"cannot parse: {exc}") from None
        return explicit(cis, q_table(cis, table), name=path.stem)
    raise CISInputError(field, policy, f"use one of {', '.join(POLICIES)} or a .json q table")
