"""`orca materialize A B ...` / `--all`: several collections in one command, overlapped so Ollama never waits.

Each collection's run executes in a worker process (orca/materialize_worker.py) forked from a forkserver
that imported Dagster and Orca once; at most `parallel` workers run at a time, so while one collection
embeds, the next one reads and chunks and its requests queue behind on the server. Processes rather than
threads: `execute_in_process` changes process-wide state (signal handlers, logging, the instance's
SQLite connections) and is not documented as thread-safe. Every run is recorded under DAGSTER_HOME as the
one-collection command records it, and waits the same way for another run of its collection.

Ctrl-C (or SIGTERM) starts no new run and forwards one SIGINT to each worker, which ends its run as
interrupted; a worker still alive after the grace period is killed and its run marked failed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing import forkserver
from multiprocessing.connection import Connection, wait

from rich.console import Console
from rich.progress import TaskID

from orca.materialize_worker import FAILED, INTERRUPTED, OK, PRELOAD, Outcome, run_collection
from orca.progress_display import INPUTS, Board
from orca.report import render_overview, render_summary
from orca_core.settings import OrcaSettings

HEAD_START_SECONDS = 5.0  # a worker preparing longer than this (a big collection) no longer holds the next back
GRACE_SECONDS = 30.0  # how long interrupted workers get to record their runs' end before they are killed
WAIT_SECONDS = 0.5


@dataclass
class Slot:
    """A running worker: its process, the read end of its pipe, and its bar (steps, then inputs once it embeds)."""

    collection: str
    run_id: str
    process: multiprocessing.process.BaseProcess
    connection: Connection
    task: TaskID
    preparing: bool = True  # starting, reading, chunking: until it embeds or waits for another run
    embedding: bool = False  # its bar counts inputs from the embedding plan on
    started: float = field(default_factory=time.monotonic)

    def holds_back(self) -> bool:
        return self.preparing and time.monotonic() - self.started < HEAD_START_SECONDS


class Scheduler:
    """Starts workers (at most `parallel` at a time), follows their messages, and collects their Outcomes."""

    def __init__(
        self, settings: OrcaSettings, collections: list[str], parallel: int, force: bool, verbose: bool, board: Board
    ):
        self.settings = settings
        self.pending = list(collections)
        self.parallel, self.force, self.verbose, self.board = parallel, force, verbose, board
        self.context = multiprocessing.get_context("forkserver")
        self.slots: dict[Connection, Slot] = {}
        self.ended: list[multiprocessing.process.BaseProcess] = []  # reported their outcome; exiting
        self.stopping = False
        self.outcomes: dict[str, Outcome] = {}
        self.overall = board.add("all", unit="collections", total=len(collections), description="running")
        self.tasks = {name: board.add(name, description="queued", start=False) for name in collections}

    def run(self) -> bool:
        """Run every collection (Outcomes in `self.outcomes`); False when Ctrl-C stopped the workers."""
        try:
            while self.pending or self.slots:
                self.start_more()
                for connection in wait(list(self.slots), timeout=WAIT_SECONDS):
                    self.receive(self.slots[connection])
        except KeyboardInterrupt:
            self.stop()
            return False
        finally:
            self.reap()
        return True

    def reap(self) -> None:
        """Wait for workers that already sent their outcome to exit (kill one that hangs on its way out)."""
        for process in self.ended:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)

    def start_more(self) -> None:
        """Fill free slots, but with one worker preparing at a time: the CPU work of two workers starting
        together would delay the first embedding request, and a worker that embeds needs little CPU."""
        while self.pending and len(self.slots) < self.parallel and not any(s.holds_back() for s in self.slots.values()):
            self.start(self.pending.pop(0))

    def start(self, collection: str) -> None:
        reader, writer = self.context.Pipe(duplex=False)
        run_id = str(uuid.uuid4())
        process = self.context.Process(
            target=run_collection, args=(writer, self.settings, collection, run_id, self.force, self.verbose),
            name=f"orca-materialize-{collection}",
        )
        process.start()
        writer.close()  # the worker holds the only write end now: its exit reads as EOF here
        task = self.tasks[collection]
        self.board.start(task, f"starting, run {run_id}")
        self.slots[reader] = Slot(collection, run_id, process, reader, task)

    def receive(self, slot: Slot) -> None:
        try:
            kind, payload = slot.connection.recv()
        except (EOFError, OSError):
            slot.process.join(timeout=5)
            self.finish(slot, Outcome(slot.collection, FAILED, slot.run_id,
                                      error=f"its worker process ended without a result (exit code {slot.process.exitcode})"))
            return
        if kind == "total":
            self.board.update(slot.task, total=payload, completed=0)
        elif kind in ("describe", "embedding"):
            slot.preparing = slot.preparing and kind != "embedding"
            self.board.describe(slot.task, payload)
        elif kind == "inputs":
            self.inputs(slot, payload)
        elif kind == "step":
            if not slot.embedding:
                self.board.advance(slot.task)
            if self.verbose:
                self.board.print(f"[bold]{slot.collection}[/]{payload}")
        elif kind == "note":
            self.board.print(payload)
            if payload.startswith("Waiting for run"):
                slot.preparing = False  # another run of its collection may take long: let the next one start
                self.board.describe(slot.task, "waiting for another run of this collection")
        elif kind == "done":
            self.ended.append(slot.process)  # joined at the end: its slot is free now
            self.finish(slot, payload)

    def inputs(self, slot: Slot, inputs) -> None:
        """The embedding step's progress (orca/run_watcher.py's Inputs): the collection's bar counts inputs now."""
        if inputs.reused is not None and inputs.total == 0:
            self.board.print(f"  {slot.collection}: nothing to embed, all {inputs.reused:,} distinct chunks are already embedded")
            return
        slot.embedding = True
        self.board.update(slot.task, unit=INPUTS, completed=inputs.done, total=inputs.total, at=inputs.at,
                          description="embeddings")

    def finish(self, slot: Slot, outcome: Outcome) -> None:
        if self.stopping and outcome.code != OK:
            outcome.code = INTERRUPTED  # its failure is the interruption (Dagster reports it as a step error)
        slot.connection.close()
        self.slots.pop(slot.connection, None)
        self.outcomes[slot.collection] = outcome
        ok = outcome.code == OK
        state = "[green]✓ done[/]" if ok else ("[yellow]interrupted[/]" if outcome.code == INTERRUPTED else "[red]✗ failed[/]")
        self.board.stop(slot.task, state)
        self.board.advance(self.overall)
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        first = outcome.error.splitlines()[0] if outcome.error else ""
        self.board.console.print(
            f"{mark} {slot.collection} [dim]{outcome.seconds:.1f}s[/] run {slot.run_id}" + (f": {first}" if first else ""),
            highlight=False,
        )

    def stop(self) -> None:
        """Forward one SIGINT to every worker, give them GRACE_SECONDS to end, then kill the rest."""
        self.stopping = True
        for name in self.pending:
            self.outcomes[name] = Outcome(name, INTERRUPTED, error="not started")
        self.pending.clear()
        for slot in self.slots.values():
            _signal(slot.process.pid, signal.SIGINT)
            self.board.describe(slot.task, "[yellow]stopping[/]")
        deadline = time.monotonic() + GRACE_SECONDS
        try:
            while self.slots and time.monotonic() < deadline:
                for connection in wait(list(self.slots), timeout=WAIT_SECONDS):
                    self.receive(self.slots[connection])
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            pass
        for slot in list(self.slots.values()):
            _signal(slot.process.pid, signal.SIGKILL)
            slot.process.join(timeout=5)
            _mark_failed(self.settings, slot.run_id, "its `orca materialize` worker was killed after Ctrl-C")
            self.finish(slot, Outcome(slot.collection, INTERRUPTED, slot.run_id, error="killed"))


def _signal(pid: int | None, signum: int) -> None:
    try:
        if pid:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _mark_failed(settings: OrcaSettings, run_id: str, reason: str) -> None:
    """A killed worker could not record its run's end; do it for it so nobody waits for that run."""
    import dagster as dg

    from orca.home import open_instance

    instance = open_instance(settings)
    run = instance.get_run_by_id(run_id)
    if run is not None and run.status in (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED):
        instance.report_run_failed(run, reason)


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def materialize_many(
    settings: OrcaSettings, collections: list[str], *, parallel: int, force: bool, out: Console, err: Console,
    verbose: bool = False,
) -> int:
    """Materialize `collections`, `parallel` at a time; print one summary each; return the exit code."""
    from orca.home import open_instance, prepare_home, register_collection
    from orca.materialize import missing_inbox_message

    prepare_home(settings)
    if (message := missing_inbox_message(settings, collections)) is not None:
        err.print(message)
        return 1
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    forkserver.ensure_running()  # it imports Dagster and Orca now, while this process registers the collections
    instance = open_instance(settings)
    for name in collections:
        if register_collection(instance, name):
            out.print(f"New collection [bold]{name}[/] registered.")
    out.print(f"Materializing {len(collections)} collections, {min(parallel, len(collections))} at a time"
              f"{' (force: re-embedding everything)' if force else ''}: {', '.join(collections)}")

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # SIGTERM stops the workers like Ctrl-C
    try:
        with Board(err, live=False if verbose else None) as board:
            scheduler = Scheduler(settings, collections, parallel, force, verbose, board)
            completed = scheduler.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return report(collections, scheduler.outcomes, completed, out, err)


def report(collections: list[str], outcomes: dict[str, Outcome], completed: bool, out: Console, err: Console) -> int:
    """One summary per collection, the overview, the failures; the exit code."""
    for name in collections:
        if (summary := outcomes[name].summary) is not None:
            render_summary(summary, out)
    render_overview([outcomes[name] for name in collections], out)
    failed = [name for name in collections if outcomes[name].code == FAILED]
    for name in failed:
        outcome = outcomes[name]
        err.print(f"[red]error:[/] {name}: run {outcome.run_id} failed:")
        err.print(outcome.error, markup=False, highlight=False)
    if not completed:
        stopped = [name for name in collections if outcomes[name].code == INTERRUPTED]
        err.print(f"interrupted: stopped {', '.join(stopped)}" if stopped else "interrupted")
        return INTERRUPTED
    if failed:
        err.print(f"[red]error:[/] {len(failed)} of {len(collections)} collections failed: {', '.join(failed)}")
        return 1
    out.print(f"[green]Done.[/] {len(collections)} collections are up to date; search one with "
              f"`orca search {collections[0]} \"your question\"`.")
    return 0
