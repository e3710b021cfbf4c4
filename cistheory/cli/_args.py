"""Argument helpers shared by the subcommands (internal)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._fields import Field, check_table, check_value
from ..bounds.corollary import CISConstants
from ..errors import CISInputError
from ..system.participation import POLICIES, Participation, explicit, named_policy, q_table
from ..system.spec import read_document
from ..system.tree import CIS

__all__ = [
    "CONSTANT_FIELDS",
    "CONSTANT_FLAGS",
    "Constants",
    "add_constant_options",
    "constants_from_args",
    "floats",
    "join_negative_lists",
    "participation",
]

LIST_OPTIONS = frozenset({"--sigma", "--flops"})
"""Options that take a comma-separated list, which may start with a minus sign."""

_NEGATIVE_LIST = re.compile(r"^-[0-9.]")


def join_negative_lists(argv: Sequence[str]) -> list[str]:
    """``--sigma -0.1,0.2`` as ``--sigma=-0.1,0.2``, so that the parser reads the list as the
    option's value (and the value is refused for its sign, naming it) instead of as an
    unknown option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok in LIST_OPTIONS and i + 1 < len(argv) and _NEGATIVE_LIST.match(argv[i + 1]):
            out.append(f"{tok}={argv[i + 1]}")
            i += 2
            continue
        out.append(tok)
        i += 1
    return out


def floats(text: str, field: str) -> list[float]:
    """Comma-separated numbers, e.g. ``0.1,0.2,-0.3`` (checked later for their range)."""
    parts = [x.strip() for x in text.split(",")]
    if not parts or any(not x for x in parts):
        raise CISInputError(field, text, "expected comma-separated numbers, e.g. 0.1,0.2,0.3")
    try:
        return [float(x) for x in parts]
    except ValueError:
        raise CISInputError(field, text, "expected comma-separated numbers") from None


def participation(cis: CIS, policy: str, field: str = "--participation") -> Participation:
    """A policy name of :data:`~cistheory.system.participation.POLICIES`, or a JSON file with
    the table ``q`` (a list of rows in node order, or an object node id -> row)."""
    if policy in POLICIES:
        return named_policy(cis, policy)
    if policy.endswith(".json"):
        table = read_document(policy, field)
        return explicit(cis, q_table(cis, table), name=Path(policy).stem)
    raise CISInputError(field, policy, f"use one of {', '.join(POLICIES)} or a .json q table")


CONSTANT_FIELDS: dict[str, Field] = {
    "L": Field("number", above=0.0),
    "mu": Field("number", above=0.0),
    "Gamma": Field("number", low=0.0),
    "gap0": Field("number", low=0.0),
    "T": Field("int", low=1, high=10**9),
    "eta": Field("number", above=0.0),
    "mu_t": Field("number", above=0.0),
    "L_t": Field("number", above=0.0),
    "b": Field("number", above=0.0),
    "gamma": Field("number", above=0.0),
    "B_loss": Field("number", above=0.0),
    "delta": Field("number", above=0.0, below=1.0),
    "sigma": Field("list", min_items=1),
    "G": Field("list", min_items=1),
    "rademacher": Field("list", min_items=1),
}
"""The fields of a constants file: those of :class:`~cistheory.bounds.CISConstants`."""

CONSTANT_FLAGS: dict[str, str] = {
    "L": "smoothness L of every F_k",
    "mu": "strong convexity mu of F_lambda (also mu_t unless the constants file gives it)",
    "Gamma": "heterogeneity Gamma of Theorem 1 (an upper bound)",
    "gap0": "initial gap F(w_0) - F*",
    "T": "number of updates T",
    "eta": "fixed step size eta",
}
"""The constants a flag of the same name sets (the others only in a constants file)."""


@dataclass(frozen=True)
class Constants:
    """The bound's constants a command uses, and where each came from."""

    const: CISConstants
    given: tuple[str, ...]
    defaults: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """The constants and their sources, as the JSON outputs show them."""
        c = self.const
        values: dict[str, Any] = {k: getattr(c, k) for k in ("L", "mu", "Gamma", "gap0", "T")}
        for key in ("eta", "mu_t", "L_t", "b", "gamma"):
            if getattr(c, key) is not None:
                values[key] = getattr(c, key)
        return {**values, "given": list(self.given), "defaults": list(self.defaults)}

    def note(self) -> str:
        """One line saying which constants are defaults (empty if none is)."""
        if not self.defaults:
            return ""
        vals = ", ".join(f"{k}={getattr(self.const, k)}" for k in self.defaults)
        return (
            f"default constants {vals} (convex.reference_constants: illustrative round "
            "numbers, not measurements); give them with --L, --mu, --Gamma, --gap0, --T, "
            "--eta or --constants FILE"
        )


def add_constant_options(p: argparse.ArgumentParser, *, gamma_alias: bool = False) -> None:
    """The options that set the bound's constants: a constants file and one flag each."""
    p.add_argument(
        "--constants",
        metavar="FILE",
        help="JSON or TOML file of the bound's constants (fields L, mu, Gamma, gap0, T, eta, "
        "mu_t, L_t, b, gamma, B_loss, delta, sigma, G, rademacher); flags override it",
    )
    for key, text in CONSTANT_FLAGS.items():
        names = [f"--{key}"] + (["--gamma-bar"] if gamma_alias and key == "Gamma" else [])
        kind = int if key == "T" else float
        p.add_argument(*names, dest=f"const_{key}", type=kind, default=None,
                       help=f"{text} (default: convex.reference_constants)")


def constants_from_args(
    args: argparse.Namespace, sigma: Sequence[float] | None
) -> Constants:
    """The bound's constants: flags, over a constants file, over
    :func:`convex.reference_constants` (each source checked, flags named as given)."""
    import convex

    doc: dict[str, Any] = {}
    if getattr(args, "constants", None):
        doc = check_table(read_document(args.constants, "--constants"), CONSTANT_FIELDS,
                          "constants")
    for key in CONSTANT_FLAGS:
        value = getattr(args, f"const_{key}", None)
        if value is not None:
            doc[key] = check_value(value, CONSTANT_FIELDS[key], f"--{key}")
    if sigma is not None and "sigma" in doc:
        raise CISInputError("--sigma", list(sigma), "the constants file gives sigma too; "
                            "give it once")
    sig = sigma if sigma is not None else doc.pop("sigma", None)
    base = convex.reference_constants(None if sig is None else np.asarray(sig, dtype=float))
    fields = {k: getattr(base, k) for k in ("L", "mu", "Gamma", "gap0", "T", "eta")}
    defaults = tuple(k for k in fields if k not in doc and not (k == "eta" and "b" in doc))
    if "b" in doc or "gamma" in doc:
        fields["eta"] = None
    fields.update(doc)
    given = tuple(k for k in CONSTANT_FIELDS if k in doc)
    return Constants(CISConstants(sigma=base.sigma, **fields), given, defaults)
