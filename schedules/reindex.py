"""`reindex_schedule`: an incremental run of `embed_collection_job` for every collection, nightly by default.

Incremental is enough to pick up a new model or a new build of it: stored vectors are keyed by the model's
identity (name, digest, dimensions, prefix), so a run after such a change finds none of its vectors and
re-embeds by itself, while a run with nothing changed sends nothing to the embedder.

Its cron and time zone are settings (`ORCA_REINDEX_CRON`, default `0 3 * * *`; `ORCA_TIMEZONE`, default
`UTC`), so the schedule is built with the definitions from the settings they load with.
"""

from __future__ import annotations

import dagster as dg

from orca_assets.jobs import embed_collection_job
from orca_assets.partitions import collections_partitions
from orca_core.settings import OrcaSettings
from orca_core.tags import SOURCE_SCHEDULE, SOURCE_TAG

SCHEDULE_NAME = "reindex_schedule"


def build_reindex_schedule(settings: OrcaSettings) -> dg.ScheduleDefinition:
    """`reindex_schedule` with the cron and time zone of `settings`."""
    cron, zone = settings.reindex_cron, settings.timezone
    try:

        @dg.schedule(
            name=SCHEDULE_NAME,
            cron_schedule=cron,
            execution_timezone=zone,
            job=embed_collection_job,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description=f"Incremental reindex of every collection ({cron}, {zone}).",
        )
        def reindex(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
            """One incremental run per registered collection, keyed by collection and scheduled time."""
            collections = context.instance.get_dynamic_partitions(collections_partitions.name)
            if not collections:
                return dg.SkipReason("no collections registered yet")
            stamp = context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else "manual"
            return [
                dg.RunRequest(run_key=f"{name}:{stamp}", partition_key=name, tags={SOURCE_TAG: SOURCE_SCHEDULE})
                for name in sorted(collections)
            ]

    except dg.DagsterInvalidDefinitionError as error:
        raise ValueError(f"ORCA_REINDEX_CRON={cron!r} is not a valid cron schedule: {error}") from None
    return reindex

