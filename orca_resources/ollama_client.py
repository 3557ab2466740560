"""`OllamaClient`: the Embedder that asks one or more Ollama servers for vectors, with its `OllamaConfig`.

A plain object, usable anywhere (the REST intake, the CLI, tests); `OllamaResource` wraps it for Dagster.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

# Only for the logger: Dagster captures its records into a run's event log; elsewhere it is a plain logger.
import dagster as dg
import numpy as np

from orca_core.embedder import BatchOutcome, InputKind, ModelInfo
from orca_core.settings import split_hosts
from orca_resources.errors import ContextLengthExceeded, EmbedderError, InvalidResponse, ModelNotFound
from orca_resources.ollama_api import (
    KNOWN_PREFIXES,
    base_model_name,
    digest_in_tags,
    shape_from_show,
    vectors_from_answer,
)
from orca_resources.ollama_http import OllamaHosts
from orca_resources.ollama_retry import RetryPolicy
from orca_resources.ollama_transport import Timeouts

TOO_LONG_POLICIES = ("truncate", "fail")


@dataclass(frozen=True)
class OllamaConfig:
    """Where the servers are, which model, and how hard to try; the fields `OllamaResource` exposes."""

    host: str = "http://localhost:11434"  # comma-separated for several servers
    model: str = "nomic-embed-text"
    batch_size: int = 32
    max_in_flight_per_host: int = 2
    connect_timeout: float = 5.0
    read_timeout: float = 300.0
    keep_alive: str = "30m"
    truncate: bool = False
    too_long_policy: str = "truncate"  # an input over the context: embed it truncated, or report it failed
    dimensions: int | None = None
    document_prefix: str | None = None  # None: the model card's prefix (KNOWN_PREFIXES)
    query_prefix: str | None = None
    max_retries: int = 4
    backoff_initial: float = 0.5
    backoff_max: float = 20.0
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0

    def __post_init__(self) -> None:
        if self.too_long_policy not in TOO_LONG_POLICIES:
            raise ValueError(f"too_long_policy must be 'truncate' or 'fail', not {self.too_long_policy!r}")

    @property
    def hosts(self) -> list[str]:
        """The configured servers as URLs."""
        return split_hosts(self.host)

    def probe(self, seconds: float, connect_seconds: float | None = None) -> OllamaConfig:
        """This configuration for a quick look at the servers: no retries, `seconds` to answer (and to connect,
        unless `connect_seconds` says otherwise)."""
        connect = seconds if connect_seconds is None else connect_seconds
        return dataclasses.replace(self, max_retries=0, connect_timeout=connect, read_timeout=seconds)

    def retry_policy(self) -> RetryPolicy:
        """The retry and breaker settings as the HTTP layer takes them."""
        return RetryPolicy(
            self.max_retries, self.backoff_initial, self.backoff_max, self.breaker_failures, self.breaker_cooldown
        )

    def timeouts(self) -> Timeouts:
        """Connect and read timeouts (a request waits for a free slot in `OllamaHosts`, not in its pool)."""
        return Timeouts(connect=self.connect_timeout, read=self.read_timeout)


class OllamaClient:
    """Embeds texts with Ollama's `/api/embed`, over one or more hosts, with retries and circuit breakers.

    Keeps at most `max_in_flight_per_host` requests per server in flight: Ollama embeds in one slot, so one
    request queued behind the running one keeps it busy, and more only lengthens its queue. Opens its HTTP
    clients when built; `close()` (or leaving a `with` block) closes them.

    `sleep` and `clock` let tests record backoff delays or move time without waiting; they default to
    `time.sleep` and `time.monotonic`.
    """

    def __init__(
        self,
        config: OllamaConfig,
        *,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ):
        self.config = config
        self._http = OllamaHosts(
            config.hosts, model=config.model, max_in_flight_per_host=config.max_in_flight_per_host,
            timeouts=config.timeouts(), policy=config.retry_policy(), sleep=sleep or time.sleep,
            clock=clock or time.monotonic,
        )
        self._info: ModelInfo | None = None
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the HTTP clients."""
        self._http.close()

    def __enter__(self) -> OllamaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def http(self) -> OllamaHosts:
        """The HTTP machinery every call goes through; model management (`ollama_models`) uses it too."""
        return self._http

    @property
    def batch_size(self) -> int:
        """Texts per batch that callers should send."""
        return self.config.batch_size

    # -- model -----------------------------------------------------------------------------------
    def model_info(self) -> ModelInfo:
        """Resolve the model on the first call (digest, dimensions, context, prefixes), then the cached answer."""
        with self._lock:
            if self._info is None:
                self._info = self._resolve_model()
            return self._info

    def _resolve_model(self) -> ModelInfo:
        config, http = self.config, self._http
        host, digest = http.request("GET", "/api/tags", parse=lambda tags: digest_in_tags(tags, config.model))
        if digest is None:
            raise ModelNotFound(config.model, host)
        _, shape = http.request("POST", "/api/show", {"model": config.model}, host=host, parse=shape_from_show)
        if shape.embedding_length is None:
            raise InvalidResponse(
                f"{host} /api/show gave no '{shape.architecture}.embedding_length' for {config.model}"
            )
        length, context = shape.embedding_length, shape.context_length
        if context is None:
            dg.get_dagster_logger().warning(f"{host} reports no context length for {config.model}; assuming 2048")
            context = 2048
        if config.dimensions is not None and not 0 < config.dimensions <= length:
            raise EmbedderError(f"dimensions={config.dimensions} is outside 1..{length} for {config.model}")
        self._check_other_hosts(host, digest)
        doc_prefix, query_prefix = KNOWN_PREFIXES.get(base_model_name(config.model), ("", ""))
        return ModelInfo(
            name=config.model, digest=digest, dimensions=config.dimensions or length, context_length=context,
            document_prefix=doc_prefix if config.document_prefix is None else config.document_prefix,
            query_prefix=query_prefix if config.query_prefix is None else config.query_prefix,
        )

    def _check_other_hosts(self, first: str, digest: str) -> None:
        """Vectors from two builds of a model don't mix in one index, so every host must serve the same one."""
        model = self.config.model
        for other in self._http.hosts:
            if other == first:
                continue
            try:
                _, other_digest = self._http.request(
                    "GET", "/api/tags", host=other, retries=0, parse=lambda tags: digest_in_tags(tags, model)
                )
            except ModelNotFound:
                raise
            except EmbedderError as exc:
                dg.get_dagster_logger().warning(f"could not check the model on {other}: {exc}")
                continue
            if other_digest is None:
                raise ModelNotFound(model, other)
            if other_digest != digest:
                raise EmbedderError(
                    f"{first} and {other} serve different builds of {model} (digests {digest[:12]} and "
                    f"{other_digest[:12]}); run `ollama pull {model}` on each so their vectors agree"
                )

    def version(self, host: str | None = None) -> str:
        """The Ollama version of `host` (default: the first configured host)."""
        http = self._http
        target = split_hosts(host)[0] if host else http.hosts[0]
        if target not in http.hosts:
            raise ValueError(f"{host!r} is not one of the configured hosts {http.hosts}")
        _, body = http.request("GET", "/api/version", host=target)
        return str(body.get("version", "")) if isinstance(body, dict) else ""

    # -- embedding -------------------------------------------------------------------------------
    def embed_batches(
        self, batches: Iterable[Sequence[str]], kind: InputKind = "document"
    ) -> Iterator[BatchOutcome]:
        """Embed each batch with the model's prefix for `kind`; outcomes in batch order, `batches` read lazily."""
        info = self.model_info()
        prefix = info.prefix_for(kind)
        capacity = self._http.capacity
        source = iter(enumerate(batches))
        pending: deque[Future[BatchOutcome]] = deque()
        pool = ThreadPoolExecutor(max_workers=capacity, thread_name_prefix="orca-embed")

        def refill() -> None:
            # Read the caller's iterable only as far as there is room to send.
            while len(pending) < capacity:
                item = next(source, None)
                if item is None:
                    return
                index, batch = item
                pending.append(pool.submit(self._embed_batch, index, [prefix + t for t in batch], info.dimensions))

        try:
            refill()
            while pending:
                outcome = pending.popleft().result()
                refill()  # keep the servers busy while the caller handles this outcome
                yield outcome
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of one search query, with the model's query prefix."""
        info = self.model_info()
        outcome = self._embed_batch(0, [info.query_prefix + text], info.dimensions)
        if outcome.failed:
            raise ContextLengthExceeded(outcome.failed[0])
        return outcome.vectors[0]

    def _embed_batch(self, index: int, texts: list[str], dims: int) -> BatchOutcome:
        outcome = BatchOutcome(vectors=np.zeros((len(texts), dims), dtype=np.float32))
        if texts:
            self._fill(texts, 0, outcome, dims)
        # No line per batch: in a run each one is an event written to the instance (about 3 ms, more than a
        # fast server takes for the batch); the `embeddings` step tells progress itself, once a second.
        log, model = dg.get_dagster_logger(), self.config.model
        if outcome.truncated:
            log.warning(
                f"batch {index}: input(s) {sorted(outcome.truncated)} exceed {model}'s context and were "
                "embedded truncated; smaller chunks would keep their whole text"
            )
        if outcome.failed:
            log.warning(f"batch {index}: input(s) {sorted(outcome.failed)} not embedded: too long for {model}")
        return outcome

    def _fill(self, texts: list[str], offset: int, outcome: BatchOutcome, dims: int) -> int:
        """Embed texts into outcome rows offset.., isolating inputs over the context by bisection."""
        try:
            outcome.vectors[offset : offset + len(texts)] = self._post_embed(texts, self.config.truncate, dims)
            return 1
        except ContextLengthExceeded as exc:
            if len(texts) > 1:
                # One long input fails its whole request; halving finds it in about 2*log2(n) requests.
                mid = len(texts) // 2
                return 1 + self._fill(texts[:mid], offset, outcome, dims) + self._fill(
                    texts[mid:], offset + mid, outcome, dims
                )
            if self.config.too_long_policy == "fail":
                outcome.failed[offset] = (
                    f"input of {len(texts[0])} characters exceeds the context of {self.config.model} ({exc}); "
                    "split it into smaller chunks or set too_long_policy='truncate'"
                )
                return 1
            outcome.vectors[offset] = self._post_embed(texts, True, dims)[0]
            outcome.truncated.add(offset)
            return 2

    def _post_embed(self, texts: list[str], truncate: bool, dims: int) -> np.ndarray:
        config = self.config
        payload: dict[str, Any] = {
            "model": config.model, "input": texts, "truncate": truncate, "keep_alive": config.keep_alive,
        }
        if config.dimensions is not None:
            payload["dimensions"] = config.dimensions
        _, vectors = self._http.request(
            "POST", "/api/embed", payload, raw=True, parse=lambda body: vectors_from_answer(body, len(texts), dims)
        )
        return vectors
