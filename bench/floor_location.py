"""The benchmarks' code location: Orca's definitions plus a floor, a run of one trivial asset.

Benchmark 6 measures how fast a change reaches the index against the same path with nothing to do: `orca up
-m bench.floor_location` serves this location, which is `orca.definitions.build_definitions()` unchanged
plus `floor_probe` (an asset that returns at once) and its job. An intake request of kind `floor` (queued
as `POST /v1/jobs` queues one) becomes a run of `floor_job` through the same `intake_sensor`, run queue,
launcher, run process (importing this whole location, Orca's modules included) and `intake_run_status_sensor`
as a posted document's run; the launchpad launches it as it launches a collection's run.
"""

from __future__ import annotations

import dagster as dg

from orca.definitions import build_definitions
from sensors import intake_runs

FLOOR_KIND = "floor"


@dg.asset(description="Does nothing: the floor of the trigger benchmark (bench/trigger.py).")
def floor_probe() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rewritten": False})


floor_job = dg.define_asset_job("floor_job", selection=[floor_probe])


def _floor_run(group, tags: dict[str, str], launch) -> dg.RunRequest:
    return dg.RunRequest(run_key=group[0].request_id, job_name=floor_job.name, tags=tags)


def _definitions() -> dg.Definitions:
    orca = build_definitions()
    intake_runs.KINDS[FLOOR_KIND] = intake_runs.RequestKind(floor_job, lambda rows: rows, _floor_run)
    sensors = [
        sensor.with_updated_jobs([*sensor.jobs, floor_job]) if sensor.name == "intake_sensor" else sensor
        for sensor in orca.sensors or []
    ]
    return dg.Definitions(
        assets=[*(orca.assets or []), floor_probe],
        asset_checks=orca.asset_checks,
        jobs=[*(orca.jobs or []), floor_job],
        sensors=sensors,
        schedules=orca.schedules,
        resources=orca.resources,
        executor=orca.executor,
    )


defs = _definitions()
