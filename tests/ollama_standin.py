"""An Ollama stand-in that speaks Ollama's HTTP protocol on a real loopback port.

It models what matters to a client: one embedding slot per server (requests queue behind each other),
a bounded queue (503 when full), a model load on first use, a real context shorter than advertised,
and the faults seen in the field (errors, dropped connections, NaN/zero vectors, bad JSON). Vectors are
deterministic, so a test can compare what a client stored with `vector_for(model, text_as_sent)`.

`POST /api/pull` streams NDJSON progress as Ollama does (`pulling manifest`, per layer `pulling <digest>`
with `total`/`completed`, `verifying sha256 digest`, `writing manifest`, `success`) and registers the model
at the end; `pull_delay` spaces the lines, `fail_pull_after` sends an `{"error": ...}` line mid-stream
with HTTP 200, and a name never made pullable fails the way the registry does (manifest not found).
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tests.ollama_standin_http import (  # noqa: F401 - BUSY, TOO_LONG, CORRUPTIONS, token_count are re-exported
    BUSY,
    CORRUPTIONS,
    TOO_LONG,
    _Fault,
    _Handler,
    _Model,
    _Server,
    canonical,
    token_count,
)
from tests.ollama_standin_pull import PullMixin


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


class OllamaStandIn(PullMixin):
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

    # -- models ----------------------------------------------------------------------------------
    def add_model(
        self, name: str, *, dimensions: int | None = None, context_length: int | None = None, digest: str | None = None
    ) -> None:
        key = canonical(name)
        self._models[key] = _Model(
            dimensions=dimensions or self.dimensions,
            context_length=context_length or self.context_length,
            digest=digest or hashlib.sha256(key.encode()).hexdigest(),
            architecture=self.architecture,
        )

    def has_model(self, name: str) -> bool:
        return canonical(name) in self._models

    def remove_model(self, name: str) -> None:
        self._models.pop(canonical(name), None)

    def set_digest(self, name: str, digest: str) -> None:
        self._models[canonical(name)].digest = digest

    def vector_for(self, model: str, text: str, dimensions: int | None = None) -> np.ndarray:
        """The unit float32 vector /api/embed returns for `text` as sent (prefix included)."""
        full = self._models[canonical(model)].dimensions
        seed = hashlib.sha256(f"{canonical(model)}\x00{text}".encode()).digest()
        vec = np.random.default_rng(int.from_bytes(seed[:8], "little")).standard_normal(full)
        if dimensions and dimensions < full:
            vec = vec[:dimensions]
        return (vec / np.linalg.norm(vec)).astype(np.float32)

    def truncated(self, text: str, model: str | None = None) -> str:
        """`text` as the server cuts it when `truncate` is on and it exceeds the real context."""
        limit = self._context_tokens(self._models[canonical(model)] if model else next(iter(self._models.values())))
        if token_count(text) <= limit:
            return text
        return text.encode("utf-8")[: limit * 4].decode("utf-8", errors="ignore")

    def _context_tokens(self, model: _Model) -> int:
        return self.real_context_tokens if self.real_context_tokens is not None else model.context_length

    # -- faults ----------------------------------------------------------------------------------
    def _queue_fault(self, path: str, fault: _Fault) -> None:
        with self._state:
            self._faults.setdefault(path, deque()).append(fault)

    def fail_next(
        self, status: int, body: dict | str | None = None, *, times: int = 1, path: str = "/api/embed",
        headers: dict | None = None,
    ) -> None:
        """Answer the next `times` requests to `path` with `status`; a str body becomes {"error": body}."""
        self._queue_fault(path, _Fault("fail", times, status=status, body=body, headers=headers))

    def corrupt_next(self, kind: str, *, times: int = 1) -> None:
        """Compute the next `times` embeds (preloads excluded), then spoil the answer as `kind` says."""
        if kind not in CORRUPTIONS:
            raise ValueError(f"kind must be one of {CORRUPTIONS}")
        self._queue_fault("/api/embed", _Fault("corrupt", times, corruption=kind))

    def delay_next(self, seconds: float, *, times: int = 1) -> None:
        """Sleep `seconds` before handling each of the next `times` embeds (faults queue up in order)."""
        self._queue_fault("/api/embed", _Fault("delay", times, seconds=seconds))

    def drop_next(self, *, times: int = 1) -> None:
        """Close the connection of the next `times` embeds without any answer."""
        self._queue_fault("/api/embed", _Fault("drop", times))

    def _take_fault(self, path: str, has_inputs: bool) -> _Fault | None:
        with self._state:
            queue = self._faults.get(path)
            if not queue:
                return None
            fault = queue[0]
            if fault.kind == "corrupt" and not has_inputs:
                return None  # a preload has no vectors to corrupt
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.popleft()
            return fault

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

    def _find(self, payload: dict) -> tuple[_Model | None, str]:
        name = payload.get("model") or payload.get("name") or ""
        return self._models.get(canonical(name)) if name else None, name

    @staticmethod
    def _not_found(name: str) -> tuple[int, dict]:
        return 404, {"error": f'model "{name}" not found, try pulling it first'}

    def _tags(self) -> tuple[int, dict]:
        models = [
            {
                "name": key, "model": key, "modified_at": m.modified_at, "size": 274302450, "digest": m.digest,
                "details": {"parent_model": "", "format": "gguf", "family": m.architecture,
                            "families": [m.architecture], "parameter_size": "137M", "quantization_level": "F16"},
            }
            for key, m in self._models.items()
        ]
        return 200, {"models": models}

    def _show(self, payload: dict) -> tuple[int, dict]:
        model, name = self._find(payload)
        if model is None:
            return self._not_found(name)
        arch = model.architecture
        return 200, {
            "license": "Apache License 2.0", "modelfile": f"FROM {name}", "parameters": "num_ctx 8192",
            "template": "{{ .Prompt }}", "modified_at": model.modified_at,
            "details": {"parent_model": "", "format": "gguf", "family": arch, "families": [arch],
                        "parameter_size": "137M", "quantization_level": "F16"},
            "model_info": {
                "general.architecture": arch, "general.parameter_count": 136727040,
                f"{arch}.context_length": model.context_length, f"{arch}.embedding_length": model.dimensions,
                f"{arch}.attention.head_count": 12, f"{arch}.block_count": 12,
            },
            "capabilities": ["embedding"],
        }

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

    @staticmethod
    def _corrupt(kind: str, body: dict) -> tuple[int, Any]:
        vectors = body["embeddings"]
        if kind == "nan":
            vectors[0][0] = float("nan")  # json.dumps writes NaN, which Python's parser accepts
        elif kind == "zero":
            vectors[0] = [0.0] * len(vectors[0])
        elif kind == "short":
            vectors.pop()
        elif kind == "wrong_dims":
            body["embeddings"] = [v[: max(1, len(v) // 2)] for v in vectors]
        elif kind == "malformed":
            return 200, json.dumps(body).encode()[: 40]
        return 200, body
