"""An Ollama stand-in that speaks Ollama's HTTP protocol on a real loopback port.

It models what matters to a client: one embedding slot per server (requests queue behind each other),
a bounded queue (503 when full), a model load on first use, a real context shorter than advertised,
and the faults seen in the field (errors, dropped connections, NaN/zero vectors, bad JSON). Vectors are
deterministic, so a test can compare what a client stored with `vector_for(model, text_as_sent)`.

This module holds `OllamaStandIn` itself: its lifecycle, its statistics, request dispatch and `/api/embed`.
Its other parts are mixins beside it: the model catalogue (`/api/tags`, `/api/show`, `vector_for`) in
tests/ollama_standin_models.py, the fault knobs (`fail_next`, `corrupt_next`, `delay_next`, `drop_next`) in
tests/ollama_standin_faults.py, and `POST /api/pull` (streamed NDJSON progress, `pull_delay`,
`fail_pull_after`) in tests/ollama_standin_pull.py; the HTTP plumbing and protocol constants are in
tests/ollama_standin_http.py, and the constants are importable from here too.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from tests.ollama_standin_faults import FaultsMixin
from tests.ollama_standin_http import BUSY, CORRUPTIONS, TOO_LONG, _Fault, _Handler, _Model, _Server, token_count
from tests.ollama_standin_models import ModelsMixin
from tests.ollama_standin_pull import PullMixin

# The protocol constants are offered here too, so a test imports everything it stages with from one module.
__all__ = ["BUSY", "CORRUPTIONS", "TOO_LONG", "OllamaStandIn", "StandInStats", "token_count"]


@dataclass
class StandInStats:
    """What the server saw; `inputs` holds every text embedded, in the order it was computed."""

    requests: Counter = field(default_factory=Counter)
    embed_requests: int = 0
    inputs_embedded: int = 0
    busy_seconds: float = 0.0
    max_concurrent_embed: int = 0
    inputs: list[str] = field(default_factory=list)
    pulls: list[str] = field(default_factory=list)  # models whose pull completed, in order


class OllamaStandIn(ModelsMixin, FaultsMixin, PullMixin):
    """A fake Ollama server on 127.0.0.1 with knobs for cost, context and faults (see module docstring)."""

    def __init__(
        self,
        *,
        model: str = "nomic-embed-text",
        dimensions: int = 64,
        context_length: int = 2048,
        architecture: str = "nomic-bert",
        cost_fixed_s: float = 0.0,
        cost_per_char_s: float = 0.0,
        load_seconds: float = 0.0,
        max_queue: int = 512,
    ):
        self.dimensions = dimensions
        self.context_length = context_length
        self.architecture = architecture
        self.cost_fixed_s = cost_fixed_s
        self.cost_per_char_s = cost_per_char_s
        self.load_seconds = load_seconds
        self.max_queue = max_queue
        self.real_context_tokens: int | None = None
        self.pull_delay = 0.0  # seconds before each /api/pull progress line
        self.pull_steps = 4  # progress lines per layer after its first
        self._registry: dict[str, dict] = {}
        self.url = ""
        self.stats = StandInStats()
        self._models: dict[str, _Model] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._state = threading.Lock()
        self._slot = threading.Lock()  # Ollama runs an embedding model in one slot
        self._in_server = 0
        self._waiting = 0
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.add_model(model)
        self.make_pullable(model)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> OllamaStandIn:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.standin = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="ollama-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut open keep-alive connections, as a crashed server would."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._state:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server = None

    def __enter__(self) -> OllamaStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._state:
            (self._connections.add if add else self._connections.discard)(conn)

    # -- stats -------------------------------------------------------------------------------------
    def reset_stats(self) -> None:
        with self._state:
            self.stats = StandInStats()

    # -- protocol --------------------------------------------------------------------------------
    def _dispatch(self, handler: _Handler, method: str) -> None:
        path = handler.path.split("?", 1)[0]
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        with self._state:
            self.stats.requests[path] += 1
        if path != "/api/embed":
            return self._handle(handler, method, path, raw)
        with self._state:
            self._in_server += 1
            self.stats.max_concurrent_embed = max(self.stats.max_concurrent_embed, self._in_server)
        try:
            self._handle(handler, method, path, raw)
        finally:
            with self._state:
                self._in_server -= 1

    def _handle(self, handler: _Handler, method: str, path: str, raw: bytes) -> None:
        payload: Any = {}
        if method == "POST":
            try:
                payload = json.loads(raw or b"{}")
                if not isinstance(payload, dict):
                    raise ValueError("expected a JSON object")
            except ValueError as exc:
                return handler.send_json(400, {"error": f"invalid JSON request: {exc}"})
        has_inputs = bool(payload.get("input")) if path == "/api/embed" else True
        fault = self._take_fault(path, has_inputs)
        if fault and fault.kind == "drop":
            handler.close_connection = True
            return
        if fault and fault.kind == "fail":
            body = fault.body if fault.body is not None else {"error": f"stand-in failure {fault.status}"}
            body = {"error": body} if isinstance(body, str) else body
            return handler.send_json(fault.status, body, headers=fault.headers)
        if fault and fault.kind == "delay":
            time.sleep(fault.seconds)
        if (method, path) == ("POST", "/api/pull"):
            return self._pull(handler, payload, fault)
        routes = {
            ("GET", "/api/version"): lambda: (200, {"version": "0.12.6"}),
            ("GET", "/api/tags"): self._tags,
            ("POST", "/api/show"): lambda: self._show(payload),
            ("POST", "/api/embed"): lambda: self._embed(payload, fault),
        }
        route = routes.get((method, path))
        if route is None:
            return handler.send_json(404, {"error": "404 page not found"})
        status, body = route()
        if isinstance(body, bytes):
            return handler.send_json(status, None, raw=body)
        handler.send_json(status, body)


    def _embed(self, payload: dict, fault: _Fault | None) -> tuple[int, Any]:
        model, name = self._find(payload)
        if not name:
            return 400, {"error": "model is required"}
        if model is None:
            return self._not_found(name)
        raw_input = payload.get("input")
        inputs = [] if raw_input is None else [raw_input] if isinstance(raw_input, str) else raw_input
        if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
            return 400, {"error": "invalid input type"}
        dims = payload.get("dimensions")
        if dims is not None and (not isinstance(dims, int) or not 0 < dims <= model.dimensions):
            return 400, {"error": f"dimensions must be between 1 and {model.dimensions}"}
        limit = self._context_tokens(model)
        if payload.get("truncate") is False and any(token_count(t) > limit for t in inputs):
            return 400, {"error": TOO_LONG}
        with self._state:
            if self._waiting >= self.max_queue:
                return 503, {"error": BUSY}
            self._waiting += 1
        started = time.perf_counter()
        with self._slot:
            with self._state:
                self._waiting -= 1
            load = 0.0
            if not model.loaded:
                load = self.load_seconds
                time.sleep(load)
                model.loaded = True
            sent = [self.truncated(t, name) for t in inputs]
            cost = sum(self.cost_fixed_s + self.cost_per_char_s * len(t) for t in sent)
            if cost:
                time.sleep(cost)
            vectors = [self.vector_for(name, t, dims) for t in sent]
            with self._state:
                self.stats.busy_seconds += cost
                if inputs:
                    self.stats.embed_requests += 1
                    self.stats.inputs_embedded += len(inputs)
                    self.stats.inputs.extend(inputs)
            if str(payload.get("keep_alive", "")) in ("0", "0s"):
                model.loaded = False
        body = {
            "model": name, "embeddings": [[float(x) for x in v] for v in vectors],
            "total_duration": int((time.perf_counter() - started) * 1e9), "load_duration": int(load * 1e9),
            "prompt_eval_count": sum(token_count(t) for t in sent),
        }
        if fault and fault.kind == "corrupt":
            return self._corrupt(fault.corruption, body)
        return 200, body
