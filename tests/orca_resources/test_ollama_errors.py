"""`OllamaClient` when servers fail, against the Ollama stand-in over a real port.

Retries with backoff that honour Retry-After, dropped connections and read timeouts, the circuit breaker
(fail fast, then one probe after the cooldown), and rejecting NaN/zero/short/malformed answers. Backoff
sleeps are recorded and the breaker's clock is moved by hand, so nothing here waits or measures time.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import numpy as np
import pytest

from orca_resources.errors import CircuitOpenError, EmbedderUnavailable, InvalidResponse
from tests.ollama_standin_client import MODEL, QUERY, TEXTS, closed_port_url, embed_all, expected, live


@pytest.mark.parametrize(
    "retry_after, expected_delay",
    [("3", 3.0), ("120", 20.0), (format_datetime(datetime.now(timezone.utc) + timedelta(hours=1), usegmt=True), 20.0)],
)
def test_busy_server_is_retried_honouring_retry_after(ollama_standin, retry_after, expected_delay):
    busy = {"error": "server busy, please try again.  maximum pending requests exceeded"}
    ollama_standin.fail_next(503, busy, times=2, headers={"Retry-After": retry_after})
    # breaker_failures=2: a busy server is alive, so its 503s must not open the circuit
    with live(ollama_standin, backoff_max=20.0, breaker_failures=2) as (client, sleeps):
        vectors, _ = embed_all(client, TEXTS[:2])
    np.testing.assert_array_equal(vectors, expected(ollama_standin, TEXTS[:2]))
    assert sleeps == [expected_delay, expected_delay]


def test_server_errors_are_retried_with_jittered_exponential_backoff(ollama_standin):
    ollama_standin.fail_next(500, "llama runner process has terminated", times=3)
    with live(ollama_standin, backoff_initial=1.0, backoff_max=3.0) as (client, sleeps):
        vectors, _ = embed_all(client, TEXTS[:2])
    np.testing.assert_array_equal(vectors, expected(ollama_standin, TEXTS[:2]))
    assert len(sleeps) == 3
    assert all(0 <= delay <= cap for delay, cap in zip(sleeps, [1.0, 2.0, 3.0]))


def test_dropped_connection_and_read_timeout_are_retried(ollama_standin):
    ollama_standin.drop_next()
    ollama_standin.delay_next(1.0)
    with live(ollama_standin, read_timeout=0.3) as (client, sleeps):
        client.model_info()
        vectors, _ = embed_all(client, TEXTS[:2])
    np.testing.assert_array_equal(vectors, expected(ollama_standin, TEXTS[:2]))
    assert len(sleeps) == 2


def test_refused_connection_gives_up_then_the_breaker_fails_fast():
    url = closed_port_url()
    with live(url, max_retries=4, breaker_failures=5) as (client, sleeps):
        with pytest.raises(EmbedderUnavailable) as first:
            client.embed_query("x")
        assert url in str(first.value) and "Connection refused" in str(first.value)
        assert len(sleeps) == 4
        with pytest.raises(CircuitOpenError, match=url):
            client.embed_query("x")
        assert len(sleeps) == 4  # failed fast: no attempt, no backoff


def test_breaker_lets_one_probe_through_after_the_cooldown(ollama_standin):
    now = [0.0]
    with live(
        ollama_standin, max_retries=4, breaker_failures=5, breaker_cooldown=30.0, clock=lambda: now[0]
    ) as (client, sleeps):
        client.model_info()
        ollama_standin.fail_next(500, times=6)
        with pytest.raises(EmbedderUnavailable):
            client.embed_query("x")
        assert ollama_standin.stats.requests["/api/embed"] == 5
        now[0] += 10
        with pytest.raises(CircuitOpenError):
            client.embed_query("x")
        assert ollama_standin.stats.requests["/api/embed"] == 5  # not contacted while open
        now[0] += 30
        with pytest.raises(CircuitOpenError):  # the probe fails (6th error) and the circuit opens again
            client.embed_query("x")
        assert ollama_standin.stats.requests["/api/embed"] == 6
        now[0] += 31
        np.testing.assert_array_equal(client.embed_query("x"), ollama_standin.vector_for(MODEL, QUERY + "x"))


def test_nan_once_is_retried(ollama_standin):
    with live(ollama_standin) as (client, sleeps):
        client.model_info()
        ollama_standin.corrupt_next("nan")
        vectors, _ = embed_all(client, TEXTS[:3])
    np.testing.assert_array_equal(vectors, expected(ollama_standin, TEXTS[:3]))
    assert len(sleeps) == 1 and ollama_standin.stats.requests["/api/embed"] == 2


def test_nan_every_time_raises_invalid_response(ollama_standin):
    with live(ollama_standin, max_retries=2) as (client, sleeps):
        client.model_info()
        ollama_standin.corrupt_next("nan", times=10)
        with pytest.raises(InvalidResponse, match="NaN"):
            embed_all(client, TEXTS[:3])
    assert ollama_standin.stats.requests["/api/embed"] == 3


@pytest.mark.parametrize("kind", ["short", "malformed", "zero", "wrong_dims"])
def test_bad_answers_are_detected_and_retried(ollama_standin, kind):
    with live(ollama_standin) as (client, sleeps):
        client.model_info()
        ollama_standin.corrupt_next(kind, times=2)
        vectors, _ = embed_all(client, TEXTS[:3])
    np.testing.assert_array_equal(vectors, expected(ollama_standin, TEXTS[:3]))
    assert len(sleeps) == 2 and ollama_standin.stats.requests["/api/embed"] == 3
