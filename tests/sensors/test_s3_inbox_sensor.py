"""`inbox_sensor` with the inbox on an object store (ORCA_STORAGE_URL=s3://bucket/prefix), on a real SeaweedFS
server: objects under `inbox/<collection>/` become partitions and runs, unchanged ticks request nothing, every
write and deletion is a new change, records and temporary names never trigger, invalid names are reported, the
settle rule waits only for what may still move, and listing work per tick is bounded."""

from __future__ import annotations

import json
import time

import pytest

import sensors.inbox as inbox_module
from orca_core.storage import open_storage
from orca_core.tags import FINGERPRINT_TAG, SOURCE_INBOX, SOURCE_TAG
from sensors.fingerprint import EMPTY_DIGEST
from sensors.inbox import inbox_sensor
from sensors.s3_inbox import S3Inbox


class Bucket:
    """The bucket's inbox as a test writes it: objects put and deleted with the server's own client."""

    def __init__(self, server, bucket: str, prefix: str = "prefix"):
        self.client, self.bucket, self.prefix = server.client(), bucket, prefix

    def key(self, collection: str, name: str) -> str:
        return f"{self.prefix}/inbox/{collection}/{name}"

    def put(self, collection: str, name: str, body: str = "text") -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key(collection, name), Body=body.encode())

    def delete(self, collection: str, *names: str) -> None:
        for name in names:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(collection, name))


@pytest.fixture
def store(sensor_harness, s3_server, s3_bucket, monkeypatch):
    """`sensor_harness` with its warehouse on a fresh bucket of the session's SeaweedFS (ORCA_STORAGE_URL)."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    open_storage.cache_clear()  # a storage cached for another server's endpoint must not be reused
    sensor_harness.warehouse_config = {"storage_url": f"s3://{s3_bucket}/prefix"}
    yield Bucket(s3_server, s3_bucket)
    open_storage.cache_clear()


def digest(harness, collection: str) -> str:
    """The exact fingerprint of the collection on the store now."""
    storage = open_storage(harness.warehouse_config["storage_url"], harness.home)
    return S3Inbox(storage).fingerprint(collection).digest


def test_objects_become_a_partition_and_one_run_then_unchanged_ticks_request_nothing(sensor_harness, store, later):
    for index in range(3):
        store.put("docs", f"note{index}.md", f"note {index}")
    store.put("docs", "sub/deep.txt", "deep")

    first = sensor_harness.tick(inbox_sensor)
    assert [r.partition_keys for r in first.dynamic_partitions_requests] == [["docs"]]
    assert sensor_harness.instance.get_dynamic_partitions("collections") == ["docs"]
    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.partition_key == "docs" and request.run_key.startswith("docs:")
    assert request.tags == {SOURCE_TAG: SOURCE_INBOX, FINGERPRINT_TAG: digest(sensor_harness, "docs")}
    assert json.loads(first.cursor)["c"] == {"docs": {"d": digest(sensor_harness, "docs"), "n": 4}}
    assert not (sensor_harness.home / "inbox" / "docs").exists()  # fingerprinted on the store, nothing copied

    second = sensor_harness.tick(inbox_sensor, first.cursor)
    assert second.run_requests == [] and second.dynamic_partitions_requests == []
    assert second.cursor == first.cursor
    assert "1 collection listing(s)" in second.skip_reason.skip_message


def test_every_write_and_deletion_is_a_new_change_with_its_own_run_key(sensor_harness, store, later):
    store.put("docs", "a.md", "a")
    # Re-evaluating from the same cursor (a tick whose cursor was lost) asks for the same key: Dagster dedupes.
    keys_again = {sensor_harness.tick(inbox_sensor).run_requests[0].run_key for _ in range(2)}
    assert len(keys_again) == 1
    cursor, keys = sensor_harness.tick(inbox_sensor).cursor, list(keys_again)

    def change(action) -> str:
        nonlocal cursor
        action()
        result = sensor_harness.tick(inbox_sensor, cursor)
        cursor = result.cursor
        assert [r.partition_key for r in result.run_requests] == ["docs"]
        assert result.run_requests[0].tags[FINGERPRINT_TAG] == digest(sensor_harness, "docs")
        return result.run_requests[0].run_key

    keys.append(change(lambda: store.put("docs", "b.md", "b")))
    keys.append(change(lambda: store.delete("docs", "b.md")))  # back to the first set of objects
    time.sleep(1.1)  # LastModified counts whole seconds; a tick always sees a deletion seconds after its upload
    keys.append(change(lambda: store.put("docs", "b.md", "b")))  # the same content again: still a new change
    keys.append(change(lambda: store.put("docs", "a.md", "a, edited")))  # same key, new content
    assert len(set(keys)) == len(keys) == 5
    assert sensor_harness.tick(inbox_sensor, cursor).run_requests == []


def test_records_temporary_names_and_folder_markers_never_trigger(sensor_harness, store, later):
    store.put("docs", "real.md", "real")
    done = sensor_harness.tick(inbox_sensor)
    assert len(done.run_requests) == 1

    store.put("docs", ".orca/sources/real.md/record.json", '{"request_id": "r1"}')
    for name in (".real.md.3f2a.tmp", "upload.part", "report.docx.crdownload", "~$lock.docx", "draft.md~",
                 "#autosave#", "x.swp", "sub/.hidden.md", "Thumbs.db", "sub/"):  # fmt: skip
        store.put("docs", name, "partial" if not name.endswith("/") else "")
    first = sensor_harness.tick(inbox_sensor, done.cursor)
    second = sensor_harness.tick(inbox_sensor, first.cursor)
    assert first.run_requests == second.run_requests == []
    assert json.loads(second.cursor)["c"] == json.loads(done.cursor)["c"]
    assert "11 of them not documents" in second.skip_reason.skip_message


def test_invalid_collection_names_are_skipped_and_reported_once(sensor_harness, store, later, capsys):
    for name in ("Bad Name", "UPPER", "-dash", ".hidden", "ok"):
        store.put(name, "a.txt")

    first = sensor_harness.tick(inbox_sensor)
    second = sensor_harness.tick(inbox_sensor, first.cursor)
    assert sensor_harness.instance.get_dynamic_partitions("collections") == ["ok"]
    assert [r.partition_key for r in first.run_requests] == ["ok"] and second.run_requests == []
    assert list(json.loads(second.cursor)["c"]) == ["ok"]
    warnings = [line for line in capsys.readouterr().err.splitlines() if "not valid collection names" in line]
    assert len(warnings) == 1, warnings
    assert "Bad Name" in warnings[0] and "UPPER" in warnings[0] and "-dash" in warnings[0]
    assert ".hidden" not in warnings[0]


def test_deleted_objects_run_and_a_removed_collection_runs_once_then_is_forgotten(sensor_harness, store, later):
    for name in ("keep.md", "drop1.md", "drop2.md"):
        store.put("docs", name, f"The {name} document talks about tides.")
    store.put("gone", "a.md", "a")
    store.put("emptied", "a.md", "a")
    added = sensor_harness.tick(inbox_sensor)
    assert sorted(r.partition_key for r in added.run_requests) == ["docs", "emptied", "gone"]

    store.delete("docs", "drop1.md", "drop2.md")
    store.delete("gone", "a.md", "")  # the folder too: no longer listed at all
    store.delete("emptied", "a.md")  # SeaweedFS still lists the empty folder; S3 would not
    deleted = sensor_harness.tick(inbox_sensor, added.cursor)
    assert sorted(r.partition_key for r in deleted.run_requests) == ["docs", "emptied", "gone"]
    entries = json.loads(deleted.cursor)["c"]
    assert list(entries) == ["docs"] and entries["docs"]["n"] == 1  # the others have had their runs: forgotten
    assert sensor_harness.tick(inbox_sensor, deleted.cursor).run_requests == []


def test_an_empty_store_is_not_a_mass_deletion(sensor_harness, store, later):
    store.put("docs", "a.md", "a")
    done = sensor_harness.tick(inbox_sensor)
    sensor_harness.warehouse_config = {"storage_url": f"s3://{store.bucket}/elsewhere"}  # e.g. a mistyped prefix
    first = sensor_harness.tick(inbox_sensor, done.cursor)
    assert first.run_requests == [] and first.cursor == done.cursor
    assert f"nothing at all under s3://{store.bucket}/elsewhere/inbox/" in first.skip_reason.skip_message


def test_fresh_objects_are_confirmed_by_a_second_listing_within_the_tick(sensor_harness, store, monkeypatch):
    store.put("docs", "a.md", "a")
    waits: list[float] = []
    monkeypatch.setattr(inbox_module, "pause", waits.append)  # real clock: the object is seconds young
    first = sensor_harness.tick(inbox_sensor)
    assert [r.partition_key for r in first.run_requests] == ["docs"]
    assert waits == [inbox_module.CONFIRM_SECONDS]
    assert sensor_harness.tick(inbox_sensor, first.cursor).run_requests == []


def test_a_batch_still_uploading_waits_for_the_next_tick(sensor_harness, store, monkeypatch):
    store.put("docs", "part1.md", "one")
    waits: list[float] = []

    def uploader_goes_on(seconds: float) -> None:
        waits.append(seconds)
        store.put("docs", f"part{len(waits) + 1}.md", "more")

    monkeypatch.setattr(inbox_module, "pause", uploader_goes_on)
    first = sensor_harness.tick(inbox_sensor)
    assert first.run_requests == [] and waits == [inbox_module.CONFIRM_SECONDS]
    # Kept as seen by the second listing, which found two objects: the next tick compares with that.
    assert json.loads(first.cursor)["c"]["docs"] == {"d": EMPTY_DIGEST, "n": 0, "p": digest(sensor_harness, "docs")}

    monkeypatch.setattr(inbox_module, "pause", waits.append)  # the uploader is done
    second = sensor_harness.tick(inbox_sensor, first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["docs"]
    assert len(waits) == 1  # the previous tick's second listing saw this state: nothing left to confirm
    assert json.loads(second.cursor)["c"]["docs"] == {"d": digest(sensor_harness, "docs"), "n": 2}


def test_quiet_objects_run_without_a_wait_but_deletions_are_always_confirmed(sensor_harness, store, monkeypatch):
    store.put("docs", "a.md", "a")
    store.put("docs", "b.md", "b")
    waits: list[float] = []
    monkeypatch.setattr(inbox_module, "clock", lambda: time.time() + 60)  # the objects are a minute old
    monkeypatch.setattr(inbox_module, "pause", waits.append)
    first = sensor_harness.tick(inbox_sensor)
    assert [r.partition_key for r in first.run_requests] == ["docs"] and waits == []

    store.delete("docs", "b.md")  # no object says when that happened
    second = sensor_harness.tick(inbox_sensor, first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["docs"]
    assert waits == [inbox_module.CONFIRM_SECONDS]


def test_a_change_posted_through_the_intake_waits_for_its_run(sensor_harness, store, later):
    store.put("docs", "old.md", "old")
    done = sensor_harness.tick(inbox_sensor)
    store.put("docs", "posted.md", "posted through the API")
    sensor_harness.queue.enqueue("documents", "docs", {"doc_ids": ["posted.md"]})
    first = sensor_harness.tick(inbox_sensor, done.cursor)
    assert first.run_requests == [] and "1 collection(s) waiting" in first.skip_reason.skip_message


def test_listing_over_budget_resumes_where_it_stopped(sensor_harness, store, later, monkeypatch):
    monkeypatch.setattr(inbox_module, "WALK_BUDGET_SECONDS", 0.0)  # one collection per tick
    for name in ("a", "b", "c"):
        store.put(name, "doc.md", name)
    cursor, requested, resumes = None, [], []
    for _ in range(3):
        result = sensor_harness.tick(inbox_sensor, cursor)
        cursor = result.cursor
        requested += [r.partition_key for r in result.run_requests]
        resumes.append(json.loads(cursor)["r"])
    assert requested == ["a", "b", "c"] and resumes == ["b", "c", "a"]

    store.delete("a", "doc.md", "")
    for _ in range(3):  # only a complete round of listings may call a collection gone
        result = sensor_harness.tick(inbox_sensor, cursor)
        cursor = result.cursor
        assert result.run_requests == []
    monkeypatch.setattr(inbox_module, "WALK_BUDGET_SECONDS", 30.0)
    complete = sensor_harness.tick(inbox_sensor, cursor)
    assert [r.partition_key for r in complete.run_requests] == ["a"]
    assert sorted(json.loads(complete.cursor)["c"]) == ["b", "c"] and json.loads(complete.cursor)["r"] is None


def test_intake_requests_for_a_collection_only_on_the_store_run_tagged_with_its_fingerprint(sensor_harness, store):
    from sensors.intake import intake_sensor

    store.put("fresh", "posted.md", "posted through the intake")
    request_id = sensor_harness.queue.enqueue("documents", "fresh", {"doc_ids": ["posted.md"]}).request_id
    result = sensor_harness.tick(intake_sensor)
    (run,) = result.run_requests  # a collection that is no partition yet, known from the store alone
    assert run.partition_key == "fresh" and run.tags[FINGERPRINT_TAG] == digest(sensor_harness, "fresh")
    assert sensor_harness.queue.get(request_id).status == "launched"
    # A collection neither registered nor on the store is refused, with its reason.
    missing = sensor_harness.queue.enqueue("documents", "nowhere", {"doc_ids": ["x.md"]}).request_id
    assert not sensor_harness.tick(intake_sensor).run_requests
    assert "no inbox folder" in sensor_harness.queue.get(missing).error
