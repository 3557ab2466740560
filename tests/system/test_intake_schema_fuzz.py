"""Schemathesis against the intake's own OpenAPI schema, in process.

The intake app (`create_app`, lifespan included) is loaded with `schemathesis.openapi.from_asgi` and every
operation of its `/openapi.json` is fuzzed with positive (schema-valid) and negative (schema-violating) cases,
with a valid bearer token and without one. Every answer must be free of 5xx, use a documented status code and
content type, and match the documented response schema. Without a valid token every `/v1` answer is a 401,
whatever the input; `/health/*` and `/metrics` stay open. Example counts are bounded so the module runs in
seconds; hypothesis' example database is off, so runs do not depend on earlier ones.

The auth matrix at the end complements tests/orca_intake/test_intake_auth.py, which checks each refusal on one endpoint
and a missing token on every endpoint: here a wrong, malformed or expired token is tried on every endpoint
that reads or writes data.
"""

from __future__ import annotations

import time

import jwt
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orca_resources.hashing_embedder import HashingEmbedderResource

TOKEN = "fuzz-token-0123456789abcdef"
SECRET = "a-very-long-shared-secret-for-fuzz-tests"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
OPEN_PATHS = ("/health", "/metrics")
EXAMPLES = {GenerationMode.POSITIVE: 50, GenerationMode.NEGATIVE: 30}


@pytest.fixture
def fuzzed_app(intake_settings, write_index):
    """An intake with one token, a collection with a document and a served index, and a Dagster home.

    Its health pages and metrics answer anyone, tersely (ORCA_INTAKE_OPERATIONS_ACCESS=terse), as for a
    Prometheus that scrapes without a token."""
    from orca_intake.app import create_app

    config = intake_settings(ORCA_INTAKE_TOKENS=TOKEN, ORCA_INTAKE_OPERATIONS_ACCESS="terse")
    home = config.home
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    (home / "inbox" / "docs").mkdir(parents=True, exist_ok=True)
    (home / "inbox" / "docs" / "a.txt").write_text("whales and krill", encoding="utf-8")
    write_index(home / "warehouse" / "docs" / "embedding_index.parquet", ["whales and krill"], HashingEmbedderResource())
    return create_app(config)


def operations(app) -> list:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 12, [op.label for op in found]
    return found


def has_inputs(operation) -> bool:
    """Negative cases need something to break: parameters or a body."""
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))


def fuzz(operation, mode: GenerationMode, headers: dict, on_response) -> None:
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)
        on_response(operation, response)

    run()


def is_open(operation) -> bool:
    return operation.path.startswith(OPEN_PATHS)


def sent_token(response) -> str | None:
    return response.request.headers.get("Authorization")


def test_every_operation_with_a_valid_token_answers_without_5xx_and_as_documented(fuzzed_app):
    statuses: dict[str, set[int]] = {}

    def record(operation, response):
        assert response.status_code < 500, (operation.label, response.status_code, response.text[:300])
        if sent_token(response) == f"Bearer {TOKEN}":
            # A case may drop or mangle the header (negative mode); with the real token it is never a 401.
            assert response.status_code != 401, (operation.label, response.text[:300])
        statuses.setdefault(operation.label, set()).add(response.status_code)

    for operation in operations(fuzzed_app):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE and not has_inputs(operation):
                continue
            fuzz(operation, mode, {"Authorization": f"Bearer {TOKEN}"}, record)

    # The fuzzer got past authentication and validation: successes were seen, not only refusals.
    assert any(code < 300 for label, codes in statuses.items() if label.startswith("POST /v1/") for code in codes)
    assert 202 in statuses["POST /v1/collections/{collection}/documents"]
    assert 200 in statuses["GET /health/live"]


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789abcdef"], ids=["no-token", "wrong-token"])
def test_without_a_valid_token_every_v1_answer_is_401_and_health_stays_open(fuzzed_app, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    seen: dict[str, set[int]] = {}

    def record(operation, response):
        seen.setdefault(operation.label, set()).add(response.status_code)
        if is_open(operation):
            assert response.status_code in (200, 503), (operation.label, response.status_code)
        elif sent_token(response) != f"Bearer {TOKEN}":
            assert response.status_code == 401, (response.request.url, response.status_code, response.text[:300])

    for operation in operations(fuzzed_app):
        fuzz(operation, GenerationMode.POSITIVE, headers, record)
    assert {label for label in seen if "/v1/" in label} and all(
        codes == {401} for label, codes in seen.items() if "/v1/" in label
    ), seen
    assert seen["GET /health/live"] == {200} and seen["GET /metrics"] == {200}
    # Nothing was written by refused requests.
    inbox = fuzzed_app.state.settings.layout.inbox_root / "docs"
    assert sorted(p.name for p in inbox.iterdir() if not p.name.startswith(".")) == ["a.txt"]


# ---- auth matrix: every data endpoint x every kind of bad token -------------------------------------------

DATA_ENDPOINTS = [
    ("GET", "/v1/collections", None),
    ("GET", "/v1/collections/docs", None),
    ("POST", "/v1/collections/docs/documents", {"documents": [{"id": "b.txt", "text": "t"}]}),
    ("DELETE", "/v1/collections/docs/documents/a.txt", None),
    ("POST", "/v1/jobs", {"collection": "docs", "kind": "embed"}),
    ("GET", "/v1/jobs/abc", None),
    ("POST", "/v1/search", {"collection": "docs", "query": "whales"}),
    ("POST", "/v1/embeddings", {"input": "x", "model": "m"}),
]


def hs256(claims: dict) -> str:
    return jwt.encode(claims, SECRET, algorithm="HS256")


BAD_TOKENS = {
    "missing": ({}, "required"),
    "wrong": ({"Authorization": "Bearer not-the-token-0123456789"}, "neither a configured token"),
    "forged": (
        {"Authorization": "Bearer " + jwt.encode({"sub": "u", "exp": int(time.time()) + 600}, "another-secret-" * 3)},
        "invalid",
    ),
    "malformed": ({"Authorization": f"Basic {TOKEN}"}, "malformed"),
    "expired": ({"Authorization": "Bearer " + hs256({"sub": "u", "exp": int(time.time()) - 600})}, "expired"),
}


@pytest.fixture
def matrix_client(intake_app_factory, tmp_path):
    client = intake_app_factory(ORCA_INTAKE_TOKENS=TOKEN, ORCA_INTAKE_JWT_SECRET=SECRET)
    inbox = client.app.state.settings.layout.inbox_root / "docs"
    inbox.mkdir(parents=True)
    (inbox / "a.txt").write_text("whales", encoding="utf-8")
    return client


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_every_data_endpoint_refuses_a_missing_wrong_malformed_or_expired_token(matrix_client, kind):
    headers, fragment = BAD_TOKENS[kind]
    for method, url, body in DATA_ENDPOINTS:
        response = matrix_client.request(method, url, json=body, headers=headers)
        assert response.status_code == 401, (method, url, response.status_code, response.text)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert fragment in response.json()["error"]["message"], (method, url, response.text)
    # Refused writes left the inbox as it was.
    inbox = matrix_client.app.state.settings.layout.inbox_root / "docs"
    assert sorted(p.name for p in inbox.iterdir()) == ["a.txt"]
    # And the same requests with a valid token or JWT are let through (not 401).
    for good in (f"Bearer {TOKEN}", "Bearer " + hs256({"sub": "u", "exp": int(time.time()) + 600})):
        assert matrix_client.get("/v1/collections", headers={"Authorization": good}).status_code == 200
