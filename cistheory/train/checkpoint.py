"""Atomic checkpoints of the federated loop, with every random state.

A checkpoint holds the rounds done, the model's ``state_dict``, the selection generator's
numpy bit-generator state, the batch generator's torch state, the history and free-form
metadata (the run's configuration). :func:`save_checkpoint` writes to a temporary file in
the same directory, flushes and fsyncs it, then ``os.replace``-s it over the target, so a
crash leaves either the old or the new checkpoint, never a torn one. Resuming from it with
:func:`cistheory.train.fedloop.run_federated` (``resume=``) continues bitwise as an
uninterrupted run would.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_write_bytes
from ..errors import CISInputError
from .fedloop import LoopState

__all__ = ["CHECKPOINT_FORMAT", "atomic_write_bytes", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = 1
"""Version of the checkpoint layout."""


def save_checkpoint(
    path: str | Path, state: LoopState, *, meta: dict[str, Any] | None = None
) -> None:
    """Write the loop state atomically to ``path``.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from cistheory.train.models import NestedLinear
    >>> st = LoopState(0, NestedLinear(2, (1, 2)), np.random.default_rng(0), torch.Generator())
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save_checkpoint(f"{d}/c.pt", st, meta={"run": "x"})
    ...     load_checkpoint(f"{d}/c.pt")["meta"]
    {'run': 'x'}
    """
    doc = {
        "format": CHECKPOINT_FORMAT,
        "rounds_done": int(state.rounds_done),
        "model": {k: v.detach().clone() for k, v in state.model.state_dict().items()},
        "selection_rng": state.selection_rng.bit_generator.state,
        "batch_generator": state.batch_generator.get_state(),
        "history": [r.as_dict() for r in state.history],
        "meta": dict(meta or {}),
    }
    buf = io.BytesIO()
    torch.save(doc, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and plain data only).

    Raises
    ------
    CISInputError
        The file is missing or not a checkpoint of this format.
    """
    p = Path(path)
    if not p.is_file():
        raise CISInputError("checkpoint", str(path), "no such file")
    doc = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise CISInputError("checkpoint", str(path), f"not a format-{CHECKPOINT_FORMAT} checkpoint")
    return doc
