"""`reindex_schedule`: an incremental run of `embed_collection_job` for every collection, nightly by default.

Incremental is enough to pick up a new model or a new build of it: stored vectors are keyed by the model's
identity (name, digest, dimensions, prefix), so a run after such a change finds none of its vectors and
re-embeds by itself, while a run with nothing changed sends nothing to the embedder.

Settings (read when the definitions load): `ORCA_REINDEX_CRON` (default `0 3 * * *`) and `ORCA_TIMEZONE`
(default `UTC`, an IANA name such as `Europe/Paris`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg

from orca_assets.jobs import embed_collection_job
from orca_assets.partitions import collections_partitions

DEFAULT_CRON = "0 3 * * *"
DEFAULT_TIMEZONE = "UTC"


def _setting(environ: Mapping[str, str], name: str, default: str) -> str:
    return (environ.get(name) or "").strip() or default


def build_reindex_schedule(environ: Mapping[str, str] | None = None) -> dg.ScheduleDefinition:
    """`reindex_schedule` with its cron and timezone taken from `environ` (default: the process environment)."""
    environ = os.environ if environ is None else environ
    cron = _setting(environ, "ORCA_REINDEX_CRON", DEFAULT_CRON)
    zone = _setting(environ, "ORCA_TIMEZONE", DEFAULT_TIMEZONE)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"ORCA_TIMEZONE={zone!r} is not a known IANA time zone (for example UTC or Europe/Paris)"
        ) from None

    try:

        @dg.schedule(
            name="reindex_schedule",
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
                dg.RunRequest(run_key=f"{name}:{stamp}", partition_key=name, tags={"orca/source": "schedule"})
                for name in sorted(collections)
            ]

    except dg.DagsterInvalidDefinitionError as error:
        raise ValueError(f"ORCA_REINDEX_CRON={cron!r} is not a valid cron schedule: {error}") from None
    return reindex


reindex_schedule = build_reindex_schedule()
