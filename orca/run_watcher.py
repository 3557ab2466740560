"""`RunWatcher`: follows a run's event log in a thread and turns it into progress for `orca materialize`."""

from __future__ import annotations

import threading
from collections.abc import Callable

import dagster as dg

POLL_SECONDS = 0.3


class RunWatcher(threading.Thread):
    """Follows a run's event log and turns step events and log lines into progress callbacks.

    `describe(text)` gets what the run is doing now; `step_done(line)` gets one printable line per finished
    step. The one-collection command draws them with rich, a worker of `orca materialize A B ...` sends them
    to its parent (orca/materialize_worker.py).
    """

    def __init__(
        self, instance: dg.DagsterInstance, run_id: str, describe: Callable[[str], None], step_done: Callable[[str], None]
    ):
        super().__init__(name="orca-run-watcher", daemon=True)
        self.instance, self.run_id, self.describe, self.step_done = instance, run_id, describe, step_done
        self.cursor: str | None = None
        self.stopping = threading.Event()
        self.step_started: dict[str, float] = {}

    def run(self) -> None:
        """Poll until `stop()`."""
        while not self.stopping.wait(POLL_SECONDS):
            self.poll()

    def stop(self) -> None:
        """Stop polling, then read what is left so no step line is lost."""
        self.stopping.set()
        self.join(timeout=5)
        self.poll()

    def poll(self) -> None:
        """Read the events written since the last poll."""
        try:
            connection = self.instance.get_records_for_run(self.run_id, cursor=self.cursor)
        except Exception:  # progress is cosmetic: a busy SQLite file must not break the run
            return
        for record in connection.records:
            self.handle(record.event_log_entry)
        self.cursor = connection.cursor

    def handle(self, entry) -> None:
        """Step events end in a line; step starts and log lines describe what runs now."""
        step = entry.step_key or ""
        event = entry.dagster_event
        if event is None:
            if step and entry.user_message:
                self.describe(f"{step}: {_one_line(entry.user_message)}")
            return
        kind = event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            self.step_started[step] = entry.timestamp
            self.describe(step)
        elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.STEP_SKIPPED):
            seconds = entry.timestamp - self.step_started.get(step, entry.timestamp)
            mark = {
                dg.DagsterEventType.STEP_SUCCESS: "[green]✓[/]",
                dg.DagsterEventType.STEP_FAILURE: "[red]✗[/]",
            }.get(kind, "[yellow]-[/] skipped")
            self.step_done(f"  {mark} {step} [dim]{seconds:.1f}s[/]")


def _one_line(text: str, width: int = 70) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
