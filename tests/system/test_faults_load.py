"""Load with faults. Marked slow; `make test` still runs it.

Twenty clients post documents concurrently to one collection of a real intake process while the intake sensor
turns the queued requests into runs, one after another, against an Ollama stand-in that fails now and then
(500s, bursts of 503, dropped connections). Once everything settles, every document that got a 202 is in the
served index exactly once, and every accepted request ended `succeeded` or `failed` with a reason.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from orca_resources.ollama import OllamaResource
from sensors.intake import intake_sensor
from sensors.run_status import intake_run_status_sensor
from tests.ollama_standin import BUSY
from tests.processes import ManagedProcess, free_port, orca_env, wait_for_url

pytestmark = pytest.mark.slow

CLIENTS = 20
POSTS_PER_CLIENT = 5
COLLECTION = "load"


def start_intake(home: Path, log_dir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    process = ManagedProcess(
        [sys.executable, "-m", "orca_intake", "--port", str(port)], env=orca_env(home), log_path=log_dir / "intake.log"
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_url(f"{url}/health/live", timeout=60, process=process)
    return process, url


class FaultInjector(threading.Thread):
    """Every few embed requests, stages one fault on the stand-in (never more than one pending at a time)."""

    def __init__(self, standin):
        super().__init__(daemon=True)
        self.standin = standin
        self.stop_event = threading.Event()
        self.injected: Counter = Counter()

    def run(self) -> None:
        rng = random.Random(20)
        next_at = 2
        while not self.stop_event.wait(0.002):
            seen = self.standin.stats.requests["/api/embed"]
            if seen < next_at:
                continue
            kind = rng.choice(["500", "503", "drop"])
            if kind == "500":
                self.standin.fail_next(500, "llama runner process has terminated")
            elif kind == "503":
                self.standin.fail_next(503, BUSY, times=2)
            else:
                self.standin.drop_next()
            self.injected[kind] += 1
            next_at = seen + rng.randint(4, 8)


RUN_IN_PROGRESS = threading.Event()


def client(url: str, number: int, request_ids: list[str], during_runs: list[str]) -> dict[str, str]:
    """Post this client's documents one request at a time; return {doc_id: text} of the 202'd ones."""
    accepted: dict[str, str] = {}
    rng = random.Random(number)
    with httpx.Client(base_url=url, timeout=60) as http:
        for post in range(POSTS_PER_CLIENT):
            docs = [
                {"id": f"c{number:02d}/p{post}-{i}.txt", "text": f"Client {number} post {post} note {i} about terns."}
                for i in range(2)
            ]
            time.sleep(rng.uniform(0.1, 0.5))  # clients come and go while runs are in progress
            response = http.post(f"/v1/collections/{COLLECTION}/documents", json={"documents": docs})
            assert response.status_code == 202, response.text
            request_ids.append(response.json()["request_id"])
            if RUN_IN_PROGRESS.is_set():
                during_runs.append(response.json()["request_id"])
            accepted.update({doc["id"]: doc["text"] for doc in docs})
    return accepted


def test_twenty_clients_posting_during_faulty_runs_lose_no_document(sensor_harness, ollama_standin_factory, tmp_path):
    ollama_standin = ollama_standin_factory(cost_fixed_s=0.002)
    home = sensor_harness.home
    process, url = start_intake(home, tmp_path)
    embedder = OllamaResource(
        host=ollama_standin.url, batch_size=4, max_retries=4, backoff_initial=0.01, backoff_max=0.05,
        breaker_failures=1000,
    )
    faults = FaultInjector(ollama_standin)
    cursor = None
    runs: list[bool] = []
    request_ids: list[str] = []
    during_runs: list[str] = []

    def run_what_is_queued() -> int:
        nonlocal cursor
        result = sensor_harness.tick(intake_sensor, cursor)
        cursor = result.cursor or cursor
        for request in result.run_requests:
            RUN_IN_PROGRESS.set()
            try:
                runs.append(sensor_harness.execute(request, embedder=embedder).success)
            finally:
                RUN_IN_PROGRESS.clear()
        sensor_harness.tick(intake_run_status_sensor)
        return len(result.run_requests)

    try:
        faults.start()
        with ThreadPoolExecutor(CLIENTS) as pool:
            posting = [pool.submit(client, url, number, request_ids, during_runs) for number in range(CLIENTS)]
            while not all(f.done() for f in posting):
                run_what_is_queued()  # runs go on while clients post
                time.sleep(0.05)
            accepted: dict[str, str] = {}
            for future in posting:
                accepted.update(future.result())
        faults.stop_event.set()
        faults.join(5)

        # Settle: with the server healthy again, one last request (as any later post would) and the runs it
        # takes until nothing is queued.
        final = httpx.post(
            f"{url}/v1/collections/{COLLECTION}/documents",
            json={"documents": [{"id": "final.txt", "text": "The last note of the day."}]},
            timeout=30,
        )
        assert final.status_code == 202
        accepted["final.txt"] = "The last note of the day."
        deadline = time.monotonic() + 120
        while run_what_is_queued() and time.monotonic() < deadline:
            pass
        assert runs and runs[-1], f"the last run failed: {runs}"
        assert len(runs) >= 2 and len(during_runs) >= 10, (runs, len(during_runs))  # posts landed during runs

        index = pq.read_table(home / "warehouse" / COLLECTION / "embedding_index.parquet")
        doc_ids = Counter(index["doc_id"].to_pylist())
        assert set(doc_ids) == set(accepted), set(accepted) ^ set(doc_ids)
        assert all(count == 1 for count in doc_ids.values()), [d for d, c in doc_ids.items() if c != 1]
        texts = dict(zip(index["doc_id"].to_pylist(), index["text"].to_pylist()))
        assert texts == accepted

        # Every accepted request reached an end, and a failure says what went wrong.
        request_ids.append(final.json()["request_id"])
        assert len(request_ids) == CLIENTS * POSTS_PER_CLIENT + 1
        rows = [sensor_harness.queue.get(request_id) for request_id in request_ids]
        assert Counter(row.status for row in rows).keys() <= {"succeeded", "failed"}, Counter(r.status for r in rows)
        assert all("Ollama" in row.error for row in rows if row.status == "failed")
        assert rows[-1].status == "succeeded"
        assert sum(faults.injected.values()) >= 5, faults.injected
        # Faults were really hit: more embed requests than computed batches.
        assert ollama_standin.stats.requests["/api/embed"] > ollama_standin.stats.embed_requests
    finally:
        faults.stop_event.set()
        process.stop()
