"""The run's extraction pool: every core, answers in order, and a crash or a hang fails one file alone."""

from __future__ import annotations

import os
import signal

import pytest

import orca_assets.extraction_pool as pool_module
from orca_assets.extraction_pool import Worker, WorkerPool, read_documents, read_one
from orca_core.loaders import DocumentError
from tests.document_makers import make_pdf


@pytest.fixture
def files(tmp_path):
    paths = []
    for number in range(6):
        path = tmp_path / f"report{number}.pdf"
        path.write_bytes(make_pdf([[f"Report number {number} says hello."], [f"Second page of report {number}."]]))
        paths.append(path)
        note = tmp_path / f"note{number}.txt"
        note.write_text(f"Note {number}.")
        paths.append(note)
    (tmp_path / "bad.pdf").write_bytes(b"<!doctype html><html>not a pdf</html>")
    return [*paths, tmp_path / "bad.pdf"]


def test_answers_come_in_order_and_match_reading_in_process(files, monkeypatch):
    monkeypatch.setattr(pool_module, "workers", lambda: 2)
    pooled = list(read_documents(files, lambda path: None))
    alone = [read_one(path, None) for path in files]
    assert [type(o) for o in pooled] == [type(o) for o in alone]
    assert [o.text for o in pooled[:-1]] == [o.text for o in alone[:-1]]
    assert "Report number 3 says hello." in pooled[6].text and pooled[6].pages[1] > 0
    assert isinstance(pooled[-1], DocumentError) and "HTML" in pooled[-1].reason


def test_a_worker_that_dies_fails_its_file_and_is_replaced(files):
    workers = WorkerPool()
    try:
        first = workers.read(files[0], None)
        assert "Report number 0" in first.text
        dying = workers.local.worker
        os.kill(dying.process.pid, signal.SIGKILL)
        dying.process.wait()
        crashed = dying.read(files[2], None)
        assert isinstance(crashed, DocumentError) and "crashed" in crashed.reason
        again = workers.read(files[2], None)  # a fresh worker takes the next file
        assert "Report number 1" in again.text and workers.local.worker is not dying
    finally:
        workers.close()


def test_a_file_that_takes_too_long_fails_alone(files):
    worker = Worker()
    try:
        os.kill(worker.process.pid, signal.SIGSTOP)  # a converter stuck in a loop, as far as the pool can tell
        slow = worker.read(files[0], None, seconds=0.5)
        assert isinstance(slow, DocumentError) and "longer than 0.5 s" in slow.reason
    finally:
        worker.process.kill()
        worker.process.wait()
        os.close(worker.answers)
