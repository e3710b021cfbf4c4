r"""Reading and writing CIS spec files.

Two formats are read.

**The project's format** (JSON or TOML), documented in ``docs/spec-format.md``::

    {
      "name": "my-cis",
      "exits": 3,                          # optional; default: deepest capacity
      "exit_flops": [0.2, 0.6, 1.0],       # optional relative FLOPs per exit
      "nodes": [
        {"id": "cloud", "parent": null, "exits": 3, "arrival": 0.0, "forward": 0.0,
         "data": 15000},
        {"id": "edge", "parent": "cloud", "exits": 2, "arrival": 0.0, "forward": 0.25,
         "data": 7500},
        {"id": "dev", "parent": "edge", "exits": 1, "arrival": 2.5, "forward": 0.5,
         "data": 3750}
      ]
    }

Every node gives ``forward`` (forwarding rate) or every node gives ``capacity`` (service
capacity, a number or ``"inf"``); ``data`` is given for all nodes or none.

**The reference release's format** (JSON), read unchanged: ``toplogy_as_edges`` (sic; a
list of ``[parent, child]``), ``node_model_size`` (node id -> number of exits),
``rates.arrival`` and ``rates.departure`` (node id -> rate). It carries no data sizes.

Built-in specs are named ``reference:SPLIT[:DATA][:NODES]``, e.g. ``reference:80-15-5``,
``reference:80-15-5:tiny`` or ``reference:45-35-20:equal:100``.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._fields import Field, check_table, check_value
from ..errors import CISInputError
from .reference import reference_cis
from .tree import CIS

__all__ = ["MAX_EXITS", "cis_to_spec", "load_spec", "parse_spec", "read_document"]


MAX_EXITS = 1024
"""The most exits a spec may give a model (a larger number is surely a typo: every rule and
bound builds tables of one column per exit)."""

_WHY_EXITS = "more exits than any early-exit model has; a typo?"

_PROJECT: dict[str, Field] = {
    "name": Field("str"),
    "exits": Field("int", low=1, high=MAX_EXITS, why=_WHY_EXITS),
    "exit_flops": Field("list", min_items=1, item=Field("number", above=0.0, high=1.0,
                                                        why="relative to the full model's")),
    "nodes": Field("list", required=True, min_items=1),
}
_NODE: dict[str, Field] = {
    "id": Field("id", required=True),
    "parent": Field("id", nullable=True),
    "exits": Field("int", required=True, low=1, high=MAX_EXITS, why=_WHY_EXITS),
    "arrival": Field("number", required=True, low=0.0),
    "forward": Field("number", low=0.0),
    "capacity": Field("number", low=0.0, allow_inf=True),
    "data": Field("number", low=0.0),
}
_RELEASE: dict[str, Field] = {
    "toplogy_as_edges": Field("list", required=True),
    "node_model_size": Field("table", required=True),
    "rates": Field("table", required=True),
    # training options of the release: read and not used here
    "serving_weights_rescale": Field("any"),
    "loss_rescale": Field("any"),
    "rescale_by_flow_map": Field("any"),
    "difficulty_quantization": Field("any"),
}
_RELEASE_RATES: dict[str, Field] = {
    "arrival": Field("table", required=True),
    "departure": Field("table", required=True),
}
_RELEASE_KEYS = frozenset({"toplogy_as_edges", "node_model_size", "rates"})
_RATE = Field("number", low=0.0)
_SIZE = Field("int", low=1, high=MAX_EXITS, why=_WHY_EXITS)
_ID = Field("id")


def _parse_reference(doc: Mapping[str, Any], name: str) -> CIS:
    top = check_table(doc, _RELEASE, "")
    sizes: dict[str, Any] = top["node_model_size"]
    rates = check_table(top["rates"], _RELEASE_RATES, "rates")
    ids = [check_value(k, _ID, "node_model_size") for k in sizes]
    if not ids:
        raise CISInputError("node_model_size", {}, "must name at least one node")
    index = {nid: i for i, nid in enumerate(ids)}
    parent = np.full(len(ids), -1, dtype=np.int64)
    for j, edge in enumerate(top["toplogy_as_edges"]):
        where = f"toplogy_as_edges[entry {j + 1}]"
        if not isinstance(edge, list | tuple) or len(edge) != 2:
            raise CISInputError(where, edge, "must be [parent, child]")
        p, c = (check_value(x, _ID, where) for x in edge)
        for nid in (p, c):
            if nid not in index:
                raise CISInputError(where, edge, f"unknown node id {nid!r}")
        if parent[index[c]] != -1:
            raise CISInputError(where, edge, f"node {c!r} has two parents")
        parent[index[c]] = index[p]
    cap = [check_value(v, _SIZE, f"node_model_size.{k}") for k, v in sizes.items()]
    tables = []
    for key in ("arrival", "departure"):
        table = rates[key]
        for k in table:
            if str(k) not in index:
                raise CISInputError(f"rates.{key}.{k}", table[k], "unknown node id")
        by_id = {str(k): v for k, v in table.items()}
        for nid in ids:
            if nid not in by_id:
                raise CISInputError(f"rates.{key}.{nid}", None, "missing field")
        tables.append([check_value(by_id[nid], _RATE, f"rates.{key}.{nid}") for nid in ids])
    return CIS.build(
        parent=parent, capacity=cap, arrival=tables[0], forward=tables[1], node_ids=ids, name=name
    )


def _node_ids(nodes: list[Any]) -> list[str]:
    """The ids of the project format's nodes, distinct (an entry without one is named by its
    position, from 1)."""
    ids: list[str] = []
    seen: set[str] = set()
    for j, node in enumerate(nodes):
        where = f"nodes[entry {j + 1}]"
        if not isinstance(node, Mapping):
            raise CISInputError(where, node, "must be a node table (an object)")
        if "id" not in node:
            raise CISInputError(f"{where}.id", None, "missing field")
        nid = check_value(node["id"], _NODE["id"], f"{where}.id")
        if nid in seen:
            raise CISInputError(f"{where}.id", node["id"], "duplicate node id")
        seen.add(nid)
        ids.append(nid)
    return ids


def _exit_flops(flops: list[float] | None) -> list[float] | None:
    """Relative FLOPs per exit: a deeper exit computes at least as much as a shallower one."""
    if flops is None:
        return None
    for k in range(1, len(flops)):
        if flops[k] < flops[k - 1]:
            raise CISInputError(
                f"exit_flops[{k + 1}]",
                flops[k],
                f"below exit {k}'s {flops[k - 1]!r}: a deeper exit computes at least as much",
            )
    return flops


def _parse_project(doc: Mapping[str, Any], name: str) -> CIS:
    top = check_table(doc, _PROJECT, "")
    nodes: list[Any] = top["nodes"]
    ids = _node_ids(nodes)
    first = check_table(nodes[0], _NODE, f"nodes[{ids[0]}]")
    mode = "forward" if "forward" in first else "capacity" if "capacity" in first else None
    if mode is None:
        raise CISInputError(f"nodes[{ids[0]}].forward", None, "missing field (or give 'capacity')")
    other = "capacity" if mode == "forward" else "forward"
    has_data = "data" in first
    index = {nid: j for j, nid in enumerate(ids)}
    n = len(ids)
    parent = np.full(n, -1, dtype=np.int64)
    cap = np.zeros(n, dtype=np.int64)
    arr, rate, data = np.zeros(n), np.zeros(n), np.zeros(n)
    for j, node in enumerate(nodes):
        where = f"nodes[{ids[j]}]"
        f = check_table(node, _NODE, where)
        if f.get("parent") is not None:
            if f["parent"] not in index:
                raise CISInputError(f"{where}.parent", node["parent"], "unknown node id")
            parent[j] = index[f["parent"]]
        if other in f:
            raise CISInputError(f"{where}.{other}", node[other], f"the spec uses '{mode}' for "
                                "all nodes")
        if mode not in f:
            raise CISInputError(f"{where}.{mode}", None, "missing field")
        if ("data" in f) != has_data:
            raise CISInputError(f"{where}.data", node.get("data"), "give 'data' for every node "
                                "or none")
        cap[j], arr[j], rate[j] = f["exits"], f["arrival"], f[mode]
        data[j] = f.get("data", 0.0)
    k = top.get("exits")
    if k is not None and k > int(cap.max()):
        top_exit = int(cap.max())
        extra = f"exit {k}" if k == top_exit + 1 else f"exits {top_exit + 1}..{k}"
        raise CISInputError("exits", k, f"no node hosts an exit above {top_exit}: {extra} "
                            "would serve nothing")
    return CIS.build(
        parent=parent,
        capacity=cap,
        arrival=arr,
        forward=rate if mode == "forward" else None,
        service=rate if mode == "capacity" else None,
        data=data if has_data else None,
        n_exits=k,
        exit_flops=_exit_flops(top.get("exit_flops")),
        node_ids=ids,
        name=top.get("name", name),
    )


def parse_spec(doc: Mapping[str, Any], name: str = "") -> CIS:
    """Build a CIS from a parsed spec document (either format; see the module docstring).

    A document with ``toplogy_as_edges``, ``node_model_size`` or ``rates`` is read in the
    reference release's format, any other in the project's. Unknown fields are refused,
    naming the nearest known one.
    """
    if not isinstance(doc, Mapping):
        raise CISInputError("spec", _kind(doc), "must be a table (an object) at the top level")
    if _RELEASE_KEYS & set(doc):
        return _parse_reference(doc, name)
    return _parse_project(doc, name)


def _kind(doc: Any) -> str:
    return "a list" if isinstance(doc, list) else "a string" if isinstance(doc, str) else (
        "a number" if isinstance(doc, int | float) else type(doc).__name__
    )


def _builtin(spec: str) -> CIS:
    parts = spec.split(":")[1:]
    if not parts or not parts[0] or len(parts) > 3:
        raise CISInputError("spec", spec, "expected reference:SPLIT[:DATA][:NODES]")
    split = parts[0]
    data: str | None = parts[1] if len(parts) > 1 and parts[1] else "equal"
    if data == "none":
        data = None
    nodes = 7
    if len(parts) > 2:
        try:
            nodes = int(parts[2])
        except ValueError:
            raise CISInputError("spec", spec, "NODES is 7, 17 or 100") from None
    return reference_cis(split, data, n_nodes=nodes)


def read_document(path: str | Path, field: str) -> Any:
    """Parse a JSON (or, for ``.toml``, TOML) file; every failure is one
    :class:`~cistheory.errors.CISInputError` naming ``field`` and the path."""
    p = Path(path)
    if p.is_dir():
        raise CISInputError(field, str(path), "is a folder, not a file")
    if not p.is_file():
        raise CISInputError(field, str(path), "no such file")
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CISInputError(
            field, str(path), "cannot read: not UTF-8 text (a UTF-16 or binary file?)"
        ) from None
    try:
        return tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CISInputError(field, str(path), f"cannot parse: {exc}") from None
    except RecursionError:
        raise CISInputError(field, str(path), "cannot parse: nested too deeply") from None


def load_spec(spec: str | Path) -> CIS:
    """Load a CIS from a spec file (``.json`` or ``.toml``) or a built-in name.

    Parameters
    ----------
    spec : str or Path
        A path, or ``reference:SPLIT[:DATA][:NODES]`` (``DATA`` one of ``equal``, ``2x``,
        ``tiny``, ``none``; ``NODES`` one of 7, 17, 100).

    Raises
    ------
    CISInputError
        If the file is missing, unreadable, or describes an invalid CIS.

    Examples
    --------
    >>> load_spec("reference:80-15-5").lam.round(6).tolist()
    [0.8, 0.15, 0.05]
    """
    s = str(spec)
    if s.startswith("reference:"):
        return _builtin(s)
    doc = read_document(s, "spec")
    if not isinstance(doc, Mapping):
        raise CISInputError("spec", s, f"the top level must be a table (an object), not "
                            f"{_kind(doc)}")
    return parse_spec(doc, name=Path(s).stem)


def cis_to_spec(cis: CIS) -> dict[str, Any]:
    """The project's spec document for a CIS (inverse of :func:`parse_spec`)."""
    nodes = []
    for i, nid in enumerate(cis.node_ids):
        node: dict[str, Any] = {
            "id": nid,
            "parent": None if cis.parent[i] < 0 else cis.node_ids[int(cis.parent[i])],
            "exits": int(cis.capacity[i]),
            "arrival": float(cis.arrival[i]),
        }
        if cis.forward is not None:
            node["forward"] = float(cis.forward[i])
        else:
            assert cis.service is not None
            c = float(cis.service[i])
            node["capacity"] = "inf" if math.isinf(c) else c
        if cis.data_given:
            node["data"] = float(cis.data[i])
        nodes.append(node)
    doc: dict[str, Any] = {"name": cis.name, "exits": cis.n_exits, "nodes": nodes}
    if cis.exit_flops is not None:
        doc["exit_flops"] = cis.exit_flops.tolist()
    return doc
