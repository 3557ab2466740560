"""What a browser may do with an intake that has no tokens: nothing, unless the page is on this machine too.

Without tokens the intake trusts any caller on this machine. A web page anywhere can make the user's browser
send it requests: a form POST to `http://127.0.0.1:8000` goes out without a CORS preflight, and a name the
attacker controls can be re-pointed at 127.0.0.1 (DNS rebinding), after which the page may even read the
answers. So, without tokens, every request must name a loopback host in `Host`, and a request a browser marks
as coming from another site (`Origin` not on this machine, or `Sec-Fetch-Site: cross-site`) is refused.

With tokens, a browser cannot act for the user without the token; `ORCA_INTAKE_CORS_ORIGINS` lists the pages
that may call the intake (Starlette's CORS middleware answers their preflights), and no other origin gets CORS
headers.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from orca_intake.auth import is_loopback
from orca_intake.errors import error_response


def _host_name(value: str) -> str:
    """`127.0.0.1:8000` -> `127.0.0.1`, `[::1]:8000` -> `::1`, `localhost` -> `localhost`."""
    value = value.strip()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def refusal(headers: Headers) -> str | None:
    """Why a token-less intake refuses a request with these headers, or None."""
    host = headers.get("host", "")
    if not is_loopback(_host_name(host)):
        return f"Host {host!r} is not this machine (a token-less intake answers loopback names only)"
    origin = headers.get("origin")
    if origin is not None and origin != "null" and not is_loopback(urlsplit(origin).hostname or ""):
        return f"requests from pages of {origin} are refused (a token-less intake serves this machine only)"
    if origin == "null" or headers.get("sec-fetch-site") == "cross-site":
        return "cross-site requests are refused (a token-less intake serves this machine only)"
    return None


class BrowserGuard:
    """Refuses, with 403, requests a token-less intake must not serve (see the module docstring)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (reason := refusal(Headers(scope=scope))) is not None:
            response = error_response(403, "cross_site_refused", reason, headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
