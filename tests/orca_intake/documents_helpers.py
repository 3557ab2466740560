"""Helpers for the intake's documents tests (test_intake_api.py, test_intake_delete.py): the documents URL,
the intake's JSON error shape, the app's queue, and what a collection's inbox folder holds.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from orca_core.catalog import iter_documents
from orca_resources.intake_queue import IntakeQueue

DOCS = "/v1/collections/{}/documents"


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The answer has `status` and the intake's JSON error shape; returns the error object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def queue_of(client: TestClient) -> IntakeQueue:
    return client.app.state.queue


def inbox_dir(client: TestClient, collection: str):
    return client.app.state.settings.layout.inbox(collection)


def visible_files(folder) -> list[str]:
    return sorted(iter_documents(folder))


def hidden_leftovers(folder) -> list[str]:
    """Temporary files left beside documents (the source records under .orca/ are expected)."""
    return [
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and p.name.startswith(".") and ".orca" not in p.relative_to(folder).parts
    ]
