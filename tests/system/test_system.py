"""End to end: `orca up` as a real process, driven only over HTTP and the inbox folder.

`orca up` runs with a temporary ORCA_HOME, free ports for the webserver and the intake, bearer tokens set
(`ORCA_INTAKE_TOKENS`) and `ORCA_EMBEDDER=ollama` pointed at the Ollama stand-in, so every vector really travels
over Ollama's HTTP protocol: from the run workers (documents) and from the intake (search queries). Then:

(a) `/v1` refuses a request without a token, or with a wrong one (401), while `/health/live` stays open;
(b) documents posted as JSON are answered 202 with a request id; the job goes `queued -> ... -> succeeded`
    with its run id, run URL (a real run of the webserver) and counts; the documents are in the served index
    with `source = intake:<request_id>` and the vectors the stand-in sent; `/v1/search` ranks the right one first;
(c) files dropped into `inbox/<collection>/` (once written under a hidden name and renamed, once written
    in place) are picked up by the inbox sensor: one successful run per drop, and their chunks reach the index;
(d) `DELETE` of a document is answered 202, its job succeeds and its rows leave the index;
(e) a `reindex` job succeeds without sending anything to the embedder (nothing changed);
(g) the op jobs `prepare_model` and `purge`, queued through `POST /v1/jobs`, reach `succeeded` too;
(f) SIGTERM stops `orca up` with status 0 and leaves no process behind.

The stand-in's default vectors are random per text, which would make any ranking luck; this test gives it
word-count vectors (the `search_document: ` / `search_query: ` prefixes removed), so a query sharing words with
one document ranks it first. Latencies (POST -> running, POST -> succeeded, file drop -> indexed,
DELETE -> gone) are printed (`pytest -s`) and recorded as test properties; only generous limits are asserted.

The helpers that drive the deployment (token, word-count vectors, index reading, job polling) are in
tests/system/deployment_helpers.py.
"""

from __future__ import annotations

import os
import secrets
import signal
import time

import dagster as dg
import httpx
import numpy as np
import pytest

from tests.processes import (
    ManagedProcess,
    console_script,
    descendant_pids,
    free_port,
    orca_env,
    pid_alive,
    wait_for_url,
    wait_until,
)
from tests.system.deployment_helpers import (
    COLLECTION,
    TOKEN,
    Intake,
    doc_ids,
    graphql_run,
    inbox_runs,
    reached,
    read_index,
    word_vector,
)

RUNNING_LIMIT_SECONDS = 120.0  # generous: the issue asks for a run to *start* within about 15 s
FINISHED_LIMIT_SECONDS = 180.0  # generous too: this 2-core machine is shared with other test runs

DOCUMENTS = [
    {"id": "guides/setup.md", "text": "# Setup\n\nInstall Orca with make install, then start everything with orca up."},
    {"id": "ops/backups.md", "text": "# Backups\n\nEvery night the warehouse folder is copied to the cold vault in Reykjavik."},
    {"id": "faq/llamas", "text": "Llamas and alpacas are camelids from the Andes; they hum when they feel anxious.",
     "metadata": {"team": "zoology"}},
]
BACKUPS_QUERY = "backups of the warehouse to the cold vault in Reykjavik"


@pytest.mark.timeout(1200)
def test_orca_up_end_to_end(tmp_path, ollama_standin, record_property):
    dims = ollama_standin.dimensions
    ollama_standin.vector_for = lambda model, text, dimensions=None: word_vector(dimensions or dims, text)
    home = tmp_path / "home"
    web_port, intake_port = free_port(), free_port()
    env = orca_env(
        home,
        ORCA_EMBEDDER="ollama",
        OLLAMA_HOST=ollama_standin.url,
        ORCA_WEBSERVER_PORT=str(web_port),
        ORCA_INTAKE_PORT=str(intake_port),
        ORCA_INTAKE_TOKENS=f"another-token-{secrets.token_hex(8)},{TOKEN}",
        COLUMNS="200",
    )
    webserver, intake_url = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{intake_port}"
    latencies: dict[str, float] = {}
    test_started = time.monotonic()
    up = ManagedProcess([console_script("orca"), "up"], env=env, log_path=tmp_path / "up.log")
    instance: dg.DagsterInstance | None = None
    children: list[int] = []
    try:
        wait_for_url(f"{intake_url}/health/live", timeout=240, process=up)
        wait_for_url(f"{webserver}/server_info", timeout=240, process=up)
        up.wait_for_output("Press Ctrl-C to stop.", timeout=120)
        assert f"Embedder: Ollama at {ollama_standin.url}" in up.output()
        latencies["orca up -> ready"] = time.monotonic() - test_started
        intake = Intake(intake_url, up)

        # (a) Tokens are set: /v1 needs one of them, and so do the metrics; the probes stay open.
        assert httpx.get(f"{intake_url}/health/live", timeout=10).json() == {"status": "ok"}
        assert httpx.get(f"{intake_url}/metrics", timeout=10).status_code == 401
        token_header = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{intake_url}/metrics", headers=token_header, timeout=10).status_code == 200
        missing = httpx.get(f"{intake_url}/v1/collections", timeout=10)
        assert missing.status_code == 401, missing.text
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert missing.json()["error"]["code"] and missing.json()["error"]["message"]
        wrong = httpx.post(
            f"{intake_url}/v1/collections/{COLLECTION}/documents",
            json={"documents": DOCUMENTS},
            headers={"Authorization": f"Bearer {TOKEN[:-1]}x"},
            timeout=10,
        )
        assert wrong.status_code == 401, wrong.text
        assert not (home / "inbox" / COLLECTION).exists()  # nothing was written for a refused request
        assert intake.client.get("/v1/collections").status_code == 200

        # (b) POST documents -> 202 -> the job follows its run to `succeeded`.
        posted_at = time.monotonic()
        response = intake.client.post(f"/v1/collections/{COLLECTION}/documents", json={"documents": DOCUMENTS})
        assert response.status_code == 202, response.text
        accepted = response.json()
        request_id = accepted["request_id"]
        assert accepted["documents"] == ["guides/setup.md", "ops/backups.md", "faq/llamas.txt"]
        job, seen = intake.follow(request_id, posted_at)
        assert job["status"] == "succeeded", job
        latencies["POST documents -> running"] = reached(seen, "running")
        latencies["POST documents -> succeeded"] = reached(seen, "succeeded")
        assert latencies["POST documents -> running"] < RUNNING_LIMIT_SECONDS, seen
        assert latencies["POST documents -> succeeded"] < FINISHED_LIMIT_SECONDS, seen
        assert job["kind"] == "documents" and job["collection"] == COLLECTION and job["error"] is None
        assert job["run_url"] == f"{webserver}/runs/{job['run_id']}"
        counts = job["counts"]
        assert counts["documents"] == 3 and counts["documents_added"] == 3 and counts["documents_failed"] == 0
        assert counts["model"] == "nomic-embed-text" and counts["embeddings_failed"] == 0
        assert counts["inputs_sent"] == counts["chunks"] == counts["rows"] >= 3
        run = graphql_run(webserver, job["run_id"])
        assert run["__typename"] == "Run" and run["status"] == "SUCCESS", run
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        assert tags["orca/request_id"] == request_id and tags["dagster/partition"] == COLLECTION

        rows = read_index(home)
        assert doc_ids(rows) == set(accepted["documents"])
        assert {row["source"] for row in rows} == {f"intake:{request_id}"}
        assert len(rows) == counts["rows"] and {row["model"] for row in rows} == {"nomic-embed-text"}
        for row in rows:  # exactly what the stand-in answered over HTTP for the prefixed chunk text
            assert np.allclose(row["embedding"], word_vector(dims, f"search_document: {row['text']}"), atol=1e-6)
        assert {f"search_document: {row['text']}" for row in rows} <= set(ollama_standin.stats.inputs)

        found = intake.client.post("/v1/search", json={"collection": COLLECTION, "query": BACKUPS_QUERY, "k": 3})
        assert found.status_code == 200, found.text
        hits = found.json()["results"]
        assert hits[0]["doc_id"] == "ops/backups.md" and hits[0]["score"] > hits[1]["score"], hits
        assert hits[0]["source"] == f"intake:{request_id}"
        assert f"search_query: {BACKUPS_QUERY}" in ollama_standin.stats.inputs  # the query went over HTTP too
        described = intake.client.get(f"/v1/collections/{COLLECTION}").json()
        assert described["indexed_documents"] == 3 and described["last_run"]["request_id"] == request_id

        # (c) Files dropped into the inbox: the inbox sensor runs the collection, once per drop.
        instance = dg.DagsterInstance.from_config(str(home / "dagster"))
        folder = home / "inbox" / COLLECTION
        drops = {
            # a careful user: write under a hidden name, then rename into place
            "dropped/careful.md": "# Lighthouse\n\nThe lighthouse keeper logs every passing ship in a blue notebook.",
            # and a plain write in place
            "dropped/plain.txt": "Sourdough starters need flour, water and patience; feed them twice a day.",
        }
        for number, (doc_id, text) in enumerate(drops.items(), start=1):
            target = folder / doc_id
            target.parent.mkdir(parents=True, exist_ok=True)
            dropped_at = time.monotonic()
            if number == 1:
                hidden = target.with_name(f".{target.name}.part")
                hidden.write_text(text, encoding="utf-8")
                hidden.rename(target)
            else:
                target.write_text(text, encoding="utf-8")
            indexed = wait_until(
                lambda doc_id=doc_id: [r for r in read_index(home) if r["doc_id"] == doc_id],
                timeout=300, interval=0.25, message=f"{doc_id} never reached the index:\n{up.output()[-6000:]}",
            )
            latencies[f"file drop ({'rename' if number == 1 else 'plain write'}) -> indexed"] = time.monotonic() - dropped_at
            assert {r["source"] for r in indexed} == {f"inbox/{COLLECTION}/{doc_id}"}
            assert text.splitlines()[-1] in " ".join(r["text"] for r in indexed)
            # The index is published before the run ends (asset checks follow): wait for the run's success.
            wait_until(
                lambda number=number: sum(r.status == dg.DagsterRunStatus.SUCCESS for r in inbox_runs(instance)) >= number,
                timeout=120, message=f"the inbox sensor's run did not succeed:\n{up.output()[-6000:]}",
            )
        assert doc_ids(read_index(home)) == set(accepted["documents"]) | set(drops)
        runs = inbox_runs(instance)
        # One run per drop: the intake's own posts were not run a second time by the inbox sensor.
        assert len(runs) == len(drops), [(r.run_id, r.status, r.tags) for r in runs]

        # (d) DELETE a document: 202, its job succeeds, its rows leave the index.
        deleted_at = time.monotonic()
        response = intake.client.delete(f"/v1/collections/{COLLECTION}/documents/faq/llamas.txt")
        assert response.status_code == 202, response.text
        delete_id = response.json()["request_id"]
        assert not (folder / "faq" / "llamas.txt").exists()
        wait_until(lambda: read_index(home) and "faq/llamas.txt" not in doc_ids(read_index(home)), timeout=300,
                   interval=0.25, message=f"the deleted document's rows never left the index:\n{up.output()[-6000:]}")
        latencies["DELETE -> rows gone from the index"] = time.monotonic() - deleted_at
        job, seen = intake.follow(delete_id, deleted_at)
        assert job["status"] == "succeeded", job
        latencies["DELETE -> succeeded"] = reached(seen, "succeeded")
        remaining = read_index(home)
        assert "faq/llamas.txt" not in doc_ids(remaining)
        assert doc_ids(remaining) == {"guides/setup.md", "ops/backups.md", *drops}
        assert job["counts"]["documents_deleted"] == 1 and job["counts"]["inputs_sent"] == 0
        assert latencies["DELETE -> succeeded"] < FINISHED_LIMIT_SECONDS
        missing_doc = intake.client.delete(f"/v1/collections/{COLLECTION}/documents/faq/llamas.txt")
        assert missing_doc.status_code == 404 and missing_doc.json()["error"]["code"] == "document_not_found"

        # (e) A reindex job: succeeds, and with nothing changed sends nothing to the embedder.
        sent_before = ollama_standin.stats.inputs_embedded
        reindex_at = time.monotonic()
        response = intake.client.post("/v1/jobs", json={"collection": COLLECTION, "kind": "reindex"})
        assert response.status_code == 202, response.text
        job, seen = intake.follow(response.json()["request_id"], reindex_at)
        assert job["status"] == "succeeded" and job["kind"] == "reindex", job
        latencies["POST reindex -> succeeded"] = reached(seen, "succeeded")
        assert job["counts"]["inputs_sent"] == 0 and job["counts"]["rows"] == len(remaining)
        assert ollama_standin.stats.inputs_embedded == sent_before
        assert len(read_index(home)) == len(remaining)

        # (g) The op jobs through the intake: prepare the model (present: checked and loaded, not pulled),
        # then purge the collection (its index and partition go, its inbox stays).
        pulls_before = len(ollama_standin.stats.pulls)
        response = intake.client.post("/v1/jobs", json={"kind": "prepare_model"})
        assert response.status_code == 202, response.text
        job, _ = intake.follow(response.json()["request_id"], time.monotonic())
        assert job["status"] == "succeeded" and job["kind"] == "prepare_model", job
        assert len(ollama_standin.stats.pulls) == pulls_before  # the model was there: pulling is never implicit
        response = intake.client.post("/v1/jobs", json={"collection": COLLECTION, "kind": "purge"})
        assert response.status_code == 202, response.text
        job, _ = intake.follow(response.json()["request_id"], time.monotonic())
        assert job["status"] == "succeeded" and job["kind"] == "purge", job
        assert not (home / "warehouse" / COLLECTION / "embedding_index.parquet").exists()
        assert (home / "inbox" / COLLECTION).is_dir()

        # (f) SIGTERM: exit 0, nothing left behind.
        children = descendant_pids(up.pid)
        assert len(children) >= 3, children
        up.signal(signal.SIGTERM)
        assert up.wait(timeout=90) == 0, up.output()[-6000:]
        wait_until(lambda: not any(pid_alive(pid) for pid in children), timeout=20,
                   message=f"processes left behind: {[p for p in children if pid_alive(p)]}")
        assert "All Orca processes stopped." in up.output() and "not a clean stop" not in up.output()
        for url in (f"{intake_url}/health/live", f"{webserver}/server_info"):
            with pytest.raises(httpx.ConnectError):
                httpx.get(url, timeout=5)
    finally:
        if instance is not None:
            instance.dispose()
        leftovers = children + descendant_pids(up.pid)
        up.stop()
        for pid in leftovers:
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        total = time.monotonic() - test_started
        print(f"\nend-to-end latencies (test total {total:.1f}s):", flush=True)
        for name, seconds in latencies.items():
            print(f"  {name:<45} {seconds:6.1f} s", flush=True)
            record_property(name, round(seconds, 2))
