"""The HTTP plumbing and protocol records of the Ollama stand-in (see tests/ollama_standin.py)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.ollama_standin import OllamaStandIn

BUSY = "server busy, please try again.  maximum pending requests exceeded"
TOO_LONG = "the input length exceeds the context length"
CORRUPTIONS = ("nan", "zero", "short", "malformed", "wrong_dims")


def canonical(name: str) -> str:
    """Ollama treats `name` and `name:latest` as the same model."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def token_count(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / 4)


@dataclass
class _Model:
    dimensions: int
    context_length: int
    digest: str
    architecture: str
    loaded: bool = False
    modified_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())


@dataclass
class _Fault:
    kind: str  # "fail", "corrupt", "delay", "drop"
    remaining: int
    status: int = 500
    body: dict | str | None = None
    headers: dict | None = None
    corruption: str = ""
    seconds: float = 0.0
    after_lines: int = 0  # "error_line": progress lines sent before the error line


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: OllamaStandIn

    def handle_error(self, request, client_address) -> None:
        # Connections cut by stop() or by the client are expected; tracebacks would only be noise.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would stall keep-alive
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.standin._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.standin._track(self.connection, add=False)

    def do_GET(self) -> None:
        self.server.standin._dispatch(self, "GET")

    def do_POST(self) -> None:
        self.server.standin._dispatch(self, "POST")

    def send_json(self, status: int, payload: Any, headers: dict | None = None, raw: bytes | None = None) -> None:
        body = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.end_headers()
        self.wfile.write(body)

    def start_stream(self, status: int = 200) -> None:
        """Start a chunked NDJSON answer, as Ollama streams `/api/pull`."""
        self.send_response(status)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def stream_line(self, payload: Any) -> None:
        data = json.dumps(payload).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
