"""Search and embeddings: `/v1/search`, `/v1/embeddings` and the shared `orca_core.search` module.

Indexes are Parquet files in the contract's columns, written with the offline embedder (or the Ollama
stand-in's vectors), so these tests depend on the index format and not on the assets that produce it.
"""

from __future__ import annotations

import base64
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orca_core import search as shared_search
from orca_intake.app import create_app
from orca_intake.dependencies import get_embedder
from orca_resources.errors import EmbedderUnavailable
from orca_resources.hashing_embedder import HashingEmbedderResource

TEXTS = [
    "The reindex schedule runs every night and refreshes all collections.",
    "Ollama serves embedding models over HTTP on port 11434.",
    "Bananas are yellow fruit rich in potassium.",
]


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    return error


class BrokenEmbedder(HashingEmbedderResource):
    """An embedder whose server is down."""

    def model_info(self):
        raise EmbedderUnavailable("connection refused by http://127.0.0.1:1")


def post_json(client, url: str, body: dict):
    """POST `body` as ASCII JSON, so lone surrogates travel as \\ud800 escapes like a real client sends them."""
    return client.post(url, content=json.dumps(body), headers={"content-type": "application/json"})


# ---- /v1/search -------------------------------------------------------------------------------------------


def test_search_ranks_the_index_with_the_configured_embedder(intake_client, write_index):
    index = intake_client.app.state.settings.layout.index_path("docs")
    write_index(index, TEXTS, HashingEmbedderResource(), doc_id="guide.md", source="intake:abc")
    response = intake_client.post(
        "/v1/search", json={"collection": "docs", "query": "nightly reindex schedule", "k": 2}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["collection"] == "docs" and body["model"] == "orca-hashing-v1"
    assert len(body["results"]) == 2
    best = body["results"][0]
    assert best == {
        "chunk_id": "guide.md#0",
        "doc_id": "guide.md",
        "chunk_index": 0,
        "text": TEXTS[0],
        "source": "intake:abc",
        "page": None,  # an index written before provenance columns existed: they come back empty
        "section": None,
        "title": None,
        "metadata": {},
        "score": pytest.approx(best["score"]),
    }
    assert best["score"] > body["results"][1]["score"] and 0 < best["score"] <= 1.0001
    everything = intake_client.post("/v1/search", json={"collection": "docs", "query": "fruit"}).json()["results"]
    assert len(everything) == 3 and everything[0]["text"] == TEXTS[2]  # k defaults to 5, capped by the rows


def test_search_sees_a_replaced_index(intake_client, write_index):
    index = intake_client.app.state.settings.layout.index_path("docs")
    write_index(index, TEXTS[:1], HashingEmbedderResource())
    first = intake_client.post("/v1/search", json={"collection": "docs", "query": "bananas"}).json()["results"]
    write_index(index, TEXTS[2:], HashingEmbedderResource(), doc_id="fruit.md")
    second = intake_client.post("/v1/search", json={"collection": "docs", "query": "bananas"}).json()["results"]
    assert [r["doc_id"] for r in first] == ["doc.txt"] and [r["doc_id"] for r in second] == ["fruit.md"]


def test_search_errors(intake_client, write_index):
    settings = intake_client.app.state.settings
    assert_error(intake_client.post("/v1/search", json={"collection": "docs", "query": "q"}), 404, "index_not_found")
    write_index(settings.layout.index_path("other"), TEXTS, HashingEmbedderResource(), model="nomic-embed-text")
    error = assert_error(
        intake_client.post("/v1/search", json={"collection": "other", "query": "q"}), 409, "model_mismatch"
    )
    assert "nomic-embed-text" in error["message"] and "orca-hashing-v1" in error["message"]
    write_index(settings.layout.index_path("small"), TEXTS, HashingEmbedderResource(dimensions=16))
    assert_error(intake_client.post("/v1/search", json={"collection": "small", "query": "q"}), 409, "model_mismatch")
    settings.layout.index_path("junk").parent.mkdir(parents=True)
    settings.layout.index_path("junk").write_bytes(b"not parquet")
    assert_error(intake_client.post("/v1/search", json={"collection": "junk", "query": "q"}), 503, "index_unreadable")


@pytest.mark.parametrize(
    "body",
    [
        {"collection": "docs", "query": "q", "k": 0},
        {"collection": "docs", "query": "q", "k": 101},
        {"collection": "docs", "query": ""},
        {"collection": "docs", "query": "   "},
        {"collection": "Docs!", "query": "q"},
        {"collection": "docs", "query": "q", "k": "many"},
        {"collection": "docs", "query": "x" * 9000},
        {"collection": "docs", "query": "\ud800"},
        {"query": "q"},
    ],
)
def test_invalid_searches_are_422(intake_client, body):
    assert_error(post_json(intake_client, "/v1/search", body), 422, "validation_error")


def test_search_answers_503_when_the_embedder_is_down(intake_client, write_index):
    write_index(intake_client.app.state.settings.layout.index_path("docs"), TEXTS, HashingEmbedderResource())
    intake_client.app.dependency_overrides[get_embedder] = lambda: BrokenEmbedder()
    response = intake_client.post("/v1/search", json={"collection": "docs", "query": "q"})
    assert "connection refused" in assert_error(response, 503, "embedder_unavailable")["message"]


def test_search_with_ollama_uses_the_query_prefix(ollama_standin, intake_settings, intake_app_factory, write_index):
    client = intake_app_factory(intake_settings(ORCA_EMBEDDER="ollama", OLLAMA_HOST=ollama_standin.url))
    model = "nomic-embed-text"
    texts = ["alpha beta", "gamma delta"]
    vectors = [ollama_standin.vector_for(model, "search_document: " + t) for t in texts]
    index = client.app.state.settings.layout.index_path("docs")
    index.parent.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "chunk_id": ["a", "b"],
                "doc_id": ["a.md", "b.md"],
                "chunk_index": pa.array([0, 0], pa.int32()),
                "text": texts,
                "embedding": pa.array([list(map(float, v)) for v in vectors], pa.list_(pa.float32())),
                "model": [model, model],
                "source": ["inbox/docs/a.md", "inbox/docs/b.md"],
            }
        ),
        index,
    )
    response = client.post("/v1/search", json={"collection": "docs", "query": "gamma delta", "k": 1})
    assert response.status_code == 200, response.text
    assert "search_query: gamma delta" in ollama_standin.stats.inputs
    query = ollama_standin.vector_for(model, "search_query: gamma delta")
    expected = int(np.argmax([float(np.dot(v, query)) for v in vectors]))  # the stand-in's vectors are unit length
    assert response.json()["results"][0]["doc_id"] == ["a.md", "b.md"][expected]


# ---- the shared module ------------------------------------------------------------------------------------


def test_shared_search_caches_by_file_version_and_accepts_fixed_size_vectors(tmp_path):
    embedder = HashingEmbedderResource(dimensions=32)
    vectors = next(iter(embedder.embed_batches([TEXTS]))).vectors * 3.0  # not unit length: search normalises
    table = pa.table(
        {
            "chunk_id": ["a", "b", "c"],
            "doc_id": ["d", "d", "e"],
            "chunk_index": pa.array([0, 1, 0], pa.int32()),
            "text": TEXTS,
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float32()), 32),
            "model": ["orca-hashing-v1"] * 3,
            "source": ["s"] * 3,
        }
    )
    path = tmp_path / "embedding_index.parquet"
    pq.write_table(table, path)
    loaded = shared_search.load_index(path)
    assert shared_search.load_index(path) is loaded  # unchanged file: served from the cache
    assert np.allclose(np.linalg.norm(loaded.matrix, axis=1), 1.0)
    result = shared_search.search_index(path, embedder, TEXTS[1], 3, collection="c")
    assert [r["chunk_id"] for r in result.results][0] == "b" and result.results[0]["score"] == pytest.approx(
        1.0, abs=1e-5
    )
    pq.write_table(table.slice(0, 1), path)
    os.utime(path, ns=(1, 1))  # a new version, even within the same mtime tick
    assert shared_search.load_index(path).rows == 1


def test_shared_search_refuses_missing_and_mixed_indexes(tmp_path):
    embedder = HashingEmbedderResource(dimensions=8)
    with pytest.raises(shared_search.IndexNotFound, match="orca materialize c"):
        shared_search.search_index(tmp_path / "none.parquet", embedder, "q", 1, collection="c")
    mixed = pa.table(
        {
            "chunk_id": ["a", "b"],
            "doc_id": ["d", "d"],
            "chunk_index": pa.array([0, 1], pa.int32()),
            "text": ["x", "y"],
            "embedding": pa.array([[1.0] * 8, [1.0] * 8], pa.list_(pa.float32())),
            "model": ["orca-hashing-v1", "other"],
            "source": ["s", "s"],
        }
    )
    pq.write_table(mixed, tmp_path / "mixed.parquet")
    with pytest.raises(shared_search.ModelMismatch, match="'orca-hashing-v1' and 'other'"):
        shared_search.search_index(tmp_path / "mixed.parquet", embedder, "q", 1, collection="c")


# ---- /v1/embeddings ---------------------------------------------------------------------------------------


def test_embeddings_are_openai_compatible(intake_client):
    embedder = HashingEmbedderResource()
    response = intake_client.post(
        "/v1/embeddings", json={"input": ["hello world", "second"], "model": "orca-hashing-v1"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list" and body["model"] == "orca-hashing-v1"
    assert [(d["object"], d["index"]) for d in body["data"]] == [("embedding", 0), ("embedding", 1)]
    expected = embedder.embed_texts(["hello world", "second"])
    assert np.allclose(np.array([d["embedding"] for d in body["data"]]), expected, atol=1e-6)
    assert body["usage"] == {"prompt_tokens": 4 + 2, "total_tokens": 6}  # 11 and 6 UTF-8 bytes, 3 per token
    single = intake_client.post(
        "/v1/embeddings",
        json={"input": "hello world", "model": "orca-hashing-v1", "encoding_format": "base64", "user": "u1"},
    ).json()
    decoded = np.frombuffer(base64.b64decode(single["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, expected[0]) and len(single["data"]) == 1


def test_embeddings_use_the_document_prefix_with_ollama(ollama_standin, intake_settings, intake_app_factory):
    client = intake_app_factory(intake_settings(ORCA_EMBEDDER="ollama", OLLAMA_HOST=ollama_standin.url))
    response = client.post("/v1/embeddings", json={"input": "some text", "model": "nomic-embed-text:latest"})
    assert response.status_code == 200, response.text
    vector = np.array(response.json()["data"][0]["embedding"])
    assert np.allclose(vector, ollama_standin.vector_for("nomic-embed-text", "search_document: some text"), atol=1e-6)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"input": "x", "model": "text-embedding-3-small"}, 404, "model_not_found"),
        ({"input": "x", "model": "orca-hashing-v1", "dimensions": 256}, 422, "invalid_dimensions"),
        ({"input": [], "model": "orca-hashing-v1"}, 422, "invalid_input"),
        ({"input": ["ok", "  "], "model": "orca-hashing-v1"}, 422, "invalid_input"),
        ({"input": [[1, 2, 3]], "model": "orca-hashing-v1"}, 422, "validation_error"),
        ({"input": "x"}, 422, "validation_error"),
        ({"input": "x", "model": "orca-hashing-v1", "encoding_format": "int8"}, 422, "validation_error"),
        ({"input": "\ud800", "model": "orca-hashing-v1"}, 422, "invalid_input"),
    ],
)
def test_invalid_embedding_requests(intake_client, body, status, code):
    error = assert_error(post_json(intake_client, "/v1/embeddings", body), status, code)
    if code == "model_not_found":
        assert "orca-hashing-v1" in error["message"]


def test_embedding_limits(intake_app_factory):
    client = intake_app_factory(ORCA_INTAKE_MAX_DOCUMENTS="2", ORCA_INTAKE_MAX_TEXT_BYTES="10")
    three = {"input": ["a", "b", "c"], "model": "orca-hashing-v1"}
    assert_error(client.post("/v1/embeddings", json=three), 413, "too_many_inputs")
    assert_error(
        client.post("/v1/embeddings", json={"input": "x" * 11, "model": "orca-hashing-v1"}), 413, "input_too_large"
    )


def test_embeddings_answer_503_when_the_embedder_is_down(intake_client):
    intake_client.app.dependency_overrides[get_embedder] = lambda: BrokenEmbedder()
    assert_error(intake_client.post("/v1/embeddings", json={"input": "x", "model": "m"}), 503, "embedder_unavailable")


def test_the_app_factory_builds_the_embedder_from_settings(intake_settings):
    app = create_app(intake_settings(ORCA_EMBEDDER="ollama", OLLAMA_HOST="http://127.0.0.1:9", ORCA_EMBED_MODEL="m1"))
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        embedder = client.app.state.embedder
        assert (type(embedder).__name__, embedder.config.host, embedder.config.model) == (
            "OllamaClient",
            "http://127.0.0.1:9",
            "m1",
        )


def test_search_embeds_with_the_embedder_that_built_the_index(intake_app_factory, write_index, ollama_standin):
    """Ollama configured, an index built offline (as after `orca up` fell back): answered offline, and said so."""
    client = intake_app_factory(ORCA_EMBEDDER="ollama", OLLAMA_HOST=ollama_standin.url)
    write_index(client.app.state.settings.layout.index_path("docs"), TEXTS, HashingEmbedderResource())
    response = client.post("/v1/search", json={"collection": "docs", "query": "yellow bananas", "k": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["embedder"]) == ("orca-hashing-v1", "hashing")
    assert body["results"][0]["text"] == TEXTS[2]
    assert ollama_standin.stats.requests["/api/embed"] == 0
