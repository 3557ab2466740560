"""`OllamaResource`: the Embedder that asks one or more Ollama servers for vectors."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Optional

import dagster as dg
import httpx
import numpy as np
from pydantic import PrivateAttr

from orca_core.settings import split_hosts
from orca_resources.embedder import BatchOutcome, InputKind, ModelInfo
from orca_resources.errors import ContextLengthExceeded, EmbedderError, InvalidResponse, ModelNotFound
from orca_resources.ollama_http import OllamaHosts, RetryPolicy

RETRIEVAL_QUERY = "Represent this sentence for searching relevant passages: "
# (document prefix, query prefix) the model cards ask for; vectors without them retrieve noticeably worse.
KNOWN_PREFIXES: dict[str, tuple[str, str]] = {
    "nomic-embed-text": ("search_document: ", "search_query: "),
    "mxbai-embed-large": ("", RETRIEVAL_QUERY),
    "snowflake-arctic-embed": ("", RETRIEVAL_QUERY),
}


def base_model_name(name: str) -> str:
    """`registry/ns/nomic-embed-text:v1.5` -> `nomic-embed-text`."""
    return name.rsplit("/", 1)[-1].split(":", 1)[0]


def same_model(a: str, b: str) -> bool:
    def canonical(n: str) -> str:
        return n if ":" in n.rsplit("/", 1)[-1] else f"{n}:latest"

    return canonical(a) == canonical(b)


def check_vectors(data: Any, count: int, dims: int) -> np.ndarray:
    """The (count, dims) float32 vectors of an /api/embed answer, or InvalidResponse saying what is wrong."""
    vectors = data.get("embeddings") if isinstance(data, dict) else None
    if not isinstance(vectors, list):
        raise InvalidResponse("answered /api/embed without an 'embeddings' list")
    if len(vectors) != count:
        raise InvalidResponse(f"returned {len(vectors)} vectors for {count} inputs")
    try:
        array = np.asarray(vectors, dtype=np.float32).reshape(count, -1) if count else np.zeros((0, dims), np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidResponse(f"returned vectors that are not equal-length lists of numbers ({exc})") from exc
    if array.shape[1] != dims:
        raise InvalidResponse(f"returned {array.shape[1]}-dimensional vectors, expected {dims}")
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if bad.size:
        raise InvalidResponse(f"returned NaN/infinite values in {bad.size} of {count} vectors (seen under load)")
    zero = np.flatnonzero(np.linalg.norm(array, axis=1) < 1e-6)
    if zero.size:
        raise InvalidResponse(f"returned {zero.size} all-zero vector(s) of {count} (seen under load)")
    return array


class OllamaResource(dg.ConfigurableResource):
    """Embeds texts with Ollama's `/api/embed`, over one or more hosts, with retries and circuit breakers.

    Keeps at most `max_in_flight_per_host` requests per server in flight: Ollama embeds in one slot, so one
    request queued behind the running one keeps it busy, and more only lengthens its queue.
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

    _hosts: Optional[OllamaHosts] = PrivateAttr(default=None)
    _info: Optional[ModelInfo] = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.RLock)
    # Tests replace these to record backoff delays and move time without waiting.
    _sleep: Callable[[float], None] = PrivateAttr(default=time.sleep)
    _clock: Callable[[], float] = PrivateAttr(default=time.monotonic)
    _transport: Optional[httpx.BaseTransport] = PrivateAttr(default=None)

    # -- lifecycle -------------------------------------------------------------------------------
    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._http()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP clients (also done by Dagster after a run); the resource reopens them on next use."""
        with self._lock:
            if self._hosts is not None:
                self._hosts.close()
                self._hosts = None

    def http(self) -> OllamaHosts:
        """The HTTP machinery every call goes through (opened on first use); model management uses it too."""
        return self._http()

    def _http(self) -> OllamaHosts:
        with self._lock:
            if self._hosts is None:
                if self.too_long_policy not in ("truncate", "fail"):
                    raise ValueError(f"too_long_policy must be 'truncate' or 'fail', not {self.too_long_policy!r}")
                timeout = httpx.Timeout(
                    connect=self.connect_timeout, read=self.read_timeout, write=max(self.connect_timeout, 30.0),
                    pool=self.read_timeout,
                )
                policy = RetryPolicy(
                    self.max_retries, self.backoff_initial, self.backoff_max, self.breaker_failures, self.breaker_cooldown
                )
                self._hosts = OllamaHosts(
                    split_hosts(self.host), model=self.model, max_in_flight_per_host=self.max_in_flight_per_host,
                    timeout=timeout, policy=policy, sleep=lambda s: self._sleep(s), clock=lambda: self._clock(),
                    transport=self._transport,
                )
            return self._hosts

    # -- model -----------------------------------------------------------------------------------
    def model_info(self) -> ModelInfo:
        with self._lock:
            if self._info is None:
                self._info = self._resolve_model()
            return self._info

    def _resolve_model(self) -> ModelInfo:
        http = self._http()
        host, tags = http.request("GET", "/api/tags")
        digest = self._digest(tags, host)
        _, show = http.request("POST", "/api/show", {"model": self.model}, host=host)
        info = show.get("model_info") or {} if isinstance(show, dict) else {}
        arch = info.get("general.architecture", "")
        length = info.get(f"{arch}.embedding_length")
        if not isinstance(length, int):
            raise InvalidResponse(f"{host} /api/show gave no '{arch}.embedding_length' for {self.model}")
        context = info.get(f"{arch}.context_length")
        if not isinstance(context, int):
            dg.get_dagster_logger().warning(f"{host} reports no context length for {self.model}; assuming 2048")
            context = 2048
        if self.dimensions is not None and not 0 < self.dimensions <= length:
            raise EmbedderError(f"dimensions={self.dimensions} is outside 1..{length} for {self.model}")
        self._check_other_hosts(http, host, digest)
        doc_prefix, query_prefix = KNOWN_PREFIXES.get(base_model_name(self.model), ("", ""))
        return ModelInfo(
            name=self.model, digest=digest, dimensions=self.dimensions or length, context_length=context,
            document_prefix=doc_prefix if self.document_prefix is None else self.document_prefix,
            query_prefix=query_prefix if self.query_prefix is None else self.query_prefix,
        )

    def _digest(self, tags: Any, host: str) -> str:
        for entry in (tags or {}).get("models", []) if isinstance(tags, dict) else []:
            if same_model(entry.get("name") or entry.get("model") or "", self.model):
                return str(entry.get("digest", ""))
        raise ModelNotFound(self.model, host)

    def _check_other_hosts(self, http: OllamaHosts, first: str, digest: str) -> None:
        """Vectors from two builds of a model don't mix in one index, so every host must serve the same one."""
        for other in http.hosts:
            if other == first:
                continue
            try:
                _, tags = http.request("GET", "/api/tags", host=other, retries=0)
            except (ModelNotFound, EmbedderError) as exc:
                if isinstance(exc, ModelNotFound):
                    raise
                dg.get_dagster_logger().warning(f"could not check the model on {other}: {exc}")
                continue
            if (other_digest := self._digest(tags, other)) != digest:
                raise EmbedderError(
                    f"{first} and {other} serve different builds of {self.model} (digests {digest[:12]} and "
                    f"{other_digest[:12]}); run `ollama pull {self.model}` on each so their vectors agree"
                )

    # -- embedding -------------------------------------------------------------------------------
    def embed_batches(
        self, batches: Iterable[Sequence[str]], kind: InputKind = "document"
    ) -> Iterator[BatchOutcome]:
        info = self.model_info()
        prefix = info.prefix_for(kind)
        capacity = self._http().capacity
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
        info = self.model_info()
        outcome = self._embed_batch(0, [info.query_prefix + text], info.dimensions)
        if outcome.failed:
            raise ContextLengthExceeded(outcome.failed[0])
        return outcome.vectors[0]

    def _embed_batch(self, index: int, texts: list[str], dims: int) -> BatchOutcome:
        started = time.perf_counter()
        outcome = BatchOutcome(vectors=np.zeros((len(texts), dims), dtype=np.float32))
        requests = self._fill(texts, 0, outcome, dims) if texts else 0
        log = dg.get_dagster_logger()
        log.debug(
            f"batch {index}: {len(texts)} input(s) embedded in {time.perf_counter() - started:.2f}s "
            f"with {requests} request(s)"
        )
        if outcome.truncated:
            log.warning(
                f"batch {index}: input(s) {sorted(outcome.truncated)} exceed {self.model}'s context and were "
                "embedded truncated; smaller chunks would keep their whole text"
            )
        if outcome.failed:
            log.warning(f"batch {index}: input(s) {sorted(outcome.failed)} not embedded: too long for {self.model}")
        return outcome

    def _fill(self, texts: list[str], offset: int, outcome: BatchOutcome, dims: int) -> int:
        """Embed texts into outcome rows offset.., isolating inputs over the context by bisection."""
        try:
            outcome.vectors[offset : offset + len(texts)] = self._post_embed(texts, self.truncate, dims)
            return 1
        except ContextLengthExceeded as exc:
            if len(texts) > 1:
                # One long input fails its whole request; halving finds it in about 2*log2(n) requests.
                mid = len(texts) // 2
                return 1 + self._fill(texts[:mid], offset, outcome, dims) + self._fill(
                    texts[mid:], offset + mid, outcome, dims
                )
            if self.too_long_policy == "fail":
                outcome.failed[offset] = (
                    f"input of {len(texts[0])} characters exceeds the context of {self.model} ({exc}); "
                    "split it into smaller chunks or set too_long_policy='truncate'"
                )
                return 1
            outcome.vectors[offset] = self._post_embed(texts, True, dims)[0]
            outcome.truncated.add(offset)
            return 2

    def _post_embed(self, texts: list[str], truncate: bool, dims: int) -> np.ndarray:
        payload: dict[str, Any] = {
            "model": self.model, "input": texts, "truncate": truncate, "keep_alive": self.keep_alive,
        }
        if self.dimensions is not None:
            payload["dimensions"] = self.dimensions
        _, vectors = self._http().request(
            "POST", "/api/embed", payload, parse=lambda data: check_vectors(data, len(texts), dims)
        )
        return vectors

    # -- operations ------------------------------------------------------------------------------
    def preload(self) -> float:
        """Load the model on every host (an embed without input) and keep it loaded; returns seconds taken."""
        http = self._http()
        started = time.perf_counter()
        payload = {"model": self.model, "keep_alive": self.keep_alive}
        with ThreadPoolExecutor(max_workers=len(http.hosts)) as pool:
            futures = {h: pool.submit(http.request, "POST", "/api/embed", payload, host=h) for h in http.hosts}
        errors = {h: f.exception() for h, f in futures.items() if f.exception() is not None}
        if len(errors) == len(futures):
            raise next(iter(errors.values()))  # type: ignore[misc]
        for h, exc in errors.items():
            dg.get_dagster_logger().warning(f"could not preload {self.model} on {h}: {exc}")
        return time.perf_counter() - started

    def version(self, host: Optional[str] = None) -> str:
        """The Ollama version of `host` (default: the first configured host)."""
        http = self._http()
        target = split_hosts(host)[0] if host else http.hosts[0]
        if target not in http.hosts:
            raise ValueError(f"{host!r} is not one of the configured hosts {http.hosts}")
        _, body = http.request("GET", "/api/version", host=target)
        return str(body.get("version", "")) if isinstance(body, dict) else ""
