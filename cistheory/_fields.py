"""The one checker of input fields: spec files, run configurations, constants files (internal).

A table of :class:`Field` entries says, for each field a document may hold, its type and
range. :func:`check_table` refuses an unknown field (naming the nearest known one), a missing
required field, a value of the wrong type (``"no"`` is not a boolean, ``"fast"`` not a
number, ``true`` not an integer) or outside its range, with one
:class:`~cistheory.errors.CISInputError` naming the field and the value. Nothing is coerced
silently: an integer field takes an integer (or an integral float such as ``1e3``), a number
field an integer or a float, a string field a string.

Examples
--------
>>> table = {"rounds": Field("int", low=1), "lr": Field("number", above=0.0)}
>>> check_table({"rounds": 5, "lr": 0.1}, table, "train")
{'rounds': 5, 'lr': 0.1}
>>> check_table({"rouds": 5}, table, "train")
Traceback (most recent call last):
...
cistheory.errors.CISInputError: train.rouds = 5: unknown field; did you mean 'rounds'?
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .errors import CISInputError

__all__ = [
    "Field",
    "Kind",
    "check_known",
    "check_table",
    "check_value",
    "field_name",
    "nearest",
]

Kind = Literal["int", "number", "bool", "str", "id", "list", "table", "any"]
"""The type of a field: ``id`` is a node id (a string or an integer)."""

# Integers beyond this cannot be seeds, sizes or counts of anything this package computes.
_INT_LIMIT = 2**63 - 1


@dataclass(frozen=True)
class Field:
    """How one field is checked.

    Attributes
    ----------
    kind : Kind
        Its type.
    required : bool
        Whether the field must be present.
    nullable : bool
        Whether ``null`` (``None``) is allowed.
    low, high : float, optional
        Inclusive bounds of a number or an integer.
    above : float, optional
        Strict lower bound of a number.
    below : float, optional
        Strict upper bound of a number.
    allow_inf : bool
        Whether ``inf`` (or the string ``"inf"``) is a valid number.
    choices : tuple of str, optional
        The allowed values of a string.
    item : Field, optional
        The check of every entry of a list.
    min_items, max_items : int, optional
        Bounds on the length of a list.
    why : str
        Said after a range error (e.g. why a size is capped).
    """

    kind: Kind
    required: bool = False
    nullable: bool = False
    low: float | None = None
    high: float | None = None
    above: float | None = None
    below: float | None = None
    allow_inf: bool = False
    choices: tuple[str, ...] | None = None
    item: Field | None = None
    min_items: int | None = None
    max_items: int | None = None
    why: str = ""


def field_name(where: str, key: object) -> str:
    """``where.key``, or ``key`` at the top level."""
    return f"{where}.{key}" if where else str(key)


def nearest(key: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``key`` (case first, then spelling), or ``None``.

    Examples
    --------
    >>> nearest("hiden", ["hidden", "n_classes"]), nearest("Data", ["data", "seeds"])
    ('hidden', 'data')
    """
    names = sorted(known)
    for name in names:
        if name.lower() == str(key).lower():
            return name
    close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
    return close[0] if close else None


def check_known(doc: Mapping[Any, Any], known: Iterable[str], where: str) -> None:
    """Refuse the first key of ``doc`` not in ``known``, naming the nearest known one."""
    names = set(known)
    for key in doc:
        if not isinstance(key, str) or key not in names:
            guess = nearest(str(key), names)
            hint = (
                f"did you mean '{guess}'?"
                if guess is not None
                else f"known fields: {', '.join(sorted(names))}"
            )
            raise CISInputError(field_name(where, key), doc[key], f"unknown field; {hint}")


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CISInputError(name, value, f"must be an integer, not {_type(value)}")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise CISInputError(name, value, "must be an integer")
        value = int(value)
    if abs(value) > _INT_LIMIT:
        raise CISInputError(name, value, f"must be an integer of at most {_INT_LIMIT}")
    return int(value)


def _number(value: Any, name: str, allow_inf: bool) -> float:
    if isinstance(value, str) and allow_inf and value.strip().lower() in {"inf", "infinity"}:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CISInputError(name, value, f"must be a number, not {_type(value)}")
    try:
        out = float(value)
    except OverflowError:
        raise CISInputError(name, value, "must be a finite number (too large)") from None
    if math.isnan(out):
        raise CISInputError(name, value, "must be a number, not NaN")
    if math.isinf(out) and not allow_inf:
        raise CISInputError(name, value, "must be a finite number")
    return out


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def _bound(x: float) -> str:
    """A range's end as people write it: ``10,000,000``, ``0.5``, ``1``."""
    return f"{int(x):,}" if float(x).is_integer() and abs(x) >= 1000 else f"{x:g}"


def _range(x: float, spec: Field, name: str, shown: Any) -> None:
    why = f" ({spec.why})" if spec.why else ""
    if spec.low is not None and x < spec.low:
        raise CISInputError(name, shown, f"must be >= {_bound(spec.low)}{why}")
    if spec.high is not None and x > spec.high:
        raise CISInputError(name, shown, f"must be <= {_bound(spec.high)}{why}")
    if spec.above is not None and not x > spec.above:
        raise CISInputError(name, shown, f"must be > {_bound(spec.above)}{why}")
    if spec.below is not None and not x < spec.below:
        raise CISInputError(name, shown, f"must be < {_bound(spec.below)}{why}")


def _list(value: Any, spec: Field, name: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise CISInputError(name, value, f"must be a list, not {_type(value)}")
    if spec.min_items is not None and len(value) < spec.min_items:
        raise CISInputError(name, list(value), f"must have at least {spec.min_items} entries")
    if spec.max_items is not None and len(value) > spec.max_items:
        raise CISInputError(name, f"{len(value)} entries", f"at most {spec.max_items}")
    if spec.item is None:
        return list(value)
    return [check_value(v, spec.item, f"{name}[{j + 1}]") for j, v in enumerate(value)]


def check_value(value: Any, spec: Field, name: str) -> Any:
    """Check one value against its :class:`Field`; returns it as the type it stands for.

    Entries of a list are named from 1 (``exit_flops[1]`` is the first exit's).
    """
    if value is None:
        if spec.nullable:
            return None
        raise CISInputError(name, None, f"must not be null ({_kind_text(spec)})")
    kind = spec.kind
    if kind == "int":
        out: Any = _int(value, name)
        _range(out, spec, name, value)
    elif kind == "number":
        out = _number(value, name, spec.allow_inf)
        _range(out, spec, name, value)
    elif kind == "bool":
        if not isinstance(value, bool):
            raise CISInputError(name, value, f"must be true or false, not {_type(value)}")
        out = value
    elif kind == "str":
        if not isinstance(value, str):
            raise CISInputError(name, value, f"must be a string, not {_type(value)}")
        if spec.choices is not None and value not in spec.choices:
            guess = nearest(value, spec.choices)
            hint = f"; did you mean '{guess}'?" if guess else ""
            raise CISInputError(name, value, f"use one of {', '.join(spec.choices)}{hint}")
        out = value
    elif kind == "id":
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise CISInputError(name, value, f"a node id is a string or an integer, not "
                                f"{_type(value)}")
        out = str(value)
        if out == "":
            raise CISInputError(name, value, "a node id must not be empty")
    elif kind == "list":
        out = _list(value, spec, name)
    elif kind == "table":
        if not isinstance(value, Mapping):
            raise CISInputError(name, value, f"must be a table (an object), not {_type(value)}")
        out = dict(value)
    else:
        out = value
    return out


def _kind_text(spec: Field) -> str:
    return {
        "int": "an integer",
        "number": "a number",
        "bool": "true or false",
        "str": "a string",
        "id": "a node id",
        "list": "a list",
        "table": "a table",
        "any": "a value",
    }[spec.kind]


def check_table(
    doc: Any, table: Mapping[str, Field], where: str, *, what: str = "a table (an object)"
) -> dict[str, Any]:
    """Check a document against a table of fields: no unknown field, every required field,
    every value of its type and range. Returns the checked values of the fields present."""
    if not isinstance(doc, Mapping):
        raise CISInputError(where or "document", _type(doc), f"must be {what}")
    check_known(doc, table, where)
    out: dict[str, Any] = {}
    for key, spec in table.items():
        if key not in doc:
            if spec.required:
                raise CISInputError(field_name(where, key), None, "missing field")
            continue
        out[key] = check_value(doc[key], spec, field_name(where, key))
    return out
