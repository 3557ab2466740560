"""Embedding-server faults staged for real through whole materializations.

Every test runs `documents -> chunks -> embeddings -> embedding_index` in process against the Ollama stand-in on
a real loopback port, with an `OllamaResource` whose backoffs are small. A fault must end either in a retry
that succeeds (the index then holds exactly the server's vectors) or in a failed run whose message names the
cause, with the bytes of the served index unchanged. Where the server dies or loses its model in the middle of
a run, a rerun after recovery must complete and pay again for at most one batch of work that had finished.

Cases already covered elsewhere are not repeated here (see docs/reliability.md): two 503s and one NaN through a
pipeline and the context-length isolation (tests/orca_assets/test_pipeline.py), and the resource-level retry/breaker
mechanics (tests/orca_resources/test_ollama_resource.py).
"""

from __future__ import annotations

import threading
import time

import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import pytest

from orca_resources.ollama import OllamaResource
from tests.ollama_standin import BUSY, OllamaStandIn
from tests.pipeline_helpers import Pipeline, check_results, failure_message, index_vectors, metadata
from tests.processes import free_port

MODEL = "nomic-embed-text"
PREFIX = "search_document: "
BATCH = 2
DOCS = 16  # one chunk each: 8 batches of 2


@pytest.fixture
def pipeline(tmp_path) -> Pipeline:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["docs"])
    return Pipeline(home=tmp_path / "orca", collection="docs", instance=instance)


def write_docs(pipeline: Pipeline, count: int = DOCS, start: int = 0) -> list[str]:
    """`count` short documents of one chunk each; returns their texts."""
    texts = []
    for number in range(start, start + count):
        text = f"Note {number}: the tide table for pier {number} lists {number * 7 % 13} ships at dawn."
        (pipeline.inbox / f"note-{number:03d}.txt").write_text(text, encoding="utf-8")
        texts.append(text)
    return texts


def ollama(url: str, **overrides) -> OllamaResource:
    """A fresh resource (its own breaker) with small backoffs, one batch in flight unless asked otherwise."""
    settings = dict(
        host=url, batch_size=BATCH, max_in_flight_per_host=1, max_retries=3, backoff_initial=0.01, backoff_max=0.05,
        read_timeout=10.0, connect_timeout=1.0,
    )
    settings.update(overrides)
    return OllamaResource(**settings)


def assert_server_vectors(pipeline: Pipeline, standin: OllamaStandIn, rows: int = DOCS) -> None:
    index = pipeline.index()
    assert index.num_rows == rows
    expected = np.stack([standin.vector_for(MODEL, PREFIX + text) for text in index["text"].to_pylist()])
    np.testing.assert_array_equal(index_vectors(index), expected)


def publish_first(pipeline: Pipeline, standin: OllamaStandIn) -> bytes:
    """Materialize the collection once, add one more document, and return the served index's bytes."""
    write_docs(pipeline)
    first = pipeline.run(ollama(standin.url))
    assert first.success, failure_message(first)
    write_docs(pipeline, count=1, start=DOCS)
    standin.reset_stats()
    return pipeline.index_path.read_bytes()


def when_embedded(standin: OllamaStandIn, requests: int, action) -> threading.Thread:
    """Call `action` as soon as the stand-in has computed `requests` embed requests (a fault mid-run)."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while standin.stats.embed_requests < requests and time.monotonic() < deadline:
            time.sleep(0.0005)
        action()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


# -- the server is unreachable -------------------------------------------------------------------------------


def test_server_down_at_start_fails_naming_it_then_a_rerun_completes(pipeline, ollama_standin_factory):
    write_docs(pipeline)
    standin = OllamaStandIn()  # configured but not started: nothing listens there yet
    port = free_port()
    down = pipeline.run(ollama(f"http://127.0.0.1:{port}", max_retries=1))
    assert not down.success
    message = failure_message(down)
    assert "Ollama unavailable" in message and f"127.0.0.1:{port}" in message
    assert not pipeline.index_path.exists()

    standin.start()
    try:
        up = pipeline.run(ollama(standin.url))
        assert up.success, failure_message(up)
        assert metadata(up, "embeddings")["inputs_sent"] == standin.stats.inputs_embedded == DOCS
        assert_server_vectors(pipeline, standin)
    finally:
        standin.stop()


def test_server_dying_mid_run_keeps_the_index_and_the_rerun_pays_at_most_one_batch(pipeline, ollama_standin_factory):
    first = ollama_standin_factory(cost_fixed_s=0.01)
    published = publish_first(pipeline, first)
    # Edit every document: all 17 chunks are new, 9 batches of 2.
    texts = [text + " Revised." for text in write_docs(pipeline, count=DOCS + 1)]
    for number, text in enumerate(texts):
        (pipeline.inbox / f"note-{number:03d}.txt").write_text(text, encoding="utf-8")

    killer = when_embedded(first, 4, first.stop)
    died = pipeline.run(ollama(first.url, max_retries=2))
    killer.join(5)
    assert not died.success
    assert "Ollama unavailable" in failure_message(died)
    assert pipeline.index_path.read_bytes() == published
    finished = first.stats.inputs_embedded
    assert BATCH * 4 <= finished < len(texts)

    second = ollama_standin_factory()  # the server comes back (same model and digest, another port)
    rerun = pipeline.run(ollama(second.url))
    assert rerun.success, failure_message(rerun)
    paid_again = second.stats.inputs_embedded - (len(texts) - finished)
    assert 0 <= paid_again <= BATCH, f"re-embedded {paid_again} inputs that had already been computed"
    assert metadata(rerun, "embeddings")["inputs_sent"] == second.stats.inputs_embedded
    assert_server_vectors(pipeline, second, rows=len(texts))
    assert all(check_results(rerun).values())


# -- transient answers that a retry gets past ---------------------------------------------------------------


@pytest.mark.parametrize(
    "stage",
    [
        pytest.param(lambda s: s.fail_next(503, BUSY, times=3), id="burst-of-503-busy"),
        pytest.param(lambda s: s.fail_next(503, BUSY, times=2, headers={"Retry-After": "0"}), id="503-retry-after"),
        pytest.param(lambda s: s.fail_next(500, "llama runner process has terminated", times=3), id="500s"),
        pytest.param(lambda s: s.drop_next(times=2), id="connection-reset"),
        pytest.param(lambda s: s.corrupt_next("malformed", times=2), id="malformed-json"),
        pytest.param(lambda s: s.corrupt_next("short", times=2), id="fewer-vectors"),
        pytest.param(lambda s: s.corrupt_next("zero"), id="all-zero-vector"),
        pytest.param(lambda s: s.corrupt_next("wrong_dims"), id="wrong-dimensions"),
        pytest.param(lambda s: (s.corrupt_next("nan"), s.corrupt_next("zero")), id="nan-then-zero"),
    ],
)
def test_transient_fault_is_retried_and_the_index_holds_the_servers_vectors(pipeline, ollama_standin, stage):
    write_docs(pipeline)
    stage(ollama_standin)
    result = pipeline.run(ollama(ollama_standin.url))
    assert result.success, failure_message(result)
    assert metadata(result, "embeddings")["inputs_sent"] == DOCS
    assert metadata(result, "embeddings")["failed"] == 0
    assert_server_vectors(pipeline, ollama_standin)
    assert all(check_results(result).values())
    # Only the staged failures cost extra requests: each batch was computed (at least) once.
    assert ollama_standin.stats.requests["/api/embed"] > DOCS // BATCH


def test_answer_slower_than_the_read_timeout_is_retried(pipeline, ollama_standin):
    write_docs(pipeline)
    ollama_standin.delay_next(1.5)  # longer than the read timeout below; the retry is answered at once
    started = time.monotonic()
    result = pipeline.run(ollama(ollama_standin.url, read_timeout=0.5))
    assert result.success, failure_message(result)
    assert_server_vectors(pipeline, ollama_standin)
    assert ollama_standin.stats.requests["/api/embed"] == DOCS // BATCH + 1
    assert time.monotonic() - started < 30


# -- faults that persist: a clear failure, the served index untouched --------------------------------------


@pytest.mark.parametrize(
    "stage, cause",
    [
        pytest.param(lambda s, n: s.fail_next(503, BUSY, times=n), "server busy", id="503-persisting"),
        pytest.param(lambda s, n: s.fail_next(500, "out of memory", times=n), "HTTP 500: out of memory", id="500-persisting"),
        pytest.param(lambda s, n: s.drop_next(times=n), "Ollama unavailable", id="resets-persisting"),
        pytest.param(lambda s, n: s.corrupt_next("nan", times=n), "NaN/infinite values", id="nan-persisting"),
        pytest.param(lambda s, n: s.corrupt_next("malformed", times=n), "invalid JSON", id="malformed-persisting"),
        pytest.param(lambda s, n: s.corrupt_next("short", times=n), "returned 0 vectors for 1 inputs", id="short-persisting"),
    ],
)
def test_fault_outlasting_the_retries_fails_naming_the_cause_keeps_the_index_and_a_rerun_recovers(
    pipeline, ollama_standin, stage, cause
):
    published = publish_first(pipeline, ollama_standin)
    attempts = 3
    stage(ollama_standin, attempts)  # every attempt of the run fails; the server is healthy afterwards
    result = pipeline.run(ollama(ollama_standin.url, max_retries=attempts - 1, breaker_failures=100))
    assert not result.success
    assert cause in failure_message(result)
    assert pipeline.index_path.read_bytes() == published

    rerun = pipeline.run(ollama(ollama_standin.url))
    assert rerun.success, failure_message(rerun)
    assert metadata(rerun, "embeddings")["inputs_sent"] == 1  # only the new document's chunk
    assert_server_vectors(pipeline, ollama_standin, rows=DOCS + 1)


def test_persistent_slowness_fails_naming_the_timeout_and_keeps_the_index(pipeline, ollama_standin):
    published = publish_first(pipeline, ollama_standin)
    ollama_standin.delay_next(0.6, times=3)
    result = pipeline.run(ollama(ollama_standin.url, read_timeout=0.2, max_retries=2))
    assert not result.success
    message = failure_message(result)
    assert "Ollama unavailable" in message and "timed out" in message.lower()
    assert pipeline.index_path.read_bytes() == published

    rerun = pipeline.run(ollama(ollama_standin.url, read_timeout=5.0))  # the server answers in time again
    assert rerun.success, failure_message(rerun)
    assert_server_vectors(pipeline, ollama_standin, rows=DOCS + 1)


def test_model_removed_mid_run_says_ollama_pull_and_the_rerun_pays_at_most_one_batch(pipeline, ollama_standin):
    published = publish_first(pipeline, ollama_standin)
    write_docs(pipeline, count=10, start=DOCS + 1)  # 11 new chunks: 6 batches
    new = 11
    ollama_standin.cost_fixed_s = 0.01
    remover = when_embedded(ollama_standin, 3, lambda: ollama_standin.remove_model(MODEL))
    result = pipeline.run(ollama(ollama_standin.url))
    remover.join(5)
    assert not result.success
    message = failure_message(result)
    assert f"ollama pull {MODEL}" in message
    assert pipeline.index_path.read_bytes() == published
    finished = ollama_standin.stats.inputs_embedded
    assert finished >= 3 * BATCH

    ollama_standin.add_model(MODEL)  # pulled again: same digest
    ollama_standin.reset_stats()
    rerun = pipeline.run(ollama(ollama_standin.url))
    assert rerun.success, failure_message(rerun)
    assert ollama_standin.stats.inputs_embedded - (new - finished) <= BATCH
    assert_server_vectors(pipeline, ollama_standin, rows=DOCS + new)


def test_context_length_400_in_a_batch_is_isolated_not_retried(pipeline, ollama_standin):
    write_docs(pipeline)
    long_text = "A very long note about harbours. " * 40
    (pipeline.inbox / "long.txt").write_text(long_text, encoding="utf-8")
    ollama_standin.real_context_tokens = 40  # shorter than the context the model advertises
    result = pipeline.run(ollama(ollama_standin.url, batch_size=4, too_long_policy="fail", max_retries=0))
    assert result.success, failure_message(result)
    embedded = metadata(result, "embeddings")
    assert embedded["failed"] >= 1
    # Every other chunk of the collection is served with the server's vector; the long one is left out.
    index = pipeline.index()
    assert set(index["doc_id"].to_pylist()) >= {f"note-{n:03d}.txt" for n in range(DOCS)}
    expected = np.stack([ollama_standin.vector_for(MODEL, PREFIX + t) for t in index["text"].to_pylist()])
    np.testing.assert_array_equal(index_vectors(index), expected)
    failed = pq.read_table(pipeline.home / "warehouse/docs/failed_chunks.parquet").to_pylist()
    assert len(failed) == embedded["failed"]
    assert all("exceeds the context" in row["reason"] and row["text"] in long_text for row in failed)
