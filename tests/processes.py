"""Helpers for tests that start real processes: free ports, waiting for URLs, starting and stopping children.

Output goes to a log file rather than a pipe, so a chatty child can never block on a full pipe buffer,
and a failing test can show what the child said (`ManagedProcess.output()`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port_url() -> str:
    """An http:// URL on loopback where nothing answers (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


def console_script(name: str) -> str:
    """A console script installed next to the running interpreter (e.g. `orca`, `dagster-webserver`)."""
    path = VENV_BIN / name
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is the project installed (`make install`)?")
    return str(path)


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (an exited process nobody has reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid`, read from /proc (Linux)."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children += [int(p) for p in task.read_text().split()]
        except FileNotFoundError:
            continue
    return children


def descendant_pids(pid: int) -> list[int]:
    """Every process below `pid`, children first."""
    found, frontier = [], [pid]
    while frontier:
        children = [c for parent in frontier for c in child_pids(parent)]
        found += children
        frontier = children
    return found


class ManagedProcess:
    """A child process whose stdout and stderr go to one log file; stops with terminate-wait-kill."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str], log_path: Path, cwd: Path | None = None):
        self.argv = list(argv)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.argv, env=dict(env), cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        """Also the id of its session and process group."""
        return self.process.pid

    def output(self) -> str:
        """Everything the process printed so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        """True until the process has exited."""
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        """Send `signum` to the process itself (not its group), as a user's `kill` would."""
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """The exit code; raises subprocess.TimeoutExpired after `timeout` seconds."""
        return self.process.wait(timeout=timeout)

    def wait_for_output(self, text: str, timeout: float) -> str:
        """Wait until `text` appears in the output; AssertionError (with the output) on exit or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            output = self.output()
            if text in output:
                return output
            if not self.alive():
                raise AssertionError(f"{self.argv[0]} exited ({self.process.returncode}) before printing {text!r}:\n{output}")
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not printed within {timeout}s:\n{self.output()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM the process group, wait up to `timeout`, then SIGKILL it; return the exit code."""
        if self.alive():
            _killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        # Grandchildren (code servers, run workers) share the session's group: leave nothing behind.
        _killpg(self.pid, signal.SIGKILL)
        code = self.process.wait()
        self._log.close()
        return code

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _killpg(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def wait_for_url(
    url: str, *, timeout: float, process: ManagedProcess | None = None, accept: Callable[[httpx.Response], bool] | None = None
) -> httpx.Response:
    """Poll `url` until it answers 200 (or `accept` says yes); fail early, with its output, if `process` dies."""
    deadline = time.monotonic() + timeout
    last_error: object = None
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise AssertionError(f"process exited ({process.process.returncode}) before {url} answered:\n{process.output()}")
        try:
            response = httpx.get(url, timeout=5.0)
            if (accept or (lambda r: r.status_code == 200))(response):
                return response
            last_error = f"HTTP {response.status_code}"
        except httpx.HTTPError as error:
            last_error = error
        time.sleep(0.5)
    details = f"\n{process.output()}" if process is not None else ""
    raise AssertionError(f"{url} did not answer within {timeout}s (last: {last_error}){details}")


def wait_until(condition: Callable[[], object], *, timeout: float, interval: float = 0.5, message: str = "") -> object:
    """Poll `condition` until it returns something truthy; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(message or f"condition not met within {timeout}s")


def run_cli(
    args: Sequence[str], *, env: Mapping[str, str], timeout: float = 180, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `orca` console script to completion and capture its output (wide, so tables do not wrap)."""
    return subprocess.run(
        [console_script("orca"), *args],
        env={**env, "COLUMNS": "200"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def orca_env(home: Path, **overrides: str) -> dict[str, str]:
    """A clean environment for an Orca child: a private ORCA_HOME/DAGSTER_HOME, offline embedder by default."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCA_", "DAGSTER_", "OLLAMA_"))}
    env.update(
        ORCA_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        ORCA_EMBEDDER="hashing",
        # Nothing listens here, so no test can reach a real Ollama by accident.
        OLLAMA_HOST=closed_port_url(),
        # Tests post faster than any person; the rate limit has tests of its own that set it.
        ORCA_INTAKE_RATE_LIMIT="off",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def wait_intake_job(intake_url: str, request_id: str, *, timeout: float, log: Callable[[], str]) -> dict:
    """The intake's answer for a request once it has finished (succeeded, failed or canceled); `log()` says
    what to show when it does not finish in time."""

    def finished() -> dict | None:
        job = httpx.get(f"{intake_url}/v1/jobs/{request_id}", timeout=10).json()
        return job if job["status"] in ("succeeded", "failed", "canceled") else None

    return wait_until(finished, timeout=timeout, interval=1.0, message=f"request never finished:\n{log()}")
