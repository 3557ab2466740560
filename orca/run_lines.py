"""The line `orca up` prints for each finished run, read from the Dagster instance in a thread.

`RunFeed` polls the run records that reached SUCCESS, FAILURE or CANCELED since `orca up` started (whoever
launched them: a sensor, the schedule, the webserver, `orca materialize`) and prints one line per run:
collection, what changed, inputs embedded, duration, result and the run's page in the webserver; a failed
run's line says why, with the failing step's message (the same words `orca materialize` prints).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import dagster as dg
from rich.markup import escape

from orca.materialize import failure_message
from orca.poller import Poller
from orca.report import RunSummary
from orca_core.settings import OrcaSettings
from orca_core.tags import KIND_TAG, PARTITION_TAG, SOURCE_TAG

POLL_SECONDS = 1.0
# Runs are re-read this far behind the newest one seen: another process may commit a run's end a little after
# a later-stamped one. Lines already printed are remembered, so none is printed twice.
LOOKBACK = timedelta(seconds=15)
REMEMBERED_RUNS = 10_000
MAX_REASON_CHARS = 400
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
EVENTS = {
    dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE,
}
MARKS = {
    dg.DagsterRunStatus.SUCCESS: "[green]✓[/]", dg.DagsterRunStatus.FAILURE: "[red]✗[/]",
    dg.DagsterRunStatus.CANCELED: "[yellow]-[/]",
}


class _RunEvents:
    """A finished run's failure events in the shape `orca.materialize.failure_message` reads from a result."""

    def __init__(self, records: list) -> None:
        events = [record.event_log_entry.dagster_event for record in records]
        self.step_failures = [e for e in events if e and e.event_type == dg.DagsterEventType.STEP_FAILURE]
        self.run_failure = next((e for e in events if e and e.event_type == dg.DagsterEventType.RUN_FAILURE), None)

    def get_step_failure_events(self) -> list:
        return self.step_failures

    def get_run_failure_event(self):
        return self.run_failure


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _one_line(text: str, limit: int = MAX_REASON_CHARS) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def failure_reason(events: _RunEvents) -> str:
    """Why the run failed: its failing steps' messages, else what its failure event says."""
    if events.step_failures:
        return "; ".join(failure_message(events).splitlines())
    failure = events.run_failure
    if failure is None:
        return "the run failed"
    error = failure.job_failure_data.error if failure.job_failure_data is not None else None
    return (error.message if error is not None else None) or failure.message or "the run failed"


def summary_of(run: dg.DagsterRun, records: list) -> RunSummary:
    """The run's materialization metadata, per asset, as `orca materialize` reports it."""
    summary = RunSummary(collection=run.tags.get(PARTITION_TAG, ""), run_id=run.run_id,
                         success=run.status == dg.DagsterRunStatus.SUCCESS)
    for record in records:
        event = record.event_log_entry.dagster_event
        materialization = record.asset_materialization
        if materialization is not None:
            summary.metadata[materialization.asset_key.path[-1]] = {
                key: getattr(value, "value", value) for key, value in materialization.metadata.items()
            }
        elif event is not None and event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            (summary.checks_passed if evaluation.passed else summary.checks_failed).append(evaluation.check_name)
    return summary


def changes(summary: RunSummary) -> list[str]:
    """What the run changed, in words: documents added/updated/deleted, inputs embedded, failed checks."""
    parts = []
    if "documents" in summary.metadata:
        counts = {key: summary.value("documents", key) or 0 for key in ("added", "updated", "deleted", "failed")}
        if any(counts.values()):
            text = f"documents {counts['added']} added, {counts['updated']} updated, {counts['deleted']} deleted"
            parts.append(text + (f", {counts['failed']} unreadable" if counts["failed"] else ""))
        else:
            parts.append("documents unchanged")
    if "embeddings" in summary.metadata:
        sent, reused = summary.value("embeddings", "inputs_sent") or 0, summary.value("embeddings", "reused") or 0
        parts.append(f"{sent:,} input{'' if sent == 1 else 's'} embedded" + (f" ({reused:,} reused)" if reused else ""))
    if "embedding_index" in summary.metadata:
        rows = summary.value("embedding_index", "dagster/row_count") or 0
        parts.append(f"index {rows:,} row{'' if rows == 1 else 's'}")
    if summary.checks_failed:
        parts.append(f"checks failed: {', '.join(sorted(summary.checks_failed))}")
    elif summary.checks_passed and not summary.metadata:  # a run that only checks (index_freshness_job)
        parts.append(f"checks passed: {', '.join(sorted(summary.checks_passed))}")
    return parts


def run_line(instance: dg.DagsterInstance, record: dg.RunRecord, settings: OrcaSettings) -> str:
    """One line (rich markup) about a finished run."""
    run = record.dagster_run
    records = list(instance.get_records_for_run(run.run_id, of_type=EVENTS).records)
    collection = run.tags.get(PARTITION_TAG, "")
    what = collection if run.tags.get(KIND_TAG) == "embed" and collection else f"{run.job_name} {collection}".strip()
    source = run.tags.get(SOURCE_TAG)
    when = datetime.fromtimestamp(record.end_time or _aware(record.update_timestamp).timestamp()).strftime("%H:%M:%S")
    result = run.status.value.lower()
    if record.start_time and record.end_time:
        result += f" {'in' if run.status == dg.DagsterRunStatus.SUCCESS else 'after'} " \
                  f"{record.end_time - record.start_time:.1f}s"
    parts = [f"{when} {MARKS[run.status]} [bold]{escape(what)}[/]" + (f" ({escape(source)})" if source else "")
             + f": {result}"]
    if run.status == dg.DagsterRunStatus.FAILURE:
        parts.append(f"reason: {escape(_one_line(failure_reason(_RunEvents(records))))}")
    parts += [escape(part) for part in changes(summary_of(run, records))]
    parts.append(escape(settings.run_url(run.run_id) or ""))
    return " · ".join(parts)


class RunFeed(Poller):
    """Prints a line per run that finishes after `since`, until `stop()`."""

    def __init__(self, instance: dg.DagsterInstance, settings: OrcaSettings, emit: Callable[[str], None],
                 since: datetime):
        super().__init__("orca-up-run-feed", POLL_SECONDS, join_timeout=10)
        self.instance, self.settings, self.emit = instance, settings, emit
        self.since = self.newest = _aware(since)
        self.printed: OrderedDict[str, None] = OrderedDict()
        self.lock = threading.Lock()

    def poll(self) -> None:
        with self.lock:
            try:
                records = self.instance.get_run_records(
                    filters=dg.RunsFilter(statuses=FINISHED, updated_after=self.newest - LOOKBACK),
                    order_by="update_timestamp", ascending=True,
                )
            except Exception:  # a busy SQLite file or a storage hiccup: the next poll reads it again
                return
            for record in records:
                run_id = record.dagster_run.run_id
                updated = _aware(record.update_timestamp)
                if run_id in self.printed or updated <= self.since:
                    continue
                try:
                    line = run_line(self.instance, record, self.settings)
                except Exception as error:  # a line must never stop the feed
                    line = f"run {run_id} {record.dagster_run.status.value.lower()} ({type(error).__name__} reading it)"
                self.emit(line)
                self.printed[run_id] = None
                if len(self.printed) > REMEMBERED_RUNS:
                    self.printed.popitem(last=False)
                self.newest = max(self.newest, updated)
