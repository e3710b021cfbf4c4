"""Shared by the Flower tests: the train config, an in-process grid, an independent loop.

Importing this module imports Flower: test modules call ``pytest.importorskip("flwr")``
first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import Context, Error, Message, RecordDict
from flwr.serverapp import Grid
from flwr.supercore.task_identity import TaskIdentity

from cistheory.flower.apps import client_app
from cistheory.train.config import build_experiment, load_config

# The reference 7-node tree (80-15-5), the digits MLP, 3 rounds, fixed seeds.
CONFIG = """
spec = "reference:80-15-5"
checkpoint_every = 1
[model]
{model}
[data]
name = "digits"
samples = 1437
[participation]
policy = "{policy}"
[rule]
name = "serving-rate"
[train]
rounds = {rounds}
tau = 2
lr = 0.3
batch_size = 16
momentum = 0.5
weight_decay = 0.0001
aggregation = "{rule}"
eval_every = 1
[seeds]
selection = 5
batch = 6
init = 7
data = 8
"""
MLP = 'name = "mlp"\nhidden = [16, 16, 16]'
RESNET_BN = 'name = "resnet18"\nexits = [3, 9, 17]\nwidth = 4\nnorm = "batch"'
CASES = [
    ("deepest", "unbiased"),
    ("deepest", "multiplicative"),
    ("p40", "unbiased"),
    ("p40", "multiplicative"),
]


def write_config(
    path: Path, policy: str = "deepest", rule: str = "unbiased", rounds: int = 3, model: str = MLP
) -> Path:
    path.write_text(
        CONFIG.format(policy=policy, rule=rule, rounds=rounds, model=model), encoding="utf-8"
    )
    return path.resolve()


def max_diff(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    assert set(a) == set(b)
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def model_pt(out: Path) -> dict[str, torch.Tensor]:
    return dict(torch.load(out / "model.pt", weights_only=True))


@contextmanager
def task_identity() -> Iterator[None]:
    """Flower stamps new messages with the task's ids, which its processes set."""
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 1, 1
    try:
        yield
    finally:
        TaskIdentity.run_id = TaskIdentity.node_id = TaskIdentity.task_id = None


class InProcessGrid(Grid):
    """A grid that delivers each message to the ClientApp in this process.

    Node ``i`` of the spec is Flower node ``9000 + 17 i`` with the simulation's node config.
    ``lost`` maps ``(round, node)`` to ``"error"`` (an error reply, as Flower sends for a
    node that died) or ``"silent"`` (no reply: a timeout); ``absent`` nodes are not
    connected; ``rejoin`` maps a round to a node that, once that round's messages are sent,
    connects again under a new Flower id (its old id stays listed, as Flower lists a killed
    node until its heartbeat expires). Replies come back in a shuffled order.
    """

    def __init__(
        self,
        run_config: Mapping[str, Any],
        n_nodes: int,
        *,
        lost: Mapping[tuple[int, int], str] | None = None,
        absent: Iterable[int] = (),
        rejoin: Mapping[int, int] | None = None,
        seed: int = 0,
    ) -> None:
        self.run_config = dict(run_config)
        gone = set(absent)
        self.nodes = {
            9000 + 17 * i: {"partition-id": i, "num-partitions": n_nodes}
            for i in range(n_nodes)
            if i not in gone
        }
        self.lost = dict(lost or {})
        self.rejoin = dict(rejoin or {})
        self.round = 0
        self.replies: dict[str, Message] = {}
        self.rng = np.random.default_rng(seed)
        self.train_messages = 0

    def set_run(self, run: Any) -> None:
        raise NotImplementedError

    @property
    def run(self) -> Any:
        raise NotImplementedError

    def create_message(self, *args: Any, **kwargs: Any) -> Message:
        raise NotImplementedError

    def get_node_ids(self) -> list[int]:
        for rnd, i in self.rejoin.items():
            if self.round >= rnd:
                self.nodes.setdefault(5000 + i, {"partition-id": i, "num-partitions": 7})
        return list(self.nodes)

    def push_messages(self, messages: Iterable[Message]) -> list[str]:
        ids = []
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = msg.object_id
            ids.append(msg.object_id)
            reply = self._deliver(msg)
            if reply is not None:
                reply.metadata.__dict__["_message_id"] = reply.object_id
                self.replies[msg.object_id] = reply
        return ids

    def _deliver(self, msg: Message) -> Message | None:
        node_config = self.nodes[msg.metadata.dst_node_id]
        if msg.metadata.message_type == "train":
            self.train_messages += 1
            self.round = max(self.round, int(msg.metadata.group_id))
            what = self.lost.get((int(msg.metadata.group_id), node_config["partition-id"]))
            if what == "silent":
                return None
            if what == "error":
                return Message(Error(code=5, reason="node unavailable"), reply_to=msg)
        ctx = Context(
            run_id=1,
            node_id=msg.metadata.dst_node_id,
            node_config=dict(node_config),
            state=RecordDict(),
            run_config=dict(self.run_config),
        )
        try:
            return client_app(msg, ctx)
        except Exception as exc:  # a raising ClientApp gives an error reply in Flower too
            return Message(Error(code=2, reason=repr(exc)), reply_to=msg)

    def pull_messages(self, message_ids: Iterable[str]) -> list[Message]:
        out = [self.replies.pop(m) for m in list(message_ids) if m in self.replies]
        return [out[j] for j in self.rng.permutation(len(out))]

    def send_and_receive(self, *args: Any, **kwargs: Any) -> list[Message]:
        raise NotImplementedError


def plain_loop(config: Path, drop: Mapping[int, set[int]] | None = None) -> dict[str, torch.Tensor]:
    """The algorithm from its statement (``docs/theory.md``, Section 3), without cistheory's
    loop, local update or weights: its own exit draw, minibatch indices, heavy-ball SGD with
    weight decay and the unbiased / multiplicative pair weights computed here.

    ``drop`` maps a round (from 1) to the nodes whose update never arrives: the random
    streams advance as drawn, the lost update adds nothing, the other weights stay.
    """
    cfg = load_config(config)
    exp = build_experiment(cfg)
    fed = exp.fed
    model = exp.model
    model.reset_parameters(torch.Generator().manual_seed(int(cfg["seeds"]["init"])))
    q = exp.participation.q
    n = q.shape[0]
    m = np.array([len(d) for d in exp.node_data], dtype=float)
    lt = np.asarray(exp.lt, dtype=float)
    mk = (m[:, None] * (q > 0)).sum(axis=0)
    beta = np.where(q > 0, lt[None, :] * m[:, None] / mk[None, :], 0.0)
    w = beta / np.where(q > 0, q, 1.0) if fed.aggregation == "unbiased" else beta * q
    sel = np.random.default_rng(fed.selection_seed)
    gen = torch.Generator().manual_seed(fed.batch_seed)
    tr = cfg["train"]
    lr, mu, rho = float(tr["lr"]), fed.momentum, fed.weight_decay
    tau, bsz = int(tr["tau"]), int(tr["batch_size"])
    for t in range(fed.rounds):
        u = sel.random(n)
        cum = np.cumsum(q, axis=1)
        picks = [
            int(np.argmax(u[i] < cum[i])) + 1 if (u[i] < cum[i]).any() else 0 for i in range(n)
        ]
        picked = [i for i in range(n) if picks[i]]
        ub = torch.rand((len(picked), tau, bsz), generator=gen, dtype=torch.float64)
        glob = {k: v.detach().clone() for k, v in model.named_parameters()}
        total = {k: torch.zeros_like(v) for k, v in glob.items()}
        for r, i in enumerate(picked):
            if i in (drop or {}).get(t + 1, set()):
                continue
            k = picks[i]
            names = model.exit_parameter_names(k)
            p = {nm: glob[nm].clone() for nm in names}
            buf = {nm: torch.zeros_like(v) for nm, v in p.items()}
            d = exp.node_data[i]
            for s in range(tau):
                idx = torch.clamp((ub[r, s] * len(d)).to(torch.int64), max=len(d) - 1)
                xb, yb = d.x[idx], d.y[idx]
                pg = {nm: v.requires_grad_(True) for nm, v in p.items()}
                out = torch.func.functional_call(model, {**glob, **pg}, (xb,), {"exit": k})
                grads = torch.autograd.grad(
                    torch.nn.functional.cross_entropy(out, yb), list(pg.values())
                )
                for (nm, v), g in zip(pg.items(), grads, strict=True):
                    buf[nm] = mu * buf[nm] + g + rho * v.detach()
                    p[nm] = v.detach() - lr * buf[nm]
            for nm in names:
                total[nm] += float(w[i, k - 1]) * (p[nm] - glob[nm])
        with torch.no_grad():
            for nm, par in model.named_parameters():
                par.add_(total[nm])
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
