"""Hostile requests against `python -m orca_intake` as a real server on a real socket.

A body is read only once its sender is known: without a valid token every `/v1` route answers 401 from the
headers alone, so a 32 MiB body costs the intake nothing. A known caller's JSON body is measured before it is
parsed (how many arrays and objects, how deep) and parsed off the event loop.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.orca_intake.test_intake_server import running_intake, start_intake

TOKEN = "t-security-0123456789abcdef"
HUGE = b"[" + b",".join([b"[]"] * 10_000_000) + b"]"  # 30 MB of empty arrays: a gigabyte once parsed
ROUTES = ["/v1/search", "/v1/jobs", "/v1/embeddings", "/v1/collections/docs/documents"]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def intake(tmp_path):
    with running_intake(
        tmp_path, ORCA_INTAKE_TOKENS=TOKEN, ORCA_INTAKE_MAX_BODY_BYTES=str(64 * 1024 * 1024),
    ) as (process, url):
        yield url, process.process.pid


def post(url: str, body: bytes, token: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    try:
        return httpx.post(url, content=body, headers=headers, timeout=60)
    except httpx.RemoteProtocolError:  # the server may close before the client finished sending
        pytest.fail(f"{url}: the connection was dropped without an answer")


def test_a_body_without_a_valid_token_is_never_read(intake):
    url, pid = intake
    before = rss_mib(pid)
    for route in ROUTES:
        for token in (None, "wrong-token-0000000000"):
            answer = post(f"{url}{route}", HUGE, token)
            assert answer.status_code == 401, (route, answer.status_code, answer.text[:200])
            assert answer.json()["error"]["code"] == "unauthorized"
            assert answer.headers["www-authenticate"].startswith("Bearer")
    assert rss_mib(pid) - before < 100, "an unauthenticated body was read or parsed"
    assert httpx.get(f"{url}/health/live", timeout=10).status_code == 200


def test_a_known_callers_json_is_measured_before_it_is_parsed(intake):
    url, pid = intake
    before = rss_mib(pid)
    for route in ROUTES:
        answer = post(f"{url}{route}", HUGE, TOKEN)
        assert answer.status_code == 413, (route, answer.status_code, answer.text[:200])
        assert "arrays and objects" in answer.json()["error"]["message"]
        deep = post(f"{url}{route}", b"[" * 5000 + b"]" * 5000, TOKEN)
        assert deep.status_code == 422 and "nested deeper than" in deep.json()["error"]["message"], deep.text[:200]
    assert rss_mib(pid) - before < 300, "a refused body was parsed anyway"
    ok = post(f"{url}/v1/jobs", b'{"kind": "prepare_model"}', TOKEN)
    assert ok.status_code == 202, ok.text


@pytest.mark.parametrize(
    ("name", "value"),
    [("ORCA_INTAKE_TOKENS", "short-token"), ("ORCA_INTAKE_TOKENS", "long-enough-token-01,tiny9"),
     ("ORCA_INTAKE_JWT_SECRET", "weak-hs256-secret")],
)
def test_weak_tokens_and_secrets_stop_the_intake_at_start(tmp_path, name, value):
    process, _ = start_intake(tmp_path, **{name: value})
    try:
        code = process.process.wait(timeout=60)
        output = process.output()
    finally:
        process.stop()
    assert code == 2 and name in output and "at least" in output, output
    assert all(secret not in output for secret in value.split(","))  # the secrets themselves are never printed


def hs256(claims: dict) -> str:
    import jwt

    return jwt.encode(claims, SECRET, algorithm="HS256")


SECRET = "a-shared-secret-of-at-least-32-bytes-for-tests"


def test_a_jwt_must_expire_as_a_number_and_soon(tmp_path):
    import time

    with running_intake(tmp_path, ORCA_INTAKE_JWT_SECRET=SECRET, ORCA_INTAKE_JWT_MAX_LIFETIME="3600") as (_, url):
        now = int(time.time())
        cases = {
            "fine": (now + 600, 200),
            "exp as a string": (str(now + 600), 401),
            "a century away": (now + 100 * 365 * 86400, 401),
            "just over the limit": (now + 3600 + 120, 401),
        }
        for label, (expires, status) in cases.items():
            answer = httpx.get(f"{url}/v1/collections", headers={"Authorization": f"Bearer {hs256({'exp': expires})}"})
            assert answer.status_code == status, (label, answer.text)


def test_a_token_less_intake_serves_this_machine_only(tmp_path):
    with running_intake(tmp_path) as (_, url):
        port = url.rsplit(":", 1)[1]
        form = {"files": ("a.md", b"# A\n\nposted by a page", "text/markdown")}
        documents = f"{url}/v1/collections/docs/documents"
        refused = {
            "DNS rebinding: a foreign Host": {"Host": f"evil.example.com:{port}"},
            "a form on a foreign page": {"Origin": "https://evil.example.com"},
            "a sandboxed page": {"Origin": "null"},
            "a cross-site fetch": {"Sec-Fetch-Site": "cross-site"},
        }
        for label, headers in refused.items():
            answer = httpx.post(documents, files=form, headers=headers)
            assert answer.status_code == 403 and answer.json()["error"]["code"] == "cross_site_refused", (label, answer.text)
            read = httpx.get(f"{url}/health/detailed", headers=headers)
            assert read.status_code == 403, (label, read.text)
        assert not (tmp_path / "home" / "inbox" / "docs").exists()
        local_page = httpx.post(documents, files=form, headers={"Origin": f"http://localhost:{port}"})
        assert local_page.status_code == 202, local_page.text
        # X-Forwarded-For is not believed unless ORCA_INTAKE_FORWARDED_ALLOW_IPS names the proxy.
        forwarded = httpx.get(f"{url}/v1/collections", headers={"X-Forwarded-For": "203.0.113.9"})
        assert forwarded.status_code == 200, forwarded.text


def test_loopback_trust_can_be_turned_off_for_an_intake_behind_a_proxy(tmp_path):
    with running_intake(tmp_path, ORCA_INTAKE_TRUST_LOOPBACK="0") as (_, url):
        answer = httpx.get(f"{url}/v1/collections")
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "no_trusted_callers", answer.text


def test_with_tokens_only_the_configured_origins_get_cors_answers(tmp_path):
    app_origin = "https://app.example.com"
    with running_intake(tmp_path, ORCA_INTAKE_TOKENS=TOKEN, ORCA_INTAKE_CORS_ORIGINS=app_origin) as (_, url):
        preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
        allowed = httpx.options(f"{url}/v1/search", headers={"Origin": app_origin, **preflight})
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == app_origin
        other = httpx.options(f"{url}/v1/search", headers={"Origin": "https://evil.example.com", **preflight})
        assert "access-control-allow-origin" not in other.headers
        call = httpx.get(f"{url}/v1/collections", headers={"Origin": app_origin, "Authorization": f"Bearer {TOKEN}"})
        assert call.status_code == 200 and call.headers["access-control-allow-origin"] == app_origin


def test_open_endpoints_tell_strangers_less(tmp_path):
    home = tmp_path / "home"
    (home / "inbox" / "secret-project").mkdir(parents=True)
    with running_intake(tmp_path, ORCA_INTAKE_TOKENS=TOKEN, ORCA_INTAKE_OPERATIONS_ACCESS="terse") as (_, url):
        told = {path: httpx.get(f"{url}{path}", timeout=30).text for path in ("/health/ready", "/health/detailed", "/metrics")}
        for path, text in told.items():
            assert str(home) not in text and "sha256:" not in text, (path, text[:300])
        assert "orca_collection_" not in told["/metrics"] and "orca_intake_requests_total" in told["/metrics"]
        full = httpx.get(f"{url}/health/detailed", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).json()
        assert str(home) in full["checks"]["inbox"]["detail"]  # a caller with a token sees everything


def test_callers_over_the_rate_limit_get_429_with_retry_after(tmp_path):
    with running_intake(
        tmp_path, ORCA_INTAKE_TOKENS=f"{TOKEN},other-{TOKEN}", ORCA_INTAKE_RATE_LIMIT="5/minute",
    ) as (_, url):
        answers = [httpx.get(f"{url}/v1/collections", headers={"Authorization": f"Bearer {TOKEN}"}) for _ in range(7)]
        assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
        assert answers[-1].json()["error"]["code"] == "rate_limited" and 0 < int(answers[-1].headers["retry-after"]) <= 60
        other = httpx.get(f"{url}/v1/collections", headers={"Authorization": f"Bearer other-{TOKEN}"})
        assert other.status_code == 200  # each token has its own budget
        assert httpx.get(f"{url}/health/live").status_code == 200  # probes are not counted


def test_no_caller_can_create_collections_without_end(tmp_path):
    with running_intake(tmp_path, ORCA_MAX_COLLECTIONS="3") as (_, url):
        answers = [
            httpx.post(f"{url}/v1/collections/c{number}/documents", json={"documents": [{"id": "a.md", "text": "a"}]})
            for number in range(5)
        ]
        assert [a.status_code for a in answers] == [202, 202, 202, 403, 403]
        assert answers[-1].json()["error"]["code"] == "collection_limit"
        again = httpx.post(f"{url}/v1/collections/c0/documents", json={"documents": [{"id": "b.md", "text": "b"}]})
        assert again.status_code == 202  # an existing collection takes documents as before
        assert sorted(p.name for p in (tmp_path / "home" / "inbox").iterdir()) == ["c0", "c1", "c2"]


def test_a_slow_client_holds_a_bounded_slot_for_a_bounded_time(tmp_path):
    import socket

    with running_intake(tmp_path, ORCA_INTAKE_BODY_TIMEOUT="2", ORCA_INTAKE_MAX_CONNECTIONS="4") as (_, url):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as slow:
            head = (
                "POST /v1/collections/docs/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            )
            slow.sendall(head.encode() + b'{"documents"')  # then nothing more: a body at far under 1 byte/s
            answer = b""
            while chunk := slow.recv(65536):  # the server answers and closes, well before the socket's timeout
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408") and b"body_too_slow" in answer, answer[:300]

        idle = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(4)]
        try:
            for sock in idle:
                sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
            crowded = httpx.get(f"{url}/health/live", timeout=30)
            assert crowded.status_code == 503  # past the connection limit: answered at once, not queued
        finally:
            for sock in idle:
                sock.close()
        assert httpx.get(f"{url}/health/live", timeout=30).status_code == 200


def test_headers_sent_a_byte_at_a_time_are_cut_off(tmp_path):
    import socket
    import time

    with running_intake(tmp_path, ORCA_INTAKE_HEADER_TIMEOUT="2") as (_, url):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as slow:
            started = time.monotonic()
            answer = b""
            for byte in b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 100:
                try:
                    slow.sendall(bytes([byte]))
                except OSError:
                    break  # the server closed the connection
                time.sleep(0.25)  # 4 bytes/s: the headers would need half a minute
                if answer := slow.recv(65536, socket.MSG_DONTWAIT) if _readable(slow) else b"":
                    break
            while chunk := _recv(slow):
                answer += chunk
            held = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert held < 10, held  # cut at the 2 s deadline, not when the client is done

        with socket.create_connection(("127.0.0.1", port), timeout=30) as keep_alive:
            keep_alive.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert _response(keep_alive).startswith(b"HTTP/1.1 200")
            time.sleep(2.5)  # past the header deadline of the first request: it was met, so nothing is cut
            keep_alive.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert _response(keep_alive).startswith(b"HTTP/1.1 200")


def _response(sock) -> bytes:
    """One whole small JSON answer (head and body may come in separate packets)."""
    answer = b""
    while not answer.endswith(b"}"):
        chunk = sock.recv(65536)
        assert chunk, answer
        answer += chunk
    return answer


def _readable(sock) -> bool:
    import select

    return bool(select.select([sock], [], [], 0)[0])


def _recv(sock) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""
