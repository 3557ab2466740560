"""One collection's run inside a worker process of `orca materialize A B ...` (see orca/materialize_many.py).

Workers are forked from a multiprocessing forkserver that imported Dagster and Orca's definitions once
(PRELOAD), so a worker starts in milliseconds instead of paying seconds of imports per collection. A worker
runs exactly what the one-collection command runs (wait for other runs of the collection, then
`execute_in_process` on the instance under DAGSTER_HOME, so the run is recorded as usual) and reports
over a pipe: progress messages while it runs (steps, and the embedding step's inputs as
orca/run_watcher.py's `Inputs`), then one `Outcome`.

This module stays light at import: the parent imports it to name the worker's entry point.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection

from orca.report import RunSummary
from orca_core.settings import OrcaSettings

# What the forkserver imports once, before it forks any worker: the heavy part of a run's start-up.
PRELOAD = ["orca.materialize_worker", "orca.materialize", "orca.definitions", "orca.report", "pyarrow.parquet"]

EMBED_STEP = "embeddings"  # from its start on, a worker leaves the CPU to the next one (see Scheduler.start_more)

# Exit codes carried in Outcome.code, as the one-collection command would return them.
OK, FAILED, INTERRUPTED = 0, 1, 130


@dataclass
class Outcome:
    """How one collection's run ended, as plain values the parent can print."""

    collection: str
    code: int
    run_id: str | None = None
    summary: RunSummary | None = None
    error: str = ""  # why it failed, written for users
    seconds: float = 0.0


class Reporter:
    """Sends (kind, payload) messages to the parent; the watcher thread and the main thread both send."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.lock = threading.Lock()

    def send(self, kind: str, payload: object) -> None:
        with self.lock:
            try:
                self.connection.send((kind, payload))
            except (BrokenPipeError, OSError):  # the parent is gone; the run still finishes and is recorded
                pass

    def print(self, text: str, **_: object) -> None:
        """Console-like, so `wait_for_collection` can announce waits through the parent's display."""
        self.send("note", text)


def run_collection(
    connection: Connection, settings: OrcaSettings, collection: str, run_id: str, force: bool, verbose: bool,
    lone_group: bool = True,
) -> None:
    """Worker entry point: run `collection` and send its Outcome (also on failure and on Ctrl-C)."""
    if lone_group:
        # The parent forwards Ctrl-C exactly once; a terminal's SIGINT to the whole group would interrupt
        # the worker a second time while it records its interrupted run.
        os.setpgrp()
    started = time.monotonic()
    reporter = Reporter(connection)
    outcome = Outcome(collection, FAILED, run_id)
    try:
        outcome = _run(reporter, settings, collection, run_id, force, verbose)
    except KeyboardInterrupt:
        outcome = Outcome(collection, INTERRUPTED, run_id, error="interrupted")
    except Exception as error:  # reported to the parent as this collection's failure, with its cause
        last = traceback.format_exception_only(type(error), error)[-1].strip()
        outcome = Outcome(collection, FAILED, run_id, error=last)
    finally:
        outcome.seconds = time.monotonic() - started
        reporter.send("done", outcome)
        connection.close()


def _run(reporter: Reporter, settings: OrcaSettings, collection: str, run_id: str, force: bool, verbose: bool) -> Outcome:
    from orca.dagster_warnings import quiet_dagster_warnings
    from orca.home import open_instance
    from orca.materialize import execute_watched, failure_message, prepare_job, wait_for_collection
    from orca.report import summarize
    from orca.run_watcher import RunWatcher, embedding_reader

    if not verbose:
        quiet_dagster_warnings()
    job, run_config = prepare_job(settings, force, verbose)
    reporter.send("total", len(job.graph.nodes))
    instance = open_instance(settings)
    if wait_for_collection(instance, collection, reporter) > 0:
        reporter.send("describe", "starting")

    def describe(text: str) -> None:
        reporter.send("embedding" if text == EMBED_STEP else "describe", text)

    watcher = RunWatcher(instance, run_id, describe, lambda line: reporter.send("step", line),
                         on_log=embedding_reader(lambda inputs: reporter.send("inputs", inputs)))
    result = execute_watched(job, instance, collection, run_config, run_id, watcher)
    summary = summarize(result, collection).portable()
    if not result.success:
        return Outcome(collection, FAILED, run_id, summary, failure_message(result))
    return Outcome(collection, OK, run_id, summary)
