"""The intake's jobs and collections endpoints: queueing ad hoc jobs, following any request's status into its
Dagster run, and describing collections (inbox documents, index chunks, model, last finished request).

The sensors that move rows forward are not involved: tests move the queue rows themselves, as a sensor would.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from orca_resources.hashing_embedder import HashingEmbedderResource
from orca_resources.intake_queue import IntakeQueue

DOCS = "/v1/collections/{}/documents"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    return error


def queue_of(client: TestClient) -> IntakeQueue:
    return client.app.state.queue


# ---- jobs -------------------------------------------------------------------------------------------------


def test_jobs_are_queued_and_their_status_follows_the_queue_row(intake_client):
    intake_client.post(DOCS.format("demo"), json={"documents": [{"text": "t"}]})
    response = intake_client.post(
        "/v1/jobs", json={"collection": "demo", "kind": "reindex", "force": True, "model": "m:1"}
    )
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    assert response.json()["status"] == "queued"
    queue = queue_of(intake_client)
    assert queue.get(request_id).payload == {"force": True, "model": "m:1"}
    status = intake_client.get(f"/v1/jobs/{request_id}").json()
    assert status["status"] == "queued" and status["kind"] == "reindex" and status["run_id"] is None
    assert status["run_url"] is None and status["created_at"] and status["finished_at"] is None

    queue.mark_launched([request_id], "run-123")
    queue.set_status([request_id], "succeeded", counts={"embedded": 4})
    status = intake_client.get(f"/v1/jobs/{request_id}").json()
    assert status["status"] == "succeeded" and status["run_id"] == "run-123"
    assert status["run_url"] == "http://127.0.0.1:3000/runs/run-123"
    assert status["counts"] == {"embedded": 4} and status["launched_at"] and status["finished_at"]


def test_run_urls_use_the_configured_webserver(intake_app_factory):
    client = intake_app_factory(ORCA_WEBSERVER_URL="https://dagster.example.org/")
    client.post(DOCS.format("demo"), json={"documents": [{"text": "t"}]})
    request_id = client.post("/v1/jobs", json={"collection": "demo", "kind": "embed"}).json()["request_id"]
    queue_of(client).mark_launched([request_id], "abc")
    assert client.get(f"/v1/jobs/{request_id}").json()["run_url"] == "https://dagster.example.org/runs/abc"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"collection": "nosuch", "kind": "embed"}, 404, "collection_not_found"),
        ({"collection": "demo", "kind": "explode"}, 422, "validation_error"),
        ({"collection": "Bad!", "kind": "embed"}, 422, "validation_error"),
        ({"collection": "demo"}, 422, "validation_error"),
        ({"collection": "demo", "kind": "embed", "forse": True}, 422, "validation_error"),
        ({"collection": "demo", "kind": "embed", "model": "bad\nname"}, 422, "validation_error"),
        ({"collection": "demo", "kind": "embed", "force": "maybe"}, 422, "validation_error"),
    ],
)
def test_invalid_jobs_are_refused(intake_client, body, status, code):
    intake_client.post(DOCS.format("demo"), json={"documents": [{"text": "t"}]})
    assert_error(intake_client.post("/v1/jobs", json=body), status, code)


def test_unknown_jobs_are_404(intake_client):
    assert_error(intake_client.get("/v1/jobs/0123456789abcdef0123456789abcdef"), 404, "job_not_found")
    assert_error(intake_client.get("/v1/jobs/" + "x" * 65), 422, "validation_error")


# ---- collections ------------------------------------------------------------------------------------------


def test_collections_report_inbox_index_and_last_run(intake_client, write_index):
    assert intake_client.get("/v1/collections").json() == {"collections": []}
    alpha_docs = [{"id": "a.md", "text": "x"}, {"id": "d/b.md", "text": "y"}]
    intake_client.post(DOCS.format("alpha"), json={"documents": alpha_docs})
    intake_client.post(DOCS.format("beta"), json={"documents": [{"text": "z"}]})
    settings = intake_client.app.state.settings
    (settings.layout.inbox("alpha") / ".partial.txt.tmp").write_text("in progress")  # not a document
    write_index(settings.layout.index_path("alpha"), ["one", "two", "three"], HashingEmbedderResource(dimensions=16))
    queue = queue_of(intake_client)
    job = intake_client.post("/v1/jobs", json={"collection": "alpha", "kind": "embed"}).json()["request_id"]
    queue.mark_launched([job], "run-9")
    queue.set_status([job], "failed", error="boom")

    listed = intake_client.get("/v1/collections").json()["collections"]
    assert [c["name"] for c in listed] == ["alpha", "beta"]
    alpha, beta = listed
    assert alpha["documents"] == 2 and alpha["chunks"] == 3 and alpha["indexed_documents"] == 1
    assert alpha["model"] == "orca-hashing-v1" and alpha["index_updated_at"]
    assert alpha["last_run"]["request_id"] == job and alpha["last_run"]["status"] == "failed"
    assert alpha["last_run"]["run_url"].endswith("/runs/run-9") and alpha["last_run"]["error"] == "boom"
    assert beta == {
        "name": "beta",
        "documents": 1,
        "indexed_documents": None,
        "chunks": None,
        "model": None,
        "index_updated_at": None,
        "last_run": None,
    }
    assert intake_client.get("/v1/collections/alpha").json() == alpha


def test_unknown_or_invalid_collections_are_refused(intake_client):
    assert_error(intake_client.get("/v1/collections/nosuch"), 404, "collection_not_found")
    assert_error(intake_client.get("/v1/collections/No_Such!"), 422, "invalid_collection")
