"""`IndexPointer` on a real S3 server (SeaweedFS): conditional pointer switches, racing publishers with one
winner, readers that never see a torn or missing index during a publish, and old versions collected only
after their grace period."""

from __future__ import annotations

import io
import threading

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from orca_core.index_pointer import IndexPointer, StalePublish, s3_client
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY


def parquet(rows: int, tag: str) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"chunk_id": [f"{tag}-{i}" for i in range(rows)], "n": list(range(rows))}), sink)
    return sink.getvalue()


def pointer(s3_server, bucket: str, collection: str = "docs") -> IndexPointer:
    return IndexPointer(s3_server.client(), bucket, "warehouse", collection)


def test_the_client_reads_the_standard_aws_settings(s3_server, s3_bucket, monkeypatch):
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    client = s3_client()
    assert s3_bucket in [bucket["Name"] for bucket in client.list_buckets()["Buckets"]]


def test_first_publish_then_switches_that_name_the_pointer_they_replace(s3_server, s3_bucket):
    index = pointer(s3_server, s3_bucket)
    assert index.current() is None
    first = index.publish(parquet(3, "a"), expected=None)
    assert index.current() == first and first.key.startswith("warehouse/docs/embedding_index/")
    with pytest.raises(StalePublish):
        index.publish(parquet(3, "b"), expected=None)  # a second "first" publish loses
    second = index.publish(parquet(5, "c"), expected=first)
    assert index.current() == second and second.key != first.key
    with pytest.raises(StalePublish):
        index.publish(parquet(7, "d"), expected=first)  # a stale holder is fenced off
    assert index.current() == second
    # Each loser removed its own version: the two winners are all that is stored.
    listed = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix=index.versions_prefix)["Contents"]
    assert sorted(item["Key"] for item in listed) == sorted([first.key, second.key])


def test_racing_publishers_leave_exactly_one_winner(s3_server, s3_bucket):
    index = pointer(s3_server, s3_bucket)
    base = index.publish(parquet(1, "base"), expected=None)
    outcomes: list[str] = []
    start = threading.Barrier(6)

    def publisher(number: int) -> None:
        mine = pointer(s3_server, s3_bucket)
        start.wait()
        try:
            mine.publish(parquet(10, f"p{number}"), expected=base)
            outcomes.append("won")
        except StalePublish:
            outcomes.append("lost")

    threads = [threading.Thread(target=publisher, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["lost"] * 5 + ["won"]
    current = index.current()
    winner = pq.read_table(io.BytesIO(s3_server.client().get_object(Bucket=s3_bucket, Key=current.key)["Body"].read()))
    assert winner.num_rows == 10


def test_a_reader_during_publishes_sees_the_old_or_the_new_index_never_an_error(s3_server, s3_bucket):
    index = pointer(s3_server, s3_bucket)
    current = index.publish(parquet(20_000, "v0"), expected=None)
    filesystem = pafs.S3FileSystem(access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION,
                                   endpoint_override=s3_server.endpoint.removeprefix("http://"), scheme="http")
    seen: set[int] = set()
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                resolved = pointer(s3_server, s3_bucket).current()  # once per read
                table = pq.read_table(f"{s3_bucket}/{resolved.key}", filesystem=filesystem)
                assert len(set(tag.split("-")[0] for tag in table["chunk_id"].to_pylist())) == 1  # one version
                seen.add(table.num_rows)
            except BaseException as error:  # noqa: BLE001 - collected for the assertion below
                errors.append(error)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for version in range(1, 6):
        current = index.publish(parquet(20_000 + version, f"v{version}"), expected=current)
        index.collect_old_versions(grace_seconds=60)  # nothing is older than the grace period yet
    done.set()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(seen) >= 2 and seen <= {20_000 + version for version in range(6)}


def test_old_versions_are_collected_after_their_grace_period_only(s3_server, s3_bucket):
    index = pointer(s3_server, s3_bucket)
    first = index.publish(parquet(1, "a"), expected=None)
    second = index.publish(parquet(1, "b"), expected=first)
    assert index.collect_old_versions(grace_seconds=3600) == []  # the replaced version is still within grace
    import time

    assert index.collect_old_versions(grace_seconds=3600, now=time.time() + 7200) == [first.key]
    listed = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix=index.versions_prefix)["Contents"]
    assert [item["Key"] for item in listed] == [second.key]  # the current one stays, however old
