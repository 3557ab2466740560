"""JSON request bodies parsed with bounds and off the event loop.

`json.loads` of 32 MiB of `[[],[],...]` builds millions of lists (a gigabyte) and holds the event loop for
seconds. Before parsing, the body's shape is measured with the `re` module in C: strings are blanked out,
then arrays and objects are counted and their nesting measured; a body over the bounds is refused (413 or
422) without being parsed. The parse itself runs in a worker thread, so other requests are served meanwhile.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from orca_intake.errors import IntakeError, InvalidInput, PayloadTooLarge, error_response

MAX_DEPTH = 64
MAX_CONTAINERS = 10_000  # arrays and objects in a typed request body (search, jobs, embeddings)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # unrolled: linear and fast
_BRACKETS = re.compile(rb"[\[\]{}]")


def check_shape(body: bytes, *, max_containers: int = MAX_CONTAINERS, max_depth: int = MAX_DEPTH) -> None:
    """PayloadTooLarge for more than `max_containers` arrays and objects, InvalidInput for deeper nesting."""
    shape = _STRING.sub(b'""', body)  # brackets inside strings are text, not structure
    containers = shape.count(b"[") + shape.count(b"{")
    if containers > max_containers:
        raise PayloadTooLarge(
            f"the JSON body holds {containers} arrays and objects; the limit is {max_containers}", code="json_too_large"
        )
    depth = 0
    for bracket in _BRACKETS.finditer(shape):  # at most 2 * max_containers of them
        depth += 1 if bracket.group() in (b"[", b"{") else -1
        if depth > max_depth:
            raise InvalidInput(f"the JSON body is nested deeper than {max_depth} levels", code="invalid_json")


def parse_json(body: bytes, *, max_containers: int = MAX_CONTAINERS, max_depth: int = MAX_DEPTH) -> Any:
    """The body's JSON value once its shape is within bounds; json.JSONDecodeError when it is not JSON."""
    check_shape(body, max_containers=max_containers, max_depth=max_depth)
    return json.loads(body)


def media_type(request: Request) -> str:
    """The request's media type, lower case and without parameters (`application/json`), or ""."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def is_json(kind: str) -> bool:
    return kind == "application/json" or kind.endswith("+json")


class BoundedJSONRoute(APIRoute):
    """A route whose typed JSON body is parsed by `parse_json` in a worker thread, not by FastAPI on the loop.

    FastAPI reads `request.json()`, which returns what was parsed here; a body that is not JSON is left to
    FastAPI, which answers it as usual.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            if is_json(media_type(request)):
                body = await request.body()
                if body:
                    try:
                        request._json = await run_in_threadpool(parse_json, body)  # Starlette's cached JSON
                    except IntakeError as error:
                        return error_response(error.status_code, error.code, error.message, error.details)
                    except (ValueError, RecursionError):
                        pass  # not JSON: FastAPI's own parsing reports it
            return await handler(request)

        return bounded
