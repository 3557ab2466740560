"""`index_freshness_sensor`: evaluates `index_follows_inbox` (orca_assets/freshness.py) for every collection.

Every minute it compares each collection's latest inbox change with the start of the run that built its
served index, and when a collection's verdict changes it requests a run of `index_freshness_job` for that
partition, which records the check's result where the webserver shows it. Only a new warning, or the end of one
it recorded, starts a run (each embedding run records its own pass), so a thousand fresh collections cost
nothing; the cursor keeps the last verdict of each collection.
(Dagster 1.13 stores one run-less evaluation per check partition only: a second report fails on a unique
index, so the result goes through a run.)

A tick that runs out of its time budget resumes with the next collection on the following tick.

Cursor (JSON): `{"v": 1, "s": {collection: 1 when passing, 0 when warning}, "r": collection to resume at}`.
"""

from __future__ import annotations

import json
import time

import dagster as dg

from orca_assets.freshness import index_build_times, index_freshness_job, judge
from orca_assets.partitions import collections_partitions
from orca_core.tags import KIND_TAG, PARTITION_TAG
from orca_resources.warehouse import WarehouseResource
from sensors.cursors import read_versioned

SENSOR_NAME = "index_freshness_sensor"
WALK_BUDGET_SECONDS = 20.0  # a third of the sensor timeout
CURSOR_VERSION = 1

clock = time.monotonic  # tests replace it to cut a tick short


def _load_cursor(raw: str | None) -> dict:
    state = read_versioned(raw, CURSOR_VERSION)  # an unreadable cursor only costs one evaluation recorded per collection
    return {"v": CURSOR_VERSION, "s": dict(state.get("s") or {}), "r": state.get("r")}


def build_index_freshness_sensor(window_minutes: float) -> dg.SensorDefinition:
    """`index_freshness_sensor` with the window of the settings (ORCA_FRESHNESS_MINUTES)."""

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=60,
        job=index_freshness_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Records index_follows_inbox for every collection: warns when an inbox change has waited "
        f"more than {window_minutes:g} min for its index (ORCA_FRESHNESS_MINUTES).",
    )
    def index_freshness_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SensorResult:
        state = _load_cursor(context.cursor)
        collections = sorted(context.instance.get_dynamic_partitions(collections_partitions.name))
        known = {name: verdict for name, verdict in state["s"].items() if name in collections}
        resume = state["r"] if state["r"] in collections else None
        order = collections[collections.index(resume):] + collections[: collections.index(resume)] if resume else collections
        built = index_build_times(context.instance, collections)
        started, requests, next_resume = clock(), [], None
        layout = warehouse.layout
        for name in order:
            if clock() - started > WALK_BUDGET_SECONDS:
                next_resume = name
                break
            verdict = judge(name, layout.inbox(name), built.get(name), window_minutes)
            previous, known[name] = known.get(name), int(verdict.passed)
            # Every embedding run records a pass itself: only a warning, or the end of one this sensor raised,
            # needs a run of its own, so a first tick over a thousand fresh collections starts none.
            if previous != int(verdict.passed) and (not verdict.passed or previous == 0):
                key = f"{name}:{int(verdict.passed)}:{verdict.inbox_changed}:{verdict.index_built}"
                requests.append(dg.RunRequest(run_key=key, tags={PARTITION_TAG: name, KIND_TAG: "freshness"}))
        cursor = json.dumps({"v": CURSOR_VERSION, "s": known, "r": next_resume}, separators=(",", ":"))
        if not requests:
            return dg.SensorResult(skip_reason="no collection's freshness changed", cursor=cursor)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return index_freshness_sensor
