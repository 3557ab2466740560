"""`OllamaResource`, the Dagster resource over `OllamaClient`, against the Ollama stand-in over a real port.

The resource keeps its config fields and defaults, makes its client in `setup_for_execution` (handing it
the test hooks) and closes it in `teardown_after_execution`, makes one on first use outside a run, and
serves assets typed with the resource or with `dg.ResourceParam[Embedder]`. What the client itself does
is tested in tests/orca_resources/test_ollama_embedding.py, tests/orca_resources/test_ollama_errors.py and tests/orca_resources/test_ollama_model.py.
"""

from __future__ import annotations

import dataclasses

import dagster as dg
import numpy as np
import pytest

from orca_core.embedder import Embedder
from orca_resources.errors import EmbedderUnavailable
from orca_resources.ollama import OllamaResource
from orca_resources.ollama_client import OllamaClient, OllamaConfig
from tests.ollama_standin_client import FAST_RETRIES, MODEL, QUERY, TEXTS, closed_port_url, embed_all, expected

DEFAULTS = dict(
    host="http://localhost:11434", model="nomic-embed-text", batch_size=32, max_in_flight_per_host=2,
    connect_timeout=5.0, read_timeout=300.0, keep_alive="30m", truncate=False, too_long_policy="truncate",
    dimensions=None, document_prefix=None, query_prefix=None, max_retries=4, backoff_initial=0.5, backoff_max=20.0,
    breaker_failures=5, breaker_cooldown=30.0,
)


def test_config_fields_and_defaults_are_the_clients():
    resource = OllamaResource()
    assert {name: getattr(resource, name) for name in OllamaResource.model_fields} == DEFAULTS
    assert dataclasses.asdict(resource.ollama_config()) == DEFAULTS == dataclasses.asdict(OllamaConfig())
    custom = OllamaResource(host="a:1,b:2", dimensions=16, max_retries=0)
    assert custom.ollama_config() == OllamaConfig(host="a:1,b:2", dimensions=16, max_retries=0)


def test_setup_makes_the_client_with_the_hooks_and_teardown_closes_it(ollama_standin):
    resource = OllamaResource(host=ollama_standin.url, batch_size=4, **FAST_RETRIES)
    sleeps: list[float] = []
    resource._sleep = sleeps.append
    context = dg.build_init_resource_context()
    resource.setup_for_execution(context)
    client = resource.client()
    assert isinstance(client, OllamaClient) and resource.client() is client
    assert isinstance(resource, Embedder)
    ollama_standin.fail_next(500, times=1)
    vectors, outcomes = embed_all(resource, TEXTS, resource.batch_size)
    np.testing.assert_array_equal(vectors, expected(ollama_standin, TEXTS))
    assert [len(o) for o in outcomes] == [4, 4, 2] and len(sleeps) == 1  # the backoff went to the hook
    assert resource.model_info() is client.model_info()
    np.testing.assert_array_equal(resource.embed_query("krill"), ollama_standin.vector_for(MODEL, QUERY + "krill"))
    resource.teardown_after_execution(context)
    assert resource.client() is not client  # closed with the run; a later use gets a fresh one
    resource.close()


def test_outside_a_run_the_client_is_made_on_first_use(ollama_standin):
    resource = OllamaResource(host=ollama_standin.url)
    try:
        np.testing.assert_array_equal(resource.embed_query("krill"), ollama_standin.vector_for(MODEL, QUERY + "krill"))
        assert resource.client().config.host == ollama_standin.url
    finally:
        resource.close()


def test_build_resources_gives_a_set_up_resource(ollama_standin):
    with dg.build_resources({"embedder": OllamaResource(host=ollama_standin.url)}) as resources:
        embedder = resources.embedder
        assert isinstance(embedder, OllamaResource) and isinstance(embedder, Embedder)
        np.testing.assert_array_equal(embedder.embed_query("krill"), ollama_standin.vector_for(MODEL, QUERY + "krill"))


def test_works_as_a_dagster_resource(ollama_standin):
    @dg.asset
    def query_vector(embedder: OllamaResource) -> None:
        vector = embedder.embed_query("krill")
        np.testing.assert_array_equal(vector, ollama_standin.vector_for(MODEL, QUERY + "krill"))

    @dg.asset
    def protocol_vector(embedder: dg.ResourceParam[Embedder]) -> None:
        vector = embedder.embed_query("krill")
        np.testing.assert_array_equal(vector, ollama_standin.vector_for(MODEL, QUERY + "krill"))

    resources = {"embedder": OllamaResource(host=ollama_standin.url)}
    assert dg.materialize([query_vector], resources=resources).success
    assert dg.materialize([protocol_vector], resources=resources).success


def test_server_errors_reach_the_caller_through_the_resource():
    resource = OllamaResource(host=closed_port_url(), max_retries=0)
    try:
        with pytest.raises(EmbedderUnavailable, match="Connection refused"):
            resource.model_info()
    finally:
        resource.close()


def test_rejects_an_unknown_too_long_policy(ollama_standin):
    resource = OllamaResource(host=ollama_standin.url, too_long_policy="skip")
    with pytest.raises(ValueError, match="too_long_policy"):
        resource.setup_for_execution(dg.build_init_resource_context())
