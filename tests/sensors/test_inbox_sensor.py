"""`inbox_sensor` evaluated with `dg.build_sensor_context` on a temporary inbox: new folders become partitions,
settled changes become exactly one keyed run per collection, partial and hidden files wait or are ignored,
deletes run, work per tick is bounded, and a change an intake run already covers is not run again."""

from __future__ import annotations

import json
import os
import shutil
import time

import sensors.inbox as inbox_module
from orca_core.tags import FINGERPRINT_TAG
from sensors.fingerprint import fingerprint
from sensors.inbox import inbox_sensor
from sensors.intake import intake_sensor


def settle(harness, cursor=None):
    """One tick: a quiet change is confirmed within the tick that finds it (the `later` fixture skips the wait)."""
    return harness.tick(inbox_sensor, cursor)


def test_new_folder_becomes_partition_and_one_run(sensor_harness, later):
    docs = sensor_harness.inbox("docs")
    for index in range(3):
        (docs / f"note{index}.md").write_text(f"note {index}", encoding="utf-8")
    (docs / "sub").mkdir()
    (docs / "sub" / "deep.txt").write_text("deep", encoding="utf-8")

    first = sensor_harness.tick(inbox_sensor)
    assert [r.partition_keys for r in first.dynamic_partitions_requests] == [["docs"]]
    assert sensor_harness.instance.get_dynamic_partitions("collections") == ["docs"]
    # Quiet and found the same again after the confirming wait: requested on the tick that found it.
    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.partition_key == "docs"
    assert request.run_key.startswith("docs:")
    assert request.tags == {"orca/source": "inbox", FINGERPRINT_TAG: fingerprint(docs).digest}

    cursor = json.loads(first.cursor)
    assert cursor["c"] == {"docs": {"d": fingerprint(docs).digest, "n": 4}}
    second = sensor_harness.tick(inbox_sensor, first.cursor)
    assert second.run_requests == [] and second.dynamic_partitions_requests == []


def test_invalid_folder_names_are_ignored_and_reported_once(sensor_harness, later, capsys):
    for name in ("Bad Name", "UPPER", "-dash", "ok"):
        (sensor_harness.home / "inbox" / name).mkdir()
        (sensor_harness.home / "inbox" / name / "a.txt").write_text("text", encoding="utf-8")
    (sensor_harness.home / "inbox" / ".hidden").mkdir()

    first = settle(sensor_harness)
    assert sensor_harness.instance.get_dynamic_partitions("collections") == ["ok"]
    assert [r.partition_key for r in first.run_requests] == ["ok"]
    # Dagster's sensor log writes to stderr without propagating to the root logger.
    warnings = [line for line in capsys.readouterr().err.splitlines() if "not valid collection names" in line]
    assert len(warnings) == 1 and "Bad Name" in warnings[0] and "UPPER" in warnings[0] and ".hidden" not in warnings[0]


def test_collection_folders_that_are_links_are_ignored_and_reported_once(sensor_harness, later, capsys, tmp_path):
    target = tmp_path / "etc"
    target.mkdir()
    (target / "passwd.txt").write_text("root:x:0:0", encoding="utf-8")
    (sensor_harness.home / "inbox" / "etc").symlink_to(target, target_is_directory=True)
    (sensor_harness.inbox("ok") / "a.txt").write_text("text", encoding="utf-8")

    first = settle(sensor_harness)
    assert sensor_harness.instance.get_dynamic_partitions("collections") == ["ok"]
    assert [r.partition_key for r in first.run_requests] == ["ok"]
    warnings = [line for line in capsys.readouterr().err.splitlines() if "symbolic links" in line]
    assert len(warnings) == 1 and "etc" in warnings[0] and "ORCA_INBOX_FOLLOW_SYMLINKS=1" in warnings[0]


def test_folders_past_the_collection_limit_wait_and_are_reported_once(sensor_harness, later, capsys):
    sensor_harness.warehouse_config = {"max_collections": 2}
    for name in ("a", "b", "c", "d"):
        (sensor_harness.inbox(name) / "doc.txt").write_text(name, encoding="utf-8")

    first = settle(sensor_harness)
    assert sensor_harness.instance.get_dynamic_partitions("collections") == ["a", "b"]
    assert sorted(r.partition_key for r in first.run_requests) == ["a", "b"]
    second = sensor_harness.tick(inbox_sensor, first.cursor)
    assert not second.run_requests and sensor_harness.instance.get_dynamic_partitions("collections") == ["a", "b"]
    warnings = [line for line in capsys.readouterr().err.splitlines() if "ORCA_MAX_COLLECTIONS" in line]
    assert len(warnings) == 1 and "c, d" in warnings[0]


def test_hidden_temporary_and_sidecar_files_never_trigger(sensor_harness, later):
    docs = sensor_harness.inbox("docs")
    (docs / "real.md").write_text("real", encoding="utf-8")
    done = settle(sensor_harness)
    assert len(done.run_requests) == 1

    (docs / ".orca" / "sources").mkdir(parents=True)
    (docs / ".orca" / "sources" / "real.md.json").write_text("{}", encoding="utf-8")
    (docs / ".real.md.3f2a.tmp").write_text("half", encoding="utf-8")
    for name in ("upload.part", "report.docx.crdownload", "~$lock.docx", "draft.md~", "#autosave#", "x.swp"):
        (docs / name).write_text("partial", encoding="utf-8")
    first = settle(sensor_harness, done.cursor)
    second = settle(sensor_harness, first.cursor)
    assert first.run_requests == second.run_requests == []
    assert json.loads(second.cursor)["c"] == json.loads(done.cursor)["c"]


def test_recent_files_are_waited_for_within_the_tick_and_at_most_the_settle_time(sensor_harness, monkeypatch):
    docs = sensor_harness.inbox("docs")
    (docs / "big.txt").write_text("first part", encoding="utf-8")
    now = time.time()
    waits: list[float] = []
    monkeypatch.setattr(inbox_module, "clock", lambda: now)  # time stands still: the file stays too young
    monkeypatch.setattr(inbox_module, "pause", waits.append)
    first = settle(sensor_harness)
    second = settle(sensor_harness, first.cursor)
    assert first.run_requests == second.run_requests == []
    assert "1 collection(s) waiting" in second.skip_reason.skip_message
    # The first tick waits for the quiet time still needed (the file is a few ms old), never longer than the
    # settle time; the second has nothing new to confirm.
    assert len(waits) == 1 and inbox_module.SETTLE_SECONDS - 0.5 < waits[0] <= inbox_module.SETTLE_SECONDS, waits

    monkeypatch.setattr(inbox_module, "clock", lambda: now + 60)
    third = settle(sensor_harness, second.cursor)
    assert [r.partition_key for r in third.run_requests] == ["docs"]
    assert len(waits) == 1  # seen unchanged by the previous ticks: nothing left to confirm


def test_a_file_still_growing_during_the_confirming_wait_is_not_run(sensor_harness, monkeypatch):
    docs = sensor_harness.inbox("docs")
    (docs / "big.txt").write_text("first part", encoding="utf-8")
    now = time.time()
    waits: list[float] = []

    def writer_goes_on(seconds):
        waits.append(seconds)
        with (docs / "big.txt").open("a", encoding="utf-8") as handle:
            handle.write(" and more")  # written in place, with an mtime the clock calls old...
        os.utime(docs / "big.txt", ns=(1_000_000_000, 1_000_000_000))  # ...and preserved: the re-walk still sees it

    monkeypatch.setattr(inbox_module, "clock", lambda: now + 60)
    monkeypatch.setattr(inbox_module, "pause", writer_goes_on)
    first = settle(sensor_harness)
    assert first.run_requests == [] and waits == [inbox_module.CONFIRM_SECONDS]

    monkeypatch.setattr(inbox_module, "pause", waits.append)  # the writer is done
    second = settle(sensor_harness, first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["docs"]
    assert json.loads(second.cursor)["c"]["docs"]["d"] == fingerprint(docs).digest


def test_run_keys_stable_for_same_change_and_new_for_each_change(sensor_harness, later):
    docs = sensor_harness.inbox("docs")
    (docs / "a.md").write_text("a", encoding="utf-8")
    # Re-evaluating from the same cursor (a tick whose cursor was lost) asks for the same key: Dagster dedupes.
    keys_again = {settle(sensor_harness).run_requests[0].run_key for _ in range(2)}
    assert len(keys_again) == 1
    cursor = settle(sensor_harness).cursor
    keys = list(keys_again)

    def change_and_settle(action):
        nonlocal cursor
        action()
        result = settle(sensor_harness, cursor)
        cursor = result.cursor
        assert len(result.run_requests) == 1
        return result.run_requests[0].run_key

    keys.append(change_and_settle(lambda: (docs / "b.md").write_text("b", encoding="utf-8")))
    keys.append(change_and_settle(lambda: (docs / "b.md").unlink()))  # back to the first file set
    keys.append(change_and_settle(lambda: (docs / "b.md").write_text("b", encoding="utf-8")))
    keys.append(change_and_settle(lambda: (docs / "a.md").write_text("a, edited", encoding="utf-8")))
    assert len(set(keys)) == len(keys) == 5


def test_deletes_become_one_run_and_leave_the_index(sensor_harness, later):
    docs = sensor_harness.inbox("docs")
    for name in ("keep.md", "drop1.md", "drop2.md"):
        (docs / name).write_text(f"The {name} document talks about tides.", encoding="utf-8")
    added = settle(sensor_harness)
    assert sensor_harness.execute(added.run_requests[0]).success

    (docs / "drop1.md").unlink()
    (docs / "drop2.md").unlink()
    deleted = settle(sensor_harness, added.cursor)
    assert len(deleted.run_requests) == 1
    result = sensor_harness.execute(deleted.run_requests[0])
    assert result.success
    index = sensor_harness.home / "warehouse" / "docs" / "embedding_index.parquet"
    import pyarrow.parquet as pq

    assert set(pq.read_table(index)["doc_id"].to_pylist()) == {"keep.md"}


def test_removed_collection_folder_runs_once_then_is_forgotten(sensor_harness, later):
    (sensor_harness.inbox("gone") / "a.md").write_text("a", encoding="utf-8")
    done = settle(sensor_harness)
    shutil.rmtree(sensor_harness.home / "inbox" / "gone")
    gone = settle(sensor_harness, done.cursor)
    assert [r.partition_key for r in gone.run_requests] == ["gone"]
    assert json.loads(gone.cursor)["c"] == {}
    assert sensor_harness.tick(inbox_sensor, gone.cursor).run_requests == []


def test_missing_inbox_root_is_not_a_mass_deletion(sensor_harness, later):
    (sensor_harness.inbox("docs") / "a.md").write_text("a", encoding="utf-8")
    done = settle(sensor_harness)
    shutil.rmtree(sensor_harness.home / "inbox")  # e.g. ORCA_HOME on a volume that is not mounted
    first = settle(sensor_harness, done.cursor)
    second = settle(sensor_harness, first.cursor)
    assert first.run_requests == second.run_requests == []
    assert second.cursor == done.cursor and "no inbox folder" in second.skip_reason.skip_message


def test_runs_per_tick_are_capped_and_the_rest_follow(sensor_harness, later, monkeypatch):
    monkeypatch.setattr(inbox_module, "MAX_RUNS_PER_TICK", 3)
    for index in range(5):
        (sensor_harness.inbox(f"c{index}") / "a.md").write_text("a", encoding="utf-8")
    second = settle(sensor_harness)
    assert [r.partition_key for r in second.run_requests] == ["c0", "c1", "c2"]
    third = sensor_harness.tick(inbox_sensor, second.cursor)
    assert [r.partition_key for r in third.run_requests] == ["c3", "c4"]
    assert sensor_harness.tick(inbox_sensor, third.cursor).run_requests == []


def test_walk_over_budget_resumes_where_it_stopped(sensor_harness, later, monkeypatch):
    monkeypatch.setattr(inbox_module, "WALK_BUDGET_SECONDS", 0.0)  # one collection per tick
    for name in ("a", "b", "c"):
        (sensor_harness.inbox(name) / "doc.md").write_text(name, encoding="utf-8")
    cursor, requested = None, []
    for _ in range(6):
        result = sensor_harness.tick(inbox_sensor, cursor)
        cursor = result.cursor
        requested += [r.partition_key for r in result.run_requests]
    assert sorted(requested) == ["a", "b", "c"]


def test_cursor_stays_small_for_many_files(sensor_harness, later):
    docs = sensor_harness.inbox("docs")
    for index in range(2000):
        (docs / f"doc{index:05d}.txt").write_text("x", encoding="utf-8")
    second = settle(sensor_harness)
    assert len(second.run_requests) == 1
    third = sensor_harness.tick(inbox_sensor, second.cursor)
    assert third.run_requests == []
    assert len(second.cursor) < 200 and json.loads(second.cursor)["c"]["docs"]["n"] == 2000


def test_change_posted_through_the_intake_is_not_run_twice(sensor_harness, later):
    docs = sensor_harness.inbox("docs")
    (docs / "old.md").write_text("old", encoding="utf-8")
    done = settle(sensor_harness)
    assert sensor_harness.execute(done.run_requests[0]).success

    # What the REST intake does: write the document (and its sidecar), then queue the request.
    (docs / ".orca" / "sources").mkdir(parents=True)
    (docs / ".orca" / "sources" / "posted.md.json").write_text('{"request_id": "r1"}', encoding="utf-8")
    (docs / "posted.md").write_text("posted through the API", encoding="utf-8")
    sensor_harness.queue.enqueue("documents", "docs", {"doc_ids": ["posted.md"]})

    first = settle(sensor_harness, done.cursor)
    second = settle(sensor_harness, first.cursor)
    assert first.run_requests == second.run_requests == []  # a queued request: its own run will read the inbox

    launched = sensor_harness.tick(intake_sensor)
    assert sensor_harness.execute(launched.run_requests[0]).success
    after = sensor_harness.tick(inbox_sensor, second.cursor)
    assert after.run_requests == []
    assert json.loads(after.cursor)["c"]["docs"]["d"] == fingerprint(docs).digest

    (docs / "dropped.md").write_text("dropped by hand afterwards", encoding="utf-8")
    manual = settle(sensor_harness, after.cursor)
    assert [r.tags["orca/source"] for r in manual.run_requests] == ["inbox"]
