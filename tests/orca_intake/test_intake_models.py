"""`GET /v1/models` answers in OpenAI's shape, listing the configured embedder's model as Ollama's
OpenAI-compatible API lists it, and the listed id is accepted by `POST /v1/embeddings`."""

from __future__ import annotations

from datetime import datetime


def test_offline_embedder_is_listed_and_its_id_embeds(intake_client):
    answer = intake_client.get("/v1/models")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "object": "list",
        "data": [{"id": "orca-hashing-v1", "object": "model", "created": 0, "owned_by": "orca"}],
    }
    embedded = intake_client.post("/v1/embeddings", json={"model": "orca-hashing-v1", "input": "whales"})
    assert embedded.status_code == 200, embedded.text
    assert intake_client.get("/v1/models/orca-hashing-v1").json()["id"] == "orca-hashing-v1"


def test_ollama_model_is_listed_as_ollama_lists_it(ollama_standin, intake_settings, intake_app_factory):
    client = intake_app_factory(intake_settings(ORCA_EMBEDDER="ollama", OLLAMA_HOST=ollama_standin.url))
    answer = client.get("/v1/models")
    assert answer.status_code == 200, answer.text
    [model] = answer.json()["data"]
    modified = ollama_standin._models["nomic-embed-text:latest"].modified_at
    assert model == {
        "id": "nomic-embed-text:latest",
        "object": "model",
        "created": int(datetime.fromisoformat(modified).timestamp()),
        "owned_by": "library",
    }
    embedded = client.post("/v1/embeddings", json={"model": model["id"], "input": ["whales"]})
    assert embedded.status_code == 200, embedded.text
    # Retrieval by id, with or without the tag, as Ollama's /v1/models/{model}.
    assert client.get("/v1/models/nomic-embed-text").json() == model
    missing = client.get("/v1/models/library/llama3:8b")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def test_a_missing_ollama_model_is_a_503_saying_to_pull_it(ollama_standin, intake_settings, intake_app_factory):
    ollama_standin.remove_model("nomic-embed-text")
    client = intake_app_factory(intake_settings(ORCA_EMBEDDER="ollama", OLLAMA_HOST=ollama_standin.url))
    answer = client.get("/v1/models")
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "embedder_unavailable"
    assert "ollama pull nomic-embed-text" in answer.json()["error"]["message"]


def test_owned_by_is_the_namespace_as_ollama_says():
    from orca_intake.routers.models import _owner

    assert [_owner(n) for n in ("nomic-embed-text:latest", "jina/jina-embeddings-v2:v1", "reg.io/team/m:1")] == [
        "library", "jina", "team",
    ]
