"""The intake on an object store (ORCA_STORAGE_URL=s3://bucket/prefix), against a real S3 server (SeaweedFS,
tests/s3_server.py): posted documents and their source records become objects before the request is queued,
conflicts are refused as locally, deletion removes both objects, collections are what the store holds (the
served index as the store publishes it), and the health probes report the store.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from orca_core.storage import open_storage
from orca_intake.errors import ServiceUnavailable
from orca_intake.group_commit import StoreJob
from orca_intake.s3_documents import remote_inbox
from orca_resources.hashing_embedder import HashingEmbedderResource
from orca_resources.inbox_staging import NewDocument
from tests.orca_intake.documents_helpers import DOCS, assert_error, queue_of
from tests.s3_server import start_server

PREFIX = "orca"


def keys(s3_server, bucket: str, under: str = "") -> list[str]:
    """Every key in `bucket` below `PREFIX/under`, without the prefix, sorted."""
    listed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/{under}")
    return sorted(item["Key"][len(PREFIX) + 1:] for item in listed.get("Contents", []))


def body(s3_server, bucket: str, key: str) -> bytes:
    return s3_server.client().get_object(Bucket=bucket, Key=f"{PREFIX}/{key}")["Body"].read()


def s3_app(server, bucket, monkeypatch, intake_settings, intake_app_factory, **env: str):
    """An intake whose storage is `s3://bucket/PREFIX` on `server` (the AWS variables set before its settings)."""
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    open_storage.cache_clear()  # one storage per URL and process, with a client made from the variables
    settings = intake_settings(ORCA_STORAGE_URL=f"s3://{bucket}/{PREFIX}", **env)
    assert settings.storage.remote
    return intake_app_factory(settings)


@pytest.fixture
def s3_intake(s3_server, s3_bucket, monkeypatch, intake_settings, intake_app_factory):
    yield s3_app(s3_server, s3_bucket, monkeypatch, intake_settings, intake_app_factory)
    open_storage.cache_clear()


def test_posted_documents_and_their_records_become_objects_then_a_queue_row(s3_intake, s3_server, s3_bucket):
    docs = [{"id": "guides/setup.md", "text": "# Setup\n\nRun it.", "metadata": {"team": "ops"}}, {"text": "plain"}]
    response = s3_intake.post(DOCS.format("docs"), json={"documents": docs})
    assert response.status_code == 202, response.text
    accepted = response.json()
    setup, plain = accepted["documents"]
    assert setup == "guides/setup.md" and plain.endswith(".txt")
    assert keys(s3_server, s3_bucket) == sorted([
        "inbox/docs/guides/setup.md", f"inbox/docs/{plain}",
        "inbox/docs/.orca/sources/guides/setup.md/record.json", f"inbox/docs/.orca/sources/{plain}/record.json",
    ])
    assert body(s3_server, s3_bucket, "inbox/docs/guides/setup.md") == b"# Setup\n\nRun it."
    assert body(s3_server, s3_bucket, f"inbox/docs/{plain}") == b"plain"
    record = json.loads(body(s3_server, s3_bucket, "inbox/docs/.orca/sources/guides/setup.md/record.json"))
    assert record["request_id"] == accepted["request_id"] and record["metadata"] == {"team": "ops"}
    assert record["received_at"]
    row = queue_of(s3_intake).get(accepted["request_id"])
    assert (row.kind, row.collection, row.status) == ("documents", "docs", "queued")
    assert row.payload["doc_ids"] == [setup, plain]
    # Nothing went to ORCA_HOME's own inbox: runs pull the documents from the store.
    assert not s3_intake.app.state.settings.layout.inbox_root.exists()

    upload = s3_intake.post(DOCS.format("docs"), files=[("files", ("notes.txt", b"uploaded bytes"))],
                            data={"metadata": '{"source": "form"}'})  # fmt: skip
    assert upload.status_code == 202, upload.text
    assert body(s3_server, s3_bucket, "inbox/docs/notes.txt") == b"uploaded bytes"
    record = json.loads(body(s3_server, s3_bucket, "inbox/docs/.orca/sources/notes.txt/record.json"))
    assert record["metadata"] == {"source": "form"} and record["request_id"] == upload.json()["request_id"]
    # A document posted again replaces its object and its record.
    again = s3_intake.post(DOCS.format("docs"), json={"documents": [{"id": "notes.txt", "text": "second"}]})
    assert again.status_code == 202
    assert body(s3_server, s3_bucket, "inbox/docs/notes.txt") == b"second"
    record = json.loads(body(s3_server, s3_bucket, "inbox/docs/.orca/sources/notes.txt/record.json"))
    assert record["request_id"] == again.json()["request_id"] and record["metadata"] == {}
    assert queue_of(s3_intake).depth_by_status()["queued"] == 3


def test_concurrent_posts_share_groups_and_are_all_stored_and_queued(s3_intake, s3_server, s3_bucket, monkeypatch):
    from orca_intake import group_commit

    groups: list[int] = []
    store_requests = group_commit.store_requests

    def recorded(pool, requests):  # the real PUTs, with each group's size noted
        groups.append(len(requests))
        return store_requests(pool, requests)

    monkeypatch.setattr(group_commit, "store_requests", recorded)
    bodies = [{"documents": [{"id": f"d{i}/doc{j}.md", "text": f"# {i}.{j}\n"} for j in range(3)]} for i in range(24)]

    async def post_all():
        transport = httpx.ASGITransport(app=s3_intake.app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            return await asyncio.gather(*(client.post(DOCS.format("docs"), json=body) for body in bodies))

    responses = asyncio.run(post_all())
    assert [r.status_code for r in responses] == [202] * 24
    assert sum(groups) == 24 and len(groups) < 24  # requests arriving during a group's PUTs form the next one
    stored = keys(s3_server, s3_bucket, "inbox/docs/")
    assert len(stored) == 24 * 3 * 2  # each document and its record
    assert body(s3_server, s3_bucket, "inbox/docs/d7/doc2.md") == b"# 7.2\n"
    queue = queue_of(s3_intake)
    assert all(queue.get(r.json()["request_id"]).status == "queued" for r in responses)


def test_a_document_where_a_folder_is_or_under_a_document_is_a_conflict(s3_intake, s3_server, s3_bucket):
    def post(*ids: str):
        return s3_intake.post(DOCS.format("demo"), json={"documents": [{"id": i, "text": "t"} for i in ids]})

    assert post("a.md", "dir.md/x.md").status_code == 202
    before = keys(s3_server, s3_bucket)
    error = assert_error(post("a.md/b.md"), 409, "document_conflict")
    assert "'a.md'" in error["message"]
    error = assert_error(post("fine.md", "dir.md"), 409, "document_conflict")  # objects under `dir.md/`
    assert "folder" in error["message"]
    assert_error(post("c.md", "c.md/d.md"), 409, "document_conflict")  # within one request
    assert keys(s3_server, s3_bucket) == before  # a refused request stores nothing, not even its other documents
    assert queue_of(s3_intake).depth_by_status()["queued"] == 1


def test_the_usual_checks_come_before_the_store(s3_server, s3_bucket, monkeypatch, intake_settings,
                                                intake_app_factory):  # fmt: skip
    client = s3_app(s3_server, s3_bucket, monkeypatch, intake_settings, intake_app_factory,
                    ORCA_MAX_COLLECTIONS="2", ORCA_INTAKE_MAX_TEXT_BYTES="100")  # fmt: skip
    try:
        one = [{"id": "a.md", "text": "x"}]
        assert_error(client.post(DOCS.format("one"), json={"documents": [{"id": "../a.md", "text": "x"}]}),
                     422, "invalid_doc_id")  # fmt: skip
        assert_error(client.post(DOCS.format("one"), json={"documents": [{"id": "a.md", "text": "x" * 101}]}),
                     413, "document_too_large")  # fmt: skip
        # Within the local limits, but its record's key would pass S3's 1024 bytes: refused before any PUT.
        long_id = "/".join(["p" * 200] * 4) + "/" + "q" * 180 + ".md"
        error = assert_error(client.post(DOCS.format("one"), json={"documents": [*one, {"id": long_id, "text": "x"}]}),
                             422, "invalid_doc_id")  # fmt: skip
        assert "too long for the object store" in error["message"]
        assert keys(s3_server, s3_bucket) == []
        assert client.post(DOCS.format("one"), json={"documents": one}).status_code == 202
        # A collection that only has a warehouse on the store counts too, as a local warehouse folder does.
        s3_server.client().put_object(Bucket=s3_bucket, Key=f"{PREFIX}/warehouse/two/documents.parquet", Body=b"x")
        assert_error(client.post(DOCS.format("three"), json={"documents": one}), 403, "collection_limit")
        assert client.post(DOCS.format("one"), json={"documents": one}).status_code == 202
        assert client.post(DOCS.format("two"), json={"documents": one}).status_code == 202
        assert keys(s3_server, s3_bucket, "inbox/three") == []
        assert queue_of(client).depth_by_status()["queued"] == 3
    finally:
        open_storage.cache_clear()


def test_delete_removes_the_object_and_its_records(s3_intake, s3_server, s3_bucket):
    docs = [{"id": "sub/a.md", "text": "t"}, {"id": "b.md", "text": "u"}]
    assert s3_intake.post(DOCS.format("demo"), json={"documents": docs}).status_code == 202
    # A record where older versions wrote it goes with its document too.
    s3_server.client().put_object(Bucket=s3_bucket, Key=f"{PREFIX}/inbox/demo/.orca/sources/b.md.json", Body=b"{}")
    response = s3_intake.delete(DOCS.format("demo") + "/sub/a.md")
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["documents"] == ["sub/a.md"]
    assert keys(s3_server, s3_bucket) == [
        "inbox/demo/.orca/sources/b.md.json", "inbox/demo/.orca/sources/b.md/record.json", "inbox/demo/b.md",
    ]
    row = queue_of(s3_intake).get(accepted["request_id"])
    assert (row.kind, row.payload) == ("delete", {"doc_id": "sub/a.md"})
    assert s3_intake.delete(DOCS.format("demo") + "/b.md").status_code == 202
    assert keys(s3_server, s3_bucket) == []
    assert_error(s3_intake.delete(DOCS.format("demo") + "/b.md"), 404)  # the collection's last document is gone
    assert s3_intake.post(DOCS.format("demo"), json={"documents": [{"id": "dir/c.md", "text": "v"}]}).status_code == 202
    assert_error(s3_intake.delete(DOCS.format("demo") + "/sub/a.md"), 404, "document_not_found")
    assert_error(s3_intake.delete(DOCS.format("demo") + "/dir"), 404, "document_not_found")  # a folder
    assert_error(s3_intake.delete(DOCS.format("demo") + "/%2e%2e/x.md"), 422, "invalid_doc_id")
    assert_error(s3_intake.delete(DOCS.format("nosuch") + "/a.md"), 404, "collection_not_found")
    assert keys(s3_server, s3_bucket) == ["inbox/demo/.orca/sources/dir/c.md/record.json", "inbox/demo/dir/c.md"]
    assert queue_of(s3_intake).depth_by_status()["queued"] == 4  # two posts, two deletes


def test_collections_are_what_the_store_holds(s3_intake, s3_server, s3_bucket, write_index):
    assert s3_intake.get("/v1/collections").json() == {"collections": []}
    alpha = [{"id": "a.md", "text": "x"}, {"id": "d/b.md", "text": "y"}]
    assert s3_intake.post(DOCS.format("alpha"), json={"documents": alpha}).status_code == 202
    # Objects put on the store by other means make a collection too; temporary names are no documents.
    for key in ("inbox/gamma/put.md", "inbox/gamma/.put.md.tmp"):
        s3_server.client().put_object(Bucket=s3_bucket, Key=f"{PREFIX}/{key}", Body=b"z")
    # A run publishes the index from its own copy; the intake reads the store's current version.
    settings = s3_intake.app.state.settings
    write_index(settings.layout.index_path("alpha"), ["one", "two", "three"], HashingEmbedderResource(dimensions=16))
    settings.storage.push(settings.layout, "alpha")
    settings.layout.index_path("alpha").unlink()  # gone from the runs' copy: the listing does not read it

    listed = s3_intake.get("/v1/collections").json()["collections"]
    assert [c["name"] for c in listed] == ["alpha", "gamma"]
    first, gamma = listed
    assert (first["documents"], first["chunks"], first["indexed_documents"]) == (2, 3, 1)
    assert first["model"] == "orca-hashing-v1" and first["index_updated_at"]
    assert (gamma["documents"], gamma["chunks"], gamma["model"]) == (1, None, None)
    one = s3_intake.get("/v1/collections/alpha").json()
    assert one["documents"] == 2 and one["chunks"] == 3
    assert_error(s3_intake.get("/v1/collections/nosuch"), 404, "collection_not_found")
    assert s3_intake.post("/v1/jobs", json={"collection": "gamma", "kind": "embed"}).status_code == 202
    missing = s3_intake.post("/v1/jobs", json={"collection": "nosuch", "kind": "embed"})
    assert_error(missing, 404, "collection_not_found")


def test_health_reports_the_object_store_and_its_loss(monkeypatch, intake_settings, intake_app_factory):
    server = start_server()  # its own server: this test stops it
    try:
        bucket = server.create_bucket("orca-health")
        client = s3_app(server, bucket, monkeypatch, intake_settings, intake_app_factory)
        client.app.state.settings.dagster_home.mkdir(parents=True)
        detailed = client.get("/health/detailed").json()
        assert detailed["status"] == "ok", detailed
        assert set(detailed["checks"]) == {"queue", "storage", "embedder", "dagster"}
        assert detailed["checks"]["storage"]["detail"] == f"answers (s3://{bucket}/{PREFIX})"
        assert client.get("/health/ready").status_code == 200
        assert client.post(DOCS.format("demo"), json={"documents": [{"id": "a.md", "text": "t"}]}).status_code == 202

        server.process.stop()
        detailed = client.get("/health/detailed").json()
        assert detailed["status"] == "degraded"
        assert detailed["checks"]["storage"]["status"] == "failing"
        assert detailed["checks"]["queue"]["status"] == "ok"
        error = assert_error(client.get("/health/ready"), 503, "not_ready")
        assert "storage" in error["message"]
        # Requests that need the store answer 503, and nothing is queued for them.
        queued = queue_of(client).depth_by_status()["queued"]
        assert_error(client.post(DOCS.format("demo"), json={"documents": [{"id": "b.md", "text": "t"}]}),
                     503, "storage_unavailable")  # fmt: skip
        assert_error(client.delete(DOCS.format("demo") + "/a.md"), 503, "storage_unavailable")
        assert_error(client.get("/v1/collections"), 503, "storage_unavailable")
        assert queue_of(client).depth_by_status()["queued"] == queued
        # The writer's own store calls (past the collection check) answer the same 503 and queue nothing.
        document = NewDocument("c.md", b"t", {"request_id": "r1"})
        job = StoreJob(queue_of(client), remote_inbox(client.app.state.settings.storage, "demo"), [document],
                       ("documents", "demo", {"doc_ids": ["c.md"]}, "r1"))  # fmt: skip
        with pytest.raises(ServiceUnavailable) as failed:
            asyncio.run(client.app.state.writer.store(job))
        assert failed.value.code == "storage_unavailable"
        assert queue_of(client).get("r1") is None
    finally:
        server.stop()
        open_storage.cache_clear()
