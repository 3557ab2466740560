"""The one place that assembles Orca's Dagster definitions, from the settings read when the code loads."""

from __future__ import annotations

import warnings

import dagster as dg

from orca_assets.catalog import catalogued
from orca_assets.freshness import build_index_follows_inbox, index_freshness_job
from orca_assets.jobs import embed_collection_job, embedding_assets
from orca_assets.prepare_model_job import prepare_model_job
from orca_assets.purge_collection_job import purge_collection_job, purge_collection_with_pgvector_job
from orca_core.settings import OrcaSettings
from orca_resources.embedders import embedder_resource, ollama_resource
from orca_resources.intake_queue_resource import IntakeQueueResource
from orca_resources.warehouse import WarehouseResource
from schedules.reindex import build_reindex_schedule
from sensors.inbox import inbox_sensor
from sensors.index_freshness import build_index_freshness_sensor
from sensors.intake import intake_sensor
from sensors.run_status import intake_run_status_sensor

# Resolving definitions copies each sensor through an initializer that passes `owners` along even when it is
# empty, and Dagster 1.13 then warns that the (unused) parameter is in beta on every code load of the daemon.
warnings.filterwarnings("ignore", message="Parameter `owners` of initializer `SensorDefinition", category=dg.BetaWarning)


def build_definitions(settings: OrcaSettings | None = None) -> dg.Definitions:
    """Orca's assets, checks, jobs, sensors, schedule and resources for `settings` (default: the environment's)."""
    settings = settings or OrcaSettings.from_env()
    embedder = embedder_resource(settings)
    assets, purge_job, sink = list(embedding_assets), purge_collection_job, {}
    if settings.pgvector_url:
        # Imported only here: without the setting, the sink's module (and psycopg2) is never loaded.
        from orca_assets.pgvector_table import pgvector_table
        from orca_resources.pgvector import PgVectorResource

        assets.append(pgvector_table)
        purge_job = purge_collection_with_pgvector_job  # same name, one more op: drops the table
        sink = {"pgvector": PgVectorResource(url=settings.pgvector_url, schema_name=settings.pgvector_schema)}
    return dg.Definitions(
        # A run's steps share its process: a collection's steps run one after another anyway, and a process per
        # step (the multiprocess default) cost about 2 s of imports each, most of a small run's wall time. The
        # in-process executor takes the instance's pool slots as the multiprocess one does (tests/system/
        # test_run_executor.py), and runs of different collections still run side by side.
        executor=dg.in_process_executor,
        assets=catalogued(assets, settings, embedder),
        asset_checks=[build_index_follows_inbox(settings.freshness_minutes)],
        jobs=[embed_collection_job, prepare_model_job, purge_job, index_freshness_job],
        sensors=[
            inbox_sensor,
            _targeting(intake_sensor, purge_job),
            intake_run_status_sensor,
            build_index_freshness_sensor(settings.freshness_minutes),
        ],
        schedules=[build_reindex_schedule(settings)],
        resources={
            "embedder": embedder,
            "warehouse": WarehouseResource.from_settings(settings),
            # Only a URL here: the sensors open the queue inside their evaluations, never at import.
            "intake_queue": IntakeQueueResource(url=settings.intake_db_url),
            # prepare_model_job talks to Ollama even when the embedder is the offline one, so the model can be
            # made ready before switching ORCA_EMBEDDER to ollama.
            "ollama": ollama_resource(settings),
            **sink,
        },
    )


def _targeting(sensor: dg.SensorDefinition, job: dg.JobDefinition) -> dg.SensorDefinition:
    """`sensor` with its job of `job`'s name replaced by `job`: the intake sensor targets the purge job by
    object, and with the pgvector sink the job of that name is the variant that also drops the table."""
    if any(target is job for target in sensor.jobs):
        return sensor
    return sensor.with_updated_jobs([job if target.name == job.name else target for target in sensor.jobs])


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
