"""`orca status` against real processes: nothing running, an intake with Ollama stand-ins, a whole `orca up`.

With nothing running it reports every service down, exits 1 and creates nothing; with the intake alone it
sees the intake up, each Ollama host answering or not, with the model or not; against `orca up` it is
healthy (exit 0) and lists the runs by status and the last runs, `orca purge`'s among them. `--json`
prints one object of the documented shape and nothing else on stdout.
"""

from __future__ import annotations

import json
import sys

import pytest

from tests.processes import (
    ManagedProcess,
    closed_port_url,
    console_script,
    free_port,
    orca_env,
    run_cli,
    wait_for_url,
    wait_until,
)

TOP_KEYS = {"healthy", "problems", "orca_home", "dagster_home", "services", "embedder", "runs"}
SERVICE_KEYS = {"url", "up", "detail"}
EMBEDDER_KEYS = {"name", "model", "healthy", "detail", "hosts"}
HOST_KEYS = {"url", "up", "model_present"}
RUN_KEYS = {"run_id", "job", "collection", "status", "source", "created_at", "started_at", "ended_at",
            "duration_seconds", "url"}  # fmt: skip


def status_json(env: dict) -> tuple[int, dict]:
    result = run_cli(["status", "--json"], env=env, timeout=60)
    document = json.loads(result.stdout)  # the whole of stdout is one JSON object
    assert set(document) == TOP_KEYS, document
    assert list(document["services"]) == ["webserver", "daemon", "code_server", "intake"]
    assert all(set(service) == SERVICE_KEYS for service in document["services"].values())
    assert set(document["embedder"]) == EMBEDDER_KEYS
    assert all(set(host) == HOST_KEYS for host in document["embedder"]["hosts"])
    assert set(document["runs"]) == {"by_status", "recent", "error"}
    assert all(set(run) == RUN_KEYS for run in document["runs"]["recent"])
    return result.returncode, document


@pytest.mark.timeout(120)
def test_nothing_running_reports_every_service_down_and_creates_nothing(tmp_path):
    home = tmp_path / "home"
    env = orca_env(home, ORCA_WEBSERVER_PORT=str(free_port()), ORCA_INTAKE_PORT=str(free_port()))
    code, document = status_json(env)
    assert code == 1 and document["healthy"] is False
    assert [service["up"] for service in document["services"].values()] == [False, False, False, False]
    assert "no Dagster instance" in document["services"]["daemon"]["detail"]
    assert document["runs"]["error"] and document["runs"]["recent"] == []
    # The offline embedder always works: only the four services are problems.
    assert document["embedder"]["healthy"] is True
    assert [problem.split(":")[0] for problem in document["problems"]] == ["webserver", "daemon", "code_server", "intake"]

    table = run_cli(["status"], env=env, timeout=60)
    assert table.returncode == 1
    assert "Not healthy:" in table.stdout and "webserver: not answering" in table.stdout
    assert not home.exists(), "status must not create ORCA_HOME"


@pytest.mark.timeout(180)
def test_sees_the_intake_and_each_ollama_host_with_or_without_the_model(tmp_path, ollama_standin_factory):
    with_model, without_model = ollama_standin_factory(), ollama_standin_factory()
    without_model.remove_model("nomic-embed-text")
    silent = closed_port_url()
    port = free_port()
    env = orca_env(
        tmp_path, ORCA_INTAKE_PORT=str(port), ORCA_WEBSERVER_PORT=str(free_port()), ORCA_EMBEDDER="ollama",
        ORCA_EMBED_MODEL="nomic-embed-text", OLLAMA_HOST=",".join([with_model.url, without_model.url, silent]),
    )
    intake_url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "orca_intake", "--host", "127.0.0.1", "--port", str(port)]
    with ManagedProcess(argv, env=env, log_path=tmp_path / "intake.log") as intake:
        wait_for_url(f"{intake_url}/health/live", timeout=60, process=intake)
        code, document = status_json(env)

    assert code == 1
    services = document["services"]
    assert (services["intake"]["up"], services["intake"]["url"]) == (True, intake_url)
    assert services["webserver"]["up"] is False and services["daemon"]["up"] is False
    embedder = document["embedder"]
    assert (embedder["name"], embedder["model"], embedder["healthy"]) == ("ollama", "nomic-embed-text", False)
    assert [(h["url"], h["up"], h["model_present"]) for h in embedder["hosts"]] == [
        (with_model.url, True, True), (without_model.url, True, False), (silent, False, None),
    ]
    assert f"missing on {without_model.url}" in embedder["detail"] and f"not answering: {silent}" in embedder["detail"]
    assert any(problem.startswith("embedder: ") for problem in document["problems"])


@pytest.mark.timeout(420)
def test_a_running_orca_up_is_healthy_and_its_runs_are_listed(tmp_path, ollama_standin):
    port = free_port()
    env = orca_env(
        tmp_path, ORCA_EMBEDDER="ollama", OLLAMA_HOST=ollama_standin.url, ORCA_WEBSERVER_PORT=str(port),
        ORCA_INTAKE_PORT=str(free_port()),
    )
    with ManagedProcess([console_script("orca"), "up"], env={**env, "COLUMNS": "200"},
                        log_path=tmp_path / "up.log") as up:
        up.wait_for_output("Press Ctrl-C to stop.", timeout=240)

        def sample_run_done() -> dict | None:
            code, document = status_json(env)
            done = [run for run in document["runs"]["recent"]
                    if run["job"] == "embed_collection_job" and run["status"] == "SUCCESS"]
            return document if code == 0 and done else None

        document = wait_until(sample_run_done, timeout=180, interval=2.0,
                              message=f"never healthy with a finished sample run:\n{up.output()}")
        assert document["problems"] == [] and document["services"]["webserver"]["detail"].startswith("Dagster ")
        assert document["services"]["code_server"]["up"] is True
        assert document["embedder"]["hosts"] == [{"url": ollama_standin.url, "up": True, "model_present": True}]
        assert document["runs"]["by_status"]["SUCCESS"] >= 1
        run = next(run for run in document["runs"]["recent"] if run["job"] == "embed_collection_job")
        assert run["collection"] == "samples" and run["duration_seconds"] > 0
        assert run["url"] == f"http://127.0.0.1:{port}/runs/{run['run_id']}"

        purged = run_cli(["purge", "samples"], env=env)
        assert purged.returncode == 0, purged.stdout + purged.stderr
        table = run_cli(["status", "-n", "3"], env=env, timeout=60)
        assert table.returncode == 0, table.stdout + table.stderr
        assert "Healthy." in table.stdout and "purge_collection_job" in table.stdout
        assert "orca purge" in table.stdout and f"http://127.0.0.1:{port}" in table.stdout
