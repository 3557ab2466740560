"""One Ollama server's connections: a urllib3 pool, its timeouts, and what a request and an answer look like.

`OllamaHosts` (orca_resources/ollama_http.py) holds one `ServerPool` per server and decides which one a call goes
to; this module only sends and reads.
"""

from __future__ import annotations

import functools
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import certifi
import orjson
import urllib3

# Why urllib3 (MIT, the HTTP core of `requests`) and not httpx: a request that brings back 32 vectors of 768
# floats (280 KB of JSON) costs httpx about 0.9 ms of CPU here and urllib3 about 0.33 ms; at a fleet's rate
# that difference alone is a fifth of the client's CPU per input (bench/client.py, docs/benchmarks-client.md).
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
STREAM_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Timeouts:
    """Seconds to connect, and to wait for each read of an answer (and each write of a request)."""

    connect: float
    read: float


def _body(payload: dict) -> bytes:
    try:
        return orjson.dumps(payload)
    except TypeError:  # a text orjson refuses (a lone surrogate): the standard library escapes it
        return json.dumps(payload).encode()


def error_text(response: urllib3.BaseHTTPResponse) -> str:
    text = response.data.decode("utf-8", "replace")
    try:
        body = json.loads(text)
        if isinstance(body, dict) and "error" in body:
            return str(body["error"])
    except ValueError:
        pass
    return text[:300] or response.reason or ""


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def answer_lines(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """The answer's lines as they arrive."""
    pending = b""
    for chunk in response.stream(STREAM_CHUNK):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from lines
    if pending:
        yield pending


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process, shared by every pool: loading the CA bundle costs about 17 ms,
    which would otherwise be paid on every run (a client is built per run). Sharing a context is safe."""
    return ssl.create_default_context(cafile=certifi.where())


class ServerPool:
    """One server's connection pool, and the path its URL puts before Ollama's (`https://gateway/ollama`)."""

    def __init__(self, url: str, timeouts: Timeouts, size: int):
        parsed = urllib3.util.parse_url(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"not an http(s) URL of an Ollama server: {url!r}")
        self.prefix = (parsed.path or "").rstrip("/")
        tls = {"ssl_context": _tls_context()} if parsed.scheme == "https" else {}
        self.pool = urllib3.connection_from_url(
            url, maxsize=size, block=False, retries=False,
            timeout=urllib3.Timeout(connect=timeouts.connect, read=timeouts.read), **tls,
        )

    def send(self, method: str, path: str, payload: dict | None, *, stream: bool = False) -> urllib3.BaseHTTPResponse:
        body = None if payload is None else _body(payload)
        return self.pool.urlopen(
            method, self.prefix + path, body=body, headers=JSON_HEADERS, retries=False, redirect=False,
            preload_content=not stream,
        )


