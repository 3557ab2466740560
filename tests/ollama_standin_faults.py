"""Fault knobs of the Ollama stand-in: failed, corrupted, delayed and dropped answers, queued per path."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from tests.ollama_standin_http import CORRUPTIONS, _Fault


class FaultsMixin:
    """Faults queued per path and taken one request at a time; mixed into `OllamaStandIn`."""

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
