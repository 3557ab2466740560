"""Which model a host serves, against the Ollama stand-in over a real port.

`OllamaClient.model_info()` (digest, dimensions, context, prefixes; cached), the error a user can act on for
a missing model, hosts serving different builds, the server's version, and the one reading of `/api/tags`
and `/api/show` that model management (`ollama_models`), `orca up` and `orca up --pull` share with it.
"""

from __future__ import annotations

import pytest

from orca.prepare import hosts_missing_model
from orca.up import model_is_pulled
from orca_core.settings import OrcaSettings
from orca_resources.errors import EmbedderError, InvalidResponse, ModelNotFound
from orca_resources.ollama_api import ModelShape, digest_in_tags, same_model, shape_from_show
from orca_resources.ollama_client import OllamaConfig
from orca_resources.ollama_models import model_digest, model_shape
from tests.ollama_standin_client import DOC, MODEL, QUERY, closed_port_url, live


def test_model_info_reports_digest_dimensions_context_and_is_cached(ollama_standin):
    ollama_standin.add_model("nomic-embed-text", dimensions=96, context_length=8192, digest="ab" * 32)
    with live(ollama_standin) as (client, _):
        info = client.model_info()
        assert client.model_info() is info
    assert (info.name, info.digest, info.dimensions, info.context_length) == (MODEL, "ab" * 32, 96, 8192)
    assert (info.document_prefix, info.query_prefix, info.normalized) == (DOC, QUERY, True)
    assert ollama_standin.stats.requests["/api/tags"] == 1 and ollama_standin.stats.requests["/api/show"] == 1


def test_unknown_model_says_to_pull_it_and_is_not_retried(ollama_standin):
    with live(ollama_standin, model="all-minilm") as (client, sleeps):
        with pytest.raises(ModelNotFound, match="ollama pull all-minilm"):
            client.model_info()
    with live(ollama_standin) as (client, sleeps):
        client.model_info()
        ollama_standin.remove_model(MODEL)  # deleted on the server after the run resolved it
        with pytest.raises(ModelNotFound, match=f"ollama pull {MODEL}"):
            client.embed_query("x")
    assert sleeps == [] and ollama_standin.stats.requests["/api/embed"] == 1


def test_hosts_serving_different_builds_of_the_model_are_refused(ollama_standin_factory):
    a, b = ollama_standin_factory(), ollama_standin_factory()
    b.set_digest(MODEL, "cd" * 32)
    with live(a, b) as (client, _):
        with pytest.raises(EmbedderError, match="ollama pull"):
            client.model_info()


def test_version_of_the_first_or_a_named_host(ollama_standin):
    with live(ollama_standin) as (client, _):
        assert client.version() == client.version(ollama_standin.url) == "0.12.6"
        with pytest.raises(ValueError, match="not one of the configured hosts"):
            client.version("http://127.0.0.1:9")
    assert ollama_standin.stats.inputs_embedded == 0


def test_rejects_an_unknown_too_long_policy(ollama_standin):
    with pytest.raises(ValueError, match="too_long_policy"):
        with live(ollama_standin, too_long_policy="skip"):
            pass


def test_model_management_reads_the_model_as_model_info_does(ollama_standin):
    ollama_standin.add_model(MODEL, dimensions=96, context_length=8192, digest="ef" * 32)
    with live(ollama_standin) as (client, _):
        info = client.model_info()
        shape = model_shape(client, ollama_standin.url)
        assert model_digest(client, ollama_standin.url) == info.digest == "ef" * 32
    assert shape == ModelShape("nomic-bert", 96, 8192, ("embedding",))
    with live(ollama_standin, model="all-minilm") as (client, _):
        assert model_digest(client, ollama_standin.url) is None


def test_tags_and_show_answers_are_read_in_one_place(ollama_standin):
    with live(ollama_standin) as (client, _):
        _, tags = client.http.request("GET", "/api/tags")
        _, show = client.http.request("POST", "/api/show", {"model": MODEL})
    digest = digest_in_tags(tags, MODEL)
    assert digest and digest_in_tags(tags, f"{MODEL}:latest") == digest and digest_in_tags(tags, "all-minilm") is None
    assert same_model(MODEL, f"{MODEL}:latest") and not same_model(MODEL, f"{MODEL}:v1.5")
    assert shape_from_show(show) == ModelShape("nomic-bert", 64, 2048, ("embedding",))
    # An answer that is not a tags list cannot say whether the model is there.
    for body in ({"error": "nope"}, {"models": None}, ["not", "an", "object"]):
        with pytest.raises(InvalidResponse, match="/api/tags"):
            digest_in_tags(body, MODEL)
    assert shape_from_show({"model_info": {"general.architecture": "bert"}}) == ModelShape("bert", None, None, None)


def test_orca_up_says_whether_the_model_is_pulled_or_none_when_it_cannot_tell(ollama_standin):
    assert model_is_pulled(ollama_standin.url, MODEL) is True
    assert model_is_pulled(ollama_standin.url, f"{MODEL}:latest") is True
    assert model_is_pulled(ollama_standin.url, "all-minilm") is False
    assert model_is_pulled(closed_port_url(), MODEL) is None
    ollama_standin.fail_next(200, {"status": "ok"}, path="/api/tags")  # answers, but not with a tags list
    assert model_is_pulled(ollama_standin.url, MODEL) is None
    ollama_standin.fail_next(500, "internal error", path="/api/tags")
    assert model_is_pulled(ollama_standin.url, MODEL) is None


def test_orca_up_pull_finds_the_hosts_that_lack_the_model(ollama_standin, ollama_standin_factory):
    lacking = ollama_standin_factory()
    lacking.remove_model(MODEL)
    silent = closed_port_url()
    settings = OrcaSettings.from_env({"OLLAMA_HOST": f"{ollama_standin.url},{lacking.url},{silent}"})
    assert hosts_missing_model(settings) == ([ollama_standin.url, lacking.url], [lacking.url])


def test_config_lists_the_hosts_as_urls():
    assert OllamaConfig().hosts == ["http://localhost:11434"]
    assert OllamaConfig(host="a:1, http://b:2/").hosts == ["http://a:1", "http://b:2"]
