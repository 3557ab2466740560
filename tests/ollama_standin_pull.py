"""`POST /api/pull` for the Ollama stand-in: NDJSON progress lines as Ollama streams them."""

from __future__ import annotations

import hashlib
import time

from tests.ollama_standin_http import _Fault, _Handler, canonical


class PullMixin:
    """Registry of pullable models and the streamed pull; mixed into `OllamaStandIn`."""

    def make_pullable(
        self,
        name: str,
        *,
        layer_sizes: tuple[int, ...] = (274_302_450, 11_357, 420),
        dimensions: int | None = None,
        context_length: int | None = None,
        digest: str | None = None,
    ) -> None:
        """Let `POST /api/pull` fetch `name`: layers of these sizes, then the model as `add_model` makes it."""
        key = canonical(name)
        layers = [
            (f"sha256:{hashlib.sha256(f'{key}#{i}'.encode()).hexdigest()}", size) for i, size in enumerate(layer_sizes)
        ]
        self._registry[key] = {
            "layers": layers, "dimensions": dimensions, "context_length": context_length, "digest": digest,
        }

    def fail_pull_after(self, lines: int, error: str, *, times: int = 1) -> None:
        """The next `times` pulls send `lines` progress lines, then `{"error": error}`, all with HTTP 200."""
        self._queue_fault("/api/pull", _Fault("error_line", times, body=error, after_lines=lines))

    def _pull_lines(self, name: str) -> list[dict]:
        entry = self._registry.get(canonical(name))
        lines: list[dict] = [{"status": "pulling manifest"}]
        if entry is None:
            return [*lines, {"error": "pull model manifest: file does not exist"}]
        for digest, size in entry["layers"]:
            status = f"pulling {digest.removeprefix('sha256:')[:12]}"
            lines.append({"status": status, "digest": digest, "total": size})
            for step in range(1, self.pull_steps + 1):
                completed = size * step // self.pull_steps
                lines.append({"status": status, "digest": digest, "total": size, "completed": completed})
        return [*lines, {"status": "verifying sha256 digest"}, {"status": "writing manifest"}]

    def _pull(self, handler: _Handler, payload: dict, fault: _Fault | None) -> None:
        name = payload.get("model") or payload.get("name") or ""
        if not name:
            return handler.send_json(400, {"error": "model is required"})
        lines = self._pull_lines(name)
        if fault and fault.kind == "error_line":
            lines = [*lines[: fault.after_lines], {"error": fault.body}]
        complete = "error" not in lines[-1]
        if payload.get("stream") is False:
            time.sleep(self.pull_delay * len(lines))
            if not complete:
                return handler.send_json(500, lines[-1])
            self._registered(name)
            return handler.send_json(200, {"status": "success"})
        handler.start_stream()
        try:
            for line in lines:
                time.sleep(self.pull_delay)
                handler.stream_line(line)
            if complete:
                self._registered(name)
                handler.stream_line({"status": "success"})
            handler.end_stream()
        except OSError:
            handler.close_connection = True  # the client went away mid-pull, as it may with a real server

    def _registered(self, name: str) -> None:
        entry = self._registry[canonical(name)]
        self.add_model(
            name, dimensions=entry["dimensions"], context_length=entry["context_length"], digest=entry["digest"]
        )
        with self._state:
            self.stats.pulls.append(canonical(name))
