"""Flower processes on this machine: start, drive, tear down (``docs/flower.md``).

:class:`FlowerStack` keeps every piece of Flower state in its own directory and runs the
Flower commands of the environment (``flower-superlink``, ``flower-supernode``, ``flwr``)
as child processes, for ``cistheory flower``, the tests and the benchmark:

- a simulation: ``flwr run APP local-sim`` (the local simulation federation: ``flwr run``
  starts a simulation SuperLink of its own, which outlives it; :meth:`close` stops it);
- a deployment: a SuperLink and one SuperNode per CIS node, each its own process talking
  gRPC over HTTP on localhost, then ``flwr run APP deploy``.

Nothing touches the network: the environment of every process (:meth:`FlowerStack.env`)
turns off Flower's telemetry, its update check and its runtime installation of the app's
dependencies, and Ray's usage statistics. :meth:`close` (also on leaving a ``with`` block)
stops every process started and their descendants: SIGTERM, then SIGKILL after a grace.

``flwr run --stream`` exits 0 even when the run failed, so :meth:`FlowerStack.run` asks the
SuperLink for the run's final status (``flwr ls``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import CISInputError

__all__ = ["APP_DIR", "FlowerStack", "RunOutcome", "flower_env", "free_port", "processes_of"]

APP_DIR = Path(__file__).resolve().parent / "app"
"""The Flower app project (its ``pyproject.toml``; the code is the installed package)."""


def flower_env(home: Path, ray_tmp: str, local_ports: tuple[int, int]) -> dict[str, str]:
    """Environment variables of every Flower process of a stack (see the module docstring).

    Examples
    --------
    >>> flower_env(Path("/tmp/h"), "/tmp/r", (1, 2))["FLWR_TELEMETRY_ENABLED"]
    '0'
    """
    return {
        "FLWR_HOME": str(home),  # config.toml, apps/, the local SuperLink's state
        "FLWR_TELEMETRY_ENABLED": "0",  # no telemetry events
        "FLWR_DISABLE_UPDATE_CHECK": "1",  # no update-check request
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",  # no `uv sync` of the app
        "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(local_ports[0]),  # this stack's local-sim
        "FLWR_LOCAL_CONTROL_API_PORT": str(local_ports[1]),
        "RAY_TMPDIR": ray_tmp,  # short: Ray's socket paths under it must fit 107 bytes
        "RAY_USAGE_STATS_ENABLED": "0",  # no Ray usage statistics
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",  # one thread per client process
    }


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string
    return repr(v)


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _descendants(pid: int) -> list[int]:
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        st = _stat(int(d.name)) if d.name.isdigit() else None
        if st is not None:
            parent[int(d.name)] = int(st[1])
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def _marked(marker: bytes) -> list[int]:
    """Processes whose initial environment holds the entry ``marker`` (one unique to a
    stack: it finds the detached local SuperLink and Ray's workers, which leave the process
    tree)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if b"\0" + marker + b"\0" in b"\0" + (d / "environ").read_bytes():
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def processes_of(home: Path) -> list[int]:
    """Live processes started with ``FLWR_HOME=home`` (a stack's Flower home): after
    :meth:`FlowerStack.close`, none."""
    return [p for p in _marked(f"FLWR_HOME={home}".encode()) if _alive(p)]


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] != "Z"


@dataclass(frozen=True)
class RunOutcome:
    """A ``flwr run``: ``ok`` when it exited 0 and the SuperLink reports it completed."""

    ok: bool
    returncode: int
    status: str | None
    output: str


class FlowerStack:
    """Flower processes with isolated state in ``workdir`` (module docstring).

    Examples
    --------
    ::

        with FlowerStack(tmp) as st:
            st.start_superlink()
            st.start_supernodes(["0", "1", "2"])
            out = st.run("deploy", {"config": "/abs/t.toml", "out-dir": "/abs/out"})
    """

    def __init__(self, workdir: str | Path, *, bin_dir: str | Path | None = None) -> None:
        self.dir = Path(workdir).resolve()
        self.home = self.dir / "flwr-home"
        self.logs = self.dir / "logs"
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.bin = Path(bin_dir) if bin_dir else Path(sysconfig.get_path("scripts"))
        if not (self.bin / "flwr").is_file():
            raise CISInputError(
                "flwr", str(self.bin / "flwr"), "not installed: pip install 'cistheory[flower]'"
            )
        self.ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
        self.env = {
            **os.environ,
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            **flower_env(self.home, self.ray_tmp, (free_port(), free_port())),
        }
        self.procs: dict[str, subprocess.Popen[Any]] = {}
        self.superlink_port: int | None = None
        self.connections: dict[str, dict[str, Any]] = {"local-sim": {"address": ":local:"}}
        self._write_connections()

    def _write_connections(self) -> None:
        """``$FLWR_HOME/config.toml``: the SuperLink connections ``flwr run`` may use."""
        lines = ["[superlink]", 'default = "local-sim"', ""]
        for name, conn in self.connections.items():
            lines += [f"[superlink.{name}]", *(f"{k} = {_toml(v)}" for k, v in conn.items()), ""]
        (self.home / "config.toml").write_text("\n".join(lines), encoding="utf-8")

    def _spawn(
        self, name: str, cmd: list[str], stdout: int | IO[bytes] | None = None
    ) -> subprocess.Popen[Any]:
        if name in self.procs:  # a restart: keep the old process for the teardown
            self.procs[f"{name}.{len(self.procs)}"] = self.procs[name]
        with open(self.logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=log if stdout is None else stdout,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.dir,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def _wait_ready(self, port: int, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        proc = self.procs[name]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}); see {self.logs / name}.log")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{name} not ready on port {port} after {timeout} s")

    def start_superlink(self, timeout: float = 60.0) -> int:
        """Start a deployment SuperLink on a free port; the connection ``deploy`` targets it."""
        port = free_port()
        self._spawn(
            "superlink",
            [
                str(self.bin / "flower-superlink"),
                "--insecure",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--disable-runtime-dependency-installation",
            ],  # state in memory: one connection, no "database is locked" under load
        )
        self._wait_ready(port, "superlink", timeout)
        self.superlink_port = port
        self.connections["deploy"] = {"address": f"127.0.0.1:{port}", "insecure": True}
        self._write_connections()
        return port

    def start_supernode(self, node_id: str) -> int:
        """Start the SuperNode of CIS node ``node_id`` (``--node-config cis-node=ID``);
        returns its port. Started again after a kill, it registers with a new Flower id."""
        if self.superlink_port is None:
            raise RuntimeError("start the SuperLink first")
        port = free_port()
        self._spawn(
            f"supernode-{node_id}",
            [
                str(self.bin / "flower-supernode"),
                "--insecure",
                "--superlink",
                f"127.0.0.1:{self.superlink_port}",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--node-config",
                f"cis-node={_toml(str(node_id))}",
            ],
        )
        return port

    def start_supernodes(self, node_ids: list[str], timeout: float = 120.0) -> None:
        """One SuperNode per CIS node; returns when all answer on their ports."""
        ports = {nid: self.start_supernode(nid) for nid in node_ids}
        for nid, port in ports.items():
            self._wait_ready(port, f"supernode-{nid}", timeout)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to process ``name`` (e.g. ``supernode-3``) and its descendants."""
        proc = self.procs[name]
        for pid in [proc.pid, *_descendants(proc.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        proc.wait(timeout=30)

    def run(
        self,
        connection: str,
        run_config: Mapping[str, Any],
        *,
        federation_config: Mapping[str, Any] | None = None,
        timeout: float = 1800.0,
        on_line: Callable[[str], None] | None = None,
    ) -> RunOutcome:
        """``flwr run APP CONNECTION --stream`` with ``run_config``; ``on_line`` sees every
        line of its output as it comes.

        Flower's log stream can end before the run does (under load its SuperLink's SQLite
        state reported "database is locked" to the stream): while the SuperLink says the run
        is not finished, the stream is taken up again with ``flwr log RUN_ID --stream``
        (lines already seen are not shown again).
        """
        cmd = [str(self.bin / "flwr"), "run", str(APP_DIR), connection, "--stream"]
        if run_config:
            cmd += ["--run-config", " ".join(f"{k}={_toml(v)}" for k, v in run_config.items())]
        if federation_config:
            fc = " ".join(f"{k}={_toml(v)}" for k, v in federation_config.items())
            cmd += ["--federation-config", fc]
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        code = self._follow(cmd, lines, on_line, deadline)
        run_id = next((ln.split()[-1] for ln in lines if "Successfully started run" in ln), None)
        status = self._status(connection, run_id) if code == 0 else None
        while code == 0 and status is not None and not status.startswith("finished"):
            if time.monotonic() >= deadline:
                return RunOutcome(False, -1, f"timeout after {timeout} s", "\n".join(lines))
            time.sleep(1.0)
            log_cmd = [str(self.bin / "flwr"), "log", str(run_id), connection, "--stream"]
            code = self._follow(log_cmd, lines, on_line, deadline)
            status = self._status(connection, run_id)
        output = "\n".join(lines)
        (self.logs / "flwr-run.log").write_text(output, encoding="utf-8")
        return RunOutcome(status == "finished:completed", code, status, output)

    def _follow(
        self,
        cmd: list[str],
        lines: list[str],
        on_line: Callable[[str], None] | None,
        deadline: float,
    ) -> int:
        """Run a streaming ``flwr`` command; its new lines go to ``lines`` and ``on_line``."""
        name = f"flwr-{sum(k.startswith('flwr-') for k in self.procs)}"
        proc = self._spawn(name, cmd, stdout=subprocess.PIPE)
        replayed = Counter(lines)  # a taken-up stream starts from the run's first line

        def pump() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                if replayed[line] > 0:
                    replayed[line] -= 1
                    continue
                lines.append(line)
                if on_line is not None:
                    on_line(line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            return proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
        except subprocess.TimeoutExpired:
            self.kill(name, signal.SIGTERM)
            return -1
        finally:
            if proc.poll() is None:  # interrupted (SIGINT, SIGTERM): stop it before the reader
                self.kill(name, signal.SIGTERM)
            reader.join(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()

    def _status(self, connection: str, run_id: str | None) -> str | None:
        """The run's status from the SuperLink (``flwr ls``)."""
        if run_id is None:
            return None
        ls = subprocess.run(
            [str(self.bin / "flwr"), "ls", connection, "--run-id", run_id, "--format", "json"],
            env=self.env,
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        try:
            return str(json.loads(ls.stdout)["runs"][0]["status"])
        except (ValueError, KeyError, IndexError):
            return f"unknown ({ls.stdout[-300:]} {ls.stderr[-300:]})"

    def pids(self) -> list[int]:
        """Live processes of this stack: those started, their descendants, and any process
        whose environment names this stack's Flower home (the local simulation SuperLink
        ``flwr run`` started, Ray's workers)."""
        out: list[int] = []
        for proc in self.procs.values():
            out += [proc.pid, *_descendants(proc.pid)]
        for pid in _marked(f"FLWR_HOME={self.home}".encode()):
            out += [pid, *_descendants(pid)]
        return [p for p in dict.fromkeys(out) if _alive(p) and p != os.getpid()]

    def close(self, grace: float = 15.0) -> None:
        """Stop every process of the stack: SIGTERM, then SIGKILL after ``grace`` seconds."""
        targets = self.pids()
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(p) for p in targets):
            for proc in self.procs.values():
                proc.poll()  # reap our children
            time.sleep(0.1)
        for pid in [p for p in targets if _alive(p)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        shutil.rmtree(self.ray_tmp, ignore_errors=True)

    def __enter__(self) -> FlowerStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
