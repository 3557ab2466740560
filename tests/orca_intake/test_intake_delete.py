"""Deleting documents through the intake's FastAPI TestClient: the document, its source record and the queued
job, 404s for what is not there, and ids that would leave the inbox refused.

Each test gets its own ORCA_HOME and app (fixtures in conftest.py); posting documents is covered by
test_intake_api.py.
"""

from __future__ import annotations

import pytest

from orca_resources import inbox
from tests.orca_intake.documents_helpers import DOCS, assert_error, inbox_dir, queue_of, visible_files


def test_delete_removes_the_document_and_its_source_and_queues(intake_client):
    docs = [{"id": "sub/a.md", "text": "t"}, {"id": "b.md", "text": "u"}]
    posted = intake_client.post(DOCS.format("demo"), json={"documents": docs})
    assert posted.status_code == 202
    response = intake_client.delete(DOCS.format("demo") + "/sub/a.md")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["documents"] == ["sub/a.md"] and body["status"] == "queued"
    folder = inbox_dir(intake_client, "demo")
    assert visible_files(folder) == ["b.md"]
    assert inbox.read_source(folder, "sub/a.md") is None and not (folder / "sub").exists()
    row = queue_of(intake_client).get(body["request_id"])
    assert (row.kind, row.payload) == ("delete", {"doc_id": "sub/a.md"})
    assert_error(intake_client.delete(DOCS.format("demo") + "/sub/a.md"), 404, "document_not_found")
    assert_error(intake_client.delete(DOCS.format("nosuch") + "/a.md"), 404, "collection_not_found")


@pytest.mark.parametrize(
    "raw_doc_id",
    [
        "%2e%2e/victim.txt",
        "%2E%2E%2Fvictim.txt",
        "sub/%2e%2e/%2e%2e/victim.txt",
        "/victim.txt",
        "%2Fvictim.txt",
        "a%00b.txt",
        "..%5Cvictim.txt",
    ],
)
def test_delete_cannot_leave_the_inbox(intake_client, raw_doc_id):
    assert (
        intake_client.post(DOCS.format("demo"), json={"documents": [{"id": "keep.md", "text": "t"}]}).status_code == 202
    )
    victim = intake_client.app.state.settings.layout.inbox_root / "victim.txt"
    victim.write_text("must survive")
    response = intake_client.delete(DOCS.format("demo") + "/" + raw_doc_id)
    assert_error(response, 422, "invalid_doc_id")
    assert victim.read_text() == "must survive"
    assert queue_of(intake_client).depth_by_status()["queued"] == 1  # only the post
