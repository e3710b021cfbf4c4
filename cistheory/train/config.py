"""Run configuration of ``cistheory train CONFIG`` (JSON or TOML; see ``docs/trainer.md``).

A configuration names a spec, a model, a dataset and its split, a participation policy,
a rule for the training weights, the loop's hyper-parameters and the seeds.
:func:`load_config` reads and validates it; :func:`build_experiment` turns it into the
objects :func:`cistheory.train.fedloop.run_federated` takes.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._arrays import as_simplex
from .._fields import Field, check_table, check_value
from ..errors import CISInputError
from ..rules.registry import RULE_NAMES, get_rule, rule_inputs
from ..system.participation import (
    POLICIES,
    Participation,
    explicit,
    fixed_count,
    named_policy,
    q_table,
    shallower_with_probability,
)
from ..system.spec import load_spec, read_document
from ..system.tree import CIS
from .data import (
    AUGMENTATIONS,
    Dataset,
    NodeData,
    digits,
    dirichlet_split,
    load_cifar,
    load_idx,
    split_by_sizes,
    split_for_cis,
    split_tiers_dirichlet,
    synthetic_classification,
    synthetic_regression,
)
from .device import DEVICES, PRECISIONS
from .evaluate import SCORES
from .fedloop import FedConfig, StepSchedule
from .models import EarlyExitCNN, EarlyExitMLP, EarlyExitModel, EarlyExitResNet18, NestedLinear
from .ordered_dropout import OrderedDropoutCNN, OrderedDropoutResNet18, check_widths

__all__ = [
    "MAX_ROUNDS",
    "MAX_SAMPLES",
    "SHIPPED_CONFIGS",
    "Experiment",
    "build_experiment",
    "config_digest",
    "load_config",
    "parse_config",
    "shipped_config_text",
]

MAX_SAMPLES = 10_000_000
"""The most training (or test) samples a configuration may ask for: synthetic data are
generated in memory, and 10^7 samples of a few dozen features already take gigabytes."""

MAX_ROUNDS = 10_000_000
"""The most rounds a configuration may ask for (every round's record is kept)."""

_MODELS = ("nested-linear", "mlp", "cnn", "resnet18")
_FAMILIES = ("early-exit", "ordered-dropout")
_DATASETS = (
    "synthetic",
    "synthetic-regression",
    "digits",
    "cifar10",
    "cifar100",
    "mnist",
    "fashion-mnist",
)
_SPLITS = ("cis", "equal", "dirichlet", "cis-dirichlet")
_RULES = (*RULE_NAMES, "explicit")
_SIZES = Field("list", min_items=1, item=Field("int", low=1))
_CLASSES = Field("int", low=2)
_SEED = Field("int", low=0, high=2**63 - 1)

_FAMILY = Field("str", choices=_FAMILIES)
_WIDTHS = Field("list", min_items=1, item=Field("number", above=0.0, high=1.0))

_TOP: dict[str, Field] = {
    "spec": Field("str", required=True),
    "output": Field("str", nullable=True),
    "checkpoint_every": Field("int", low=1),
    "model": Field("table"),
    "data": Field("table"),
    "participation": Field("table"),
    "rule": Field("table"),
    "train": Field("table"),
    "seeds": Field("table"),
    "serving": Field("table"),
}
_MODEL_FIELDS: dict[str, dict[str, Field]] = {
    "nested-linear": {"dims": _SIZES, "bias": Field("bool"), "n_classes": _CLASSES},
    "mlp": {"hidden": _SIZES, "n_classes": _CLASSES},
    "cnn": {"channels": _SIZES, "n_classes": _CLASSES, "family": _FAMILY, "widths": _WIDTHS},
    "resnet18": {
        "exits": Field("list", min_items=1, item=Field("int", low=1, high=17)),
        "width": Field("int", low=1),
        "norm": Field("str", choices=("batch", "group")),
        "n_classes": _CLASSES,
        "family": _FAMILY,
        "widths": _WIDTHS,
    },
}
"""The fields of each model's section besides ``name``."""
_WHY_SAMPLES = "data are held in memory"
_DATA: dict[str, Field] = {
    "name": Field("str", choices=_DATASETS),
    "split": Field("str", choices=_SPLITS),
    "samples": Field("int", low=1, high=MAX_SAMPLES, why=_WHY_SAMPLES),
    "heterogeneity": Field("number", low=0.0),
    "test_samples": Field("int", low=0, high=MAX_SAMPLES, why=_WHY_SAMPLES),
    "dims": _SIZES,
    "n_classes": _CLASSES,
    "alpha": Field("number", above=0.0),
    "path": Field("str"),
    "difficulty_probs": Field("list", min_items=1),
    "noise": Field("number", low=0.0),
    "label": Field("str", choices=("fine", "coarse")),
    "augment": Field("str", choices=AUGMENTATIONS),
}
_PARTICIPATION: dict[str, Field] = {
    "policy": Field("str", choices=(*POLICIES, "shallower", "explicit")),
    "prob": Field("any"),
    "q": Field("any"),
    "nodes_per_round": Field("int", low=1),
}
_RULE: dict[str, Field] = {
    "name": Field("str", choices=_RULES),
    "sigma": Field("list", min_items=1),
    "G": Field("list", min_items=1),
    "lt": Field("list", min_items=1, item=Field("number", low=0.0)),
    "exit_flops": Field("list", min_items=1, item=Field("number", above=0.0, high=1.0)),
    "horizon": Field("int", low=1, high=MAX_ROUNDS),
}
_TRAIN: dict[str, Field] = {
    "rounds": Field("int", low=1, high=MAX_ROUNDS),
    "tau": Field("any"),
    "lr": Field("number", above=0.0),
    "schedule": Field("str", choices=("constant", "inverse", "cosine", "multistep")),
    "gamma": Field("number", above=0.0),
    "final_lr": Field("number", low=0.0),
    "server_lr": Field("number", above=0.0),
    "batch_size": Field("int", low=1, nullable=True),
    "weight_decay": Field("number", low=0.0),
    "momentum": Field("number", low=0.0, below=1.0),
    "aggregation": Field("str", choices=("unbiased", "multiplicative")),
    "vectorised": Field("bool"),
    "eval_every": Field("int", low=0),
    "device": Field("str", choices=DEVICES),
    "precision": Field("str", choices=PRECISIONS),
    "milestones": Field("list", min_items=1, item=Field("int", low=1)),
    "lr_factor": Field("number", above=0.0, below=1.0),
}
_SEEDS: dict[str, Field] = {
    name: _SEED for name in ("selection", "batch", "init", "data", "augment")
}
_SERVING: dict[str, Field] = {"score": Field("str", choices=SCORES)}

SHIPPED_CONFIGS: tuple[str, ...] = tuple(
    f"{ds}-{variant}"
    for ds in ("cifar10", "cifar100")
    for variant in ("7node-equal", "7node-2x", "7node-tiny", "7node-tiny-p40", "100node-dirichlet")
)
"""The reference experiments shipped as configurations (``cistheory/data/configs/``), loaded
by :func:`load_config` as ``paper:NAME``: CIFAR-10 (exits 3-9-17) and CIFAR-100 (9-13-17),
the 7-node tree with the equal, 2x and tiny data splits (tiny also with p40 participation)
and the 100-node tree with the Dirichlet(0.5) split of the end devices' data; 100 rounds of
SGD (lr 0.1, momentum 0.9, weight decay 5e-4, batch 128, cosine to 0.01), local epochs of
about one root epoch, crop-and-flip augmentation."""


def shipped_config_text(name: str) -> str:
    """The text of the shipped configuration ``name`` (one of :data:`SHIPPED_CONFIGS`).

    Examples
    --------
    >>> "rounds = 100" in shipped_config_text("cifar10-7node-equal")
    True
    """
    from importlib import resources

    if name not in SHIPPED_CONFIGS:
        raise CISInputError("config", f"paper:{name}", f"use one of {list(SHIPPED_CONFIGS)}")
    path = resources.files("cistheory") / "data" / "configs" / f"{name}.toml"
    return path.read_text(encoding="utf-8")


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a JSON (``.json``) or TOML (``.toml``) configuration and validate it;
    ``paper:NAME`` reads the shipped configuration ``NAME`` (:data:`SHIPPED_CONFIGS`)."""
    if isinstance(path, str) and path.startswith("paper:"):
        return parse_config(tomllib.loads(shipped_config_text(path[len("paper:") :])))
    doc = read_document(path, "config")
    if not isinstance(doc, Mapping):
        raise CISInputError("config", str(path), "the top level must be a table (an object)")
    return parse_config(doc)


def parse_config(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a parsed configuration and fill in defaults; returns a normalised dict.

    Every field is checked by :func:`cistheory._fields.check_table`: unknown fields are
    refused (naming the nearest known one), and every value must have its field's type and
    range (``vectorised = "no"`` is refused, not read as true).

    Examples
    --------
    >>> cfg = parse_config({"spec": "reference:80-15-5", "train": {"rounds": 2}})
    >>> cfg["model"]["name"], cfg["train"]["rounds"]
    ('nested-linear', 2)
    """
    top = check_table(doc, _TOP, "", what="a table (an object) at the top level")
    train = check_table(top.get("train", {}), _TRAIN, "train")
    if "tau" in train:
        train["tau"] = _tau(train["tau"])
    seeds = {"selection": 0, "batch": 1, "init": 2, "data": 3}
    seeds.update(check_table(top.get("seeds", {}), _SEEDS, "seeds"))
    out = {
        "spec": top["spec"],
        "output": top.get("output"),
        "checkpoint_every": top.get("checkpoint_every", 1),
        "model": _model_section(top.get("model", {})),
        "data": _data_section(top.get("data", {})),
        "participation": _participation_section(top.get("participation", {})),
        "rule": _rule_section(top.get("rule", {})),
        "train": train,
        "seeds": seeds,
    }
    serving = check_table(top.get("serving", {}), _SERVING, "serving")
    if serving:  # only when given: configurations without it keep their digest
        out["serving"] = serving
    fed_config(out)  # validates the loop's fields together (e.g. final_lr <= lr)
    return out


def _tau(value: Any) -> int | str | list[int]:
    """Local steps: an integer >= 1, one per node, or ``"root-epoch"``."""
    if value == "root-epoch":
        return "root-epoch"
    if isinstance(value, list | tuple):
        return list(check_value(value, _SIZES, "train.tau"))
    if isinstance(value, str):
        raise CISInputError("train.tau", value, "use an integer >= 1, a list, or 'root-epoch'")
    return int(check_value(value, Field("int", low=1), "train.tau"))


def _model_section(sec: Mapping[str, Any]) -> dict[str, Any]:
    head = check_table(
        {"name": sec.get("name", "nested-linear")},
        {"name": Field("str", choices=_MODELS)},
        "model",
    )
    name = head["name"]
    rest = {k: v for k, v in sec.items() if k != "name"} if isinstance(sec, Mapping) else sec
    model = {"name": name, **check_table(rest, _MODEL_FIELDS[name], "model")}
    if "widths" in model:
        if model.get("family", "early-exit") != "ordered-dropout":
            raise CISInputError("model.widths", model["widths"], "only for ordered-dropout")
        check_widths(model["widths"])
    return model


def _data_section(sec: Mapping[str, Any]) -> dict[str, Any]:
    data = {
        "name": "synthetic",
        "split": "cis",
        "samples": 2000,
        "heterogeneity": 0.5,
        "test_samples": 1000,
    }
    data.update(check_table(sec, _DATA, "data"))
    return data


_PROB = Field("number", low=0.0, high=1.0)


def _participation_section(sec: Mapping[str, Any]) -> dict[str, Any]:
    part = {"policy": "deepest", **check_table(sec, _PARTICIPATION, "participation")}
    prob = part.get("prob")
    if isinstance(prob, Mapping):
        for tier, p in prob.items():
            name = f"participation.prob.{tier}"
            if not (isinstance(tier, str) and tier.isdigit() and int(tier) >= 1):
                raise CISInputError(name, p, "a key is an exit number (1, 2, ...)")
            check_value(p, _PROB, name)
    elif prob is not None:
        check_value(prob, _PROB, "participation.prob")
    return part


def _rule_section(sec: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": "serving-rate", **check_table(sec, _RULE, "rule")}


def config_digest(cfg: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a configuration (output path excluded)."""
    body = {k: v for k, v in cfg.items() if k != "output"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def fed_config(cfg: Mapping[str, Any]) -> FedConfig:
    """The :class:`FedConfig` of a configuration's ``train`` and ``seeds`` sections."""
    tr, seeds = cfg["train"], cfg["seeds"]
    kind = tr.get("schedule", "constant")
    lr = float(tr.get("lr", 0.1))
    sched = StepSchedule(
        kind,
        lr,
        gamma=float(tr.get("gamma", 1.0)),
        final=float(tr.get("final_lr", 0.0)),
        milestones=tuple(tr.get("milestones", ())),
        factor=float(tr.get("lr_factor", 0.1)),
    )
    tau = tr.get("tau", 1)
    if tau == "root-epoch":
        if tr.get("batch_size", 32) is None:
            raise CISInputError("train.tau", tau, "'root-epoch' needs a batch_size")
        tau = 1  # per-node steps are set by build_experiment from the data sizes
    return FedConfig(
        rounds=tr.get("rounds", 10),
        tau=tau if isinstance(tau, int) else tuple(tau),
        lr=sched,
        server_lr=float(tr.get("server_lr", 1.0)),
        batch_size=tr.get("batch_size", 32),
        weight_decay=float(tr.get("weight_decay", 0.0)),
        momentum=float(tr.get("momentum", 0.0)),
        aggregation=tr.get("aggregation", "unbiased"),
        selection_seed=int(seeds["selection"]),
        batch_seed=int(seeds["batch"]),
        init_seed=int(seeds["init"]),
        vectorised=bool(tr.get("vectorised", False)),
        eval_every=int(tr.get("eval_every", 1)),
        device=str(tr.get("device", "auto")),
        precision=str(tr.get("precision", "fp32")),
        nodes_per_round=cfg["participation"].get("nodes_per_round"),
        augment=str(cfg["data"].get("augment", "none")),
        augment_seed=int(seeds.get("augment", 4)),
    )


@dataclass
class Experiment:
    """Everything a run needs, built from a configuration."""

    cis: CIS
    model: EarlyExitModel
    node_data: NodeData
    test: Dataset | None
    participation: Participation
    lt: np.ndarray | Callable[[int], np.ndarray]
    lt_info: dict[str, Any]
    fed: FedConfig


def _default_dims(d_in: int, k: int) -> tuple[int, ...]:
    dims = tuple(max(1, round(d_in * (j + 1) / k)) for j in range(k))
    if len(set(dims)) != k:
        raise CISInputError("model.dims", list(dims), f"cannot nest {k} exits in {d_in} features")
    return dims


def _node_sizes(cis: CIS, total: int) -> list[int]:
    frac = cis.data / cis.data.sum() if cis.data_given else np.full(cis.n_nodes, 1 / cis.n_nodes)
    sizes = np.floor(total * frac + 1e-9).astype(np.int64)
    if (sizes < 1).any():
        raise CISInputError("data.samples", total, "too few samples: a node would get none")
    return [int(s) for s in sizes]


def _load_data(cfg: Mapping[str, Any], cis: CIS, images: bool) -> tuple[NodeData, Dataset | None]:
    d = cfg["data"]
    rng = np.random.default_rng(int(cfg["seeds"]["data"]))
    k = cis.n_exits
    name = d["name"]
    if name.startswith("synthetic"):
        dims = tuple(d.get("dims", cfg["model"].get("dims", (2, 4, 8)[-k:] if k <= 3 else None)))
        if not dims or len(dims) != k:
            raise CISInputError("data.dims", list(dims or []), f"need {k} nested feature counts")
        sizes = (
            _node_sizes(cis, int(d["samples"]))
            if d["split"] == "cis"
            else [int(d["samples"]) // cis.n_nodes] * cis.n_nodes
        )
        common = {
            "dims": dims,
            "heterogeneity": float(d["heterogeneity"]),
            "difficulty_probs": d.get("difficulty_probs"),
            "test_samples": int(d["test_samples"]),
            "rng": rng,
        }
        if name == "synthetic":
            nodes, test, _ = synthetic_classification(
                cis.n_nodes, sizes, n_classes=int(d.get("n_classes", 4)), **common
            )
        else:
            nodes, test, _ = synthetic_regression(
                cis.n_nodes, sizes, noise=float(d.get("noise", 0.1)), **common
            )
        return nodes, test
    if name == "digits":
        full = digits(images=images)
        perm = rng.permutation(len(full))
        n_test = len(full) // 5
        test, pool = full.subset(np.sort(perm[:n_test])), full.subset(np.sort(perm[n_test:]))
    else:
        if "path" not in d:
            raise CISInputError("data.path", None, f"{name} needs the directory of its files")
        if name in {"mnist", "fashion-mnist"}:
            pool = load_idx(d["path"], variant=name, train=True)
            test = load_idx(d["path"], variant=name, train=False)
        else:
            label = d.get("label", "fine")
            pool = load_cifar(d["path"], variant=name, train=True, label=label)
            test = load_cifar(d["path"], variant=name, train=False, label=label)
    if not images:
        pool = Dataset(pool.x.reshape(len(pool), -1), pool.y)
        test = Dataset(test.x.reshape(len(test), -1), test.y)
    total = min(int(d["samples"]), len(pool))
    if d["split"] == "dirichlet":
        sub = pool.subset(np.sort(rng.permutation(len(pool))[:total]))
        return dirichlet_split(sub, cis.n_nodes, float(d.get("alpha", 0.5)), rng=rng), test
    if d["split"] == "cis-dirichlet":
        alpha = float(d.get("alpha", 0.5))
        return split_tiers_dirichlet(pool, cis, alpha, rng=rng, total=total), test
    if d["split"] == "cis" and cis.data_given:
        return split_for_cis(pool, cis, rng=rng, total=total), test
    return split_by_sizes(pool, [total // cis.n_nodes] * cis.n_nodes, rng=rng), test


def _build_model(cfg: Mapping[str, Any], k: int, data: list[Dataset]) -> EarlyExitModel:
    m = cfg["model"]
    name = m["name"]
    x = data[0].x
    n_classes: int | None = None
    if not data[0].y.dtype.is_floating_point:
        seen = max(int(d.y.max()) + 1 for d in data if len(d))
        n_classes = max(int(m.get("n_classes", seen)), 2)
    gen = torch.Generator().manual_seed(int(cfg["seeds"]["init"]))
    if name == "nested-linear":
        d_in = int(x.shape[1])
        dims = tuple(m.get("dims", _default_dims(d_in, k)))
        model: EarlyExitModel = NestedLinear(
            d_in, dims, n_classes, bias=bool(m.get("bias", True)), generator=gen
        )
    elif name == "mlp":
        hidden = tuple(m.get("hidden", (32,) * k))
        model = EarlyExitMLP(int(x.shape[1]), hidden, n_classes, generator=gen)
    elif m.get("family", "early-exit") == "ordered-dropout":
        model = _ordered_dropout_model(m, k, int(x.shape[1]), n_classes, gen)
    elif name == "cnn":
        channels = tuple(m.get("channels", tuple(16 * 2**j for j in range(k))))
        model = EarlyExitCNN(int(x.shape[1]), channels, n_classes, generator=gen)
    else:
        if n_classes is None:
            raise CISInputError("model.name", name, "resnet18 is a classifier")
        model = EarlyExitResNet18(
            tuple(m.get("exits", (3, 9, 17))),
            n_classes,
            in_channels=int(x.shape[1]),
            width=int(m.get("width", 64)),
            norm=str(m.get("norm", "batch")),
            generator=gen,
        )
    if model.n_exits != k:
        raise CISInputError("model", dict(m), f"the model has {model.n_exits} exits, the spec {k}")
    return model


def _ordered_dropout_model(
    m: Mapping[str, Any], k: int, in_channels: int, n_classes: int | None, gen: torch.Generator
) -> EarlyExitModel:
    """The width-nested CNN or ResNet-18 (widths default to 0.25, 0.5, 1.0 for 3 exits,
    ``j / K`` otherwise)."""
    default = (0.25, 0.5, 1.0) if k == 3 else tuple((j + 1) / k for j in range(k))
    widths = check_widths(m.get("widths", default))
    if m["name"] == "cnn":
        channels = tuple(m.get("channels", (16, 32, 64)))
        return OrderedDropoutCNN(in_channels, channels, n_classes, widths=widths, generator=gen)
    if n_classes is None:
        raise CISInputError("model.name", m["name"], "resnet18 is a classifier")
    return OrderedDropoutResNet18(
        widths, n_classes, in_channels=in_channels, width=int(m.get("width", 64)), generator=gen
    )


def _participation(cfg: Mapping[str, Any], cis: CIS, sizes: np.ndarray) -> Participation:
    p = cfg["participation"]
    if p["policy"] in POLICIES:
        part = named_policy(cis, p["policy"])
    elif p["policy"] == "shallower":
        prob = p.get("prob")
        if prob is None:
            raise CISInputError("participation.prob", None, "'shallower' needs prob")
        if isinstance(prob, Mapping):
            prob = {int(key): float(v) for key, v in prob.items()}
        part = shallower_with_probability(cis, prob)
    else:
        if "q" not in p:
            raise CISInputError("participation.q", None, "'explicit' needs the table q")
        part = explicit(cis, q_table(cis, p["q"]))
    part = Participation(q=part.q, data=sizes, name=part.name)
    if p.get("nodes_per_round") is not None:
        part = fixed_count(part, int(p["nodes_per_round"]))
    return part


def _rule(
    cfg: Mapping[str, Any], cis: CIS, part: Participation
) -> tuple[np.ndarray | Callable[[int], np.ndarray], dict[str, Any]]:
    """The training weights the configuration names (a function of the round for a schedule),
    through the rule registry (:func:`cistheory.rules.get_rule`); ``explicit`` takes ``lt``
    as given."""
    r = cfg["rule"]
    name = r["name"]
    info: dict[str, Any] = {"rule": name, "lambda": cis.lam.tolist()}
    if name == "explicit":
        if "lt" not in r:
            raise CISInputError("rule.lt", None, "the explicit rule needs lt")
        lt = as_simplex(r["lt"], "rule.lt")  # refused unless it sums to 1; never rescaled
        info["lt"] = lt.tolist()
        return lt, info
    rule = get_rule(name)
    if ("v" in rule.needs or "sigma" in rule.needs) and "sigma" not in r:
        raise CISInputError("rule.sigma", None, f"rule '{name}' needs sigma, one per exit")
    flops = r.get("exit_flops", None if cis.exit_flops is None else cis.exit_flops.tolist())
    if rule.per_round and flops is None:
        raise CISInputError("rule.exit_flops", None, "the spec gives no FLOPs per exit")
    horizon = int(r.get("horizon", cfg["train"].get("rounds", 10)))
    inputs = rule_inputs(
        cis, part, sigma=r.get("sigma"), G=r.get("G"), exit_flops=flops, horizon=horizon
    )
    if inputs.v is not None and ("v" in rule.needs or "sigma" in rule.needs):
        info["v"] = inputs.v.tolist()
    if rule.per_round:
        info["exit_flops"] = list(flops)
        info["horizon"] = horizon
        info["lt_round0"] = rule.weights(replace(inputs, round_t=0)).tolist()
        return (lambda t: rule.weights(replace(inputs, round_t=t))), info
    lt = rule.weights(inputs)
    info["lt"] = lt.tolist()
    return lt, info


def build_experiment(cfg: Mapping[str, Any]) -> Experiment:
    """Load the spec, data, model, participation and weights a configuration names."""
    cis = load_spec(cfg["spec"])
    images = cfg["model"]["name"] in {"cnn", "resnet18"}
    nodes, test = _load_data(cfg, cis, images)
    if len(nodes) != cis.n_nodes:
        raise CISInputError("data", len(nodes), f"expected data for {cis.n_nodes} nodes")
    sizes = np.asarray([len(d) for d in nodes], dtype=np.float64)
    model = _build_model(cfg, cis.n_exits, [*nodes, *([] if test is None else [test])])
    part = _participation(cfg, cis, sizes)
    lt, info = _rule(cfg, cis, part)
    fed = fed_config(cfg)
    if fed.augment != "none" and nodes[0].x.ndim != 4:
        raise CISInputError(
            "data.augment",
            fed.augment,
            f"needs images (channels, height, width); model {cfg['model']['name']!r} on "
            f"{cfg['data']['name']!r} data reads flat vectors",
        )
    if cfg["train"].get("tau") == "root-epoch":
        assert fed.batch_size is not None
        fed = replace(
            fed, tau=root_epoch_steps(sizes, int(np.argmax(cis.parent < 0)), fed.batch_size)
        )
    return Experiment(cis, model, nodes, test, part, lt, info, fed)


def root_epoch_steps(sizes: np.ndarray, root: int, batch_size: int) -> tuple[int, ...]:
    r"""Local steps of the reference schedule: every node takes about one root epoch.

    Node :math:`i` runs :math:`\mathrm{round}(m_{root} / m_i)` local epochs of
    :math:`\lceil m_i / B \rceil` steps (``docs/theory.md``, Section 7).

    Examples
    --------
    >>> root_epoch_steps(np.array([15000.0, 7500.0, 3750.0]), 0, 128)
    (118, 118, 120)
    """
    m = np.asarray(sizes, dtype=np.float64)
    if not (m > 0).all():
        raise CISInputError("data", m.tolist(), "'root-epoch' steps need data on every node")
    epochs = np.maximum(np.round(m[root] / m), 1)
    return tuple(int(e * np.ceil(v / batch_size)) for e, v in zip(epochs, m, strict=True))
