"""Which embedder embeds a search's query: the one that built the index, whenever it is available here.

An index knows its model. A query embedded by any other model ranks nothing meaningfully, so search follows
the index rather than the settings where it can: an index built by the offline embedder is searched with the
offline embedder (always available, whatever ORCA_EMBEDDER says: `orca up` falls back to it when no Ollama
answers, and the commands after it must still work). Only the offline embedder is substituted: an index built
by an Ollama model while ORCA_EMBEDDER=hashing, or by another model than ORCA_EMBED_MODEL, still meets
ModelMismatch, which says how to rebuild it; Orca never calls a server the settings do not name.
"""

from __future__ import annotations

from dataclasses import dataclass

from orca_core.embedder import Embedder
from orca_core.model_names import same_model
from orca_core.settings import OrcaSettings
from orca_resources.hashing_embedder import MODEL_NAME as HASHING_MODEL
from orca_resources.hashing_embedder import HashingEmbedder

OFFLINE = "hashing"


@dataclass(frozen=True)
class QueryEmbedder:
    """The embedder a search uses, and which of Orca's embedders it is (`ollama` or `hashing`)."""

    embedder: Embedder
    kind: str


def _built_by(models: tuple[str, ...], model: str) -> bool:
    return bool(models) and all(same_model(built, model) for built in models)


def query_embedder(
    settings: OrcaSettings, configured: Embedder, models: tuple[str, ...], dimensions: int | None
) -> QueryEmbedder:
    """The embedder for an index built by `models` (of `dimensions`): the configured one unless the index was
    built by the offline embedder, which needs nothing to run."""
    if settings.embedder != OFFLINE and _built_by(models, HASHING_MODEL):
        return QueryEmbedder(HashingEmbedder(dimensions) if dimensions else HashingEmbedder(), OFFLINE)
    return QueryEmbedder(configured, settings.embedder)
