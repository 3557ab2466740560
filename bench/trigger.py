"""Benchmark 6, trigger latency: from `POST /v1/jobs` to the Dagster run starting, and to it succeeding.

`orca up` (webserver, daemon with its default sensor settings, intake) runs on a fresh ORCA_HOME with the
offline hashing embedder and a small collection. Jobs (`kind: embed`) are posted one at a time, each after
the previous one finished, 20 of them (1 at smoke size, and fewer if a time budget runs out: the row says
how many). The run's start and end times come from the Dagster instance's run records; the POST time from
this process's clock (same machine). Reported: p50 and p95 of both latencies. No target is fixed in the
issue beyond measuring it.
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
    failed = 0
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
        for _ in range(jobs):
            if time.monotonic() - began > BUDGET_SECONDS:
                break
            posted = time.time()
            answer = httpx.post(f"{url}/v1/jobs", json={"collection": "docs", "kind": "embed"}, timeout=30)
            answer.raise_for_status()
            request_id = answer.json()["request_id"]
            record = None
            while record is None or not record.dagster_run.is_finished:
                # The run's own record says when it ended; the request's status follows a sensor tick later.
                if time.monotonic() - began > BUDGET_SECONDS + 120:
                    raise RuntimeError(f"job {request_id} did not finish")
                time.sleep(0.1)
                if record is None:
                    status = httpx.get(f"{url}/v1/jobs/{request_id}", timeout=30).json()
                    if status["status"] in ("failed", "canceled"):
                        break
                    run_id = status.get("run_id")
                    if not run_id:
                        continue
                record = instance.get_run_record_by_id(run_id)
            if record is None or not record.dagster_run.is_success or record.start_time is None:
                failed += 1
                continue
            starts.append(record.start_time - posted)
            ends.append(record.end_time - posted)
    finally:
        os.environ.pop("DAGSTER_HOME", None)
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
        log.close()
    if not starts:
        raise RuntimeError(f"no job succeeded ({failed} failed); see {workdir / 'orca-up.log'}")
    return [Row(
        "6 trigger latency: POST /v1/jobs to run start / success",
        f"{len(starts)} jobs ({failed} not succeeded): start p50 {_pct(starts, 0.5):.1f} s, p95 "
        f"{_pct(starts, 0.95):.1f} s; success p50 {_pct(ends, 0.5):.1f} s, p95 {_pct(ends, 0.95):.1f} s",
        None, "—", "measured (no target)", None,
        notes=[f"{len(starts)} of {jobs} planned jobs measured within the {BUDGET_SECONDS:.0f} s budget",
               "run duration itself (start to end, a run worker process with 5 tiny documents and the asset "
               f"checks, offline embedder): p50 {_pct([e - s for s, e in zip(starts, ends)], 0.5):.1f} s"],
    )]
