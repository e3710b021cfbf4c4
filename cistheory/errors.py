"""Errors raised for invalid user input.

Every validation failure in the package raises :class:`CISInputError`, a
:class:`ValueError` that names the offending field and value so that a user can
find and fix the input.
"""

from __future__ import annotations

__all__ = ["CISInputError"]


class CISInputError(ValueError):
    """Invalid input to a CIS computation.

    Parameters
    ----------
    field : str
        Dotted path of the offending field, e.g. ``"nodes[3].arrival"`` or ``"q[2, 1]"``.
    value : object
        The offending value, as given.
    reason : str
        What is wrong with it.

    Examples
    --------
    >>> err = CISInputError("arrival[2]", -1.0, "must be >= 0")
    >>> str(err)
    'arrival[2] = -1.0: must be >= 0'
    >>> str(CISInputError("arrival", 10**400, "must be a finite number"))[:50]
    'arrival = 1000000000000000000000000000000000000000'
    """

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field} = {_shown(value)}: {reason}")


_MAX_SHOWN = 100  # characters of a value in a message; the rest is summarised


def _shown(value: object) -> str:
    """``repr(value)``, cut to one readable line (a huge integer, a long list)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an integer beyond str()'s digit limit, deep nesting
        return f"<{type(value).__name__} too large to show>"
    if len(text) > _MAX_SHOWN:
        text = f"{text[: _MAX_SHOWN - 20]}... ({len(text)} characters)"
    return text
