"""The intake's operational surface: health probes, Prometheus metrics, error bodies, the catch-all handler
(and that no malformed input reaches it), the loopback-only rule without tokens, and the OpenAPI document.
"""

from __future__ import annotations

import re

import pytest

from orca_intake.dependencies import get_embedder, get_queue
from orca_resources.errors import EmbedderUnavailable
from orca_resources.hashing_embedder import HashingEmbedderResource

DOCS = "/v1/collections/{}/documents"


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
            return float(match.group(2))
    return 0.0


# ---- health -----------------------------------------------------------------------------------------------


def test_ready_when_every_dependency_answers(intake_client):
    intake_client.app.state.settings.dagster_home.mkdir(parents=True)
    assert intake_client.get("/health/live").json() == {"status": "ok"}
    response = intake_client.get("/health/ready")
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert set(checks) == {"queue", "inbox", "embedder", "dagster"}
    assert all(c["status"] == "ok" and c["latency_ms"] >= 0 for c in checks.values())
    assert "orca-hashing-v1" in checks["embedder"]["detail"]
    assert list(intake_client.app.state.settings.layout.inbox_root.iterdir()) == []  # the write probe cleans up


def test_not_ready_names_the_failing_parts(intake_client):
    intake_client.app.dependency_overrides[get_embedder] = lambda: Broken()
    response = intake_client.get("/health/ready")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "not_ready"
    assert "embedder" in error["message"] and "dagster" in error["message"] and "queue" not in error["message"]
    assert error["details"]["checks"]["queue"]["status"] == "ok"
    detailed = intake_client.get("/health/detailed")
    assert detailed.status_code == 200 and detailed.json()["status"] == "degraded"
    assert detailed.json()["checks"]["embedder"]["status"] == "failing"
    assert "connection refused" in detailed.json()["checks"]["embedder"]["detail"]


def test_ready_checks_that_ollama_has_the_model(ollama_standin, intake_settings, intake_app_factory):
    client = intake_app_factory(intake_settings(ORCA_EMBEDDER="ollama", OLLAMA_HOST=ollama_standin.url))
    client.app.state.settings.dagster_home.mkdir(parents=True)
    assert client.get("/health/ready").status_code == 200
    ollama_standin.remove_model("nomic-embed-text")
    response = client.get("/health/ready")  # the probe asks the server again; nothing is cached
    assert response.status_code == 503
    assert "ollama pull nomic-embed-text" in response.json()["error"]["message"]


def test_a_hanging_dependency_fails_the_probe_instead_of_hanging_it(intake_client, monkeypatch):
    import threading

    from orca_intake.routers import health

    release = threading.Event()
    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(health, "check_queue", lambda queue: release.wait(5) and "late")
    try:
        checks = intake_client.get("/health/detailed").json()["checks"]
    finally:
        release.set()
    assert checks["queue"]["status"] == "failing" and "0.2s" in checks["queue"]["detail"]


def test_health_is_one_line_ok_or_degraded_with_what_fails(intake_client):
    intake_client.app.state.settings.dagster_home.mkdir(parents=True)
    response = intake_client.get("/health")
    assert (response.status_code, response.text) == (200, "ok\n")
    assert response.headers["content-type"].startswith("text/plain")
    intake_client.app.dependency_overrides[get_embedder] = lambda: Broken()
    response = intake_client.get("/health")
    assert response.status_code == 503 and response.text.count("\n") == 1
    assert response.text.startswith("degraded: embedder: ") and "connection refused" in response.text
    assert "queue" not in response.text and "dagster" not in response.text


def test_health_without_a_token_names_failing_checks_only(intake_app_factory):
    client = intake_app_factory(ORCA_INTAKE_TOKENS="a-token-0123456789abcdef")
    response = client.get("/health")  # no DAGSTER_HOME yet: the dagster check fails
    assert (response.status_code, response.text) == (503, "degraded: dagster\n")
    with_token = client.get("/health", headers={"Authorization": "Bearer a-token-0123456789abcdef"})
    assert with_token.text.startswith("degraded: dagster: RuntimeError: DAGSTER_HOME")


class Broken(HashingEmbedderResource):
    """An embedder whose server refuses connections."""

    def model_info(self):
        raise EmbedderUnavailable("connection refused")


# ---- metrics ----------------------------------------------------------------------------------------------


def test_metrics_count_requests_documents_and_queue_depth(intake_client):
    docs = {"documents": [{"text": "a"}, {"text": "b"}]}
    intake_client.post(DOCS.format("demo"), json=docs)
    intake_client.post(DOCS.format("demo"), json={"documents": []})
    intake_client.get("/v1/jobs/unknown")
    response = intake_client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = "/v1/collections/{collection}/documents"
    assert metric(text, "orca_intake_requests_total", method="POST", route=route, status="202") == 1
    assert metric(text, "orca_intake_requests_total", method="POST", route=route, status="422") == 1
    assert metric(text, "orca_intake_requests_total", method="GET", route="/v1/jobs/{request_id}", status="404") == 1
    assert metric(text, "orca_intake_request_duration_seconds_count", method="POST", route=route) == 2
    assert metric(text, "orca_intake_documents_accepted_total") == 2
    assert metric(text, "orca_intake_queue_depth", status="queued") == 1
    assert metric(text, "orca_intake_queue_depth", status="succeeded") == 0
    assert metric(text, "orca_intake_queue_up") == 1
    intake_client.get("/no/such/path/12345")
    assert "12345" not in intake_client.get("/metrics").text  # raw paths never become labels


def test_two_apps_keep_separate_metrics(intake_app_factory):
    first, second = intake_app_factory(), intake_app_factory()
    first.post(DOCS.format("demo"), json={"documents": [{"text": "a"}]})
    assert metric(first.get("/metrics").text, "orca_intake_documents_accepted_total") == 1
    assert metric(second.get("/metrics").text, "orca_intake_documents_accepted_total") == 0


# ---- errors -----------------------------------------------------------------------------------------------


def test_unknown_routes_and_methods_answer_json(intake_client):
    assert intake_client.get("/v2/anything").json()["error"]["code"] == "not_found"
    response = intake_client.put("/v1/jobs")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["allow"]


def test_a_real_bug_answers_a_logged_json_500(intake_app_factory, caplog):
    client = intake_app_factory(raise_server_exceptions=False)

    def broken_queue():
        raise RuntimeError("simulated bug")

    client.app.dependency_overrides[get_queue] = broken_queue
    response = client.post("/v1/jobs", json={"collection": "demo", "kind": "embed"})
    assert response.status_code == 500
    message = "an unexpected error occurred; it has been logged"
    assert response.json() == {"error": {"code": "internal_error", "message": message}}
    assert "simulated bug" in caplog.text
    client.app.dependency_overrides.clear()
    assert "orca_intake_internal_errors_total 1.0" in client.get("/metrics").text


JSON = "application/json"


def raw(body: bytes, content_type: str = JSON) -> dict:
    return {"content": body, "headers": {"content-type": content_type}}


MALFORMED = [
    ("POST", DOCS.format("demo"), raw(b"\x00\x01\x02")),
    ("POST", DOCS.format("demo"), raw(b"--x\r\n\r\n", "multipart/form-data; boundary=x")),
    ("POST", DOCS.format("demo"), raw(b"{}", "application/json; charset=latin-1")),
    ("POST", DOCS.format("demo"), raw(b'{"documents": [{"text": "t", "metadata": {"a": 1e999}}]}')),
    ("POST", DOCS.format("demo"), {"json": {"documents": "not a list"}}),
    ("POST", DOCS.format("demo"), {"json": {"documents": [None]}}),
    ("POST", DOCS.format("demo"), raw(b"")),
    ("POST", DOCS.format("demo"), raw(b"null")),
    ("POST", DOCS.format("demo"), raw(b'{"documents": [{"text": "' + b"\\" * 999 + b'"}]}')),
    ("POST", "/v1/jobs", raw(b"[" * 50_000)),
    ("POST", "/v1/jobs", raw(b"\xff\xfe{")),
    ("POST", "/v1/jobs", raw(b'{"collection": "demo"}', "text/plain")),
    ("POST", "/v1/jobs", {"json": {"collection": None, "kind": None, "force": None}}),
    ("POST", "/v1/search", {"json": {"collection": "demo", "query": "q", "k": 1e308}}),
    ("POST", "/v1/search", {"json": {"collection": "demo", "query": "q", "k": True}}),
    ("POST", "/v1/search", raw(b'{"collection": "demo", "query": "q", "k": 1' + b"0" * 5000 + b"}")),
    ("POST", "/v1/embeddings", {"json": {"input": [None], "model": "orca-hashing-v1"}}),
    ("POST", "/v1/embeddings", {"json": {"input": "x", "model": "orca-hashing-v1", "dimensions": -1}}),
    ("POST", "/v1/embeddings", {"json": {"input": "x", "model": ["list"]}}),
    ("GET", "/v1/jobs/%00%ff", {}),
    ("GET", "/v1/collections/%ff%fe", {}),
    ("DELETE", DOCS.format("demo") + "/%ff%fe.txt", {}),
    ("DELETE", DOCS.format("demo") + "/" + "a/" * 2000, {}),
]


@pytest.mark.parametrize(
    ("method", "url", "options"), MALFORMED, ids=[f"{m} {i}" for i, (m, _, _) in enumerate(MALFORMED)]
)
def test_malformed_input_never_reaches_the_catch_all(intake_client, method, url, options):
    intake_client.post(DOCS.format("demo"), json={"documents": [{"id": "x.md", "text": "t"}]})
    response = intake_client.request(method, url, **options)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["code"] and error["message"]
    assert "orca_intake_internal_errors_total 0.0" in intake_client.get("/metrics").text


# ---- loopback rule and OpenAPI ----------------------------------------------------------------------------


def test_without_tokens_only_loopback_clients_are_served(intake_app_factory):
    remote = intake_app_factory(client=("203.0.113.9", 40000))
    response = remote.get("/v1/collections")
    assert response.status_code == 403 and response.json()["error"]["code"] == "loopback_only"
    assert remote.get("/health/live").status_code == 200
    assert intake_app_factory(client=("::1", 40000)).get("/v1/collections").status_code == 200


def test_openapi_documents_every_endpoint_with_models(intake_client):
    spec = intake_client.get("/openapi.json").json()
    paths = spec["paths"]
    expected = {
        ("/v1/collections/{collection}/documents", "post"),
        ("/v1/collections/{collection}/documents/{doc_id}", "delete"),
        ("/v1/jobs", "post"),
        ("/v1/jobs/{request_id}", "get"),
        ("/v1/jobs", "get"),
        ("/v1/jobs/{request_id}/cancel", "post"),
        ("/v1/models", "get"),
        ("/v1/models/{model}", "get"),
        ("/v1/collections", "get"),
        ("/v1/collections/{collection}", "get"),
        ("/v1/search", "post"),
        ("/v1/embeddings", "post"),
        ("/health", "get"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
        ("/health/detailed", "get"),
        ("/metrics", "get"),
    }
    assert {(path, method) for path, ops in paths.items() for method in ops} == expected
    post_docs = paths["/v1/collections/{collection}/documents"]["post"]
    assert set(post_docs["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert "DocumentBatch" in spec["components"]["schemas"] and "DocumentIn" in spec["components"]["schemas"]

    def schema_of(operation: dict, status: str) -> str:
        return operation["responses"][status]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]

    assert schema_of(post_docs, "202") == "DocumentsAccepted" and schema_of(post_docs, "413") == "ErrorBody"
    assert schema_of(paths["/v1/search"]["post"], "200") == "SearchResponse"
    assert schema_of(paths["/v1/jobs/{request_id}"]["get"], "200") == "JobStatus"
