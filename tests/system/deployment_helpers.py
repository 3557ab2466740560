"""Helpers for driving an `orca up` deployment from outside, as tests/system/test_system.py does: the bearer
token and collection, word-count vectors for the Ollama stand-in, the served index read from the warehouse,
intake job polling with timing, and the webserver's and the Dagster instance's view of the runs.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from pathlib import Path

import dagster as dg
import httpx
import numpy as np
import pyarrow.parquet as pq

from tests.processes import ManagedProcess

COLLECTION = "handbook"
TOKEN = f"e2e-{secrets.token_hex(16)}"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FINISHED = ("succeeded", "failed", "canceled")
PREFIXES = ("search_document: ", "search_query: ")

RUN_QUERY = """
query Run($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { runId status tags { key value } } } }
"""


def word_vector(dimensions: int, text: str) -> np.ndarray:
    """A unit vector of signed word counts hashed into `dimensions` buckets (prefixes removed)."""
    for prefix in PREFIXES:
        text = text.removeprefix(prefix)
    vector = np.zeros(dimensions)
    for word in re.findall(r"[a-z0-9]+", text.lower()) or ["empty"]:
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "little") % dimensions] += 1.0 if digest[4] & 1 else -1.0
    if not vector.any():
        vector[0] = 1.0
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def read_index(home: Path) -> list[dict]:
    path = home / "warehouse" / COLLECTION / "embedding_index.parquet"
    return pq.read_table(path).to_pylist() if path.exists() else []


def doc_ids(rows: list[dict]) -> set[str]:
    return {row["doc_id"] for row in rows}


class Intake:
    """The intake as a client sees it: authenticated calls and job polling with timing."""

    def __init__(self, url: str, up: ManagedProcess):
        self.url, self.up = url, up
        self.client = httpx.Client(base_url=url, headers=AUTH, timeout=60)

    def follow(self, request_id: str, started: float, timeout: float = 300) -> tuple[dict, dict[str, float]]:
        """Poll the job until it finishes; return it and when (seconds after `started`) each status was first seen."""
        seen: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.up.alive(), f"orca up exited ({self.up.process.returncode}):\n{self.up.output()[-6000:]}"
            response = self.client.get(f"/v1/jobs/{request_id}")
            assert response.status_code == 200, response.text
            job = response.json()
            seen.setdefault(job["status"], time.monotonic() - started)
            if job["status"] in FINISHED:
                return job, seen
            time.sleep(0.2)
        raise AssertionError(f"job {request_id} not finished within {timeout}s (seen {seen}):\n{self.up.output()[-6000:]}")


def reached(seen: dict[str, float], status: str, order=("running", "succeeded")) -> float:
    """When the job was first seen at `status` or any later one (a short run may skip `running` between polls)."""
    return min(at for name, at in seen.items() if name in order[order.index(status):])


def graphql_run(webserver: str, run_id: str) -> dict:
    response = httpx.post(f"{webserver}/graphql", json={"query": RUN_QUERY, "variables": {"runId": run_id}}, timeout=30)
    return response.json()["data"]["runOrError"]


def inbox_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return instance.get_runs(dg.RunsFilter(tags={"dagster/partition": COLLECTION, "orca/source": "inbox"}))
