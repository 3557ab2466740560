"""The embedding assets with inbox/ and warehouse/ on an object store (SeaweedFS), each run on a machine of its
own: a fresh local copy that shares no folder with any other. What one machine stored, the next one finds;
a run killed mid-embedding resumes elsewhere without paying again; the served index is a version behind a
pointer that pandas-style readers resolve; a stale publisher is fenced off."""

from __future__ import annotations

import json

import dagster as dg
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from orca_core.index_pointer import StalePublish
from orca_core.s3_objects import local_name
from orca_core.storage import open_storage
from orca_resources.hashing_embedder import HashingEmbedderResource
from orca_resources.intake_queue_resource import IntakeQueueResource
from tests.documents_fixture import write_collection
from tests.orca_assets.test_resume import DyingEmbedder
from tests.pipeline_helpers import Pipeline, failure_message, metadata
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY


@pytest.fixture
def store(s3_store):
    return s3_store


@pytest.fixture
def machines(tmp_path, store):
    """`machine(name)`: a Pipeline of collection `docs` whose local copy is a folder of its own."""
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["docs"])
    return lambda name: Pipeline(home=tmp_path / name, collection="docs", instance=instance, storage_url=store)


def upload_inbox(s3_server, bucket: str, tmp_path) -> dict[str, bytes]:
    """Write the sample collection as objects under inbox/docs/ (single PUTs, as a user or the intake does)."""
    folder = tmp_path / "upload"
    documents = {doc_id: path.read_bytes() for doc_id, path in write_collection(folder).items()}
    client = s3_server.client()
    for doc_id, data in documents.items():
        client.put_object(Bucket=bucket, Key=f"orca/inbox/docs/{doc_id}", Body=data)
    return documents


def served(s3_server, bucket: str):
    """The current index as an outside reader gets it: resolve the pointer once, read the version it names."""
    client = s3_server.client()
    pointer = json.loads(client.get_object(Bucket=bucket, Key="orca/warehouse/docs/embedding_index.current")["Body"].read())
    fs = pafs.S3FileSystem(access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION,
                           endpoint_override=s3_server.endpoint, scheme="http")
    return pq.read_table(f"{bucket}/{pointer['key']}", filesystem=fs), pointer


def test_a_second_machine_continues_from_the_store_alone(machines, s3_server, s3_bucket, tmp_path):
    documents = upload_inbox(s3_server, s3_bucket, tmp_path)
    first = machines("a").run(HashingEmbedderResource(dimensions=64))
    assert first.success, failure_message(first)
    index, pointer = served(s3_server, s3_bucket)
    assert set(index["doc_id"].to_pylist()) == set(documents)

    # Machine b has nothing local: it changes one document's neighbourhood and pays only for the new one.
    client = s3_server.client()
    client.delete_object(Bucket=s3_bucket, Key="orca/inbox/docs/tokyo.txt")
    client.put_object(Bucket=s3_bucket, Key="orca/inbox/docs/new.md", Body=b"# New\n\nA brand new document.\n")
    second = machines("b").run(HashingEmbedderResource(dimensions=64))
    assert second.success, failure_message(second)
    embedded = metadata(second, "embeddings")
    assert embedded["inputs_sent"] == 1 and embedded["reused"] >= 1
    index, newer = served(s3_server, s3_bucket)
    assert set(index["doc_id"].to_pylist()) == set(documents) - {"tokyo.txt"} | {"new.md"}
    assert newer["key"] != pointer["key"]

    # Machine a's copy was stale; its next run pulls first, and finds nothing to do.
    again = machines("a").run(HashingEmbedderResource(dimensions=64))
    assert again.success, failure_message(again)
    assert metadata(again, "embeddings")["inputs_sent"] == 0
    assert served(s3_server, s3_bucket)[1]["key"] == newer["key"]  # an unchanged index is not published again


def test_a_killed_run_resumes_on_another_machine_without_paying_again(machines, s3_server, s3_bucket, tmp_path):
    upload_inbox(s3_server, s3_bucket, tmp_path)
    hashing = HashingEmbedderResource(dimensions=64, batch_size=2)
    dying = DyingEmbedder(hashing, batches_before_death=2)
    crashed = machines("a").run(dying, chunk_tokens=32)
    assert not crashed.success and dying.inputs == 4
    parts = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix="orca/warehouse/docs/embeddings.parts/")
    assert parts.get("KeyCount", 0) == 2  # each finished batch reached the store as it finished

    resumed = machines("b").run(hashing, chunk_tokens=32)
    assert resumed.success, failure_message(resumed)
    rows = served(s3_server, s3_bucket)[0].num_rows
    embedded = metadata(resumed, "embeddings")
    assert embedded["reused"] == 4 and embedded["inputs_sent"] == rows - 4


def test_a_stale_copy_cannot_overwrite_a_newer_index(machines, s3_server, s3_bucket, tmp_path):
    upload_inbox(s3_server, s3_bucket, tmp_path)
    assert machines("a").run(HashingEmbedderResource(dimensions=64)).success
    a, b = machines("a"), machines("b")
    storage = open_storage(a.storage_url, a.home)
    storage.pull(b.warehouse.layout, "docs")  # b read the pointer as it was...
    s3_server.client().put_object(Bucket=s3_bucket, Key="orca/inbox/docs/more.md", Body=b"# More\n\nMore text.\n")
    assert a.run(HashingEmbedderResource(dimensions=64)).success  # ...then a published a newer index
    winner = served(s3_server, s3_bucket)[1]["key"]
    index = b.warehouse.layout.index_path("docs")
    index.write_bytes(index.read_bytes())  # b's "new" index (a different file as far as its copy can tell)
    with pytest.raises(StalePublish):
        storage.push(b.warehouse.layout, "docs")
    assert served(s3_server, s3_bucket)[1]["key"] == winner


def test_unsafe_object_names_never_reach_the_local_disk(machines, s3_server, s3_bucket, tmp_path):
    upload_inbox(s3_server, s3_bucket, tmp_path)
    client = s3_server.client()
    # SeaweedFS itself refuses keys with `..` components (AWS does not): those are checked by `local_name` below.
    for key in ("orca/inbox/docs/\x01bell.md", "orca/inbox/docs/folder/", "orca/inbox/docs/guide.md/inner.md"):
        client.put_object(Bucket=s3_bucket, Key=key, Body=b"# Odd\n")
    machine = machines("a")
    result = machine.run(HashingEmbedderResource(dimensions=64))
    assert result.success, failure_message(result)
    assert not [path for path in machine.home.rglob("*") if "bell" in path.name]
    assert not (machine.home / "inbox" / "docs" / "folder").exists()
    doc_ids = served(s3_server, s3_bucket)[0]["doc_id"].to_pylist()
    assert "\x01bell.md" not in doc_ids
    # `guide.md` is both a document and a "folder" on the store: the folder's document is what a copy can hold.
    assert "guide.md/inner.md" in doc_ids and "guide.md" not in doc_ids


def test_a_purge_removes_the_collection_from_the_store(machines, s3_server, s3_bucket, tmp_path, op_job):
    upload_inbox(s3_server, s3_bucket, tmp_path)
    machine = machines("a")
    assert machine.run(HashingEmbedderResource(dimensions=64)).success
    with dg.instance_for_test() as instance:
        job = op_job("purge_collection_job", warehouse=machine.warehouse,
                     intake_queue=IntakeQueueResource(home=str(tmp_path / "queue-home")))
        result = job.execute_in_process(instance=instance, tags={"dagster/partition": "docs"}, run_config={
            "ops": {"wait_until_collection_idle": {"config": {"delete_inbox": True}}}})
    assert result.success
    left = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix="orca/")
    assert left.get("KeyCount", 0) == 0, [item["Key"] for item in left.get("Contents", [])]
    assert not machine.warehouse.layout.sync_record("docs").exists()


@pytest.mark.parametrize("name", ["../escape.md", "a/../../escape.md", "a//b.md", "./a.md", "folder/", "a\\b.md",
                                  "x\x00y.md", "bell\x07.md", "b" * 256])
def test_names_that_are_not_plain_relative_paths_are_refused(name):
    assert local_name(name) is None


def test_plain_names_are_kept():
    assert local_name("ports/harbour.txt") == "ports/harbour.txt"
    assert local_name(".orca/sources/a.md/record.json") == ".orca/sources/a.md/record.json"
