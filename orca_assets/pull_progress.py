"""Turning `/api/pull`'s NDJSON progress lines into a readable, throttled run log.

A multi-gigabyte pull sends thousands of lines; logging each would bury the run's log. Per layer (digest),
a line is logged when its percentage crosses the next `every_percent` step, when `every_seconds` passed
since that layer's last log line, and when it completes. Status lines without a digest ("pulling
manifest", "verifying sha256 digest", "writing manifest", "success") are logged once each, as they change.

A layer's line ends in its exact byte counts, in a fixed shape that `layer_progress` reads back: the command
line draws its byte progress bar from these lines as it follows the run (orca/prepare.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple


def human_bytes(count: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


_LAYER_LINE = re.compile(
    r"^(?P<host>\S+): (?P<label>.*?\b(?P<digest>[0-9a-f]{12})\b.*?): \d+% \(.*; (?P<completed>\d+)/(?P<total>\d+) bytes\)$"
)


class LayerProgress(NamedTuple):
    """One layer's progress as a logged line tells it."""

    host: str
    digest: str  # its first 12 hex digits
    completed: int
    total: int


def layer_line(host: str, label: str, completed: int, total: int) -> str:
    """`http://h:11434: pulling 970aa74c0a90: 45% (117.7 MiB of 261.6 MiB; 123456789/274290656 bytes)`."""
    percent = 100.0 * completed / total
    return f"{host}: {label}: {percent:.0f}% ({human_bytes(completed)} of {human_bytes(total)}; {completed}/{total} bytes)"


def layer_progress(message: str) -> LayerProgress | None:
    """What a line made by `layer_line` tells; None for any other line."""
    if (match := _LAYER_LINE.match(message)) is None:
        return None
    return LayerProgress(match["host"], match["digest"], int(match["completed"]), int(match["total"]))


@dataclass
class _Layer:
    total: int
    completed: int = 0
    step: int = -1
    logged_at: float | None = None
    done: bool = False


class PullProgress:
    """Callable handed to the streaming pull: counts lines and logs throttled progress through `log`."""

    def __init__(
        self,
        log: Callable[[str], None],
        host: str,
        *,
        every_percent: int = 10,
        every_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.log = log
        self.host = host
        self.every_percent = max(1, every_percent)
        self.every_seconds = every_seconds
        self.clock = clock
        self.lines = 0
        self.logged = 0
        self.layers: dict[str, _Layer] = {}
        self._status = ""

    @property
    def total_bytes(self) -> int:
        """The size of every layer the server announced."""
        return sum(layer.total for layer in self.layers.values())

    def __call__(self, line: dict) -> None:
        self.lines += 1
        status = str(line.get("status", ""))
        digest, total, completed = line.get("digest"), line.get("total"), line.get("completed") or 0
        if isinstance(digest, str) and isinstance(total, int) and total > 0:
            self._layer(status, digest, total, int(completed))
        elif status and status != self._status:
            self._emit(f"{self.host}: {status}")
        self._status = status

    def _layer(self, status: str, digest: str, total: int, completed: int) -> None:
        layer = self.layers.setdefault(digest, _Layer(total))
        layer.total, layer.completed = total, min(completed, total)
        step = int(100.0 * layer.completed / total // self.every_percent)
        now = self.clock()
        finished = layer.completed >= total
        due = (
            layer.logged_at is None
            or step > layer.step
            or (finished and not layer.done)
            or now - layer.logged_at >= self.every_seconds
        )
        if not due:
            return
        layer.step, layer.logged_at, layer.done = step, now, finished
        short = digest.removeprefix("sha256:")[:12]
        label = status if short in status else f"{status} {short}"
        self._emit(layer_line(self.host, label, layer.completed, total))

    def _emit(self, message: str) -> None:
        self.logged += 1
        self.log(message)
