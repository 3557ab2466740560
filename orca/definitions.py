"""The one place that assembles Orca's Dagster definitions, from the settings read when the code loads."""

from __future__ import annotations

import warnings

import dagster as dg

from orca_assets.jobs import embed_collection_job, embedding_assets
from orca_assets.prepare_model_job import prepare_model_job
from orca_assets.purge_collection_job import purge_collection_job
from orca_core.settings import OrcaSettings
from orca_resources.embedders import embedder_resource, ollama_resource
from orca_resources.intake_queue_resource import IntakeQueueResource
from orca_resources.warehouse import WarehouseResource
from schedules.reindex import build_reindex_schedule
from sensors.inbox import inbox_sensor
from sensors.intake import intake_sensor
from sensors.run_status import intake_run_status_sensor

# Resolving definitions copies each sensor through an initializer that passes `owners` along even when it is
# empty, and Dagster 1.13 then warns that the (unused) parameter is in beta on every code load of the daemon.
warnings.filterwarnings("ignore", message="Parameter `owners` of initializer `SensorDefinition", category=dg.BetaWarning)


def build_definitions(settings: OrcaSettings | None = None) -> dg.Definitions:
    """Orca's assets, checks, jobs, sensors, schedule and resources for `settings` (default: the environment's)."""
    settings = settings or OrcaSettings.from_env()
    return dg.Definitions(
        assets=embedding_assets,
        jobs=[embed_collection_job, prepare_model_job, purge_collection_job],
        sensors=[inbox_sensor, intake_sensor, intake_run_status_sensor],
        schedules=[build_reindex_schedule(settings)],
        resources={
            "embedder": embedder_resource(settings),
            "warehouse": WarehouseResource(
                home=str(settings.home),
                inbox_sweep_ticks=settings.inbox_sweep_ticks,
                inbox_follow_symlinks=settings.inbox_follow_symlinks,
                max_collections=settings.max_collections,
            ),
            # Only a URL here: the sensors open the queue inside their evaluations, never at import.
            "intake_queue": IntakeQueueResource(url=settings.intake_db_url),
            # prepare_model_job talks to Ollama even when the embedder is the offline one, so the model can be
            # made ready before switching ORCA_EMBEDDER to ollama.
            "ollama": ollama_resource(settings),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
