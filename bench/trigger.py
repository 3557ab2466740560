"""Benchmark 6, trigger latency: how soon a change reaches the index, beside the same path with nothing to do.

`orca up -m bench.floor_location` (webserver, daemon with its default sensor settings, intake) runs on a
fresh ORCA_HOME with the offline hashing embedder and two small collections. The code location is Orca's own
plus a floor: `floor_job`, one asset that returns at once (bench/floor_location.py). Four measurements,
taken one at a time, each followed as a caller would (bench/trigger_probes.py):

- the floor: a request of kind `floor` committed to the intake queue, to `succeeded` in `GET /v1/jobs/{id}`:
  the same intake sensor, run queue, launcher, run process and status sensor as a document, nothing to do;
- a document: one new document per `POST .../documents`, to `succeeded`;
- a drop: a file renamed into `inbox/drops/`, until a search filtered to it finds it in the served index; its
  floor is the floor's run end (the inbox and intake sensors tick on the same daemon loop);
- the launchpad: a run of `embed_collection_job` for the unchanged `docs` partition, launched by the
  webserver's GraphQL mutation, to its end, beside `floor_job` launched the same way.

Targets (issue 15): a document p50 <= floor + 2 s and p95 <= floor + 4 s over 20 posts; a drop p50 <= floor
+ 4 s; the launchpad run p50 <= floor + 1 s.
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
from bench.trigger_probes import Timing, drop_file, launch_from_webserver, post_document, queue_floor

BUDGET_SECONDS = 360.0
ACTIVE = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def _phases(timings: list[Timing]) -> str:
    names = list(timings[0].phases)
    return ", ".join(f"{name} {_pct([t.phases[name] for t in timings], 0.5):.1f} s" for name in names)


def _start(home: Path, workdir: Path, intake_port: int, web_port: int) -> tuple[subprocess.Popen, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCA_", "DAGSTER_"))}
    env.update(ORCA_HOME=str(home), ORCA_EMBEDDER="hashing", ORCA_INTAKE_PORT=str(intake_port),
               ORCA_WEBSERVER_PORT=str(web_port), DAGSTER_DISABLE_TELEMETRY="1")
    log = open(workdir / "orca-up.log", "w")
    up = subprocess.Popen([str(Path(sys.executable).parent / "orca"), "up", "-m", "bench.floor_location"],
                          env=env, cwd=Path(__file__).resolve().parent.parent, stdout=log, stderr=subprocess.STDOUT)
    return up, log


def _wait_ready(url: str, up: subprocess.Popen, home: Path, workdir: Path):
    """The Dagster instance, once the intake answers and the first runs of the seeded collections are over (two
    quiet looks)."""
    import dagster as dg

    deadline, quiet, instance = time.monotonic() + 240, 0, None
    while quiet < 2:
        if time.monotonic() > deadline or up.poll() is not None:
            raise RuntimeError(f"`orca up` did not settle (see {workdir / 'orca-up.log'})")
        try:
            live = httpx.get(f"{url}/health/live", timeout=2).status_code == 200
        except httpx.HTTPError:
            live = False
        if not live:
            time.sleep(0.5)
            continue
        instance = instance or dg.DagsterInstance.from_config(str(home / "dagster"))
        statuses = [getattr(dg.DagsterRunStatus, name) for name in ACTIVE]
        busy = instance.get_runs(dg.RunsFilter(statuses=statuses), limit=1)
        indexed = all((home / "warehouse" / name / "embedding_index.parquet").exists() for name in ("docs", "drops"))
        quiet = quiet + 1 if indexed and not busy else 0
        time.sleep(6 if quiet else 1)
    return instance


def run(smoke: bool, workdir: Path) -> list[Row]:
    from dagster_graphql import DagsterGraphQLClient

    count = 1 if smoke else 20
    home = workdir / "home"
    write_synthetic(home / "inbox" / "docs", docs=5, paragraphs=4)
    write_synthetic(home / "inbox" / "drops", docs=2, paragraphs=2)
    intake_port, web_port = _free_port(), _free_port()
    url = f"http://127.0.0.1:{intake_port}"
    up, log = _start(home, workdir, intake_port, web_port)
    results: dict[str, list[Timing]] = {"floor": [], "document": [], "drop": [], "launch floor": [], "launch": []}
    failed = dict.fromkeys(results, 0)
    try:
        os.environ["DAGSTER_HOME"] = str(home / "dagster")
        instance = _wait_ready(url, up, home, workdir)
        client = DagsterGraphQLClient("127.0.0.1", port_number=web_port)
        probes = {
            "floor": lambda n: queue_floor(url, instance, home),
            "document": lambda n: post_document(url, instance, "docs", n),
            "drop": lambda n: drop_file(url, instance, home / "inbox" / "drops", n),
            "launch floor": lambda n: launch_from_webserver(client, instance, "floor_job", None),
            "launch": lambda n: launch_from_webserver(client, instance, "embed_collection_job", "docs"),
        }
        # 20 posts (the count); the others fewer, to keep make bench within its 20 minutes.
        plan = {"floor": max(1, count * 3 // 4), "document": count, "drop": max(1, count * 2 // 5),
                "launch floor": max(1, count * 3 // 10), "launch": max(1, count * 3 // 10)}
        began = time.monotonic()
        for number in range(count):  # interleaved, so drift on the shared machine hits floor and figure alike
            for name, probe in probes.items():
                if number < plan[name] and time.monotonic() - began < BUDGET_SECONDS:
                    timing = probe(number)
                    if timing is None:
                        failed[name] += 1
                    else:
                        results[name].append(timing)
    finally:
        os.environ.pop("DAGSTER_HOME", None)
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
        log.close()
    if any(not timings for timings in results.values()):
        raise RuntimeError(f"a measurement never succeeded ({failed}); see {workdir / 'orca-up.log'}")
    return _rows(results, failed)


def _rows(results: dict[str, list[Timing]], failed: dict[str, int]) -> list[Row]:
    def p(name: str, q: float, attr: str = "done") -> float:
        return _pct([getattr(t, attr) for t in results[name]], q)

    floor50, floor95, floor_end = p("floor", 0.5), p("floor", 0.95), p("floor", 0.5, "run_end")
    doc50, doc95 = p("document", 0.5), p("document", 0.95)
    drop50, launch50, launch_floor50 = p("drop", 0.5), p("launch", 0.5), p("launch floor", 0.5)
    n = {name: len(timings) for name, timings in results.items()}
    return [
        Row("6 trigger latency: the floor, a trivial run through the intake",
            f"{n['floor']} requests ({failed['floor']} not succeeded): `succeeded` p50 {floor50:.1f} s, p95 "
            f"{floor95:.1f} s; run end p50 {floor_end:.1f} s", None, "—", "measured (no target)", None,
            notes=["where the floor's time goes (medians): " + _phases(results["floor"])]),
        Row("6 trigger latency: one posted document to `succeeded`",
            f"{n['document']} posts ({failed['document']} not succeeded): p50 {doc50:.1f} s, p95 {doc95:.1f} s",
            doc50 - floor50, f"floor (kind `floor` through the intake): p50 {floor50:.1f} s, p95 {floor95:.1f} s",
            "p50 <= floor + 2 s, p95 <= floor + 4 s", doc50 <= floor50 + 2 and doc95 <= floor95 + 4,
            f"{doc50 - floor50:+.1f} s / {doc95 - floor95:+.1f} s",
            notes=["where a posted document's time goes (medians): " + _phases(results["document"])]),
        Row("6 trigger latency: a file dropped into the inbox to searchable",
            f"{n['drop']} drops ({failed['drop']} not succeeded): p50 {drop50:.1f} s, p95 {p('drop', 0.95):.1f} s",
            drop50 - floor_end, f"floor's run end: p50 {floor_end:.1f} s", "p50 <= floor + 4 s",
            drop50 <= floor_end + 4, f"{drop50 - floor_end:+.1f} s",
            notes=["where a dropped file's time goes (medians): " + _phases(results["drop"])]),
        Row("6 trigger latency: a collection launched from the webserver, nothing to embed",
            f"{n['launch']} launches ({failed['launch']} not succeeded): run end p50 {launch50:.1f} s",
            launch50 - launch_floor50, f"`floor_job` launched the same way: p50 {launch_floor50:.1f} s",
            "p50 <= floor + 1 s", launch50 <= launch_floor50 + 1, f"{launch50 - launch_floor50:+.1f} s",
            notes=["where the launched run's time goes (medians): " + _phases(results["launch"]),
                   "and the floor's: " + _phases(results["launch floor"])]),
    ]
