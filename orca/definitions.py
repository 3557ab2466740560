"""The one place that assembles Orca's Dagster definitions and wires settings from the environment."""

from __future__ import annotations

import os
import warnings

import dagster as dg

from orca_assets.checks import index_checks
from orca_assets.jobs import embed_collection_job, embedding_assets
from orca_assets.maintenance import purge_collection_job  # op jobs (issue 7)
from orca_assets.model_ops import prepare_model_job  # op jobs (issue 7)
from orca_resources.hashing_embedder import HashingEmbedderResource
from orca_resources.intake_queue_resource import IntakeQueueResource
from orca_resources.ollama import OllamaResource
from orca_resources.settings import DEFAULTS
from orca_resources.warehouse import WarehouseResource
from schedules.reindex import build_reindex_schedule
from sensors.inbox import inbox_sensor
from sensors.intake import intake_sensor
from sensors.run_status import intake_run_status_sensor

# Resolving definitions copies each sensor through an initializer that passes `owners` along even when it is
# empty, and Dagster 1.13 then warns that the (unused) parameter is in beta on every code load of the daemon.
warnings.filterwarnings("ignore", message="Parameter `owners` of initializer `SensorDefinition", category=dg.BetaWarning)


def env(name: str) -> str:
    """`dg.EnvVar(name)` when the variable is set, so Dagster resolves it at run time; else the documented default."""
    return dg.EnvVar(name) if os.environ.get(name) else DEFAULTS[name]


def embedder_resource() -> dg.ConfigurableResource:
    """The embedder ORCA_EMBEDDER names; the choice is made once here, never silently inside a run."""
    kind = (os.environ.get("ORCA_EMBEDDER") or DEFAULTS["ORCA_EMBEDDER"]).strip().lower()
    if kind == "hashing":
        return HashingEmbedderResource()
    if kind != "ollama":
        raise ValueError(f"ORCA_EMBEDDER must be 'ollama' or 'hashing', not {kind!r}")
    return OllamaResource(host=env("OLLAMA_HOST"), model=env("ORCA_EMBED_MODEL"))


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=embedding_assets,
        asset_checks=index_checks,
        jobs=[embed_collection_job, prepare_model_job, purge_collection_job],
        sensors=[inbox_sensor, intake_sensor, intake_run_status_sensor],
        # Built here rather than imported, so ORCA_REINDEX_CRON/ORCA_TIMEZONE are read when definitions load.
        schedules=[build_reindex_schedule()],
        resources={
            "embedder": embedder_resource(),
            "warehouse": WarehouseResource(home=env("ORCA_HOME")),
            # Only a URL here: the sensors open the queue inside their evaluations, never at import.
            "intake_queue": IntakeQueueResource(url=env("ORCA_INTAKE_DB_URL"), home=env("ORCA_HOME")),
            # ---- op jobs (issue 7): prepare_model_job talks to Ollama even when the embedder is the offline
            # one, so the model can be made ready before switching ORCA_EMBEDDER to ollama.
            "ollama": OllamaResource(host=env("OLLAMA_HOST"), model=env("ORCA_EMBED_MODEL")),
            # ---- end of op jobs
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
