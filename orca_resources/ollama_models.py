"""The configured model on one Ollama host: is it there, pull it (streamed), what shape it has, load it.

`prepare_model_job` uses these; each call goes through `OllamaHosts.request`, so the retries, in-flight
slots and circuit breakers of `OllamaResource` apply to model management as they do to embedding.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orca_resources.errors import InvalidResponse
from orca_resources.ollama import OllamaResource, same_model


@dataclass(frozen=True)
class ModelShape:
    """What `/api/show` says about the model: architecture, vector length, context length and capabilities."""

    architecture: str
    embedding_length: int | None
    context_length: int | None
    capabilities: tuple[str, ...] | None  # None when the server is too old to report them


@dataclass(frozen=True)
class LoadTiming:
    """How long a load call took on one host, as measured here and as the server reported it."""

    seconds: float
    server_load_seconds: float | None


def model_digest(ollama: OllamaResource, host: str) -> str | None:
    """The digest of the configured model on `host` (from `/api/tags`), or None when it is not pulled."""
    _, tags = ollama.http().request("GET", "/api/tags", host=host)
    for entry in tags.get("models", []) if isinstance(tags, dict) else []:
        if same_model(entry.get("name") or entry.get("model") or "", ollama.model):
            return str(entry.get("digest", ""))
    return None


def _pulled(last: Any) -> Any:
    # Ollama ends a complete pull with {"status": "success"}; a stream cut short is worth another attempt.
    if not isinstance(last, dict) or last.get("status") != "success":
        raise InvalidResponse(f"the pull stream ended without success (last line: {last!r})")
    return last


def pull(ollama: OllamaResource, host: str, on_line: Callable[[dict], None], *, insecure: bool = False) -> None:
    """Pull the configured model onto `host` with `"stream": true`, handing each progress line to `on_line`.

    Raises StreamError with the server's message when a line carries `{"error": ...}` (HTTP status 200).
    An interrupted stream is retried like any call; Ollama resumes the layers it already has.
    """
    payload = {"model": ollama.model, "stream": True, "insecure": insecure}
    ollama.http().request("POST", "/api/pull", payload, host=host, on_line=on_line, parse=_pulled)


def model_shape(ollama: OllamaResource, host: str) -> ModelShape:
    """The model's architecture, embedding and context length as `/api/show` reports them on `host`."""
    _, show = ollama.http().request("POST", "/api/show", {"model": ollama.model}, host=host)
    info = (show.get("model_info") or {}) if isinstance(show, dict) else {}
    arch = str(info.get("general.architecture", ""))
    length = info.get(f"{arch}.embedding_length")
    context = info.get(f"{arch}.context_length")
    capabilities = show.get("capabilities") if isinstance(show, dict) else None
    return ModelShape(
        architecture=arch,
        embedding_length=length if isinstance(length, int) else None,
        context_length=context if isinstance(context, int) else None,
        capabilities=tuple(map(str, capabilities)) if isinstance(capabilities, list) else None,
    )


def load(ollama: OllamaResource, host: str, keep_alive: str) -> LoadTiming:
    """Load the model on `host` with an embed call without input, kept loaded for `keep_alive`."""
    started = time.perf_counter()
    _, body = ollama.http().request("POST", "/api/embed", {"model": ollama.model, "keep_alive": keep_alive}, host=host)
    nanoseconds = body.get("load_duration") if isinstance(body, dict) else None
    return LoadTiming(
        seconds=time.perf_counter() - started,
        server_load_seconds=nanoseconds / 1e9 if isinstance(nanoseconds, (int, float)) else None,
    )
