"""Write generated CIFAR-format files: python -m figures.synthetic_cifar DIR [--dataset NAME].

Random images (uint8 rows of 3 x 1024 values) with random labels, in the python-pickle layout
of the CIFAR-10 (``cifar-10-batches-py/data_batch_1`` .. ``_5``, ``test_batch``) or CIFAR-100
(``cifar-100-python/train``, ``test``) archives, so that ``python -m figures --paper --tiny
--data-dir DIR`` runs its whole path without the real data. Nothing is learnable from them:
they exercise the code, not the results. The folder must not exist yet or be empty; nothing
a user has is overwritten.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

from cistheory._io import atomic_write_bytes
from cistheory.cli._output import ArgumentParser, emit, run_command
from cistheory.errors import CISInputError

__all__ = ["main", "write_cifar"]

_LAYOUT = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{j}" for j in range(1, 6)], "test_batch"),
    "cifar100": ("cifar-100-python", ["train"], "test"),
}


def write_cifar(
    directory: Path, dataset: str = "cifar10", *, per_file: int = 50, test: int = 40, seed: int = 0
) -> Path:
    """Write the files of ``dataset`` under ``directory`` and return the archive's folder.

    Each training file holds ``per_file`` images, the test file ``test``; labels are drawn
    uniformly from the dataset's classes (CIFAR-100: fine labels 0..99, coarse 0..19).

    Examples
    --------
    >>> import tempfile
    >>> from cistheory.train.data import load_cifar
    >>> with tempfile.TemporaryDirectory() as d:
    ...     folder = write_cifar(Path(d) / "data", per_file=4, test=2)
    ...     len(load_cifar(folder)), len(load_cifar(folder, train=False))
    (20, 2)
    """
    if dataset not in _LAYOUT:
        raise CISInputError("dataset", dataset, f"use one of {sorted(_LAYOUT)}")
    for name, value in (("per_file", per_file), ("test", test)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CISInputError(name, value, "must be a positive integer")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise CISInputError("directory", str(directory), "exists and is not an empty folder")
    sub, train_names, test_name = _LAYOUT[dataset]
    folder = directory / sub
    rng = np.random.default_rng(seed)
    for name in [*train_names, test_name]:
        n = test if name == test_name else per_file
        doc: dict[bytes, object] = {b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)}
        if dataset == "cifar10":
            doc[b"labels"] = [int(v) for v in rng.integers(0, 10, size=n)]
        else:
            doc[b"fine_labels"] = [int(v) for v in rng.integers(0, 100, size=n)]
            doc[b"coarse_labels"] = [int(v) for v in rng.integers(0, 20, size=n)]
        atomic_write_bytes(folder / name, pickle.dumps(doc))
    return folder


def _run(args: argparse.Namespace) -> int:
    folder = write_cifar(args.directory, args.dataset, per_file=args.per_file, test=args.test)
    emit(f"wrote generated {args.dataset} files (random images, random labels) to {folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = ArgumentParser(
        prog="python -m figures.synthetic_cifar",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("directory", type=Path, help="a new or empty folder")
    ap.add_argument("--dataset", choices=sorted(_LAYOUT), default="cifar10")
    ap.add_argument("--per-file", type=int, default=50, help="images per training file")
    ap.add_argument("--test", type=int, default=40, help="images in the test file")
    return run_command(lambda: _run(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
