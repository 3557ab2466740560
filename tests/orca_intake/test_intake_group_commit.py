"""Group commit of posted documents: concurrent posts share one flush and one queue commit, and stay durable.

Every accepted post must be whole in the inbox and queued; a failing flush must fail every request of its
group with 503 and leave neither a document, nor a temporary file, nor a queue row behind.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest

from orca_intake import group_commit
from orca_intake.app import create_app
from orca_intake.flush import Flusher
from orca_resources import inbox
from orca_resources.inbox_staging import NewDocument
from orca_resources.intake_queue import IntakeQueue

POSTS = 24


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def _post_concurrently(app, bodies: list[dict]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        return await asyncio.gather(*(client.post("/v1/collections/docs/documents", json=b) for b in bodies))


def _run(app, bodies: list[dict]) -> list[httpx.Response]:
    async def main():
        async with app.router.lifespan_context(app):
            return await _post_concurrently(app, bodies)

    return asyncio.run(main())


def _bodies() -> list[dict]:
    return [{"documents": [{"id": f"d{i}/doc{j}.md", "text": f"# {i}.{j}\n"} for j in range(3)]} for i in range(POSTS)]


@pytest.fixture
def slow_flush(monkeypatch):
    """Slow every flush down, so concurrent posts pile up and share groups; records each group's file count."""
    groups: list[int] = []
    flush = Flusher.flush

    def slow(self, files):
        groups.append(len(files))
        threading.Event().wait(0.05)
        flush(self, files)

    monkeypatch.setattr(Flusher, "flush", slow)
    return groups


def test_concurrent_posts_share_flushes_and_are_all_durable_and_queued(intake_settings, slow_flush):
    settings = intake_settings()
    responses = _run(create_app(settings), _bodies())
    assert [r.status_code for r in responses] == [202] * POSTS
    assert len(slow_flush) < POSTS  # requests were grouped: fewer flushes than posts
    folder = settings.layout.inbox("docs")
    for i, response in enumerate(responses):
        body = response.json()
        for j, doc_id in enumerate(body["documents"]):
            assert (folder / doc_id).read_text() == f"# {i}.{j}\n"
            assert inbox.read_source(folder, doc_id)["request_id"] == body["request_id"]
    assert not [p for p in _files(folder) if p.name.endswith(".tmp")]
    queue = IntakeQueue(settings.intake_db_url)
    try:
        queued = {r.request_id: r for r in queue.with_status(["queued"])}
    finally:
        queue.close()
    assert set(queued) == {r.json()["request_id"] for r in responses}
    assert all(len(r.payload["doc_ids"]) == 3 for r in queued.values())


@pytest.mark.parametrize("syncfs", [True, False], ids=["syncfs", "fdatasync"])
def test_a_failing_flush_fails_its_whole_group_and_leaves_nothing(intake_settings, monkeypatch, syncfs):
    settings = intake_settings()
    monkeypatch.setattr(group_commit, "Flusher", lambda: Flusher(use_syncfs=syncfs))
    if syncfs:
        def failing(self, files):
            raise OSError(5, "syncfs: Input/output error")
        monkeypatch.setattr(Flusher, "flush", failing)
    else:
        def failing_fsync(path):
            raise OSError(5, "Input/output error")
        monkeypatch.setattr("orca_intake.flush.fsync_file", failing_fsync)
    responses = _run(create_app(settings), _bodies())
    assert {r.status_code for r in responses} == {503}
    assert {r.json()["error"]["code"] for r in responses} == {"storage_unavailable"}
    assert _files(settings.layout.inbox("docs")) == []  # no document, no source record, no temporary file
    queue = IntakeQueue(settings.intake_db_url)
    try:
        assert queue.depth_by_status()["queued"] == 0
    finally:
        queue.close()


def test_a_bad_request_fails_alone_in_its_group(intake_settings, slow_flush):
    settings = intake_settings()
    folder = settings.layout.inbox("docs")
    (folder / "taken.md").mkdir(parents=True)
    bodies = _bodies()
    bodies[5] = {"documents": [{"id": "ok.md", "text": "fine"}, {"id": "taken.md", "text": "in the way"}]}
    responses = _run(create_app(settings), bodies)
    assert responses[5].status_code == 409 and responses[5].json()["error"]["code"] == "document_conflict"
    assert [r.status_code for i, r in enumerate(responses) if i != 5] == [202] * (POSTS - 1)
    assert not (folder / "ok.md").exists()  # refused before anything of that request was written
    assert not [p for p in _files(folder) if p.name.endswith(".tmp")]


def test_a_failing_queue_commit_answers_503_for_its_group(intake_settings, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def broken(self, requests):
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(IntakeQueue, "enqueue_many", broken)
    responses = _run(create_app(intake_settings()), _bodies()[:4])
    assert {r.status_code for r in responses} == {503}
    assert {r.json()["error"]["code"] for r in responses} == {"queue_unavailable"}


def test_the_writer_stores_what_is_pending_when_it_closes(tmp_path):
    queue = IntakeQueue(f"sqlite:///{tmp_path / 'queue.db'}")
    writer = group_commit.DocumentWriter()
    try:
        document = NewDocument("a.md", b"# a\n", {"request_id": "r1"})
        job = group_commit.StoreJob(queue, tmp_path / "inbox" / "docs", [document], ("documents", "docs", {}, "r1"))
        writer._pending.put(job)
        writer.close()
        assert job.future.result(timeout=5) is None
        assert (tmp_path / "inbox" / "docs" / "a.md").read_bytes() == b"# a\n"
        assert queue.get("r1").status == "queued"
    finally:
        queue.close()
