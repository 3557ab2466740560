"""Health probes and Prometheus metrics.

`/health`, `/health/live` and `/health/ready` are open to anyone; with tokens configured they are terse
(statuses, no paths, digests or error texts) unless the caller presents a token. `/health/detailed` and
`/metrics` tell more (paths, the model's digest, collection names): with tokens configured they need one, or,
with ORCA_INTAKE_OPERATIONS_ACCESS=terse (for scrapers that cannot send one), answer anyone without those details.

`/health` says what `/health/ready` says in one line of text, for a person or a shell script: `ok`, or
`degraded: ` and each failing check. `/health/ready` checks what a request needs: the queue store accepts
writes, the inbox is writable (with an object store, ORCA_STORAGE_URL, the `storage` check: the store
answers a listing of its prefix instead), the embedder answers with its model present, and the Dagster
instance's storage answers. Each check runs in a worker thread under a timeout, so a hung dependency makes
the probe fail instead of hang.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Literal

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from orca_core.embedder import Embedder
from orca_core.s3_objects import Objects
from orca_core.settings import OrcaSettings
from orca_intake.auth import identify
from orca_intake.dependencies import EmbedderDep, MetricsDep, QueueDep, SettingsDep
from orca_intake.errors import ErrorBody, IntakeError, error_response
from orca_resources.intake_queue import IntakeQueue
from orca_resources.ollama_client import OllamaClient

router = APIRouter(tags=["operations"])

COLLECTION_FAMILY = b"orca_collection_"
CHECK_TIMEOUT_SECONDS = 5.0
DAGSTER_TIMEOUT_SECONDS = 10.0  # the first open of an instance may migrate its SQLite storage


class CheckResult(BaseModel):
    """One dependency: `ok` or `failing`, how long the check took, and what was found."""

    status: Literal["ok", "failing"]
    latency_ms: float
    detail: str | None = None  # left out for callers who may not see it


class HealthReport(BaseModel):
    """Every dependency's check; `status` is `ok` only when all pass."""

    status: Literal["ok", "degraded"]
    checks: dict[str, CheckResult]


class Liveness(BaseModel):
    """The process answers."""

    status: Literal["ok"] = "ok"


def check_queue(queue: IntakeQueue) -> str:
    queue.ping()
    return "writable"


def check_inbox(settings: OrcaSettings) -> str:
    settings.layout.inbox_root.mkdir(parents=True, exist_ok=True)
    probe = settings.layout.inbox_root / f".ready-{uuid.uuid4().hex}.tmp"  # hidden and temporary: no scanner reads it
    try:
        probe.write_bytes(b"ok")
    finally:
        probe.unlink(missing_ok=True)
    return f"writable ({settings.layout.inbox_root})"


def check_storage(request: Request, settings: OrcaSettings) -> str:
    storage = settings.storage
    objects = storage.objects
    state = request.app.state
    if state.storage_probe is None:
        # Apart from the storage's own client, which retries: a probe must see the store as it is now, at once.
        import boto3
        from botocore.config import Config

        config = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=CHECK_TIMEOUT_SECONDS)
        state.storage_probe = boto3.session.Session().client("s3", config=config)
    Objects(state.storage_probe, objects.bucket, objects.prefix).has_any(objects.key())
    return f"answers ({storage.url})"


def check_embedder(embedder: Embedder) -> str:
    if isinstance(embedder, OllamaClient):
        # The app's client caches model_info() forever; a fresh client without retries sees the server now.
        with OllamaClient(embedder.config.probe(CHECK_TIMEOUT_SECONDS, connect_seconds=2.0)) as probe:
            info = probe.model_info()
    else:
        info = embedder.model_info()
    return f"{info.name} ({info.dimensions} dimensions, digest {info.digest[:19]})"


def check_dagster(request: Request, settings: OrcaSettings) -> str:
    home = settings.dagster_home
    if not home.is_dir():
        raise RuntimeError(f"DAGSTER_HOME {home} does not exist yet (start `orca up` or the daemon once)")
    state = request.app.state
    # A probe abandoned on timeout may still hold the lock: give up rather than queue behind it.
    if not state.dagster_lock.acquire(timeout=DAGSTER_TIMEOUT_SECONDS):
        raise RuntimeError("the Dagster instance is still being opened by an earlier probe")
    try:
        if state.dagster_instance is None:
            import dagster as dg

            # What DagsterInstance.get() does with DAGSTER_HOME, for the home these settings name.
            state.dagster_instance = dg.DagsterInstance.from_config(str(home))
        instance = state.dagster_instance
    finally:
        state.dagster_lock.release()
    instance.get_run_records(limit=1)
    return f"storage answers ({home})"


async def _timed(check: Callable[[], str], timeout: float) -> CheckResult:
    started = time.perf_counter()
    try:
        with anyio.fail_after(timeout):
            detail = await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
        status = "ok"
    except TimeoutError:
        status, detail = "failing", f"no answer within {timeout:g}s"
    except Exception as error:  # a probe reports any failure of its dependency, whatever its type
        status, detail = "failing", f"{type(error).__name__}: {error}"
    return CheckResult(status=status, latency_ms=round((time.perf_counter() - started) * 1000, 2), detail=detail)


async def run_checks(
    request: Request, settings: OrcaSettings, queue: IntakeQueue, embedder: Embedder
) -> HealthReport:
    checks: dict[str, tuple[Callable[[], str], float]] = {"queue": (lambda: check_queue(queue), CHECK_TIMEOUT_SECONDS)}
    if settings.storage.remote:  # the documents go to the object store; ORCA_HOME's inbox is not used
        checks["storage"] = (lambda: check_storage(request, settings), CHECK_TIMEOUT_SECONDS)
    else:
        checks["inbox"] = (lambda: check_inbox(settings), CHECK_TIMEOUT_SECONDS)
    checks["embedder"] = (lambda: check_embedder(embedder), CHECK_TIMEOUT_SECONDS * 2)
    checks["dagster"] = (lambda: check_dagster(request, settings), DAGSTER_TIMEOUT_SECONDS)
    results: dict[str, CheckResult] = {}

    async def run(name: str, check: Callable[[], str], timeout: float) -> None:
        results[name] = await _timed(check, timeout)

    async with anyio.create_task_group() as group:
        for name, (check, timeout) in checks.items():
            group.start_soon(run, name, check, timeout)
    ordered = {name: results[name] for name in checks}
    healthy = all(result.status == "ok" for result in ordered.values())
    return HealthReport(status="ok" if healthy else "degraded", checks=ordered)


async def _sees_details(request: Request, settings: OrcaSettings, *, required: bool) -> bool:
    """True when the caller may see details: no tokens are configured, or it presented a valid one.

    With `required` (the detailed endpoints in `token` mode), a caller without one gets the 401 instead."""
    if not settings.intake_auth_enabled:
        return True
    try:
        await identify(request)
        return True
    except IntakeError:
        if required and settings.intake_operations_access == "token":
            raise
        return False


def _terse(report: HealthReport) -> HealthReport:
    checks = {name: check.model_copy(update={"detail": None}) for name, check in report.checks.items()}
    return report.model_copy(update={"checks": checks})


@router.get(
    "/health",
    summary="One-line health summary",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {"example": "ok"}}, "description": "Every readiness check passes."},
        503: {
            "content": {"text/plain": {"example": "degraded: embedder: ConnectError: connection refused"}},
            "description": "`degraded: ` and each failing check (with its reason when the caller may see it).",
        },
    },
)
async def summary(request: Request, settings: SettingsDep, queue: QueueDep, embedder: EmbedderDep) -> PlainTextResponse:
    """The readiness checks in one line of text: `ok` (200) or `degraded: <check>: <reason>; ...` (503)."""
    report = await run_checks(request, settings, queue, embedder)
    if not await _sees_details(request, settings, required=False):
        report = _terse(report)
    failing = [
        f"{name}: {check.detail}" if check.detail else name
        for name, check in report.checks.items()
        if check.status != "ok"
    ]
    if not failing:
        return PlainTextResponse("ok\n")
    line = " ".join(("degraded: " + "; ".join(failing)).split())  # one line, whatever the errors said
    return PlainTextResponse(line + "\n", status_code=503)


@router.get("/health/live", summary="Liveness")
async def live() -> Liveness:
    """200 whenever the process serves requests."""
    return Liveness()


@router.get(
    "/health/ready",
    summary="Readiness",
    responses={503: {"model": ErrorBody, "description": "A dependency is failing; `details` has every check."}},
)
async def ready(request: Request, settings: SettingsDep, queue: QueueDep, embedder: EmbedderDep) -> HealthReport:
    """200 when queue, inbox (or object store), embedder and Dagster storage all answer; 503 naming the failing
    ones otherwise."""
    report = await run_checks(request, settings, queue, embedder)
    if not await _sees_details(request, settings, required=False):
        report = _terse(report)
    failing = {name: check.detail for name, check in report.checks.items() if check.status != "ok"}
    if failing:
        message = "not ready: " + "; ".join(f"{name}: {detail}" if detail else name for name, detail in failing.items())
        return error_response(503, "not_ready", message, report.model_dump(mode="json"))
    return report


@router.get("/health/detailed", summary="Every dependency's status and latency")
async def detailed(request: Request, settings: SettingsDep, queue: QueueDep, embedder: EmbedderDep) -> HealthReport:
    """200: each dependency with its status, latency in milliseconds and detail (see the module docstring)."""
    report = await run_checks(request, settings, queue, embedder)
    return report if await _sees_details(request, settings, required=True) else _terse(report)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."}},
)
async def metrics(request: Request, settings: SettingsDep, metrics: MetricsDep) -> Response:
    """Requests by route and status, latency histogram, queue depth by status, documents accepted, runs."""
    text = await anyio.to_thread.run_sync(generate_latest, metrics.registry)  # it may read the Dagster instance
    if not await _sees_details(request, settings, required=True):
        # Collection names are what a stranger should not learn: drop every family labelled by collection.
        text = b"".join(line for line in text.splitlines(keepends=True) if COLLECTION_FAMILY not in line)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
