"""Every bad input of issue 11, one test each: the input, the exact one-line error, exit
status 2, nothing on standard output and nothing written."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cistheory as ct
from cistheory.cli import main

Capsys = pytest.CaptureFixture[str]


def _refused(capsys: Capsys, argv: list[str], message: str) -> None:
    """``argv`` ends with exit status 2 and exactly ``error: MESSAGE`` on standard error."""
    assert main(argv) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == f"error: {message}\n"


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (to show that nothing was written)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _project() -> dict[str, Any]:
    return ct.cis_to_spec(ct.reference_cis("80-15-5", "equal"))


def _release() -> dict[str, Any]:
    return copy.deepcopy(ct.system.reference.reference_spec_dict("80-15-5"))


def _write(tmp_path: Path, doc: Any, name: str = "spec.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


# ----------------------------------------------------------------------------- spec files


def test_unknown_node_field_suggests_the_known_one(tmp_path: Path, capsys: Capsys) -> None:
    doc = _project()
    doc["nodes"][3]["arival"] = 2.5  # an extra, misspelled arrival
    _refused(capsys, ["rates", _write(tmp_path, doc)],
             "nodes[3].arival = 2.5: unknown field; did you mean 'arrival'?")


def test_misspelled_data_is_not_equal_data(tmp_path: Path, capsys: Capsys) -> None:
    doc = _project()
    for node in doc["nodes"]:
        node["Data"] = node.pop("data")
    _refused(capsys, ["rates", _write(tmp_path, doc)],
             "nodes[0].Data = 15000.0: unknown field; did you mean 'data'?")


def test_unknown_top_level_field(tmp_path: Path, capsys: Capsys) -> None:
    doc = _project()
    doc["exit_flop"] = doc.pop("exit_flops")
    shown = repr(doc["exit_flop"])
    _refused(capsys, ["rates", _write(tmp_path, doc)],
             f"exit_flop = {shown}: unknown field; did you mean 'exit_flops'?")


def test_unknown_field_of_the_release_format(tmp_path: Path, capsys: Capsys) -> None:
    doc = _release()
    doc["extra"] = 1
    _refused(capsys, ["rates", _write(tmp_path, doc)],
             "extra = 1: unknown field; known fields: difficulty_quantization, loss_rescale, "
             "node_model_size, rates, rescale_by_flow_map, serving_weights_rescale, "
             "toplogy_as_edges")


def test_a_million_exits(tmp_path: Path, capsys: Capsys) -> None:
    doc = _project()
    doc["exits"] = 1_000_000
    _refused(capsys, ["rates", _write(tmp_path, doc)],
             "exits = 1000000: must be <= 1,024 (more exits than any early-exit model has; "
             "a typo?)")


def test_exits_beyond_every_node(tmp_path: Path, capsys: Capsys) -> None:
    doc = _project()
    doc["exits"] = 4
    doc["exit_flops"] = [0.1, 0.2, 0.5, 1.0]
    _refused(capsys, ["rates", _write(tmp_path, doc)],
             "exits = 4: no node hosts an exit above 3: exit 4 would serve nothing")


def test_null_node_id(tmp_path: Path, capsys: Capsys) -> None:
    doc = _project()
    doc["nodes"][0]["id"] = None
    _refused(capsys, ["rates", _write(tmp_path, doc)],
             "nodes[entry 1].id = None: must not be null (a node id)")


def test_decreasing_exit_flops(tmp_path: Path, capsys: Capsys) -> None:
    doc = _project()
    doc["exit_flops"] = [0.5, 0.3, 1.0]
    _refused(capsys, ["rates", _write(tmp_path, doc)],
             "exit_flops[2] = 0.3: below exit 1's 0.5: a deeper exit computes at least as much")


def test_exit_flops_not_a_list(tmp_path: Path, capsys: Capsys) -> None:
    doc = _project()
    doc["exit_flops"] = 5
    _refused(capsys, ["rates", _write(tmp_path, doc)],
             "exit_flops = 5: must be a list, not a number")


def test_integer_too_large_for_a_float(tmp_path: Path, capsys: Capsys) -> None:
    text = json.dumps(_project()).replace('"arrival": 2.5', '"arrival": 1' + "0" * 400, 1)
    path = tmp_path / "huge.json"
    path.write_text(text)
    shown = "1" + "0" * 79 + "... (401 characters)"
    _refused(capsys, ["rates", str(path)],
             f"nodes[3].arrival = {shown}: must be a finite number (too large)")


@pytest.mark.parametrize("kind", ["utf-16", "binary"])
def test_utf16_or_binary_file(kind: str, tmp_path: Path, capsys: Capsys) -> None:
    path = tmp_path / "spec.json"
    data = json.dumps(_project()).encode("utf-16") if kind == "utf-16" else bytes(range(256))
    path.write_bytes(data)
    _refused(capsys, ["rates", str(path)],
             f"spec = '{path}': cannot read: not UTF-8 text (a UTF-16 or binary file?)")


def test_deeply_nested_array(tmp_path: Path, capsys: Capsys) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    _refused(capsys, ["rates", str(path)], f"spec = '{path}': cannot parse: nested too deeply")


def test_top_level_list(tmp_path: Path, capsys: Capsys) -> None:
    path = _write(tmp_path, [1, 2])
    _refused(capsys, ["rates", path],
             f"spec = '{path}': the top level must be a table (an object), not a list")


def test_q_row_for_an_unknown_node(tmp_path: Path, capsys: Capsys) -> None:
    q = {str(i): [0, 0, 1] if i == 0 else [0, 1, 0] if i < 3 else [1, 0, 0] for i in range(7)}
    q["99"] = [1, 0, 0]
    path = _write(tmp_path, q, "q.json")
    _refused(capsys, ["weights", "reference:80-15-5", "--rule", "equal", "--participation",
                      path], "q[99] = [1, 0, 0]: unknown node id")


# ------------------------------------------------------------------------- command options


def test_design_names_the_flag(capsys: Capsys) -> None:
    _refused(capsys, ["design", "--mu", "0"], "--mu = 0.0: must be > 0")
    _refused(capsys, ["design", "--T", "-5"], "--T = -5: must be >= 1")


def test_negative_sigma_list_is_read_and_refused(capsys: Capsys) -> None:
    _refused(capsys, ["weights", "reference:80-15-5", "--rule", "opt-err", "--sigma",
                      "-0.1,0.2,0.3"], "sigma[1] = -0.1: must be > 0")


def test_flops_round_beyond_the_horizon(capsys: Capsys) -> None:
    _refused(capsys, ["weights", "reference:80-15-5", "--rule", "flops", "--round", "20",
                      "--horizon", "20"], "--round = 20: must be below the horizon 20 "
                      "(rounds 0..19)")


def test_usage_error_is_one_line(capsys: Capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["weights", "reference:80-15-5", "--rule", "nonsense"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: argument --rule: invalid choice")


def test_validate_rates_refuses_out_before_computing(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cistheory.cli.validate as cli_validate

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("computed before checking --out")

    monkeypatch.setattr(cli_validate, "validate_rates", never)
    afile = tmp_path / "a-file"
    afile.write_text("x")
    _refused(capsys, ["validate-rates", "--quick", "--out", f"{afile}/r.json"],
             f"--out = '{afile}/r.json': {afile} is a file, not a folder")
    _refused(capsys, ["validate-rates", "--quick", "--out", str(tmp_path / "no" / "r.json")],
             f"--out = '{tmp_path / 'no' / 'r.json'}': the folder does not exist")


# ---------------------------------------------------------------------- train: configuration

BASE = {"spec": "reference:80-15-5", "data": {"samples": 140, "test_samples": 20},
        "train": {"rounds": 2, "batch_size": 8}}


def _config(tmp_path: Path, change: dict[str, Any], name: str = "run.json") -> str:
    doc = copy.deepcopy(BASE)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key].update(value)
        else:
            doc[key] = value
    return _write(tmp_path, doc, name)


CONFIG_CASES = {
    "vectorised-no": ({"train": {"vectorised": "no"}},
                      "train.vectorised = 'no': must be true or false, not a string"),
    "hiden": ({"model": {"name": "mlp", "hiden": [32, 32, 32]}},
              "model.hiden = [32, 32, 32]: unknown field; did you mean 'hidden'?"),
    "Data": ({"Data": {"name": "digits"}},
             "Data = {'name': 'digits'}: unknown field; did you mean 'data'?"),
    "lr-fast": ({"train": {"lr": "fast"}}, "train.lr = 'fast': must be a number, not a string"),
    "samples-many": ({"data": {"samples": "many"}},
                     "data.samples = 'many': must be an integer, not a string"),
    "samples-huge": ({"data": {"samples": 10**10}},
                     "data.samples = 10000000000: must be <= 10,000,000 (data are held in "
                     "memory)"),
    "seed-negative": ({"seeds": {"selection": -1}}, "seeds.selection = -1: must be >= 0"),
    "seed-string": ({"seeds": {"batch": "abc"}},
                    "seeds.batch = 'abc': must be an integer, not a string"),
    "lt-not-normalised": ({"rule": {"name": "explicit", "lt": [0.5, 0.5, 0.5]}},
                          "rule.lt = [0.5, 0.5, 0.5]: must sum to 1 (sums to 1.5)"),
    "q-unknown-node": ({"participation": {"policy": "explicit", "q": {"99": [1, 0, 0]}}},
                       "q[99] = [1, 0, 0]: unknown node id"),
    "prob-key": ({"participation": {"policy": "shallower", "prob": {"x": 0.4}}},
                 "participation.prob.x = 0.4: a key is an exit number (1, 2, ...)"),
    "momentum-1": ({"train": {"momentum": 1.0}}, "train.momentum = 1.0: must be < 1"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_config_refused(case: str, tmp_path: Path, capsys: Capsys) -> None:
    change, message = CONFIG_CASES[case]
    out = tmp_path / "out"
    _refused(capsys, ["train", _config(tmp_path, change), "--out", str(out), "--quiet"], message)
    assert not out.exists()


def test_toml_vectorised_no(tmp_path: Path, capsys: Capsys) -> None:
    path = tmp_path / "run.toml"
    path.write_text('spec = "reference:80-15-5"\n[train]\nvectorised = "no"\n')
    _refused(capsys, ["train", str(path), "--out", str(tmp_path / "o")],
             "train.vectorised = 'no': must be true or false, not a string")


def test_crop_flip_on_flat_data(tmp_path: Path, capsys: Capsys) -> None:
    path = tmp_path / "run.toml"
    path.write_text('spec = "reference:80-15-5"\n[model]\nname = "mlp"\n[data]\n'
                    'name = "synthetic"\nsamples = 350\naugment = "crop-flip"\n')
    out = tmp_path / "o"
    _refused(capsys, ["train", str(path), "--out", str(out)],
             "data.augment = 'crop-flip': needs images (channels, height, width); model 'mlp' "
             "on 'synthetic' data reads flat vectors")
    assert not out.exists()


def test_bound_optimal_under_a_fixed_count_draw() -> None:
    """The bound-optimal rule no longer refuses a fixed-count draw (3 of 7 nodes per round): it
    returns weights, designed with Lemma ES-f's constants, so that Theorem A's step condition
    holds at the design's (lt, q, eta) with L_s^(c) computed independently
    (expected_smoothness(..., per_round=3)); the constants of independent picks understate it."""
    import numpy as np

    import convex
    from cistheory.bounds import expected_smoothness
    from cistheory.rules.registry import RULES

    cis = ct.reference_cis("80-15-5")
    part = ct.fixed_count(ct.deepest_exit(cis), 3)
    sigma = [0.00374, 0.00224, 0.00101]
    lt = RULES["bound-optimal"](cis.lam, cis=cis, part=part, sigma=sigma)
    assert lt.shape == (3,) and (lt > 0).all() and lt.sum() == pytest.approx(1.0, abs=1e-12)
    const = convex.constants_from(part, convex.reference_constants(sigma))
    res = convex.stable_lt(cis, part, const)
    assert res.success and np.array_equal(res.lt, lt)
    q = np.asarray(part.q)
    sup = q > 0
    m = np.asarray(cis.data, dtype=np.float64)
    beta = np.where(sup, lt[None, :] * m[:, None] / (sup.T.astype(float) @ m)[None, :], 0.0)
    ls_draw = expected_smoothness(q, beta, const.L_pair, per_round=3)
    ls_indep = expected_smoothness(q, beta, const.L_pair)
    # 1e-12: single-pair nodes, so the design's pair form is L_s^(c) up to rounding
    assert ls_indep < ls_draw <= res.Ls_pair * (1 + 1e-12)
    assert res.Ls_pair <= res.theta * (1 + 1e-9)  # SLSQP's constraint tolerance
    assert res.eta * (const.L_bar + (1 + res.c) * ls_draw) < 2  # Theorem A, L_t <= L_bar


# --------------------------------------------------------------- train: outputs and checkpoints


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A configuration and the folder of its finished two-round run."""
    tmp = tmp_path_factory.mktemp("run")
    cfg = _config(tmp, {})
    assert main(["train", cfg, "--out", str(tmp / "out"), "--quiet"]) == 0
    return Path(cfg), tmp / "out"


def test_existing_run_is_kept(finished_run: tuple[Path, Path], capsys: Capsys) -> None:
    cfg, out = finished_run
    capsys.readouterr()
    before = _files(out)
    _refused(capsys, ["train", str(cfg), "--out", str(out), "--quiet"],
             f"--out = '{out}': holds an earlier run (checkpoint.pt, results.json, "
             "history.csv, model.pt); resume it with --resume, overwrite it with --force, or "
             "choose another folder")
    assert _files(out) == before


def test_force_overwrites(finished_run: tuple[Path, Path], tmp_path: Path, capsys: Capsys) -> None:
    cfg, out = finished_run
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    for name, data in _files(out).items():
        (copy_dir / name).write_bytes(data)
    (copy_dir / "results.json").write_text("{}")
    assert main(["train", str(cfg), "--out", str(copy_dir), "--quiet", "--force"]) == 0
    assert json.loads((copy_dir / "results.json").read_text())["rounds_done"] == 2


def test_resume_and_force_together(finished_run: tuple[Path, Path], capsys: Capsys) -> None:
    cfg, out = finished_run
    _refused(capsys, ["train", str(cfg), "--out", str(out), "--resume", "--force"],
             f"--out = '{out}': give --resume or --force, not both")


@pytest.mark.parametrize(
    "damage,reason",
    [
        ("truncated", "corrupt: its checksum does not match (truncated or altered)"),
        ("altered", "corrupt: its checksum does not match (truncated or altered)"),
        ("empty", "not a cistheory checkpoint (no header)"),
        ("random", "not a cistheory checkpoint (no header)"),
    ],
)
def test_damaged_checkpoint_is_refused(
    damage: str, reason: str, finished_run: tuple[Path, Path], tmp_path: Path, capsys: Capsys
) -> None:
    cfg, out = finished_run
    run = tmp_path / "run"
    run.mkdir()
    good = (out / "checkpoint.pt").read_bytes()
    bad = {
        "truncated": good[: len(good) // 2],
        "altered": good[:-10] + bytes(10),
        "empty": b"",
        "random": os.urandom(4096),
    }[damage]
    (run / "checkpoint.pt").write_bytes(bad)
    _refused(capsys, ["train", str(cfg), "--out", str(run), "--resume", "--quiet"],
             f"checkpoint = '{run / 'checkpoint.pt'}': {reason}")
    assert _files(run) == {"checkpoint.pt": bad}


def test_checkpoint_of_another_configuration(
    finished_run: tuple[Path, Path], tmp_path: Path, capsys: Capsys
) -> None:
    _, out = finished_run
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes((out / "checkpoint.pt").read_bytes())
    other = _config(tmp_path, {"train": {"rounds": 3}}, "other.json")
    _refused(capsys, ["train", other, "--out", str(run), "--resume", "--quiet"],
             f"checkpoint = '{run / 'checkpoint.pt'}': belongs to another configuration")


def test_out_is_a_file_or_under_a_file(tmp_path: Path, capsys: Capsys) -> None:
    cfg = _config(tmp_path, {})
    _refused(capsys, ["train", cfg, "--out", cfg], f"--out = '{cfg}': is a file, not a folder")
    _refused(capsys, ["train", cfg, "--out", f"{cfg}/sub"],
             f"--out = '{cfg}/sub': {cfg} is a file, not a folder")


def test_resume_without_a_checkpoint(tmp_path: Path, capsys: Capsys) -> None:
    cfg = _config(tmp_path, {})
    _refused(capsys, ["train", cfg, "--out", str(tmp_path / "new"), "--resume"],
             f"--out = '{tmp_path / 'new'}': has no checkpoint.pt to resume from")
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------- figures, closed pipes


def test_plot_only_without_data(tmp_path: Path, capsys: Capsys) -> None:
    from figures.__main__ import main as figures_main

    assert figures_main(["--plot-only", "--only", "bound_path", "--out", str(tmp_path)]) == 2
    out = capsys.readouterr()
    assert out.err == (f"error: --plot-only = '{tmp_path}': no saved data for bound_path; run "
                       "without --plot-only first\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "cistheory", "rates", "reference:80-15-5:equal:100", "--json"],
        ["-m", "proofs_check", "--instances", "2", "--only", "corollary", "--quiet"],
        ["-m", "figures", "--help"],
    ],
)
def test_closed_pipe_ends_quietly(argv: list[str]) -> None:
    """The reader is gone before the command writes: no traceback, status 1 (0 for --help,
    which argparse prints and flushes itself)."""
    read, write = os.pipe()
    os.close(read)
    proc = subprocess.run([sys.executable, *argv], stdout=write, stderr=subprocess.PIPE,
                          text=True, check=False)
    os.close(write)
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert proc.stderr == ""
    assert proc.returncode in ({0, 1, 120} if "--help" in argv else {1})
