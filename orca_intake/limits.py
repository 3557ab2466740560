"""The request body limit, enforced before any parsing: on the declared Content-Length and while streaming.

FastAPI's own `max_body_size` answers some over-limit requests in plain text; this middleware answers every
one with the intake's JSON error body.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orca_intake.errors import BodyTooLarge, error_response


class BodySizeLimit:
    """Refuses bodies larger than `max_bytes` with 413, without reading (or buffering) them."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

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

        async def counted_receive() -> Message:
            # Chunked bodies have no Content-Length: count while they stream and stop at the limit.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted_receive, send)
