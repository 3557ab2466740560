"""Several Ollama servers through a whole materialization (OLLAMA_HOST with two hosts).

tests/test_ollama_*.py cover the client and resource alone; here the `embeddings` step of a real run spreads
its batches over two stand-ins, survives losing one mid-run (its circuit breaker takes it out of rotation and
the other host finishes the work), and takes a host back after it recovers (the breaker's half-open probe).
Each run must publish exactly the vectors one healthy server would have returned.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

import dagster as dg
import numpy as np
import pytest

from orca_resources.ollama import OllamaResource
from tests.pipeline_helpers import Pipeline

MODEL = "nomic-embed-text"
PREFIX = "search_document: "
TEXTS = [f"Humpback whale song number {n} repeats its phrase {n % 7} times." for n in range(48)]


class Outage:
    """A TCP front for one server that can go down (connections refused, open ones cut) and come back."""

    def __init__(self, target_url: str):
        self.target = ("127.0.0.1", int(target_url.rsplit(":", 1)[1]))
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._guard = threading.Lock()
        self.up()
        self.url = f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown wakes the accept() blocked in the other thread; close alone would leave it listening.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._guard:
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._guard:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


class LogWatch(logging.Handler):
    """Sets an event when the resource logs a line containing a phrase (it logs to `dagster.builtin`)."""

    def __init__(self, **phrases: str):
        super().__init__()
        self.events = {name: threading.Event() for name in phrases}
        self.phrases = phrases

    def emit(self, record: logging.LogRecord) -> None:
        for name, phrase in self.phrases.items():
            if phrase in record.getMessage():
                self.events[name].set()


@pytest.fixture
def log_watch():
    watches: list[LogWatch] = []

    def make(**phrases: str) -> LogWatch:
        watch = LogWatch(**phrases)
        logging.getLogger("dagster").addHandler(watch)
        watches.append(watch)
        return watch

    yield make
    for watch in watches:
        logging.getLogger("dagster").removeHandler(watch)


def run_collection(tmp_path, hosts: list[str], **config) -> tuple[dg.ExecuteInProcessResult, dict]:
    """Materialize one collection of TEXTS (one chunk each) over `hosts`; return the result and {text: vector}."""
    with dg.instance_for_test() as instance:
        pipeline = Pipeline(home=tmp_path, collection="songs", instance=instance)
        for number, text in enumerate(TEXTS):
            (pipeline.inbox / f"song{number:02d}.txt").write_text(text)
        instance.add_dynamic_partitions("collections", ["songs"])
        embedder = OllamaResource(
            host=",".join(hosts), batch_size=2, max_in_flight_per_host=1, backoff_initial=0.01, backoff_max=0.05,
            **config,
        )
        result = pipeline.run(embedder)
        assert result.success, [e.message for e in instance.all_logs(result.run_id) if e.level >= logging.ERROR]
        table = pipeline.index()
    vectors = dict(zip(table["text"].to_pylist(), table["embedding"].to_pylist()))
    assert sorted(vectors) == sorted(TEXTS)
    return result, vectors


def assert_vectors(vectors: dict, standin) -> None:
    for text, vector in vectors.items():
        np.testing.assert_array_equal(np.asarray(vector, np.float32), standin.vector_for(MODEL, PREFIX + text))


def test_both_hosts_serve_batches_of_one_materialization(tmp_path, ollama_standin_factory):
    a, b = ollama_standin_factory(cost_fixed_s=0.01), ollama_standin_factory(cost_fixed_s=0.01)
    _, vectors = run_collection(tmp_path, [a.url, b.url])
    assert_vectors(vectors, a)
    assert a.stats.embed_requests > 0 and b.stats.embed_requests > 0
    assert a.stats.inputs_embedded + b.stats.inputs_embedded == len(TEXTS)
    # The per-host in-flight bound holds at pipeline level too.
    assert a.stats.max_concurrent_embed == 1 and b.stats.max_concurrent_embed == 1


def test_a_host_lost_mid_run_is_taken_out_of_rotation(tmp_path, ollama_standin_factory, log_watch):
    a, b = ollama_standin_factory(cost_fixed_s=0.02), ollama_standin_factory(cost_fixed_s=0.02)
    watch = log_watch(opened=f"Ollama host {b.url} failed")

    def crash_b() -> None:
        while b.stats.embed_requests < 3:
            time.sleep(0.002)
        b.stop()

    crasher = threading.Thread(target=crash_b, daemon=True)
    crasher.start()
    _, vectors = run_collection(tmp_path, [a.url, b.url], breaker_failures=2, breaker_cooldown=60)
    crasher.join(5)
    assert watch.events["opened"].is_set(), "the lost host's breaker never opened"
    assert_vectors(vectors, a)
    assert 3 <= b.stats.embed_requests < len(TEXTS) // 2
    assert a.stats.inputs_embedded + b.stats.inputs_embedded >= len(TEXTS)


def test_a_recovered_host_is_probed_and_used_again(tmp_path, ollama_standin_factory, log_watch):
    a, b = ollama_standin_factory(cost_fixed_s=0.06), ollama_standin_factory(cost_fixed_s=0.06)
    front = Outage(b.url)
    watch = log_watch(opened=f"Ollama host {front.url} failed", closed=f"Ollama host {front.url} answers again")
    served_after_return: list[int] = []

    def outage() -> None:
        while b.stats.embed_requests < 2:
            time.sleep(0.002)
        front.down()
        if watch.events["opened"].wait(20):
            served_after_return.append(b.stats.embed_requests)
            front.up()

    thread = threading.Thread(target=outage, daemon=True)
    thread.start()
    try:
        _, vectors = run_collection(tmp_path, [a.url, front.url], breaker_failures=2, breaker_cooldown=0.3)
    finally:
        thread.join(5)
        front.down()
    assert watch.events["opened"].is_set(), "the host's breaker never opened while it was down"
    assert watch.events["closed"].is_set(), "the recovered host was never probed back into rotation"
    assert b.stats.embed_requests > served_after_return[0], "the recovered host got no batch after it came back"
    assert_vectors(vectors, a)
