"""The CIS problem of a Flower run, built from a train config (no Flower).

The ServerApp and every ClientApp read the same train config (``docs/trainer.md``) and build
the same experiment from it with :func:`cistheory.train.config.build_experiment`: the spec
(which names the nodes and their exits), the model, the data split, the participation table
``q`` and the training weights. Everything is a function of the config and its seeds, so
nothing but the parts, the uniforms and the deltas travels; each message carries the
config's digest and a client refuses one from another config.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from ..errors import CISInputError
from ..system.spec import load_spec
from ..system.tree import CIS
from ..train.config import Experiment, build_experiment, config_digest, load_config

__all__ = ["FlowerProblem", "load_problem"]


@dataclass(frozen=True, eq=False)
class FlowerProblem:
    """A train config, its digest and the experiment it builds.

    Attributes
    ----------
    path : str
        The config file (absolute).
    config : dict
        The validated config (:func:`cistheory.train.config.load_config`).
    digest : str
        :func:`cistheory.train.config.config_digest` of it (the checkpoints' key too).
    cis : CIS
        The spec's system (node ids, exits).
    """

    path: str
    config: dict[str, Any]
    digest: str
    cis: CIS = field(repr=False)

    @cached_property
    def experiment(self) -> Experiment:
        """Spec, model at initialisation, node data, participation, weights, loop settings
        (built on first use; shared by every caller in a process: copy the model before
        training it)."""
        return build_experiment(self.config)

    @property
    def n_nodes(self) -> int:
        """Number of CIS nodes :math:`N`."""
        return int(self.cis.n_nodes)

    def node_index(self, node_id: Any, field: str = "cis-node") -> int:
        """The index (spec order, from 0) of the node the spec names ``node_id``."""
        ids = self.cis.node_ids
        if str(node_id) not in ids:
            raise CISInputError(field, node_id, f"not a node of the spec; its nodes: {list(ids)}")
        return ids.index(str(node_id))


def load_problem(path: str | Path) -> FlowerProblem:
    """The problem of the train config at ``path`` (an absolute path), cached per process
    on the file's content.

    Raises
    ------
    CISInputError
        The path is relative or the config is invalid, or it asks for the vectorised clients
        (on Flower each node trains in its own client).
    """
    p = Path(path)
    if not p.is_absolute():
        raise CISInputError("config", str(path), "give the train config as an absolute path")
    if not p.is_file():
        raise CISInputError("config", str(path), "no such file")
    return _cached(str(p), hashlib.sha256(p.read_bytes()).hexdigest())


@lru_cache(maxsize=4)
def _cached(path: str, content_hash: str) -> FlowerProblem:
    cfg = load_config(path)
    if cfg["train"].get("vectorised", False):
        raise CISInputError(
            "train.vectorised", True, "on Flower every node trains in its own client; use false"
        )
    return FlowerProblem(path, cfg, config_digest(cfg), load_spec(cfg["spec"]))
