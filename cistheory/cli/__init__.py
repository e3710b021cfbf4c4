"""The ``cistheory`` command: one package, one output convention (:mod:`._output`).

Subcommands: ``report`` (the default), ``rates``, ``weights``, ``design``,
``validate-rates``, ``train`` and ``flower``, one module each. User errors
(:class:`~cistheory.errors.CISInputError`, unreadable files) end in one line
``error: FIELD = VALUE: REASON`` on standard error and exit status 2, without a traceback
(a usage error is one line ``error: ...`` too); a closed output pipe ends quietly with
status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import design, flower, rates, report, train, validate, weights
from ._args import join_negative_lists
from ._output import ArgumentParser, run_command

__all__ = ["build_parser", "main"]

_SUBCOMMANDS = (report, rates, weights, design, validate, train, flower)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cistheory`` command."""
    p = ArgumentParser(
        prog="cistheory",
        description="Serving shares, training-weight rules and bounds for Collaborative "
        "Inference Systems. Without a subcommand, runs 'report' on built-in defaults.",
    )
    sub = p.add_subparsers(dest="command")
    for module in _SUBCOMMANDS:
        module.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cistheory`` command; returns the exit status."""
    parser = build_parser()
    args_list = join_negative_lists(list(sys.argv[1:] if argv is None else argv))
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in {"-h", "--help"}):
        args_list = ["report", *args_list]

    def body() -> int:
        args = parser.parse_args(args_list)
        return int(args.func(args))

    return run_command(body)
