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
    """

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field} = {value!r}: {reason}")
