"""`OllamaResource`: the Dagster resource over `OllamaClient`, the Embedder that asks Ollama servers for vectors.

Shaped like Dagster's own integrations: typed config, a client made in `setup_for_execution` and closed in
`teardown_after_execution`. Code outside Dagster (the REST intake, the CLI) uses `OllamaClient` directly.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Optional

import dagster as dg
import numpy as np
from pydantic import PrivateAttr

from orca_core.embedder import BatchOutcome, InputKind, ModelInfo

# Re-exported: the intake, the sensors and search import these names from here.
from orca_resources.ollama_api import KNOWN_PREFIXES, RETRIEVAL_QUERY, base_model_name, check_vectors, same_model
from orca_resources.ollama_client import OllamaClient, OllamaConfig

__all__ = [
    "KNOWN_PREFIXES", "RETRIEVAL_QUERY", "OllamaClient", "OllamaConfig", "OllamaResource", "base_model_name",
    "check_vectors", "same_model",
]


class OllamaResource(dg.ConfigurableResource):
    """Embeds texts with Ollama's `/api/embed`, over one or more hosts, with retries and circuit breakers.

    Keeps at most `max_in_flight_per_host` requests per server in flight: Ollama embeds in one slot, so one
    request queued behind the running one keeps it busy, and more only lengthens its queue. The work is done
    by an `OllamaClient` (see `client()`); this resource implements the `Embedder` protocol by delegating
    to it, so assets typed `dg.ResourceParam[Embedder]` take it as they are.
    """

    host: str = "http://localhost:11434"
    model: str = "nomic-embed-text"
    batch_size: int = 32
    max_in_flight_per_host: int = 2
    connect_timeout: float = 5.0
    read_timeout: float = 300.0
    keep_alive: str = "30m"
    truncate: bool = False
    too_long_policy: str = "truncate"
    dimensions: Optional[int] = None
    document_prefix: Optional[str] = None
    query_prefix: Optional[str] = None
    max_retries: int = 4
    backoff_initial: float = 0.5
    backoff_max: float = 20.0
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0

    _client: Optional[OllamaClient] = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    # Handed to the client when it is made: tests set them first to record backoff delays or move time
    # without waiting. None means the client's defaults.
    _sleep: Optional[Callable[[float], None]] = PrivateAttr(default=None)
    _clock: Optional[Callable[[], float]] = PrivateAttr(default=None)

    # -- lifecycle -------------------------------------------------------------------------------
    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self.client()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def ollama_config(self) -> OllamaConfig:
        """This resource's fields as the client's configuration."""
        return OllamaConfig(**{field.name: getattr(self, field.name) for field in dataclasses.fields(OllamaConfig)})

    def client(self) -> OllamaClient:
        """The client every call goes through: made in `setup_for_execution`, or on first use outside a run."""
        with self._lock:
            if self._client is None:
                self._client = OllamaClient(self.ollama_config(), sleep=self._sleep, clock=self._clock)
            return self._client

    def close(self) -> None:
        """Close the client (also done by Dagster after a run); the next use makes a new one."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- the Embedder protocol ---------------------------------------------------------------------
    def model_info(self) -> ModelInfo:
        """The model's name, digest, dimensions, context length and prefixes (resolved once per client)."""
        return self.client().model_info()

    def embed_batches(
        self, batches: Iterable[Sequence[str]], kind: InputKind = "document"
    ) -> Iterator[BatchOutcome]:
        """Embed each batch with the model's prefix for `kind`; outcomes in batch order, `batches` read lazily."""
        return self.client().embed_batches(batches, kind)

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of one search query, with the model's query prefix."""
        return self.client().embed_query(text)
