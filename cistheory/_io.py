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

__all__ = ["atomic_write_bytes", "atomic_write_text", "check_folder", "check_writable"]


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


def _existing_folder(target: Path, field: str, shown: str) -> Path:
    """The nearest existing folder at or above ``target``; a file on the way is refused."""
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise CISInputError(field, shown, f"{probe} is a file, not a folder")
    return probe


def _probe_writable(folder: Path, field: str, shown: str) -> None:
    """Create and remove a file in ``folder`` (``os.access`` says yes to root even on a
    read-only mount, so only a real write tells)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise CISInputError(
            field, shown, f"the folder {folder} is not writable ({exc.strerror or exc})"
        ) from None


def check_writable(path: str | Path, field: str, *, create_parent: bool = False) -> Path:
    """Check that a file can be written at ``path`` (before computing what goes there).

    The folder must exist (or, with ``create_parent``, be creatable under an existing
    folder) and be writable (a file is created and removed there), and ``path`` must not be
    a folder.

    Raises
    ------
    CISInputError
        Naming ``field`` and the path.
    """
    target = Path(path)
    shown = str(path)
    if target.is_dir():
        raise CISInputError(field, shown, "is a folder; give a file name")
    parent = target.parent if str(target.parent) else Path(".")
    if not create_parent and not parent.exists():
        raise CISInputError(field, shown, "the folder does not exist")
    folder = _existing_folder(parent, field, shown)
    _probe_writable(folder, field, shown)
    return target


def check_folder(path: str | Path, field: str) -> Path:
    """Check that ``path`` is, or can be created as, a writable folder.

    Raises
    ------
    CISInputError
        If ``path`` is a file, lies under a file, or its nearest existing folder cannot be
        written.
    """
    target = Path(path)
    shown = str(path)
    if target.exists() and not target.is_dir():
        raise CISInputError(field, shown, "is a file, not a folder")
    folder = _existing_folder(target, field, shown)
    _probe_writable(folder, field, shown)
    return target
