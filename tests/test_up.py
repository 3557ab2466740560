"""`orca up` as a user runs it: real webserver and daemon processes, no Ollama around, stopped by a signal.

It must say plainly that it fell back to the offline embedder (and hand that choice to its children),
serve the webserver, run a healthy daemon, seed the sample collection, and on SIGTERM leave no process
behind and exit 0. A child that dies on its own must bring `orca up` down with a non-zero exit.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import httpx
import pytest

from orca.home import SAMPLE_COLLECTION

try:  # works whether or not tests/ becomes a package
    from tests.processes import (
        ManagedProcess, closed_port_url, console_script, descendant_pids, free_port, orca_env, pid_alive,
        wait_for_url, wait_until,
    )
except ImportError:
    from processes import (
        ManagedProcess, closed_port_url, console_script, descendant_pids, free_port, orca_env, pid_alive,
        wait_for_url, wait_until,
    )

SAMPLES = Path(__file__).resolve().parent.parent / "orca" / "samples"

DAEMON_HEALTH_QUERY = """
{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }
"""


def environ_of(pid: int) -> dict[str, str]:
    """The environment a process was started with (Linux /proc)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def required_daemons_healthy(url: str) -> bool:
    """Whether the webserver reports every required daemon as healthy (fresh heartbeats)."""
    response = httpx.post(f"{url}/graphql", json={"query": DAEMON_HEALTH_QUERY}, timeout=30)
    statuses = response.json()["data"]["instance"]["daemonHealth"]["allDaemonStatuses"]
    required = [status for status in statuses if status["required"]]
    return bool(required) and all(status["healthy"] for status in required)


def kill_leftovers(pids: list[int]) -> None:
    """Last resort after a failed assertion, so a broken test does not leave servers running."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.timeout(420)
def test_up_serves_falls_back_offline_seeds_samples_and_stops_cleanly(tmp_path):
    port = free_port()
    ollama = closed_port_url()
    env = orca_env(tmp_path, ORCA_EMBEDDER="ollama", OLLAMA_HOST=ollama, ORCA_WEBSERVER_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    children: list[int] = []
    with ManagedProcess([console_script("orca"), "up"], env={**env, "COLUMNS": "200"}, log_path=tmp_path / "up.log") as up:
        try:
            output = up.wait_for_output("offline embedder", timeout=60)
            assert f"No Ollama answered at {ollama}" in output
            assert "ollama pull nomic-embed-text" in output

            wait_for_url(f"{url}/server_info", timeout=240, process=up)
            assert url in up.output()
            wait_until(lambda: required_daemons_healthy(url), timeout=180, message="the daemon never reported healthy")

            seeded = tmp_path / "inbox" / SAMPLE_COLLECTION
            assert sorted(p.name for p in seeded.iterdir()) == sorted(p.name for p in SAMPLES.iterdir() if p.is_file())

            children = descendant_pids(up.pid)
            commands = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() for pid in children}
            webserver = [pid for pid, cmd in commands.items() if "dagster-webserver" in cmd]
            daemon = [pid for pid, cmd in commands.items() if "dagster-daemon" in cmd]
            assert webserver and daemon, commands
            for pid in webserver + daemon:
                assert environ_of(pid)["ORCA_EMBEDDER"] == "hashing"
                assert environ_of(pid)["DAGSTER_HOME"] == str(tmp_path / "dagster")

            up.signal(signal.SIGTERM)
            assert up.wait(timeout=45) == 0, up.output()
            wait_until(lambda: not any(pid_alive(pid) for pid in children), timeout=15,
                       message=f"processes left behind: {[p for p in children if pid_alive(p)]}")
            assert "All Orca processes stopped." in up.output()
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{url}/server_info", timeout=5)
        finally:
            kill_leftovers(children + descendant_pids(up.pid))


@pytest.mark.timeout(300)
def test_up_exits_non_zero_when_a_child_dies(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        # The webserver cannot bind a port someone else listens on, so it exits on its own.
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = orca_env(tmp_path, ORCA_WEBSERVER_PORT=str(port))
        with ManagedProcess([console_script("orca"), "up"], env=env, log_path=tmp_path / "up.log") as up:
            children: list[int] = []
            try:
                up.wait_for_output("pid", timeout=60)
                children = descendant_pids(up.pid)
                code = up.wait(timeout=240)
                assert code == 1, up.output()
                assert "exited unexpectedly" in up.output()
                wait_until(lambda: not any(pid_alive(pid) for pid in children), timeout=15,
                           message=f"processes left behind: {[p for p in children if pid_alive(p)]}")
            finally:
                kill_leftovers(children + descendant_pids(up.pid))
