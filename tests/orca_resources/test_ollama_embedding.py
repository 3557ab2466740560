"""`OllamaClient` embedding against the Ollama stand-in over a real port.

The right vectors in the right order with the model's prefixes, configured dimensions and prefixes,
isolating inputs over the context length, the in-flight bound per host, lazy reading of the caller's
batches, and spreading work over several hosts that survives losing one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest

from orca_core.embedder import Embedder
from tests.ollama_standin_client import DOC, MODEL, QUERY, TEXTS, embed_all, expected, live


def test_vectors_match_the_server_in_order_with_prefixes(ollama_standin):
    with live(ollama_standin, batch_size=4) as (client, sleeps):
        assert isinstance(client, Embedder)
        vectors, outcomes = embed_all(client, TEXTS, client.batch_size)
        query = client.embed_query("whales")
    assert [len(o) for o in outcomes] == [4, 4, 2]
    assert vectors.dtype == np.float32 and vectors.shape == (10, 64)
    np.testing.assert_array_equal(vectors, expected(ollama_standin, TEXTS))
    np.testing.assert_array_equal(query, ollama_standin.vector_for(MODEL, QUERY + "whales"))
    # two requests in flight may reach the server in either order; the outcomes above are still in order
    assert sorted(ollama_standin.stats.inputs[:-1]) == sorted(DOC + t for t in TEXTS)
    assert ollama_standin.stats.inputs[-1] == QUERY + "whales"
    assert all(not o.failed and not o.truncated for o in outcomes) and sleeps == []


def test_configured_dimensions_and_prefixes_change_vectors_and_identity(ollama_standin):
    with live(ollama_standin, dimensions=16, document_prefix="") as (client, _):
        info = client.model_info()
        vectors, _ = embed_all(client, TEXTS[:3])
    assert info.dimensions == 16 and info.document_prefix == ""
    want = np.stack([ollama_standin.vector_for(MODEL, t, dimensions=16) for t in TEXTS[:3]])
    np.testing.assert_array_equal(vectors, want)
    with live(ollama_standin) as (default, _):
        assert default.model_info().identity != info.identity


@pytest.mark.parametrize("policy", ["truncate", "fail"])
def test_input_over_the_context_is_isolated_by_bisection(ollama_standin, policy):
    ollama_standin.add_model(MODEL, context_length=2048)
    ollama_standin.real_context_tokens = 16  # shorter than the advertised context, as seen in the field
    texts = [f"short {i}" for i in range(8)]
    texts[5] = "a very long paragraph " * 10
    with live(ollama_standin, too_long_policy=policy) as (client, sleeps):
        client.model_info()
        ollama_standin.reset_stats()
        (outcome,) = client.embed_batches([texts])
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


@pytest.mark.parametrize("in_flight", [1, 2])
def test_in_flight_bound_is_respected_and_reached(ollama_standin, in_flight):
    ollama_standin.cost_fixed_s = 0.01
    with live(ollama_standin, max_in_flight_per_host=in_flight) as (client, _):
        vectors, _ = embed_all(client, TEXTS * 2, size=2)
    np.testing.assert_array_equal(vectors, expected(ollama_standin, TEXTS * 2))
    assert ollama_standin.stats.max_concurrent_embed == in_flight


def test_batches_are_read_lazily(ollama_standin):
    pulled = []

    def endless() -> Iterator[list[str]]:
        for i in itertools.count():
            pulled.append(i)
            yield [f"text {i}"]

    with live(ollama_standin, max_in_flight_per_host=2) as (client, _):
        stream = client.embed_batches(endless())
        first = [next(stream) for _ in range(3)]
        stream.close()
    assert [o.vectors.shape for o in first] == [(1, 64)] * 3
    assert len(pulled) <= 3 + 2  # what was yielded plus the in-flight capacity, not the whole stream


def test_two_hosts_share_batches_and_survive_losing_one(ollama_standin_factory):
    a, b = ollama_standin_factory(cost_fixed_s=0.005), ollama_standin_factory(cost_fixed_s=0.005)
    with live(a, b, breaker_failures=2) as (client, sleeps):
        vectors, _ = embed_all(client, TEXTS * 2, size=2)
        np.testing.assert_array_equal(vectors, expected(a, TEXTS * 2))
        assert a.stats.embed_requests > 0 and b.stats.embed_requests > 0
        b.stop()
        served_by_a = a.stats.embed_requests
        vectors, _ = embed_all(client, TEXTS * 2, size=2)
    np.testing.assert_array_equal(vectors, expected(a, TEXTS * 2))
    assert a.stats.embed_requests == served_by_a + 10


def test_a_failed_batch_moves_to_the_other_host(ollama_standin_factory):
    a, b = ollama_standin_factory(), ollama_standin_factory()
    with live(a, b, max_in_flight_per_host=1) as (client, sleeps):
        client.model_info()
        a.fail_next(500, times=1)
        b.fail_next(500, times=1)
        vectors, _ = embed_all(client, TEXTS[:2])
    np.testing.assert_array_equal(vectors, expected(a, TEXTS[:2]))
    assert a.stats.requests["/api/embed"] + b.stats.requests["/api/embed"] == 3 and len(sleeps) == 2
    assert a.stats.embed_requests + b.stats.embed_requests == 1
