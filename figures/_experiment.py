"""The accuracy experiment: train an early-exit model in the reference CIS, serve a test set.

One *run* trains an early-exit MLP on the handwritten digits shipped with scikit-learn
(1,797 8x8 images; or a difficulty-structured synthetic task) with the CIS algorithm on the
7-node reference tree for a given rate split, data split, rule for ``lt``, participation
policy and seed, then serves the held-out test set through the CIS (easiest requests
first) and records the system accuracy. Runs are cached one JSON file each (written
atomically), so an interrupted grid resumes where it stopped.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

import cistheory as ct
from cistheory.rules import get_rule, rule_inputs

from ._common import atomic_write_bytes, load_json, write_json

__all__ = [
    "ENGINES",
    "RunSpec",
    "Setting",
    "evaluate_run",
    "mean_ci",
    "run_grid",
    "run_one",
    "set_options",
    "train_outputs",
    "train_outputs_many",
    "workers_for",
]


@dataclass(frozen=True)
class Setting:
    """Training set-up shared by every run of a grid."""

    task: str = "digits"
    hidden: tuple[int, ...] = (32, 32, 32)
    rounds: int = 20
    batch_size: int = 16
    lr: float = 0.1
    lr_final: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 5e-4
    test_fraction: float = 0.3
    max_tau: int = 1000


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid."""

    split: str
    data: str
    rule: str
    seed: int
    participation: str = "deepest"
    setting: Setting = field(default_factory=Setting)

    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _dataset(setting: Setting, seed: int) -> tuple[Any, Any]:
    return _dataset_cached(setting.task, setting.test_fraction, seed)


@functools.lru_cache(maxsize=16)
def _dataset_cached(task: str, test_fraction: float, seed: int) -> tuple[Any, Any]:
    """Train/test split of the task (cached: loading the digits imports scikit-learn)."""
    from cistheory.train import data as tdata

    rng = np.random.default_rng([seed, 11])
    if task == "digits":
        full = tdata.digits()
    elif task == "synthetic":
        nodes, _, _ = tdata.synthetic_classification(
            1, 3000, dims=(4, 12, 32), n_classes=5, heterogeneity=0.0, rng=rng
        )
        full = nodes[0]
    else:
        raise ct.CISInputError("task", task, "use 'digits' or 'synthetic'")
    perm = rng.permutation(len(full))
    n_test = round(test_fraction * len(full))
    test = full.subset(np.sort(perm[:n_test]))
    train = full.subset(np.sort(perm[n_test:]))
    return train, test


def _model(setting: Setting, d_in: int, n_classes: int, seed: int) -> Any:
    import torch

    from cistheory.train.models import EarlyExitMLP

    return EarlyExitMLP(
        d_in, setting.hidden, n_classes, generator=torch.Generator().manual_seed(seed)
    )


def mlp_exit_flops(d_in: int, hidden: Sequence[int], n_classes: int) -> np.ndarray:
    """Relative multiply-accumulates of the MLP cut at each exit (trunk up to k plus head k)."""
    widths = [d_in, *hidden]
    trunk = np.cumsum([widths[j] * widths[j + 1] for j in range(len(hidden))])
    macs = trunk + np.asarray(hidden) * n_classes
    return np.asarray(macs / macs[-1], dtype=np.float64)


def _init_setup(setting: Setting, data: str, seed: int) -> tuple[ct.CIS, list[Any], Any]:
    """The reference CIS (data sizes only: the rates do not matter here), each node's
    training data and the model at initialisation, as a run of ``seed`` starts."""
    from cistheory.train.data import split_for_cis

    cis = ct.reference_cis("80-15-5", data)
    train, _ = _dataset(setting, seed)
    node_data = split_for_cis(train, cis, rng=np.random.default_rng([seed, 12]))
    n_classes = int(train.y.max()) + 1
    model = _model(setting, train.x.shape[1], n_classes, seed)
    return cis, node_data, model


def estimate_sigma(setting: Setting, data: str, seed: int, policy: str) -> list[float]:
    r"""Per-exit gradient-noise standard deviation at initialisation (pooled over nodes).

    For each exit :math:`k`, :math:`\sigma_k = (\operatorname{mean}_i \sigma^2_{i,k})^{1/2}`
    over its training population (nodes with :math:`q_{i,k} > 0` and at least two samples),
    with :math:`\sigma^2_{i,k}` the minibatch gradient variance at the setting's batch size
    of :func:`cistheory.train.constants.gradient_noise`.
    """
    from cistheory.train.constants import gradient_noise

    cis, node_data, model = _init_setup(setting, data, seed)
    part = ct.named_policy(cis, policy)
    sizes = np.asarray([len(d) for d in node_data])
    pop = (part.q > 0) & (sizes >= 2)[:, None]
    sigma2 = gradient_noise(model, node_data, batch_size=setting.batch_size, pairs=pop)
    sig = []
    for k in range(1, cis.n_exits + 1):
        rows = np.flatnonzero(pop[:, k - 1])
        if rows.size == 0:
            raise ct.CISInputError("data", data, f"no node with two samples trains exit {k}")
        var_sum = 0.0
        for i in rows:  # summed in node order (the cache keys depend on the last bit)
            var_sum += float(sigma2[i, k - 1])
        sig.append(math.sqrt(var_sum / rows.size))
    return sig


@functools.cache
def pair_smoothness_at_init(setting: Setting, data: str, seed: int, policy: str) -> np.ndarray:
    """Pair smoothness L_ik of the model at initialisation on the pairs of ``policy``
    (:func:`cistheory.train.constants.pair_smoothness`, 20 power iterations)."""
    from cistheory.train.constants import pair_smoothness

    cis, node_data, model = _init_setup(setting, data, seed)
    q = np.asarray(ct.named_policy(cis, policy).q)
    return pair_smoothness(model, node_data, q > 0, weight_decay=setting.weight_decay,
                           power_iters=20, power_tol=1e-3)


def estimated_stable_constants(spec: RunSpec, sigma: Sequence[float]) -> Any:
    r"""The constants of the second-generation design (``convex.StableConstants``) for a run:
    measured at initialisation on the model (pair smoothness, noise ``sigma`` per exit, the
    gradient norms as the caps :math:`\bar Z^2` and :math:`\bar\zeta^2`), illustrative where a
    network has none (:math:`\mu = \underline\mu_t = 0.1`, :math:`\bar r_0 = 2/0.1`, as
    :func:`convex.reference_constants`), the step the trainer uses."""
    import convex

    s = spec.setting
    cis = ct.reference_cis(spec.split, spec.data)
    q = np.asarray(ct.named_policy(cis, spec.participation).q)
    L_pair = pair_smoothness_at_init(s, spec.data, spec.seed, spec.participation)
    grad = np.asarray(_grad_bound_cached(s, spec.data, spec.seed), dtype=np.float64)
    sig = np.asarray(sigma, dtype=np.float64)
    el = q > 0
    return convex.StableConstants(
        L_pair=L_pair, s2=np.where(el, sig[None, :] ** 2, 0.0),
        Z2=np.where(el, grad[None, :] ** 2, 0.0), zeta2=float(np.max(grad) ** 2), mu=0.1,
        mu_t=0.1, L_bar=float(L_pair.max()), r0=20.0, T=s.rounds,
        m=np.asarray(cis.data, dtype=np.float64), etas=(s.lr,)).validated()


def _lt_for(
    spec: RunSpec, cis: ct.CIS, part: ct.Participation, sigma: Sequence[float], flops: np.ndarray
) -> np.ndarray | Callable[[int], np.ndarray]:
    rule = get_rule(spec.rule)
    # the FLOPs schedule spans the run: tau_t = (t + 1) / rounds reaches 1 at its last round
    stable = estimated_stable_constants(spec, sigma) if spec.rule == "bound-optimal" else None
    inputs = rule_inputs(cis, part, sigma=sigma, exit_flops=flops, horizon=spec.setting.rounds,
                         stable=stable)
    if rule.per_round:
        return lambda t: rule.weights(replace(inputs, round_t=t))
    return rule.weights(inputs)


def _schedule(spec: RunSpec, sigma: Sequence[float]) -> list[list[float]]:
    """The ``lt`` of every round of a run (constant except for the FLOPs schedule)."""
    s = spec.setting
    cis = ct.reference_cis(spec.split, spec.data)
    part = ct.named_policy(cis, spec.participation)
    train, _ = _dataset(s, spec.seed)
    n_classes = int(train.y.max()) + 1
    flops = mlp_exit_flops(train.x.shape[1], s.hidden, n_classes)
    lt = _lt_for(spec, cis, part, sigma, flops)
    return [[float(x) for x in (lt(t) if callable(lt) else lt)] for t in range(s.rounds)]


def _train_path(spec: RunSpec, schedule: Sequence[Sequence[float]], cache: Path) -> Path:
    """Cache file of a training.

    The trained model depends on the rate split only through ``lt``, so trainings are keyed
    by (data split, participation, seed, setting, the ``lt`` of every round): rules whose
    weights do not depend on the serving shares train once for all seven splits.
    """
    blob = json.dumps(
        {
            "data": spec.data,
            "participation": spec.participation,
            "seed": spec.seed,
            "setting": asdict(spec.setting),
            "lt": [[round(float(x), 12) for x in w] for w in schedule],
        },
        sort_keys=True,
    )
    return cache / f"train-{hashlib.sha256(blob.encode()).hexdigest()[:20]}.npy"


def _fed_config(spec: RunSpec, root_samples: int, device: str) -> Any:
    """The loop's configuration of a run: every node takes the same number of local steps,
    about one epoch of the root's data (the reference's local epochs round(root data / node
    data)), capped by the setting."""
    from cistheory.train.fedloop import FedConfig, StepSchedule

    s = spec.setting
    tau = max(1, min(s.max_tau, math.ceil(root_samples / s.batch_size)))
    return FedConfig(
        rounds=s.rounds,
        tau=tau,
        lr=StepSchedule("cosine", lr=s.lr, final=s.lr_final),
        batch_size=s.batch_size,
        weight_decay=s.weight_decay,
        momentum=s.momentum,
        selection_seed=spec.seed,
        batch_seed=spec.seed + 1,
        init_seed=spec.seed + 2,
        vectorised=True,
        device=device,
    )


def train_outputs(
    spec: RunSpec, schedule: Sequence[Sequence[float]], device: str = "cpu"
) -> np.ndarray:
    """Train with the given ``lt`` schedule; return the per-exit test logits (N_test, K, C)."""
    import torch

    from cistheory.train.fedloop import run_federated

    s = spec.setting
    cis, node_data, model = _init_setup(s, spec.data, spec.seed)
    part = ct.named_policy(cis, spec.participation)
    _, test = _dataset(s, spec.seed)
    cfg = _fed_config(spec, len(node_data[0]), device)
    run_federated(model, node_data, part.q, lambda t: schedule[t], cfg)
    model.eval()
    with torch.no_grad():
        return torch.stack(model.forward_all(test.x), dim=1).numpy().astype(np.float64)


def train_outputs_many(
    items: Sequence[tuple[RunSpec, Sequence[Sequence[float]]]], device: str = "cpu"
) -> list[np.ndarray]:
    """Train runs that share their data split, participation, seed and setting at once
    (:func:`cistheory.train.manyruns.run_many`); the per-exit test logits of each.

    Every run gets what :func:`train_outputs` gives it alone (bitwise on the CPU for the
    figures' MLP: ``tests/test_train_manyruns.py``, ``tests/test_figures.py``).
    """
    import torch

    from cistheory.train.manyruns import Run, run_many

    spec0 = items[0][0]
    keys = {(s.data, s.participation, s.seed, s.setting) for s, _ in items}
    if len(keys) != 1:
        raise ct.CISInputError("items", len(keys), "runs trained at once share data and seed")
    cis, node_data, model = _init_setup(spec0.setting, spec0.data, spec0.seed)
    part = ct.named_policy(cis, spec0.participation)
    _, test = _dataset(spec0.setting, spec0.seed)
    cfg = _fed_config(spec0, len(node_data[0]), device)
    runs = [Run(part.q, _schedule_fn(sched), cfg) for _, sched in items]
    results = run_many(model, node_data, runs)
    outs = []
    for res in results:
        model.load_state_dict(res.state_dict)
        model.eval()
        with torch.no_grad():
            outs.append(torch.stack(model.forward_all(test.x), dim=1).numpy().astype(np.float64))
    return outs


def _schedule_fn(schedule: Sequence[Sequence[float]]) -> Callable[[int], Sequence[float]]:
    return lambda t: schedule[t]


def _save_npy(path: Path, array: np.ndarray) -> Path:
    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _train_to_cache(spec: RunSpec, schedule: list[list[float]], path: Path, device: str) -> Path:
    return _save_npy(path, train_outputs(spec, schedule, device))


def _train_group_to_cache(
    group: list[tuple[RunSpec, list[list[float]], Path]], device: str
) -> list[Path]:
    outs = train_outputs_many([(spec, sched) for spec, sched, _ in group], device)
    return [_save_npy(path, out) for (_, _, path), out in zip(group, outs, strict=True)]


def _single_thread_worker() -> None:
    import torch

    torch.set_num_threads(1)


def evaluate_run(
    spec: RunSpec, schedule: Sequence[Sequence[float]], outputs: np.ndarray
) -> dict[str, Any]:
    """Serve the test set through the CIS of ``spec``; a JSON-ready record."""
    from cistheory.train.evaluate import evaluate_cis

    cis = ct.reference_cis(spec.split, spec.data)
    _, test = _dataset(spec.setting, spec.seed)
    ev = evaluate_cis(cis, outputs, test.y.numpy(), rng=np.random.default_rng([spec.seed, 13]))
    lt_final = np.asarray(schedule[-1])
    return {
        "split": spec.split,
        "leaf_share": float(cis.lam[0]),
        "data": spec.data,
        "rule": spec.rule,
        "seed": spec.seed,
        "participation": spec.participation,
        "accuracy": float(ev.accuracy),
        "exit_accuracy": [float(a) for a in ev.exit_accuracy],
        "shares": [float(x) for x in ev.shares],
        "lt": [float(x) for x in lt_final],
        "chi2": float(np.sum((cis.lam - lt_final) ** 2 / lt_final)),
    }


ENGINES: tuple[str, ...] = ("batched", "single")
"""How :func:`run_grid` trains: ``batched`` runs the trainings that share their data split,
participation and seed at once (:func:`train_outputs_many`); ``single`` trains them one by
one (:func:`train_outputs`). Both give the same numbers (bitwise on the CPU)."""

_OPTIONS: dict[str, str] = {"engine": "batched", "device": "cpu"}


def set_options(*, engine: str | None = None, device: str | None = None) -> None:
    """The engine and device :func:`run_grid` uses when its caller names none (set by
    ``python -m figures --engine ... --device ...`` for every figure of the invocation)."""
    if engine is not None:
        if engine not in ENGINES:
            raise ct.CISInputError("engine", engine, f"use one of {', '.join(ENGINES)}")
        _OPTIONS["engine"] = engine
    if device is not None:
        _OPTIONS["device"] = device


# long: sigma estimation, deduplication, the pool of workers and evaluation in one pass
def run_grid(
    specs: Iterable[RunSpec],
    cache: Path,
    progress: Callable[[int, int, RunSpec], None] | None = None,
    workers: int = 1,
    *,
    engine: str | None = None,
    device: str | None = None,
) -> list[dict[str, Any]]:
    """Run every spec not already cached under ``cache``; return all records in order.

    The noise constants are estimated once per (data split, seed, participation); the
    distinct trainings (keyed by their ``lt`` schedule, so a rule whose weights do not depend
    on the rate split trains once for every split) are run in ``workers`` processes (one
    torch thread each; every training is seeded on its own, so the result does not depend on
    ``workers`` or on ``engine``), each written to the cache as it finishes; then every run is
    evaluated and cached. With ``engine="batched"`` the trainings of one (data split,
    participation, seed) train at once (:func:`train_outputs_many`).
    ``progress(done, total, spec)`` is called after each training with the number done.
    """
    engine = _OPTIONS["engine"] if engine is None else engine
    device = _OPTIONS["device"] if device is None else device
    if engine not in ENGINES:
        raise ct.CISInputError("engine", engine, f"use one of {', '.join(ENGINES)}")
    specs = list(specs)
    cache.mkdir(parents=True, exist_ok=True)
    records: dict[int, dict[str, Any]] = {}
    sigmas: dict[tuple[str, int, str, Setting], list[float]] = {}
    pending: list[tuple[int, RunSpec, list[list[float]], Path]] = []
    for j, spec in enumerate(specs):
        path = cache / f"run-{spec.key()}.json"
        if path.is_file():
            records[j] = load_json(path)
            continue
        sk = (spec.data, spec.seed, spec.participation, spec.setting)
        if sk not in sigmas:
            sigmas[sk] = estimate_sigma(spec.setting, spec.data, spec.seed, spec.participation)
        sched = _schedule(spec, sigmas[sk])
        pending.append((j, spec, sched, _train_path(spec, sched, cache)))
    todo: dict[Path, tuple[RunSpec, list[list[float]]]] = {}
    for _, spec, sched, tpath in pending:
        if not tpath.is_file():
            todo.setdefault(tpath, (spec, sched))
    _train_all(todo, engine, device, workers, progress)
    for j, spec, sched, tpath in pending:
        sk = (spec.data, spec.seed, spec.participation, spec.setting)
        rec = evaluate_run(spec, sched, np.asarray(np.load(tpath)))
        rec["sigma"] = sigmas[sk]
        write_json(cache / f"run-{spec.key()}.json", rec)
        records[j] = rec
    return [records[j] for j in range(len(specs))]


def _jobs(
    todo: dict[Path, tuple[RunSpec, list[list[float]]]], engine: str
) -> list[list[tuple[RunSpec, list[list[float]], Path]]]:
    """The trainings as jobs: one each, or one per (data, participation, seed, setting)."""
    if engine == "single":
        return [[(spec, sched, path)] for path, (spec, sched) in todo.items()]
    groups: dict[tuple[str, str, int, Setting], list[tuple[RunSpec, list[list[float]], Path]]]
    groups = {}
    for path, (spec, sched) in todo.items():
        key = (spec.data, spec.participation, spec.seed, spec.setting)
        groups.setdefault(key, []).append((spec, sched, path))
    return sorted(groups.values(), key=len, reverse=True)  # longest first: balanced workers


def _run_job(job: list[tuple[RunSpec, list[list[float]], Path]], engine: str, device: str) -> int:
    if engine == "single":
        spec, sched, path = job[0]
        _train_to_cache(spec, sched, path, device)
    else:
        _train_group_to_cache(job, device)
    return len(job)


def _train_all(
    todo: dict[Path, tuple[RunSpec, list[list[float]]]],
    engine: str,
    device: str,
    workers: int,
    progress: Callable[[int, int, RunSpec], None] | None,
) -> None:
    """Train every job of ``todo`` (in ``workers`` spawned processes when there are two
    jobs or more), reporting progress by trainings done."""
    jobs = _jobs(todo, engine)
    total = len(todo)
    done = 0
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_single_thread_worker
        ) as pool:
            futures = {pool.submit(_run_job, job, engine, device): job for job in jobs}
            for fut in as_completed(futures):
                fut.result()
                for spec, _, _ in futures[fut]:
                    done += 1
                    if progress is not None:
                        progress(done, total, spec)
    else:
        for job in jobs:
            _run_job(job, engine, device)
            for spec, _, _ in job:
                done += 1
                if progress is not None:
                    progress(done, total, spec)


def run_one(spec: RunSpec, sigma: Sequence[float]) -> dict[str, Any]:
    """Train and evaluate one cell without any cache; a JSON-ready record."""
    sched = _schedule(spec, sigma)
    return evaluate_run(spec, sched, train_outputs(spec, sched))


def workers_for(size: str) -> int:
    """Training processes for a figure size: one for ``tiny``, else up to two cores."""
    import os

    return 1 if size == "tiny" else max(1, min(2, os.cpu_count() or 1))


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and 95% confidence half-width (Student t) of a sample."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return float(x.mean()), 0.0
    half = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean()), float(half)


@functools.cache
def _grad_bound_cached(setting: Setting, data: str, seed: int) -> tuple[float, ...]:
    return tuple(estimate_grad_bound(setting, data, seed))


def estimate_grad_bound(setting: Setting, data: str, seed: int) -> list[float]:
    """Largest full-batch gradient norm over nodes, per exit, at initialisation.

    A point estimate of the gradient bound ``G_k`` of Lemma 2 (the bound proper is over the
    whole trajectory; at initialisation the gradients are typically at their largest): the
    maximum of :func:`cistheory.train.constants.gradient_norms` over the nodes hosting exit
    ``k``.
    """
    from cistheory.train.constants import gradient_norms

    cis, node_data, model = _init_setup(setting, data, seed)
    hosts = cis.capacity[:, None] >= np.arange(1, cis.n_exits + 1)[None, :]
    norms = gradient_norms(model, node_data, pairs=hosts)
    out = []
    for k in range(1, cis.n_exits + 1):
        best = 0.0
        for i in np.flatnonzero(hosts[:, k - 1]):
            best = max(best, float(norms[i, k - 1]))
        out.append(best)
    return out
