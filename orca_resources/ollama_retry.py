"""How hard the Ollama client tries: the retry policy, one circuit breaker per host, and Retry-After.

`OllamaHosts` applies these to every call; they hold no connection, so they are tested and reasoned about
on their own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts are 1 + max_retries; delays use full jitter up to backoff_max."""

    max_retries: int = 4
    backoff_initial: float = 0.5
    backoff_max: float = 20.0
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0

    def backoff(self, attempts: int, rng: random.Random) -> float:
        """The delay before attempt `attempts + 1`: uniform up to an exponentially growing, capped ceiling."""
        ceiling = min(self.backoff_max, self.backoff_initial * 2 ** (attempts - 1))
        return rng.uniform(0, ceiling)


@dataclass
class CircuitBreaker:
    """One host's breaker: open after repeated failures, then half-open (one probe) after the cooldown."""

    failures: int = 0
    opened_at: float | None = None
    probing: bool = False
    last_cause: str = ""

    def allows(self, now: float, cooldown: float) -> bool:
        """Whether a call may go to this host at `now`: closed, or open long enough and not already probed."""
        if self.opened_at is None:
            return True
        return now - self.opened_at >= cooldown and not self.probing


def parse_retry_after(value: str | None, cap: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), capped so a server can't stall us."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return min(max(seconds, 0.0), cap)
