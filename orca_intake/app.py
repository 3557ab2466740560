"""The intake's FastAPI application: `create_app(settings)`, served by `python -m orca_intake`.

Also servable as `uvicorn orca_intake.app:create_app --factory`; then nothing stops a non-loopback bind,
but without tokens `/v1` still answers 403 to clients that are not on this machine.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

import jwt
from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware

from orca_core.settings import OrcaSettings
from orca_intake.auth import authenticate
from orca_intake.auth_first import AuthenticateFirst
from orca_intake.browser_guard import BrowserGuard
from orca_intake.docs import OPENAPI_TAGS, install_docs
from orca_intake.errors import install_error_handlers
from orca_intake.group_commit import DocumentWriter
from orca_intake.limits import BodySizeLimit
from orca_intake.metrics import IntakeMetrics, MetricsMiddleware
from orca_intake.rate_limit import RateLimiter
from orca_intake.routers import collections, documents, embeddings, health, job_control, jobs, models, search
from orca_intake.run_metrics import shared_instance
from orca_resources.embedders import build_embedder
from orca_resources.intake_queue import IntakeQueue

DESCRIPTION = """\
Send documents to Orca and follow what becomes of them.

Documents posted here are written into `$ORCA_HOME/inbox/<collection>/` (or `inbox/<collection>/` on the
object store `ORCA_STORAGE_URL` names) and a request is queued; Dagster
sensors turn requests into runs that update the collection's embedding index. Every error is JSON:
`{"error": {"code": "...", "message": "..."}}`. When `ORCA_INTAKE_TOKENS` (or a JWT setting) is set, every
`/v1` endpoint needs `Authorization: Bearer <token>`, and so do `/health/detailed` and `/metrics` unless
`ORCA_INTAKE_OPERATIONS_ACCESS=terse`; `/health`, `/health/live`, `/health/ready` and these pages are always open.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the queue store, the document writer, the embedder and the JWKS client for the app's life."""
    settings: OrcaSettings = app.state.settings
    app.state.queue = await run_in_threadpool(IntakeQueue, settings.intake_db_url)
    # Stores posted documents in groups: one flush and one queue commit for all concurrent posts.
    app.state.writer = DocumentWriter()
    app.state.embedder = build_embedder(settings)
    # PyJWKClient caches the key set and refetches it when a token names an unknown key id.
    jwks_url = settings.intake_jwks_url
    app.state.jwks_client = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=5) if jwks_url else None
    try:
        yield
    finally:
        close = getattr(app.state.embedder, "close", None)
        if callable(close):
            close()
        # Uvicorn has answered (or dropped) every request by now: store whatever is pending, then close.
        await run_in_threadpool(app.state.writer.close)
        app.state.queue.close()
        if app.state.dagster_instance is not None:
            app.state.dagster_instance.dispose()


def _version() -> str:
    try:
        return version("orca")
    except PackageNotFoundError:
        return "0"


def _document_upload_schemas(app: FastAPI) -> None:
    """Add `DocumentBatch` to the OpenAPI components: its endpoint parses the body itself (JSON or multipart)."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            extra = documents.DocumentBatch.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(extra.pop("$defs", {}))
            components["DocumentBatch"] = extra
        return app.openapi_schema

    app.openapi = openapi


def create_app(settings: OrcaSettings | None = None) -> FastAPI:
    """Build the intake; `settings` defaults to the environment's."""
    settings = settings or OrcaSettings.from_env()
    app = FastAPI(
        title="Orca intake", version=_version(), description=DESCRIPTION, lifespan=lifespan,
        openapi_tags=OPENAPI_TAGS, docs_url=None, redoc_url=None,  # install_docs serves them without a CDN
    )
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(settings.intake_rate_limit)
    app.state.dagster_instance = None
    app.state.dagster_lock = threading.Lock()
    app.state.storage_probe = None  # the health probe's S3 client, with an object store (routers/health.py)
    app.state.metrics = IntakeMetrics(
        lambda: getattr(app.state, "queue", None),
        instance=lambda: shared_instance(app.state, settings.dagster_home),
    )
    install_error_handlers(app)
    # add_middleware wraps what is already there: metrics outermost, so they also count 413 answers.
    app.add_middleware(BodySizeLimit, max_bytes=settings.intake_max_body_bytes, body_seconds=settings.intake_body_timeout)
    app.add_middleware(AuthenticateFirst)  # before the body limit: an unknown caller's body is never read
    if not settings.intake_auth_enabled:
        app.add_middleware(BrowserGuard)  # outside the caller check: a foreign page's request goes no further
    elif settings.intake_cors_origins:
        # Outside the caller check too: a preflight carries no token and is answered here.
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.intake_cors_origins), allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"], max_age=600,
        )
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    # The /v1 routers carry their prefix themselves, so route templates in metrics include it.
    protected = [Depends(authenticate)]
    routers = (documents, jobs, job_control, collections, search, embeddings, models)
    for router in (module.router for module in routers):
        app.include_router(router, dependencies=protected)
    app.include_router(health.router)
    install_docs(app)
    _document_upload_schemas(app)
    return app
