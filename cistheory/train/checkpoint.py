"""Atomic checkpoints of the federated loop, with every random state.

A checkpoint holds the rounds done, the model's ``state_dict`` (on the CPU, wherever the run
trains), the selection generator's numpy bit-generator state, the batch generator's torch
state (and the augmentation generator's, when the run augments), the history and free-form
metadata (the digest of the run's configuration). :func:`save_checkpoint` writes to a
temporary file in the same directory, flushes and fsyncs it, then ``os.replace``-s it over
the target, so a crash leaves either the old or the new checkpoint, never a torn one.
Resuming from it with :func:`cistheory.train.fedloop.run_federated` (``resume=``) continues
bitwise as an uninterrupted run would.

The file is a header line ``cistheory-checkpoint <format> sha256:<hex>``, then the
``torch.save`` payload; :func:`load_checkpoint` checks the header and the payload's SHA-256
before unpickling anything (tensors and plain data only), so an empty, truncated, altered or
foreign file is refused with one clear error instead of being half-read.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_write_bytes
from ..errors import CISInputError
from .fedloop import LoopState

__all__ = ["CHECKPOINT_FORMAT", "atomic_write_bytes", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = 2
"""Version of the checkpoint layout (2: a header with the payload's SHA-256)."""

_MAGIC = b"cistheory-checkpoint"
_KEYS = frozenset(
    {"format", "rounds_done", "model", "selection_rng", "batch_generator", "history", "meta"}
)


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
    doc: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "rounds_done": int(state.rounds_done),
        "model": {k: v.detach().cpu().clone() for k, v in state.model.state_dict().items()},
        "selection_rng": state.selection_rng.bit_generator.state,
        "batch_generator": state.batch_generator.get_state(),
        "history": [r.as_dict() for r in state.history],
        "meta": dict(meta or {}),
    }
    if state.augment_generator is not None:
        doc["augment_generator"] = state.augment_generator.get_state()
    buf = io.BytesIO()
    torch.save(doc, buf)
    payload = buf.getvalue()
    header = b"%s %d sha256:%s\n" % (
        _MAGIC, CHECKPOINT_FORMAT, hashlib.sha256(payload).hexdigest().encode()
    )
    atomic_write_bytes(path, header + payload)


def load_checkpoint(path: str | Path, *, config_digest: str | None = None) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and plain data only).

    Parameters
    ----------
    path : str or Path
    config_digest : str, optional
        The digest of the configuration the checkpoint must belong to
        (:func:`cistheory.train.config.config_digest`).

    Raises
    ------
    CISInputError
        The file is missing, empty, truncated, altered, not a checkpoint of this format, or
        of another configuration.
    """
    p = Path(path)
    if not p.is_file():
        raise CISInputError("checkpoint", str(path), "no such file")
    raw = p.read_bytes()
    head, sep, payload = raw.partition(b"\n")
    parts = head.split(b" ")
    if not sep or len(parts) != 3 or parts[0] != _MAGIC or not parts[2].startswith(b"sha256:"):
        raise CISInputError("checkpoint", str(path), "not a cistheory checkpoint (no header)")
    if parts[1] != str(CHECKPOINT_FORMAT).encode():
        raise CISInputError(
            "checkpoint", str(path), f"format {parts[1].decode(errors='replace')}, "
            f"this version reads format {CHECKPOINT_FORMAT}"
        )
    if hashlib.sha256(payload).hexdigest().encode() != parts[2][len(b"sha256:") :]:
        raise CISInputError(
            "checkpoint", str(path), "corrupt: its checksum does not match (truncated or altered)"
        )
    try:
        doc = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError) as exc:
        raise CISInputError("checkpoint", str(path), f"cannot be read ({exc})") from None
    if (
        not isinstance(doc, dict)
        or set(doc) - {"augment_generator"} != _KEYS
        or doc["format"] != CHECKPOINT_FORMAT
    ):
        raise CISInputError("checkpoint", str(path), f"not a format-{CHECKPOINT_FORMAT} checkpoint")
    if config_digest is not None and doc["meta"].get("config_digest") != config_digest:
        raise CISInputError("checkpoint", str(path), "belongs to another configuration")
    return doc
