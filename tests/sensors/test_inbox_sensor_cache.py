"""`inbox_sensor` with its folder cache (`sensors.folder_cache`), evaluated with `dg.build_sensor_context`: a
file rewritten in place (its folder untouched) is run within the sweep period, a restarted code server (empty
cache) sees no change where there is none, and a cursor from before per-folder digests (version 1) is carried
over without a run per unchanged collection."""

from __future__ import annotations

import json
import os
import time

import sensors.folder_cache as folder_cache
from orca_core.tags import FINGERPRINT_TAG
from sensors.fingerprint import fingerprint
from sensors.folder_cache import inbox_cache
from sensors.inbox import inbox_sensor
from tests.sensors.test_inbox_sensor import settle


def test_in_place_edit_is_run_within_the_sweep_period(sensor_harness, later):
    """A file rewritten in place leaves its folder as it was: the sensor's rotating sweep finds it in time."""
    docs = sensor_harness.inbox("docs")
    for index in range(6):
        (docs / f"s{index}").mkdir()
        (docs / f"s{index}" / "a.md").write_text(f"document {index}", encoding="utf-8")
    cache = inbox_cache(sensor_harness.home / "inbox", 8)
    cache.sweep_ticks, cache.min_sweep_files = 3, 0  # a third of the files per tick
    cache.clock = lambda: time.time_ns() + 60_000_000_000  # every listing is old enough to trust
    done = settle(sensor_harness)
    assert len(done.run_requests) == 1
    time.sleep(0.03)  # the edit lands in a later timestamp granule than the listings

    folder = os.stat(docs / "s4")
    with (docs / "s4" / "a.md").open("a", encoding="utf-8") as handle:
        handle.write(" and an edit in place")
    assert os.stat(docs / "s4").st_mtime_ns == folder.st_mtime_ns
    cursor, requested = done.cursor, []
    for _ in range(cache.sweep_ticks):  # seen and requested within the sweep period
        result = sensor_harness.tick(inbox_sensor, cursor)
        cursor = result.cursor
        requested += result.run_requests
    assert [r.tags[FINGERPRINT_TAG] for r in requested] == [fingerprint(docs).digest]


def test_restarted_code_server_walks_again_and_sees_no_change(sensor_harness, later):
    docs = sensor_harness.inbox("docs")
    for index in range(3):
        (docs / "sub").mkdir(exist_ok=True)
        (docs / "sub" / f"n{index}.md").write_text("n", encoding="utf-8")
    done = settle(sensor_harness)
    assert len(done.run_requests) == 1
    folder_cache._caches.clear()  # what a new code server process starts with
    again = sensor_harness.tick(inbox_sensor, done.cursor)
    assert again.run_requests == [] and json.loads(again.cursor)["c"] == json.loads(done.cursor)["c"]
