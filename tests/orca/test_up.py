"""`orca up` as a user runs it: real code server, webserver, daemon and intake processes, no Ollama around.

It must say plainly that it fell back to the offline embedder (and hand that choice to its children), serve
the webserver and the REST intake (printing both URLs and the intake's API docs), run a healthy daemon, load
the code once in a code server the webserver and the daemon share, seed the sample collection, and on
SIGTERM leave no process behind and exit 0 (the intake ends with -15 after our SIGTERM, a clean stop).
The terminal stays calm: a banner, then one line per finished run (with its reason when it failed), while
the children's output goes to $ORCA_HOME/logs/ (and to the terminal too with -v). A child that dies on its
own brings `orca up` down with a non-zero exit and the end of its log; an intake that would refuse its
settings or a taken ORCA_CODE_SERVER_PORT stops `orca up` before anything starts.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import dagster as dg
import httpx
import pytest

from orca.run_lines import FINISHED
from orca_core.layout import SAMPLE_COLLECTION
from orca_core.tags import PARTITION_TAG
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


def run_lines(output: str, collection: str) -> list[str]:
    """The lines `orca up` printed about finished runs of `collection` (whatever started them)."""
    return [line for line in output.splitlines()
            if "/runs/" in line and (f" {collection} (" in line or f" {collection}: " in line)]


def finished_runs_of(dagster_home: Path, collection: str) -> set[str]:
    """The ids of the finished runs that wrote `collection` (read from the instance, as the webserver does)."""
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return {run.run_id for run in instance.get_runs(dg.RunsFilter(tags={PARTITION_TAG: collection},
                                                                        statuses=FINISHED))}


def inbox_run_lines(up: ManagedProcess, dagster_home: Path, collection: str, run_url: str) -> list[str]:
    """The lines of the inbox sensor's runs of `collection`, once each finished run of it has exactly one line
    ending in its URL."""
    up.wait_for_output(f" {collection} (inbox): ", timeout=180)

    def one_line_per_run() -> list[str] | None:
        lines, runs = run_lines(up.output(), collection), finished_runs_of(dagster_home, collection)
        ids = sorted(line.rsplit(run_url, 1)[-1] for line in lines if run_url in line)
        return lines if len(lines) == len(runs) and ids == sorted(runs) else None

    lines = wait_until(one_line_per_run, timeout=30, message=f"not one line per run of {collection}:\n{up.output()}")
    return [line for line in lines if "(inbox)" in line]


def code_servers(pids: list[int]) -> list[int]:
    """Processes among `pids` that are Dagster code servers (a proxy `code-server start` or an `api grpc`)."""
    return [pid for pid, cmd in command_lines(pids).items() if "code-server start" in cmd or "api grpc" in cmd]


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
            assert f"ORCA_HOME:         {tmp_path}" in output and f"Logs:              {tmp_path / 'logs'}/" in output
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
            server = [pid for pid, cmd in commands.items() if "code-server start" in cmd]
            assert len(webserver) == len(daemon) == len(intake_pids) == len(server) == 1, commands
            assert f"--host 127.0.0.1 --port {intake_port}" in commands[intake_pids[0]]
            # One code server, shared: the webserver and the daemon start none of their own.
            assert not code_servers(descendant_pids(webserver[0]) + descendant_pids(daemon[0])), commands
            assert set(code_servers(children)) <= {server[0], *descendant_pids(server[0])}
            for pid in webserver + daemon + intake_pids + server:
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
            for name in ("code-server", "webserver", "daemon", "intake"):
                assert f"{name} (pid " in output and "not a clean stop" not in output, output
            assert f"intake (pid {intake_pids[0]}) stopped" in output
            for gone in (f"{url}/server_info", f"{intake}/health/live"):
                with pytest.raises(httpx.ConnectError):
                    httpx.get(gone, timeout=5)
        finally:
            kill_leftovers(children + descendant_pids(up.pid))


@pytest.mark.timeout(420)
def test_up_prints_a_line_per_finished_run_and_keeps_the_dagster_logs_in_files(tmp_path):
    port = free_port()
    env = orca_env(tmp_path, ORCA_WEBSERVER_PORT=str(port), COLUMNS="300")
    run_url = f"http://127.0.0.1:{port}/runs/"
    with ManagedProcess([console_script("orca"), "up", "--no-intake"], env=env, log_path=tmp_path / "up.log") as up:
        try:
            up.wait_for_output("Press Ctrl-C to stop.", timeout=240)
            (line,) = inbox_run_lines(up, tmp_path / "dagster", SAMPLE_COLLECTION, run_url)
            assert ": success in " in line and line.startswith(tuple("0123456789")), line
            assert "documents 4 added, 0 updated, 0 deleted" in line and "4 inputs embedded" in line, line

            # Idle: the sensors tick every few seconds, and the terminal shows nothing of it (a run of the
            # freshness sensor's job, should one end meanwhile, would get its one line).
            settled = up.output()
            time.sleep(15)
            assert up.output().startswith(settled)
            assert all("/runs/" in line for line in up.output()[len(settled):].splitlines()), up.output()

            (tmp_path / "inbox" / "owls").mkdir()
            (tmp_path / "inbox" / "owls" / "barn.md").write_text("# Barn owls\n\nThey hunt by sound alone.\n")
            (line,) = inbox_run_lines(up, tmp_path / "dagster", "owls", run_url)
            assert ": success in " in line and "documents 1 added" in line and "1 input embedded" in line, line

            # A run that fails: the collection's warehouse folder is taken by a file.
            (tmp_path / "warehouse").mkdir(exist_ok=True)
            (tmp_path / "warehouse" / "broken").write_text("not a folder")
            (tmp_path / "inbox" / "broken").mkdir()
            (tmp_path / "inbox" / "broken" / "a.md").write_text("# A\n\nSome text.\n")
            line = inbox_run_lines(up, tmp_path / "dagster", "broken", run_url)[0]
            assert ": failure after " in line and " · reason: documents: " in line, line
            assert str(tmp_path / "warehouse" / "broken") in line and run_url in line, line

            terminal = up.output()
            assert "DEBUG" not in terminal and "SensorDaemon" not in terminal and "STEP_START" not in terminal
            logs = tmp_path / "logs"
            assert sorted(p.name for p in logs.iterdir()) == ["code-server.log", "daemon.log", "webserver.log"]
            assert "SensorDaemon" in (logs / "daemon.log").read_text()
            assert "STEP_START" in (logs / "code-server.log").read_text()  # the runs' event lines
            assert "Serving dagster-webserver" in (logs / "webserver.log").read_text()
            assert "\x1b[" not in (logs / "daemon.log").read_text()

            up.signal(signal.SIGTERM)
            assert up.wait(timeout=45) == 0, up.output()
        finally:
            kill_leftovers(descendant_pids(up.pid))


@pytest.mark.timeout(300)
def test_up_verbose_shows_the_dagster_lines_on_the_terminal(tmp_path):
    env = orca_env(tmp_path, ORCA_WEBSERVER_PORT=str(free_port()))
    with ManagedProcess([console_script("orca"), "up", "-v", "--no-intake"], env=env, log_path=tmp_path / "up.log") as up:
        try:
            up.wait_for_output("Press Ctrl-C to stop.", timeout=240)
            up.wait_for_output(f" {SAMPLE_COLLECTION} (inbox): success", timeout=180)
            output = up.wait_for_output("STEP_SUCCESS", timeout=30)
            assert "dagster.daemon.SensorDaemon" in output and "Serving dagster-webserver" in output
            assert "STEP_SUCCESS" in (tmp_path / "logs" / "code-server.log").read_text()  # and still in the logs
            up.signal(signal.SIGTERM)
            assert up.wait(timeout=45) == 0, up.output()
        finally:
            kill_leftovers(descendant_pids(up.pid))


@pytest.mark.timeout(60)
def test_up_refuses_a_taken_code_server_port_before_starting_anything(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = orca_env(tmp_path, ORCA_CODE_SERVER_PORT=str(port), ORCA_WEBSERVER_PORT=str(free_port()))
        with ManagedProcess([console_script("orca"), "up"], env=env, log_path=tmp_path / "up.log") as up:
            assert up.wait(timeout=45) == 2, up.output()
            output = up.output()
    assert f"ORCA_CODE_SERVER_PORT={port} is taken" in output, output
    assert "pid" not in output and not (tmp_path / "dagster").exists()


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
                # Why, from the end of its log (uvicorn says so for the webserver and the intake alike).
                assert f"last lines of {tmp_path / 'logs' / taken_by}.log:" in up.output()
                assert "address already in use" in up.output().lower(), up.output()
                wait_until(lambda: not any(pid_alive(pid) for pid in children), timeout=15,
                           message=f"processes left behind: {[p for p in children if pid_alive(p)]}")
            finally:
                kill_leftovers(children + descendant_pids(up.pid))
