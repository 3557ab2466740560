"""The HTTP machinery behind `OllamaClient`: one request path with retries, per-host slots and breakers.

Every call to an Ollama server goes through `OllamaHosts.request`, so retry, backoff, circuit breaking and
error mapping behave the same for embedding, model lookup, model management and version checks.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from typing import Any, NoReturn

import dagster as dg
import urllib3
from urllib3.exceptions import HTTPError as TransportError

from orca_resources.errors import (
    CircuitOpenError,
    ContextLengthExceeded,
    EmbedderBadRequest,
    EmbedderUnavailable,
    InvalidResponse,
    ModelNotFound,
    StreamError,
)
from orca_resources.ollama_api import json_body
from orca_resources.ollama_retry import CircuitBreaker, RetryPolicy, parse_retry_after
from orca_resources.ollama_transport import ServerPool, Timeouts, answer_lines, describe, error_text

# Paths whose 404 means "model not pulled"; elsewhere a 404 means the URL is not an Ollama server.
MODEL_PATHS = ("/api/embed", "/api/show")


class _Retryable(Exception):
    """One attempt failed in a way another attempt may not (transport error, 5xx, busy, bad answer)."""

    def __init__(self, cause: str, *, host_fault: bool, retry_after: float | None = None, invalid: bool = False):
        super().__init__(cause)
        self.cause = cause
        self.invalid = invalid
        self.host_fault = host_fault  # counts towards the breaker; a wrong answer from a live host does not
        self.retry_after = retry_after


class OllamaHosts:
    """HTTP clients, in-flight slots and circuit breakers for one or more Ollama servers."""

    def __init__(
        self,
        hosts: list[str],
        *,
        model: str,
        max_in_flight_per_host: int,
        timeouts: Timeouts,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
    ):
        if not hosts:
            raise ValueError("no Ollama host configured: set `host` (or OLLAMA_HOST) to e.g. http://localhost:11434")
        if max_in_flight_per_host < 1:
            raise ValueError("max_in_flight_per_host must be at least 1")
        self.hosts = list(hosts)
        self.model = model
        self.max_in_flight = max_in_flight_per_host
        self.policy = policy
        self._sleep = sleep
        self._clock = clock
        self._random = random.Random()
        # Never more requests in flight than slots (`_acquire`): the pools need not block, only keep them alive.
        self._clients = {h: ServerPool(h, timeouts, max_in_flight_per_host + 2) for h in self.hosts}
        self._cond = threading.Condition()
        self._in_flight = {h: 0 for h in self.hosts}
        self._started = {h: 0 for h in self.hosts}
        self._breakers = {h: CircuitBreaker() for h in self.hosts}
        self._log = dg.get_dagster_logger()

    @property
    def capacity(self) -> int:
        """How many requests may be in flight at once over all hosts."""
        return self.max_in_flight * len(self.hosts)

    def close(self) -> None:
        """Close every host's connections."""
        for client in self._clients.values():
            client.pool.close()

    def request(
        self,
        method: str,
        path: str,
        payload: dict | None = None,
        *,
        host: str | None = None,
        parse: Callable[[Any], Any] | None = None,
        raw: bool = False,
        retries: int | None = None,
        on_line: Callable[[dict], None] | None = None,
    ) -> tuple[str, Any]:
        """Send one call, retrying transient failures (on another healthy host when there is one).

        `parse` validates a 2xx JSON body (its bytes, with `raw`) and raises InvalidResponse for a wrong one, which
        is retried.
        With `on_line`, the answer is read as a stream of NDJSON objects (`"stream": true` calls such as
        `/api/pull`): each one is handed to `on_line` as it arrives, and `parse` sees the last one. A line
        carrying `{"error": ...}` raises StreamError with the server's message, though the status was 200.
        Returns (host that answered, parsed body).
        """
        retries = self.policy.max_retries if retries is None else retries
        attempts, avoid, last = 0, None, None
        while True:
            chosen = self._acquire(host, avoid)
            verdict: bool | None = None
            try:
                if on_line is None:
                    body = self._attempt(chosen, method, path, payload)
                    data = body if raw else json_body(body)
                else:
                    data = self._attempt_stream(chosen, method, path, payload, on_line)
                result = parse(data) if parse else data
                verdict = True
                return chosen, result
            except InvalidResponse as exc:
                last, verdict = _Retryable(f"{chosen}: {exc}", host_fault=False, invalid=True), True
            except _Retryable as exc:
                last, verdict = exc, (False if exc.host_fault else None)
            except (ModelNotFound, EmbedderBadRequest):
                verdict = True  # the server is up and answered; only the request is wrong
                raise
            finally:
                self._release(chosen, verdict, last.cause if last else "")
            attempts += 1
            if attempts > retries:
                if last.invalid:
                    raise InvalidResponse(
                        f"Ollama gave {attempts} invalid answer(s) to {method} {path}; last from {last.cause}"
                    )
                raise EmbedderUnavailable(
                    f"Ollama unavailable: {method} {path} failed after {attempts} attempt(s); last error from "
                    f"{last.cause}. Check that `ollama serve` runs there and that OLLAMA_HOST points to it."
                )
            delay = last.retry_after
            if delay is None:
                delay = self.policy.backoff(attempts, self._random)
            self._log.warning(
                f"Ollama {method} {path}: {last.cause}; retrying in {delay:.2f}s (attempt {attempts + 1} of {retries + 1})"
            )
            self._sleep(delay)
            avoid = chosen

    def _attempt(self, host: str, method: str, path: str, payload: dict | None) -> Any:
        try:
            response = self._clients[host].send(method, path, payload)
        except (TransportError, OSError) as exc:
            raise _Retryable(f"{host}: {describe(exc)}", host_fault=True) from exc
        if response.status < 300:
            return response.data
        self._raise_for_status(host, method, path, response)

    def _attempt_stream(
        self, host: str, method: str, path: str, payload: dict | None, on_line: Callable[[dict], None]
    ) -> Any:
        """One streamed attempt: NDJSON objects to `on_line` as they arrive; returns the last one."""
        last: Any = None
        try:
            response = self._clients[host].send(method, path, payload, stream=True)
            try:
                if response.status >= 300:
                    response.read(cache_content=True)  # kept for `.data`, which the error message reads
                    self._raise_for_status(host, method, path, response)
                for line in answer_lines(response):
                    if not line.strip():
                        continue
                    try:
                        data = json.loads(line)
                    except ValueError as exc:
                        raise InvalidResponse(f"streamed a line of {path} that is not JSON ({line[:80]!r})") from exc
                    if isinstance(data, dict) and "error" in data:
                        raise StreamError(f"{host} reported an error during {method} {path}: {data['error']}")
                    on_line(data if isinstance(data, dict) else {"value": data})
                    last = data
            finally:
                response.release_conn()
        except (TransportError, OSError) as exc:  # also a connection cut in the middle of the stream
            raise _Retryable(f"{host}: {describe(exc)}", host_fault=True) from exc
        return last

    def _raise_for_status(self, host: str, method: str, path: str, response: urllib3.BaseHTTPResponse) -> NoReturn:
        """Map a non-2xx answer to the error the caller can act on (or a retryable one)."""
        status = response.status
        message = error_text(response)
        if status == 404:
            if path in MODEL_PATHS:
                raise ModelNotFound(self.model, host)
            raise EmbedderBadRequest(f"{host} has no {path} (404: {message}); is this URL an Ollama server?")
        if status == 400:
            kind = ContextLengthExceeded if "context length" in message.lower() else EmbedderBadRequest
            raise kind(f"{host} refused {method} {path}: {message}")
        if status in (408, 429) or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.policy.backoff_max)
            # A full queue means the server works and asks us to slow down; only other errors trip the breaker.
            busy = status in (429, 503) and "busy" in message.lower()
            raise _Retryable(f"{host}: HTTP {status}: {message}", host_fault=not busy, retry_after=retry_after)
        raise EmbedderBadRequest(f"{host} answered {method} {path} with HTTP {status}: {message}")

    def _acquire(self, host: str | None, avoid: str | None) -> str:
        """Take an in-flight slot on a healthy host, waiting while all healthy hosts are full."""
        candidates = [host] if host else self.hosts
        with self._cond:
            while True:
                now = self._clock()
                cooldown = self.policy.breaker_cooldown
                allowed = [h for h in candidates if self._breakers[h].allows(now, cooldown)]
                if not allowed:
                    raise CircuitOpenError(self._open_message(candidates, now))
                free = [h for h in allowed if self._in_flight[h] < self.max_in_flight]
                if free:
                    chosen = min(free, key=lambda h: (h == avoid, self._in_flight[h], self._started[h]))
                    breaker = self._breakers[chosen]
                    if breaker.opened_at is not None:
                        breaker.probing = True  # half-open: this call alone tests the host
                    self._in_flight[chosen] += 1
                    self._started[chosen] += 1
                    return chosen
                self._cond.wait(0.25)

    def _release(self, host: str, verdict: bool | None, cause: str) -> None:
        with self._cond:
            self._in_flight[host] -= 1
            breaker = self._breakers[host]
            if verdict is True:
                if breaker.opened_at is not None:
                    self._log.info(f"Ollama host {host} answers again; closing its circuit breaker")
                breaker.failures, breaker.opened_at, breaker.probing = 0, None, False
            elif verdict is False:
                breaker.failures += 1
                breaker.last_cause = cause
                if breaker.probing or breaker.failures >= self.policy.breaker_failures:
                    breaker.opened_at, breaker.probing = self._clock(), False
                    self._log.warning(
                        f"Ollama host {host} failed {breaker.failures} time(s) in a row ({cause}); calls to it "
                        f"fail fast for {self.policy.breaker_cooldown:.0f}s. Check that `ollama serve` runs there."
                    )
            else:
                breaker.probing = False
            self._cond.notify_all()

    def _open_message(self, hosts: list[str], now: float) -> str:
        parts = []
        for h in hosts:
            b = self._breakers[h]
            wait = max(0.0, self.policy.breaker_cooldown - (now - (b.opened_at or now)))
            parts.append(f"{h} (retry in {wait:.0f}s; last error: {b.last_cause or 'unknown'})")
        return (
            "circuit open for every Ollama host after repeated failures: " + "; ".join(parts)
            + ". Check that the server runs and is reachable, or add hosts to OLLAMA_HOST."
        )
