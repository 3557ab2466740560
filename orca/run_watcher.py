"""`RunWatcher`: follows a run's event log in a thread and turns it into progress for the command line."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

import dagster as dg

from orca.poller import Poller

POLL_SECONDS = 0.3

# The `embeddings` asset (orca_assets/embeddings.py) logs its plan once, then its progress at most once a
# second and always after the last batch, in these fixed shapes. Log lines rather than one AssetObservation
# per batch: they cost the same event each, but observations would pile up in the asset's catalog history.
EMBED_PLAN = re.compile(r"(?P<distinct>\d+) distinct chunks, (?P<reused>\d+) already embedded with .*, "
                        r"(?P<todo>\d+) to embed in \d+ batches$")
EMBED_BATCH = re.compile(r"^batch \d+/\d+: (?P<sent>\d+)/(?P<todo>\d+) inputs, \d+ failed")


class Inputs(NamedTuple):
    """The embedding step's progress: inputs sent so far of those to send, and chunks reused from the store."""

    done: int
    total: int
    at: float  # when the run logged it (a timestamp): rates come from the run's clock, not from when it was read
    reused: int | None = None  # known from the plan line only


def embed_progress(message: str, at: float) -> Inputs | None:
    """The progress told by one of the `embeddings` asset's log lines (logged at `at`), None for any other line."""
    if match := EMBED_BATCH.match(message):
        return Inputs(int(match["sent"]), int(match["todo"]), at)
    if match := EMBED_PLAN.search(message):
        return Inputs(0, int(match["todo"]), at, int(match["reused"]))
    return None


class RunWatcher(Poller):
    """Follows a run's event log and turns step events and log lines into progress callbacks.

    `describe(text)` gets what the run is doing now; `step_done(line)` gets one printable line per finished
    step; `on_log(step, message, timestamp)` (optional) sees each log line first and returns True when it took
    it as progress (it is then not described). The one-collection command draws them with rich, a worker of
    `orca materialize A B ...` sends them to its parent (orca/materialize_worker.py).
    """

    def __init__(
        self, instance: dg.DagsterInstance, run_id: str, describe: Callable[[str], None],
        step_done: Callable[[str], None], on_log: Callable[[str, str, float], bool] | None = None,
    ):
        super().__init__("orca-run-watcher", POLL_SECONDS, join_timeout=5)
        self.instance, self.run_id, self.describe, self.step_done = instance, run_id, describe, step_done
        self.on_log = on_log
        self.cursor: str | None = None
        self.step_started: dict[str, float] = {}

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
            if self.on_log is not None and entry.user_message and self.on_log(step, entry.user_message, entry.timestamp):
                return
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


def embedding_reader(report: Callable[[Inputs], None]) -> Callable[[str, str, float], bool]:
    """An `on_log` for `embed_collection_job` that hands the `embeddings` step's progress to `report`."""

    def read(step: str, message: str, at: float) -> bool:
        if step != "embeddings" or (inputs := embed_progress(message, at)) is None:
            return False
        report(inputs)
        return True

    return read


def _one_line(text: str, width: int = 70) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
