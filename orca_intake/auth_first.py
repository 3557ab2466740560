"""The `/v1` caller is authenticated (and its rate counted) from the request's headers before its body is read.

FastAPI reads and parses a route's typed JSON body before it solves the route's dependencies, so a token
check written as a dependency runs after the body was parsed: 32 MiB of `[[],[],...]` without a token cost
seconds and a gigabyte before the 401. This middleware runs `authenticate` on the headers alone and answers
401/403 without reading a byte of the body; the route's `authenticate` dependency then finds the caller here.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from orca_intake.auth import PRINCIPAL_KEY, identify
from orca_intake.errors import IntakeError, error_response

PROTECTED_PREFIX = "/v1"


class AuthenticateFirst:
    """Checks the token of every `/v1` request before the route reads its body."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            principal = await identify(request)
            request.app.state.rate_limiter.check(principal, request)
        except IntakeError as error:
            # Closing the connection: the client may still be sending a body nobody will read.
            headers = {**(error.headers or {}), "Connection": "close"}
            response = error_response(error.status_code, error.code, error.message, error.details, headers)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)

