"""The one place that assembles Orca's Dagster definitions and wires settings from the environment."""

from __future__ import annotations

import os

import dagster as dg

from orca_assets.checks import index_checks
from orca_assets.jobs import embed_collection_job, embedding_assets
from orca_resources.hashing import HashingEmbedderResource
from orca_resources.ollama import OllamaResource
from orca_resources.settings import DEFAULTS
from orca_resources.warehouse import WarehouseResource


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
        jobs=[embed_collection_job],
        resources={
            "embedder": embedder_resource(),
            "warehouse": WarehouseResource(home=env("ORCA_HOME")),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
