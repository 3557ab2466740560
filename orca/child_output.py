"""Where the output of `orca up`'s children goes: a rotated log file per child, the terminal with `-v`.

A thread per child reads its pipe (stdout and stderr together) line by line as fast as the child writes,
so a chatty child never blocks on a full pipe; each line goes to `$ORCA_HOME/logs/<child>.log` (rotated by
size), to the terminal when asked, and to a short tail kept in memory so that a child that dies can be
explained on the terminal without opening its log.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import BinaryIO

MAX_LOG_BYTES = 10 * 1024 * 1024
KEPT_LOGS = 3  # rotated files beside the current one: <child>.log.1 ... .3
TAIL_LINES = 25
MAX_LINE_BYTES = 64 * 1024  # a longer line is cut into pieces rather than held whole in memory
# Dagster colours its log lines even into a pipe: the files and the tail get them without the colour codes.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class ChildOutput:
    """One child's output: its log file, an optional echo and the last lines it wrote."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None = None, *, max_bytes: int = MAX_LOG_BYTES,
                 backups: int = KEPT_LOGS):
        self.path = path
        self.echo = echo
        self.tail_lines: deque[str] = deque(maxlen=TAIL_LINES)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(message)s"))
        self.thread: threading.Thread | None = None

    def follow(self, pipe: BinaryIO, name: str) -> None:
        """Read `pipe` until it closes (every process holding it has exited), in a daemon thread."""
        self.thread = threading.Thread(target=self._pump, args=(pipe,), name=f"orca-up-{name}-output", daemon=True)
        self.thread.start()

    def _pump(self, pipe: BinaryIO) -> None:
        try:
            for raw in iter(lambda: pipe.readline(MAX_LINE_BYTES), b""):
                self.write(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        except (OSError, ValueError):  # the pipe was closed under us while stopping
            pass
        finally:
            pipe.close()
            self.handler.close()

    def write(self, line: str) -> None:
        plain = ANSI_ESCAPE.sub("", line)
        self.tail_lines.append(plain)
        self.handler.handle(logging.makeLogRecord({"msg": plain, "levelno": logging.INFO}))
        if self.echo is not None:
            self.echo(line)

    def finish(self, timeout: float = 5.0) -> None:
        """Wait (a little) for the last lines of a stopped child to reach the log."""
        if self.thread is not None:
            self.thread.join(timeout)

    def tail(self) -> list[str]:
        """The last lines the child wrote, blank ones left out."""
        return [line for line in self.tail_lines if line.strip()]
