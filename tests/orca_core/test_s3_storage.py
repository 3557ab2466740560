"""`S3Storage` on a real S3 server (SeaweedFS): searches that read while runs publish, and the collection of
old versions and search segments only after their grace period."""

from __future__ import annotations

import threading
import time

import dagster as dg
import pytest

from orca_core.s3_storage import S3Storage
from orca_core.settings import OrcaSettings
from orca_core.storage import LocalStorage, StorageError, check_storage_url, open_storage
from orca_resources.hashing_embedder import HashingEmbedderResource
from orca_resources.search_backend import search_collection
from tests.pipeline_helpers import Pipeline, failure_message


@pytest.fixture
def store(s3_store):
    return s3_store


def put_documents(s3_server, bucket: str, count: int, start: int = 0) -> None:
    client = s3_server.client()
    for number in range(start, start + count):
        body = f"# Note {number}\n\nHarbour cranes unload ship number {number} at dawn.\n".encode()
        client.put_object(Bucket=bucket, Key=f"orca/inbox/docs/note-{number:03d}.md", Body=body)


def pipeline(tmp_path, store: str) -> Pipeline:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["docs"])
    return Pipeline(home=tmp_path / "runner", collection="docs", instance=instance, storage_url=store)


def test_searches_read_the_current_version_while_runs_publish(tmp_path, store, s3_server, s3_bucket):
    put_documents(s3_server, s3_bucket, 20)
    runner = pipeline(tmp_path, store)
    embedder = HashingEmbedderResource()
    assert runner.run(embedder).success
    settings = OrcaSettings.from_env({"ORCA_HOME": str(tmp_path / "searcher"), "ORCA_STORAGE_URL": store,
                                      "ORCA_EMBEDDER": "hashing"})  # fmt: skip
    errors: list[BaseException] = []
    counts: list[int] = []
    stop = threading.Event()

    def searcher() -> None:
        while not stop.is_set():
            try:
                counts.append(len(search_collection(settings, embedder, "docs", "harbour cranes", k=100).results))
            except BaseException as error:  # noqa: BLE001 - any failure is the test's finding
                errors.append(error)

    thread = threading.Thread(target=searcher)
    thread.start()
    try:
        for round_number in range(3):
            put_documents(s3_server, s3_bucket, 5, start=100 + 5 * round_number)
            result = runner.run(embedder)
            assert result.success, failure_message(result)
    finally:
        stop.set()
        thread.join(30)
    assert not errors, errors[:3]
    assert counts and set(counts) <= {20, 25, 30, 35}  # one whole version at a time, never a mix or a gap
    final = search_collection(settings, embedder, "docs", "harbour cranes", k=100)
    assert len(final.results) == 35
    # The searcher's copy is apart from any run's: it holds no inbox and no run state.
    assert not (tmp_path / "searcher" / "readers" / "inbox").exists()
    assert (tmp_path / "searcher" / "readers" / "warehouse" / "docs" / "embedding_index.parquet").exists()


def test_old_versions_and_segments_go_only_after_their_grace(tmp_path, store, s3_server, s3_bucket):
    put_documents(s3_server, s3_bucket, 10)
    runner = pipeline(tmp_path, store)
    embedder = HashingEmbedderResource(dimensions=32)
    for start in (10, 20, 30):
        assert runner.run(embedder).success
        put_documents(s3_server, s3_bucket, 10, start=start)
    storage = S3Storage(store, client=s3_server.client(), grace_seconds=3600)
    pointer = storage.pointer("docs")
    assert len(pointer.version_folders()) == 3  # within their grace, older versions stay readable
    assert storage.collect("docs") == []
    deleted = storage.collect("docs", now=time.time() + 7200)
    current = pointer.current()
    assert pointer.version_folders() == [current.folder]
    assert any("/embedding_index/" in key for key in deleted)
    segments = [item.name for item in storage.objects.list(f"{storage.warehouse_folder('docs')}/embedding_index.search")]
    manifest = storage.objects.get_bytes(current.folder + "manifest.json")
    from orca_core.s3_storage import manifest_files

    assert set(segments) == manifest_files(manifest)  # every segment left is one the current version names


def test_the_storage_url_is_checked_when_settings_are_read(tmp_path):
    assert check_storage_url("s3://bucket/prefix") == "s3://bucket/prefix"
    with pytest.raises(ValueError, match="s3://bucket"):
        check_storage_url("gs://bucket")
    with pytest.raises(ValueError, match="not an object store URL"):
        check_storage_url("s3://")
    assert isinstance(open_storage(None, tmp_path), LocalStorage)
    with pytest.raises(StorageError, match="set ORCA_HOME"):
        open_storage(str(tmp_path / "elsewhere"), tmp_path)
