"""Domain errors and the exception handlers that turn every failure into `{"error": {"code", "message"}}`.

Input problems become 4xx answers here; the catch-all handler exists for real bugs only, logs them and
counts them (`orca_intake_internal_errors_total`), and the tests check that no malformed input reaches it.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from orca_core.search import IndexNotFound, IndexUnreadable, ModelMismatch
from orca_resources.errors import ContextLengthExceeded, EmbedderError
from orca_resources.inbox import InboxConflict

log = logging.getLogger("orca_intake")


class ErrorDetail(BaseModel):
    """What went wrong: a stable machine-readable code and a message for people."""

    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


class IntakeError(Exception):
    """Base of the intake's domain errors; subclasses fix the HTTP status and the error code."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.details = details
        self.headers = headers


class InvalidInput(IntakeError):
    """The request is well-formed but its content breaks a rule (422)."""

    status_code, code = 422, "invalid_input"


class Forbidden(IntakeError):
    """The caller may not use this intake at all (403), e.g. a remote client when no token is configured."""

    status_code, code = 403, "forbidden"


class NotFound(IntakeError):
    """The collection, document, request or model does not exist (404)."""

    status_code, code = 404, "not_found"


class Conflict(IntakeError):
    """The request cannot be done in the resource's current state (409), e.g. canceling a finished job."""

    status_code, code = 409, "conflict"


class PayloadTooLarge(IntakeError):
    """Too many documents, or a document or body over its limit (413)."""

    status_code, code = 413, "payload_too_large"


class UnsupportedMediaType(IntakeError):
    """A body that is neither JSON nor a multipart form (415)."""

    status_code, code = 415, "unsupported_media_type"


class Unauthorized(IntakeError):
    """A missing, malformed, wrong or expired token (401, with `WWW-Authenticate: Bearer`)."""

    status_code, code = 401, "unauthorized"


class ServiceUnavailable(IntakeError):
    """A dependency (store, inbox, JWKS) cannot serve the request right now (503)."""

    status_code, code = 503, "service_unavailable"


class BodyTooLarge(StarletteHTTPException):
    """Raised while a body streams in past the limit; an HTTPException so FastAPI's body parsing passes it on."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")


class BodyTooSlow(StarletteHTTPException):
    """Raised when a body has not arrived within its time: a slow sender must not hold a slot for long."""

    def __init__(self, seconds: float):
        super().__init__(408, f"the request body did not arrive within {seconds:g} seconds")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": HTTPStatus(status).phrase} for status in (401, 413, 422, 429)
}
# A JSON body that is not even text (e.g. invalid UTF-8) is refused by FastAPI's body parsing with a 400.
JSON_BODY_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES, 400: {"model": ErrorBody, "description": "The body could not be parsed (not UTF-8 JSON)."}
}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


def _http_code(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return f"http_{status}"


async def _intake_error(_: Request, exc: IntakeError) -> JSONResponse:
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 413:
        return error_response(413, "payload_too_large", message, headers={"Connection": "close"})
    if exc.status_code == 408:
        return error_response(408, "body_too_slow", message, headers={"Connection": "close"})
    return error_response(exc.status_code, _http_code(exc.status_code), message, headers=exc.headers)


def _location(loc: tuple | list) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "body"


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    # Only location, message and type: echoing `input` could send megabytes of a rejected text back.
    details = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": error.get("type"),
        }
        for error in exc.errors()
    ]
    summary = "; ".join(f"{_location(d['loc'])}: {d['msg']}" for d in details[:5]) or "invalid request"
    if len(details) > 5:
        summary += f" (and {len(details) - 5} more)"
    return error_response(422, "validation_error", summary, details)


async def _index_not_found(_: Request, exc: IndexNotFound) -> JSONResponse:
    return error_response(404, "index_not_found", str(exc))


async def _index_unreadable(_: Request, exc: IndexUnreadable) -> JSONResponse:
    log.error("unreadable index: %s", exc)
    return error_response(503, "index_unreadable", str(exc))


async def _model_mismatch(_: Request, exc: ModelMismatch) -> JSONResponse:
    return error_response(409, "model_mismatch", str(exc))


async def _inbox_conflict(_: Request, exc: InboxConflict) -> JSONResponse:
    return error_response(409, "document_conflict", str(exc))


async def _embedder_error(_: Request, exc: EmbedderError) -> JSONResponse:
    if isinstance(exc, ContextLengthExceeded):
        return error_response(422, "input_too_long", f"an input is longer than the model's context: {exc}")
    return error_response(
        503, "embedder_unavailable", f"the embedder is unavailable: {exc}", headers={"Retry-After": "10"}
    )


async def _queue_error(_: Request, exc: SQLAlchemyError) -> JSONResponse:
    log.error("intake queue store failed: %s", exc)
    return error_response(503, "queue_unavailable", "the intake queue store is unavailable; try again shortly")


async def _store_error(_: Request, exc: Exception) -> JSONResponse:
    from orca_core.s3_objects import error_code

    log.error("object store failed: %s", exc)
    reason = error_code(exc) or type(exc).__name__
    return error_response(503, "storage_unavailable", f"the object store is unavailable ({reason}); try again shortly")


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler on `app` (whose `state.metrics` counts the internal errors, and whose
    `state.settings` say whether an object store is used)."""

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        app.state.metrics.internal_errors.inc()
        return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")

    app.add_exception_handler(IntakeError, _intake_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(IndexNotFound, _index_not_found)
    app.add_exception_handler(IndexUnreadable, _index_unreadable)
    app.add_exception_handler(ModelMismatch, _model_mismatch)
    app.add_exception_handler(InboxConflict, _inbox_conflict)
    app.add_exception_handler(EmbedderError, _embedder_error)
    app.add_exception_handler(SQLAlchemyError, _queue_error)
    if app.state.settings.storage.remote:  # botocore is imported only where an object store is used
        from botocore.exceptions import BotoCoreError, ClientError

        app.add_exception_handler(BotoCoreError, _store_error)
        app.add_exception_handler(ClientError, _store_error)
    app.add_exception_handler(Exception, unexpected)
