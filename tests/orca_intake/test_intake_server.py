"""`python -m orca_intake` as a real process under uvicorn on a free port.

Documents posted over HTTP land whole in the inbox (a concurrent reader never sees a partial file) and the
queue row is committed before the 202; a literal `..` sent on the wire cannot leave the inbox; without
tokens the server refuses to bind a public address; metrics expose the counters; SIGTERM stops it cleanly.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orca_core.catalog import iter_documents
from orca_core.layout import LocalLayout
from orca_resources import inbox
from orca_resources.intake_queue import IntakeQueue
from tests.processes import ManagedProcess, free_port, orca_env, wait_for_url


def start_intake(tmp_path: Path, *args: str, **env: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    process = ManagedProcess(
        [sys.executable, "-m", "orca_intake", "--port", str(port), *args],
        env=orca_env(tmp_path / "home", **env),
        log_path=tmp_path / f"intake-{port}.log",
    )
    return process, f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def running_intake(tmp_path: Path, *args: str, **env: str) -> Iterator[tuple[ManagedProcess, str]]:
    """`start_intake`, once it answers; stopped when the block ends."""
    process, url = start_intake(tmp_path, *args, **env)
    try:
        wait_for_url(f"{url}/health/live", timeout=60, process=process)
        yield process, url
    finally:
        process.stop()


@pytest.fixture
def intake_server(tmp_path):
    process, url = start_intake(tmp_path)
    try:
        wait_for_url(f"{url}/health/live", timeout=60, process=process)
        yield process, url, tmp_path / "home"
    finally:
        process.stop()


class PartialReadWatcher(threading.Thread):
    """Reads every visible inbox file over and over, as a scanner would, and records any incomplete one."""

    def __init__(self, folder: Path, expected_size: int):
        super().__init__(daemon=True)
        self.folder, self.expected_size = folder, expected_size
        self.partial: list[tuple[str, int]] = []
        self.reads = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            for doc_id in list(iter_documents(self.folder)) if self.folder.is_dir() else []:
                try:
                    size = len((self.folder / doc_id).read_bytes())
                except FileNotFoundError:
                    continue
                self.reads += 1
                if size != self.expected_size:
                    self.partial.append((doc_id, size))


def test_posted_documents_land_whole_and_are_queued_before_the_reply(intake_server):
    process, url, home = intake_server
    folder = home / "inbox" / "live"
    text = ("0123456789abcdef" * 32768)[: 512 * 1024]  # 512 KiB each: writes take long enough to be seen
    watcher = PartialReadWatcher(folder, len(text))
    watcher.start()
    try:
        response = httpx.post(
            f"{url}/v1/collections/live/documents",
            json={"documents": [{"id": f"doc-{i:02d}.txt", "text": text} for i in range(16)]},
            timeout=60,
        )
    finally:
        watcher.stop_event.set()
        watcher.join()
    assert response.status_code == 202, response.text
    body = response.json()
    # The reply came after the commit: a fresh connection to the store sees the row at once.
    queue = IntakeQueue(LocalLayout(home).queue_url)
    try:
        row = queue.get(body["request_id"])
    finally:
        queue.close()
    assert row is not None and row.status == "queued" and row.payload["doc_ids"] == body["documents"]
    assert sorted(iter_documents(folder)) == [f"doc-{i:02d}.txt" for i in range(16)]
    assert all((folder / d).read_text() == text for d in body["documents"])
    assert watcher.partial == [], watcher.partial
    assert watcher.reads > 0  # the reader really raced the writes
    assert not [p for p in folder.iterdir() if p.name.startswith(".") and p.name != ".orca"]  # no temp files left
    assert inbox.read_source(folder, "doc-00.txt")["request_id"] == body["request_id"]

    job = httpx.get(f"{url}/v1/jobs/{body['request_id']}").json()
    assert job["status"] == "queued" and job["kind"] == "documents"
    metrics = httpx.get(f"{url}/metrics").text
    assert "orca_intake_documents_accepted_total 16.0" in metrics
    route = "/v1/collections/{collection}/documents"
    assert f'orca_intake_requests_total{{method="POST",route="{route}",status="202"}} 1.0' in metrics
    assert 'orca_intake_queue_depth{status="queued"} 1.0' in metrics


def test_a_literal_dotdot_on_the_wire_cannot_leave_the_inbox(intake_server):
    process, url, home = intake_server
    posted = httpx.post(f"{url}/v1/collections/c/documents", json={"documents": [{"id": "a.md", "text": "t"}]})
    assert posted.status_code == 202
    victim = home / "inbox" / "victim.txt"
    victim.write_text("must survive")
    port = int(url.rsplit(":", 1)[1])
    for target in ("/v1/collections/c/documents/../victim.txt", "/v1/collections/c/documents/a/../../victim.txt"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"DELETE {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        status = int(answer.split(b" ", 2)[1])
        assert status == 422, answer
        assert b'"invalid_doc_id"' in answer
    assert victim.read_text() == "must survive"


def test_sigterm_stops_the_server_cleanly(intake_server):
    process, url, _ = intake_server
    process.signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status still says "terminated".
    assert process.wait(timeout=20) in (0, -signal.SIGTERM)
    output = process.output()
    assert "Waiting for application shutdown." in output and "Finished server process" in output


def test_refuses_a_public_bind_without_tokens(tmp_path):
    process, _ = start_intake(tmp_path, "--host", "0.0.0.0")
    try:
        assert process.wait(timeout=60) == 2
        output = process.output()
        assert "refusing to serve the intake on 0.0.0.0" in output and "ORCA_INTAKE_TOKENS" in output
    finally:
        process.stop()


def test_a_public_bind_with_tokens_requires_them(tmp_path):
    process, url = start_intake(tmp_path, "--host", "0.0.0.0", ORCA_INTAKE_TOKENS="server-token-0123456789")
    try:
        wait_for_url(f"{url}/health/live", timeout=60, process=process)
        assert httpx.get(f"{url}/v1/collections").status_code == 401
        ok = httpx.get(f"{url}/v1/collections", headers={"Authorization": "Bearer server-token-0123456789"})
        assert ok.status_code == 200 and ok.json() == {"collections": []}
    finally:
        process.stop()
