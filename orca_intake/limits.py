"""The request body limit, enforced before any parsing: on the declared Content-Length and while streaming.

FastAPI's own `max_body_size` answers some over-limit requests in plain text; this middleware answers every
one with the intake's JSON error body.
"""

from __future__ import annotations

import time

import anyio
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orca_intake.errors import BodyTooLarge, BodyTooSlow, error_response


class BodySizeLimit:
    """Refuses bodies larger than `max_bytes` with 413, without reading (or buffering) them."""

    def __init__(self, app: ASGIApp, max_bytes: int, body_seconds: float = 60.0):
        self.app = app
        self.max_bytes = max_bytes
        self.body_seconds = body_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            response = error_response(
                413,
                "payload_too_large",
                f"the request body ({int(declared)} bytes) is larger than the limit of {self.max_bytes} bytes",
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        received = 0
        deadline = time.monotonic() + self.body_seconds
        complete = False

        async def counted_receive() -> Message:
            # Chunked bodies have no Content-Length: count while they stream and stop at the limit.
            nonlocal received, complete
            if complete:  # after the body, receive() only waits for a disconnect: no deadline then
                return await receive()
            try:
                with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow(self.body_seconds) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, counted_receive, send)
