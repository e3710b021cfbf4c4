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

from ..errors import CISInputError
from .reference import reference_cis
from .tree import CIS

__all__ = ["cis_to_spec", "load_spec", "parse_spec"]


def _num(value: Any, field: str, *, allow_inf: bool = False) -> float:
    if isinstance(value, bool) or value is None:
        raise CISInputError(field, value, "must be a number")
    if isinstance(value, str):
        if allow_inf and value.strip().lower() in {"inf", "infinity"}:
            return math.inf
        try:
            value = float(value)
        except ValueError:
            raise CISInputError(field, value, "must be a number") from None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise CISInputError(field, value, "must be a number") from None
    if math.isnan(out):
        raise CISInputError(field, value, "must be a number, not NaN")
    if math.isinf(out) and not allow_inf:
        raise CISInputError(field, value, "must be finite")
    if out < 0:
        raise CISInputError(field, value, "must be >= 0")
    return out


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise CISInputError(field, value, "must be an integer")
    try:
        f = float(value)
    except ValueError:
        raise CISInputError(field, value, "must be an integer") from None
    if not f.is_integer():
        raise CISInputError(field, value, "must be an integer")
    return int(f)


def _req(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(obj, Mapping):
        raise CISInputError(where, obj, "must be an object")
    if key not in obj:
        raise CISInputError(f"{where}.{key}" if where else key, None, "missing field")
    return obj[key]


def _parse_reference(doc: Mapping[str, Any], name: str) -> CIS:
    edges = _req(doc, "toplogy_as_edges", "")
    sizes = _req(doc, "node_model_size", "")
    rates = _req(doc, "rates", "")
    arrival = _req(rates, "arrival", "rates")
    departure = _req(rates, "departure", "rates")
    if not isinstance(edges, list):
        raise CISInputError("toplogy_as_edges", edges, "must be a list of [parent, child]")
    if not isinstance(sizes, Mapping):
        raise CISInputError("node_model_size", sizes, "must map node id -> number of exits")
    ids = [str(k) for k in sizes]
    index = {nid: i for i, nid in enumerate(ids)}
    parent = np.full(len(ids), -1, dtype=np.int64)
    for j, edge in enumerate(edges):
        if not isinstance(edge, list | tuple) or len(edge) != 2:
            raise CISInputError(f"toplogy_as_edges[{j}]", edge, "must be [parent, child]")
        p, c = str(edge[0]), str(edge[1])
        for nid in (p, c):
            if nid not in index:
                raise CISInputError(f"toplogy_as_edges[{j}]", edge, f"unknown node id {nid!r}")
        if parent[index[c]] != -1:
            raise CISInputError(f"toplogy_as_edges[{j}]", edge, f"node {c!r} has two parents")
        parent[index[c]] = index[p]
    cap = [_int(sizes[nid], f"node_model_size.{nid}") for nid in ids]
    for key, table in (("rates.arrival", arrival), ("rates.departure", departure)):
        if not isinstance(table, Mapping):
            raise CISInputError(key, table, "must map node id -> rate")
        for k in table:
            if str(k) not in index:
                raise CISInputError(f"{key}.{k}", table[k], "unknown node id")
    arr = [_num(_req(arrival, nid, "rates.arrival"), f"rates.arrival.{nid}") for nid in ids]
    dep = [_num(_req(departure, nid, "rates.departure"), f"rates.departure.{nid}") for nid in ids]
    return CIS.build(parent=parent, capacity=cap, arrival=arr, forward=dep, node_ids=ids, name=name)


def _parse_project(doc: Mapping[str, Any], name: str) -> CIS:
    nodes = _req(doc, "nodes", "")
    if not isinstance(nodes, list) or not nodes:
        raise CISInputError("nodes", nodes, "must be a non-empty list of node objects")
    ids: list[str] = []
    for j, node in enumerate(nodes):
        nid = _req(node, "id", f"nodes[{j}]")
        ids.append(str(nid))
    index: dict[str, int] = {}
    for j, nid in enumerate(ids):
        if nid in index:
            raise CISInputError(f"nodes[{j}].id", nid, "duplicate node id")
        index[nid] = j
    n = len(ids)
    parent = np.full(n, -1, dtype=np.int64)
    cap = np.zeros(n, dtype=np.int64)
    arr = np.zeros(n)
    mode = "forward" if "forward" in nodes[0] else "capacity" if "capacity" in nodes[0] else None
    if mode is None:
        raise CISInputError("nodes[0].forward", None, "missing field (or give 'capacity')")
    rate = np.zeros(n)
    has_data = "data" in nodes[0]
    data = np.zeros(n)
    for j, node in enumerate(nodes):
        where = f"nodes[{j}]"
        par = node.get("parent")
        if par is not None and str(par) != "":
            if str(par) not in index:
                raise CISInputError(f"{where}.parent", par, "unknown node id")
            parent[j] = index[str(par)]
        cap[j] = _int(_req(node, "exits", where), f"{where}.exits")
        arr[j] = _num(_req(node, "arrival", where), f"{where}.arrival")
        other = "capacity" if mode == "forward" else "forward"
        if other in node:
            raise CISInputError(
                f"{where}.{other}", node[other], f"the spec uses '{mode}' for all nodes"
            )
        rate[j] = _num(_req(node, mode, where), f"{where}.{mode}", allow_inf=mode == "capacity")
        if has_data:
            data[j] = _num(_req(node, "data", where), f"{where}.data")
        elif "data" in node:
            raise CISInputError(f"{where}.data", node["data"], "give 'data' for every node or none")
    k = doc.get("exits")
    flops = doc.get("exit_flops")
    return CIS.build(
        parent=parent,
        capacity=cap,
        arrival=arr,
        forward=rate if mode == "forward" else None,
        service=rate if mode == "capacity" else None,
        data=data if has_data else None,
        n_exits=None if k is None else _int(k, "exits"),
        exit_flops=None
        if flops is None
        else [_num(x, f"exit_flops[{i}]") for i, x in enumerate(flops)],
        node_ids=ids,
        name=str(doc.get("name", name)),
    )


def parse_spec(doc: Mapping[str, Any], name: str = "") -> CIS:
    """Build a CIS from a parsed spec document (either format; see the module docstring)."""
    if not isinstance(doc, Mapping):
        raise CISInputError("spec", type(doc).__name__, "must be an object at the top level")
    if "toplogy_as_edges" in doc:
        return _parse_reference(doc, name)
    return _parse_project(doc, name)


def _builtin(spec: str) -> CIS:
    parts = spec.split(":")[1:]
    if not parts or not parts[0]:
        raise CISInputError("spec", spec, "expected reference:SPLIT[:DATA][:NODES]")
    split = parts[0]
    data: str | None = parts[1] if len(parts) > 1 and parts[1] else "equal"
    if data == "none":
        data = None
    nodes = _int(parts[2], "spec nodes") if len(parts) > 2 else 7
    return reference_cis(split, data, n_nodes=nodes)


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
    path = Path(s)
    if not path.is_file():
        raise CISInputError("spec", s, "no such file")
    text = path.read_text(encoding="utf-8")
    try:
        doc = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CISInputError("spec", s, f"cannot parse: {exc}") from None
    return parse_spec(doc, name=path.stem)


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
