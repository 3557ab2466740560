"""Benchmark 6, trigger latency: from a POST to the intake to the Dagster run starting, and to it succeeding.

`orca up` (webserver, daemon with its default sensor settings, intake) runs on a fresh ORCA_HOME with the
offline hashing embedder and a small collection. First the floor: jobs (`kind: embed`) of the unchanged
collection, the same path as a document's (intake queue, `intake_sensor`, Dagster's run queue, the run
launcher, a run process, `intake_run_status_sensor`) with nothing to do. Then documents: one new document
per `POST .../documents`. Each is posted after the previous one succeeded, 20 of each (1 at smoke size, and
fewer if the time budget runs out: the rows say how many), and followed until `GET /v1/jobs/{id}` says
`succeeded`, as a caller would. The run's start and end come from the Dagster instance's run records.
Target (issue 15): a posted document succeeds within the floor + 2 s at the median, + 4 s at p95.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import Row, write_synthetic
from bench.intake import _free_port

BUDGET_SECONDS = 480.0


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def run(smoke: bool, workdir: Path) -> list[Row]:
    import dagster as dg

    jobs = 1 if smoke else 20
    home = workdir / "home"
    write_synthetic(home / "inbox" / "docs", docs=5, paragraphs=4)
    intake_port, web_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCA_", "DAGSTER_"))}
    env.update(ORCA_HOME=str(home), ORCA_EMBEDDER="hashing", ORCA_INTAKE_PORT=str(intake_port),
               ORCA_WEBSERVER_PORT=str(web_port), DAGSTER_DISABLE_TELEMETRY="1")
    log = open(workdir / "orca-up.log", "w")
    up = subprocess.Popen([str(Path(sys.executable).parent / "orca"), "up"], env=env, cwd=workdir,
                          stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{intake_port}"
    starts: list[float] = []
    ends: list[float] = []
    succeeded_floor: list[float] = []  # POST to `succeeded` in GET /v1/jobs/{id}
    succeeded_docs: list[float] = []
    durations: list[float] = []
    phases: list[dict[str, float]] = []  # where a posted document's time went
    failed = {True: 0, False: 0}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health/live", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or up.poll() is not None:
                raise RuntimeError(f"`orca up` did not serve the intake (see {workdir / 'orca-up.log'})")
            time.sleep(0.5)
        os.environ["DAGSTER_HOME"] = str(home / "dagster")
        instance = dg.DagsterInstance.from_config(str(home / "dagster"))
        began = time.monotonic()
        for number in range(2 * jobs):
            if time.monotonic() - began > BUDGET_SECONDS:
                break
            floor = number < jobs
            posted = time.time()
            if floor:
                answer = httpx.post(f"{url}/v1/jobs", json={"collection": "docs", "kind": "embed"}, timeout=30)
            else:
                document = {"id": f"posted/{number}.md", "text": f"# Note {number}\n\nA lighthouse keeper's note {number}."}
                answer = httpx.post(f"{url}/v1/collections/docs/documents", json={"documents": [document]}, timeout=30)
            answer.raise_for_status()
            timing = _follow(url, instance, answer.json()["request_id"], posted, began)
            if timing is None:
                failed[floor] += 1
            elif floor:
                starts.append(timing[0])
                ends.append(timing[1])
                succeeded_floor.append(timing[2])
                durations.append(timing[1] - timing[0])
            else:
                succeeded_docs.append(timing[2])
                phases.append(timing[3])
    finally:
        os.environ.pop("DAGSTER_HOME", None)
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
        log.close()
    if not starts or not succeeded_docs:
        raise RuntimeError(f"no job or document succeeded ({failed}); see {workdir / 'orca-up.log'}")
    floor50, floor95 = _pct(succeeded_floor, 0.5), _pct(succeeded_floor, 0.95)
    doc50, doc95 = _pct(succeeded_docs, 0.5), _pct(succeeded_docs, 0.95)
    met = doc50 <= floor50 + 2 and doc95 <= floor95 + 4
    return [
        Row("6 trigger latency: POST /v1/jobs to run start / success",
            f"{len(starts)} jobs ({failed[True]} not succeeded): start p50 {_pct(starts, 0.5):.1f} s, p95 "
            f"{_pct(starts, 0.95):.1f} s; run end p50 {_pct(ends, 0.5):.1f} s, p95 {_pct(ends, 0.95):.1f} s; "
            f"`succeeded` p50 {floor50:.1f} s, p95 {floor95:.1f} s", None, "—", "measured (no target)", None,
            notes=[f"{len(starts)} of {jobs} planned jobs and {len(succeeded_docs)} of {jobs} documents measured "
                   f"within the {BUDGET_SECONDS:.0f} s budget",
                   "run duration itself (start to end, a run process with 5 tiny documents and the asset checks, "
                   f"offline embedder): p50 {_pct(durations, 0.5):.1f} s"]),
        Row("6 trigger latency: one posted document to `succeeded`",
            f"{len(succeeded_docs)} posts ({failed[False]} not succeeded): p50 {doc50:.1f} s, p95 {doc95:.1f} s",
            doc50 - floor50, f"floor, the same path with nothing to do (POST /v1/jobs, unchanged collection): "
            f"p50 {floor50:.1f} s, p95 {floor95:.1f} s", "p50 <= floor + 2 s, p95 <= floor + 4 s", met,
            f"{doc50 - floor50:+.1f} s / {doc95 - floor95:+.1f} s",
            notes=["where a posted document's time goes (medians): " + ", ".join(
                f"{name} {_pct([p[name] for p in phases], 0.5):.1f} s" for name in PHASES)]),
    ]


PHASES = (
    "intake_sensor's tick (POST to the run's creation)",
    "run queue and launch (creation to the run process starting)",
    "the run itself (its steps, imports of the run process included)",
    "intake_run_status_sensor's tick (run end to `succeeded`)",
)


def _follow(url: str, instance, request_id: str, posted: float, began: float) -> tuple | None:
    """(run start, run end, `succeeded` seen) in seconds after `posted`, and the phases between (PHASES), or
    None when it did not succeed."""
    run_id = None
    while True:
        if time.monotonic() - began > BUDGET_SECONDS + 120:
            raise RuntimeError(f"request {request_id} did not finish")
        status = httpx.get(f"{url}/v1/jobs/{request_id}", timeout=30).json()
        if status["status"] == "succeeded":
            seen = time.time() - posted
            run_id = status.get("run_id") or run_id
            break
        if status["status"] in ("failed", "canceled"):
            return None
        run_id = status.get("run_id") or run_id
        time.sleep(0.05)
    record = instance.get_run_record_by_id(run_id) if run_id else None
    if record is None or record.start_time is None:
        return None
    created = record.create_timestamp.timestamp() - posted
    start, end = record.start_time - posted, record.end_time - posted
    phases = dict(zip(PHASES, [created, start - created, end - start, seen - end], strict=True))
    return start, end, seen, phases
