"""`orca up` as a user runs it: real webserver, daemon and intake processes, no Ollama around, stopped by a signal.

It must say plainly that it fell back to the offline embedder (and hand that choice to its three children),
serve the webserver and the REST intake (printing both URLs and the intake's API docs), run a healthy daemon,
seed the sample collection, and on SIGTERM leave no process behind and exit 0 (the intake ends with -15
after our SIGTERM, which is a clean stop). A child that dies on its own must bring `orca up` down with a
non-zero exit, and an intake that would refuse its settings (public host, no token) stops `orca up` before
anything starts.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from orca.supervisor import ChildSpec, Supervisor
from orca_core.layout import SAMPLE_COLLECTION
from tests.processes import (
    ManagedProcess,
    closed_port_url,
    console_script,
    descendant_pids,
    free_port,
    orca_env,
    pid_alive,
    wait_for_url,
    wait_until,
)

SAMPLES = Path(__file__).resolve().parents[2] / "orca" / "samples"

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


def command_lines(pids: list[int]) -> dict[int, str]:
    found = {}
    for pid in pids:
        try:
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except FileNotFoundError:
            continue
    return found


@pytest.mark.timeout(420)
def test_up_serves_falls_back_offline_seeds_samples_and_stops_cleanly(tmp_path):
    port, intake_port = free_port(), free_port()
    ollama = closed_port_url()
    env = orca_env(
        tmp_path, ORCA_EMBEDDER="ollama", OLLAMA_HOST=ollama, ORCA_WEBSERVER_PORT=str(port),
        ORCA_INTAKE_PORT=str(intake_port),
    )
    url = f"http://127.0.0.1:{port}"
    intake = f"http://127.0.0.1:{intake_port}"
    children: list[int] = []
    with ManagedProcess([console_script("orca"), "up"], env={**env, "COLUMNS": "200"}, log_path=tmp_path / "up.log") as up:
        try:
            output = up.wait_for_output("offline embedder", timeout=60)
            assert f"No Ollama answered at {ollama}" in output
            assert "ollama pull nomic-embed-text" in output

            wait_for_url(f"{url}/server_info", timeout=240, process=up)
            assert wait_for_url(f"{intake}/health/live", timeout=120, process=up).json() == {"status": "ok"}
            output = up.wait_for_output("Press Ctrl-C to stop.", timeout=60)
            assert url in output
            assert f"{intake}/docs" in output and f"intake ready at {intake}" in output
            assert httpx.get(f"{intake}/docs", timeout=10).status_code == 200
            wait_until(lambda: required_daemons_healthy(url), timeout=180, message="the daemon never reported healthy")

            seeded = tmp_path / "inbox" / SAMPLE_COLLECTION
            assert sorted(p.name for p in seeded.iterdir()) == sorted(p.name for p in SAMPLES.iterdir() if p.is_file())
            # The intake sees the same ORCA_HOME as the sensors: the seeded collection is listed.
            listed = httpx.get(f"{intake}/v1/collections", timeout=30).json()["collections"]
            assert SAMPLE_COLLECTION in [c["name"] for c in listed]

            children = descendant_pids(up.pid)
            commands = command_lines(children)
            webserver = [pid for pid, cmd in commands.items() if "dagster-webserver" in cmd]
            daemon = [pid for pid, cmd in commands.items() if "dagster-daemon" in cmd]
            intake_pids = [pid for pid, cmd in commands.items() if "-m orca_intake" in cmd]
            assert webserver and daemon and len(intake_pids) == 1, commands
            assert f"--host 127.0.0.1 --port {intake_port}" in commands[intake_pids[0]]
            for pid in webserver + daemon + intake_pids:
                environ = environ_of(pid)
                assert environ["ORCA_EMBEDDER"] == "hashing"
                assert environ["DAGSTER_HOME"] == str(tmp_path / "dagster")
                assert environ["ORCA_HOME"] == str(tmp_path)
                assert environ["ORCA_INTAKE_PORT"] == str(intake_port)

            up.signal(signal.SIGTERM)
            assert up.wait(timeout=45) == 0, up.output()
            wait_until(lambda: not any(pid_alive(pid) for pid in children), timeout=15,
                       message=f"processes left behind: {[p for p in children if pid_alive(p)]}")
            output = up.output()
            assert "All Orca processes stopped." in output
            for name in ("webserver", "daemon", "intake"):
                assert f"{name} (pid " in output and "not a clean stop" not in output, output
            assert f"intake (pid {intake_pids[0]}) stopped" in output
            for gone in (f"{url}/server_info", f"{intake}/health/live"):
                with pytest.raises(httpx.ConnectError):
                    httpx.get(gone, timeout=5)
        finally:
            kill_leftovers(children + descendant_pids(up.pid))


@pytest.mark.timeout(60)
def test_up_refuses_a_public_intake_without_tokens_before_starting_anything(tmp_path):
    env = orca_env(tmp_path, ORCA_INTAKE_HOST="0.0.0.0", ORCA_WEBSERVER_PORT=str(free_port()))
    with ManagedProcess([console_script("orca"), "up"], env=env, log_path=tmp_path / "up.log") as up:
        assert up.wait(timeout=45) == 2, up.output()
        output = up.output()
    assert "refusing to serve the intake on 0.0.0.0" in output and "ORCA_INTAKE_TOKENS" in output, output
    assert "pid" not in output  # no child was started
    assert not (tmp_path / "dagster").exists()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("taken_by", ["webserver", "intake"])
def test_up_exits_non_zero_when_a_child_dies(tmp_path, taken_by):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        # A server cannot bind a port someone else listens on, so that child exits on its own.
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"webserver": free_port(), "intake": free_port(), taken_by: port}
        env = orca_env(tmp_path, ORCA_WEBSERVER_PORT=str(ports["webserver"]), ORCA_INTAKE_PORT=str(ports["intake"]))
        with ManagedProcess([console_script("orca"), "up"], env=env, log_path=tmp_path / "up.log") as up:
            children: list[int] = []
            try:
                up.wait_for_output("pid", timeout=60)
                children = descendant_pids(up.pid)
                code = up.wait(timeout=240)
                assert code == 1, up.output()
                assert f"error: {taken_by} (pid" in up.output() and "exited unexpectedly" in up.output()
                wait_until(lambda: not any(pid_alive(pid) for pid in children), timeout=15,
                           message=f"processes left behind: {[p for p in children if pid_alive(p)]}")
            finally:
                kill_leftovers(children + descendant_pids(up.pid))


# Children that mark a file once their SIGTERM handling is in place, then wait to be stopped.
RERAISES_SIGTERM = """
import os, pathlib, signal, sys, time
def stop(signum, frame):  # clean up, then die of the signal, as uvicorn does: exit status -15
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
signal.signal(signal.SIGTERM, stop)
pathlib.Path(sys.argv[1]).touch()
time.sleep(60)
"""
EXITS_3_ON_SIGTERM = """
import pathlib, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
pathlib.Path(sys.argv[1]).touch()
time.sleep(60)
"""
DEFAULT_SIGTERM = """
import pathlib, sys, time
pathlib.Path(sys.argv[1]).touch()
time.sleep(60)
"""


@pytest.mark.timeout(60)
def test_supervisor_counts_death_by_its_own_sigterm_as_a_clean_stop(tmp_path):
    supervisor = Supervisor(dict(os.environ), log=lambda line: None)
    codes = {"plain": DEFAULT_SIGTERM, "reraising": RERAISES_SIGTERM, "failing": EXITS_3_ON_SIGTERM}
    for name, code in codes.items():
        supervisor.start(ChildSpec(name, [sys.executable, "-c", code, str(tmp_path / name)]))
    wait_until(lambda: all((tmp_path / name).exists() for name in codes), timeout=30)

    outcomes = {child.spec.name: how for child, how in supervisor.stop(timeout=20)}

    returncodes = {child.spec.name: child.process.returncode for child in supervisor.children}
    assert returncodes == {"plain": -signal.SIGTERM, "reraising": -signal.SIGTERM, "failing": 3}
    assert outcomes == {"plain": "stopped", "reraising": "stopped", "failing": "exited with code 3"}
