"""Per-caller request rates on `/v1`: `429` with `Retry-After` once a caller is over ORCA_INTAKE_RATE_LIMIT.

A caller is its token (a digest of it, never the token itself), its JWT subject, or, without tokens, its
address. The limits library keeps a moving window per caller in this process's memory: each intake replica
counts on its own, so behind a load balancer a caller gets up to the limit from each replica.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request

from orca_core.settings import RATE_LIMIT_OFF
from orca_intake.auth import Principal
from orca_intake.errors import IntakeError


class TooManyRequests(IntakeError):
    """The caller sent more requests than ORCA_INTAKE_RATE_LIMIT allows (429, with `Retry-After`)."""

    status_code, code = 429, "rate_limited"


class RateLimiter:
    """Counts each caller's requests against the configured limits (`10/second;600/minute`)."""

    def __init__(self, spec: str):
        self.items: list[RateLimitItem] = [] if spec.strip().lower() in RATE_LIMIT_OFF else parse_many(spec)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, principal: Principal, request: Request) -> None:
        """TooManyRequests when this request puts the caller over a limit."""
        if not self.items:
            return
        caller = _caller(principal, request)
        for item in self.items:
            if not self.limiter.hit(item, caller):
                stats = self.limiter.get_window_stats(item, caller)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                raise TooManyRequests(
                    f"more than {item} requests from this caller; try again in {wait} s",
                    headers={"Retry-After": str(wait)},
                )


def _caller(principal: Principal, request: Request) -> str:
    if principal.subject:  # a static token's digest or a JWT's subject
        return f"{principal.method}:{principal.subject}"
    return "address:" + (request.client.host if request.client else "")
