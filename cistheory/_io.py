"""The one writer of files for the whole package (internal).

A result file is written to a fresh temporary file in the target's folder, flushed and
fsynced, then renamed over the target (``os.replace``, atomic on POSIX), and the folder is
fsynced: an interruption leaves either the old file or the new one, never a torn one.
:func:`check_writable` refuses a target before any work is done.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import CISInputError

__all__ = ["atomic_write_bytes", "atomic_write_text", "check_writable"]


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def check_writable(path: str | Path, field: str, *, create_parent: bool = False) -> Path:
    """Check that a file can be written at ``path`` (before computing what goes there).

    The folder must exist (or, with ``create_parent``, be creatable under an existing
    folder) and be writable, and ``path`` must not be a folder.

    Raises
    ------
    CISInputError
        Naming ``field`` and the path.
    """
    target = Path(path)
    if target.is_dir():
        raise CISInputError(field, str(path), "is a folder; give a file name")
    parent = target.parent if str(target.parent) else Path(".")
    probe = parent
    while create_parent and not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.exists():
        raise CISInputError(field, str(path), "the folder does not exist")
    if not probe.is_dir():
        raise CISInputError(field, str(path), f"{probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise CISInputError(field, str(path), f"the folder {probe} is not writable")
    return target
