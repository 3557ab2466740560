"""The measurements of benchmark 6 (bench/trigger.py): each starts one run the way a user would and follows it.

Every probe returns seconds after its own start: the figure it is judged by and the phases between (the run's
creation, start and end come from the Dagster instance's run records), or None when the run did not succeed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import httpx

POLL_SECONDS = 0.05
FOLLOW_SECONDS = 180.0


@dataclass
class Timing:
    """Seconds after the probe's start: `done` is what the row judges; `phases` where the time went."""

    done: float
    run_end: float
    phases: dict[str, float]


def _record(instance: dg.DagsterInstance, run_id: str | None):
    record = instance.get_run_record_by_id(run_id) if run_id else None
    return record if record is not None and record.start_time is not None and record.end_time else None


def _run_phases(record, began: float, first: str) -> dict[str, float]:
    created = record.create_timestamp.timestamp() - began
    return {first: created, "run queue, launch and the run process's imports": record.start_time - began - created,
            "the run's steps": record.end_time - record.start_time}


def follow_request(url: str, instance: dg.DagsterInstance, request_id: str, began: float, first: str) -> Timing | None:
    """Follow an intake request until `GET /v1/jobs/{id}` says `succeeded` (None: failed or canceled)."""
    run_id = None
    deadline = time.monotonic() + FOLLOW_SECONDS
    while True:
        if time.monotonic() > deadline:
            raise RuntimeError(f"request {request_id} did not finish within {FOLLOW_SECONDS:.0f} s")
        status = httpx.get(f"{url}/v1/jobs/{request_id}", timeout=30).json()
        run_id = status.get("run_id") or run_id
        if status["status"] == "succeeded":
            seen = time.time() - began
            break
        if status["status"] in ("failed", "canceled"):
            return None
        time.sleep(POLL_SECONDS)
    record = _record(instance, run_id)
    if record is None:
        return None
    phases = _run_phases(record, began, first)
    phases["run end to `succeeded` in GET /v1/jobs/{id}"] = seen - (record.end_time - began)
    return Timing(seen, record.end_time - began, phases)


def post_document(url: str, instance: dg.DagsterInstance, collection: str, number: int) -> Timing | None:
    """`POST /v1/collections/{collection}/documents` of one small new document, to `succeeded`."""
    document = {"id": f"posted/{number}.md", "text": f"# Note {number}\n\nA lighthouse keeper's note {number}."}
    began = time.time()
    answer = httpx.post(f"{url}/v1/collections/{collection}/documents", json={"documents": [document]}, timeout=30)
    answer.raise_for_status()
    return follow_request(url, instance, answer.json()["request_id"], began, "intake_sensor's tick")


def queue_floor(url: str, instance: dg.DagsterInstance, home: Path) -> Timing | None:
    """A request of kind `floor` committed to the intake queue (what `POST /v1/jobs` does), to `succeeded`."""
    from bench.floor_location import FLOOR_KIND
    from orca_resources.intake_queue_resource import IntakeQueueResource

    began = time.time()
    request = IntakeQueueResource(home=str(home)).queue().enqueue(FLOOR_KIND, "", {})
    return follow_request(url, instance, request.request_id, began, "intake_sensor's tick")


def drop_file(url: str, instance: dg.DagsterInstance, inbox: Path, number: int) -> Timing | None:
    """A file dropped into an inbox folder (written aside, then renamed, as well-behaved tools do) until a search
    filtered to it finds its chunk in the served index; the run is then followed to its end."""
    name = f"dropped-{number}.md"
    aside = inbox / f".{name}.tmp"
    aside.write_text(f"# Drop {number}\n\nA tide table for harbour number {number}.\n", encoding="utf-8")
    began = time.time()
    os.replace(aside, inbox / name)
    query = {"collection": inbox.name, "query": "tide table", "k": 1, "filter": {"doc_id_prefix": name}}
    deadline = time.monotonic() + FOLLOW_SECONDS
    while True:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} was not searchable within {FOLLOW_SECONDS:.0f} s")
        answer = httpx.post(f"{url}/v1/search", json=query, timeout=30)
        if answer.status_code == 200 and answer.json().get("results"):
            served = time.time() - began
            break
        time.sleep(POLL_SECONDS)
    runs = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": inbox.name}), limit=1)
    while runs and not runs[0].is_finished:
        time.sleep(POLL_SECONDS)
        runs = instance.get_runs(dg.RunsFilter(run_ids=[runs[0].run_id]))
    record = _record(instance, runs[0].run_id) if runs and runs[0].is_success else None
    if record is None:
        return None
    phases = _run_phases(record, began, "inbox_sensor's tick (settle wait included)")
    phases["the run's steps"] = served - (record.start_time - began)
    phases["searchable to the run's end"] = record.end_time - began - served
    return Timing(served, record.end_time - began, phases)


def launch_from_webserver(client, instance: dg.DagsterInstance, job: str, partition: str | None) -> Timing | None:
    """The launchpad's mutation (`launchPipelineExecution`, through dagster-graphql's client): a run of `job`
    (for one partition) to its end."""
    began = time.time()
    tags = {"dagster/partition": partition} if partition else None
    run_id = client.submit_job_execution(job, tags=tags)
    deadline = time.monotonic() + FOLLOW_SECONDS
    while True:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} of {job} did not finish within {FOLLOW_SECONDS:.0f} s")
        time.sleep(POLL_SECONDS)
    record = _record(instance, run_id) if run.is_success else None
    if record is None:
        return None
    return Timing(record.end_time - began, record.end_time - began, _run_phases(record, began, "the mutation"))
