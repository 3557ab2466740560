"""`orca status`: whether the services of a running `orca up` answer, the embedder, the run queue and the last runs.

Everything is asked at once, each in a daemon thread with a short deadline, so a server that does not
answer costs seconds, and one that hangs can never keep the command from ending. Nothing is created: with
no Dagster instance under DAGSTER_HOME yet, the daemon is reported down and there are no runs.

Health rule (the exit code): healthy when the webserver and the intake answer their ready URLs (those
`orca up` waits for), the daemon's required threads all sent a heartbeat within `MAX_HEARTBEAT_AGE_SECONDS`,
and the embedder can embed: the offline hashing embedder always can; with Ollama, every OLLAMA_HOST must
answer and have ORCA_EMBED_MODEL. Failed runs are work, not services: they are listed, not counted against
health. Ollama hosts are shown even with the hashing embedder, where they do not count.

`gather()` returns the JSON document `orca status --json` prints (its shape is in the README):
`healthy`, `problems`, `orca_home`, `dagster_home`, `services` (`webserver`, `daemon`, `intake`: each
`url`, `up`, `detail`), `embedder` (`name`, `model`, `healthy`, `detail`, `hosts`: each `url`, `up`,
`model_present`), `runs` (`by_status`, `recent`, `error`).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from orca.prepare import PROBE_TIMEOUT_SECONDS, hosts_missing_model
from orca.up import intake_url, local_url
from orca.up_record import embedder_of, read_record
from orca_core.settings import OrcaSettings
from orca_core.tags import PARTITION_TAG, SOURCE_TAG

HTTP_TIMEOUT_SECONDS = 2.0
# Opening the instance and a few queries; more only when its storage (PostgreSQL) does not answer.
INSTANCE_TIMEOUT_SECONDS = 6.0
# A daemon thread writes a heartbeat every 30 s (Dagster's default interval); one late beat is tolerated.
# (Dagster's own default tolerance is 30 minutes, far too long to tell a stopped `orca up`.)
MAX_HEARTBEAT_AGE_SECONDS = 90.0
RECENT_RUNS = 5
# The URLs `orca up` waits on before it calls a child ready (orca/up.py's child specs).
WEBSERVER_READY_PATH = "/server_info"
INTAKE_READY_PATH = "/health/live"


def _in_background(work: Callable[[], Any]) -> Callable[[float], Any]:
    """Start `work` in a daemon thread; the returned function waits until a deadline (time.monotonic) for
    its value, raising its exception, or TimeoutError when it has not finished."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except Exception as error:  # noqa: BLE001 - handed to the caller
            box["error"] = error

    thread = threading.Thread(target=target, daemon=True, name="orca-status-probe")
    thread.start()

    def result(deadline: float) -> Any:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            raise TimeoutError("no answer in time")
        if "error" in box:
            raise box["error"]
        return box["value"]

    return result


class NoInstance(Exception):
    """DAGSTER_HOME has no dagster.yaml yet: nothing has run here (and `orca status` creates nothing)."""


def _probe_url(url: str, path: str) -> dict:
    try:
        response = httpx.get(f"{url}{path}", timeout=HTTP_TIMEOUT_SECONDS)
    except httpx.TimeoutException:
        return {"url": url, "up": False, "detail": f"no answer to GET {path} within {HTTP_TIMEOUT_SECONDS:.0f}s"}
    except httpx.HTTPError as error:
        reason = "nothing listens there" if isinstance(error, httpx.ConnectError) else type(error).__name__
        return {"url": url, "up": False, "detail": f"not answering ({reason})"}
    if response.status_code != 200:
        return {"url": url, "up": False, "detail": f"GET {path} answered HTTP {response.status_code}"}
    detail = f"GET {path} answered 200"
    try:
        version = response.json().get("dagster_version")
    except (ValueError, AttributeError):
        version = None
    return {"url": url, "up": True, "detail": f"Dagster {version}" if version else detail}


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, tz=UTC).isoformat()


def _daemon(instance: Any, now: float) -> dict:
    """Up when every required daemon thread sent a heartbeat within MAX_HEARTBEAT_AGE_SECONDS."""
    heartbeats = instance.get_daemon_heartbeats()
    required = sorted(instance.get_required_daemon_types())
    silent = [name for name in required if name not in heartbeats]
    ages = {name: now - heartbeats[name].timestamp for name in required if name in heartbeats}
    stale = [name for name, age in ages.items() if age > MAX_HEARTBEAT_AGE_SECONDS]
    errors = sum(1 for name in ages if heartbeats[name].errors)
    if silent and not ages:
        detail = "no heartbeat recorded (is `orca up` running?)"
    elif silent or stale:
        newest = min(ages.values())
        detail = f"no recent heartbeat from {', '.join(silent + stale)} (newest {newest:.0f}s ago)"
    else:
        detail = f"{len(required)} daemon threads, last heartbeat {min(ages.values()):.0f}s ago"
    if errors:
        detail += f"; {errors} reported errors (see Deployment > Daemons in the webserver)"
    return {"url": None, "up": bool(required) and not silent and not stale, "detail": detail}


def _run_entry(record: Any, settings: OrcaSettings, now: float) -> dict:
    run = record.dagster_run
    start, end = record.start_time, record.end_time
    duration = None if start is None else round((end if end is not None else now) - start, 3)
    return {
        "run_id": run.run_id, "job": run.job_name, "collection": run.tags.get(PARTITION_TAG),
        "status": run.status.value, "source": run.tags.get(SOURCE_TAG),
        "created_at": record.create_timestamp.astimezone(UTC).isoformat(), "started_at": _iso(start),
        "ended_at": _iso(end), "duration_seconds": duration, "url": settings.run_url(run.run_id),
    }


def _from_instance(settings: OrcaSettings, recent: int) -> tuple[dict, dict]:
    """(the daemon's service entry, the runs) read from the instance under DAGSTER_HOME."""
    import dagster as dg

    from orca.home import open_instance

    if not (settings.dagster_home / "dagster.yaml").is_file():
        raise NoInstance(f"no Dagster instance at {settings.dagster_home} yet (has `orca up` run here?)")
    instance = open_instance(settings)
    now = time.time()
    by_status = {status.value: instance.get_runs_count(dg.RunsFilter(statuses=[status]))
                 for status in dg.DagsterRunStatus}
    runs = [_run_entry(record, settings, now) for record in instance.get_run_records(limit=recent)] if recent else []
    return _daemon(instance, now), {"by_status": by_status, "recent": runs, "error": None}


def _ollama_hosts(settings: OrcaSettings) -> list[dict]:
    """Each OLLAMA_HOST: whether it answers, and whether it has ORCA_EMBED_MODEL (None when it does not answer)."""
    answering, missing = hosts_missing_model(settings)
    return [
        {"url": host, "up": host in answering, "model_present": None if host not in answering else host not in missing}
        for host in settings.ollama_hosts
    ]


def _embedder(settings: OrcaSettings, hosts: list[dict], unknown: str | None, embedder: str) -> dict:
    """The entry of `embedder` (the one in use: orca/up_record.py's `embedder_of`); `unknown` says why the
    hosts could not be asked."""
    if embedder == "hashing":
        from orca_resources.hashing_embedder import MODEL_NAME

        why = "ORCA_EMBEDDER=hashing" if settings.embedder == "hashing" else "`orca up` fell back to it: no Ollama answered"
        return {"name": "hashing", "model": MODEL_NAME, "healthy": True,
                "detail": f"offline hashing embedder ({why}): always available", "hosts": hosts}
    down = [host["url"] for host in hosts if not host["up"]]
    lacking = [host["url"] for host in hosts if host["model_present"] is False]
    problems = ([f"could not ask Ollama: {unknown}"] if unknown else []) + (
        [f"not answering: {', '.join(down)}"] if down else []) + (
        [f"{settings.embed_model} missing on {', '.join(lacking)} (run `ollama pull {settings.embed_model}`)"]
        if lacking else [])
    return {"name": "ollama", "model": settings.embed_model, "healthy": bool(hosts) and not problems,
            "detail": "; ".join(problems) or f"Ollama with {settings.embed_model} on every host", "hosts": hosts}


def _code_server(running: dict | None) -> dict:
    """The code server of the running `orca up`: its port is in the record (a free one is chosen at start)."""
    port = running.get("code_server_port") if running else None
    if not isinstance(port, int):
        return {"url": None, "up": False, "detail": "no `orca up` runs on this ORCA_HOME"}
    url = f"grpc://127.0.0.1:{port}"
    try:
        socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT_SECONDS).close()
    except OSError as error:
        return {"url": url, "up": False, "detail": f"not listening: {error.strerror or error}"}
    return {"url": url, "up": True, "detail": "listening"}


def gather(settings: OrcaSettings, recent: int = RECENT_RUNS) -> dict:
    """The status document (see the module docstring); probes run side by side, each with a deadline."""
    started = time.monotonic()
    urls = {"webserver": (local_url("127.0.0.1", settings.webserver_port), WEBSERVER_READY_PATH),
            "intake": (intake_url(settings), INTAKE_READY_PATH)}
    probes = {name: _in_background(lambda where=where: _probe_url(*where)) for name, where in urls.items()}
    instance = _in_background(lambda: _from_instance(settings, recent))
    ollama = _in_background(lambda: _ollama_hosts(settings))

    http_deadline = started + HTTP_TIMEOUT_SECONDS + 1.0
    services: dict[str, dict] = {}
    for name, probe in probes.items():
        try:
            services[name] = probe(http_deadline)
        except Exception as error:  # noqa: BLE001 - a probe's failure is a status to report
            services[name] = {"url": urls[name][0], "up": False, "detail": str(error)}
    try:
        services["daemon"], runs = instance(started + INSTANCE_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001
        if isinstance(error, TimeoutError):
            error = TimeoutError(f"no answer from its storage within {INSTANCE_TIMEOUT_SECONDS:.0f}s")
        detail = str(error) if isinstance(error, NoInstance) else f"cannot read the instance: {error}"
        services["daemon"] = {"url": None, "up": False, "detail": detail}
        runs = {"by_status": {}, "recent": [], "error": str(error)}
    try:  # hosts_missing_model asks one host after the other, each within its probe timeout
        hosts, unknown = ollama(started + len(settings.ollama_hosts) * 2 * PROBE_TIMEOUT_SECONDS + 1.0), None
    except Exception as error:  # noqa: BLE001
        hosts, unknown = [], str(error)
    running = read_record(settings)
    model = _embedder(settings, hosts, unknown, embedder_of(running, settings))
    services["code_server"] = _code_server(running)

    services = {name: services[name] for name in ("webserver", "daemon", "code_server", "intake")}
    problems = [f"{name}: {entry['detail']}" for name, entry in services.items() if not entry["up"]]
    if not model["healthy"]:
        problems.append(f"embedder: {model['detail']}")
    return {
        "healthy": not problems, "problems": problems,
        "orca_home": str(settings.home), "dagster_home": str(settings.dagster_home),
        "services": services, "embedder": model, "runs": runs,
    }
