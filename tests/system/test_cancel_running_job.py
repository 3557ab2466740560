"""`POST /v1/jobs/{id}/cancel` on a request whose run is embedding, against a whole `orca up`.

The run starts in its own process (launched by the daemon through the code server); the cancel asks Dagster
to terminate it, as the webserver's Terminate button does: the intake answers 202 while it stops, then the
request reads `canceled`, the run is CANCELED, and the served index never holds a half-embedded collection.
"""

from __future__ import annotations

import signal

import dagster as dg
import httpx
import pytest

from tests.processes import ManagedProcess, console_script, free_port, orca_env, wait_until

DOCUMENTS = 40


@pytest.mark.timeout(600)
def test_a_running_job_is_terminated_by_its_cancel(tmp_path, ollama_standin_factory):
    standin = ollama_standin_factory(cost_fixed_s=0.25)  # a batch takes a quarter second: the run embeds for a while
    intake = f"http://127.0.0.1:{free_port()}"
    env = orca_env(tmp_path, ORCA_EMBEDDER="ollama", OLLAMA_HOST=standin.url, ORCA_WEBSERVER_PORT=str(free_port()),
                   ORCA_INTAKE_PORT=intake.rsplit(":", 1)[1])  # fmt: skip
    with ManagedProcess([console_script("orca"), "up"], env=env, log_path=tmp_path / "up.log") as up:
        up.wait_for_output("Press Ctrl-C to stop.", timeout=240)
        client = httpx.Client(base_url=intake, timeout=30)
        documents = [{"id": f"note-{n:03d}.txt", "text": f"Note {n}: " + " ".join(f"word{n}x{i}" for i in range(200))}
                     for n in range(DOCUMENTS)]  # fmt: skip
        posted = client.post("/v1/collections/slow/documents", json={"documents": documents})
        assert posted.status_code == 202, posted.text
        request_id = posted.json()["request_id"]
        embedding = lambda: any("word" in text for text in standin.stats.inputs)  # noqa: E731
        wait_until(lambda: client.get(f"/v1/jobs/{request_id}").json()["status"] == "running" and embedding(),
                   timeout=240, message=f"the run never started embedding:\n{up.output()[-3000:]}")  # fmt: skip

        response = client.post(f"/v1/jobs/{request_id}/cancel")
        assert response.status_code in (200, 202), response.text
        run_id = response.json()["run_id"]
        status = wait_until(
            lambda: (job := client.get(f"/v1/jobs/{request_id}").json())["status"] == "canceled" and job,
            timeout=120, message="the request never read canceled",
        )
        assert status["run_id"] == run_id
        with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.CANCELED
        assert not (tmp_path / "warehouse" / "slow" / "embedding_index.parquet").exists()  # nothing half-served
        again = client.post(f"/v1/jobs/{request_id}/cancel")
        assert again.status_code == 409 and again.json()["error"]["code"] == "job_finished"
        up.signal(signal.SIGTERM)
        assert up.wait(timeout=60) == 0, up.output()[-3000:]
