"""The configured model on one Ollama host: is it there, pull it (streamed), what shape it has, load it.

`prepare_model_job` and `orca up` use these; each call goes through the client's `OllamaHosts.request`, so
the retries, in-flight slots and circuit breakers of `OllamaClient` apply to model management as they do
to embedding. Answers are read by `ollama_api`, the one place that says what they mean.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orca_resources.errors import InvalidResponse
from orca_resources.ollama_api import ModelShape, digest_in_tags, shape_from_show

if TYPE_CHECKING:
    from orca_resources.ollama_client import OllamaClient

__all__ = ["LoadTiming", "ModelShape", "load", "model_digest", "model_shape", "pull"]


@dataclass(frozen=True)
class LoadTiming:
    """How long a load call took on one host, as measured here and as the server reported it."""

    seconds: float
    server_load_seconds: float | None


def model_digest(client: OllamaClient, host: str) -> str | None:
    """The digest of the configured model on `host` (from `/api/tags`), or None when it is not pulled."""
    model = client.config.model
    _, digest = client.http.request("GET", "/api/tags", host=host, parse=lambda tags: digest_in_tags(tags, model))
    return digest


def _pulled(last: Any) -> Any:
    # Ollama ends a complete pull with {"status": "success"}; a stream cut short is worth another attempt.
    if not isinstance(last, dict) or last.get("status") != "success":
        raise InvalidResponse(f"the pull stream ended without success (last line: {last!r})")
    return last


def pull(client: OllamaClient, host: str, on_line: Callable[[dict], None], *, insecure: bool = False) -> None:
    """Pull the configured model onto `host` with `"stream": true`, handing each progress line to `on_line`.

    Raises StreamError with the server's message when a line carries `{"error": ...}` (HTTP status 200).
    An interrupted stream is retried like any call; Ollama resumes the layers it already has.
    """
    payload = {"model": client.config.model, "stream": True, "insecure": insecure}
    client.http.request("POST", "/api/pull", payload, host=host, on_line=on_line, parse=_pulled)


def model_shape(client: OllamaClient, host: str) -> ModelShape:
    """The model's architecture, embedding and context length as `/api/show` reports them on `host`."""
    payload = {"model": client.config.model}
    _, shape = client.http.request("POST", "/api/show", payload, host=host, parse=shape_from_show)
    return shape


def load(client: OllamaClient, host: str, keep_alive: str) -> LoadTiming:
    """Load the model on `host` with an embed call without input, kept loaded for `keep_alive`."""
    started = time.perf_counter()
    payload = {"model": client.config.model, "keep_alive": keep_alive}
    _, body = client.http.request("POST", "/api/embed", payload, host=host)
    nanoseconds = body.get("load_duration") if isinstance(body, dict) else None
    return LoadTiming(
        seconds=time.perf_counter() - started,
        server_load_seconds=nanoseconds / 1e9 if isinstance(nanoseconds, (int, float)) else None,
    )
