"""Which embedder Orca uses: chosen from the settings here, and only here.

`embedder_resource` gives the Dagster resource the assets use; `build_embedder` gives the same embedder, with
the same configuration, as a plain client for the REST intake and the command line, which run outside Dagster.
"""

from __future__ import annotations

from orca_core.embedder import Embedder
from orca_core.settings import OrcaSettings
from orca_resources.hashing_embedder import HashingEmbedderResource
from orca_resources.ollama import OllamaResource
from orca_resources.ollama_client import OllamaClient


def ollama_resource(settings: OrcaSettings) -> OllamaResource:
    """The Ollama servers and model the settings name (prepare_model_job uses it even with the offline embedder)."""
    return OllamaResource(host=settings.ollama_host, model=settings.embed_model)


def embedder_resource(settings: OrcaSettings) -> OllamaResource | HashingEmbedderResource:
    """The embedder ORCA_EMBEDDER names; the choice is made once here, never silently inside a run."""
    if settings.embedder == "hashing":
        return HashingEmbedderResource()
    return ollama_resource(settings)


def build_embedder(settings: OrcaSettings) -> Embedder:
    """The same embedder as a plain client, for code that runs outside Dagster (the caller closes it)."""
    resource = embedder_resource(settings)
    if isinstance(resource, OllamaResource):
        return OllamaClient(resource.ollama_config())
    return resource.embedder()
