"""Who may call the intake: static bearer tokens, HS256 JWTs, JWTs verified against a JWKS URL (served here by
a tiny local HTTP server), open health and metrics, and the loopback rule when no auth is configured.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from orca_intake.auth import UnsafeBind, check_bind

PROTECTED = "/v1/collections"
SECRET = "a-very-long-shared-secret-for-hs256-tests"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(response, fragment: str = "") -> dict:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["code"] == "unauthorized" and fragment in error["message"]
    return error


def hs256(claims: dict, secret: str = SECRET, **headers) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers or None)


def in_(seconds: int) -> int:
    return int(time.time()) + seconds


# ---- static tokens ----------------------------------------------------------------------------------------


@pytest.fixture
def token_client(intake_app_factory):
    return intake_app_factory(ORCA_INTAKE_TOKENS="first-token-0123456789, second-token-0123456789")


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, "required"),
        (bearer("wrong-token"), "not valid"),
        (bearer("first-token-012345678"), "not valid"),  # a prefix of a real token
        ({"Authorization": "Basic Zmlyc3Q6dG9rZW4="}, "malformed"),
        ({"Authorization": "Bearer"}, "malformed"),
        ({"Authorization": "Bearer first-token-0123456789 extra"}, "malformed"),
        ({"Authorization": "first-token-0123456789"}, "malformed"),
        ({"Authorization": b"Bearer \xff\xfe"}, "not valid"),
    ],
)
def test_static_tokens_refuse_missing_wrong_and_malformed(token_client, headers, fragment):
    assert_refused(token_client.get(PROTECTED, headers=headers), fragment)


def test_every_configured_token_is_accepted_on_every_v1_endpoint(token_client):
    for token in ("first-token-0123456789", "second-token-0123456789"):
        assert token_client.get(PROTECTED, headers=bearer(token)).status_code == 200
    refused = [
        token_client.post("/v1/collections/demo/documents", json={"documents": [{"text": "t"}]}),
        token_client.delete("/v1/collections/demo/documents/a.txt"),
        token_client.post("/v1/jobs", json={"collection": "demo", "kind": "embed"}),
        token_client.get("/v1/jobs/abc"),
        token_client.get("/v1/collections/demo"),
        token_client.post("/v1/search", json={"collection": "demo", "query": "q"}),
        token_client.post("/v1/embeddings", json={"input": "x", "model": "m"}),
    ]
    assert [r.status_code for r in refused] == [401] * len(refused)
    assert not token_client.app.state.settings.layout.inbox_root.exists()


def test_probes_stay_open_and_details_need_a_token(token_client):
    assert token_client.get("/health/live").status_code == 200
    ready = token_client.get("/health/ready")
    assert ready.status_code in (200, 503)  # open: answered, never 401, and terse
    checks = ready.json()["checks"] if ready.status_code == 200 else ready.json()["error"]["details"]["checks"]
    assert all(check["detail"] is None for check in checks.values())
    for path in ("/health/detailed", "/metrics"):
        assert_refused(token_client.get(path))
        assert token_client.get(path, headers=bearer("first-token-0123456789")).status_code == 200, path


def test_tokens_allow_remote_clients(intake_app_factory):
    client = intake_app_factory(client=("203.0.113.9", 40000), ORCA_INTAKE_TOKENS="remote-token-0123456789")
    assert client.get(PROTECTED, headers=bearer("remote-token-0123456789")).status_code == 200
    assert_refused(client.get(PROTECTED))


# ---- HS256 JWTs -------------------------------------------------------------------------------------------


@pytest.fixture
def hs_client(intake_app_factory):
    return intake_app_factory(
        ORCA_INTAKE_JWT_SECRET=SECRET, ORCA_INTAKE_JWT_AUDIENCE="orca", ORCA_INTAKE_JWT_ISSUER="https://issuer.test/"
    )


GOOD_CLAIMS = {"sub": "user-1", "aud": "orca", "iss": "https://issuer.test/"}


def test_valid_hs256_jwt_is_accepted(hs_client):
    assert hs_client.get(PROTECTED, headers=bearer(hs256({**GOOD_CLAIMS, "exp": in_(60)}))).status_code == 200


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        (lambda: hs256({**GOOD_CLAIMS, "exp": in_(-120)}), "expired"),
        (lambda: hs256({**GOOD_CLAIMS, "exp": in_(60)}, secret="another-secret-of-sufficient-length"), "invalid"),
        (lambda: hs256({**GOOD_CLAIMS, "aud": "someone-else", "exp": in_(60)}), "audience"),
        (lambda: hs256({**GOOD_CLAIMS, "iss": "https://evil.test/", "exp": in_(60)}), "issuer"),
        (lambda: hs256(GOOD_CLAIMS), "exp"),
        (lambda: jwt.encode({**GOOD_CLAIMS, "exp": in_(60)}, None, algorithm="none"), "not accepted"),
        (lambda: "not.a.jwt", "well-formed"),
        (lambda: "a" * 40, "well-formed"),
    ],
)
def test_bad_hs256_jwts_are_refused(hs_client, token, fragment):
    assert_refused(hs_client.get(PROTECTED, headers=bearer(token())), fragment)


# ---- JWKS -------------------------------------------------------------------------------------------------


class JwksServer:
    """Serves one JWK set on 127.0.0.1 and counts how often it was fetched."""

    def __init__(self, jwks: dict):
        self.jwks, self.fetches = jwks, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = json.dumps(owner.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key, kid: str) -> dict:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


@pytest.fixture(scope="module")
def signing_key():
    return rsa_key()


@pytest.fixture
def jwks_server(signing_key) -> Iterator[JwksServer]:
    server = JwksServer({"keys": [public_jwk(signing_key, "key-1")]})
    yield server
    server.stop()


def rs256(key, claims: dict, kid: str = "key-1") -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def test_jwks_verified_tokens_are_accepted_and_the_key_set_is_cached(intake_app_factory, jwks_server, signing_key):
    client = intake_app_factory(ORCA_INTAKE_JWKS_URL=jwks_server.url, ORCA_INTAKE_JWT_AUDIENCE="orca")
    token = rs256(signing_key, {"sub": "svc", "aud": "orca", "exp": in_(60)})
    for _ in range(3):
        assert client.get(PROTECTED, headers=bearer(token)).status_code == 200
    assert jwks_server.fetches == 1


def test_bad_jwks_tokens_are_refused(intake_app_factory, jwks_server, signing_key):
    client = intake_app_factory(ORCA_INTAKE_JWKS_URL=jwks_server.url)
    intruder = rsa_key()
    assert_refused(client.get(PROTECTED, headers=bearer(rs256(signing_key, {"exp": in_(-120)}))), "expired")
    assert_refused(client.get(PROTECTED, headers=bearer(rs256(intruder, {"exp": in_(60)}))), "invalid")
    assert_refused(client.get(PROTECTED, headers=bearer(rs256(intruder, {"exp": in_(60)}, kid="key-2"))), "no key")
    # An HS256 token "signed" with the public key must not pass (algorithm confusion): no secret is configured.
    assert_refused(client.get(PROTECTED, headers=bearer(hs256({"exp": in_(60)}, secret="x" * 32))), "not accepted")


def test_an_unreachable_jwks_is_503_not_401(intake_app_factory, signing_key):
    from tests.processes import closed_port_url

    client = intake_app_factory(ORCA_INTAKE_JWKS_URL=closed_port_url() + "/jwks.json")
    response = client.get(PROTECTED, headers=bearer(rs256(signing_key, {"exp": in_(60)})))
    assert response.status_code == 503 and response.json()["error"]["code"] == "auth_unavailable"


def test_static_tokens_and_jwts_work_side_by_side(intake_app_factory):
    client = intake_app_factory(ORCA_INTAKE_TOKENS="static-token-0123456789", ORCA_INTAKE_JWT_SECRET=SECRET)
    assert client.get(PROTECTED, headers=bearer("static-token-0123456789")).status_code == 200
    assert client.get(PROTECTED, headers=bearer(hs256({"exp": in_(60)}))).status_code == 200
    assert_refused(client.get(PROTECTED, headers=bearer("static-token-012345678X")))


# ---- binding ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"])
def test_loopback_hosts_need_no_token(intake_settings, host):
    check_bind(host, intake_settings())


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "intake.example.org"])
def test_other_hosts_need_a_token(intake_settings, host):
    with pytest.raises(UnsafeBind, match="ORCA_INTAKE_TOKENS"):
        check_bind(host, intake_settings())
    check_bind(host, intake_settings(ORCA_INTAKE_TOKENS="t-0123456789abcdef"))
    check_bind(host, intake_settings(ORCA_INTAKE_JWKS_URL="https://issuer.test/jwks.json"))


def test_invalid_limits_name_the_variable(intake_settings):
    with pytest.raises(ValueError, match="ORCA_INTAKE_MAX_DOCUMENTS"):
        intake_settings(ORCA_INTAKE_MAX_DOCUMENTS="many")
    with pytest.raises(ValueError, match="ORCA_INTAKE_MAX_BODY_BYTES"):
        intake_settings(ORCA_INTAKE_MAX_BODY_BYTES="0")
