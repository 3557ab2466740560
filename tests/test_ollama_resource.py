"""OllamaResource against the Ollama stand-in over a real port.

Covers what a run relies on: the right vectors in the right order, the model's identity, the error a user can
act on for a missing model, retries with backoff that honour Retry-After, the circuit breaker, isolating
inputs over the context length, rejecting NaN/zero/short/malformed answers, the in-flight bound per host,
lazy reading of the caller's batches, and spreading work over several hosts that survives losing one.
Backoff sleeps are recorded instead of slept, so the suite stays fast and checks delays, not wall time.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import dagster as dg
import numpy as np
import pytest

from orca_resources.embedder import BatchOutcome, Embedder
from orca_resources.errors import (
    CircuitOpenError,
    EmbedderError,
    EmbedderUnavailable,
    InvalidResponse,
    ModelNotFound,
)
from orca_resources.ollama import OllamaResource

MODEL = "nomic-embed-text"
DOC = "search_document: "
QUERY = "search_query: "
FAST_RETRIES = dict(backoff_initial=0.01, backoff_max=0.05)


@contextmanager
def live(*hosts, **config) -> Iterator[tuple[OllamaResource, list[float]]]:
    """A set-up resource on the given stand-ins (or URLs) whose backoff sleeps are recorded, not slept."""
    urls = ",".join(h if isinstance(h, str) else h.url for h in hosts)
    resource = OllamaResource(host=urls, **{**FAST_RETRIES, **config})
    sleeps: list[float] = []
    resource._sleep = sleeps.append
    resource.setup_for_execution(dg.build_init_resource_context())
    try:
        yield resource, sleeps
    finally:
        resource.teardown_after_execution(dg.build_init_resource_context())


def batches_of(texts: list[str], size: int) -> list[list[str]]:
    return [texts[i : i + size] for i in range(0, len(texts), size)]


def embed_all(resource: OllamaResource, texts: list[str], size: int = 4) -> tuple[np.ndarray, list[BatchOutcome]]:
    outcomes = list(resource.embed_batches(batches_of(texts, size)))
    return np.concatenate([o.vectors for o in outcomes]), outcomes


def expected(standin, texts: list[str], prefix: str = DOC) -> np.ndarray:
    return np.stack([standin.vector_for(MODEL, prefix + t) for t in texts])


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


TEXTS = [f"paragraph {i} about whales and krill" for i in range(10)]


def test_vectors_match_the_server_in_order_with_prefixes(ollama_standin):
    with live(ollama_standin, batch_size=4) as (resource, sleeps):
        assert isinstance(resource, Embedder)
        vectors, outcomes = embed_all(resource, TEXTS, resource.batch_size)
        query = resource.embed_query("whales")
    assert [len(o) for o in outcomes] == [4, 4, 2]
    assert vectors.dtype == np.float32 and vectors.shape == (10, 64)
    np.testing.assert_array_equal(vectors, expected(ollama_standin, TEXTS))
    np.testing.assert_array_equal(query, ollama_standin.vector_for(MODEL, QUERY + "whales"))
    # two requests in flight may reach the server in either order; the outcomes above are still in order
    assert sorted(ollama_standin.stats.inputs[:-1]) == sorted(DOC + t for t in TEXTS)
    assert ollama_standin.stats.inputs[-1] == QUERY + "whales"
    assert all(not o.failed and not o.truncated for o in outcomes) and sleeps == []


def test_model_info_reports_digest_dimensions_context_and_is_cached(ollama_standin):
    ollama_standin.add_model("nomic-embed-text", dimensions=96, context_length=8192, digest="ab" * 32)
    with live(ollama_standin) as (resource, _):
        info = resource.model_info()
        assert resource.model_info() is info
    assert (info.name, info.digest, info.dimensions, info.context_length) == (MODEL, "ab" * 32, 96, 8192)
    assert (info.document_prefix, info.query_prefix, info.normalized) == (DOC, QUERY, True)
    assert ollama_standin.stats.requests["/api/tags"] == 1 and ollama_standin.stats.requests["/api/show"] == 1


def test_configured_dimensions_and_prefixes_change_vectors_and_identity(ollama_standin):
    with live(ollama_standin, dimensions=16, document_prefix="") as (resource, _):
        info = resource.model_info()
        vectors, _ = embed_all(resource, TEXTS[:3])
    assert info.dimensions == 16 and info.document_prefix == ""
    want = np.stack([ollama_standin.vector_for(MODEL, t, dimensions=16) for t in TEXTS[:3]])
    np.testing.assert_array_equal(vectors, want)
    with live(ollama_standin) as (default, _):
        assert default.model_info().identity != info.identity


def test_unknown_model_says_to_pull_it_and_is_not_retried(ollama_standin):
    with live(ollama_standin, model="all-minilm") as (resource, sleeps):
        with pytest.raises(ModelNotFound, match="ollama pull all-minilm"):
            resource.model_info()
    with live(ollama_standin) as (resource, sleeps):
        resource.model_info()
        ollama_standin.remove_model(MODEL)  # deleted on the server after the run resolved it
        with pytest.raises(ModelNotFound, match=f"ollama pull {MODEL}"):
            resource.embed_query("x")
    assert sleeps == [] and ollama_standin.stats.requests["/api/embed"] == 1


@pytest.mark.parametrize(
    "retry_after, expected_delay",
    [("3", 3.0), ("120", 20.0), (format_datetime(datetime.now(timezone.utc) + timedelta(hours=1), usegmt=True), 20.0)],
)
def test_busy_server_is_retried_honouring_retry_after(ollama_standin, retry_after, expected_delay):
    busy = {"error": "server busy, please try again.  maximum pending requests exceeded"}
    ollama_standin.fail_next(503, busy, times=2, headers={"Retry-After": retry_after})
    # breaker_failures=2: a busy server is alive, so its 503s must not open the circuit
    with live(ollama_standin, backoff_max=20.0, breaker_failures=2) as (resource, sleeps):
        vectors, _ = embed_all(resource, TEXTS[:2])
    np.testing.assert_array_equal(vectors, expected(ollama_standin, TEXTS[:2]))
    assert sleeps == [expected_delay, expected_delay]


def test_server_errors_are_retried_with_jittered_exponential_backoff(ollama_standin):
    ollama_standin.fail_next(500, "llama runner process has terminated", times=3)
    with live(ollama_standin, backoff_initial=1.0, backoff_max=3.0) as (resource, sleeps):
        vectors, _ = embed_all(resource, TEXTS[:2])
    np.testing.assert_array_equal(vectors, expected(ollama_standin, TEXTS[:2]))
    assert len(sleeps) == 3
    assert all(0 <= delay <= cap for delay, cap in zip(sleeps, [1.0, 2.0, 3.0]))


def test_dropped_connection_and_read_timeout_are_retried(ollama_standin):
    ollama_standin.drop_next()
    ollama_standin.delay_next(1.0)
    with live(ollama_standin, read_timeout=0.3) as (resource, sleeps):
        resource.model_info()
        vectors, _ = embed_all(resource, TEXTS[:2])
    np.testing.assert_array_equal(vectors, expected(ollama_standin, TEXTS[:2]))
    assert len(sleeps) == 2


def test_refused_connection_gives_up_then_the_breaker_fails_fast():
    url = closed_port_url()
    with live(url, max_retries=4, breaker_failures=5) as (resource, sleeps):
        with pytest.raises(EmbedderUnavailable) as first:
            resource.embed_query("x")
        assert url in str(first.value) and "ConnectError" in str(first.value)
        assert len(sleeps) == 4
        with pytest.raises(CircuitOpenError, match=url):
            resource.embed_query("x")
        assert len(sleeps) == 4  # failed fast: no attempt, no backoff


def test_breaker_lets_one_probe_through_after_the_cooldown(ollama_standin):
    now = [0.0]
    with live(ollama_standin, max_retries=4, breaker_failures=5, breaker_cooldown=30.0) as (resource, sleeps):
        resource._clock = lambda: now[0]
        resource.model_info()
        ollama_standin.fail_next(500, times=6)
        with pytest.raises(EmbedderUnavailable):
            resource.embed_query("x")
        assert ollama_standin.stats.requests["/api/embed"] == 5
        now[0] += 10
        with pytest.raises(CircuitOpenError):
            resource.embed_query("x")
        assert ollama_standin.stats.requests["/api/embed"] == 5  # not contacted while open
        now[0] += 30
        with pytest.raises(CircuitOpenError):  # the probe fails (6th error) and the circuit opens again
            resource.embed_query("x")
        assert ollama_standin.stats.requests["/api/embed"] == 6
        now[0] += 31
        np.testing.assert_array_equal(resource.embed_query("x"), ollama_standin.vector_for(MODEL, QUERY + "x"))


@pytest.mark.parametrize("policy", ["truncate", "fail"])
def test_input_over_the_context_is_isolated_by_bisection(ollama_standin, policy):
    ollama_standin.add_model(MODEL, context_length=2048)
    ollama_standin.real_context_tokens = 16  # shorter than the advertised context, as seen in the field
    texts = [f"short {i}" for i in range(8)]
    texts[5] = "a very long paragraph " * 10
    with live(ollama_standin, too_long_policy=policy) as (resource, sleeps):
        resource.model_info()
        ollama_standin.reset_stats()
        (outcome,) = resource.embed_batches([texts])
    others = [i for i in range(8) if i != 5]
    np.testing.assert_array_equal(outcome.vectors[others], expected(ollama_standin, [texts[i] for i in others]))
    if policy == "truncate":
        assert outcome.truncated == {5} and outcome.failed == {}
        cut = ollama_standin.truncated(DOC + texts[5])
        np.testing.assert_array_equal(outcome.vectors[5], ollama_standin.vector_for(MODEL, cut))
    else:
        assert list(outcome.failed) == [5] and "context" in outcome.failed[5]
        assert not outcome.vectors[5].any() and outcome.truncated == set()
    # 1 + 2 per halving (8 -> 4 -> 2 -> 1) + the truncated resend; 400s are never retried
    assert ollama_standin.stats.requests["/api/embed"] <= 8 and sleeps == []


def test_nan_once_is_retried(ollama_standin):
    with live(ollama_standin) as (resource, sleeps):
        resource.model_info()
        ollama_standin.corrupt_next("nan")
        vectors, _ = embed_all(resource, TEXTS[:3])
    np.testing.assert_array_equal(vectors, expected(ollama_standin, TEXTS[:3]))
    assert len(sleeps) == 1 and ollama_standin.stats.requests["/api/embed"] == 2


def test_nan_every_time_raises_invalid_response(ollama_standin):
    with live(ollama_standin, max_retries=2) as (resource, sleeps):
        resource.model_info()
        ollama_standin.corrupt_next("nan", times=10)
        with pytest.raises(InvalidResponse, match="NaN"):
            embed_all(resource, TEXTS[:3])
    assert ollama_standin.stats.requests["/api/embed"] == 3


@pytest.mark.parametrize("kind", ["short", "malformed", "zero", "wrong_dims"])
def test_bad_answers_are_detected_and_retried(ollama_standin, kind):
    with live(ollama_standin) as (resource, sleeps):
        resource.model_info()
        ollama_standin.corrupt_next(kind, times=2)
        vectors, _ = embed_all(resource, TEXTS[:3])
    np.testing.assert_array_equal(vectors, expected(ollama_standin, TEXTS[:3]))
    assert len(sleeps) == 2 and ollama_standin.stats.requests["/api/embed"] == 3


@pytest.mark.parametrize("in_flight", [1, 2])
def test_in_flight_bound_is_respected_and_reached(ollama_standin, in_flight):
    ollama_standin.cost_fixed_s = 0.01
    with live(ollama_standin, max_in_flight_per_host=in_flight) as (resource, _):
        vectors, _ = embed_all(resource, TEXTS * 2, size=2)
    np.testing.assert_array_equal(vectors, expected(ollama_standin, TEXTS * 2))
    assert ollama_standin.stats.max_concurrent_embed == in_flight


def test_batches_are_read_lazily(ollama_standin):
    pulled = []

    def endless() -> Iterator[list[str]]:
        for i in itertools.count():
            pulled.append(i)
            yield [f"text {i}"]

    with live(ollama_standin, max_in_flight_per_host=2) as (resource, _):
        stream = resource.embed_batches(endless())
        first = [next(stream) for _ in range(3)]
        stream.close()
    assert [o.vectors.shape for o in first] == [(1, 64)] * 3
    assert len(pulled) <= 3 + 2  # what was yielded plus the in-flight capacity, not the whole stream


def test_two_hosts_share_batches_and_survive_losing_one(ollama_standin_factory):
    a, b = ollama_standin_factory(cost_fixed_s=0.005), ollama_standin_factory(cost_fixed_s=0.005)
    with live(a, b, breaker_failures=2) as (resource, sleeps):
        vectors, _ = embed_all(resource, TEXTS * 2, size=2)
        np.testing.assert_array_equal(vectors, expected(a, TEXTS * 2))
        assert a.stats.embed_requests > 0 and b.stats.embed_requests > 0
        b.stop()
        served_by_a = a.stats.embed_requests
        vectors, _ = embed_all(resource, TEXTS * 2, size=2)
    np.testing.assert_array_equal(vectors, expected(a, TEXTS * 2))
    assert a.stats.embed_requests == served_by_a + 10


def test_a_failed_batch_moves_to_the_other_host(ollama_standin_factory):
    a, b = ollama_standin_factory(), ollama_standin_factory()
    with live(a, b, max_in_flight_per_host=1) as (resource, sleeps):
        resource.model_info()
        a.fail_next(500, times=1)
        b.fail_next(500, times=1)
        vectors, _ = embed_all(resource, TEXTS[:2])
    np.testing.assert_array_equal(vectors, expected(a, TEXTS[:2]))
    assert a.stats.requests["/api/embed"] + b.stats.requests["/api/embed"] == 3 and len(sleeps) == 2
    assert a.stats.embed_requests + b.stats.embed_requests == 1


def test_hosts_serving_different_builds_of_the_model_are_refused(ollama_standin_factory):
    a, b = ollama_standin_factory(), ollama_standin_factory()
    b.set_digest(MODEL, "cd" * 32)
    with live(a, b) as (resource, _):
        with pytest.raises(EmbedderError, match="ollama pull"):
            resource.model_info()


def test_preload_pays_the_model_load_once(ollama_standin):
    ollama_standin.load_seconds = 0.3
    with live(ollama_standin) as (resource, _):
        assert resource.preload() >= 0.3
        assert resource.preload() < 0.3
        assert resource.version() == resource.version(ollama_standin.url) == "0.12.6"
    assert ollama_standin.stats.inputs_embedded == 0


def test_works_as_a_dagster_resource(ollama_standin):
    @dg.asset
    def query_vector(embedder: OllamaResource) -> None:
        vector = embedder.embed_query("krill")
        np.testing.assert_array_equal(vector, ollama_standin.vector_for(MODEL, QUERY + "krill"))

    result = dg.materialize([query_vector], resources={"embedder": OllamaResource(host=ollama_standin.url)})
    assert result.success


def test_rejects_an_unknown_too_long_policy(ollama_standin):
    with pytest.raises(ValueError, match="too_long_policy"):
        with live(ollama_standin, too_long_policy="skip"):
            pass
