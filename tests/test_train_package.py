"""The trainer package: lazy exports, and torch stays out of ``import cistheory``."""

from __future__ import annotations

import subprocess
import sys


def test_every_export_resolves() -> None:
    import cistheory.train as train

    assert train.__all__ == sorted(train.__all__)
    for name in train.__all__:
        assert getattr(train, name) is not None, name


def test_import_is_light() -> None:
    """Registering the subcommand (and importing the core) does not import torch."""
    code = (
        "import sys, argparse, cistheory, cistheory.train, cistheory.cli.train as c\n"
        "p = argparse.ArgumentParser(); c.register(p.add_subparsers())\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"
