"""The benchmark embedding server: an Ollama stand-in with ONE slot, run in its own process.

It reuses `tests/ollama_standin.OllamaStandIn` (the real HTTP protocol, `/api/tags`, `/api/show`, the single
slot) and makes the embed path model only the cost that matters: every input holds the slot for
`cost_fixed_s + cost_per_char_s * len(text)`; vectors are taken from a small table of precomputed unit vectors
already encoded as JSON, so the stand-in's own Python work stays out of the slot and off the client's CPU.
With `--distinct N` the table holds N vectors with the structure of real embeddings (bench/search_vectors.py),
handed out in turn, so up to N inputs get N different vectors: what an index's HNSW graph must be built from
to cost what it costs on real embeddings (256 random vectors repeated make its build several times dearer).

`busy_seconds` is the sum of modeled costs (the server's limit: no client can finish sooner);
`slot_seconds` is how long the slot was really held (sleep overshoot included). `GET /bench/stats` returns
the counters and `POST /bench/reset` zeroes them. Run `python bench/standin.py --cost-fixed 0.002`: it
prints its URL on the first line of stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.ollama_standin import OllamaStandIn  # noqa: E402

TABLE_SIZE = 256


class BenchStandIn(OllamaStandIn):
    """OllamaStandIn with a cheap embed path and slot accounting (see module docstring)."""

    def __init__(self, distinct: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        if distinct:
            from bench.search_vectors import VectorSource

            table = VectorSource(self.dimensions).block(distinct, seed=11)
            self._vectors = [orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY) for row in table]
        else:
            rng = np.random.default_rng(7)
            table = rng.standard_normal((TABLE_SIZE, self.dimensions))
            table /= np.linalg.norm(table, axis=1, keepdims=True)
            self._vectors = [json.dumps([round(float(x), 7) for x in row]).encode() for row in table.astype(np.float32)]
        self._turn = 0  # with `distinct`, the next vector handed out
        self.slot_seconds = 0.0
        self.first_acquire = self.last_release = 0.0  # time.time(), so the client can compare

    def counters(self) -> dict:
        with self._state:
            return {
                "busy_seconds": self.stats.busy_seconds,
                "slot_seconds": self.slot_seconds,
                "inputs_embedded": self.stats.inputs_embedded,
                "embed_requests": self.stats.embed_requests,
                "max_concurrent_embed": self.stats.max_concurrent_embed,
                "first_acquire": self.first_acquire,
                "last_release": self.last_release,
            }

    def reset_counters(self) -> None:
        with self._state:
            self.stats = type(self.stats)()
            self.slot_seconds = 0.0
            self.first_acquire = self.last_release = 0.0

    def _dispatch(self, handler, method: str) -> None:
        path = handler.path.split("?", 1)[0]
        if path == "/bench/stats":
            return handler.send_json(200, self.counters())
        if path == "/bench/reset":
            length = int(handler.headers.get("Content-Length") or 0)
            if length:
                handler.rfile.read(length)
            self.reset_counters()
            return handler.send_json(200, {"ok": True})
        return super()._dispatch(handler, method)

    def _embed(self, payload: dict, fault) -> tuple[int, Any]:
        model, name = self._find(payload)
        if model is None:
            return self._not_found(name)
        raw = payload.get("input")
        inputs = [] if raw is None else [raw] if isinstance(raw, str) else list(raw)
        cost = sum(self.cost_fixed_s + self.cost_per_char_s * len(t) for t in inputs)
        with self._slot:
            if inputs and not self.first_acquire:
                self.first_acquire = time.time()
            held = time.perf_counter()
            deadline = held + cost
            # sleep() may overshoot by a scheduler tick; sleep most of it, then spin the last millisecond
            if cost > 0.002:
                time.sleep(cost - 0.001)
            while time.perf_counter() < deadline:
                pass
            held = time.perf_counter() - held
            with self._state:
                self.stats.busy_seconds += cost
                self.slot_seconds += held
                if inputs:
                    self.last_release = time.time()
                if inputs:
                    self.stats.embed_requests += 1
                    self.stats.inputs_embedded += len(inputs)
        if len(self._vectors) > TABLE_SIZE:
            with self._state:
                first, self._turn = self._turn, self._turn + len(inputs)
            picks = [self._vectors[(first + n) % len(self._vectors)] for n in range(len(inputs))]
        else:
            picks = [self._vectors[int.from_bytes(hashlib.blake2b(t.encode(), digest_size=2).digest(), "little")
                                   % TABLE_SIZE] for t in inputs]
        body = b'{"model":' + json.dumps(name).encode() + b',"embeddings":[' + b",".join(picks) + b"]}"
        return 200, body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cost-fixed", type=float, default=0.002, help="seconds per input")
    parser.add_argument("--cost-per-char", type=float, default=0.0, help="seconds per character")
    parser.add_argument("--dimensions", type=int, default=768)
    parser.add_argument("--distinct", type=int, default=0, help="N realistic vectors handed out in turn")
    args = parser.parse_args(argv)
    server = BenchStandIn(
        distinct=args.distinct, dimensions=args.dimensions, cost_fixed_s=args.cost_fixed, cost_per_char_s=args.cost_per_char,
        context_length=8192, max_queue=4096,
    ).start()
    print(server.url, flush=True)
    stop = threading.Event()
    try:
        for _ in sys.stdin:  # runs until its parent closes stdin
            pass
    except KeyboardInterrupt:
        pass
    stop.set()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
