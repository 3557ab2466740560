"""A deadline for a request's headers, which uvicorn does not bound by itself.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but a client that sends its request
line and headers a byte at a time holds the connection for as long as it likes. Each connection here gets
`seconds` from its first byte (or from its opening) to finish the headers of its next request; past that it
is answered 408 and closed. The body has its own deadline (orca_intake/limits.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\nContent-Length: 35\r\n\r\nthe request headers came too slowly"
)


def header_deadline_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's own HTTP protocol (httptools or h11, as it would pick) with a deadline on request headers."""

    class HeaderDeadlineProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        header_seconds = seconds
        _header_timer: asyncio.TimerHandle | None = None
        _armed_for: Any = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_deadline()

        def data_received(self, data: bytes) -> None:
            if self._header_timer is None and self._waiting_for_headers():
                self._arm_header_deadline()
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            super().connection_lost(exc)

        def _waiting_for_headers(self) -> bool:
            # uvicorn makes a request cycle when a request's headers are complete (both of its parsers).
            return self.cycle is None or self.cycle.response_complete

        def _arm_header_deadline(self) -> None:
            self._armed_for = self.cycle
            self._header_timer = self.loop.call_later(self.header_seconds, self._header_deadline_passed)

        def _header_deadline_passed(self) -> None:
            self._header_timer = None
            if self.cycle is not self._armed_for or not self._waiting_for_headers():
                return  # headers arrived in time; the next request's first bytes arm a new deadline
            if not self.transport.is_closing():
                self.transport.write(TIMEOUT_ANSWER)
                self.transport.close()

    return HeaderDeadlineProtocol
